"""The ingest function end to end against moto: deliveries in, findings stored and published."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from collectors.model import DetectionFinding
from collectors.rules.engine import HIGH, Hit, Registry, Rule, builtin
from functions import ingest
from functions.ingest import TransientError
from tests.functions.conftest import (
    ACCOUNT,
    FUNCTION_ARN,
    REGION,
    T0,
    Aws,
    LambdaContext,
    blocked_connect,
    cw_payload,
    encode,
    kinesis_record,
    sqs_record,
    subscription_event,
)
from tests.ocsf import validate_ocsf

SAMPLES = Path(__file__).resolve().parents[1] / "collectors" / "samples"
GD_ACCOUNT = "111122223333"
CTX = LambdaContext()


def _guardduty_rule(event: DetectionFinding, ctx: Any) -> Hit:
    return Hit(key=event.finding_info.types[0] if event.finding_info.types else "guardduty")


GUARDDUTY_RULE = Rule(
    id="test.guardduty-finding",
    title="GuardDuty reported a threat to a workload",
    severity=HIGH,
    techniques=("T1496",),
    sources=frozenset({"guardduty"}),
    classes=frozenset({DetectionFinding.CLASS_UID}),
    func=_guardduty_rule,
)


def registry() -> Registry:
    """The finished layer rules, plus a GuardDuty rule of the tests' own."""
    reg = builtin().only(["layer.blocked", "layer.sensor-finding"])
    reg.add(GUARDDUTY_RULE)
    return reg


def guardduty(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / "guardduty" / name).read_text())
    return data


def findings_by_rule(aws: Aws, rule_id: str) -> list[dict[str, Any]]:
    return [i for i in aws.finding_items() if i["rule_id"] == rule_id]


# -- CloudWatch Logs subscriptions ---------------------------------------------------------------
def test_subscription_event_stores_and_publishes_a_valid_finding(aws: Aws) -> None:
    app = aws.build(registry())
    out = app.handle(subscription_event([blocked_connect(8, T0)]), CTX)
    assert out["events"] == 1 and out["created"] == 1 and out["rejects"] == 0

    [item] = aws.finding_items()
    assert item["rule_id"] == "layer.blocked"
    assert item["count"] == 1
    assert item["resource"]["uid"] == FUNCTION_ARN
    assert item["account"] == ACCOUNT and item["region"] == REGION
    assert "publish_change" not in item  # the publication was confirmed

    [event] = aws.published()
    assert event["source"] == "ramparts"
    assert event["detail-type"] == "Ramparts Finding"
    assert event["resources"] == [FUNCTION_ARN]
    detail = event["detail"]
    assert validate_ocsf(detail) == []
    assert detail["class_uid"] == 2004
    assert detail["finding_info"]["uid"] == item["id"]
    assert detail["count"] == 1
    assert aws.dead_letters() == []


def test_the_same_event_delivered_twice_counts_once_and_publishes_once(aws: Aws) -> None:
    app = aws.build(registry())
    event = subscription_event([blocked_connect(8, T0), blocked_connect(9, T0 + 5)])
    app.handle(event, CTX)
    assert len(aws.published()) == 1
    again = app.handle(copy.deepcopy(event), CTX)
    assert again["created"] == 0 and again["updated"] == 0
    [item] = aws.finding_items()
    assert item["count"] == 2
    assert aws.published() == []
    # a fresh sandbox (another concurrent instance) sees the same thing
    aws.build(registry()).handle(copy.deepcopy(event), CTX)
    assert aws.finding_items()[0]["count"] == 2
    assert aws.published() == []


def test_repeats_merge_and_are_published_again_once_per_window(aws: Aws) -> None:
    app = aws.build(registry())
    app.handle(subscription_event([blocked_connect(8, T0), blocked_connect(9, T0 + 1000)]), CTX)
    app.handle(subscription_event([blocked_connect(10, T0 + 2000)]), CTX)
    [item] = aws.finding_items()
    assert item["count"] == 3
    [first] = aws.published()
    assert first["detail"]["activity_id"] == DetectionFinding.CREATE
    assert aws.published() == []  # within the window: merged, not published again

    later = T0 + 301_000  # past the rule's 300 s window
    out = app.handle(subscription_event([blocked_connect(11, later)]), CTX)
    assert out["updated"] == 1
    [update] = aws.published()
    assert update["detail"]["activity_id"] == DetectionFinding.UPDATE
    assert update["detail"]["count"] == 4
    assert validate_ocsf(update["detail"]) == []
    assert update["detail"]["finding_info"]["uid"] == item["id"]


def test_a_bad_log_event_is_dead_lettered_and_the_rest_processed(aws: Aws) -> None:
    app = aws.build(registry())
    payload = cw_payload([blocked_connect(8, T0)])
    payload["logEvents"].append({"id": "x", "timestamp": T0, "message": 42})
    out = app.handle({"awslogs": {"data": encode(payload)}}, CTX)
    assert out["created"] == 1 and out["dead_lettered"] == 1
    [dead] = aws.dead_letters()
    assert dead["source"] == "cloudwatch-logs"
    assert dead["where"] == "logEvents[1]"
    assert "not text" in dead["reason"]
    assert dead["origin"]["delivery"] == "cloudwatch-logs"


# -- SQS -----------------------------------------------------------------------------------------
class FailingDynamo:
    """A DynamoDB client whose transaction writes fail (throttled) when they mention ``needle``."""

    def __init__(self, client: Any, needle: str) -> None:
        self.client = client
        self.needle = needle
        self.failures = 0

    def transact_write_items(self, **kw: Any) -> Any:
        if self.needle in json.dumps(kw):
            self.failures += 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "TransactWriteItems",
            )
        return self.client.transact_write_items(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_sqs_batch_poison_good_and_transient(aws: Aws) -> None:
    app = aws.build(registry(), member_accounts=frozenset({GD_ACCOUNT}))
    store = app.pipeline.store
    real = store.client  # type: ignore[attr-defined]
    store.client = FailingDynamo(real, "i-0a1b2c3d4e5f60718")  # type: ignore[attr-defined]
    lambda_gd = guardduty("lambda-bitcoin-tool.json")
    ec2_gd = guardduty("ec2-runtime-reverse-shell.json")
    assert "i-0a1b2c3d4e5f60718" in json.dumps(ec2_gd)
    event = {
        "Records": [
            sqs_record("{this is not json", "m-poison"),
            sqs_record(json.dumps(lambda_gd), "m-good"),
            sqs_record(json.dumps(ec2_gd), "m-transient"),
        ]
    }
    out = app.handle(event, CTX)
    assert out == {"batchItemFailures": [{"itemIdentifier": "m-transient"}]}

    [dead] = aws.dead_letters()
    assert dead["origin"]["messageId"] == "m-poison"
    assert dead["origin"]["delivery"] == "sqs"
    assert "not JSON" in dead["reason"]
    assert dead["record"].startswith("{this is not json")
    assert dead["where"] == "body"

    [good] = findings_by_rule(aws, GUARDDUTY_RULE.id)
    assert "thumbnailer" in good["resource"]["uid"]
    assert good["account"] == GD_ACCOUNT
    [published] = aws.published()
    assert validate_ocsf(published["detail"]) == []

    # the retry of the transient message alone, once DynamoDB recovers
    store.client = real  # type: ignore[attr-defined]
    out = app.handle({"Records": [sqs_record(json.dumps(ec2_gd), "m-transient")]}, CTX)
    assert out == {"batchItemFailures": []}
    assert len(findings_by_rule(aws, GUARDDUTY_RULE.id)) == 2
    assert len(aws.published()) == 1
    assert aws.dead_letters() == []


def test_sqs_eventbridge_event_from_an_unknown_account_is_dead_lettered(aws: Aws) -> None:
    app = aws.build(registry())  # no member accounts: 111122223333 is a stranger
    out = app.handle(
        {"Records": [sqs_record(json.dumps(guardduty("lambda-bitcoin-tool.json")), "m1")]}, CTX
    )
    assert out == {"batchItemFailures": []}
    assert aws.finding_items() == []
    [dead] = aws.dead_letters()
    assert "neither this account nor a configured member account" in dead["reason"]
    assert dead["source"] == "aws.guardduty"


def test_sqs_json_lines_body_of_sensor_lines(aws: Aws) -> None:
    """A forwarder's body of raw sensor lines: processed, but no function can be trusted."""
    app = aws.build(registry())
    body = "\n".join([blocked_connect(1, T0), blocked_connect(2, T0 + 1), "garbage"])
    out = app.handle({"Records": [sqs_record(body, "m1")]}, CTX)
    assert out == {"batchItemFailures": []}
    [item] = aws.finding_items()
    assert item["count"] == 2
    assert not item["resource"]["uid"].startswith("arn:")  # identity is never taken from lines
    [dead] = aws.dead_letters()
    assert dead["where"].startswith("body.line 3")


def test_dead_letter_queue_unreachable_fails_the_item(aws: Aws) -> None:
    missing = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/no-such-queue"
    app = aws.build(registry(), dlq_url=missing)
    event = {
        "Records": [
            sqs_record("not json at all", "m-poison"),
            sqs_record(json.dumps(blocked_connect(3, T0)), "m-ok"),
        ]
    }
    out = app.handle(event, CTX)
    assert out == {"batchItemFailures": [{"itemIdentifier": "m-poison"}]}
    # asynchronous delivery: the invocation fails, Lambda retries it
    payload = cw_payload([blocked_connect(8, T0)])
    payload["logEvents"].append({"id": "x", "timestamp": T0, "message": 42})
    with pytest.raises(TransientError, match="dead-letter queue"):
        app.handle({"awslogs": {"data": encode(payload)}}, CTX)


def test_publish_failure_is_retried_and_published_on_redelivery(aws: Aws) -> None:
    event = {"Records": [sqs_record(json.dumps(guardduty("lambda-bitcoin-tool.json")), "m1")]}
    app_cfg = {"member_accounts": frozenset({GD_ACCOUNT})}
    broken = aws.build(registry(), event_bus_name="no-such-bus", **app_cfg)
    assert broken.handle(copy.deepcopy(event), CTX) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }
    [item] = aws.finding_items()
    assert item["publish_change"] == "created"  # stored, publication pending
    fixed = aws.build(registry(), **app_cfg)
    assert fixed.handle(copy.deepcopy(event), CTX) == {"batchItemFailures": []}
    [published] = aws.published()
    assert published["detail"]["activity_id"] == DetectionFinding.CREATE
    [item] = aws.finding_items()
    assert item["count"] == 1 and "publish_change" not in item
    fixed.handle(copy.deepcopy(event), CTX)
    assert aws.published() == []


# -- Kinesis -------------------------------------------------------------------------------------
def test_kinesis_records_with_cloudwatch_payloads_and_raw_records(aws: Aws) -> None:
    import gzip

    app = aws.build(registry(), member_accounts=frozenset({GD_ACCOUNT}))
    cw = gzip.compress(json.dumps(cw_payload([blocked_connect(8, T0)])).encode(), mtime=0)
    cw2 = gzip.compress(json.dumps(cw_payload([blocked_connect(9, T0 + 7)])).encode(), mtime=0)
    raw = json.dumps(guardduty("lambda-bitcoin-tool.json")).encode()
    event = {
        "Records": [
            kinesis_record(cw, "49590338271490256608559692538361571095921575989136588801"),
            kinesis_record(cw2, "49590338271490256608559692538361571095921575989136588802"),
            kinesis_record(raw, "49590338271490256608559692538361571095921575989136588803"),
            kinesis_record(
                b"\x1f\x8bnot really gzip",
                "49590338271490256608559692538361571095921575989136588804",
            ),
        ]
    }
    out = app.handle(event, CTX)
    assert out == {"batchItemFailures": []}
    [layer] = findings_by_rule(aws, "layer.blocked")
    assert layer["count"] == 2 and layer["resource"]["uid"] == FUNCTION_ARN
    assert len(findings_by_rule(aws, GUARDDUTY_RULE.id)) == 1
    assert len(aws.published()) == 2
    [dead] = aws.dead_letters()
    assert dead["origin"]["sequenceNumber"].endswith("804")
    assert "gzip" in dead["reason"]


# -- EventBridge, delivered directly ------------------------------------------------------------
def test_direct_eventbridge_guardduty_event(aws: Aws) -> None:
    app = aws.build(registry(), member_accounts=frozenset({GD_ACCOUNT}))
    out = app.handle(guardduty("lambda-bitcoin-tool.json"), CTX)
    assert out["created"] == 1
    [item] = aws.finding_items()
    assert item["resource"]["uid"] == f"arn:aws:lambda:us-east-1:{GD_ACCOUNT}:function:thumbnailer"
    [event] = aws.published()
    assert event["resources"] == [item["resource"]["uid"]]
    assert validate_ocsf(event["detail"]) == []


def test_direct_eventbridge_transient_failure_raises(aws: Aws) -> None:
    app = aws.build(registry(), member_accounts=frozenset({GD_ACCOUNT}))
    store = app.pipeline.store
    store.client = FailingDynamo(store.client, "finding#")  # type: ignore[attr-defined]
    with pytest.raises(TransientError, match="ProvisionedThroughputExceeded"):
        app.handle(guardduty("lambda-bitcoin-tool.json"), CTX)
    assert aws.dead_letters() == []


# -- exports -------------------------------------------------------------------------------------
def test_security_hub_and_sns_exports(aws: Aws) -> None:
    app = aws.build(
        registry(),
        security_hub_export=True,
        alert_topic_arn=aws.topic_arn,
        alert_min_severity=HIGH,
    )
    app.handle(subscription_event([blocked_connect(8, T0)]), CTX)
    [item] = aws.finding_items()
    hub = aws.client("securityhub").get_findings()["Findings"]
    [finding] = [f for f in hub if f["Id"] == item["id"]]
    assert finding["GeneratorId"] == "layer.blocked"
    assert finding["AwsAccountId"] == ACCOUNT
    assert finding["ProductArn"] == (
        f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    )
    assert finding["Types"] == ["TTPs/Initial Access"]  # T1190
    assert finding["Severity"]["Label"] == "HIGH"
    assert finding["Resources"][0] == {
        "Type": "AwsLambdaFunction",
        "Id": FUNCTION_ARN,
        "Partition": "aws",
        "Region": REGION,
        "Tags": {"Name": "orders-dashboard"},
    }
    assert finding["ProductFields"]["ramparts/count"] == "1"
    [note] = aws.drain(aws.alerts_url)
    assert note["Subject"].startswith("[Ramparts HIGH] Ramparts blocked an operation")
    assert FUNCTION_ARN in note["Message"]
    # a merged repeat is not alerted again
    app.handle(subscription_event([blocked_connect(9, T0 + 10)]), CTX)
    assert aws.drain(aws.alerts_url) == []


def test_sns_alerts_only_at_or_above_the_minimum_severity(aws: Aws) -> None:
    app = aws.build(registry(), alert_topic_arn=aws.topic_arn, alert_min_severity=5)
    app.handle(subscription_event([blocked_connect(8, T0)]), CTX)
    assert len(aws.published()) == 1
    assert aws.drain(aws.alerts_url) == []


# -- tuning --------------------------------------------------------------------------------------
def test_bad_tuning_file_still_ingests_untuned_and_says_so(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(
        Bucket="ramparts-config", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_object(Bucket="ramparts-config", Key="tuning.yaml", Body=b"disable: [no.such-rule]\n")
    app = aws.build(registry(), tuning_uri="s3://ramparts-config/tuning.yaml")
    assert app.tuning_status.startswith("UNTUNED")
    out = app.handle(subscription_event([blocked_connect(8, T0)]), CTX)
    assert out["created"] == 1
    [error] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert error.getMessage() == "tuning file not used, running untuned"
    assert "no.such-rule" in error.error  # type: ignore[attr-defined]
    [batch] = [r for r in caplog.records if r.getMessage() == "batch processed"]
    assert batch.tuning.startswith("UNTUNED")  # type: ignore[attr-defined]


def test_tuning_file_from_s3_suppresses(aws: Aws) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(
        Bucket="ramparts-config", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    tuning = {
        "exceptions": [
            {
                "rule": "layer.blocked",
                "reason": "the preview feature is known to probe IMDS; blocked anyway",
                "expires": "2099-01-01",
                "resource": "*:function:orders-*",
            }
        ]
    }
    s3.put_object(Bucket="ramparts-config", Key="tuning.json", Body=json.dumps(tuning).encode())
    app = aws.build(registry(), tuning_uri="s3://ramparts-config/tuning.json")
    assert app.tuning_status.startswith("loaded")
    out = app.handle(subscription_event([blocked_connect(8, T0)]), CTX)
    assert out["suppressed"] == 1 and out["created"] == 0
    [item] = aws.finding_items()
    assert item["status"] == "suppressed" and item["suppressed"] == 1 and item["count"] == 0
    assert aws.published() == []


# -- the Lambda entry point ----------------------------------------------------------------------
def test_handler_builds_from_the_environment_once(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FINDINGS_TABLE", aws.config.findings_table)
    monkeypatch.setenv("BASELINE_TABLE", aws.config.baseline_table)
    monkeypatch.setenv("DLQ_URL", aws.config.dlq_url)
    ingest.reset()
    ingest.metrics.clear_metrics()
    try:
        out = ingest.handler(subscription_event([blocked_connect(8, T0)]), CTX)
        first = ingest.app()
        ingest.handler(subscription_event([blocked_connect(9, T0 + 1)]), CTX)
        assert ingest.app() is first  # built once per sandbox
    finally:
        ingest.reset()
    assert out["events"] == 1
    assert len(aws.finding_items()) >= 1
    logs = capsys.readouterr().out
    emf = [json.loads(x) for x in logs.splitlines() if '"_aws"' in x]
    assert emf, "no EMF metrics written"
    names = {m["Name"] for e in emf for d in e["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"RecordsReceived", "Events", "FindingsCreated", "DeadLettered"} <= names
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Ramparts"
    assert any(e.get("FindingsCreated") == [float(out["created"])] for e in emf), emf
