"""The Vulns construct synthesised in a small stack: functions, schedules, least privilege."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from cdk.vulns import Vulns, VulnsConfig

CORE, MEMBER, REGION = "111111111111", "222222222222", "eu-west-1"


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "VulnsTest", env=cdk.Environment(account=CORE, region=REGION))
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Bucket", encryption_key=key)

    def table(name: str) -> dynamodb.Table:
        return dynamodb.Table(
            stack,
            name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        )

    Vulns(
        stack,
        "Vulns",
        bucket=bucket,
        key=key,
        bus=events.EventBus(stack, "Bus", event_bus_name="ramparts"),
        baseline_table=table("Baseline"),
        findings_table=table("Findings"),
        config=VulnsConfig(
            accounts=(CORE, MEMBER), regions=(REGION,), update_minutes=120, scan_minutes=720
        ),
    )
    return assertions.Template.from_stack(stack)


def _policy_of(template: assertions.Template, role_prefix: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    found = [
        p for p in policies.values() if p["Properties"]["Roles"][0]["Ref"].startswith(role_prefix)
    ]
    assert len(found) == 1
    return found[0]["Properties"]["PolicyDocument"]["Statement"]


def _flat(resource: Any) -> Any:
    """A Fn::Join of literals and the partition, as the text it becomes in the aws partition."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        sep, parts = resource["Fn::Join"]
        return sep.join(
            "aws"
            if p == {"Ref": "AWS::Partition"}
            else f"<{p['Fn::GetAtt'][0]}.Arn>"
            if isinstance(p, dict) and "Fn::GetAtt" in p
            else _flat(p)
            for p in parts
        )
    if isinstance(resource, list):
        return [_flat(r) for r in resource]
    return resource


def test_two_functions_on_their_schedules(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "functions.osv_update.handler",
            "Runtime": "python3.13",
            "Timeout": 300,
            "Environment": {
                "Variables": assertions.Match.object_like({"ADVISORY_PREFIX": "advisories/pypi/"})
            },
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "functions.vulnscan.handler",
            "Timeout": 900,
            "ReservedConcurrentExecutions": 1,
            "Environment": {
                "Variables": assertions.Match.object_like(
                    {
                        "SCAN_ACCOUNTS": f"{CORE},{MEMBER}",
                        "SCAN_REGIONS": REGION,
                        "RESPONDER_ROLE_NAME": "ramparts-responder",
                    }
                )
            },
        },
    )
    rules = template.find_resources("AWS::Events::Rule")
    assert sorted(r["Properties"]["ScheduleExpression"] for r in rules.values()) == [
        "rate(12 hours)",
        "rate(2 hours)",
    ]


def test_updater_writes_the_advisories_prefix_only(template: assertions.Template) -> None:
    statements = _policy_of(template, "VulnsOsvUpdateRole")
    s3_statement = next(s for s in statements if s["Sid"] == "Advisories")
    assert s3_statement["Action"] == ["s3:GetObject", "s3:PutObject"]
    resource = s3_statement["Resource"]["Fn::Join"][1]
    assert resource[-1] == "/advisories/*"
    assert {s["Sid"] for s in statements} == {"Advisories", "Key", "OwnLogGroupOnly"}


def test_scanner_permissions_are_read_only_and_scoped(template: assertions.Template) -> None:
    statements = {
        s["Sid"]: {**s, "Resource": _flat(s["Resource"])}
        for s in _policy_of(template, "VulnsVulnScanRole")
    }
    assert statements["Advisories"]["Action"] == "s3:GetObject"
    assert statements["Advisories"]["Resource"].endswith(".Arn>/advisories/*")
    assert statements["ReadFunctions"]["Resource"] == f"arn:aws:lambda:{REGION}:{CORE}:function:*"
    assert statements["ReadRoles"]["Resource"] == f"arn:aws:iam::{CORE}:role/*"
    assert statements["MemberAccounts"] == {
        "Sid": "MemberAccounts",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": f"arn:aws:iam::{MEMBER}:role/ramparts-responder",
    }
    wildcard = sorted(s["Sid"] for s in statements.values() if s["Resource"] == "*")
    assert wildcard == ["InspectorFindings", "ListFunctions"]
    writes = [
        a
        for s in statements.values()
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if not a.split(":")[1].startswith(("Get", "List"))
    ]
    assert sorted(writes) == sorted(
        [
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "events:PutEvents",
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "sts:AssumeRole",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ]
    )


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="scan_minutes"):
        VulnsConfig(accounts=(CORE,), regions=(REGION,), scan_minutes=1)
