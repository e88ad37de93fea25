"""Shared helpers of the collector tests: recorded samples, envelopes, and the event checks.

Every adapter's output must be valid OCSF by OCSF's own schema and equal to its validated
round trip (``from_ocsf(to_ocsf(e))``): :func:`assert_valid` checks both, for any adapter.
Samples live in ``samples/<source>/``, one helper loads them.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from collectors.base import Batch
from collectors.model import OcsfEvent, from_ocsf
from tests.ocsf import validate_ocsf

SAMPLES = Path(__file__).resolve().parent / "samples"
LAYER_SAMPLES = SAMPLES / "layer"
ACCOUNT = "123456789012"
REGION = "eu-west-1"

# Arbitrary JSON values, and the settings every adapter's fuzz tests share.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=20), children, max_size=6)
    ),
    max_leaves=40,
)
FUZZ = settings(
    max_examples=150,
    deadline=60_000,  # hang detection only: speed lives in bench/, not in tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def sample_path(source: str, name: str) -> Path:
    return SAMPLES / source / name


def load_sample(source: str, name: str) -> Any:
    """A JSON sample (a document) of ``samples/<source>/<name>``."""
    return json.loads(sample_path(source, name).read_text())


def sample_lines(source: str, name: str) -> list[str]:
    """The non-empty lines of a text or JSON-lines sample, without their newline."""
    return [x for x in sample_path(source, name).read_text().splitlines() if x.strip()]


def event_problems(event: OcsfEvent) -> list[str]:
    """Why ``event`` is not valid OCSF or does not survive a validated round trip."""
    data = event.to_ocsf()
    problems = list(validate_ocsf(data))
    try:
        back = from_ocsf(json.loads(json.dumps(data)))
    except Exception as exc:  # a validation error is a problem to report, not a crash
        return [*problems, f"round trip: {type(exc).__name__}: {exc}"]
    if back != event:
        problems.append("round trip: from_ocsf(to_ocsf(e)) != e")
    if type(event).model_validate(event.model_dump(by_alias=True)) != event:
        problems.append("revalidated model differs from the event")
    return problems


def assert_valid(events: Iterable[OcsfEvent] | Batch) -> None:
    """Every event is valid OCSF and equal to its validated round trip."""
    items = events.events if isinstance(events, Batch) else list(events)
    failures = {}
    for i, event in enumerate(items):
        problems = event_problems(event)
        if problems:
            failures[f"{i} {type(event).__name__} {event.metadata.uid}"] = problems
    assert not failures, json.dumps(failures, indent=1)[:4000]


def assert_rejects_explained(batch: Batch) -> None:
    """Every reject has a reason, and none is an adapter bug caught at the last moment."""
    for r in batch.rejects:
        assert r.reason.strip(), r
        assert r.source, r
        assert "internal error" not in r.reason, r


def pack(payload: Any) -> str:
    """base64(gzip(json)): how CloudWatch Logs delivers a payload."""
    return base64.b64encode(gzip.compress(json.dumps(payload).encode(), mtime=0)).decode()


def unpack(data: str) -> Any:
    return json.loads(gzip.decompress(base64.b64decode(data)))


def subscription_event(payload: Any) -> dict[str, Any]:
    """The Lambda event of a CloudWatch Logs subscription filter."""
    return {"awslogs": {"data": pack(payload)}}


def kinesis_record(payload: Any, region: str = REGION) -> dict[str, Any]:
    """One record of a Kinesis event carrying a CloudWatch Logs payload."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "p",
            "sequenceNumber": "49650000000000000000000000000000000000000000000000000000",
            "data": pack(payload),
            "approximateArrivalTimestamp": 1796417909.9,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": "shardId-000000000000:49650000000000000000000000000000000000000000000000000000",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/ramparts-ingest",
        "awsRegion": region,
        "eventSourceARN": f"arn:aws:kinesis:{region}:{ACCOUNT}:stream/ramparts-logs",
    }


def data_message(
    messages: Iterable[str],
    *,
    group: str = "/aws/lambda/media-worker",
    stream: str = "2026/12/04/[$LATEST]0123456789abcdef0123456789abcdef",
    owner: str = ACCOUNT,
    t0: int = 1796417909000,
) -> dict[str, Any]:
    """A DATA_MESSAGE payload of the given log messages (newlines added as Lambda does)."""
    return {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["ramparts-collector"],
        "logEvents": [
            {"id": f"{i:056d}", "timestamp": t0 + i, "message": m if m.endswith("\n") else m + "\n"}
            for i, m in enumerate(messages)
        ],
    }


@pytest.fixture(scope="session")
def sensor_lines() -> list[str]:
    """Every line the sensor printed while the samples were recorded (record.py)."""
    return sample_lines("layer", "sensor-lines.jsonl")


@pytest.fixture(scope="session")
def sensor_objects(sensor_lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in sensor_lines]
