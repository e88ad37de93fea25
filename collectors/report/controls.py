"""Which report items evidence which controls: the mapping, as data.

The report never says a control is *met*. For each control it lists the kinds of evidence
Ramparts produces that an assessor can use when testing it, how many items of each the
period holds, and a few references to look at. Absence of evidence in a period is shown as
such ("no evidence in the period"), which is itself worth knowing.

Evidence kinds (:data:`EVIDENCE`) and why each control (:data:`CONTROLS`) lists them:

PCI DSS v4.0
    10.2.1 — audit logs enabled and active for all system components. Coverage snapshots
    show, per workload, whether a sensor is attached and *reporting*; the coverage gaps are
    the components for which it is not.
    10.4.1.1 — automated mechanisms perform audit log reviews. Every detection is the
    result of the rules reading the sensors' and sources' logs automatically.
    10.4.3 — exceptions and anomalies found by the review are addressed. Response runs and
    their actions, approvals and the recorded before/after state show what was done.
    10.7.2 — failures of critical security control systems are detected, alerted and
    addressed. A sensor that stops reporting, is switched off, or is tampered with becomes a
    coverage finding or a sensor finding.
    11.5.1 — intrusion-detection/-prevention techniques detect and/or prevent intrusions.
    Ramparts' IDS is host- and workload-based (process, network and DNS behaviour inside
    functions, VMs and containers) plus GuardDuty and Falco; blocks by the sensor in enforce
    mode are prevention. It does not watch the network perimeter itself.
    11.5.1.1 — covert malware communication channels (a service-provider requirement). DNS
    tunnelling, Tor and mining-pool detections.
    11.5.2 — a change-detection mechanism alerts on unauthorised modification of critical
    files. Writes to system files that control access or start-up, LD_PRELOAD and kernel
    module changes. Ramparts alerts on the change as it happens; it does not run the weekly
    file comparison the requirement also asks for.

SOC 2 (Trust Services Criteria, CC7 System Operations)
    CC7.1 — detection and monitoring to identify configuration changes that introduce
    vulnerabilities and susceptibilities to newly discovered vulnerabilities: vulnerability
    findings (deployed packages against current advisories), coverage drift (a layer or
    wrapper removed), critical-file changes.
    CC7.2 — components are monitored for anomalies indicative of malicious acts: every
    detection, the coverage that says what is monitored, and sensor health.
    CC7.3 — security events are evaluated to decide whether they are incidents: each finding
    carries severity and status, and approvals record a person's evaluation before acting.
    CC7.4 — identified incidents are responded to (understand, contain, remediate,
    communicate): containment actions, approvals and the audit trail of each run.
    CC7.5 — activities to recover from incidents: release playbooks restoring what a
    containment changed, with before/after state.

CIS Controls v8
    8.2 Collect Audit Logs and 8.9 Centralize Audit Logs — coverage snapshots (sensors
    reporting from every account and region into the core account), and detections as
    proof the collected logs arrive. 8.8 Collect Command-Line Audit Logs — process
    detections carry the command lines the sensors recorded. 8.11 Conduct Audit Log Reviews
    — automated review (detections) and the human decisions (approvals). 8.12 Collect
    Service Provider Logs — GuardDuty findings ingested.
    13.1 Centralize Security Event Alerting — every detection lands in one findings table
    and bus. 13.2 Host-Based Intrusion Detection — coverage plus process and file
    detections. 13.3 Network Intrusion Detection — network and DNS detections, GuardDuty.
    13.7 Host-Based Intrusion Prevention — sensor blocks and containment actions.
    13.11 Tune Security Event Alerting Thresholds — alerts suppressed by tuning exceptions
    are counted on their findings, so tuning is visible rather than silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Source = Literal["coverage", "findings", "actions", "approvals", "runs", "audit-trail"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """A kind of evidence: which report items it counts."""

    id: str
    title: str
    source: Source
    # findings: fnmatch patterns on the rule id ("*" = every detection); kinds of finding
    rules: tuple[str, ...] = ()
    finding_kinds: tuple[str, ...] = ("detection",)
    suppressed_only: bool = False
    # actions / runs: playbooks by prefix ("release-"), or "" for containment playbooks
    release: bool | None = None


EVIDENCE: tuple[Evidence, ...] = (
    Evidence(
        "coverage-snapshots", "Coverage snapshots (sensor attached and reporting)", "coverage"
    ),
    Evidence(
        "coverage-gaps",
        "Coverage gaps found (uncovered-workload findings)",
        "findings",
        rules=("coverage.uncovered-workload",),
        finding_kinds=("coverage",),
    ),
    Evidence(
        "sensor-health",
        "Sensor tampering and broken-policy findings",
        "findings",
        rules=("layer.sensor-finding",),
    ),
    Evidence("all-detections", "Detections by the rules (every category)", "findings", ("*",)),
    Evidence(
        "process-detections", "Process detections (command lines)", "findings", ("process.*",)
    ),
    Evidence(
        "file-integrity",
        "Critical file changes (system files, LD_PRELOAD, kernel modules)",
        "findings",
        rules=("file.system-file-write", "process.ld-preload", "process.kernel-module"),
    ),
    Evidence(
        "network-detections", "Network and DNS detections", "findings", ("network.*", "dns.*")
    ),
    Evidence(
        "covert-channels",
        "Covert channels (DNS tunnelling, Tor, mining pools)",
        "findings",
        rules=("dns.tunnelling", "network.tor", "network.mining-pool"),
    ),
    Evidence(
        "provider-detections",
        "Provider and host-sensor findings ingested (GuardDuty, Falco)",
        "findings",
        rules=("guardduty.*", "falco.*"),
    ),
    Evidence("prevention", "Operations blocked by the sensor", "findings", ("layer.blocked",)),
    Evidence(
        "vulnerabilities",
        "Vulnerability findings (deployed packages)",
        "findings",
        rules=("*",),
        finding_kinds=("vulnerability",),
    ),
    Evidence(
        "tuning",
        "Findings with alerts suppressed by tuning (counted)",
        "findings",
        rules=("*",),
        finding_kinds=("detection", "coverage"),
        suppressed_only=True,
    ),
    Evidence("containment", "Containment actions applied", "actions", release=False),
    Evidence("recovery", "Release (recovery) actions applied", "actions", release=True),
    Evidence("approvals", "Approval decisions (approved, denied, expired)", "approvals"),
    Evidence("response-runs", "Playbook runs with their status", "runs"),
    Evidence(
        "audit-trail",
        "Audit trail records (status, actions, plans, evidence with before/after)",
        "audit-trail",
    ),
)


@dataclass(frozen=True, slots=True)
class Control:
    framework: str
    id: str
    title: str
    evidence: tuple[str, ...]
    limits: str = ""


PCI = "PCI DSS v4.0"
SOC2 = "SOC 2 (TSC)"
CIS = "CIS Controls v8"

CONTROLS: tuple[Control, ...] = (
    Control(
        PCI,
        "10.2.1",
        "Audit logs are enabled and active for all system components",
        ("coverage-snapshots", "coverage-gaps"),
        "Covers the workloads Ramparts inventories (functions, instances, EKS nodes, ECS tasks).",
    ),
    Control(
        PCI,
        "10.4.1.1",
        "Automated mechanisms are used to perform audit log reviews",
        ("all-detections",),
    ),
    Control(
        PCI,
        "10.4.3",
        "Exceptions and anomalies identified during review are addressed",
        ("response-runs", "containment", "approvals", "audit-trail"),
        "Findings without a playbook are addressed outside Ramparts.",
    ),
    Control(
        PCI,
        "10.7.2",
        "Failures of critical security control systems are detected, alerted and addressed",
        ("coverage-gaps", "sensor-health"),
        "Only the Ramparts sensors' own failures.",
    ),
    Control(
        PCI,
        "11.5.1",
        "Intrusion-detection/prevention techniques detect and/or prevent intrusions",
        ("process-detections", "network-detections", "provider-detections", "prevention"),
        "Host and workload based; Ramparts does not monitor the network perimeter.",
    ),
    Control(
        PCI,
        "11.5.1.1",
        "IDS/IPS techniques detect and address covert malware channels",
        ("covert-channels",),
    ),
    Control(
        PCI,
        "11.5.2",
        "A change-detection mechanism alerts on modification of critical files",
        ("file-integrity",),
        "Alerts on changes as they happen; the weekly comparison is not performed.",
    ),
    Control(
        SOC2,
        "CC7.1",
        "Detection and monitoring identify configuration changes and new vulnerabilities",
        ("vulnerabilities", "coverage-gaps", "file-integrity"),
    ),
    Control(
        SOC2,
        "CC7.2",
        "System components are monitored for anomalies indicative of malicious acts",
        ("all-detections", "coverage-snapshots", "sensor-health"),
    ),
    Control(
        SOC2,
        "CC7.3",
        "Security events are evaluated to determine whether they are incidents",
        ("all-detections", "approvals", "response-runs"),
        "Triage outside Ramparts (tickets, notes) is not included.",
    ),
    Control(
        SOC2,
        "CC7.4",
        "Identified security incidents are responded to (contain, remediate)",
        ("containment", "approvals", "audit-trail"),
        "Communication to affected parties is not recorded by Ramparts.",
    ),
    Control(
        SOC2,
        "CC7.5",
        "Activities to recover from identified security incidents",
        ("recovery",),
    ),
    Control(CIS, "8.2", "Collect Audit Logs", ("coverage-snapshots", "all-detections")),
    Control(CIS, "8.8", "Collect Command-Line Audit Logs", ("process-detections",)),
    Control(CIS, "8.9", "Centralize Audit Logs", ("coverage-snapshots", "all-detections")),
    Control(
        CIS,
        "8.11",
        "Conduct Audit Log Reviews",
        ("all-detections", "approvals"),
        "Automated review; scheduled human review is outside Ramparts.",
    ),
    Control(CIS, "8.12", "Collect Service Provider Logs", ("provider-detections",)),
    Control(CIS, "13.1", "Centralize Security Event Alerting", ("all-detections",)),
    Control(
        CIS,
        "13.2",
        "Deploy a Host-Based Intrusion Detection Solution",
        ("coverage-snapshots", "process-detections", "file-integrity"),
    ),
    Control(
        CIS,
        "13.3",
        "Deploy a Network Intrusion Detection Solution",
        ("network-detections", "provider-detections"),
        "Workload view of network activity; not a network sensor.",
    ),
    Control(
        CIS,
        "13.7",
        "Deploy a Host-Based Intrusion Prevention Solution",
        ("prevention", "containment"),
    ),
    Control(CIS, "13.11", "Tune Security Event Alerting Thresholds", ("tuning",)),
)

EVIDENCE_BY_ID = {e.id: e for e in EVIDENCE}


def check() -> None:
    """The mapping is consistent: every control cites known evidence, ids are unique."""
    if len(EVIDENCE_BY_ID) != len(EVIDENCE):
        raise ValueError("duplicate evidence ids")
    seen: set[tuple[str, str]] = set()
    for c in CONTROLS:
        if (c.framework, c.id) in seen:
            raise ValueError(f"duplicate control {c.framework} {c.id}")
        seen.add((c.framework, c.id))
        for e in c.evidence:
            if e not in EVIDENCE_BY_ID:
                raise ValueError(f"{c.framework} {c.id}: unknown evidence {e!r}")
        if not c.evidence:
            raise ValueError(f"{c.framework} {c.id}: no evidence")
