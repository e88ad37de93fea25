"""Built-in rules: findings of other detectors (Falco, GuardDuty) become Ramparts findings,
so that one response path serves them all."""

from __future__ import annotations

from typing import Any

from collectors.model import DetectionFinding
from collectors.rules.engine import CRITICAL, INFO, MEDIUM, Hit, RuleContext, rule

_ARCHIVED = 5  # OCSF status_id Archived (the GuardDuty adapter's mark for archived findings)


def _severity(event: DetectionFinding) -> int:
    """The source's severity as the adapter translated it; Unknown (0) or Other: medium."""
    sev = event.severity_id
    return sev if INFO <= sev <= CRITICAL else MEDIUM


def _attack_ids(event: DetectionFinding) -> list[str]:
    out: list[str] = []
    for a in event.finding_info.attacks or ():
        for t in (a.sub_technique, a.technique):
            if t is not None and t.uid and t.uid not in out:
                out.append(t.uid)
        if a.tactic is not None and a.tactic.uid and a.tactic.uid not in out:
            out.append(a.tactic.uid)
    return out


@rule(
    id="falco.alert",
    title="Falco alert",
    severity=MEDIUM,
    techniques=["T1059"],
    sources=["falco"],
    classes=[DetectionFinding],
)
def falco_alert(event: DetectionFinding, ctx: RuleContext) -> Hit | None:
    """Every Falco alert becomes a Ramparts finding about the workload Falco names, with
    Falco's priority as the adapter translated it (emergency/alert/critical → critical,
    error → high, warning → medium, notice → low, info/debug → informational; unknown →
    medium) and Falco's rule name as the title. One finding per Falco rule and workload;
    the rule's MITRE tags are the finding's techniques (and in the evidence); the technique
    the rule itself declares (T1059, what most of Falco's stock rules are about) is only the
    default for alerts without tags. Alerts an adapter marks as not alerts (``is_alert``
    false) are left out."""
    if event.is_alert is False:
        return None
    info = event.finding_info
    name = (info.analytic.name if info.analytic else None) or info.title or "Falco rule"
    un = event.unmapped or {}
    evidence: dict[str, Any] = {"falco_rule": name}
    if isinstance(un.get("priority"), str):
        evidence["priority"] = un["priority"]
    if isinstance(un.get("source"), str):
        evidence["falco_source"] = un["source"]
    attacks = _attack_ids(event)
    if attacks:
        evidence["mitre"] = attacks
    if event.metadata.labels:
        evidence["tags"] = list(event.metadata.labels)[:32]
    return Hit(
        key=name,
        title=f"Falco: {name}",
        severity=_severity(event),
        evidence=evidence,
        techniques=tuple(attacks) or None,
    )


@rule(
    id="guardduty.finding",
    title="GuardDuty finding",
    severity=MEDIUM,
    techniques=["T1071"],
    sources=["guardduty"],
    classes=[DetectionFinding],
)
def guardduty_finding(event: DetectionFinding, ctx: RuleContext) -> Hit | None:
    """Every active GuardDuty finding about a workload becomes a Ramparts finding, with
    GuardDuty's title and its severity as the adapter translated it (9-10 critical, 7-8.9
    high, 4-6.9 medium, 1-3.9 low); updates of the same finding (its count grew) merge into
    it. Archived findings (closed by a user or a suppression rule: activity Close, status
    Archived) and GuardDuty's sample findings (``is_alert`` false) never fire. One finding
    per GuardDuty finding type and workload; GuardDuty's own ATT&CK mapping is the
    finding's techniques (the declared one is only the default for findings without one)."""
    if (
        event.is_alert is False
        or event.activity_id == DetectionFinding.CLOSE
        or event.status_id == _ARCHIVED
    ):
        return None
    info = event.finding_info
    ftype = event.metadata.event_code or (info.types[0] if info.types else None) or "GuardDuty"
    evidence: dict[str, Any] = {"finding_type": ftype, "guardduty_id": info.uid}
    if event.count is not None:
        evidence["count"] = event.count
    if info.src_url:
        evidence["console"] = info.src_url
    attacks = _attack_ids(event)
    if attacks:
        evidence["mitre"] = attacks
    gd = (event.unmapped or {}).get("guardduty")
    if isinstance(gd, dict) and isinstance(gd.get("severity"), int | float):
        evidence["guardduty_severity"] = gd["severity"]
    return Hit(
        key=ftype,
        title=info.title or f"GuardDuty: {ftype}",
        severity=_severity(event),
        summary=info.desc or event.message,
        evidence=evidence,
        techniques=tuple(attacks) or None,
    )
