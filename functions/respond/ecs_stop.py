"""Stop ECS task: stop the finding's task (after its role's sessions were revoked).

A responder rather than the ``aws-sdk:ecs:stopTask`` integration: the task must still be the
one in the finding (same cluster, not already stopped), and the action item records the
status it had. ``StopTask`` on a task that is already stopping is not repeated.
"""

from __future__ import annotations

from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import Guard, record_action, session_for, traced

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    KEY_USE,
    MEMBER_ROLE,
    Permission(("ecs:DescribeTasks", "ecs:StopTask"), ("arn:{partition}:ecs:*:*:task/*",)),
]


@traced("ecs-stop")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    ecs = session_for(guard).client("ecs")
    tasks = ecs.describe_tasks(cluster=guard["cluster"], tasks=[guard["resource_uid"]])["tasks"]
    if not tasks or tasks[0]["taskArn"] != guard["resource_uid"]:
        raise ValueError(f"task {guard['resource_uid']} is not in cluster {guard['cluster']}")
    before = tasks[0].get("lastStatus")
    if tasks[0].get("desiredStatus") != "STOPPED":
        ecs.stop_task(
            cluster=guard["cluster"],
            task=guard["resource_uid"],
            reason=f"Ramparts finding {guard['finding_id']}"[:255],
        )
    record_action(guard, "stop", status="applied", before=before, after="STOPPED")
    return {"stopped": guard["resource_uid"], "before": before}
