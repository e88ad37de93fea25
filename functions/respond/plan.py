"""Dry-run: record what a playbook would do, change nothing.

Containment playbooks: the evidence step (run read-only in dry-run) lists the planned
actions with their before/after states. Release playbooks: the restores the containment's
records call for. Each becomes an action item with status ``would-do``.
"""

from __future__ import annotations

from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE
from functions.respond.common import Guard, record_action, traced

PERMISSIONS = [ACTIONS_TABLE_RW, KEY_USE]


@traced("plan")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    steps: list[dict[str, Any]]
    if guard.get("restores") == "contain-lambda":
        from functions.respond.lambda_release import restore_plan

        steps = [
            {"action": f"restore-{n}", "before": c, "after": o}
            for n, c, o in restore_plan(guard["finding_id"])
        ]
    elif guard.get("restores") == "isolate-ec2":
        from functions.respond.ec2_release import restore_plan as ec2_plan

        steps = [
            {"action": f"restore-{n}", "before": c, "after": o}
            for n, c, o in ec2_plan(guard["finding_id"])
        ]
    else:
        steps = list((event.get("evidence") or {}).get("planned") or [])
    recorded = [
        s["action"]
        for s in steps
        if record_action(
            guard, str(s["action"]), status="would-do", before=s["before"], after=s["after"]
        )
    ]
    return {"planned": [s["action"] for s in steps], "recorded": recorded}
