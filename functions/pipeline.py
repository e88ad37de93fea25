"""What the ingest function does to records, without AWS: normalise, detect, merge, publish.

The ingest Lambda (``functions/ingest.py``) and ``ramparts replay --findings`` run this same
code; only the store (DynamoDB or memory) and the publishers (EventBridge, Security Hub,
SNS, or stdout) differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors import adapter, detect
from collectors.base import Batch, Context, Reject, excerpt
from collectors.findings import MemoryStore, Published
from collectors.model import OcsfEvent
from collectors.rules.engine import Alert, Engine, RuleFailure


class FindingStore(Protocol):
    def apply(self, alerts: Iterable[Alert]) -> list[Published]:
        """Merge alerts into stored findings, idempotently by event uid; what to publish."""
        ...


class Publisher(Protocol):
    def publish(self, items: Sequence[Published]) -> None: ...


class Observer(Protocol):
    """Sees every normalised batch after detection (coverage: which sensor reported)."""

    def observe(self, batch: Batch) -> None: ...


@dataclass(slots=True)
class Result:
    events: int = 0
    rejects: list[Reject] = field(default_factory=list)
    skipped: int = 0
    alerts: list[Alert] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    rule_failures: list[RuleFailure] = field(default_factory=list)

    @property
    def suppressed(self) -> int:
        return sum(1 for a in self.alerts if a.suppressed_by)


def normalise(record: Any, ctx: Context, source: str | None = None) -> Batch:
    """One record through its adapter (``source``, or detected); never raises."""
    src = source or detect(record)
    if src is None:
        return Batch(
            rejects=[Reject("unknown", "no adapter recognises this record", excerpt(record))]
        )
    try:
        return adapter(src).normalize(record, ctx)
    except Exception as exc:  # an adapter bug must not lose the rest of the batch
        return Batch(
            rejects=[Reject(src, f"internal error: {type(exc).__name__}: {exc}", excerpt(record))]
        )


def _finding_attributes(p: Published) -> dict[str, Any]:
    r = p.record
    return {
        "ramparts.finding.id": r.id,
        "ramparts.finding.change": p.change,
        "ramparts.rule": r.rule_id,
        "ramparts.severity": r.severity,
        "ramparts.finding.count": r.count,
        "ramparts.resource": str(r.resource.get("uid") or ""),
        "cloud.account.id": r.account,
        "cloud.region": r.region,
    }


class Pipeline:
    def __init__(
        self,
        engine: Engine | None = None,
        store: FindingStore | None = None,
        publishers: Sequence[Publisher] = (),
        observers: Sequence[Observer] = (),
        service: str = "ramparts-ingest",
    ) -> None:
        self.engine = engine or Engine()
        self.store: FindingStore = store if store is not None else MemoryStore()
        self.publishers = list(publishers)
        self.observers = list(observers)
        self.service = service

    def detect(self, events: Sequence[OcsfEvent]) -> tuple[list[Alert], list[RuleFailure]]:
        """Rules over events (in time order), state flushed; rule failures reported."""
        before = len(self.engine.failures)
        ordered = sorted(events, key=lambda e: e.time)
        alerts = self.engine.run(ordered)
        failures = self.engine.failures[before:]
        return alerts, failures

    def process(self, batch: Batch) -> Result:
        """Detect over a normalised batch, store the findings and publish what changed."""
        alerts, failures = self.detect(batch.events)
        published = self.store.apply(alerts)
        for item in published:
            self._finding_span(item)
        for publisher in self.publishers:
            publisher.publish(published)
        for o in self.observers:
            o.observe(batch)
        return Result(
            events=len(batch.events),
            rejects=list(batch.rejects),
            skipped=batch.skipped,
            alerts=alerts,
            published=published,
            signals=list(batch.signals),
            rule_failures=failures,
        )

    def _finding_span(self, p: Published) -> None:
        """A ``ramparts.finding`` span, in the trace of the sensor event when it had one."""
        from functions import telemetry

        r = p.record
        parent = (r.trace_id, r.span_id) if r.trace_id and r.span_id else None
        with telemetry.span(
            "ramparts.finding",
            service=self.service,
            parent=parent,
            attributes=_finding_attributes(p),
        ):
            pass
