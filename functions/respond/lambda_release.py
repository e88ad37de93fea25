"""Release Lambda function: restore exactly what Contain Lambda function recorded.

Reads the containment's evidence (``evidence#contain-lambda``) and action items and puts
back, for each action that was applied: the reserved concurrency (or none), the function URL
configuration (auth type, CORS, invoke mode), the removed resource-policy statements and the
``ramparts:contained`` tag's previous value (or none). Every restore is an action item of the
release playbook (``restore-<name>``) with before (the contained state) and after.

The session-revocation deny policy is kept on purpose: it only denies credentials issued
before the containment, which may be in an attacker's hands; sessions issued after the
release are not affected by it. Its action item says so (``keep-revoke``).
"""

from __future__ import annotations

import json
from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import (
    CONTAINED_TAG,
    Guard,
    actions_of,
    evidence_of,
    record_action,
    session_for,
    traced,
)

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    KEY_USE,
    MEMBER_ROLE,
    Permission(
        (
            "lambda:PutFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            "lambda:CreateFunctionUrlConfig",
            "lambda:GetFunctionUrlConfig",
            "lambda:AddPermission",
            "lambda:TagResource",
            "lambda:UntagResource",
        ),
        ("arn:{partition}:lambda:*:*:function:*",),
    ),
]

CONTAIN = "contain-lambda"


def add_permission_args(statement: dict[str, Any]) -> dict[str, Any]:
    """``AddPermission`` arguments that recreate a (public) policy statement."""
    args: dict[str, Any] = {
        "StatementId": statement["Sid"],
        "Action": statement["Action"],
        "Principal": "*",
    }
    if "FunctionUrlAuthType" in statement:  # how some emulators write the condition
        args["FunctionUrlAuthType"] = statement["FunctionUrlAuthType"]
    for operator in (statement.get("Condition") or {}).values():
        for key, value in operator.items():
            if key.lower() == "lambda:functionurlauthtype":
                args["FunctionUrlAuthType"] = value
            elif key.lower() == "lambda:eventsourcetoken":
                args["EventSourceToken"] = value
    return args


def restore_plan(finding_id: str) -> list[tuple[str, Any, Any]]:
    """(action, contained state, state to restore) for each applied containment action."""
    done = actions_of(finding_id, CONTAIN)
    evidence = evidence_of(finding_id, CONTAIN) or {}
    plan: list[tuple[str, Any, Any]] = []
    for name in ("tag", "concurrency", "url"):
        item = done.get(name)
        if item and item["status"] == "applied":
            plan.append((name, json.loads(item["after"]), json.loads(item["before"])))
    for name, item in sorted(done.items()):
        if name.startswith("remove-statement#") and item["status"] == "applied":
            plan.append((name, None, json.loads(item["before"])))
    if "revoke" in done and done["revoke"]["status"] == "applied":
        plan.append(("keep-revoke", json.loads(done["revoke"]["after"]), "kept"))
    if not plan and evidence:
        raise ValueError("the containment recorded evidence but no applied action")
    return plan


@traced("lambda-release")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    lam = session_for(guard).client("lambda")
    arn = guard["resource_uid"]
    restored = []
    for name, contained, original in restore_plan(guard["finding_id"]):
        if name == "tag":
            if original is None:
                lam.untag_resource(Resource=arn, TagKeys=[CONTAINED_TAG])
            else:
                lam.tag_resource(Resource=arn, Tags={CONTAINED_TAG: original})
        elif name == "concurrency":
            if original is None:
                lam.delete_function_concurrency(FunctionName=arn)
            else:
                lam.put_function_concurrency(
                    FunctionName=arn, ReservedConcurrentExecutions=int(original)
                )
        elif name == "url" and original is not None:
            args = {k: original[k] for k in ("AuthType", "Cors", "InvokeMode") if k in original}
            lam.create_function_url_config(FunctionName=arn, **args)
        elif name.startswith("remove-statement#"):
            lam.add_permission(FunctionName=arn, **add_permission_args(original))
        record_action(guard, f"restore-{name}", status="applied", before=contained, after=original)
        restored.append(name)
    return {"restored": restored}
