"""The ingest function against moto: real tables, queues, the bus routed to a queue, SNS.

Everything runs inside ``mock_aws`` with fake credentials; nothing leaves the process.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from collectors.rules.engine import Registry
from functions.config import Config
from functions.ingest import Ingest, build
from tests.aws import create_table as _table

ACCOUNT = "123456789012"
REGION = "eu-west-1"
FUNCTION = "orders-dashboard"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
T0 = 1_796_417_910_000  # epoch ms of the first sensor line


@dataclass
class LambdaContext:
    function_name: str = "ramparts-ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ramparts-ingest"
    aws_request_id: str = "5b1d3c4e-0000-4000-8000-000000000001"


@dataclass
class Aws:
    """The resources of one test, and helpers to read what the function did."""

    config: Config
    published_url: str
    alerts_url: str
    topic_arn: str
    session: Any
    built: list[Ingest] = field(default_factory=list)

    def client(self, name: str) -> Any:
        return self.session.client(name)

    def build(self, registry: Registry | None = None, **changes: Any) -> Ingest:
        cfg = dataclasses.replace(self.config, **changes)
        app = build(cfg, account=ACCOUNT, registry=registry, session=self.session)
        self.built.append(app)
        return app

    def drain(self, url: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            msgs = resp.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def published(self) -> list[dict[str, Any]]:
        """The events the ramparts bus received (routed by a rule to a queue)."""
        return self.drain(self.published_url)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every reject in the dead-letter queue, with the origin of its message."""
        out: list[dict[str, Any]] = []
        for body in self.drain(self.config.dlq_url):
            for r in body["rejects"]:
                out.append({**r, "origin": body["origin"]})
        return out

    def finding_items(self) -> list[dict[str, Any]]:
        from functions.store import deserialize

        ddb = self.client("dynamodb")
        items = ddb.scan(TableName=self.config.findings_table)["Items"]
        return [deserialize(i) for i in items if i["sk"]["S"] == "finding"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Ramparts")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ramparts-ingest")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        ddb = session.client("dynamodb")
        _table(ddb, "ramparts-findings")
        _table(ddb, "ramparts-baseline")
        sqs = session.client("sqs")
        dlq = sqs.create_queue(QueueName="ramparts-dlq")["QueueUrl"]
        published = sqs.create_queue(QueueName="published")["QueueUrl"]
        alerts = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        events = session.client("events")
        events.create_event_bus(Name="ramparts")
        events.put_rule(
            Name="all-findings",
            EventBusName="ramparts",
            EventPattern=json.dumps({"source": ["ramparts"], "detail-type": ["Ramparts Finding"]}),
        )
        events.put_targets(
            Rule="all-findings",
            EventBusName="ramparts",
            Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:published"}],
        )
        sns = session.client("sns")
        topic = sns.create_topic(Name="ramparts-alerts")["TopicArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:alerts",
            Attributes={"RawMessageDelivery": "false"},
        )
        config = Config(
            findings_table="ramparts-findings",
            baseline_table="ramparts-baseline",
            dlq_url=dlq,
            event_bus_name="ramparts",
            region=REGION,
        )
        yield Aws(config, published, alerts, topic, session)


# -- records -------------------------------------------------------------------------------------
def blocked_connect(seq: int, t: int, *, sandbox: str = "b0c99c0c63b107b4") -> str:
    """A sensor line: enforce mode blocked a connect to the instance metadata endpoint."""
    return json.dumps(
        {
            "ramparts": 1,
            "kind": "network.connect",
            "verdict": "block",
            "rule": "default.credential-endpoint",
            "mode": "enforce",
            "host": "169.254.169.254",
            "ip": "169.254.169.254",
            "port": 80,
            "proto": "tcp",
            "family": "ipv4",
            "op": "connect",
            "endpoint": "EC2 instance metadata (IMDS)",
            "location": {"file": "/var/task/app.py", "line": 44, "function": "_preview"},
            "stack": ["/var/task/app.py:44:_preview"],
            "sandbox": sandbox,
            "seq": seq,
            "time": t,
            "request_id": "c128f820-6c07-4f96-9b33-c27f2ec8807c",
        },
        separators=(",", ":"),
    )


def cw_payload(
    lines: list[str], *, function: str = FUNCTION, owner: str = ACCOUNT
) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": f"/aws/lambda/{function}",
        "logStream": "2026/12/03/[$LATEST]0123456789abcdef0123456789abcdef",
        "subscriptionFilters": ["ramparts"],
        "logEvents": [
            {"id": f"{36_000_000 + i:056d}", "timestamp": T0 + i, "message": x + "\n"}
            for i, x in enumerate(lines)
        ],
    }


def encode(payload: dict[str, Any]) -> str:
    return base64.b64encode(gzip.compress(json.dumps(payload).encode(), mtime=0)).decode()


def subscription_event(lines: list[str], **kw: Any) -> dict[str, Any]:
    return {"awslogs": {"data": encode(cw_payload(lines, **kw))}}


def sqs_record(body: str, message_id: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(T0),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(T0),
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ramparts-ingest",
        "awsRegion": REGION,
    }


def kinesis_record(data: bytes, seq: str) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "p",
            "sequenceNumber": seq,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": T0 / 1000,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/ramparts-ingest",
        "awsRegion": REGION,
        "eventSourceARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/ramparts-logs",
    }
