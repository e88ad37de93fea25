"""The DynamoDB stores (moto) and the ASFF export."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from collectors import cloudwatch
from collectors.base import Context
from collectors.findings import FindingRecord
from collectors.rules.engine import Alert, Engine, builtin
from functions.asff import to_asff
from functions.store import DynamoBaseline, DynamoFindingStore, DynamoStateStore
from tests.functions.conftest import ACCOUNT, REGION, T0, Aws, blocked_connect, subscription_event


def alerts(seqs: range) -> list[Alert]:
    """layer.blocked alerts, one per sensor line (all of the same finding)."""
    event = subscription_event([blocked_connect(s, T0 + s) for s in seqs])
    batch = cloudwatch.normalize(event, Context(region=REGION))
    assert not batch.rejects
    engine = Engine(builtin().only(["layer.blocked"]))
    out = engine.run(batch.events)
    assert len(out) == len(seqs)
    return out


class Interleaving:
    """A DynamoDB client that runs ``before`` just before its first transaction."""

    def __init__(self, client: Any, before: Any) -> None:
        self.client = client
        self.before = before

    def transact_write_items(self, **kw: Any) -> Any:
        if self.before is not None:
            run, self.before = self.before, None
            run()
        return self.client.transact_write_items(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_concurrent_updates_of_one_finding_count_exactly(aws: Aws) -> None:
    ddb = aws.client("dynamodb")
    table = aws.config.findings_table
    b = DynamoFindingStore(table, client=ddb)
    a_alerts, b_alerts = alerts(range(1, 21)), alerts(range(21, 41))
    b.confirm(b.apply(alerts(range(100, 102))))  # the finding exists: A and B both update it
    # A reads the finding, then B updates it before A's transaction (other events): A's write
    # is conditioned on the version it read, so it must retry on a fresh read, losing nothing.
    a = DynamoFindingStore(
        table, client=Interleaving(ddb, lambda: b.confirm(b.apply(b_alerts))), sleep=lambda s: None
    )
    published = a.apply(a_alerts)
    record = b.get(a_alerts[0].finding_id)
    assert record is not None
    assert record.count == 42
    assert record.version == 3
    assert published == []  # created (and published) before


class Atomic:
    """A client whose calls are each atomic, as DynamoDB's are (moto's in-process backend is
    not thread-safe); the stores' reads and writes still interleave between calls."""

    lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.client, name)

        def locked(**kw: Any) -> Any:
            with self.lock:
                return call(**kw)

        return locked


def test_threads_applying_overlapping_alerts_count_exactly(aws: Aws) -> None:
    table = aws.config.findings_table
    batches = [alerts(range(i, i + 15)) for i in range(1, 60, 10)]  # overlapping by 5
    stores = [
        DynamoFindingStore(table, client=Atomic(aws.client("dynamodb")), max_attempts=50)
        for _ in batches
    ]
    errors: list[BaseException] = []

    def run(store: DynamoFindingStore, items: list[Alert]) -> None:
        try:
            store.apply(items)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=p) for p in zip(stores, batches, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    record = stores[0].get(batches[0][0].finding_id)
    assert record is not None
    assert record.count == len({a.event_uid for b in batches for a in b})  # 65


def test_more_alerts_than_one_transaction_holds(aws: Aws) -> None:
    store = DynamoFindingStore(aws.config.findings_table, client=aws.client("dynamodb"))
    many = alerts(range(1, 131))
    [published] = store.apply(many)
    assert published.change == "created"
    assert published.record.count == 130
    store.confirm([published])
    assert store.apply(many) == []  # every one counted already
    record = store.get(many[0].finding_id)
    assert record is not None and record.count == 130
    markers = aws.client("dynamodb").query(
        TableName=aws.config.findings_table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
        ExpressionAttributeValues={":p": {"S": f"finding#{record.id}"}, ":e": {"S": "event#"}},
        Select="COUNT",
    )
    assert markers["Count"] == 130


def test_duplicate_event_uids_in_one_batch_count_once(aws: Aws) -> None:
    store = DynamoFindingStore(aws.config.findings_table, client=aws.client("dynamodb"))
    batch = alerts(range(1, 4))
    [published] = store.apply(batch + batch)
    assert published.record.count == 3


def test_state_store_round_trip_and_expiry(aws: Aws) -> None:
    now = [1_800_000_000.0]
    state = DynamoStateStore(
        aws.config.baseline_table, client=aws.client("dynamodb"), clock=lambda: now[0]
    )
    wl = "lambda:arn:aws:lambda:eu-west-1:123456789012:function:f"
    assert state.load("r.one", wl) == {}
    state.save("r.one", wl, {"n": 3, "ratio": 0.5, "seen": ["a", "b"]}, ttl_s=300)
    assert state.load("r.one", wl) == {"n": 3, "ratio": 0.5, "seen": ["a", "b"]}
    assert state.load("r.two", wl) == {}
    state.save("r.one", "", {"n": 1}, ttl_s=300)  # events without a workload
    assert state.load("r.one", "") == {"n": 1}
    now[0] += 301
    assert state.load("r.one", wl) == {}  # expired, even before TTL deletes it
    state.save("r.one", wl, {}, ttl_s=300)
    item = aws.client("dynamodb").get_item(
        TableName=aws.config.baseline_table, Key={"pk": {"S": "state#r.one"}, "sk": {"S": wl}}
    )
    assert "Item" not in item


def test_baseline_learns_then_judges_and_caches_reads(aws: Aws) -> None:
    day = 24 * 3600 * 1000
    table = aws.config.baseline_table
    base = DynamoBaseline(table, learning_s=7 * 24 * 3600, client=aws.client("dynamodb"))
    wl = "lambda:arn:aws:lambda:eu-west-1:123456789012:function:f"
    assert base.known(wl, "dst", "203.0.113.7:443", T0) is None  # learning
    base.record(wl, "dst", "203.0.113.7:443", T0)
    later = T0 + 8 * day
    assert base.known(wl, "dst", "203.0.113.7:443", later) is True
    reads = base.reads
    for _ in range(50):
        assert base.known(wl, "dst", "198.51.100.9:443", later) is False
    assert base.reads == reads + 1  # one read for the new value, however many events
    base.record(wl, "dst", "198.51.100.9:443", later)  # not learning any more: not added
    # another sandbox sees the same baseline and first-seen time
    other = DynamoBaseline(table, learning_s=7 * 24 * 3600, client=aws.client("dynamodb"))
    assert other.known(wl, "dst", "203.0.113.7:443", later) is True
    assert other.known(wl, "dst", "198.51.100.9:443", later) is False
    assert other.known(wl, "dst", "x", T0 + day) is None


def _record(**kw: Any) -> FindingRecord:
    base: dict[str, Any] = {
        "id": "0" * 32,
        "rule_id": "layer.blocked",
        "title": "T" * 400,
        "severity": 4,
        "techniques": ["T1190", "T1059.004"],
        "key": "network.connect:default.credential-endpoint",
        "resource": {"uid": "i-0a1b2c3d4e5f60718", "type": "AwsEc2Instance", "region": REGION},
        "device": None,
        "account": "111122223333",
        "region": REGION,
        "first_seen": T0,
        "last_seen": T0 + 5000,
        "count": 7,
        "description": "D" * 2000,
        "samples": [{"uid": "layer:x:1", "summary": "blocked connect to 169.254.169.254:80"}],
    }
    base.update(kw)
    return FindingRecord(**base)


def test_asff_is_a_valid_batch_import_findings_request() -> None:
    asff = to_asff(_record(), ACCOUNT, REGION, now_ms=T0 + 10_000)
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    report = ParamValidator().validate({"Findings": [asff]}, shape)
    assert not report.has_errors(), report.generate_report()
    assert asff["AwsAccountId"] == ACCOUNT  # the importing account, as the default product needs
    assert asff["ProductFields"]["ramparts/resource_account"] == "111122223333"
    assert asff["Types"] == ["TTPs/Initial Access", "TTPs/Execution"]
    assert len(asff["Title"]) == 256 and len(asff["Description"]) == 1024
    assert asff["Resources"][0]["Id"] == (
        "arn:aws:ec2:eu-west-1:111122223333:instance/i-0a1b2c3d4e5f60718"
    )
    created = dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)
    assert asff["CreatedAt"] == created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert asff["FirstObservedAt"] == asff["CreatedAt"]
    updated = created + dt.timedelta(seconds=10)
    assert asff["UpdatedAt"] == updated.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert asff["Severity"] == {"Label": "HIGH", "Normalized": 70, "Original": "4"}


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"uid": "abc123", "type": "Container"}, "Container"),
        ({"uid": "ns/pod", "type": "KubernetesPod"}, "Other"),
        ({"uid": "account:1", "type": "AWS::::Account"}, "Other"),
    ],
)
def test_asff_resource_types(resource: dict[str, Any], expected: str) -> None:
    asff = to_asff(_record(resource=resource, techniques=[]), ACCOUNT, REGION)
    assert asff["Resources"][0]["Type"] == expected
    assert asff["Types"] == ["Unusual Behaviors/Process"]


def test_a_playbook_response_survives_a_concurrent_ingest_write(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A playbook records its response on the finding while an ingest holds an older read:
    the response bumps the version, so the ingest's write retries on a fresh read and keeps
    it."""
    from functions.respond import status

    ddb = aws.client("dynamodb")
    table = aws.config.findings_table
    monkeypatch.setenv("FINDINGS_TABLE", table)
    first = alerts(range(1, 3))
    DynamoFindingStore(table, client=ddb).apply(first)
    fid = first[0].finding_id
    guard = {"playbook": "contain-lambda", "finding_id": fid, "mode": "automatic", "execution": "x"}

    store = DynamoFindingStore(
        table,
        client=Interleaving(ddb, lambda: status.mark_finding(guard, "applied")),  # type: ignore[arg-type]
        sleep=lambda s: None,
    )
    store.apply(alerts(range(3, 6)))
    record = store.get(fid)
    assert record is not None
    assert record.count == 5
    assert record.response is not None and record.response["status"] == "applied"
