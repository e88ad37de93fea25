"""Matches -> OCSF Vulnerability Findings (2002), and the prioritisation only Ramparts can do.

One finding per scanned code (a function, or the path scanned) and package version: it lists
every advisory that affects that version as one ``vulnerabilities[]`` entry. An advisory with
a CVE alias is written as ``cve`` (with its CVSS v3 scores); one without as ``advisory``
(OCSF allows one of the two per vulnerability). The OSV id, aliases, database severity and
unscored vectors (CVSS v4) are kept in ``unmapped.ramparts.osv``.

Prioritisation (:func:`prioritise`) adjusts the finding's score and severity by what the
advisory cannot know and Ramparts can: whether the package is imported at run time (the
sensor sees imports), whether the function is reachable from the internet (inventory: a
function URL, an API Gateway or ALB trigger), and how much its execution role can do. Each
unknown input (``None``) changes nothing. The adjustments, on the 0-10 CVSS scale:

====================  ======  =========================================================
input                 change  why
====================  ======  =========================================================
imported = False      -3.0    installed but never imported: the vulnerable code is not
                              loaded (it may still be, by a path not yet exercised)
imported = True       +0.5    confirmed loaded in the running function
internet_reachable    +1.0    attacker input can reach the function directly
  = True
internet_reachable    -1.0    only AWS services and internal callers can invoke it
  = False
role_power = admin    +1.5    code execution here becomes control of the account
role_power = write    +0.5    can change data or resources
role_power = read     +0.0    can read data (the score already assumes the data matters)
role_power = none     -0.5    the role grants (next to) nothing
====================  ======  =========================================================

The base is the highest CVSS v3 base score of the advisories, or, when none has a vector,
the representative score of the best database label (Low 2.0, Medium 5.5, High 8.0,
Critical 9.5). The result is clamped to 0-10 and rated as CVSS rates scores (Low < 4.0 <=
Medium < 7.0 <= High < 9.0 <= Critical; 0 is Informational). Without any severity the
finding stays Unknown: there is nothing to adjust. The explanation (one reason per input
used) goes into ``finding_info.desc`` and ``unmapped.ramparts.prioritisation``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from collectors.base import cloud, metadata, rfc3339_ms
from collectors.model import (
    Advisory,
    AffectedPackage,
    Cve,
    Cvss,
    FindingInfo,
    ResourceDetails,
    Vulnerability,
    VulnerabilityFinding,
)
from collectors.vulns.inventory import Distribution, Inventory
from collectors.vulns.osv import DATABASE_SEVERITIES, Database, Match
from collectors.vulns.pep440 import canonical_name, try_parse

__all__ = [
    "ROLE_POWER",
    "FindingInputs",
    "PackageMatches",
    "Priority",
    "match_inventory",
    "prioritise",
    "severity_id_of",
    "to_finding",
]

SEVERITY_IDS = {"Informational": 1, "Low": 2, "Medium": 3, "High": 4, "Critical": 5}
REPRESENTATIVE = {"Low": 2.0, "Medium": 5.5, "High": 8.0, "Critical": 9.5}
ROLE_POWER = {"admin": 1.5, "write": 0.5, "read": 0.0, "none": -0.5}
NOT_IMPORTED, IMPORTED = -3.0, 0.5
REACHABLE, NOT_REACHABLE = 1.0, -1.0
CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}")
PRODUCT = "Ramparts"
_LAMBDA_ARN = re.compile(
    r"arn:(aws(?:-[a-z]+){0,3}):lambda:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):(\d{12}):function:"
    r"([A-Za-z0-9_-]{1,64})"
)


def severity_id_of(score: float) -> int:
    if score == 0:
        return 1
    if score < 4.0:
        return 2
    if score < 7.0:
        return 3
    if score < 9.0:
        return 4
    return 5


@dataclass(frozen=True, slots=True)
class PackageMatches:
    """One package version of one scanned code, and what affects it."""

    source: str  # the function, or the path scanned
    name: str
    version: str
    purl: str
    locations: tuple[str, ...]
    modules: tuple[str, ...]  # top-level import names, when known
    matches: tuple[Match, ...]

    @property
    def canonical(self) -> str:
        return canonical_name(self.name)


@dataclass(frozen=True, slots=True)
class FindingInputs:
    """What prioritisation starts from: the package and the advisories' own severity."""

    package: str  # PEP 503 name
    modules: tuple[str, ...]
    base_score: float | None
    base_severity: str | None  # Low/Medium/High/Critical/Informational, None if unknown

    @classmethod
    def of(cls, pm: PackageMatches) -> FindingInputs:
        scores = [m.advisory.score for m in pm.matches if m.advisory.score is not None]
        base: float | None = max(scores) if scores else None
        severity: str | None = None
        if base is not None:
            severity = _rating(base)
        else:
            labels = [
                DATABASE_SEVERITIES[m.advisory.database_severity.upper()]
                for m in pm.matches
                if m.advisory.database_severity is not None
            ]
            if labels:
                severity = max(labels, key=lambda s: SEVERITY_IDS[s])
                base = REPRESENTATIVE[severity]
        return cls(pm.canonical, pm.modules, base, severity)


def _rating(score: float) -> str:
    return {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}[
        severity_id_of(score)
    ]


@dataclass(frozen=True, slots=True)
class Priority:
    base_score: float | None
    score: float | None
    severity_id: int  # OCSF severity_id: 0 Unknown, 1 Informational .. 5 Critical
    reasons: tuple[str, ...] = field(default=())

    @property
    def severity(self) -> str:
        return {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High"}.get(
            self.severity_id, "Critical"
        )

    def explain(self) -> str:
        if self.base_score is None:
            return "No advisory gives a severity: not prioritised."
        if not self.reasons:
            return f"Score {self.base_score:.1f} as the advisories give it (nothing else known)."
        assert self.score is not None
        return (
            f"Score {self.base_score:.1f} from the advisories, {self.score:.1f} for this "
            f"function: " + "; ".join(self.reasons) + "."
        )


def _is_imported(inputs: FindingInputs, imported: set[str]) -> bool:
    names = {canonical_name(x) for x in imported}
    modules = {m.split(".", 1)[0].split("/", 1)[0] for m in imported}
    if inputs.package in names or inputs.package.replace("-", "_") in modules:
        return True
    return any(m in modules or m in imported for m in inputs.modules)


def prioritise(
    finding_inputs: FindingInputs,
    *,
    imported: set[str] | None,
    internet_reachable: bool | None,
    role_power: str | None,
) -> Priority:
    """Raise or lower a finding's score by run-time facts; see the module docstring.

    ``imported`` is the set of modules the function imported (top-level names like ``yaml``
    or dotted ones like ``yaml.constructor``; distribution names are accepted too), None
    when not known. ``role_power`` is one of ``admin``, ``write``, ``read``, ``none``.
    """
    if role_power is not None and role_power not in ROLE_POWER:
        raise ValueError(f"role_power {role_power!r}: one of {', '.join(ROLE_POWER)}")
    base = finding_inputs.base_score
    if base is None:
        return Priority(None, None, 0, ())
    score = base
    reasons: list[str] = []
    if imported is not None:
        if _is_imported(finding_inputs, imported):
            score += IMPORTED
            reasons.append(f"imported at run time (+{IMPORTED:.1f})")
        else:
            score += NOT_IMPORTED
            reasons.append(f"installed but not imported at run time ({NOT_IMPORTED:.1f})")
    if internet_reachable is True:
        score += REACHABLE
        reasons.append(f"reachable from the internet (+{REACHABLE:.1f})")
    elif internet_reachable is False:
        score += NOT_REACHABLE
        reasons.append(f"not reachable from the internet ({NOT_REACHABLE:.1f})")
    if role_power is not None:
        delta = ROLE_POWER[role_power]
        score += delta
        reasons.append(f"execution role can {role_power} ({delta:+.1f})")
    score = round(min(10.0, max(0.0, score)), 1)
    return Priority(base, score, severity_id_of(score), tuple(reasons))


# -- matching an inventory ----------------------------------------------------------------------
def match_inventory(
    db: Database, inv: Inventory, source: str | None = None
) -> list[PackageMatches]:
    """Every (package, version) of ``inv`` with the advisories that affect it (all of them,
    affected or not; callers filter on ``matches``), in name and version order."""
    groups: dict[tuple[str, object], list[Distribution]] = {}
    inv.sort()
    for d in inv.distributions:
        v = try_parse(d.version)
        groups.setdefault((d.canonical, v.key if v else d.version), []).append(d)
    out = []
    for dists in groups.values():
        first = dists[0]
        out.append(
            PackageMatches(
                source=source or inv.source,
                name=first.name,
                version=first.version,
                purl=first.purl,
                locations=tuple(d.path for d in dists if d.path),
                modules=tuple(sorted({m for d in dists for m in d.modules})),
                matches=tuple(db.match(first.name, first.version)),
            )
        )
    return out


# -- the OCSF finding ---------------------------------------------------------------------------
def _vulnerability(pm: PackageMatches, m: Match) -> Vulnerability:
    adv = m.advisory
    cve_id = next((a for a in (adv.id, *adv.aliases) if CVE_RE.fullmatch(a)), None)
    refs = list(adv.references) or None
    created, modified = rfc3339_ms(adv.published), rfc3339_ms(adv.modified)
    scores = [
        Cvss(
            base_score=s.base_score,
            version=s.version,
            severity=s.severity,
            vector_string=s.vector,
        )
        for s in adv.cvss_v3
    ]
    title = f"{adv.id}: {adv.summary}" if adv.summary else adv.id
    cve = advisory = None
    if cve_id is not None:
        cve = Cve(
            uid=cve_id,
            title=adv.summary,
            cvss=scores or None,
            references=refs,
            created_time=created,
            modified_time=modified,
        )
    else:
        advisory = Advisory(
            uid=adv.id,
            title=adv.summary,
            references=refs,
            created_time=created,
            modified_time=modified,
            src_url=f"https://osv.dev/vulnerability/{adv.id}",
        )
    fixable = m.fixed is not None
    return Vulnerability(
        cve=cve,
        advisory=advisory,
        title=title[:1024],
        desc=adv.details,
        severity=adv.severity,
        affected_packages=[
            AffectedPackage(
                name=pm.name,
                version=pm.version,
                fixed_in_version=m.fixed,
                purl=pm.purl,
                package_manager="pip",
                path=pm.locations[0] if pm.locations else None,
            )
        ],
        fix_available=fixable,
        is_fix_available=fixable,
        references=refs,
        vendor_name="OSV",
    )


def _resource(source: str, function: str | None) -> tuple[ResourceDetails, str | None, str | None]:
    if function is not None:
        m = _LAMBDA_ARN.match(function)
        if m is not None:
            partition, region, account, name = m.groups()
            arn = f"arn:{partition}:lambda:{region}:{account}:function:{name}"
            res = ResourceDetails(
                uid=arn,
                name=name,
                type="AwsLambdaFunction",
                region=region,
                cloud_partition=partition,
                role_id=3,
                labels=[f"code.path={source}"],
            )
            return res, account, region
        return (
            ResourceDetails(
                uid=function,
                name=function,
                type="AwsLambdaFunction",
                role_id=3,
                labels=[f"code.path={source}"],
            ),
            None,
            None,
        )
    name = source.rstrip("/").rsplit("/", 1)[-1] or source
    return ResourceDetails(uid=source, name=name, type="Path", role_id=3), None, None


def to_finding(
    pm: PackageMatches,
    priority: Priority,
    *,
    function: str | None = None,
    now_ms: int | None = None,
    tool_version: str | None = None,
) -> VulnerabilityFinding:
    """The OCSF Vulnerability Finding of one package version (``pm.matches`` not empty)."""
    if not pm.matches:
        raise ValueError(f"{pm.name} {pm.version}: no advisory affects it: no finding")
    when = now_ms if now_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    resource, account, region = _resource(pm.source, function)
    key = "\n".join((function or pm.source, pm.canonical, pm.version))
    uid = "ramparts-vuln-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    ids = [m.advisory.id for m in pm.matches]
    noun = "vulnerability" if len(ids) == 1 else "vulnerabilities"
    title = f"{pm.name} {pm.version}: {len(ids)} known {noun}"
    fixes = sorted({m.fixed for m in pm.matches if m.fixed})
    osv: list[dict[str, Any]] = []
    for m in pm.matches:
        entry: dict[str, Any] = {"id": m.advisory.id, "matched_by": m.how}
        if m.advisory.aliases:
            entry["aliases"] = list(m.advisory.aliases)
        if m.advisory.database_severity:
            entry["database_severity"] = m.advisory.database_severity
        for kind, vector in m.advisory.other_vectors:
            entry.setdefault("vectors", []).append({"type": kind, "vector": vector})
        osv.append(entry)
    prio: dict[str, Any] = {"severity": priority.severity, "reasons": list(priority.reasons)}
    if priority.base_score is not None:
        prio["base_score"] = priority.base_score
        prio["score"] = priority.score
    return VulnerabilityFinding(
        activity_id=VulnerabilityFinding.CREATE,
        severity_id=priority.severity_id,
        time=when,
        metadata=metadata(
            PRODUCT, PRODUCT, version=tool_version, event_code="PACKAGE_VULNERABILITY"
        ),
        cloud=cloud(account, region),
        message=title + (f" (fixed in {', '.join(fixes)})" if fixes else " (no fix known)"),
        finding_info=FindingInfo(
            uid=uid,
            title=title,
            desc=priority.explain(),
            types=["PACKAGE_VULNERABILITY"],
            created_time=when,
        ),
        resources=[resource],
        vulnerabilities=[_vulnerability(pm, m) for m in pm.matches],
        unmapped={
            "ramparts": {
                "source": pm.source,
                "package": {
                    "name": pm.name,
                    "version": pm.version,
                    "purl": pm.purl,
                    "locations": list(pm.locations),
                    "modules": list(pm.modules),
                },
                "osv": osv,
                "prioritisation": prio,
            }
        },
    )


def findings(
    matched: Iterable[PackageMatches],
    *,
    imported: set[str] | None = None,
    internet_reachable: bool | None = None,
    role_power: str | None = None,
    function: str | None = None,
    now_ms: int | None = None,
    tool_version: str | None = None,
) -> list[VulnerabilityFinding]:
    """One finding per affected package version, prioritised."""
    out = []
    for pm in matched:
        if not pm.matches:
            continue
        priority = prioritise(
            FindingInputs.of(pm),
            imported=imported,
            internet_reachable=internet_reachable,
            role_power=role_power,
        )
        out.append(
            to_finding(pm, priority, function=function, now_ms=now_ms, tool_version=tool_version)
        )
    return out
