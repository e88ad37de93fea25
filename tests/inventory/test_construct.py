"""The Inventory construct: synthesised in a stack of its own, with cdk-nag, no bundling."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from cdk.inventory import LIST_ACTIONS, Inventory, InventoryConfig
from cdk.nag import add_nag

CORE, MEMBER = "111111111111", "222222222222"


def _synth(config: InventoryConfig) -> dict[str, Any]:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    add_nag(app)
    stack = cdk.Stack(app, "RampartsCore", env=cdk.Environment(account=CORE, region="eu-west-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    table = dynamodb.Table(
        stack,
        "Baseline",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
    )
    findings = dynamodb.Table(
        stack,
        "Findings",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
    )
    bucket = s3.Bucket(
        stack,
        "Evidence",
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption_key=key,
        encryption=s3.BucketEncryption.KMS,
    )
    cdk.Validations.of(bucket).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions-S1", reason="test bucket, no access logs needed")
    )
    bus = events.EventBus(stack, "Bus", event_bus_name="ramparts")
    Inventory(
        stack,
        "Inventory",
        baseline_table=table,
        findings_table=findings,
        bus=bus,
        evidence_bucket=bucket,
        key=key,
        config=config,
    )
    return Template.from_stack(stack).to_json()


def _policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_scheduled_function_with_least_privilege() -> None:
    t = _synth(
        InventoryConfig(
            accounts=(CORE, MEMBER),
            regions=("eu-west-1", "us-east-1"),
            core_account=CORE,
            external_id="ext-1",
            schedule_minutes=120,
        )
    )
    fns = [r for r in t["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(fns) == 1
    props = fns[0]["Properties"]
    assert props["Handler"] == "functions.inventory.handler"
    env = props["Environment"]["Variables"]
    assert env["ACCOUNTS"] == f"{CORE},{MEMBER}" and env["REGIONS"] == "eu-west-1,us-east-1"
    assert env["EXTERNAL_ID"] == "ext-1" and "FINDINGS_TABLE" in env
    assert props["ReservedConcurrentExecutions"] == 1
    rules = [r for r in t["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    assert [r["Properties"]["ScheduleExpression"] for r in rules] == ["rate(2 hours)"]
    stmts = {s.get("Sid"): s for s in _policy(t)}
    assert sorted(stmts["ListWorkloads"]["Action"]) == sorted(LIST_ACTIONS)
    assert stmts["MemberRoles"]["Resource"] == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, f":iam::{MEMBER}:role/ramparts-responder"],
        ]
    }
    assert stmts["Bus"]["Action"] == "events:PutEvents"
    assert stmts["Snapshots"]["Action"] == "s3:PutObject"
    actions = {
        a
        for s in _policy(t)
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert not {
        a for a in actions if a.endswith(":*") or ("Delete" in a and a != "dynamodb:DeleteItem")
    }


def test_single_account_needs_no_assume_role() -> None:
    t = _synth(InventoryConfig(accounts=(CORE,), regions=("eu-west-1",), core_account=CORE))
    assert all(s.get("Sid") != "MemberRoles" for s in _policy(t))


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="schedule_minutes"):
        InventoryConfig(
            accounts=(CORE,), regions=("eu-west-1",), core_account=CORE, schedule_minutes=1
        )
