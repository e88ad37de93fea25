"""Where findings go once stored: the ``ramparts`` EventBridge bus, Security Hub, SNS.

Each publisher raises :class:`PublishError` when something could not be delivered after its
retries; the ingest function then reports the batch item as failed, and the retry publishes
again (the store keeps the publication pending until every publisher succeeded).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3

from collectors.findings import Published
from collectors.rules.engine import SEVERITIES
from functions.asff import to_asff

SOURCE = "ramparts"
DETAIL_TYPE = "Ramparts Finding"
MAX_ENTRIES = 10  # PutEvents
MAX_FINDINGS = 100  # BatchImportFindings
MAX_ENTRY_BYTES = 250_000  # PutEvents: 256 KB per entry, with its other fields
_SEVERITY_NAMES = {v: k for k, v in SEVERITIES.items()}


class PublishError(RuntimeError):
    """Findings that could not be delivered; the message says which and why."""


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def detail_json(item: Published) -> str:
    """The OCSF Detection Finding as the event's detail, within PutEvents' size limit."""
    detail = item.detail()
    text = json.dumps(detail, separators=(",", ":"))
    if len(text.encode()) > MAX_ENTRY_BYTES:  # samples' objects are what makes it big
        detail.pop("evidences", None)
        text = json.dumps(detail, separators=(",", ":"))
    return text


class EventBridgePublisher:
    """``PutEvents`` of one "Ramparts Finding" per published finding, failed entries retried."""

    def __init__(
        self,
        bus_name: str = "ramparts",
        *,
        client: Any = None,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus_name = bus_name
        self.client = client if client is not None else boto3.client("events")
        self.max_attempts = max_attempts
        self.sleep = sleep

    def entry(self, item: Published) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": detail_json(item),
            "EventBusName": self.bus_name,
        }
        uid = str(item.record.resource.get("uid") or "")
        if uid.startswith("arn:"):
            entry["Resources"] = [uid]
        return entry

    def publish(self, items: Sequence[Published]) -> None:
        put_events(
            self.client,
            [self.entry(i) for i in items],
            what="finding",
            bus_name=self.bus_name,
            max_attempts=self.max_attempts,
            sleep=self.sleep,
        )


def put_events(
    client: Any,
    entries: Sequence[dict[str, Any]],
    *,
    what: str,
    bus_name: str,
    max_attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """``PutEvents`` in chunks of 10, retrying the entries EventBridge did not accept (with
    backoff); PublishError names what is still refused after ``max_attempts``."""
    for chunk in _chunks(list(entries), MAX_ENTRIES):
        pending = list(chunk)
        errors: list[str] = []
        for attempt in range(max_attempts):
            if attempt:
                sleep(0.1 * 2**attempt)
            resp = client.put_events(Entries=pending)
            if not resp.get("FailedEntryCount"):
                break
            results = resp.get("Entries") or []
            failed = []
            errors = []
            for entry, result in zip(pending, results, strict=False):
                if result.get("ErrorCode"):
                    failed.append(entry)
                    errors.append(f"{result.get('ErrorCode')}: {result.get('ErrorMessage', '')}")
            if not failed and len(results) < len(pending):
                failed = pending[len(results) :]
            pending = failed or pending
        else:
            raise PublishError(
                f"EventBridge: {len(pending)} {what}(s) not accepted by bus {bus_name} "
                f"after {max_attempts} attempts: {'; '.join(sorted(set(errors)))[:500]}"
            )


class SecurityHubPublisher:
    """``BatchImportFindings`` of each published finding as ASFF (``functions/asff.py``)."""

    def __init__(
        self,
        account: str,
        region: str,
        *,
        client: Any = None,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.region = region
        self.client = client if client is not None else boto3.client("securityhub")
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.clock = clock

    def publish(self, items: Sequence[Published]) -> None:
        now = int(self.clock() * 1000)
        findings = [to_asff(i.record, self.account, self.region, now) for i in items]
        for chunk in _chunks(findings, MAX_FINDINGS):
            self._import(list(chunk))

    def _import(self, findings: list[dict[str, Any]]) -> None:
        errors: list[str] = []
        for attempt in range(self.max_attempts):
            if attempt:
                self.sleep(0.1 * 2**attempt)
            resp = self.client.batch_import_findings(Findings=findings)
            failed = resp.get("FailedFindings") or []
            if not resp.get("FailedCount") and not failed:
                return
            ids = {f.get("Id") for f in failed}
            errors = [
                f"{f.get('Id')}: {f.get('ErrorCode')} {f.get('ErrorMessage', '')}" for f in failed
            ]
            findings = [f for f in findings if f["Id"] in ids] or findings
        raise PublishError(
            f"Security Hub: {len(findings)} finding(s) not imported after "
            f"{self.max_attempts} attempts: {'; '.join(errors)[:500]}"
        )


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


class SnsPublisher:
    """A readable message per newly created finding at or above ``min_severity``."""

    def __init__(self, topic_arn: str, min_severity: int = 4, *, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self.min_severity = min_severity
        self.client = client if client is not None else boto3.client("sns")

    def wanted(self, item: Published) -> bool:
        return item.change == "created" and item.record.severity >= self.min_severity

    @staticmethod
    def subject(item: Published) -> str:
        sev = _SEVERITY_NAMES.get(item.record.severity, str(item.record.severity)).upper()
        text = _ascii(f"[Ramparts {sev}] {item.record.title}")
        return text if len(text) <= 99 else text[:96] + "..."

    @staticmethod
    def message(item: Published) -> str:
        r = item.record
        sev = _SEVERITY_NAMES.get(r.severity, str(r.severity))
        res = r.resource
        first = dt.datetime.fromtimestamp(r.first_seen / 1000, dt.UTC).isoformat()
        last = dt.datetime.fromtimestamp(r.last_seen / 1000, dt.UTC).isoformat()
        lines = [
            r.title,
            "",
            f"Severity:  {sev}",
            f"Rule:      {r.rule_id}",
            f"Resource:  {res.get('type', '?')} {res.get('uid', '?')}",
            f"Account:   {r.account or 'unknown'}   Region: {r.region or 'unknown'}",
            f"Events:    {r.count} (first {first}, last {last})",
            f"Finding:   {r.id}",
        ]
        if r.techniques:
            lines.append(f"MITRE:     {', '.join(r.techniques)}")
        if r.description:
            lines += ["", r.description]
        summaries = [str(s["summary"]) for s in r.samples[:3] if s.get("summary")]
        if summaries:
            lines += ["", "What happened:"] + [f"  - {s[:300]}" for s in summaries]
        return "\n".join(lines)

    def publish(self, items: Sequence[Published]) -> None:
        for item in items:
            if not self.wanted(item):
                continue
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=self.subject(item),
                Message=self.message(item),
                MessageAttributes={
                    "severity": {"DataType": "Number", "StringValue": str(item.record.severity)},
                    "rule_id": {"DataType": "String", "StringValue": item.record.rule_id},
                },
            )
