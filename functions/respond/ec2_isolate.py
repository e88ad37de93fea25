"""Isolate EC2 instance: one isolation security group per network interface.

For each network interface the evidence step listed, a security group named
``ramparts-isolation-<eni id>`` in the interface's VPC with no inbound and no outbound rule
(reused when it already exists), which then replaces the interface's groups. Each interface
is an action (``isolate#<eni id>``) whose before-state is its previous groups.

New connections are blocked at once; connections already tracked by the security group keep
flowing until they close (an AWS property of security groups; see docs/playbooks.md).
"""

from __future__ import annotations

from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import Guard, record_action, session_for, traced

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    KEY_USE,
    MEMBER_ROLE,
    Permission(("ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"), ("*",)),
    Permission(
        (
            "ec2:CreateSecurityGroup",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:CreateTags",
            "ec2:ModifyNetworkInterfaceAttribute",
        ),
        (
            "arn:{partition}:ec2:*:*:security-group/*",
            "arn:{partition}:ec2:*:*:vpc/*",
            "arn:{partition}:ec2:*:*:network-interface/*",
            "arn:{partition}:ec2:*:*:instance/*",
        ),
    ),
]

ALL_TRAFFIC = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


def isolation_group_name(eni_id: str) -> str:
    return f"ramparts-isolation-{eni_id}"


def isolation_group(ec2: Any, eni_id: str, vpc_id: str, finding_id: str) -> str:
    name = isolation_group_name(eni_id)
    found = ec2.describe_security_groups(
        Filters=[
            {"Name": "group-name", "Values": [name]},
            {"Name": "vpc-id", "Values": [vpc_id]},
        ]
    )["SecurityGroups"]
    if found:
        gid: str = found[0]["GroupId"]
        return gid
    gid = ec2.create_security_group(
        GroupName=name,
        Description="Ramparts isolation: no inbound, no outbound",
        VpcId=vpc_id,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [
                    {"Key": "ramparts:finding", "Value": finding_id},
                    {"Key": "ramparts:isolates", "Value": eni_id},
                    # the member role may revoke egress of, and delete, only these groups
                    {"Key": "ramparts:isolation", "Value": "true"},
                ],
            }
        ],
    )["GroupId"]
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=ALL_TRAFFIC)
    return gid


@traced("ec2-isolate")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    enis: list[dict[str, Any]] = event["evidence"]["enis"]
    ec2 = session_for(guard).client("ec2")
    out = []
    for eni in enis:
        # the interface must still belong to the finding's instance
        live = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["id"]])
        attached = (live["NetworkInterfaces"][0].get("Attachment") or {}).get("InstanceId")
        if attached != guard["resource_name"]:
            raise ValueError(f"{eni['id']} is no longer attached to {guard['resource_name']}")
        gid = isolation_group(ec2, eni["id"], eni["vpc"], guard["finding_id"])
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["id"], Groups=[gid])
        record_action(
            guard, f"isolate#{eni['id']}", status="applied", before=eni["groups"], after=[gid]
        )
        out.append({"eni": eni["id"], "group": gid})
    return {"isolated": out}
