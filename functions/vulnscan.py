"""The vulnerability scan: OCSF Vulnerability Findings for deployed Lambda functions.

A scheduled Lambda (``handler``) and the core it runs (:class:`Scanner`, which tests build
with their own clients and fetcher). For every function of the configured accounts and
regions (``lambda:ListFunctions``):

* **code**: a Python zip function's deployment package (``lambda:GetFunction`` ->
  ``Code.Location``, a presigned https URL) and each of its layers
  (``lambda:GetLayerVersionByArn`` -> ``Content.Location``) are downloaded (bounded:
  ``MAX_CODE_BYTES``; layers once per run) and inventoried by :mod:`collectors.vulns`, member
  by member, never extracted. Packages of the function's zip are reported under
  ``/var/task/``, a layer's under ``/opt/``. Container-image functions are not scanned
  (Inspector scans images: its findings are still joined), nor are other runtimes' packages;
* **advisories**: the OSV database the updater (``functions/osv_update.py``) keeps in S3,
  loaded once per sandbox and reloaded when the manifest's sha256 changes;
* **prioritisation** (:func:`collectors.vulns.findings.prioritise`): imported at run time
  (the sensor's ``seen#lambda:<ARN>``/``packages`` item in the baseline table; unknown
  without one), internet reachability (:func:`reachability`: a function URL with
  ``AuthType NONE``, a resource policy letting ``*``, API Gateway or an ALB invoke it) and
  the execution role's power (:func:`role_power`, from its attached and inline policies);
* **Inspector**: ``inspector2:ListFindings`` for the function (``resourceType``
  AWS_LAMBDA_FUNCTION, ``resourceId`` the ARN or the ARN with a qualifier, active package
  findings), normalised by :mod:`collectors.inspector`. An Inspector vulnerability of a
  package Ramparts also found (same PEP 503 name and version) joins that package's finding
  (the same advisory by id or alias is listed once, naming both sources); packages only
  Inspector reports (npm, OS packages, Python ones the database lacks) get findings too.

One finding per function and package version, ``finding_info.uid`` stable
(``ramparts-vuln-`` + sha256 of the function ARN, package and version), stored in the
findings table (``pk = "vuln#<uid>"``, ``sk = "finding"``) and published on the bus
(detail-type ``Ramparts Vulnerability Finding``) only when new, changed (severity,
advisories, sources) or closed: a finding no longer produced is closed (activity Close,
status Resolved) when every source that reported it was checked completely this run
(package upgraded or removed, advisory gone, Inspector no longer reporting it, function
deleted). Each function's open findings are listed in ``pk = "vulnindex#<ARN>"``,
``sk = "open"``; each account and region's scanned functions in
``pk = "vulnregion#<account>#<region>"``, ``sk = "functions"``. Publication is at least once:
an item keeps ``publish_pending`` until PutEvents accepted it, and the next run publishes
it again.

Member accounts are read through their ``ramparts-responder`` role (``sts:AssumeRole``);
the function's own account with its own role. ``docs/vulnerabilities.md`` lists the
permissions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from collectors import inspector
from collectors.base import Context, cloud, metadata
from collectors.model import (
    FindingInfo,
    ResourceDetails,
    Vulnerability,
    VulnerabilityFinding,
    from_ocsf,
)
from collectors.vulns.findings import (
    REPRESENTATIVE,
    FindingInputs,
    PackageMatches,
    Priority,
    match_inventory,
    prioritise,
    severity_id_of,
    to_finding,
)
from collectors.vulns.inventory import Inventory, InventoryError, Problem, scan_zip
from collectors.vulns.osv import Database, DatabaseError, load
from collectors.vulns.pep440 import canonical_name, try_parse
from functions.osv_update import (
    DB_NAME,
    DEFAULT_PREFIX,
    MANIFEST_NAME,
    DownloadError,
    Manifest,
    download,
    read_manifest,
)
from functions.publish import PublishError, put_events
from functions.store import deserialize, key_text, serialize

__all__ = [
    "DETAIL_TYPE",
    "AccountSessions",
    "AdvisoryCache",
    "FunctionInfo",
    "RunReport",
    "ScanConfig",
    "Scanner",
    "build_findings",
    "handler",
    "reachability",
    "role_power",
]

SOURCE = "ramparts"
DETAIL_TYPE = "Ramparts Vulnerability Finding"
PRODUCT = "Ramparts"
RESPONDER_ROLE_NAME = "ramparts-responder"
DEFAULT_MAX_CODE_BYTES = 256 * 1024 * 1024  # a zip unpacks to at most 250 MB
DEFAULT_TIMEOUT_S = 60.0
CLOSED_TTL_DAYS = 90
MAX_ENTRY_BYTES = 250_000  # PutEvents: 256 KB per entry
MAX_ITEM_JSON = 350_000  # DynamoDB: 400 KB per item
MAX_PROBLEMS = 200  # kept in the run report
PIP_MANAGERS = frozenset({"PIP", "PIPENV", "POETRY", "PYTHONPKG"})
_SEVERITY_LABELS = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
_INSPECTOR_REPRESENTATIVE = {**REPRESENTATIVE, "Informational": 0.0}
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_ACCESS_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
_NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchEntity", "NotFound"})

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "ramparts-vulnscan")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Ramparts")

Source = Literal["osv", "inspector"]
Fetch = Callable[[str, str], None]  # (url, destination file); raises DownloadError


class ScanError(RuntimeError):
    """The run cannot proceed (no advisory database, bad configuration)."""


class ConfigError(ValueError):
    """A missing or invalid environment variable."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# -- configuration --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScanConfig:
    findings_table: str
    baseline_table: str
    bucket: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    prefix: str = DEFAULT_PREFIX
    event_bus_name: str = "ramparts"
    role_name: str = RESPONDER_ROLE_NAME
    external_id: str | None = None
    max_code_bytes: int = DEFAULT_MAX_CODE_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    closed_ttl_days: int = CLOSED_TTL_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScanConfig:
        """``FINDINGS_TABLE``, ``BASELINE_TABLE``, ``ADVISORY_BUCKET``, ``SCAN_ACCOUNTS`` and
        ``SCAN_REGIONS`` (comma-separated) are required; ``ADVISORY_PREFIX``,
        ``EVENT_BUS_NAME``, ``RESPONDER_ROLE_NAME``, ``RESPONDER_EXTERNAL_ID``,
        ``MAX_CODE_BYTES``, ``DOWNLOAD_TIMEOUT_S``, ``CLOSED_TTL_DAYS`` are optional."""

        def required(name: str) -> str:
            value = (env.get(name) or "").strip()
            if not value:
                raise ConfigError(f"{name} is required")
            return value

        def listed(name: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
            items = tuple(dict.fromkeys(v.strip() for v in required(name).split(",") if v.strip()))
            for v in items:
                if not pattern.match(v):
                    raise ConfigError(f"{name}: {v!r} is not {what}")
            if not items:
                raise ConfigError(f"{name} is required")
            return items

        def number(name: str, default: int) -> int:
            text = (env.get(name) or "").strip()
            if not text:
                return default
            if not text.isdigit() or int(text) < 1:
                raise ConfigError(f"{name}: {text!r} is not a positive whole number")
            return int(text)

        prefix = (env.get("ADVISORY_PREFIX") or DEFAULT_PREFIX).strip()
        if not prefix.endswith("/"):
            raise ConfigError(f"ADVISORY_PREFIX: {prefix!r} must end in /")
        return cls(
            findings_table=required("FINDINGS_TABLE"),
            baseline_table=required("BASELINE_TABLE"),
            bucket=required("ADVISORY_BUCKET"),
            accounts=listed("SCAN_ACCOUNTS", _ACCOUNT, "a 12-digit account id"),
            regions=listed("SCAN_REGIONS", _REGION, "a region name"),
            prefix=prefix,
            event_bus_name=(env.get("EVENT_BUS_NAME") or "ramparts").strip(),
            role_name=(env.get("RESPONDER_ROLE_NAME") or RESPONDER_ROLE_NAME).strip(),
            external_id=(env.get("RESPONDER_EXTERNAL_ID") or "").strip() or None,
            max_code_bytes=number("MAX_CODE_BYTES", DEFAULT_MAX_CODE_BYTES),
            timeout_s=float(number("DOWNLOAD_TIMEOUT_S", int(DEFAULT_TIMEOUT_S))),
            closed_ttl_days=number("CLOSED_TTL_DAYS", CLOSED_TTL_DAYS),
        )


# -- clients per account ----------------------------------------------------------------------
class Clients(Protocol):
    def client(self, service: str, account: str, region: str) -> Any: ...


class AccountSessions:
    """boto3 clients per account and region: the own account with this function's
    credentials, the others through ``arn:<partition>:iam::<account>:role/<role_name>``."""

    def __init__(
        self,
        own_account: str,
        *,
        role_name: str = RESPONDER_ROLE_NAME,
        external_id: str | None = None,
        session: Any = None,
        partition: str = "aws",
    ) -> None:
        self.own_account = own_account
        self.role_name = role_name
        self.external_id = external_id
        self.session = session if session is not None else boto3.session.Session()
        self.partition = partition
        self._sessions: dict[str, Any] = {own_account: self.session}
        self._clients: dict[tuple[str, str, str], Any] = {}

    def role_arn(self, account: str) -> str:
        return f"arn:{self.partition}:iam::{account}:role/{self.role_name}"

    def _session(self, account: str) -> Any:
        found = self._sessions.get(account)
        if found is not None:
            return found
        params: dict[str, Any] = {
            "RoleArn": self.role_arn(account),
            "RoleSessionName": "ramparts-vulnscan",
            "DurationSeconds": 3600,
        }
        if self.external_id:
            params["ExternalId"] = self.external_id
        creds = self.session.client("sts").assume_role(**params)["Credentials"]
        found = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        self._sessions[account] = found
        return found

    def client(self, service: str, account: str, region: str) -> Any:
        key = (service, account, region)
        found = self._clients.get(key)
        if found is None:
            found = self._session(account).client(service, region_name=region)
            self._clients[key] = found
        return found


# -- the advisory database ----------------------------------------------------------------------
class AdvisoryCache:
    """The OSV database from S3, kept while the manifest's sha256 stays the same."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str = DEFAULT_PREFIX,
        *,
        max_bytes: int = 1024 * 1024 * 1024,
        workdir: str | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.workdir = workdir
        self.manifest: Manifest | None = None
        self._db: Database | None = None
        self.loads = 0  # how many times the database was downloaded and loaded

    def database(self) -> tuple[Database, Manifest]:
        where = f"s3://{self.bucket}/{self.prefix}"
        try:
            manifest = read_manifest(self.s3, self.bucket, self.prefix + MANIFEST_NAME)
        except ValueError as exc:
            raise ScanError(f"{where}{MANIFEST_NAME}: {exc}") from None
        if manifest is None:
            raise ScanError(
                f"no advisory database at {where} (no {MANIFEST_NAME}): the advisory "
                "updater has not stored one yet"
            )
        if (
            self._db is not None
            and self.manifest is not None
            and (self.manifest.sha256 == manifest.sha256)
        ):
            return self._db, self.manifest
        with tempfile.TemporaryDirectory(prefix="ramparts-db-", dir=self.workdir) as tmp:
            path = os.path.join(tmp, DB_NAME)
            digest = self._fetch(path)
            if digest != manifest.sha256:  # replaced between the two reads: read it again
                manifest2 = read_manifest(self.s3, self.bucket, self.prefix + MANIFEST_NAME)
                if manifest2 is None or manifest2.sha256 != digest:
                    raise ScanError(
                        f"{where}{DB_NAME}: sha256 {digest[:12]}... is not the manifest's "
                        f"{manifest.sha256[:12]}...: refusing to use it"
                    )
                manifest = manifest2
            try:
                db = load(path)
            except DatabaseError as exc:
                raise ScanError(f"{where}{DB_NAME}: {exc}") from None
        self._db, self.manifest = db, manifest
        self.loads += 1
        return db, manifest

    def _fetch(self, path: str) -> str:
        obj = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + DB_NAME)
        body = obj["Body"]
        digest = hashlib.sha256()
        size = 0
        with open(path, "wb") as out:
            while True:
                chunk = body.read(1024 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise ScanError(f"the advisory database is over {self.max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()


# -- reachability and role power ------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        text = document if document.lstrip().startswith("{") else urllib.parse.unquote(document)
        document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("a policy document is not a JSON object")
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, dict)]


_INVOKE_ACTIONS = ("lambda:invokefunction", "lambda:invokefunctionurl")
_PUBLIC_SERVICES = {
    "apigateway.amazonaws.com": "API Gateway",
    "elasticloadbalancing.amazonaws.com": "an Application Load Balancer",
}


def reachability(url_auth_type: str | None, policy: Any) -> tuple[bool, list[str]]:
    """Is the function reachable from the internet, and why (empty reasons: it is not).

    ``url_auth_type`` is the unqualified function URL's ``AuthType`` (None: no URL);
    ``policy`` the function's resource policy (``GetPolicy``'s ``Policy``; None: none).
    Reachable: a URL with ``AuthType NONE``; an Allow statement for ``lambda:InvokeFunction``
    (or ``lambda:*``/``*``) whose principal is ``*``, API Gateway or Elastic Load Balancing.
    Conditions (a source ARN, an account) are not evaluated: an API Gateway API or an ALB
    is taken as internet-facing, which private APIs and internal load balancers are not.
    """
    reasons: list[str] = []
    if url_auth_type == "NONE":
        reasons.append("function URL with AuthType NONE")
    for st in _statements(policy) if policy else []:
        if st.get("Effect") != "Allow":
            continue
        actions = [str(a).lower() for a in _as_list(st.get("Action"))]
        if not any(fnmatch.fnmatchcase(x, a) for a in actions for x in _INVOKE_ACTIONS):
            continue
        only_url = all(
            fnmatch.fnmatchcase("lambda:invokefunctionurl", a)
            and not fnmatch.fnmatchcase("lambda:invokefunction", a)
            for a in actions
        )
        auth = (st.get("Condition") or {}).get("StringEquals", {}).get("lambda:FunctionUrlAuthType")
        if only_url:
            continue  # the URL's own statement: judged by its AuthType above
        sid = st.get("Sid") or "?"
        principal = st.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        anyone = principal == "*" or (
            isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))
        )
        if anyone and auth != "AWS_IAM":
            reasons.append(f"resource policy lets any principal invoke it (statement {sid})")
        for service in services:
            label = _PUBLIC_SERVICES.get(str(service))
            if label is not None:
                reasons.append(f"resource policy lets {label} invoke it (statement {sid})")
    return bool(reasons), reasons


# Actions that only write telemetry: every function's role has them, they change nothing.
TELEMETRY_ACTIONS = frozenset(
    {
        "logs:createloggroup",
        "logs:createlogstream",
        "logs:putlogevents",
        "xray:puttracesegments",
        "xray:puttelemetryrecords",
        "cloudwatch:putmetricdata",
    }
)
# Verbs that read without changing anything.
READ_VERBS = (
    "get",
    "list",
    "describe",
    "batchget",
    "head",
    "query",
    "scan",
    "select",
    "search",
    "lookup",
    "view",
    "decrypt",
    "receive",
)
# On "*", any of these lets the role give itself (or another principal) any permission.
ESCALATION_ACTIONS = (
    "iam:attachrolepolicy",
    "iam:putrolepolicy",
    "iam:attachuserpolicy",
    "iam:putuserpolicy",
    "iam:attachgrouppolicy",
    "iam:putgrouppolicy",
    "iam:createpolicyversion",
    "iam:setdefaultpolicyversion",
    "iam:createaccesskey",
    "iam:createloginprofile",
    "iam:updateloginprofile",
    "iam:updateassumerolepolicy",
)
_POWER_ORDER = {"none": 0, "read": 1, "write": 2, "admin": 3}


def _is_read(action: str) -> bool:
    service, _, verb = action.partition(":")
    stem = verb.rstrip("*")
    if not service or not stem or "*" in stem or "?" in stem:
        return False  # "s3:*", "s3:G*t": may write
    return stem.startswith(READ_VERBS)


def role_power(policies: Sequence[tuple[str, Any]]) -> tuple[str, list[str]]:
    """How much a role's policies allow: ``admin``, ``write``, ``read`` or ``none``, and why.

    ``policies`` are (name, document) pairs, attached and inline. Per Allow statement:

    * ``admin``: action ``*`` (``*:*``) on resource ``*``; an IAM action that grants
      permissions (``iam:PutRolePolicy``, ``iam:AttachRolePolicy``, ``iam:CreatePolicyVersion``,
      ``iam:CreateAccessKey``... or a wildcard covering one) on ``*``; ``NotAction`` on ``*``
      that does not exclude those IAM actions;
    * ``write``: any other action that is not read-only and not telemetry (a wildcard like
      ``s3:*`` counts as write; ``NotAction`` on ``*`` that excludes IAM);
    * ``read``: only read-only actions (``Get``, ``List``, ``Describe``, ``BatchGet``,
      ``Head``, ``Query``, ``Scan``, ``Select``, ``Search``, ``Lookup``, ``View``,
      ``Decrypt``, ``Receive`` verbs, and wildcards of them such as ``s3:Get*``);
    * ``none``: nothing but telemetry (``logs:PutLogEvents``, ``xray:PutTraceSegments``...).

    Deny statements, conditions and permission boundaries are not evaluated: the result is
    what the policies could allow at most.
    """
    power = "none"
    reasons: dict[str, list[str]] = {"admin": [], "write": [], "read": []}
    for name, document in policies:
        for st in _statements(document):
            if st.get("Effect") != "Allow":
                continue
            resources = [str(r) for r in _as_list(st.get("Resource"))]
            on_all = "*" in resources
            if "NotAction" in st:
                excluded = [str(a).lower() for a in _as_list(st.get("NotAction"))]
                shielded = any(
                    fnmatch.fnmatchcase(x, a) for a in excluded for x in ESCALATION_ACTIONS
                )
                level = "admin" if on_all and not shielded else "write"
                reasons[level].append(f"{name} allows everything but {', '.join(excluded)[:80]}")
                power = max(power, level, key=_POWER_ORDER.__getitem__)
                continue
            for raw in _as_list(st.get("Action")):
                action = str(raw).lower()
                if action in TELEMETRY_ACTIONS:
                    continue
                if action in ("*", "*:*"):
                    level = "admin" if on_all else "write"
                    where = "*" if on_all else ", ".join(resources)[:80]
                    reasons[level].append(f"{name} allows * on {where}")
                elif on_all and any(fnmatch.fnmatchcase(x, action) for x in ESCALATION_ACTIONS):
                    level = "admin"
                    reasons[level].append(f"{name} allows {raw} on * (can grant itself more)")
                elif _is_read(action):
                    level = "read"
                    reasons[level].append(f"{name} allows {raw}")
                else:
                    level = "write"
                    reasons[level].append(f"{name} allows {raw}")
                power = max(power, level, key=_POWER_ORDER.__getitem__)
    if power == "none":
        return power, ["only telemetry (logs, traces, metrics)" if policies else "no policies"]
    return power, list(dict.fromkeys(reasons[power]))[:5]


# -- building findings (pure) ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FunctionInfo:
    arn: str
    name: str
    account: str
    region: str
    partition: str = "aws"


@dataclass(frozen=True, slots=True)
class Fact:
    """A prioritisation input and the evidence for it (None: unknown)."""

    value: Any
    why: tuple[str, ...] = ()


@dataclass(slots=True)
class _InspectorItem:
    key: str  # PEP 503 name for Python packages, "<manager>:<name>" for the others
    name: str
    version: str
    manager: str | None
    vulnerability: Vulnerability
    vid: str
    finding_arn: str
    severity_id: int
    score: float | None


def package_key(manager: str | None, name: str) -> str:
    if manager is None or manager.upper() in PIP_MANAGERS:
        return canonical_name(name)
    return f"{manager.lower()}:{name}"


def stable_uid(function_arn: str, key: str, version: str) -> str:
    """The same formula as :func:`collectors.vulns.findings.to_finding` for a function."""
    text = "\n".join((function_arn, key, version))
    return "ramparts-vuln-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _vid(v: Vulnerability) -> str:
    if v.cve is not None:
        return v.cve.uid
    if v.advisory is not None:
        return v.advisory.uid
    return v.title or "?"


def _same_version(a: str, b: str) -> bool:
    pa, pb = try_parse(a), try_parse(b)
    return a == b or (pa is not None and pb is not None and pa.key == pb.key)


def inspector_items(
    findings: Iterable[VulnerabilityFinding], function_arn: str, problems: list[str]
) -> list[_InspectorItem]:
    """One item per (vulnerability, affected package) of the function's Inspector findings."""
    out: list[_InspectorItem] = []
    for f in findings:
        uid = f.resources[0].uid if f.resources else None
        if uid != function_arn:
            problems.append(f"Inspector finding {f.finding_info.uid}: for {uid}, not this function")
            continue
        for v in f.vulnerabilities:
            scores = [c.base_score for c in (v.cve.cvss or [])] if v.cve else []
            if not scores:  # an advisory (GHSA...): OCSF has no CVSS there, the adapter kept it
                extra = ((f.unmapped or {}).get("inspector") or {}).get("cvss") or []
                scores = [float(c["base_score"]) for c in extra if "base_score" in c]
            for p in v.affected_packages or []:
                out.append(
                    _InspectorItem(
                        key=package_key(p.package_manager, p.name),
                        name=p.name,
                        version=p.version,
                        manager=p.package_manager,
                        vulnerability=v.model_copy(update={"affected_packages": [p]}),
                        vid=_vid(v),
                        finding_arn=f.finding_info.uid,
                        severity_id=f.severity_id,
                        score=max(scores) if scores else None,
                    )
                )
    return out


def _inputs(package: str, modules: tuple[str, ...], scores: list[float]) -> FindingInputs:
    base = max(scores) if scores else None
    return FindingInputs(
        package, modules, base, _SEVERITY_LABELS.get(severity_id_of(base)) if base else None
    )


def _explain(priority: Priority, facts: Mapping[str, Fact]) -> str:
    text = priority.explain()
    evidence = [
        f"{label}: {'; '.join(facts[k].why)}"
        for k, label in (("internet_reachable", "Reachable"), ("role_power", "Role"))
        if facts[k].value is not None and facts[k].why
    ]
    return text + (" " + ". ".join(evidence) + "." if evidence else "")


def _facts_json(facts: Mapping[str, Fact]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, f in facts.items():
        value = sorted(f.value) if isinstance(f.value, set | frozenset) else f.value
        out[k] = {"value": value, "why": list(f.why)}
    return out


def build_findings(
    fn: FunctionInfo,
    matched: Sequence[PackageMatches],
    inspector_findings: Sequence[VulnerabilityFinding],
    *,
    imported: set[str] | None,
    facts: Mapping[str, Fact],
    now_ms: int,
    problems: list[str] | None = None,
    layers_of: Mapping[str, str] | None = None,
) -> list[VulnerabilityFinding]:
    """The function's findings: OSV matches joined with Inspector's, prioritised (pure).

    ``facts`` holds ``internet_reachable`` and ``role_power`` (:class:`Fact`, value None when
    unknown); ``layers_of`` maps a package location to the layer ARN it came from.
    """
    problems = problems if problems is not None else []
    reach = facts["internet_reachable"].value
    power = facts["role_power"].value
    items = inspector_items(inspector_findings, fn.arn, problems)
    by_key: dict[str, list[_InspectorItem]] = {}
    for it in items:
        by_key.setdefault(it.key, []).append(it)
    used: set[int] = set()
    out: list[VulnerabilityFinding] = []
    all_facts = {"imported": Fact(imported), **facts}

    for pm in matched:
        joined = [
            (i, it)
            for i, it in enumerate(items)
            if it.key == pm.canonical and _same_version(it.version, pm.version)
        ]
        if not pm.matches:
            continue  # Inspector-only for this package: below
        used.update(i for i, _ in joined)
        osv_ids = {m.advisory.id: {m.advisory.id, *m.advisory.aliases} for m in pm.matches}
        inspector_refs: list[dict[str, Any]] = []
        extra: list[Vulnerability] = []
        extra_ids: set[str] = set()
        for _, it in joined:
            same = sorted(k for k, ids in osv_ids.items() if it.vid in ids)
            inspector_refs.append(
                {
                    "finding_arn": it.finding_arn,
                    "vulnerability_id": it.vid,
                    "severity_id": it.severity_id,
                    "osv_ids": same,
                }
            )
            if not same and it.vid not in extra_ids:
                extra.append(it.vulnerability)
                extra_ids.add(it.vid)
        osv_inputs = FindingInputs.of(pm)
        scores = [s for s in [osv_inputs.base_score] if s is not None]
        scores += [_score_of(it) for _, it in joined if it.vid in extra_ids]
        inputs = _inputs(pm.canonical, pm.modules, scores)
        priority = prioritise(inputs, imported=imported, internet_reachable=reach, role_power=power)
        finding = to_finding(pm, priority, function=fn.arn, now_ms=now_ms)
        sources: list[Source] = ["osv", "inspector"] if joined else ["osv"]
        unmapped = dict(finding.unmapped or {})
        ramparts = dict(unmapped["ramparts"])
        ramparts["sources"] = sources
        ramparts["context"] = _facts_json(all_facts)
        if inspector_refs:
            ramparts["inspector"] = inspector_refs
        if layers_of:
            from_layers = sorted({layers_of[loc] for loc in pm.locations if loc in layers_of})
            if from_layers:
                ramparts["package"] = {**ramparts["package"], "layers": from_layers}
        unmapped["ramparts"] = ramparts
        info = finding.finding_info.model_copy(update={"desc": _explain(priority, facts)})
        out.append(
            finding.model_copy(
                update={
                    "vulnerabilities": [*finding.vulnerabilities, *extra],
                    "unmapped": unmapped,
                    "finding_info": info,
                }
            )
        )

    # packages only Inspector reports
    rest: dict[tuple[str, str], list[_InspectorItem]] = {}
    for i, it in enumerate(items):
        if i not in used:
            rest.setdefault((it.key, it.version), []).append(it)
    modules_of = {(pm.canonical, pm.version): pm.modules for pm in matched}
    for (key, version), group in sorted(rest.items()):
        out.append(
            _inspector_only(
                fn,
                key=key,
                version=version,
                group=group,
                imported=imported,
                facts=facts,
                all_facts=all_facts,
                modules_of=modules_of,
                now_ms=now_ms,
            )
        )
    return out


def _score_of(it: _InspectorItem) -> float:
    if it.score is not None:
        return it.score
    return _INSPECTOR_REPRESENTATIVE.get(_SEVERITY_LABELS.get(it.severity_id, ""), 0.0)


def _inspector_only(
    fn: FunctionInfo,
    *,
    key: str,
    version: str,
    group: list[_InspectorItem],
    imported: set[str] | None,
    facts: Mapping[str, Fact],
    all_facts: Mapping[str, Fact],
    modules_of: Mapping[tuple[str, str], tuple[str, ...]],
    now_ms: int,
) -> VulnerabilityFinding:
    first = group[0]
    python = first.manager is None or first.manager.upper() in PIP_MANAGERS
    vulns: dict[str, Vulnerability] = {}
    for it in group:
        vulns.setdefault(it.vid, it.vulnerability)
    scored = [it for it in group if it.severity_id > 0]
    modules = next(
        (m for (k, v), m in modules_of.items() if k == key and _same_version(v, version)), ()
    )
    inputs = _inputs(key, modules, [_score_of(it) for it in scored])
    priority = prioritise(
        inputs,
        imported=imported if python else None,  # the sensor knows Python imports only
        internet_reachable=facts["internet_reachable"].value,
        role_power=facts["role_power"].value,
    )
    uid = stable_uid(fn.arn, key, version)
    ids = sorted(vulns)
    noun = "vulnerability" if len(ids) == 1 else "vulnerabilities"
    title = f"{first.name} {version}: {len(ids)} known {noun}"
    fixes = sorted(
        {
            p.fixed_in_version
            for v in vulns.values()
            for p in v.affected_packages or []
            if p.fixed_in_version
        }
    )
    prio: dict[str, Any] = {"severity": priority.severity, "reasons": list(priority.reasons)}
    if priority.base_score is not None:
        prio["base_score"] = priority.base_score
        prio["score"] = priority.score
    return VulnerabilityFinding(
        activity_id=VulnerabilityFinding.CREATE,
        severity_id=priority.severity_id,
        time=now_ms,
        metadata=metadata(PRODUCT, PRODUCT, event_code="PACKAGE_VULNERABILITY"),
        cloud=cloud(fn.account, fn.region),
        message=title + (f" (fixed in {', '.join(fixes)})" if fixes else " (no fix known)"),
        finding_info=FindingInfo(
            uid=uid,
            title=title,
            desc=_explain(priority, facts),
            types=["PACKAGE_VULNERABILITY"],
            created_time=now_ms,
        ),
        resources=[_resource(fn)],
        vulnerabilities=[vulns[i] for i in ids],
        unmapped={
            "ramparts": {
                "source": fn.arn,
                "package": {
                    "name": first.name,
                    "version": version,
                    "manager": first.manager,
                    "purl": next(
                        (p.purl for p in first.vulnerability.affected_packages or []), None
                    ),
                },
                "sources": ["inspector"],
                "inspector": [
                    {
                        "finding_arn": it.finding_arn,
                        "vulnerability_id": it.vid,
                        "severity_id": it.severity_id,
                        "osv_ids": [],
                    }
                    for it in group
                ],
                "context": _facts_json(all_facts),
                "prioritisation": prio,
            }
        },
    )


def _resource(fn: FunctionInfo) -> ResourceDetails:
    return ResourceDetails(
        uid=fn.arn,
        name=fn.name,
        type="AwsLambdaFunction",
        region=fn.region,
        cloud_partition=fn.partition,
        role_id=3,
    )


# -- storing and publishing ---------------------------------------------------------------------
def fingerprint(finding: dict[str, Any]) -> str:
    """What makes a finding "changed" for publication: severity, advisories, sources."""
    ids = sorted(
        (v.get("cve") or v.get("advisory") or {}).get("uid", v.get("title", "?"))
        for v in finding.get("vulnerabilities", [])
    )
    ramparts = (finding.get("unmapped") or {}).get("ramparts") or {}
    text = json.dumps([finding.get("severity_id"), ids, sorted(ramparts.get("sources") or [])])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _fit(finding: dict[str, Any], limit: int) -> str:
    """The finding's JSON within ``limit`` bytes: long descriptions go first."""
    text = json.dumps(finding, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) <= limit:
        return text
    slim = json.loads(text)
    for v in slim.get("vulnerabilities", []):
        v.pop("desc", None)
        for k in ("cve", "advisory"):
            if isinstance(v.get(k), dict):
                v[k].pop("references", None)
        v.pop("references", None)
    text = json.dumps(slim, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > limit:
        raise ValueError(f"finding {finding['finding_info']['uid']}: too large even without text")
    return text


class VulnStore:
    """Vulnerability findings and their indexes in the findings table (see the docstring)."""

    def __init__(self, table: str, *, client: Any, closed_ttl_s: int) -> None:
        self.table = table
        self.client = client
        self.closed_ttl_s = closed_ttl_s

    @staticmethod
    def key(uid: str) -> dict[str, Any]:
        return {"pk": {"S": f"vuln#{uid}"}, "sk": {"S": "finding"}}

    def get(self, uid: str) -> dict[str, Any] | None:
        raw = self.client.get_item(TableName=self.table, Key=self.key(uid), ConsistentRead=True)
        return deserialize(raw["Item"]) if raw.get("Item") else None

    def put(self, item: dict[str, Any], old_version: int | None) -> None:
        params: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if old_version is None:
            params["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            params["ConditionExpression"] = "version = :v"
            params["ExpressionAttributeValues"] = {":v": {"N": str(old_version)}}
        self.client.put_item(**params)

    def published(self, uid: str, version: int) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self.key(uid),
                UpdateExpression="REMOVE publish_pending",
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise  # a newer write keeps its own pending publication

    def _get_set(self, pk: str, sk: str, attr: str) -> set[str] | None:
        raw = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        if not raw:
            return None
        return set(deserialize(raw).get(attr) or [])

    def _put_set(self, pk: str, sk: str, attr: str, values: set[str], now: int) -> None:
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        if not values:
            self.client.delete_item(TableName=self.table, Key=key)
            return
        item = {**key, attr: {"SS": sorted(values)}, "updated_at": {"N": str(now)}}
        self.client.put_item(TableName=self.table, Item=item)

    def open_ids(self, function_arn: str) -> set[str]:
        return self._get_set("vulnindex#" + key_text(function_arn), "open", "ids") or set()

    def set_open_ids(self, function_arn: str, ids: set[str], now: int) -> None:
        self._put_set("vulnindex#" + key_text(function_arn), "open", "ids", ids, now)

    def functions(self, account: str, region: str) -> set[str]:
        return self._get_set(f"vulnregion#{account}#{region}", "functions", "functions") or set()

    def set_functions(self, account: str, region: str, arns: set[str], now: int) -> None:
        self._put_set(f"vulnregion#{account}#{region}", "functions", "functions", arns, now)


class VulnPublisher:
    """``PutEvents`` of "Ramparts Vulnerability Finding" events, failed entries retried."""

    def __init__(
        self,
        bus_name: str,
        *,
        client: Any,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus_name = bus_name
        self.client = client
        self.max_attempts = max_attempts
        self.sleep = sleep

    def entry(self, detail: str, resource: str) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": detail,
            "Resources": [resource],
            "EventBusName": self.bus_name,
        }

    def put(self, entries: list[dict[str, Any]]) -> None:
        put_events(
            self.client,
            entries,
            what="vulnerability finding",
            bus_name=self.bus_name,
            max_attempts=self.max_attempts,
            sleep=self.sleep,
        )


# -- the run --------------------------------------------------------------------------------------
@dataclass(slots=True)
class RunReport:
    functions: int = 0
    scanned: int = 0  # Python zip functions whose code was inventoried completely
    not_scanned: dict[str, str] = field(default_factory=dict)  # ARN -> why
    errors: list[str] = field(default_factory=list)  # failures (a function, an account)
    problems: list[str] = field(default_factory=list)  # bad metadata, bad Inspector findings
    created: int = 0
    updated: int = 0
    closed: int = 0
    unchanged: int = 0
    published: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)  # every open finding (OCSF)
    advisories_sha256: str | None = None

    def note(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def summary(self) -> dict[str, Any]:
        return {
            "functions": self.functions,
            "scanned": self.scanned,
            "not_scanned": len(self.not_scanned),
            "errors": len(self.errors),
            "problems": len(self.problems),
            "created": self.created,
            "updated": self.updated,
            "closed": self.closed,
            "unchanged": self.unchanged,
            "published": self.published,
        }


@dataclass(slots=True)
class _Scan:
    """What one function's scan produced, and which sources it checked completely."""

    findings: list[VulnerabilityFinding] = field(default_factory=list)
    checked: set[Source] = field(default_factory=set)
    packages: dict[str, set[str]] = field(default_factory=dict)  # PEP 503 name -> versions


class Scanner:
    """One scan of every configured account and region (see the module docstring)."""

    def __init__(
        self,
        config: ScanConfig,
        *,
        clients: Clients,
        fetch: Fetch | None = None,
        advisories: AdvisoryCache,
        dynamodb: Any,
        events: Any,
        clock: Callable[[], float] = time.time,
        workdir: str | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self.fetch = fetch or self._https_fetch
        self.advisories = advisories
        self.store = VulnStore(
            config.findings_table, client=dynamodb, closed_ttl_s=config.closed_ttl_days * 86400
        )
        self.dynamodb = dynamodb
        self.publisher = VulnPublisher(config.event_bus_name, client=events)
        self.clock = clock
        self.workdir = workdir

    def _https_fetch(self, url: str, dest: str) -> None:
        download(url, dest, max_bytes=self.config.max_code_bytes, timeout_s=self.config.timeout_s)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> RunReport:
        report = RunReport()
        db, manifest = self.advisories.database()
        report.advisories_sha256 = manifest.sha256
        self._layers: dict[str, Inventory | str] = {}  # per run: layer ARN -> inventory or error
        self._roles: dict[str, tuple[Fact, list[str]]] = {}
        self._managed: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="ramparts-scan-", dir=self.workdir) as tmp:
            self._tmp = tmp
            for account in self.config.accounts:
                for region in self.config.regions:
                    self._scan_region(account, region, db, report)
        return report

    def _scan_region(self, account: str, region: str, db: Database, report: RunReport) -> None:
        where = f"{account}/{region}"
        try:
            lam = self.clients.client("lambda", account, region)
            functions: list[dict[str, Any]] = []
            for page in lam.get_paginator("list_functions").paginate():
                functions.extend(page.get("Functions", []))
        except (ClientError, BotoCoreError) as exc:
            report.errors.append(f"{where}: functions not listed: {exc}")
            return
        seen: set[str] = set()
        for conf in sorted(functions, key=lambda c: str(c.get("FunctionArn"))):
            arn = str(conf.get("FunctionArn"))
            report.functions += 1
            seen.add(arn)
            try:
                self._function(conf, account, region, db, report)
            except (ClientError, BotoCoreError, PublishError, ValueError, OSError) as exc:
                report.errors.append(f"{arn}: {type(exc).__name__}: {exc}")
        now = int(self.clock())
        for gone in sorted(self.store.functions(account, region) - seen):
            try:
                self._reconcile(gone, _Scan(checked={"osv", "inspector"}), report, deleted=True)
            except (ClientError, PublishError, ValueError) as exc:
                report.errors.append(f"{gone}: findings of a deleted function: {exc}")
        self.store.set_functions(account, region, seen, now)

    def _function(
        self, conf: dict[str, Any], account: str, region: str, db: Database, report: RunReport
    ) -> None:
        arn = str(conf["FunctionArn"])
        partition = arn.split(":", 2)[1]
        fn = FunctionInfo(arn, str(conf["FunctionName"]), account, region, partition)
        lam = self.clients.client("lambda", account, region)
        scan = _Scan()
        matched: list[PackageMatches] = []
        layers_of: dict[str, str] = {}
        runtime = str(conf.get("Runtime") or "")
        if conf.get("PackageType") == "Image":
            report.not_scanned[arn] = "container image: not scanned (Inspector scans images)"
        elif not runtime.startswith("python"):
            report.not_scanned[arn] = (
                f"runtime {runtime or '?'}: only Python packages are inventoried"
            )
        else:
            inv, complete = self._inventory(lam, fn, conf, layers_of, report)
            if inv is not None:
                matched = match_inventory(db, inv, source=arn)
                for d in inv.distributions:
                    scan.packages.setdefault(d.canonical, set()).add(d.version)
            if complete:
                scan.checked.add("osv")
                report.scanned += 1
        problems: list[str] = []
        inspector_findings, ok = self._inspector(fn, problems)
        if ok:
            scan.checked.add("inspector")
        imported = self._imported(arn)
        facts = {
            "internet_reachable": self._reachability(lam, fn, problems),
            "role_power": self._role_power(fn, str(conf.get("Role") or ""), problems),
        }
        for p in problems:
            report.note(p)
        scan.findings = build_findings(
            fn,
            matched,
            inspector_findings,
            imported=imported,
            facts=facts,
            now_ms=int(self.clock() * 1000),
            problems=problems,
            layers_of=layers_of,
        )
        self._reconcile(arn, scan, report)

    # -- code ---------------------------------------------------------------------------------
    def _inventory(
        self,
        lam: Any,
        fn: FunctionInfo,
        conf: dict[str, Any],
        layers_of: dict[str, str],
        report: RunReport,
    ) -> tuple[Inventory | None, bool]:
        """The function's packages (its zip and its layers), and whether all were read."""
        inv = Inventory(source=fn.arn, kind="zip")
        complete = True
        try:
            location = lam.get_function(FunctionName=fn.arn)["Code"]["Location"]
            code = self._scan_url(location, "code")
        except (ClientError, DownloadError, InventoryError, KeyError) as exc:
            report.errors.append(f"{fn.arn}: code not scanned: {exc}")
            return None, False
        _merge(inv, code, "/var/task/", None, layers_of)
        for layer in conf.get("Layers") or []:
            layer_arn = str(layer.get("Arn"))
            got = self._layer(lam, layer_arn)
            if isinstance(got, str):
                report.errors.append(f"{fn.arn}: layer {layer_arn} not scanned: {got}")
                complete = False
                continue
            _merge(inv, got, "/opt/", layer_arn, layers_of)
        for p in inv.problems:
            report.note(f"{fn.arn}: {p}")
        inv.sort()
        return inv, complete

    def _layer(self, lam: Any, layer_arn: str) -> Inventory | str:
        found = self._layers.get(layer_arn)
        if found is None:
            try:
                location = lam.get_layer_version_by_arn(Arn=layer_arn)["Content"]["Location"]
                found = self._scan_url(location, "layer")
            except (ClientError, DownloadError, InventoryError, KeyError) as exc:
                found = str(exc)
            self._layers[layer_arn] = found
        return found

    def _scan_url(self, url: str, what: str) -> Inventory:
        fd, path = tempfile.mkstemp(prefix=f"{what}-", suffix=".zip", dir=self._tmp)
        os.close(fd)
        try:
            self.fetch(url, path)
            return scan_zip(path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    # -- context ------------------------------------------------------------------------------
    def _imported(self, arn: str) -> set[str] | None:
        raw = self.dynamodb.get_item(
            TableName=self.config.baseline_table,
            Key={"pk": {"S": "seen#" + key_text("lambda:" + arn)}, "sk": {"S": "packages"}},
        ).get("Item")
        if not raw:
            return None  # the sensor has not reported this function's packages
        return {str(x) for x in deserialize(raw).get("imported") or []}

    def _reachability(self, lam: Any, fn: FunctionInfo, problems: list[str]) -> Fact:
        try:
            try:
                auth = lam.get_function_url_config(FunctionName=fn.arn).get("AuthType")
            except ClientError as exc:
                if _code(exc) not in _NOT_FOUND:
                    raise
                auth = None
            try:
                policy = lam.get_policy(FunctionName=fn.arn).get("Policy")
            except ClientError as exc:
                if _code(exc) not in _NOT_FOUND:
                    raise
                policy = None
            reachable, why = reachability(auth, policy)
        except (ClientError, ValueError) as exc:
            problems.append(f"{fn.arn}: reachability unknown: {exc}")
            return Fact(None)
        if not reachable:
            why = ["no public function URL; no resource policy for *, API Gateway or ALB"]
        return Fact(reachable, tuple(why))

    def _role_power(self, fn: FunctionInfo, role_arn: str, problems: list[str]) -> Fact:
        if not role_arn:
            return Fact(None)
        found = self._roles.get(role_arn)
        if found is None:
            try:
                power, why = role_power(self._role_policies(fn, role_arn))
                found = (Fact(power, tuple(why)), [])
            except (ClientError, ValueError) as exc:
                found = (Fact(None), [f"role {role_arn}: power unknown: {exc}"])
            self._roles[role_arn] = found
        problems.extend(found[1])
        return found[0]

    def _role_policies(self, fn: FunctionInfo, role_arn: str) -> list[tuple[str, Any]]:
        iam = self.clients.client("iam", fn.account, fn.region)
        name = role_arn.rsplit("/", 1)[-1]
        out: list[tuple[str, Any]] = []
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for p in page.get("AttachedPolicies", []):
                arn = p["PolicyArn"]
                doc = self._managed.get(arn)
                if doc is None:
                    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"][
                        "Document"
                    ]
                    self._managed[arn] = doc
                out.append((p.get("PolicyName") or arn, doc))
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            for pname in page.get("PolicyNames", []):
                doc = iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"]
                out.append((f"{pname} (inline)", doc))
        return out

    def _inspector(
        self, fn: FunctionInfo, problems: list[str]
    ) -> tuple[list[VulnerabilityFinding], bool]:
        criteria = {
            "resourceType": [{"comparison": "EQUALS", "value": "AWS_LAMBDA_FUNCTION"}],
            "resourceId": [
                {"comparison": "EQUALS", "value": fn.arn},
                {"comparison": "PREFIX", "value": fn.arn + ":"},  # qualified: name:$LATEST
            ],
            "findingType": [{"comparison": "EQUALS", "value": "PACKAGE_VULNERABILITY"}],
            "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}],
        }
        try:
            client = self.clients.client("inspector2", fn.account, fn.region)
            raw: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                params: dict[str, Any] = {"filterCriteria": criteria, "maxResults": 100}
                if token:
                    params["nextToken"] = token
                resp = client.list_findings(**params)
                raw.extend(resp.get("findings") or [])
                token = resp.get("nextToken")
                if not token:
                    break
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"{fn.arn}: Inspector findings unknown: {exc}")
            return [], False
        out: list[VulnerabilityFinding] = []
        for i in range(0, len(raw), 500):
            batch = inspector.normalize(
                {"findings": raw[i : i + 500]}, Context(account=fn.account, region=fn.region)
            )
            for r in batch.rejects:
                problems.append(f"{fn.arn}: Inspector finding rejected: {r.reason}")
            out.extend(e for e in batch.events if isinstance(e, VulnerabilityFinding))
        return out, True

    # -- storing ------------------------------------------------------------------------------
    def _reconcile(
        self, arn: str, scan: _Scan, report: RunReport, *, deleted: bool = False
    ) -> None:
        now_s = int(self.clock())
        now_ms = int(self.clock() * 1000)
        pending: list[tuple[str, int, str]] = []  # (uid, version, detail)
        produced: set[str] = set()
        for f in scan.findings:
            uid = f.finding_info.uid
            produced.add(uid)
            item = self.store.get(uid)
            got = self._write_open(f, item, now_s, now_ms, report)
            if got is not None:
                pending.append(got)
        keep: set[str] = set(produced)
        for uid in sorted(self.store.open_ids(arn) - produced):
            item = self.store.get(uid)
            if item is None or item.get("status") != "open":
                continue
            if not set(item.get("sources") or []) <= scan.checked:
                keep.add(uid)  # a source that reported it was not checked: stays open
                continue
            pending.append(
                self._write_closed(
                    item, scan=scan, deleted=deleted, now_s=now_s, now_ms=now_ms, report=report
                )
            )
        self.store.set_open_ids(arn, keep, now_s)
        for uid, version, detail in pending:
            self.publisher.put([self.publisher.entry(detail, arn)])
            self.store.published(uid, version)
            report.published += 1

    def _write_open(
        self,
        f: VulnerabilityFinding,
        item: dict[str, Any] | None,
        now_s: int,
        now_ms: int,
        report: RunReport,
    ) -> tuple[str, int, str] | None:
        uid = f.finding_info.uid
        reopened = item is not None and item.get("status") != "open"
        first_seen = int(item["first_seen_ms"]) if item and not reopened else now_ms
        ocsf = f.to_ocsf()
        fp = fingerprint(ocsf)
        if item is None or reopened:
            activity = VulnerabilityFinding.CREATE
        elif item.get("fingerprint") != fp:
            activity = VulnerabilityFinding.UPDATE
        else:
            activity = None
        created = int(item.get("created_ms", first_seen)) if item and not reopened else now_ms
        if activity is not None or item is None:
            modified, act = now_ms, activity or VulnerabilityFinding.CREATE
        else:
            modified, act = int(item.get("modified_ms", now_ms)), int(item["activity_id"])
        info = f.finding_info.model_copy(
            update={
                "created_time": created,
                "modified_time": modified,
                "first_seen_time": first_seen,
                "last_seen_time": now_ms,
            }
        )
        final = f.model_copy(
            update={"finding_info": info, "activity_id": act, "status_id": 1, "status": "New"}
        ).to_ocsf()
        report.findings.append(final)
        pending_before = bool(item and item.get("publish_pending"))
        new_item: dict[str, Any] = {
            "pk": f"vuln#{uid}",
            "sk": "finding",
            "id": uid,
            "function": (final.get("resources") or [{}])[0].get("uid"),
            "package": ((final.get("unmapped") or {}).get("ramparts") or {}).get("package", {}),
            "sources": ((final.get("unmapped") or {}).get("ramparts") or {}).get("sources", []),
            "severity_id": final["severity_id"],
            "activity_id": act,
            "status": "open",
            "fingerprint": fp,
            "created_ms": created,
            "modified_ms": modified,
            "first_seen_ms": first_seen,
            "last_seen_ms": now_ms,
            "updated_at": now_s,
            "version": (int(item["version"]) if item else 0) + 1,
            "finding": _fit(final, MAX_ITEM_JSON),
        }
        if activity is not None or pending_before:
            new_item["publish_pending"] = True
        self.store.put(new_item, int(item["version"]) if item else None)
        if activity == VulnerabilityFinding.CREATE:
            report.created += 1
        elif activity == VulnerabilityFinding.UPDATE:
            report.updated += 1
        else:
            report.unchanged += 1
        if activity is None and not pending_before:
            return None
        return uid, new_item["version"], _fit(final, MAX_ENTRY_BYTES)

    def _write_closed(
        self,
        item: dict[str, Any],
        *,
        scan: _Scan,
        deleted: bool,
        now_s: int,
        now_ms: int,
        report: RunReport,
    ) -> tuple[str, int, str]:
        package = item.get("package") or {}
        name, version = str(package.get("name", "?")), str(package.get("version", "?"))
        versions = scan.packages.get(canonical_name(name), set())
        if deleted:
            reason = "the function no longer exists"
        elif "inspector" in (item.get("sources") or []) and "osv" not in (
            item.get("sources") or []
        ):
            reason = f"Amazon Inspector no longer reports {name} {version}"
        elif versions and not any(_same_version(v, version) for v in versions):
            reason = f"{name} upgraded from {version} to {', '.join(sorted(versions))}"
        elif versions:
            reason = f"no advisory affects {name} {version} any more"
        else:
            reason = f"{name} {version} removed from the function"
        old = from_ocsf(json.loads(item["finding"]))
        if not isinstance(old, VulnerabilityFinding):
            raise ValueError(f"finding {item['id']}: the stored finding is not class 2002")
        info = old.finding_info.model_copy(update={"modified_time": now_ms})
        closed = old.model_copy(
            update={
                "activity_id": VulnerabilityFinding.CLOSE,
                "status_id": 4,
                "status": "Resolved",
                "status_detail": reason,
                "time": now_ms,
                "finding_info": info,
            }
        ).to_ocsf()
        new_item = {
            **item,
            "activity_id": VulnerabilityFinding.CLOSE,
            "status": "closed",
            "closed_reason": reason,
            "modified_ms": now_ms,
            "updated_at": now_s,
            "expires_at": now_s + self.store.closed_ttl_s,
            "version": int(item["version"]) + 1,
            "finding": _fit(closed, MAX_ITEM_JSON),
            "publish_pending": True,
        }
        self.store.put(new_item, int(item["version"]))
        report.closed += 1
        return str(item["id"]), new_item["version"], _fit(closed, MAX_ENTRY_BYTES)


def _merge(
    inv: Inventory, part: Inventory, root: str, layer: str | None, layers_of: dict[str, str]
) -> None:
    for d in part.distributions:
        path = root + d.path
        inv.distributions.append(dataclasses.replace(d, path=path))
        if layer is not None:
            layers_of[path] = layer
    for p in part.problems:
        inv.problems.append(Problem(root + p.where, p.reason))


# -- the Lambda handler ----------------------------------------------------------------------
_SANDBOX: dict[str, Any] = {}


def _own_account(context: Any, session: Any) -> str:
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    parts = arn.split(":")
    if len(parts) > 4 and _ACCOUNT.match(parts[4]):
        return parts[4]
    return str(session.client("sts").get_caller_identity()["Account"])


def scanner(context: Any = None) -> Scanner:
    """The sandbox's scanner (the advisory cache lives as long as the sandbox)."""
    found = _SANDBOX.get("scanner")
    if found is None:
        config = ScanConfig.from_env(os.environ)
        session = boto3.session.Session()
        own = _own_account(context, session)
        found = Scanner(
            config,
            clients=AccountSessions(
                own, role_name=config.role_name, external_id=config.external_id, session=session
            ),
            advisories=AdvisoryCache(session.client("s3"), config.bucket, config.prefix),
            dynamodb=session.client("dynamodb"),
            events=session.client("events"),
        )
        _SANDBOX["scanner"] = found
    return found


def record(report: RunReport) -> None:
    """Log and count a run (metrics are flushed by the handler's decorator)."""
    for name, value in (
        ("VulnFunctions", report.functions),
        ("VulnFunctionsScanned", report.scanned),
        ("VulnFunctionsNotScanned", len(report.not_scanned)),
        ("VulnScanErrors", len(report.errors)),
        ("VulnScanProblems", len(report.problems)),
        ("VulnFindingsCreated", report.created),
        ("VulnFindingsUpdated", report.updated),
        ("VulnFindingsClosed", report.closed),
        ("VulnFindingsPublished", report.published),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    extra = {
        **report.summary(),
        "errors_first": report.errors[:10],
        "problems_first": report.problems[:10],
        "advisories_sha256": report.advisories_sha256,
    }
    if report.errors:
        logger.error("vulnerability scan finished with errors", extra=extra)
    else:
        logger.info("vulnerability scan finished", extra=extra)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    del event  # a schedule: nothing in the event matters
    report = scanner(context).run()
    record(report)
    return report.summary()
