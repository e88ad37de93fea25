"""Ingest records which sensor last reported for each workload, and a function's packages."""

from __future__ import annotations

import json
from pathlib import Path

from functions.store import DynamoSeenStore
from tests.functions.conftest import (
    ACCOUNT,
    FUNCTION_ARN,
    T0,
    Aws,
    LambdaContext,
    sqs_record,
    subscription_event,
)

SAMPLES = Path(__file__).resolve().parents[1] / "collectors" / "samples"
WORKLOAD = "lambda:" + FUNCTION_ARN


def _line(kind: str, seq: int, t: int, **kw: object) -> str:
    base = {
        "ramparts": 1,
        "kind": kind,
        "sandbox": "b0c99c0c63b107b4",
        "seq": seq,
        "time": t,
        "request_id": None,
    }
    base.update(kw)
    return json.dumps(base)


START = dict(
    version="0.1.0",
    mode="monitor",
    modes={"egress": "monitor"},
    attach="exec-wrapper",
    policy=None,
    policy_rules=0,
    python="3.12.7",
    install_ms=3.1,
)
PACKAGES = [
    {"name": "requests", "version": "2.31.0", "path": "/var/task", "imported": True},
    {"name": "PyYAML", "version": "6.0.1", "path": "/var/task", "imported": False},
]


def test_layer_heartbeats_and_packages_are_recorded(aws: Aws) -> None:
    app = aws.build()
    lines = [
        _line("sensor.start", 1, T0, **START),
        _line(
            "sensor.packages",
            2,
            T0 + 5,
            update=False,
            packages=PACKAGES,
            truncated=False,
            scan_ms=4.0,
        ),
        _line(
            "sensor.packages",
            3,
            T0 + 9,
            update=True,
            truncated=False,
            scan_ms=0.1,
            packages=[{**PACKAGES[1], "imported": True}],
        ),
    ]
    app.handle(subscription_event(lines), LambdaContext())
    seen = DynamoSeenStore(aws.config.baseline_table, client=aws.client("dynamodb")).get(WORKLOAD)
    layer = seen["layer"]
    assert layer["last_seen_ms"] == T0 + 9 and layer["first_seen_ms"] == T0 + 9
    assert (layer["sensor_version"], layer["mode"], layer["python"]) == (
        "0.1.0",
        "monitor",
        "3.12.7",
    )
    assert layer["account"] == ACCOUNT and layer["type"] == "lambda"
    pk = seen["packages"]
    assert [p["name"] for p in pk["packages"]] == ["requests", "PyYAML"]
    assert sorted(pk["imported"]) == ["PyYAML", "requests"]  # the update added PyYAML


def test_last_seen_only_moves_forward(aws: Aws) -> None:
    app = aws.build()
    later = [_line("sensor.start", 1, T0 + 60_000, **START)]
    earlier = [_line("sensor.start", 1, T0, **{**START, "mode": "enforce"})]
    app.handle(subscription_event(later), LambdaContext())
    app.handle(subscription_event(earlier), LambdaContext())  # a late, older batch
    seen = DynamoSeenStore(aws.config.baseline_table, client=aws.client("dynamodb")).get(WORKLOAD)
    assert seen["layer"]["last_seen_ms"] == T0 + 60_000
    assert seen["layer"]["mode"] == "monitor"
    assert seen["layer"]["first_seen_ms"] == T0 + 60_000


def test_vm_and_container_sensors_mark_their_workloads_seen(aws: Aws) -> None:
    app = aws.build()
    lines = (
        (SAMPLES / "osquery" / "osquery-5.14-differential-event-format.jsonl")
        .read_text()
        .splitlines()
    )
    records = [sqs_record(x, f"m{i}") for i, x in enumerate(lines) if x.strip()]
    assert app.handle({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    ddb = aws.client("dynamodb")
    items = ddb.scan(TableName=aws.config.baseline_table)["Items"]
    seen = {(i["pk"]["S"], i["sk"]["S"]) for i in items if i["pk"]["S"].startswith("seen#")}
    assert seen, items
    assert all(sk == "osquery" for _, sk in seen)
    assert any(pk.startswith("seen#ec2:i-") for pk, _ in seen)
