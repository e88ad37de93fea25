"""Contain / release a Lambda function: the synthesized state machines, run in moto."""

from __future__ import annotations

import argparse
import json

import boto3

from ramparts_cli import approve as approve_cli
from tests.playbooks.fixtures import CODE, finding, lambda_state, make_function
from tests.playbooks.harness import ACCOUNT, REGION

REVOKE = "ramparts-revoke-sessions"


def store_finding(h, fid):
    table = boto3.resource("dynamodb", region_name=REGION).Table(h.table("Findings"))
    table.put_item(Item={"pk": f"finding#{fid}", "sk": "finding", "id": fid, "status": "new"})


def finding_item(h, fid):
    table = boto3.resource("dynamodb", region_name=REGION).Table(h.table("Findings"))
    return table.get_item(Key={"pk": f"finding#{fid}", "sk": "finding"})["Item"]


def restorable(state):
    """What release must put back exactly (the deny policy is kept on purpose)."""
    return {k: v for k, v in state.items() if k != "role_policies"}


def actions(h, fid, prefix="action#"):
    return {k: v for k, v in h.items(fid).items() if k.startswith(prefix)}


def cli(*argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    approve_cli.register(sub)
    args = parser.parse_args([*argv, "--region", REGION])
    return args.func(args)


def test_contain_release_and_rerun(h):
    a = make_function(h, "victim-a")
    make_function(h, "victim-b")
    before_a, before_b = lambda_state(h, "victim-a"), lambda_state(h, "victim-b")
    store_finding(h, "f-a")
    event = finding(a["arn"], "AwsLambdaFunction", fid="f-a")

    started = h.publish(event)
    assert len(started) == 1  # routed by the rule, to the contain-lambda machine only
    assert (
        ":stateMachine:PlaybooksPlaybookcontainlambda"
        in h.c["stepfunctions"].describe_execution(executionArn=started[0])["stateMachineArn"]
    )
    assert h.wait(started[0])["status"] == "SUCCEEDED"

    contained = lambda_state(h, "victim-a")
    assert contained["concurrency"] == 0
    assert contained["url"] is None
    assert [s["Sid"] for s in contained["statements"]] == ["FromS3"]  # narrowed one kept
    assert contained["tags"] == {"team": "payments", "ramparts:contained": "f-a"}
    assert contained["role_policies"] == [REVOKE]
    assert contained["code_sha"] == before_a["code_sha"]
    doc = h.c["iam"].get_role_policy(RoleName=a["role"], PolicyName=REVOKE)["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    (stmt,) = doc["Statement"]
    assert stmt["Effect"] == "Deny" and stmt["Action"] == "*" and stmt["Resource"] == "*"
    issued = stmt["Condition"]["DateLessThan"]["aws:TokenIssueTime"]

    # evidence: S3 objects (configuration + a copy of the code package) and the evidence item
    s3 = h.c["s3"]
    bucket = h.refs[next(k for k in h.refs if k.startswith("Evidence"))]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [
        "evidence/f-a/contain-lambda/code.zip",
        "evidence/f-a/contain-lambda/function.json",
    ]
    assert s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read() == CODE
    captured = json.loads(s3.get_object(Bucket=bucket, Key=keys[1])["Body"].read())
    assert captured["reserved_concurrency"] == 7
    assert captured["url"]["AuthType"] == "NONE"
    assert captured["code_sha256"] == before_a["code_sha"]
    assert {s["Sid"] for s in captured["policy"]["Statement"]} == {
        "FromS3",
        "AnyoneInvoke",
        "FunctionURLAllowPublicAccess",
    }
    assert "Layers" in captured["configuration"] or captured["layers"] == []
    items = h.items("f-a")
    assert json.loads(items["evidence#contain-lambda"]["evidence"])["code_copy"]["size"] == len(
        CODE
    )

    # the actions, with before/after
    acts = actions(h, "f-a")
    assert set(acts) == {
        "action#contain-lambda#tag",
        "action#contain-lambda#concurrency",
        "action#contain-lambda#url",
        "action#contain-lambda#revoke",
        "action#contain-lambda#remove-statement#AnyoneInvoke",
        "action#contain-lambda#remove-statement#FunctionURLAllowPublicAccess",
    }
    assert (
        acts["action#contain-lambda#concurrency"]["before"],
        acts["action#contain-lambda#concurrency"]["after"],
    ) == ("7", "0")
    assert json.loads(acts["action#contain-lambda#url"]["before"])["Cors"] == {
        "AllowOrigins": ["https://example.com"]
    }
    assert json.loads(acts["action#contain-lambda#revoke"]["before"]) is None
    assert issued in json.loads(acts["action#contain-lambda#revoke"]["after"])
    for item in acts.values():
        assert item["status"] == "applied"
        assert item["resource"] == a["arn"]
        assert item["finding_id"] == "f-a"
        assert int(item["expires_at"]) > 0
    assert items["response#contain-lambda"]["status"] == "applied"
    assert finding_item(h, "f-a")["response"]["status"] == "applied"

    # function B was never touched
    assert lambda_state(h, "victim-b") == before_b

    # the same finding again: nothing changes, nothing is recorded twice
    snapshot = h.items("f-a")
    again = h.publish(event)
    assert h.wait(again[0])["status"] == "SUCCEEDED"
    assert lambda_state(h, "victim-a") == contained
    assert h.items("f-a") == snapshot

    # release: everything restored exactly, the deny policy kept
    assert h.run("release-lambda", event)["status"] == "SUCCEEDED"
    released = lambda_state(h, "victim-a")
    url_before = dict(before_a["url"])
    assert released["url"] == url_before
    assert restorable(released) == restorable(before_a)
    assert released["role_policies"] == [REVOKE]
    rel = actions(h, "f-a", "action#release-lambda#")
    assert "action#release-lambda#restore-concurrency" in rel
    assert json.loads(rel["action#release-lambda#restore-concurrency"]["after"]) == 7
    assert rel["action#release-lambda#restore-keep-revoke"]["after"] == '"kept"'
    items = h.items("f-a")
    assert items["response#release-lambda"]["status"] == "released"
    assert items["response#contain-lambda"]["status"] == "released"
    assert finding_item(h, "f-a")["response"]["status"] == "released"
    assert lambda_state(h, "victim-b") == before_b

    # release twice, contain again after release: nothing changes
    snapshot = h.items("f-a")
    assert h.run("release-lambda", event)["status"] == "SUCCEEDED"
    assert h.wait(h.publish(event)[0])["status"] == "SUCCEEDED"
    assert lambda_state(h, "victim-a") == released
    assert h.items("f-a") == snapshot


def test_release_restores_absent_concurrency_and_no_url(h):
    a = make_function(h, "plain", url=False, concurrency=None)
    before = lambda_state(h, "plain")
    event = finding(a["arn"], "AwsLambdaFunction", fid="f-plain")
    assert h.wait(h.publish(event)[0])["status"] == "SUCCEEDED"
    assert lambda_state(h, "plain")["concurrency"] == 0
    assert "action#contain-lambda#url" not in h.items("f-plain")
    assert h.run("release-lambda", event)["status"] == "SUCCEEDED"
    assert restorable(lambda_state(h, "plain")) == restorable(before)
    assert lambda_state(h, "plain")["concurrency"] is None


def test_dry_run_changes_nothing_and_records_would_do(h):
    h.set_config(modes={"contain-lambda": "dry-run"})
    a = make_function(h, "victim-dry")
    before = lambda_state(h, "victim-dry")
    event = finding(a["arn"], "AwsLambdaFunction", fid="f-dry")
    assert h.wait(h.publish(event)[0])["status"] == "SUCCEEDED"
    assert lambda_state(h, "victim-dry") == before
    items = h.items("f-dry")
    plan = {k: v for k, v in items.items() if k.startswith("plan#")}
    assert {v["action"] for v in plan.values()} == {
        "tag",
        "concurrency",
        "url",
        "revoke",
        "remove-statement#AnyoneInvoke",
        "remove-statement#FunctionURLAllowPublicAccess",
    }
    assert all(v["status"] == "would-do" for v in plan.values())
    assert json.loads(plan["plan#contain-lambda#concurrency"]["before"]) == 7
    assert not actions(h, "f-dry")
    assert items["response#contain-lambda"]["status"] == "dry-run"
    bucket = h.refs[next(k for k in h.refs if k.startswith("Evidence"))]
    assert h.c["s3"].list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    # twice: still nothing changed, no duplicate
    assert h.wait(h.publish(event)[0])["status"] == "SUCCEEDED"
    assert lambda_state(h, "victim-dry") == before
    assert {k for k in h.items("f-dry") if k.startswith("plan#")} == set(plan)


def test_exempt_resource_is_skipped(h):
    a = make_function(h, "exempt-fn", tags={"ramparts:exempt": "true"})
    before = lambda_state(h, "exempt-fn")
    event = finding(a["arn"], "AwsLambdaFunction", fid="f-ex")
    assert h.wait(h.publish(event)[0])["status"] == "SUCCEEDED"
    assert lambda_state(h, "exempt-fn") == before
    items = h.items("f-ex")
    assert items["response#contain-lambda"]["status"] == "skipped"
    assert "ramparts:exempt" in items["response#contain-lambda"]["reason"]
    assert items["action#contain-lambda#guardrails"]["status"] == "skipped"
    assert set(items) == {"response#contain-lambda", "action#contain-lambda#guardrails"}


def test_out_of_scope_and_foreign_resources_are_skipped(h):
    a = make_function(h, "scoped")
    before = lambda_state(h, "scoped")
    # another region than configured
    other_region = finding(
        a["arn"].replace(REGION, "us-east-1"),
        "AwsLambdaFunction",
        fid="f-region",
        region="us-east-1",
    )
    # an account that is not configured
    other_account = finding(
        a["arn"].replace(ACCOUNT, "999999999999"),
        "AwsLambdaFunction",
        fid="f-account",
        account="999999999999",
    )
    # a finding whose resource ARN is in another account than the finding
    mismatch = finding(a["arn"], "AwsLambdaFunction", fid="f-mismatch", account="210987654321")
    for event, fid in (
        (other_region, "f-region"),
        (other_account, "f-account"),
        (mismatch, "f-mismatch"),
    ):
        assert h.run("contain-lambda", event)["status"] == "SUCCEEDED"
        assert h.items(fid)["response#contain-lambda"]["status"] == "skipped"
    assert lambda_state(h, "scoped") == before


def test_routing_by_severity_type_and_resource(h):
    a = make_function(h, "routed")
    low = finding(a["arn"], "AwsLambdaFunction", fid="f-low", severity=3)
    assert h.publish(low) == []
    ec2 = finding("i-0123456789abcdef0", "AwsEc2Instance", fid="f-ec2")
    (started,) = h.publish(ec2)
    assert ":PlaybooksPlaybookisolateec2" in started
    h.wait(started)


def test_circuit_breaker_waits_for_approval_then_approve(h):
    fns = [make_function(h, f"burst-{i}") for i in range(4)]
    for i, f in enumerate(fns[:3]):
        assert (
            h.wait(h.publish(finding(f["arn"], "AwsLambdaFunction", fid=f"f-b{i}"))[0])["status"]
            == "SUCCEEDED"
        )
        assert lambda_state(h, f"burst-{i}")["concurrency"] == 0
    h.notifications()
    before = lambda_state(h, "burst-3")
    (arn,) = h.publish(finding(fns[3]["arn"], "AwsLambdaFunction", fid="f-b3"))
    token, note = h.wait_for_token()
    assert token in note["Message"] and "ramparts approve" in note["Message"]
    assert h.c["stepfunctions"].describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert lambda_state(h, "burst-3") == before
    status = h.items("f-b3")["response#contain-lambda"]
    assert status["status"] == "awaiting-approval" and "circuit breaker" in status["reason"]
    assert cli("approve", token, "--by", "alice@example.com") == 0
    assert h.wait(arn)["status"] == "SUCCEEDED"
    assert lambda_state(h, "burst-3")["concurrency"] == 0
    done = h.items("f-b3")["response#contain-lambda"]
    assert done["status"] == "applied" and done["decision"] == "approval"
    assert done["approval"]["decision"] == "approved"
    assert done["approval"]["by"] == "alice@example.com"
    assert done["approval"]["at"].endswith("Z")


def test_approval_mode_deny(h):
    h.set_config(modes={"contain-lambda": "approval"})
    a = make_function(h, "denied-fn")
    before = lambda_state(h, "denied-fn")
    (arn,) = h.publish(finding(a["arn"], "AwsLambdaFunction", fid="f-deny"))
    token, _ = h.wait_for_token()
    assert cli("deny", token, "--reason", "known deploy script", "--by", "bob") == 0
    assert h.wait(arn)["status"] == "SUCCEEDED"
    assert lambda_state(h, "denied-fn") == before
    status = h.items("f-deny")["response#contain-lambda"]
    assert status["status"] == "denied"
    assert "Ramparts.Denied" in status["reason"]
    # who denied, and why, ride in the task failure's Cause, which moto drops; the record
    # made from the Cause Step Functions passes is tested in test_status.py
    assert not actions(h, "f-deny")


def test_a_used_token_is_an_error(h):
    h.set_config(modes={"contain-lambda": "approval"})
    a = make_function(h, "twice-fn")
    (arn,) = h.publish(finding(a["arn"], "AwsLambdaFunction", fid="f-twice"))
    token, _ = h.wait_for_token()
    assert cli("approve", token) == 0
    assert h.wait(arn)["status"] == "SUCCEEDED"
    import pytest

    from ramparts_cli.errors import CliError

    with pytest.raises(CliError, match="unknown, already used or expired"):
        cli("approve", token)


def test_failed_containment_is_recorded_and_can_be_released(h, monkeypatch):
    from functions.respond import lambda_policy

    def broken(event, context=None):
        raise RuntimeError("RemovePermission throttled")

    monkeypatch.setattr(lambda_policy, "handler", broken)
    a = make_function(h, "half")
    before = lambda_state(h, "half")
    event = finding(a["arn"], "AwsLambdaFunction", fid="f-half")
    h.notifications()
    assert h.wait(h.publish(event)[0])["status"] == "FAILED"
    status = h.items("f-half")["response#contain-lambda"]
    assert status["status"] == "failed" and "RemovePermission throttled" in status["reason"]
    assert any("failed" in n["Subject"] for n in h.notifications())
    half = lambda_state(h, "half")
    assert half["concurrency"] == 0 and half["url"] is None  # applied before the failure
    assert half["role_policies"] == []  # never reached
    assert h.run("release-lambda", event)["status"] == "SUCCEEDED"
    assert lambda_state(h, "half") == before


def test_several_findings_on_one_function_contain_it_once(h):
    a = make_function(h, "victim-a")
    for fid in ("f-1", "f-2", "f-3"):
        store_finding(h, fid)
    assert (
        h.run("contain-lambda", finding(a["arn"], "AwsLambdaFunction", fid="f-1"))["status"]
        == "SUCCEEDED"
    )
    # a second finding on the same function while it is contained: recorded, not acted on
    assert (
        h.run("contain-lambda", finding(a["arn"], "AwsLambdaFunction", fid="f-2"))["status"]
        == "SUCCEEDED"
    )
    second = h.items("f-2")
    assert second["response#contain-lambda"]["status"] == "skipped"
    assert "already being handled for finding f-1" in second["response#contain-lambda"]["reason"]
    # nothing done for f-2: its only action item is the guardrails' skip
    assert [(k, v["status"]) for k, v in actions(h, "f-2").items()] == [
        ("action#contain-lambda#guardrails", "skipped")
    ]
    assert lambda_state(h, "victim-a")["tags"]["ramparts:contained"] == "f-1"
    # once f-1's containment is released, a new finding contains the function again
    assert (
        h.run("release-lambda", finding(a["arn"], "AwsLambdaFunction", fid="f-1"))["status"]
        == "SUCCEEDED"
    )
    assert lambda_state(h, "victim-a")["concurrency"] == 7  # restored
    assert (
        h.run("contain-lambda", finding(a["arn"], "AwsLambdaFunction", fid="f-3"))["status"]
        == "SUCCEEDED"
    )
    assert lambda_state(h, "victim-a")["concurrency"] == 0
    assert lambda_state(h, "victim-a")["tags"]["ramparts:contained"] == "f-3"
