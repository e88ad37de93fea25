"""Stop ECS task, step 1: evidence.

Captures the task (``DescribeTasks``: containers, images and digests, network, status) and
its task definition (``DescribeTaskDefinition``), writes them to the evidence bucket and the
actions table (``evidence#stop-ecs-task``) and returns the task role to revoke. A stopped
task cannot be started again, so this playbook has no release.
"""

from __future__ import annotations

from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import (
    REVOKE_POLICY_NAME,
    Guard,
    dumps,
    evidence_prefix,
    existing_inline_policy,
    now_iso,
    put_evidence,
    put_object,
    revoke_policy_document,
    role_name_of,
    session_for,
    traced,
)

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    KEY_USE,
    MEMBER_ROLE,
    Permission(("s3:PutObject",), ("{evidence_bucket_arn}/evidence/*",)),
    Permission(("ecs:DescribeTasks",), ("arn:{partition}:ecs:*:*:task/*",)),
    Permission(("ecs:DescribeTaskDefinition",), ("*",)),
    Permission(("iam:GetRolePolicy",), ("arn:{partition}:iam::*:role/*",)),
]


@traced("ecs-evidence")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    session = session_for(guard)
    ecs = session.client("ecs")
    tasks = ecs.describe_tasks(cluster=guard["cluster"], tasks=[guard["resource_uid"]])["tasks"]
    if not tasks:
        raise ValueError(f"task {guard['resource_uid']} not found")
    task = tasks[0]
    taskdef = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
        "taskDefinition"
    ]
    role_arn = taskdef.get("taskRoleArn") or task.get("overrides", {}).get("taskRoleArn") or ""
    role_name = role_name_of(role_arn) if role_arn else ""
    revoke_before = (
        existing_inline_policy(session.client("iam"), role_name, REVOKE_POLICY_NAME)
        if role_name
        else None
    )
    revoked_at = now_iso()
    policy = revoke_policy_document(revoked_at)
    out: dict[str, Any] = {
        "task_arn": guard["resource_uid"],
        "role_name": role_name,
        "has_role": bool(role_name),
        "revoked_at": revoked_at,
        "revoke_policy": policy,
        "before": {"stop": dumps(task.get("lastStatus")), "revoke": dumps(revoke_before)},
        "objects": [],
    }
    if guard.get("decision") == "dry-run":
        steps: list[dict[str, Any]] = []
        if role_name:
            steps.append({"action": "revoke", "before": revoke_before, "after": policy})
        steps.append({"action": "stop", "before": task.get("lastStatus"), "after": "STOPPED"})
        out["planned"] = steps
        return out
    prefix = evidence_prefix(guard)
    state = {
        "task": task,
        "task_definition": taskdef,
        "containers": task.get("containers", []),
        "role_arn": role_arn,
        "revoke_policy_before": revoke_before,
    }
    out["objects"] = [
        put_object(prefix + "task.json", dumps(task)),
        put_object(prefix + "task-definition.json", dumps(taskdef)),
    ]
    state["objects"] = out["objects"]
    put_evidence(guard, state)
    return out
