"""Rows of the report, read from the stored items (``docs/report.md`` lists their layouts).

Each ``parse_*`` function takes one stored item (a DynamoDB item as plain JSON) and returns
a row, ``None`` for an item of another kind that the report does not read (a finding's
event markers, the vulnerability indexes, the circuit breaker's counters), or raises
:class:`ItemError` saying what is wrong with it. The caller reports every such item as
unreadable, with its reference: nothing is skipped unseen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from collectors.model import SEVERITY_NAMES
from collectors.report.period import PeriodError, iso, parse_time

COVERAGE_RULE = "coverage.uncovered-workload"
VULN_RULE = "vulnerability"
SEVERITIES = SEVERITY_NAMES  # OCSF severity_id -> caption
MAX_SUMMARY = 240


class ItemError(ValueError):
    """A stored item the report cannot read; the message says which field and why."""


# -- field readers ---------------------------------------------------------------------------
def _req(item: Mapping[str, Any], name: str) -> Any:
    if name not in item or item[name] is None:
        raise ItemError(f"missing {name!r}")
    return item[name]


def _str(item: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = _req(item, name) if required else item.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ItemError(f"{name!r} is not a string: {type(value).__name__}")
    return value


def _int(item: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    if default is not None and item.get(name) is None:
        return default
    value = _req(item, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ItemError(f"{name!r} is not a whole number: {value!r:.80}")
    return value


def _dict(item: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = item.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ItemError(f"{name!r} is not an object: {type(value).__name__}")
    return value


def _time(item: Mapping[str, Any], name: str) -> int:
    text = _str(item, name)
    try:
        return parse_time(text)
    except PeriodError as exc:
        raise ItemError(f"{name!r}: {exc}") from None


def severity_name(severity_id: int) -> str:
    return SEVERITIES.get(severity_id, "Other")


def category_of(rule_id: str) -> str:
    """A rule's category: the part of its id before the first dot (``process``, ``file``)."""
    return rule_id.split(".", 1)[0] if rule_id else "unknown"


def summarise(value: str) -> str:
    """A short, one-line account of a before/after state (canonical JSON in the table)."""
    try:
        doc = json.loads(value)
    except (TypeError, ValueError):
        text = str(value)
    else:
        if isinstance(doc, dict):
            text = ", ".join(f"{k}={_compact(v)}" for k, v in doc.items()) or "{}"
        else:
            text = _compact(doc)
    text = " ".join(text.split())
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "none"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _arn_parts(arn: str) -> tuple[str | None, str | None]:
    """(account, region) of an ARN, when it is one."""
    parts = arn.split(":")
    if len(parts) >= 6 and parts[0] == "arn":
        return parts[4] or None, parts[3] or None
    return None, None


# -- findings --------------------------------------------------------------------------------
@dataclass(slots=True)
class FindingRow:
    """A finding of any kind (detection, coverage gap, vulnerability), as reported."""

    id: str
    kind: str  # detection | coverage | vulnerability
    rule_id: str
    category: str
    title: str
    severity_id: int
    severity: str
    resource_uid: str
    resource_type: str
    account: str
    region: str
    first_seen_ms: int
    last_seen_ms: int
    count: int
    suppressed: int
    status: str
    response_status: str = ""  # "<playbook>: <status>; ..." from the actions table / finding
    ref: str = ""  # the stored item's key, for example references

    @property
    def first_seen(self) -> str:
        return iso(self.first_seen_ms)

    @property
    def last_seen(self) -> str:
        return iso(self.last_seen_ms)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("first_seen_ms", "last_seen_ms"):
            out.pop(k)
        out["first_seen"] = self.first_seen
        out["last_seen"] = self.last_seen
        return out


def parse_finding_item(item: Mapping[str, Any]) -> FindingRow | None:
    """A findings-table item: ``finding#<id>``/``finding`` or ``vuln#<uid>``/``finding``."""
    pk = _str(item, "pk")
    sk = _str(item, "sk")
    if sk != "finding":
        return None  # event markers and indexes
    if pk.startswith("finding#"):
        return _detection(item, pk)
    if pk.startswith("vuln#"):
        return _vulnerability(item, pk)
    return None


def _detection(item: Mapping[str, Any], pk: str) -> FindingRow:
    fid = _str(item, "id")
    if pk != f"finding#{fid}":
        raise ItemError(f"'id' {fid!r} does not match the key {pk!r}")
    rule_id = _str(item, "rule_id")
    severity = _int(item, "severity")
    first, last = _int(item, "first_seen"), _int(item, "last_seen")
    if last < first:
        raise ItemError("'last_seen' is before 'first_seen'")
    resource = _dict(item, "resource")
    response = _dict(item, "response")
    status = _str(item, "status", required=False) or "new"
    response_status = ""
    if response:
        response_status = f"{response.get('playbook', '?')}: {response.get('status', '?')}"
    return FindingRow(
        id=fid,
        kind="coverage" if rule_id == COVERAGE_RULE else "detection",
        rule_id=rule_id,
        category=category_of(rule_id),
        title=_str(item, "title"),
        severity_id=severity,
        severity=severity_name(severity),
        resource_uid=str(resource.get("uid") or ""),
        resource_type=str(resource.get("type") or ""),
        account=_str(item, "account", required=False),
        region=_str(item, "region", required=False),
        first_seen_ms=first,
        last_seen_ms=last,
        count=_int(item, "count", default=0),
        suppressed=_int(item, "suppressed", default=0),
        status=status,
        response_status=response_status,
        ref=pk,
    )


def _vulnerability(item: Mapping[str, Any], pk: str) -> FindingRow:
    uid = _str(item, "id")
    if pk != f"vuln#{uid}":
        raise ItemError(f"'id' {uid!r} does not match the key {pk!r}")
    severity = _int(item, "severity_id")
    first, last = _int(item, "first_seen_ms"), _int(item, "last_seen_ms")
    try:
        finding = json.loads(_str(item, "finding"))
    except ValueError:
        raise ItemError("'finding' is not JSON") from None
    if not isinstance(finding, dict):
        raise ItemError("'finding' is not a JSON object")
    info = finding.get("finding_info") or {}
    package = _dict(item, "package")
    function = _str(item, "function", required=False)
    title = str(info.get("title") or "") if isinstance(info, dict) else ""
    if not title:
        title = f"{package.get('name', '?')} {package.get('version', '?')} is vulnerable"
    cloud = finding.get("cloud") if isinstance(finding.get("cloud"), dict) else {}
    account = str(((cloud or {}).get("account") or {}).get("uid") or "")
    region = str((cloud or {}).get("region") or "")
    arn_account, arn_region = _arn_parts(function)
    return FindingRow(
        id=uid,
        kind="vulnerability",
        rule_id=VULN_RULE,
        category=VULN_RULE,
        title=title,
        severity_id=severity,
        severity=severity_name(severity),
        resource_uid=function,
        resource_type="AwsLambdaFunction",
        account=account or arn_account or "",
        region=region or arn_region or "",
        first_seen_ms=first,
        last_seen_ms=last,
        count=1,
        suppressed=0,
        status=_str(item, "status"),
        ref=pk,
    )


# -- response --------------------------------------------------------------------------------
@dataclass(slots=True)
class ActionRow:
    """One action taken (``action#``) or planned by a dry run (``plan#``)."""

    finding_id: str
    playbook: str
    action: str
    kind: str  # action | plan
    status: str
    at_ms: int
    resource: str
    account: str
    region: str
    execution: str
    before: str
    after: str
    ref: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("at_ms")
        out["at"] = iso(self.at_ms)
        out["before_summary"] = summarise(self.before)
        out["after_summary"] = summarise(self.after)
        return out


@dataclass(slots=True)
class Decision:
    """What a run's approval step decided, as far as the stored items tell."""

    decision: str  # approved | denied | expired | pending | not-required | unknown
    by: str = ""
    at: str = ""
    reason: str = ""
    note: str = ""


@dataclass(slots=True)
class RunRow:
    """A playbook's run on a finding: its ``response#`` status, with its actions."""

    finding_id: str
    playbook: str
    status: str
    mode: str
    reason: str
    at_ms: int
    resource: str
    account: str
    execution: str
    approval: Decision
    ref: str
    actions: list[ActionRow] = field(default_factory=list)
    evidence: str = ""  # the evidence item's JSON, when one was captured

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding_id": self.finding_id,
            "playbook": self.playbook,
            "status": self.status,
            "mode": self.mode,
            "reason": self.reason,
            "at": iso(self.at_ms),
            "resource": self.resource,
            "account": self.account,
            "execution": self.execution,
            "approval": asdict(self.approval),
            "actions": len(self.actions),
            "evidence": bool(self.evidence),
            "ref": self.ref,
        }


@dataclass(slots=True)
class ActionItem:
    """An actions-table item of a finding, read: its kind and its row."""

    finding_id: str
    kind: str  # response | action | plan | evidence
    playbook: str
    at_ms: int
    row: RunRow | ActionRow | None = None
    evidence: str = ""


def parse_action_item(item: Mapping[str, Any]) -> ActionItem | None:
    pk = _str(item, "pk")
    sk = _str(item, "sk")
    if not pk.startswith("finding#"):
        return None  # the circuit breaker's counters
    finding_id = pk.removeprefix("finding#")
    kind, _, rest = sk.partition("#")
    if kind not in ("response", "action", "plan", "evidence") or not rest:
        raise ItemError(f"unknown actions-table item {sk!r}")
    at = _time(item, "at")
    if kind == "evidence":
        return ActionItem(
            finding_id, kind, rest, at, evidence=_str(item, "evidence", required=False)
        )
    if kind == "response":
        status = _str(item, "status")
        mode = _str(item, "mode", required=False)
        reason = _str(item, "reason", required=False)
        run = RunRow(
            finding_id=finding_id,
            playbook=rest,
            status=status,
            mode=mode,
            reason=reason,
            at_ms=at,
            resource=_str(item, "resource", required=False),
            account=_str(item, "account", required=False),
            execution=_str(item, "execution", required=False),
            approval=decision_of(item, status, mode, reason, at),
            ref=f"{pk} {sk}",
        )
        return ActionItem(finding_id, kind, rest, at, row=run)
    playbook = _str(item, "playbook")
    if not rest.startswith(playbook + "#"):
        raise ItemError(f"'playbook' {playbook!r} does not match the key {sk!r}")
    action = ActionRow(
        finding_id=finding_id,
        playbook=playbook,
        action=_str(item, "action", required=False) or rest[len(playbook) + 1 :],
        kind=kind,
        status=_str(item, "status"),
        at_ms=at,
        resource=_str(item, "resource", required=False),
        account=_str(item, "account", required=False),
        region=_str(item, "region", required=False),
        execution=_str(item, "execution", required=False),
        before=_str(item, "before", required=False),
        after=_str(item, "after", required=False),
        ref=f"{pk} {sk}",
    )
    return ActionItem(finding_id, kind, playbook, at, row=action)


def decision_of(
    item: Mapping[str, Any], status: str, mode: str, reason: str, at_ms: int
) -> Decision:
    """The approval decision of a run.

    An explicit ``approval`` attribute (``{decision, by, at, reason}``) wins. Otherwise it is
    read from the status: ``denied`` carries ``ramparts deny``'s cause (who, why) in its
    reason and was written when the denial arrived; ``expired`` and ``awaiting-approval``
    say themselves; a run in approval mode that went on to act was approved, but the status
    item does not record by whom or when (the report says so).
    """
    explicit = item.get("approval")
    if isinstance(explicit, dict) and explicit.get("decision"):
        return Decision(
            decision=str(explicit.get("decision")),
            by=str(explicit.get("by") or ""),
            at=str(explicit.get("at") or ""),
            reason=str(explicit.get("reason") or ""),
        )
    if status == "denied":
        by, why = "", reason
        _, _, cause = reason.partition(": ")
        try:
            doc = json.loads(cause)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            by, why = str(doc.get("by") or ""), str(doc.get("reason") or "")
        note = "" if by else "the denial does not name who denied it"
        return Decision("denied", by=by, at=iso(at_ms), reason=why, note=note)
    if status == "expired":
        return Decision("expired", at=iso(at_ms), note="no decision before the timeout")
    if status == "awaiting-approval":
        return Decision("pending", note="waiting for ramparts approve/deny")
    if mode == "approval" or reason.startswith("circuit breaker"):
        if status in ("applied", "failed", "released"):
            return Decision(
                "approved",
                note="approved with ramparts approve; the actions table does not record "
                "who approved or when",
            )
        return Decision("unknown", note=f"approval required; run {status}")
    return Decision("not-required")


# -- coverage --------------------------------------------------------------------------------
@dataclass(slots=True)
class CoveragePoint:
    """One coverage summary: covered/total, by workload type."""

    time_ms: int
    total: int
    covered: int
    by_type: dict[str, dict[str, int]]
    s3_key: str
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": iso(self.time_ms),
            "total": self.total,
            "covered": self.covered,
            "by_type": self.by_type,
            "s3_key": self.s3_key,
            "errors": self.errors,
        }


def parse_coverage_item(item: Mapping[str, Any]) -> CoveragePoint | None:
    if _str(item, "pk") != "coverage":
        return None
    when = _time(item, "sk")
    if item.get("time") is not None and _int(item, "time") // 1000 != when // 1000:
        raise ItemError("'time' does not match the key")
    summary = _dict(item, "summary")
    if not summary:
        raise ItemError("missing 'summary'")
    total, covered = _int(summary, "total"), _int(summary, "covered")
    if not 0 <= covered <= total:
        raise ItemError(f"'summary': covered {covered} of total {total}")
    by_type: dict[str, dict[str, int]] = {}
    for kind, counts in _dict(summary, "by_type").items():
        if not isinstance(counts, dict):
            raise ItemError(f"'summary.by_type.{kind}' is not an object")
        by_type[str(kind)] = {"total": _int(counts, "total"), "covered": _int(counts, "covered")}
    return CoveragePoint(
        time_ms=when,
        total=total,
        covered=covered,
        by_type=by_type,
        s3_key=_str(item, "s3_key"),
        errors=_int(item, "errors", default=0),
    )


@dataclass(slots=True)
class Gap:
    """An uncovered workload of a snapshot."""

    key: str
    type: str
    name: str
    account: str
    region: str
    problems: list[str]


def parse_snapshot(doc: Any) -> tuple[list[str], list[str], list[dict[str, str]], list[Gap]]:
    """(accounts, regions, listing errors, gaps) of a coverage snapshot document."""
    if not isinstance(doc, dict):
        raise ItemError("the snapshot is not a JSON object")
    workloads = doc.get("workloads")
    if not isinstance(workloads, list):
        raise ItemError("the snapshot has no 'workloads' list")
    gaps = []
    for i, w in enumerate(workloads):
        if not isinstance(w, dict) or not isinstance(w.get("covered"), bool):
            raise ItemError(f"workload {i} has no 'covered' flag")
        if w["covered"]:
            continue
        problems = w.get("problems") or []
        gaps.append(
            Gap(
                key=str(w.get("key") or ""),
                type=str(w.get("type") or ""),
                name=str(w.get("name") or ""),
                account=str(w.get("account") or ""),
                region=str(w.get("region") or ""),
                problems=[str(p) for p in problems] if isinstance(problems, list) else [],
            )
        )
    errors = [
        {k: str(e.get(k) or "") for k in ("account", "region", "service", "error")}
        for e in doc.get("errors") or []
        if isinstance(e, dict)
    ]
    accounts = [str(a) for a in doc.get("accounts") or []]
    regions = [str(r) for r in doc.get("regions") or []]
    return accounts, regions, errors, gaps
