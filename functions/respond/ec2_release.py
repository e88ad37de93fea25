"""Release EC2 instance: restore exactly what Isolate EC2 instance recorded.

For each applied action of the isolation: the network interfaces' previous security groups
(then the isolation groups are deleted), termination protection's previous value, the Auto
Scaling group membership (``AttachInstances``, which also restores the desired capacity the
detach decremented) and the ``ramparts:contained`` tag's previous value. The session
revocation deny policy on the instance profile's role is kept (see docs/playbooks.md).
"""

from __future__ import annotations

import json
from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import (
    CONTAINED_TAG,
    Guard,
    actions_of,
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
            "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:DeleteSecurityGroup",
            "ec2:ModifyInstanceAttribute",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ),
        (
            "arn:{partition}:ec2:*:*:security-group/*",
            "arn:{partition}:ec2:*:*:network-interface/*",
            "arn:{partition}:ec2:*:*:instance/*",
        ),
    ),
    Permission(
        ("autoscaling:AttachInstances",), ("arn:{partition}:autoscaling:*:*:autoScalingGroup:*",)
    ),
]

ISOLATE = "isolate-ec2"


def restore_plan(finding_id: str) -> list[tuple[str, Any, Any]]:
    done = actions_of(finding_id, ISOLATE)
    plan: list[tuple[str, Any, Any]] = []
    for name, item in sorted(done.items()):
        if name.startswith("isolate#") and item["status"] == "applied":
            plan.append((name, json.loads(item["after"]), json.loads(item["before"])))
    for name in ("termination-protection", "detach-asg", "tag"):
        got = done.get(name)
        if got and got["status"] == "applied":
            plan.append((name, json.loads(got["after"]), json.loads(got["before"])))
    if "revoke" in done and done["revoke"]["status"] == "applied":
        plan.append(("keep-revoke", json.loads(done["revoke"]["after"]), "kept"))
    return plan


@traced("ec2-release")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    session = session_for(guard)
    ec2 = session.client("ec2")
    iid = guard["resource_name"]
    restored = []
    isolation_groups: list[str] = []
    for name, contained, original in restore_plan(guard["finding_id"]):
        if name.startswith("isolate#"):
            eni = name.split("#", 1)[1]
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=original)
            isolation_groups.extend(contained)
        elif name == "termination-protection":
            ec2.modify_instance_attribute(
                InstanceId=iid, DisableApiTermination={"Value": bool(original)}
            )
        elif name == "detach-asg" and original:
            session.client("autoscaling").attach_instances(
                InstanceIds=[iid], AutoScalingGroupName=original
            )
        elif name == "tag":
            if original is None:
                ec2.delete_tags(Resources=[iid], Tags=[{"Key": CONTAINED_TAG}])
            else:
                ec2.create_tags(Resources=[iid], Tags=[{"Key": CONTAINED_TAG, "Value": original}])
        record_action(guard, f"restore-{name}", status="applied", before=contained, after=original)
        restored.append(name)
    for gid in sorted(set(isolation_groups)):
        ec2.delete_security_group(GroupId=gid)
        record_action(guard, f"delete-group#{gid}", status="applied", before=gid, after=None)
    return {"restored": restored}
