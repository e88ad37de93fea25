"""Findings: alerts merged by (rule, resource, grouping key) into OCSF Detection Findings.

A finding's id is derived from its rule, its resource and the rule's grouping key
(:attr:`collectors.rules.engine.Alert.finding_id`), so the same activity always lands on the
same finding, whichever batch, function instance or replay sees it. The first occurrence is
published at once; repeats are merged into it (count, first/last seen, sample events) and
published again at most once per rule window, when the count has grown; alerts an exception
suppressed are counted on the finding (``suppressed``) and never published. Nothing is
dropped unseen.

This module is pure: :func:`fold` merges alerts into a stored :class:`FindingRecord`, and
:class:`MemoryStore` keeps records in a dict for replay and tests. The DynamoDB store (with
conditional writes, so a retried batch never counts twice) lives in ``functions/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from collectors.model import (
    Account,
    Analytic,
    Attack,
    Cloud,
    DetectionFinding,
    Device,
    FindingInfo,
    Metadata,
    Product,
    RelatedEvent,
    ResourceDetails,
    Tactic,
    Technique,
)
from collectors.rules.engine import Alert
from collectors.rules.mitre import tactic_of, technique_name

MAX_SAMPLES = 5  # sample events kept on a finding (the first ones, then the latest)
PRODUCT = Product(name="Ramparts", vendor_name="Ramparts", uid="ramparts-detections")

Change = Literal["created", "updated"]

_EVIDENCE_KEYS = (
    "actor",
    "api",
    "connection_info",
    "device",
    "dst_endpoint",
    "file",
    "process",
    "query",
    "src_endpoint",
)


def sample_of(alert: Alert) -> dict[str, Any]:
    """What a finding keeps of one event: ids, time, summary and its key objects."""
    ev = alert.event
    data = ev.to_ocsf()
    sample: dict[str, Any] = {
        "uid": alert.event_uid,
        "type_uid": data["type_uid"],
        "type": data["type_name"],
        "time": alert.time,
        "summary": alert.summary[:500],
        "source": alert.event.metadata.product.name,
    }
    objs = {k: data[k] for k in _EVIDENCE_KEYS if k in data and k != "device"}
    if objs:
        sample["objects"] = objs
    if ev.disposition:
        sample["disposition"] = ev.disposition
    trace_id = (ev.unmapped or {}).get("trace_id")
    if isinstance(trace_id, str):
        sample["trace_id"] = trace_id
    if alert.evidence:
        sample["evidence"] = dict(alert.evidence)
    return sample


@dataclass(slots=True)
class FindingRecord:
    """A finding as stored (DynamoDB item, memory): everything needed to publish it again."""

    id: str
    rule_id: str
    title: str
    severity: int
    techniques: list[str]
    key: str
    resource: dict[str, Any]  # OCSF resource_details
    device: dict[str, Any] | None
    account: str | None
    region: str | None
    first_seen: int
    last_seen: int
    count: int = 0
    suppressed: int = 0
    suppressed_by: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    status: str = "new"  # new | suppressed (only suppressed alerts so far) | ... (response)
    published_time: int | None = None  # event time of the last publication
    published_count: int = 0
    window_s: int = 300
    description: str = ""
    version: int = 0  # for conditional writes
    response: dict[str, Any] | None = None  # set by playbooks
    trace_id: str | None = None  # the OpenTelemetry trace of the first traced occurrence
    span_id: str | None = None  # and the span in the function that saw it

    def to_item(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> FindingRecord:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in item.items() if k in names})


def new_record(alert: Alert) -> FindingRecord:
    wl = alert.workload
    device_obj = getattr(alert.event, "device", None)
    device = device_obj.model_dump(mode="json", exclude_none=True) if device_obj else None
    if wl is not None:
        resource = wl.resource().model_dump(mode="json", exclude_none=True)
    else:
        resource = ResourceDetails(
            uid=alert.resource_uid, type="AWS::::Account", region=alert.region
        ).model_dump(mode="json", exclude_none=True)
    return FindingRecord(
        id=alert.finding_id,
        rule_id=alert.rule.id,
        title=alert.title,
        severity=alert.severity,
        techniques=list(alert.techniques or alert.rule.techniques),
        key=alert.key,
        resource=resource,
        device=device,
        account=alert.account,
        region=alert.region,
        first_seen=alert.time,
        last_seen=alert.time,
        window_s=alert.rule.window_s,
        description=alert.rule.description,
        status="suppressed" if alert.suppressed_by else "new",
    )


def fold(
    record: FindingRecord | None, alerts: Iterable[Alert]
) -> tuple[FindingRecord, Change | None]:
    """Merge alerts (of one finding id, not yet counted) into its record.

    Returns the record and what to publish: ``created`` for the first unsuppressed
    occurrence, ``updated`` when the count grew and a window has passed since the last
    publication, else None.
    """
    change: Change | None = None
    latest: Alert | None = None  # the last alert past MAX_SAMPLES: sampled once, at the end
    for a in alerts:
        if record is None:
            record = new_record(a)
        record.first_seen = min(record.first_seen, a.time)
        record.last_seen = max(record.last_seen, a.time)
        if a.suppressed_by:
            record.suppressed += 1
            if a.suppressed_by not in record.suppressed_by:
                record.suppressed_by.append(a.suppressed_by)
            continue
        record.count += 1
        record.severity = max(record.severity, a.severity)
        if record.status == "suppressed":
            record.status = "new"
        if record.trace_id is None:
            un = a.event.unmapped or {}
            tid, sid = un.get("trace_id"), un.get("span_id")
            if isinstance(tid, str):
                record.trace_id = tid
                record.span_id = sid if isinstance(sid, str) else None
        if len(record.samples) < MAX_SAMPLES:
            record.samples.append(sample_of(a))
        else:  # keep the first ones and the latest
            latest = a
        if record.published_time is None:
            change = "created"
            record.published_time = a.time
            record.published_count = record.count
        elif (
            change is None
            and a.time - record.published_time >= record.window_s * 1000
            and record.count > record.published_count
        ):
            change = "updated"
            record.published_time = a.time
            record.published_count = record.count
    if record is None:
        raise ValueError("fold() needs at least one alert")
    if latest is not None:
        record.samples[-1] = sample_of(latest)
    if change is not None:
        record.published_count = record.count
    return record, change


def _attacks(techniques: list[str]) -> list[Attack] | None:
    out = []
    for t in techniques:
        head = t.split(".", 1)[0]
        tac = tactic_of(head)
        attack = Attack(
            technique=Technique(uid=head, name=technique_name(head)),
            tactic=Tactic(uid=tac[0], name=tac[1]) if tac else None,
            version="v16",
        )
        if "." in t:
            attack.sub_technique = Technique(uid=t, name=technique_name(t))
        out.append(attack)
    return out or None


def to_ocsf(
    record: FindingRecord, change: Change | None = None, now_ms: int | None = None
) -> dict[str, Any]:
    """The finding as an OCSF Detection Finding (the ``detail`` of a Ramparts Finding event)."""
    activity = DetectionFinding.UPDATE if change == "updated" else DetectionFinding.CREATE
    related = [
        RelatedEvent(uid=s["uid"], type_uid=s.get("type_uid"), type=s.get("type"))
        for s in record.samples
    ]
    evidences = []
    for s in record.samples:
        ev: dict[str, Any] = dict(s.get("objects") or {})
        ev["uid"] = s["uid"]
        ev["name"] = s.get("type")
        ev["data"] = {
            k: s[k]
            for k in ("summary", "time", "source", "disposition", "evidence", "trace_id")
            if k in s
        }
        evidences.append(ev)
    finding = DetectionFinding(
        activity_id=activity,
        severity_id=record.severity,
        time=record.last_seen if now_ms is None else now_ms,
        metadata=Metadata(
            product=PRODUCT,
            uid=f"{record.id}:{record.published_count or record.count}",
            event_code=record.rule_id,
            correlation_uid=record.id,
        ),
        cloud=Cloud(
            region=record.region,
            account=Account(uid=record.account) if record.account else None,
        ),
        message=record.title,
        status_id=1 if record.status in ("new", "suppressed") else 2,
        status="New" if record.status in ("new", "suppressed") else "In Progress",
        finding_info=FindingInfo(
            uid=record.id,
            title=record.title,
            desc=record.description or None,
            types=[record.rule_id],
            analytic=Analytic(uid=record.rule_id, name=record.rule_id, category="Ramparts rule"),
            attacks=_attacks(record.techniques),
            created_time=record.first_seen,
            modified_time=record.last_seen,
            first_seen_time=record.first_seen,
            last_seen_time=record.last_seen,
            related_events=related or None,
            related_events_count=record.count,
            product_uid="ramparts-detections",
        ),
        resources=[ResourceDetails.model_validate(record.resource)],
        device=Device.model_validate(record.device) if record.device else None,
        count=record.count,
        start_time=record.first_seen,
        end_time=record.last_seen,
        confidence_id=3 if record.severity >= 4 else 2,
        evidences=evidences or None,
        unmapped={
            "ramparts": {
                "grouping_key": record.key,
                "suppressed": record.suppressed,
                "suppressed_by": record.suppressed_by,
                **({"response": record.response} if record.response else {}),
                **({"trace_id": record.trace_id} if record.trace_id else {}),
                **({"span_id": record.span_id} if record.span_id else {}),
            }
        },
    )
    return finding.to_ocsf()


@dataclass(slots=True)
class Published:
    """A finding to publish (and to route to response)."""

    record: FindingRecord
    change: Change

    def detail(self) -> dict[str, Any]:
        return to_ocsf(self.record, self.change)


def group(alerts: Iterable[Alert]) -> dict[str, list[Alert]]:
    """Alerts by finding id, in order."""
    out: dict[str, list[Alert]] = {}
    for a in alerts:
        out.setdefault(a.finding_id, []).append(a)
    return out


class MemoryStore:
    """Findings in memory, idempotent by event uid (what ``replay --findings`` uses)."""

    def __init__(self) -> None:
        self.records: dict[str, FindingRecord] = {}
        self._seen: dict[str, set[str]] = {}

    def apply(self, alerts: Iterable[Alert]) -> list[Published]:
        out = []
        for fid, items in group(alerts).items():
            seen = self._seen.setdefault(fid, set())
            fresh = []
            for a in items:
                if a.event_uid in seen:
                    continue
                seen.add(a.event_uid)
                fresh.append(a)
            if not fresh:
                continue
            record, change = fold(self.records.get(fid), fresh)
            record.version += 1
            self.records[fid] = record
            if change is not None:
                out.append(Published(record, change))
        return out
