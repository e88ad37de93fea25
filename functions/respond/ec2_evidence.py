"""Isolate EC2 instance, step 1: evidence.

Captures the instance's metadata (``DescribeInstances``), its network interfaces and their
security groups, termination protection, Auto Scaling group membership and instance profile
role; snapshots every EBS volume (tagged with the finding); writes the metadata to the
evidence bucket and the actions table (``evidence#isolate-ec2``). In dry-run nothing is
written and no snapshot is taken.
"""

from __future__ import annotations

from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import (
    CONTAINED_TAG,
    REVOKE_POLICY_NAME,
    Guard,
    dumps,
    evidence_prefix,
    existing_inline_policy,
    now_iso,
    put_evidence,
    put_object,
    revoke_policy_document,
    session_for,
    traced,
)

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    KEY_USE,
    MEMBER_ROLE,
    Permission(("s3:PutObject",), ("{evidence_bucket_arn}/evidence/*",)),
    Permission(
        (
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceAttribute",
            "ec2:DescribeSnapshots",
            "autoscaling:DescribeAutoScalingInstances",
        ),
        ("*",),
    ),
    Permission(
        ("ec2:CreateSnapshot", "ec2:CreateTags"),
        ("arn:{partition}:ec2:*:*:volume/*", "arn:{partition}:ec2:*::snapshot/*"),
    ),
    Permission(
        ("iam:GetInstanceProfile", "iam:GetRolePolicy"),
        ("arn:{partition}:iam::*:instance-profile/*", "arn:{partition}:iam::*:role/*"),
    ),
]


def capture(guard: Guard) -> dict[str, Any]:
    session = session_for(guard)
    ec2 = session.client("ec2")
    iid = guard["resource_name"]
    reservations = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    instance = reservations[0]["Instances"][0]
    enis = [
        {
            "id": n["NetworkInterfaceId"],
            "vpc": n.get("VpcId") or instance.get("VpcId"),
            "groups": [g["GroupId"] for g in n.get("Groups", [])],
        }
        for n in instance.get("NetworkInterfaces", [])
    ]
    termination = ec2.describe_instance_attribute(
        InstanceId=iid, Attribute="disableApiTermination"
    )["DisableApiTermination"]["Value"]
    asg_rows = session.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[iid])[
        "AutoScalingInstances"
    ]
    asg = asg_rows[0]["AutoScalingGroupName"] if asg_rows else None
    role_name = ""
    profile_arn = (instance.get("IamInstanceProfile") or {}).get("Arn", "")
    iam = session.client("iam")
    if profile_arn:
        profile = iam.get_instance_profile(InstanceProfileName=profile_arn.rsplit("/", 1)[-1])
        roles = profile["InstanceProfile"].get("Roles", [])
        role_name = roles[0]["RoleName"] if roles else ""
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    return {
        "instance": instance,
        "enis": enis,
        "termination_protection": bool(termination),
        "asg": asg,
        "role_name": role_name,
        "revoke_policy_before": (
            existing_inline_policy(iam, role_name, REVOKE_POLICY_NAME) if role_name else None
        ),
        "tags": tags,
        "volumes": [
            m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m
        ],
    }


def planned(guard: Guard, state: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {"action": f"isolate#{e['id']}", "before": e["groups"], "after": ["(isolation group)"]}
        for e in state["enis"]
    ]
    steps.append(
        {
            "action": "termination-protection",
            "before": state["termination_protection"],
            "after": True,
        }
    )
    if state["asg"]:
        steps.append({"action": "detach-asg", "before": state["asg"], "after": None})
    if state["role_name"]:
        steps.append({"action": "revoke", "before": state["revoke_policy_before"], "after": policy})
    steps.append(
        {"action": "tag", "before": state["tags"].get(CONTAINED_TAG), "after": guard["finding_id"]}
    )
    return steps


@traced("ec2-evidence")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    state = capture(guard)
    revoked_at = now_iso()
    policy = revoke_policy_document(revoked_at)
    out: dict[str, Any] = {
        "instance_id": guard["resource_name"],
        "enis": state["enis"],
        "asg": state["asg"] or "",
        "has_asg": bool(state["asg"]),
        "role_name": state["role_name"],
        "has_role": bool(state["role_name"]),
        "revoked_at": revoked_at,
        "revoke_policy": policy,
        "before": {
            "termination": dumps(state["termination_protection"]),
            "asg": dumps(state["asg"]),
            "revoke": dumps(state["revoke_policy_before"]),
            "tag": dumps(state["tags"].get(CONTAINED_TAG)),
        },
        "objects": [],
    }
    if guard.get("decision") == "dry-run":
        out["planned"] = planned(guard, state, policy)
        return out
    ec2 = session_for(guard).client("ec2")
    snapshots = []
    for vol in state["volumes"]:
        snap = ec2.create_snapshot(
            VolumeId=vol,
            Description=f"Ramparts evidence for finding {guard['finding_id']}",
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": "ramparts:finding", "Value": guard["finding_id"]}],
                }
            ],
        )
        snapshots.append({"volume": vol, "snapshot": snap["SnapshotId"]})
    state["snapshots"] = snapshots
    prefix = evidence_prefix(guard)
    out["objects"] = [put_object(prefix + "instance.json", dumps(state))]
    state["objects"] = out["objects"]
    put_evidence(guard, state)
    out["snapshots"] = snapshots
    return out
