"""Contain Lambda function: remove the public statements of its resource policy.

A statement is public when it allows ``*`` without narrowing it to a source ARN, account or
organisation (:func:`functions.respond.lambda_evidence.is_public`); the function URL's
``lambda:InvokeFunctionUrl`` permission for ``AuthType NONE`` is one. Each removed statement
is an action (``remove-statement#<sid>``) whose before-state is the statement itself, which
is what the release playbook puts back.
"""

from __future__ import annotations

import json
from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import Guard, record_action, session_for, traced
from functions.respond.lambda_evidence import is_public

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    KEY_USE,
    MEMBER_ROLE,
    Permission(
        ("lambda:GetPolicy", "lambda:RemovePermission"),
        ("arn:{partition}:lambda:*:*:function:*",),
    ),
]


@traced("lambda-policy")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    guard: Guard = event["guard"]
    lam = session_for(guard).client("lambda")
    arn = guard["resource_uid"]
    try:
        policy = json.loads(lam.get_policy(FunctionName=arn)["Policy"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return {"removed": []}
        raise
    removed = []
    for statement in policy.get("Statement") or []:
        if not is_public(statement):
            continue
        sid = str(statement.get("Sid", ""))
        lam.remove_permission(FunctionName=arn, StatementId=sid)
        record_action(
            guard, f"remove-statement#{sid}", status="applied", before=statement, after=None
        )
        removed.append(sid)
    return {"removed": removed}
