"""The CloudWatch Logs adapter: subscription events, payloads and Kinesis records of layer logs.

The samples are real log streams (``samples/layer/record.py``) in the real delivery formats.
GIVEN a delivery, WHEN it is normalised, THEN the events carry the identity of the envelope
(log group, owner, region), other log lines are counted as skipped, and what cannot be used
is rejected with a reason while the rest of the delivery still gets through.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import cloudwatch, detect, layer
from collectors.base import MAX_LOG_EVENTS, MAX_PAYLOAD_BYTES, Batch, Context
from collectors.model import (
    ApiActivity,
    DetectionFinding,
    NetworkActivity,
)
from collectors.workload import workload_of
from tests.collectors.conftest import (
    ACCOUNT,
    REGION,
    assert_rejects_explained,
    assert_valid,
    data_message,
    event_problems,
    kinesis_record,
    load_sample,
    pack,
    sample_lines,
    subscription_event,
    unpack,
)

CTX = Context(region=REGION)
ORDERS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-dashboard"
MEDIA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:media-worker"


def is_sensor(message: str) -> bool:
    return message.startswith('{"ramparts"')


def counts(payload: dict[str, Any]) -> tuple[int, int]:
    """(sensor lines, other lines) of a payload."""
    messages = [e["message"] for e in payload["logEvents"]]
    ours = sum(is_sensor(m) for m in messages)
    return ours, len(messages) - ours


def normalize(record: Any, ctx: Context = CTX) -> Batch:
    batch = cloudwatch.normalize(record, ctx)
    assert_rejects_explained(batch)
    assert_valid(batch)
    return batch


# -- the recorded samples --------------------------------------------------------------------------
def test_subscription_event_of_the_enforced_function():
    record = load_sample("layer", "subscription-event.json")
    payload = unpack(record["awslogs"]["data"])
    assert payload["logGroup"] == "/aws/lambda/orders-dashboard"
    ours, other = counts(payload)
    batch = normalize(record)
    assert not batch.rejects
    assert batch.skipped == other == 21  # START, END and REPORT of 7 invocations
    assert len(batch.events) + len(batch.signals) == ours
    # the four attacks, each blocked
    got = [
        (type(e).__name__, e.unmapped["rule"] if e.unmapped else None, e.disposition)
        for e in batch.events
    ]
    assert got == [
        ("ProcessActivity", "default.network-tool", "Blocked"),
        ("NetworkActivity", "default.credential-endpoint", "Blocked"),
        ("ProcessActivity", "policy.process", "Blocked"),
        ("ApiActivity", "policy.aws", "Blocked"),
    ]
    for e in batch.events:
        assert e.device.uid == ORDERS  # type: ignore[attr-defined]
        assert e.cloud.account is not None and e.cloud.account.uid == ACCOUNT
        assert e.cloud.region == REGION
        assert e.metadata.logged_time is not None
    api = batch.events[3]
    assert isinstance(api, ApiActivity) and api.api.operation == "ListUsers"
    imds = batch.events[1]
    assert isinstance(imds, NetworkActivity) and imds.dst_endpoint is not None
    assert imds.dst_endpoint.ip == "169.254.169.254"
    assert {s["workload"] for s in batch.signals} == {f"lambda:{ORDERS}"}
    assert [s["kind"] for s in batch.signals].count("sensor.start") == 1


def test_decoded_payload_with_mixed_lines():
    payload = load_sample("layer", "decoded-payload.json")
    ours, other = counts(payload)
    messages = [e["message"] for e in payload["logEvents"]]
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)
    assert any(m.startswith("[INFO]\t") for m in messages)
    batch = normalize(payload)
    assert not batch.rejects
    assert batch.skipped == other
    assert len(batch.events) + len(batch.signals) == ours
    kinds = {e.metadata.event_code for e in batch.events}
    assert kinds == {
        "network.connect",
        "network.dns",
        "file.write",
        "file.read",
        "process.spawn",
        "process.env",
        "native.load",
        "aws.call",
        "sensor.tamper",
    }
    stamps = {e["message"].rstrip("\n"): e["timestamp"] for e in payload["logEvents"]}
    for e in batch.events:
        assert e.device.uid == MEDIA  # type: ignore[attr-defined]
        assert e.raw_data is not None and e.metadata.logged_time == stamps[e.raw_data]


def test_kinesis_event_with_several_records_and_a_control_message():
    record = load_sample("layer", "kinesis-event.json")
    payloads = [unpack(r["kinesis"]["data"]) for r in record["Records"]]
    data = [p for p in payloads if p["messageType"] == "DATA_MESSAGE"]
    assert len(data) == 3 and len(payloads) == 4
    ours = sum(counts(p)[0] for p in data)
    other = sum(counts(p)[1] for p in data)
    batch = normalize(record, Context())  # the region comes from each record's awsRegion
    assert not batch.rejects
    assert batch.skipped == other + 1  # the control message
    assert len(batch.events) + len(batch.signals) == ours
    for e in batch.events:
        assert e.device.uid == ORDERS  # type: ignore[attr-defined]
    # the function's own region, when the ingest function knows it, wins over the stream's
    moved = normalize(record, Context(region="us-west-2"))
    assert moved.events[0].device.uid == ORDERS.replace(REGION, "us-west-2")  # type: ignore[attr-defined]


def test_one_decoded_kinesis_record():
    record = load_sample("layer", "kinesis-event.json")["Records"][0]
    assert cloudwatch.matches(record) and detect(record) == "cloudwatch-logs"
    batch = normalize(record, Context())
    assert batch.events and not batch.rejects
    assert all(e.cloud.region == REGION for e in batch.events)


def test_control_message_is_skipped():
    payload = load_sample("layer", "control-message.json")
    for record in (payload, subscription_event(payload), {"Records": [kinesis_record(payload)]}):
        batch = normalize(record)
        assert (batch.events, batch.rejects, batch.signals, batch.skipped) == ([], [], [], 1)


def test_custom_log_group_names_the_function_in_the_stream():
    payload = load_sample("layer", "custom-log-group.json")
    assert payload["logGroup"] == "/ramparts/shared"
    batch = normalize(payload)
    assert not batch.rejects
    [finding] = [e for e in batch.events if isinstance(e, DetectionFinding)]
    assert finding.device is not None and finding.device.uid == ORDERS
    assert finding.finding_info.types == ["Ramparts Sensor Policy Error"]
    assert finding.resources is not None and finding.resources[0].uid == ORDERS


# -- identity --------------------------------------------------------------------------------------
def _alert_line() -> str:
    return next(x for x in sample_lines("layer", "sensor-lines.jsonl") if '"verdict":"alert"' in x)


def test_identity_comes_from_the_envelope_only():
    line = json.loads(_alert_line())
    line.update(
        function="payments",
        account="999999999999",
        region="us-west-2",
        arn="arn:aws:lambda:us-west-2:999999999999:function:payments",
    )
    payload = data_message([json.dumps(line)])
    # the operator's --account is not the envelope's owner either
    batch = normalize(subscription_event(payload), Context(account="111111111111", region=REGION))
    [e] = batch.events
    assert e.device.uid == MEDIA  # type: ignore[attr-defined]
    assert e.cloud.account is not None and e.cloud.account.uid == ACCOUNT
    w = workload_of(e.device, ACCOUNT)  # type: ignore[attr-defined]
    assert w is not None and w.name == "media-worker"


@pytest.mark.parametrize(
    ("group", "stream", "function", "region"),
    [
        ("/aws/lambda/orders", "2026/12/04/[$LATEST]abc", "orders", REGION),
        ("/aws/lambda/us-east-1.edge-auth", "2026/12/04/[1]abc", "edge-auth", "us-east-1"),
        ("/shared/app", "2026/12/04/orders_v2[$LATEST]abc", "orders_v2", REGION),
        ("/shared/app", "2026/12/04/orders[7]abc", "orders", REGION),
        ("/shared/app", "some-stream", None, REGION),
        ("/aws/lambda/bad name!", "2026/12/04/[$LATEST]abc", None, REGION),
        ("/aws/lambda/" + "x" * 65, "2026/12/04/[$LATEST]abc", None, REGION),
        ("/ecs/web", "ecs/web/0123", None, REGION),
    ],
)
def test_function_from_log_group_and_stream(group, stream, function, region):
    assert cloudwatch.function_of(group, stream)[0] == function
    batch = normalize(data_message([_alert_line()], group=group, stream=stream))
    [e] = batch.events
    device = e.device  # type: ignore[attr-defined]
    if function is None:
        assert device.name == layer.UNKNOWN_FUNCTION and device.uid is None
        assert workload_of(device) is None
    else:
        assert device.uid == f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function}"


def test_without_a_region_the_function_has_no_arn():
    batch = normalize(data_message([_alert_line()]), Context())
    [e] = batch.events
    assert e.device.name == "media-worker" and e.device.uid is None  # type: ignore[attr-defined]
    assert e.cloud.account is not None and e.cloud.account.uid == ACCOUNT


# -- rejects: the rest of the batch survives -------------------------------------------------------
def test_a_bad_log_event_is_rejected_alone():
    good = [x for x in sample_lines("layer", "sensor-lines.jsonl") if '"verdict":"alert"' in x][:3]
    broken = good[1][:-30]
    payload = data_message([good[0], "START RequestId: x Version: $LATEST", broken, good[2]])
    payload["logEvents"].append({"id": "1", "timestamp": 1, "message": 42})
    payload["logEvents"].append("not an event")
    bad_kind = json.loads(good[0])
    bad_kind["kind"] = "network.teleport"
    payload["logEvents"].append({"id": "2", "timestamp": 2, "message": json.dumps(bad_kind)})
    batch = normalize(subscription_event(payload))
    assert len(batch.events) == 2 and batch.skipped == 1
    got = [(r.where, r.source, r.reason.split(":")[0]) for r in batch.rejects]
    assert got == [
        ("logEvents[2]", "layer", "looks like a Ramparts line but is not JSON"),
        ("logEvents[4]", "cloudwatch-logs", "log event"),
        ("logEvents[5]", "cloudwatch-logs", "log event"),
        ("logEvents[6]", "layer", "unknown kind 'network.teleport'"),
    ]


def test_a_bad_kinesis_record_is_rejected_alone():
    payload = data_message([_alert_line()])
    records = [kinesis_record(payload), kinesis_record(payload), kinesis_record(payload)]
    records[1]["kinesis"]["data"] = "!!not base64!!"
    records.insert(2, "junk")
    batch = normalize({"Records": records})
    assert len(batch.events) == 2
    assert [(r.where, r.reason[:40].split(" (")[0]) for r in batch.rejects] == [
        ("Records[1]", "kinesis.data: not valid base64"),
        ("Records[2]", "expected a Kinesis record"),
    ]
    inner = data_message([_alert_line(), _alert_line()[:-5]])
    batch = normalize({"Records": [kinesis_record(inner)]})
    assert [r.where for r in batch.rejects] == ["Records[0].logEvents[1]"]


def _gz(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, mtime=0)).decode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("!!!!", "data: not valid base64"),
        ("héllo", "data: not valid base64"),
        (base64.b64encode(b"plain json").decode(), "data: not gzip-compressed"),
        (_gz(b"{not json"), "not JSON"),
        (_gz(b"[1, 2]"), "payload: expected a JSON object, got list"),
        (_gz(b'{"messageType": "WHAT"}'), "messageType: 'WHAT' is not DATA_MESSAGE"),
        (_gz(b"\xff\xfe{}"), "not JSON"),
        (
            base64.b64encode(gzip.compress(b"{}" * 1000, mtime=0)[:-12]).decode(),
            "truncated gzip stream",
        ),
        (
            base64.b64encode(gzip.compress(b"{}", mtime=0) + b"trailing").decode(),
            "data: corrupt gzip stream",
        ),
        (
            base64.b64encode(b"\x1f\x8b" + b"\x00" * 20).decode(),
            "data: corrupt gzip stream",
        ),
        (None, "data: expected base64 text, got NoneType"),
        (5, "data: expected base64 text, got int"),
    ],
)
def test_bad_data_is_one_reject(data, reason):
    batch = cloudwatch.normalize({"awslogs": {"data": data}}, CTX)
    assert not batch.events
    [r] = batch.rejects
    assert reason in r.reason and r.source == "cloudwatch-logs"
    assert r.where == ("" if reason.startswith(("payload", "messageType")) else "awslogs.data")


def test_a_gzip_bomb_is_cut_at_the_cap():
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = bomb.compress(b"\x00" * (64 << 20)) + bomb.flush()  # 64 MiB of zeros in 64 KiB
    assert len(data) < 100_000
    batch = cloudwatch.normalize({"awslogs": {"data": base64.b64encode(data).decode()}}, CTX)
    [r] = batch.rejects
    assert f"decompresses to more than {MAX_PAYLOAD_BYTES} bytes" in r.reason


def test_a_kinesis_event_has_one_budget_for_all_its_records():
    # Each payload is under the per-payload cap; together they are over the event's cap.
    big = data_message(["x" * 1000] * 7000)  # ~7.6 MB decompressed, ~100 KB compressed
    records = [kinesis_record(big) for _ in range(10)]
    batch = cloudwatch.normalize({"Records": records}, CTX)
    assert batch.skipped >= 7000 * 8
    assert batch.rejects and all("decompresses to more than" in r.reason for r in batch.rejects)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"owner": "CloudwatchLogs"}, "owner: 'CloudwatchLogs' is not a 12-digit AWS account id"),
        ({"owner": 123456789012}, "owner: 123456789012 is not a 12-digit"),
        ({"owner": "\u0661" * 12}, "is not a 12-digit AWS account id"),  # Arabic-Indic digits
        ({"logGroup": None}, "logGroup: expected a log group name"),
        ({"logGroup": "x" * 513}, "logGroup: expected a log group name"),
        ({"logStream": 7}, "logStream: expected a log stream name"),
        ({"logEvents": {"0": {}}}, "logEvents: expected a list"),
        ({"messageType": None}, "messageType: None is not DATA_MESSAGE"),
    ],
)
def test_bad_payloads_are_one_reject(change, reason):
    payload = {**data_message([_alert_line()]), **change}
    batch = cloudwatch.normalize(payload, CTX)
    assert not batch.events
    [r] = batch.rejects
    assert reason in r.reason


def test_too_many_log_events():
    payload = data_message([])
    payload["logEvents"] = [{"id": "", "timestamp": 1, "message": "x"}] * (MAX_LOG_EVENTS + 1)
    [r] = cloudwatch.normalize(payload, CTX).rejects
    assert "over the 20000 limit" in r.reason


def test_other_records_are_rejected():
    for record in (
        [],
        "text",
        {"awslogs": "x"},
        {"Records": "x"},
        {"Records": [1] * 10_001},
        {"kinesis": {"data": 1}},
    ):
        batch = cloudwatch.normalize(record, CTX)
        assert len(batch.rejects) == 1 and not batch.events, record
        assert_rejects_explained(batch)


def test_matches():
    assert cloudwatch.matches(load_sample("layer", "subscription-event.json"))
    assert cloudwatch.matches(load_sample("layer", "decoded-payload.json"))
    assert cloudwatch.matches(load_sample("layer", "kinesis-event.json"))
    assert cloudwatch.matches(load_sample("layer", "control-message.json"))
    for other in ({"ramparts": 1}, {"Records": [{"s3": {}}]}, {"Records": []}, "x", None, []):
        assert not cloudwatch.matches(other)


# -- fuzzing ---------------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
FUZZ = settings(
    max_examples=120,
    deadline=60_000,  # hang detection only (gzip + base64 of every draw is slow)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(batch: Batch) -> None:
    assert_rejects_explained(batch)
    for event in batch.events:
        assert event_problems(event) == [], event


@FUZZ
@given(JSON)
def test_fuzz_arbitrary_values(value):
    check(cloudwatch.normalize(value, CTX))
    check(cloudwatch.normalize({"awslogs": {"data": value}}, CTX))
    check(cloudwatch.normalize({"Records": [{"kinesis": {"data": value}}]}, CTX))
    check(cloudwatch.normalize({"messageType": "DATA_MESSAGE", "logEvents": value}, CTX))


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["raw", "gzip", "b64"]))
def test_fuzz_arbitrary_bytes(data, how):
    if how == "gzip":
        data = gzip.compress(data, mtime=0)
    elif how == "b64":
        data = base64.b64encode(data)
    text = base64.b64encode(data).decode()
    check(cloudwatch.normalize({"awslogs": {"data": text}}, CTX))
    check(cloudwatch.normalize({"awslogs": {"data": data.decode("latin-1")}}, CTX))


def _mutate(value: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Delete a key, swap a type, blow a size up, or go one level deeper."""
    if isinstance(value, dict) and value and depth < 4:
        key = data.draw(st.sampled_from(sorted(value, key=str)))
        how = data.draw(st.sampled_from(["delete", "replace", "huge", "deep", "recurse"]))
        out = dict(value)
        if how == "delete":
            del out[key]
        elif how == "replace":
            out[key] = data.draw(JSON)
        elif how == "huge":
            out[key] = "A" * data.draw(st.sampled_from([10_000, 300_000]))
        elif how == "deep":
            out[key] = json.loads("[" * 200 + "]" * 200)
        else:
            out[key] = _mutate(value[key], data, depth + 1)
        return out
    if isinstance(value, list) and value and depth < 4:
        i = data.draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        if data.draw(st.booleans()):
            out_list[i] = _mutate(value[i], data, depth + 1)
        else:
            out_list = out_list * data.draw(st.sampled_from([2, 50]))
        return out_list
    if isinstance(value, str) and data.draw(st.booleans()):
        return value[: data.draw(st.integers(0, len(value)))]
    return data.draw(JSON)


@pytest.fixture(scope="module")
def decoded_samples() -> list[Any]:
    record = load_sample("layer", "kinesis-event.json")
    payload = unpack(record["Records"][0]["kinesis"]["data"])
    payload["logEvents"] = payload["logEvents"][:30]
    return [payload, load_sample("layer", "custom-log-group.json")]


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_payloads(decoded_samples, data):
    payload = _mutate(copy.deepcopy(data.draw(st.sampled_from(decoded_samples))), data)
    check(cloudwatch.normalize(payload, CTX))
    try:
        packed = pack(payload)
    except (TypeError, ValueError):
        return
    check(cloudwatch.normalize({"awslogs": {"data": packed}}, CTX))
    check(cloudwatch.normalize({"Records": [kinesis_record(payload)]}, Context()))


@pytest.fixture(scope="module")
def small_kinesis_event() -> dict[str, Any]:
    """The recorded Kinesis event, each payload cut to its first 8 log events."""
    record = load_sample("layer", "kinesis-event.json")
    for rec in record["Records"]:
        payload = unpack(rec["kinesis"]["data"])
        payload["logEvents"] = payload["logEvents"][:8]
        rec["kinesis"]["data"] = pack(payload)
    return record


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_kinesis_events(small_kinesis_event, data):
    check(cloudwatch.normalize(_mutate(copy.deepcopy(small_kinesis_event), data), Context()))
