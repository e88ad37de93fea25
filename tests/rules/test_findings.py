"""Findings: alerts folded into records (created, merged, updated), suppressed counts, samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collectors import adapter
from collectors.base import Context
from collectors.findings import (
    MAX_SAMPLES,
    FindingRecord,
    MemoryStore,
    fold,
    group,
    to_ocsf,
)
from collectors.model import OcsfEvent, ProcessActivity
from collectors.rules.engine import MEDIUM, Alert, Hit, Rule
from collectors.workload import workload_of
from tests.ocsf import validate_ocsf

SAMPLES = Path(__file__).resolve().parents[1] / "collectors" / "samples"
ACCOUNT = "111122223333"
WINDOW_S = 60
T0 = 1_796_417_909_000


def _event() -> ProcessActivity:
    ctx = Context(account=ACCOUNT, region="eu-west-1", function="orders")
    for line in (SAMPLES / "layer" / "sensor-lines.jsonl").read_text().splitlines():
        for e in adapter("layer").normalize(json.loads(line), ctx).events:
            if isinstance(e, ProcessActivity):
                return e
    raise AssertionError("no process event in the samples")


EVENT = _event()


def always(event: OcsfEvent, ctx: Any) -> Hit:
    return Hit()


RULE = Rule(
    id="t.rule",
    title="a test rule",
    severity=MEDIUM,
    techniques=("T1059.004",),
    sources=frozenset({"layer"}),
    classes=frozenset({1007}),
    func=always,
    window_s=WINDOW_S,
    description="What it detects.",
)


def alert(
    n: int, at_s: float, *, suppressed_by: str | None = None, severity: int = MEDIUM
) -> Alert:
    return Alert(
        rule=RULE,
        event=EVENT,
        workload=workload_of(EVENT.device, ACCOUNT),
        key="k",
        title=RULE.title,
        severity=severity,
        summary=f"event {n}",
        time=T0 + int(at_s * 1000),
        event_uid=f"layer:e{n}",
        account=ACCOUNT,
        region="eu-west-1",
        suppressed_by=suppressed_by,
    )


def test_created_then_repeats_within_the_window_publish_nothing():
    record, change = fold(None, [alert(0, 0)])
    assert change == "created"
    assert (record.count, record.published_count, record.status) == (1, 1, "new")
    assert record.published_time == T0
    for n in range(1, 4):
        record, change = fold(record, [alert(n, n * 10)])
        assert change is None
    assert record.count == 4
    assert record.first_seen == T0 and record.last_seen == T0 + 30_000
    assert record.published_count == 1  # what was last published


def test_after_the_window_a_grown_count_is_updated_once():
    record, _ = fold(None, [alert(0, 0)])
    record, change = fold(record, [alert(1, 10)])
    assert change is None
    record, change = fold(record, [alert(2, WINDOW_S + 1), alert(3, WINDOW_S + 2)])
    assert change == "updated"
    assert record.count == 4 and record.published_count == 4
    assert record.published_time == T0 + (WINDOW_S + 1) * 1000
    # Within the new window: merged, not published.
    record, change = fold(record, [alert(4, WINDOW_S + 20)])
    assert change is None
    record, change = fold(record, [alert(5, 2 * WINDOW_S + 5)])
    assert change == "updated"


def test_a_batch_spanning_windows_publishes_once():
    record, change = fold(None, [alert(0, 0), alert(1, WINDOW_S * 3), alert(2, WINDOW_S * 9)])
    assert change == "created"
    assert record.count == 3 and record.published_count == 3


def test_suppressed_only_findings_never_publish_but_count():
    record, change = fold(None, [alert(0, 0, suppressed_by="ex1")])
    assert change is None
    record, change = fold(record, [alert(1, WINDOW_S * 5, suppressed_by="ex2")])
    record, change = fold(record, [alert(2, WINDOW_S * 9, suppressed_by="ex1")])
    assert change is None
    assert (record.count, record.suppressed, record.status) == (0, 3, "suppressed")
    assert record.suppressed_by == ["ex1", "ex2"]
    assert record.samples == []
    assert record.published_time is None
    # A first unsuppressed alert publishes the finding, suppressed count kept.
    record, change = fold(record, [alert(3, WINDOW_S * 10)])
    assert change == "created"
    assert (record.count, record.suppressed, record.status) == (1, 3, "new")
    out = to_ocsf(record, change)
    assert out["unmapped"]["ramparts"]["suppressed"] == 3
    assert validate_ocsf(out) == []


def test_samples_are_bounded_first_ones_and_the_latest():
    record, _ = fold(None, [alert(n, n) for n in range(MAX_SAMPLES + 7)])
    assert record.count == MAX_SAMPLES + 7
    uids = [s["uid"] for s in record.samples]
    assert len(uids) == MAX_SAMPLES
    assert uids == [f"layer:e{n}" for n in range(MAX_SAMPLES - 1)] + [f"layer:e{MAX_SAMPLES + 6}"]
    out = to_ocsf(record, "created")
    assert len(out["evidences"]) == MAX_SAMPLES
    assert out["finding_info"]["related_events_count"] == MAX_SAMPLES + 7
    assert validate_ocsf(out) == []


def test_severity_is_the_highest_seen():
    record, _ = fold(None, [alert(0, 0, severity=2), alert(1, 1, severity=4), alert(2, 2)])
    assert record.severity == 4


def test_fold_needs_an_alert():
    with pytest.raises(ValueError, match="at least one alert"):
        fold(None, [])


def test_records_round_trip_as_items():
    record, _ = fold(None, [alert(0, 0), alert(1, 1, suppressed_by="x")])
    item = json.loads(json.dumps(record.to_item()))
    assert FindingRecord.from_item({**item, "not_a_field": 1}) == record


def test_to_ocsf_says_what_the_finding_is():
    record, change = fold(None, [alert(0, 0), alert(1, 5)])
    out = to_ocsf(record, change)
    assert validate_ocsf(out) == []
    info = out["finding_info"]
    assert (out["activity_name"], out["count"], out["severity"]) == ("Create", 2, "Medium")
    assert info["uid"] == record.id == alert(0, 0).finding_id
    assert info["analytic"]["uid"] == "t.rule"
    assert info["desc"] == "What it detects."
    assert (info["first_seen_time"], info["last_seen_time"]) == (T0, T0 + 5000)
    [attack] = info["attacks"]
    assert attack["technique"]["uid"] == "T1059"
    assert attack["sub_technique"] == {"uid": "T1059.004", "name": "Unix Shell"}
    assert attack["tactic"]["name"] == "Execution"
    assert out["resources"][0]["uid"].endswith(":function:orders")
    assert out["metadata"]["uid"] == f"{record.id}:2"
    assert to_ocsf(record, "updated")["activity_name"] == "Update"


def test_the_memory_store_is_idempotent_by_event_uid():
    store = MemoryStore()
    first = store.apply([alert(0, 0), alert(1, 1)])
    assert [p.change for p in first] == ["created"]
    again = store.apply([alert(0, 0), alert(1, 1)])
    assert again == []
    [record] = store.records.values()
    assert record.count == 2 and record.version == 1
    later = store.apply([alert(1, 1), alert(2, WINDOW_S + 5)])
    assert [p.change for p in later] == ["updated"]
    assert record.count == 3 and record.version == 2
    assert later[0].detail()["activity_name"] == "Update"


def test_group_keeps_order_by_finding_id():
    other = alert(9, 0)
    other.key = "other"
    grouped = group([alert(0, 0), other, alert(1, 1)])
    assert [[a.event_uid for a in v] for v in grouped.values()] == [
        ["layer:e0", "layer:e1"],
        ["layer:e9"],
    ]
