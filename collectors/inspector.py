"""Amazon Inspector (Inspector2) package-vulnerability findings -> OCSF Vulnerability Finding.

Records this adapter reads (``docs/collectors/inspector.md`` has the mapping):

* an EventBridge event, ``source`` "aws.inspector2", ``detail-type`` "Inspector2 Finding",
  whose ``detail`` is one finding; Inspector's other events (Scan, Coverage, AutoEnable)
  are counted as skipped;
* a bare finding (the ``detail`` object, as ``list-findings`` returns it);
* a ``list-findings`` response, ``{"findings": [...]}``.

Only ``PACKAGE_VULNERABILITY`` findings on a Lambda function, an EC2 instance or an ECR
container image become events; network-reachability and code-vulnerability findings, and
other resource types, are counted as skipped.

Identity works as for GuardDuty (see :mod:`collectors.guardduty`): the account and region
come from the EventBridge envelope; the finding's ``awsAccountId``, its ARN and its
resource's ARN, region and partition must agree with them, or the finding is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from collectors.base import MAX_LIST, Batch, Context, RecordError, clip, cloud
from collectors.guardduty import (
    ACCOUNT_RE,
    ARN_PARTITION,
    ARN_REGION,
    INSTANCE_ID_RE,
    LAMBDA_ARN_RE,
    Delivery,
    Origin,
    Scope,
    Unsupported,
    agree,
    device_of,
    finding_metadata,
    get_int,
    get_list,
    get_number,
    get_obj,
    get_str,
    list_items,
    need_match,
    need_str,
    normalize_findings,
    product_uid,
    short,
    time_of,
    with_role,
)
from collectors.model import (
    Advisory,
    AffectedPackage,
    Cve,
    Cvss,
    Device,
    Epss,
    FindingInfo,
    OcsfEvent,
    ResourceDetails,
    Vulnerability,
    VulnerabilityFinding,
)
from collectors.workload import Workload, lambda_function

SOURCE = "inspector"
EVENT_SOURCE = "aws.inspector2"
DETAIL_TYPE = "Inspector2 Finding"
PRODUCT = "Inspector"

_FINDING_ARN_RE = re.compile(
    rf"arn:({ARN_PARTITION}):inspector2:({ARN_REGION}):(\d{{12}}):finding/([A-Za-z0-9]{{1,64}})"
)
_ECR_IMAGE_ARN_RE = re.compile(
    rf"arn:({ARN_PARTITION}):ecr:({ARN_REGION}):(\d{{12}}):repository/"
    r"([a-z0-9][a-z0-9._/-]{0,255}?)/(sha256:[0-9a-f]{64})"
)
CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}")
# CVE-..., GHSA-xxxx-xxxx-xxxx, ALAS2-2024-2654, RHSA-2024:1234, USN-6940-1, SNYK-...
_VULNERABILITY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/-]{0,127}")
_URL_RE = re.compile(r"https?://[^\s\"<>]{1,2040}")

# Inspector's severity label -> OCSF severity_id
SEVERITIES: dict[str, int] = {
    "INFORMATIONAL": 1,
    "LOW": 2,
    "MEDIUM": 3,
    "HIGH": 4,
    "CRITICAL": 5,
    "UNTRIAGED": 0,  # not scored yet: OCSF Unknown
}
# Inspector's status -> (OCSF activity_id, status_id, status)
STATUSES: dict[str, tuple[int, int, str]] = {
    "ACTIVE": (VulnerabilityFinding.CREATE, 1, "New"),  # Update once seen again (see below)
    "SUPPRESSED": (VulnerabilityFinding.UPDATE, 3, "Suppressed"),
    "CLOSED": (VulnerabilityFinding.CLOSE, 4, "Resolved"),
}
_YES_NO = {"YES": True, "NO": False, "PARTIAL": True}
_SKIPPED_TYPES = {"NETWORK_REACHABILITY", "CODE_VULNERABILITY"}
MAX_PACKAGES = 64  # affected packages kept per finding (the count of the rest is kept)
MAX_REFERENCES = 32

# package manager -> purl type (https://github.com/package-url/purl-spec); OS packages need
# the distribution, which the finding does not name per package: no purl for them.
_PURL_TYPES: dict[str, str] = {
    "PIP": "pypi",
    "PIPENV": "pypi",
    "POETRY": "pypi",
    "PYTHONPKG": "pypi",
    "NPM": "npm",
    "YARN": "npm",
    "NODEPKG": "npm",
    "GOBINARY": "golang",
    "GOMOD": "golang",
    "JAR": "maven",
    "POM": "maven",
    "GEMSPEC": "gem",
    "BUNDLER": "gem",
    "CARGO": "cargo",
    "NUGET": "nuget",
    "DOTNET_CORE": "nuget",
    "COMPOSER": "composer",
}


def matches(record: Any) -> bool:
    """An EventBridge event from aws.inspector2, an Inspector2 finding, or a list of them."""
    if not isinstance(record, dict):
        return False
    if record.get("source") == EVENT_SOURCE and "detail-type" in record:
        return True
    items = list_items(record)
    if items is not None:
        return bool(items) and isinstance(items[0], dict) and _is_finding(items[0])
    return _is_finding(record)


def _is_finding(record: Mapping[str, Any]) -> bool:
    arn = record.get("findingArn")
    return (
        isinstance(arn, str)
        and arn.startswith("arn:")
        and ":inspector2:" in arn[:40]
        and ":finding/" in arn
        and "awsAccountId" in record
    )


def normalize(record: Any, ctx: Context) -> Batch:
    return normalize_findings(record, ctx, _DELIVERY)


def _convert(finding: dict[str, Any], origin: Origin, raw: str) -> OcsfEvent:
    arn = need_match(finding, "findingArn", _FINDING_ARN_RE, "finding")
    finding_arn, partition = arn[0], arn[1]
    account = agree(
        "awsAccountId",
        need_str(finding, "awsAccountId", ACCOUNT_RE, "finding"),
        origin,
        origin.account,
    )
    region = agree("region (in its findingArn)", arn[2], origin, origin.region)
    if arn[3] != account:
        raise RecordError(f"the findingArn's account {arn[3]} is not the finding's {account}")
    kind = finding.get("type")
    if kind != "PACKAGE_VULNERABILITY":
        if isinstance(kind, str) and kind in _SKIPPED_TYPES:
            raise Unsupported(kind)
        raise RecordError(f"finding: type {short(kind)} is not an Inspector finding type")
    severity = finding.get("severity")
    if not isinstance(severity, str) or severity not in SEVERITIES:
        raise RecordError(f"finding: severity {short(severity)} is not Inspector's")
    status = finding.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        raise RecordError(f"finding: status {short(status)} is not Inspector's")
    resources = finding.get("resources")
    if not isinstance(resources, list) or len(resources) != 1 or not isinstance(resources[0], dict):
        count = len(resources) if isinstance(resources, list) else "no"
        raise RecordError(f"finding: {count} resources; a package finding names exactly one")
    details = finding.get("packageVulnerabilityDetails")
    if not isinstance(details, dict):
        raise RecordError("finding: 'packageVulnerabilityDetails' is missing or not an object")

    scope = Scope(partition, region, account, origin)
    resource, device, resource_type = _resource(resources[0], scope)

    first_seen = time_of(finding, "firstObservedAt")
    last_seen = time_of(finding, "lastObservedAt")
    updated = time_of(finding, "updatedAt")
    when = updated or last_seen or first_seen or origin.time_ms
    if when is None:
        raise RecordError("finding: no usable time (updatedAt, lastObservedAt or the envelope's)")
    activity, status_id, status_name = STATUSES[status]
    if activity == VulnerabilityFinding.CREATE and (
        first_seen is not None and updated is not None and updated > first_seen
    ):
        activity = VulnerabilityFinding.UPDATE  # seen again, or its details changed

    title = get_str(finding, "title", 1024)
    vulnerability, extra = _vulnerability(finding, details, severity, first_seen, last_seen)
    meta, kept = finding_metadata(
        PRODUCT,
        origin,
        raw,
        finding_uid=finding_arn,
        original_time=get_str(finding, "updatedAt", 64),
        event_code="PACKAGE_VULNERABILITY",
    )
    return VulnerabilityFinding(
        activity_id=activity,
        severity_id=SEVERITIES[severity],
        time=when,
        metadata=meta,
        cloud=cloud(account, region),
        message=title,
        status_id=status_id,
        status=status_name,
        status_detail=status,
        raw_data=kept,
        unmapped={"inspector": _unmapped(finding, details, resources[0], resource_type, extra)},
        finding_info=FindingInfo(
            uid=finding_arn,
            title=title,
            desc=get_str(finding, "description"),
            types=["PACKAGE_VULNERABILITY"],
            created_time=first_seen,
            modified_time=updated,
            first_seen_time=first_seen,
            last_seen_time=last_seen,
            product_uid=product_uid(partition, region, "inspector"),
        ),
        resources=[resource],
        device=device,
        vulnerabilities=[vulnerability],
    )


# -- the resource -------------------------------------------------------------------------------
def _resource(
    resource: Mapping[str, Any], scope: Scope
) -> tuple[ResourceDetails, Device | None, str]:
    """The affected resource (OCSF role Affected), its device when it runs, and its type."""
    kind = resource.get("type")
    if not isinstance(kind, str):
        raise RecordError("resource: 'type' is missing or not a string")
    for key, trusted in (("region", scope.region), ("partition", scope.partition)):
        value = resource.get(key)
        if value is not None and value != trusted:
            raise RecordError(
                f"resource: {key} {short(value)} is not the {scope.origin.who}'s {trusted!r}"
            )
    details = get_obj(resource, "details")
    if kind == "AWS_LAMBDA_FUNCTION":
        m = need_match(resource, "id", LAMBDA_ARN_RE, "resource")
        scope.check((m[1], m[2], m[3]), "the Lambda function")
        w = lambda_function(m[4], scope.account, scope.region, scope.partition)
        fn = get_obj(details, "awsLambdaFunction")
        labels = [f"lambda.{k}={v}" for k, v in _labels(fn, "version", "runtime", "packageType")]
        return with_role(w.resource(), 3, labels), device_of(w), kind
    if kind == "AWS_EC2_INSTANCE":
        instance_id = need_str(resource, "id", INSTANCE_ID_RE, "resource")
        w = Workload(
            "ec2", instance_id, account=scope.account, region=scope.region, instance_id=instance_id
        )
        ec2 = get_obj(details, "awsEc2Instance")
        labels = [f"ec2.{k}={v}" for k, v in _labels(ec2, "imageId", "platform", "type")]
        return with_role(w.resource(), 3, labels), device_of(w), kind
    if kind == "AWS_ECR_CONTAINER_IMAGE":
        m = need_match(resource, "id", _ECR_IMAGE_ARN_RE, "resource")
        scope.check((m[1], m[2], m[3]), "the ECR image")
        image = get_obj(details, "awsEcrContainerImage")
        labels = [f"ecr.repository={m[4]}", f"image.digest={m[5]}"]
        labels += [
            f"image.tag={clip(t, 128)}" for t in get_list(image, "imageTags", 16) if _text(t)
        ]
        labels += [f"image.{k}={v}" for k, v in _labels(image, "architecture", "platform")]
        # No workload type for an image at rest: the resource is written here directly.
        return (
            ResourceDetails(
                uid=m[0],
                name=f"{m[4]}@{m[5]}",
                type="AwsEcrContainerImage",
                region=scope.region,
                cloud_partition=scope.partition,
                labels=labels,
                role_id=3,
            ),
            None,
            kind,
        )
    raise Unsupported(kind)  # AWS_ECR_REPOSITORY, CODE_REPOSITORY, other clouds...


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _labels(obj: Mapping[str, Any], *keys: str) -> list[tuple[str, str]]:
    return [(k, clip(obj[k], 256)) for k in keys if _text(obj.get(k))]


# -- the vulnerability --------------------------------------------------------------------------
def _vulnerability(
    finding: Mapping[str, Any],
    details: Mapping[str, Any],
    severity: str,
    first_seen: int | None,
    last_seen: int | None,
) -> tuple[Vulnerability, dict[str, Any]]:
    vid = need_str(details, "vulnerabilityId", _VULNERABILITY_ID_RE, "packageVulnerabilityDetails")
    references = [
        u
        for u in get_list(details, "referenceUrls", MAX_REFERENCES)
        if isinstance(u, str) and _URL_RE.fullmatch(u)
    ]
    source_url = get_str(details, "sourceUrl", 2048)
    if source_url and not _URL_RE.fullmatch(source_url):
        source_url = None
    scores = [c for c in (_cvss(x) for x in get_list(details, "cvss", 16)) if c is not None]
    created = time_of(details, "vendorCreatedAt")
    modified = time_of(details, "vendorUpdatedAt")
    extra: dict[str, Any] = {}
    cve = advisory = None
    if CVE_RE.fullmatch(vid):
        epss = get_number(get_obj(finding, "epss"), "score")
        cve = Cve(
            uid=vid,
            cvss=scores or None,
            references=references or None,
            created_time=created,
            modified_time=modified,
            epss=Epss(score=f"{epss:g}") if epss is not None and 0 <= epss <= 1 else None,
        )
    else:
        advisory = Advisory(
            uid=vid,
            references=references or None,
            created_time=created,
            modified_time=modified,
            src_url=source_url,
        )
        if scores:  # an advisory has no place for CVSS in OCSF
            extra["cvss"] = [s.model_dump(exclude_none=True) for s in scores]
    raw_packages = get_list(details, "vulnerablePackages", MAX_LIST)
    packages = [p for p in (_package(x) for x in raw_packages[:MAX_PACKAGES]) if p is not None]
    if len(raw_packages) > MAX_PACKAGES:
        extra["packages_not_kept"] = len(raw_packages) - MAX_PACKAGES
    fix = finding.get("fixAvailable")
    fixable = _YES_NO.get(fix) if isinstance(fix, str) else None
    exploit = finding.get("exploitAvailable")
    return (
        Vulnerability(
            cve=cve,
            advisory=advisory,
            title=get_str(finding, "title", 1024),
            desc=get_str(finding, "description"),
            severity=severity.title(),
            affected_packages=packages or None,
            fix_available=fixable,
            is_fix_available=fixable,
            references=references or None,
            first_seen_time=first_seen,
            last_seen_time=last_seen,
            is_exploit_available=_YES_NO.get(exploit) if exploit in ("YES", "NO") else None,
            vendor_name="Amazon Inspector",
        ),
        extra,
    )


def _cvss(score: Any) -> Cvss | None:
    if not isinstance(score, dict):
        return None
    base = get_number(score, "baseScore")
    version = get_str(score, "version", 16)
    if base is None or not 0 <= base <= 10 or version is None:
        return None
    return Cvss(
        base_score=base,
        version=version,
        vector_string=get_str(score, "scoringVector", 256),
        vendor_name=get_str(score, "source", 64),
    )


def _package(p: Any) -> AffectedPackage | None:
    if not isinstance(p, dict):
        return None
    name = get_str(p, "name", 512)
    version = get_str(p, "version", 256)
    if name is None or version is None:
        return None  # OCSF: an affected package has a name and a version
    fixed = get_str(p, "fixedInVersion", 256)
    manager = get_str(p, "packageManager", 32)
    purl = get_str(p, "purl", 2048)
    return AffectedPackage(
        name=name,
        version=version,
        fixed_in_version=None if fixed in (None, "NotAvailable") else fixed,
        package_manager=manager,
        path=get_str(p, "filePath", 4096),
        architecture=get_str(p, "arch", 32),
        epoch=get_int(p, "epoch"),
        release=get_str(p, "release", 256),
        purl=purl if purl and purl.startswith("pkg:") else derive_purl(manager, name, version),
    )


def derive_purl(manager: str | None, name: str, version: str) -> str | None:
    """A package URL from an ecosystem package manager, name and version (None for OS)."""
    kind = _PURL_TYPES.get(manager or "")
    if kind is None or len(name) > 256 or len(version) > 128:
        return None
    if kind == "pypi":
        name = re.sub(r"[-_.]+", "-", name).lower()
    if kind == "maven":
        group, sep, artifact = name.partition(":")
        if not sep or not group or not artifact:
            return None
        path = f"{_enc(group)}/{_enc(artifact)}"
    elif kind in ("npm", "composer", "golang"):
        path = "/".join(_enc(part) for part in name.split("/") if part)
    else:
        path = _enc(name)
    if not path:
        return None
    return f"pkg:{kind}/{path}@{quote(version, safe='-._~+!:')}"


def _enc(part: str) -> str:
    return quote(part, safe="-._~")


def _unmapped(
    finding: Mapping[str, Any],
    details: Mapping[str, Any],
    resource: Mapping[str, Any],
    resource_type: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Inspector facts OCSF has no place for (under ``unmapped.inspector``)."""
    adjusted = get_obj(get_obj(finding, "inspectorScoreDetails"), "adjustedCvss")
    tags = get_obj(resource, "tags")
    facts: dict[str, Any] = {
        "resource_type": resource_type,
        "inspector_score": get_number(finding, "inspectorScore"),
        "adjusted_cvss": {
            k: v
            for k, v in {
                "score": get_number(adjusted, "score"),
                "version": get_str(adjusted, "version", 16),
                "vector": get_str(adjusted, "scoringVector", 256),
                "source": get_str(adjusted, "scoreSource", 64),
            }.items()
            if v is not None
        }
        or None,
        "fix_available": get_str(finding, "fixAvailable", 16),
        "exploit_last_seen_time": time_of(
            get_obj(finding, "exploitabilityDetails"), "lastKnownExploitAt"
        ),
        "vulnerability_source": get_str(details, "source", 64),
        "source_url": get_str(details, "sourceUrl", 2048),
        "vendor_severity": get_str(details, "vendorSeverity", 32),
        "related_vulnerabilities": [
            clip(v, 128) for v in get_list(details, "relatedVulnerabilities", 32) if _text(v)
        ]
        or None,
        "remediation": get_str(
            get_obj(get_obj(finding, "remediation"), "recommendation"), "text", 2048
        ),
        "tags": {
            clip(k, 128): clip(v, 256)
            for k, v in list(tags.items())[:50]
            if isinstance(k, str) and isinstance(v, str)
        }
        or None,
        **extra,
    }
    return {k: v for k, v in facts.items() if v is not None}


_DELIVERY = Delivery(
    source=SOURCE,
    event_source=EVENT_SOURCE,
    detail_type=DETAIL_TYPE,
    is_finding=_is_finding,
    convert=_convert,
)
