"""The report: items read from a source, filtered to the period, aggregated and mapped.

:func:`build_report` returns a plain JSON document (``SCHEMA``/``SCHEMA_VERSION``; the
layout is documented in ``docs/report.md`` and kept stable by a test). What falls in the
period:

* findings whose activity span ``[first_seen, last_seen]`` meets it (a finding's ``count``
  is its total, not the part within the period: the store keeps no per-day counts);
* actions and plans recorded (``at``) in the period, and the runs (``response#`` items)
  whose status was written in the period or that have an action in it;
* coverage summaries taken in the period; the latest one's full snapshot gives the gaps and
  the accounts and regions inventoried.

Every item that cannot be read is listed under ``problems`` with where it is and why, and
counted in ``summary.unreadable``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from collectors.report.controls import CONTROLS, EVIDENCE, Evidence
from collectors.report.model import (
    ActionItem,
    ActionRow,
    CoveragePoint,
    Decision,
    FindingRow,
    Gap,
    ItemError,
    RunRow,
    parse_action_item,
    parse_coverage_item,
    parse_finding_item,
    parse_snapshot,
    severity_name,
)
from collectors.report.period import Period, iso
from collectors.report.source import RawItem, ReportSource, SourceError

SCHEMA = "ramparts-report"
SCHEMA_VERSION = 1
MAX_EXAMPLES = 3
UNREADABLE_MARK = "_ramparts_unreadable"  # an item the export could not read, kept as such


@dataclass(slots=True)
class Loaded:
    """Everything read from a source for a period, before aggregation."""

    period: Period
    findings: list[FindingRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    actions: list[ActionRow] = field(default_factory=list)
    coverage: list[CoveragePoint] = field(default_factory=list)
    latest_snapshot: dict[str, Any] | None = None
    problems: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def problem(self, table: str, ref: str, error: str) -> None:
        self.problems.append({"table": table, "ref": ref, "error": error})
        self.counts[table]["unreadable"] += 1


def _readable(loaded: Loaded, table: str, raw: RawItem) -> dict[str, Any] | None:
    loaded.counts[table]["read"] += 1
    if raw.error is not None:
        loaded.problem(table, raw.ref, raw.error)
        return None
    if not isinstance(raw.item, dict):
        loaded.problem(table, raw.ref, f"not a JSON object: {type(raw.item).__name__}")
        return None
    if UNREADABLE_MARK in raw.item:
        origin = raw.item.get("ref")
        text = str(raw.item[UNREADABLE_MARK])
        loaded.problem(table, raw.ref, f"{origin}: {text}" if origin else text)
        return None
    return raw.item


def _parsed(
    loaded: Loaded, source: ReportSource, table: str, parse: Callable[[Any], Any]
) -> Iterator[tuple[RawItem, Any]]:
    """The items of a table with ``parse``'s result: None for one that could not be read
    (reported), items of other kinds counted and left out."""
    for raw in source.items(table):
        item = _readable(loaded, table, raw)
        if item is None:
            yield raw, None
            continue
        try:
            parsed = parse(item)
        except ItemError as exc:
            loaded.problem(table, raw.ref, str(exc))
            yield raw, None
            continue
        if parsed is None:
            loaded.counts[table]["other kinds"] += 1
            continue
        yield raw, parsed


def _parsed_findings(loaded: Loaded, source: ReportSource) -> Iterator[tuple[RawItem, Any]]:
    return _parsed(loaded, source, "findings", parse_finding_item)


def _parsed_actions(loaded: Loaded, source: ReportSource) -> Iterator[tuple[RawItem, Any]]:
    return _parsed(loaded, source, "actions", parse_action_item)


def _parsed_coverage(loaded: Loaded, source: ReportSource) -> Iterator[tuple[RawItem, Any]]:
    return _parsed(loaded, source, "coverage", parse_coverage_item)


def _group_runs(items: list[ActionItem]) -> dict[tuple[str, str], RunRow]:
    runs: dict[tuple[str, str], RunRow] = {}
    for it in items:
        if it.kind == "response" and isinstance(it.row, RunRow):
            runs[(it.finding_id, it.playbook)] = it.row
    for it in items:
        key = (it.finding_id, it.playbook)
        run = runs.get(key)
        if run is None:  # actions recorded, status never written (a run cut short)
            run = RunRow(
                finding_id=it.finding_id,
                playbook=it.playbook,
                status="unknown",
                mode="",
                reason="no response status item for this playbook and finding",
                at_ms=it.at_ms,
                resource="",
                account="",
                execution="",
                approval=Decision("unknown", note="no response status item"),
                ref=f"finding#{it.finding_id} response#{it.playbook} (missing)",
            )
            runs[key] = run
        if isinstance(it.row, ActionRow):
            run.actions.append(it.row)
            run.resource = run.resource or it.row.resource
            run.account = run.account or it.row.account
        elif it.kind == "evidence":
            run.evidence = it.evidence
    for run in runs.values():
        run.actions.sort(key=lambda a: (a.at_ms, a.kind, a.action))
    return runs


def load(source: ReportSource, period: Period) -> Loaded:
    """Read every item of the source, keep what falls in the period, report the rest."""
    loaded = Loaded(period)
    for _raw, row in _parsed_findings(loaded, source):
        if row is None:
            continue
        if period.overlaps(row.first_seen_ms, row.last_seen_ms):
            loaded.findings.append(row)
        else:
            loaded.counts["findings"]["outside the period"] += 1

    action_items = [parsed for _raw, parsed in _parsed_actions(loaded, source) if parsed]
    runs = _group_runs(action_items)
    responses: dict[str, list[RunRow]] = defaultdict(list)
    for run in runs.values():
        responses[run.finding_id].append(run)
        in_period = [a for a in run.actions if period.contains(a.at_ms)]
        loaded.actions.extend(in_period)
        if in_period or period.contains(run.at_ms):
            loaded.runs.append(run)
        else:
            loaded.counts["actions"]["runs outside the period"] += 1
    loaded.actions.sort(key=lambda a: (a.at_ms, a.finding_id, a.playbook, a.kind, a.action))
    loaded.runs.sort(key=lambda r: (r.at_ms, r.finding_id, r.playbook))
    for row in loaded.findings:
        known = sorted(responses.get(row.id, []), key=lambda r: (r.at_ms, r.playbook))
        if known:
            row.response_status = "; ".join(f"{r.playbook}: {r.status}" for r in known)
    loaded.findings.sort(key=lambda f: (-f.severity_id, f.first_seen_ms, f.id))

    for _raw, point in _parsed_coverage(loaded, source):
        if point is None:
            continue
        if period.contains(point.time_ms):
            loaded.coverage.append(point)
        else:
            loaded.counts["coverage"]["outside the period"] += 1
    loaded.coverage.sort(key=lambda p: p.time_ms)
    if loaded.coverage:
        latest = loaded.coverage[-1]
        try:
            doc = source.snapshot(latest.s3_key)
            accounts, regions, errors, gaps = parse_snapshot(doc)
        except (SourceError, ItemError) as exc:
            loaded.problem("snapshots", latest.s3_key, str(exc))
        else:
            loaded.latest_snapshot = {
                "accounts": accounts,
                "regions": regions,
                "errors": errors,
                "gaps": gaps,
            }
    return loaded


# -- aggregation -----------------------------------------------------------------------------
def _by_severity(findings: list[FindingRow]) -> list[dict[str, Any]]:
    counts = Counter(f.severity_id for f in findings)
    ids = sorted(set(counts) | {1, 2, 3, 4, 5}, reverse=True)
    return [{"severity_id": s, "severity": severity_name(s), "findings": counts[s]} for s in ids]


def _group(findings: list[FindingRow], key: str) -> list[dict[str, Any]]:
    groups: dict[tuple[str, ...], list[FindingRow]] = defaultdict(list)
    for f in findings:
        if key == "rule":
            groups[(f.rule_id, f.category)].append(f)
        else:
            groups[(f.resource_uid, f.resource_type)].append(f)
    out = []
    for k, rows in groups.items():
        entry: dict[str, Any] = (
            {"rule_id": k[0], "category": k[1]}
            if key == "rule"
            else {"resource_uid": k[0], "resource_type": k[1]}
        )
        top = max(r.severity_id for r in rows)
        entry.update(
            findings=len(rows),
            occurrences=sum(r.count for r in rows),
            max_severity_id=top,
            max_severity=severity_name(top),
            first_seen=iso(min(r.first_seen_ms for r in rows)),
            last_seen=iso(max(r.last_seen_ms for r in rows)),
            open=sum(1 for r in rows if r.status not in ("resolved", "closed")),
        )
        out.append(entry)
    name = "rule_id" if key == "rule" else "resource_uid"
    out.sort(key=lambda e: (-e["findings"], -e["max_severity_id"], e[name]))
    return out


def _matches(e: Evidence, f: FindingRow) -> bool:
    if f.kind not in e.finding_kinds:
        return False
    if e.suppressed_only and f.suppressed <= 0:
        return False
    return any(fnmatch.fnmatchcase(f.rule_id, p) for p in e.rules)


def evidence_items(loaded: Loaded) -> dict[str, dict[str, Any]]:
    """Each evidence kind: its count and example references in the period."""
    out: dict[str, dict[str, Any]] = {}
    for e in EVIDENCE:
        refs: list[str]
        extra: dict[str, Any] = {}
        if e.source == "coverage":
            refs = [p.s3_key for p in reversed(loaded.coverage)]
        elif e.source == "findings":
            rows = [f for f in loaded.findings if _matches(e, f)]
            refs = [f.ref for f in rows]
            extra["occurrences"] = sum(f.suppressed if e.suppressed_only else f.count for f in rows)
        elif e.source == "actions":
            refs = [
                a.ref
                for a in loaded.actions
                if a.kind == "action"
                and a.status == "applied"
                and a.playbook.startswith("release-") == bool(e.release)
            ]
        elif e.source == "approvals":
            refs = [
                r.ref
                for r in loaded.runs
                if r.approval.decision in ("approved", "denied", "expired")
            ]
        elif e.source == "runs":
            refs = [r.ref for r in loaded.runs]
        else:  # audit-trail: every record of the period
            refs = [r.ref for r in loaded.runs] + [a.ref for a in loaded.actions]
            refs += [
                f"finding#{r.finding_id} evidence#{r.playbook}" for r in loaded.runs if r.evidence
            ]
        out[e.id] = {
            "id": e.id,
            "title": e.title,
            "count": len(refs),
            "examples": refs[:MAX_EXAMPLES],
            **extra,
        }
    return out


def control_mapping(evidence: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in CONTROLS:
        items = [evidence[e] for e in c.evidence]
        present = sum(1 for i in items if i["count"] > 0)
        out.append(
            {
                "framework": c.framework,
                "control": c.id,
                "title": c.title,
                "status": "evidence" if present else "no-evidence",
                "evidence_kinds_with_items": present,
                "evidence": items,
                "limits": c.limits,
            }
        )
    return out


def _gap_dict(g: Gap) -> dict[str, Any]:
    return asdict(g)


def build_report(
    source: ReportSource, period: Period, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The report document for a period (see the module docstring)."""
    loaded = load(source, period)
    return assemble(loaded, source.describe(), now=now)


def assemble(
    loaded: Loaded, described: dict[str, Any], *, now: dt.datetime | None = None
) -> dict[str, Any]:
    findings = loaded.findings
    latest_point = loaded.coverage[-1] if loaded.coverage else None
    snap = loaded.latest_snapshot
    accounts = {f.account for f in findings if f.account}
    accounts |= {r.account for r in loaded.runs if r.account}
    regions = {f.region for f in findings if f.region}
    regions |= {a.region for a in loaded.actions if a.region}
    latest: dict[str, Any] | None = None
    if latest_point is not None:
        latest = {
            **latest_point.to_dict(),
            "ratio": round(latest_point.covered / latest_point.total, 4)
            if latest_point.total
            else None,
            "snapshot_read": snap is not None,
            "gaps": [_gap_dict(g) for g in snap["gaps"]] if snap else [],
            "listing_errors": snap["errors"] if snap else [],
        }
    evidence = evidence_items(loaded)
    severity_counts = _by_severity(findings)
    no_data = not (findings or loaded.runs or loaded.actions or loaded.coverage)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": stamp,
        "period": loaded.period.to_dict(),
        "source": described,
        "scope": {
            "accounts": sorted(accounts | set(snap["accounts"] if snap else [])),
            "regions": sorted(regions | set(snap["regions"] if snap else [])),
            "inventoried_accounts": sorted(snap["accounts"]) if snap else [],
            "inventoried_regions": sorted(snap["regions"]) if snap else [],
        },
        "summary": {
            "no_data": no_data,
            "findings": len(findings),
            "findings_by_kind": dict(sorted(Counter(f.kind for f in findings).items())),
            "findings_by_severity": {e["severity"]: e["findings"] for e in severity_counts},
            "open_findings": sum(1 for f in findings if f.status not in ("resolved", "closed")),
            "runs": len(loaded.runs),
            "actions": len(loaded.actions),
            "approvals": dict(sorted(Counter(r.approval.decision for r in loaded.runs).items())),
            "coverage_snapshots": len(loaded.coverage),
            "latest_coverage_ratio": latest["ratio"] if latest else None,
            "controls_with_evidence": sum(
                1 for c in control_mapping(evidence) if c["status"] == "evidence"
            ),
            "controls": len(CONTROLS),
            "unreadable": len(loaded.problems),
        },
        "coverage": {
            "points": [p.to_dict() for p in loaded.coverage],
            "latest": latest,
        },
        "findings": {
            "by_severity": severity_counts,
            "by_rule": _group(findings, "rule"),
            "by_resource": _group(findings, "resource"),
            "items": [f.to_dict() for f in findings],
        },
        "response": {
            "runs": [r.to_dict() for r in loaded.runs],
            "actions": [a.to_dict() for a in loaded.actions],
        },
        "controls": control_mapping(evidence),
        "read": {t: dict(sorted(c.items())) for t, c in sorted(loaded.counts.items())},
        "problems": loaded.problems,
    }


# -- export ----------------------------------------------------------------------------------
def _unreadable(raw: RawItem) -> Any:
    if raw.error is not None:
        return {UNREADABLE_MARK: raw.error, "ref": raw.ref}
    return raw.item


def select_for_export(
    source: ReportSource, period: Period
) -> tuple[dict[str, list[Any]], list[tuple[str, Any, str | None]]]:
    """The items an offline rerun of the report for ``period`` needs, and the snapshot.

    Findings and coverage summaries of the period, every item of the findings whose
    response has activity in it, and every item that cannot be read (so that the offline
    report lists it too).
    """
    loaded = Loaded(period)
    findings = [
        _unreadable(raw)
        for raw, row in _parsed_findings(loaded, source)
        if row is None or period.overlaps(row.first_seen_ms, row.last_seen_ms)
    ]
    parsed = list(_parsed_actions(loaded, source))
    active = {p.finding_id for _raw, p in parsed if p is not None and period.contains(p.at_ms)}
    actions = [_unreadable(raw) for raw, p in parsed if p is None or p.finding_id in active]
    coverage: list[Any] = []
    latest: CoveragePoint | None = None
    for raw, point in _parsed_coverage(loaded, source):
        if point is None:
            coverage.append(_unreadable(raw))
        elif period.contains(point.time_ms):
            coverage.append(raw.item)
            if latest is None or point.time_ms > latest.time_ms:
                latest = point
    snapshots: list[tuple[str, Any, str | None]] = []
    if latest is not None:
        try:
            snapshots.append((latest.s3_key, source.snapshot(latest.s3_key), None))
        except SourceError as exc:
            snapshots.append((latest.s3_key, None, str(exc)))
    return {"findings": findings, "actions": actions, "coverage": coverage}, snapshots
