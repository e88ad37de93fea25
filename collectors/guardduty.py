"""Amazon GuardDuty findings -> OCSF Detection Finding (2004).

Records this adapter reads (``docs/collectors/guardduty.md`` has the mapping):

* an EventBridge event, ``source`` "aws.guardduty", ``detail-type`` "GuardDuty Finding",
  whose ``detail`` is one finding; other GuardDuty event types (runtime agent health,
  malware scan results) are counted as skipped;
* a bare finding (the ``detail`` object): the service's own JSON (camelCase), or the
  PascalCase that the SDKs and the CLI print for ``get-findings``;
* a ``get-findings`` response, ``{"findings": [...]}``, one finding after the other.

Identity: the workload is the finding's own resource (the Lambda function, EC2 instance, ECS
task, Kubernetes pod or container it names); the account and region come from the
EventBridge envelope, which AWS sets. The finding's ``accountId``/``region`` and every ARN in
its resource must agree with them, or the finding is rejected: no finding may make a later
action target another account's resource. A bare finding has no envelope: the operator's
context (``--account``/``--region``) is checked the same way when given.

The helpers in the first part (time parsing, envelopes, ARNs) are shared with
:mod:`collectors.inspector`.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from collectors.base import (
    MAX_LIST,
    MAX_RECORD_BYTES,
    MAX_STRING,
    Batch,
    Context,
    RecordError,
    Reject,
    check_depth,
    clip,
    cloud,
    load_json,
    metadata,
    raw_data,
)
from collectors.model import (
    Actor,
    Analytic,
    Attack,
    DetectionFinding,
    Device,
    File,
    FindingInfo,
    Fingerprint,
    Metadata,
    OcsfEvent,
    Process,
    ResourceDetails,
    Tactic,
    Technique,
    User,
)
from collectors.workload import Workload, device_for, lambda_function

SOURCE = "guardduty"
EVENT_SOURCE = "aws.guardduty"
DETAIL_TYPE = "GuardDuty Finding"
PRODUCT = "GuardDuty"

# =============================================================================================
# Shared with collectors.inspector: AWS findings delivered by EventBridge
# =============================================================================================

ARN_PARTITION = r"aws(?:-[a-z]+){0,3}"  # aws, aws-cn, aws-us-gov, aws-iso-b...
ARN_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"  # us-east-1, us-gov-west-1, ap-southeast-3
ACCOUNT_RE = re.compile(r"\d{12}")
REGION_RE = re.compile(ARN_REGION)
PARTITION_RE = re.compile(ARN_PARTITION)
LAMBDA_ARN_RE = re.compile(
    rf"arn:({ARN_PARTITION}):lambda:({ARN_REGION}):(\d{{12}}):function:([A-Za-z0-9_-]{{1,64}})"
    r"(?::(\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)
INSTANCE_ID_RE = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
CONTAINER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}")
_EVENT_ID_RE = re.compile(r"[A-Za-z0-9-]{1,128}")
_MIN_MS = 315_532_800_000  # 1980-01-01: OCSF's plausible epoch-milliseconds range
_MAX_MS = 4_102_444_800_000  # 2100-01-01
_ENVELOPE_KEYS = ("detail-type", "detail")


class Unsupported(Exception):
    """A well-formed record that is not for Ramparts (counted in ``Batch.skipped``)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """What is known about a finding from outside it: the envelope, or the operator."""

    account: str | None
    region: str | None
    enveloped: bool = False
    event_id: str | None = None
    time_ms: int | None = None
    # member accounts whose findings the envelope's (administrator) account may carry
    members: frozenset[str] = frozenset()

    @property
    def who(self) -> str:
        return "EventBridge envelope" if self.enveloped else "operator-given context"


# -- values -------------------------------------------------------------------------------------
def get_str(obj: Mapping[str, Any], key: str, limit: int = MAX_STRING) -> str | None:
    """A non-blank string field, clipped; None for anything else."""
    value = obj.get(key)
    if isinstance(value, str) and value.strip():
        return clip(value, limit)
    return None


def get_obj(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def get_list(obj: Mapping[str, Any], key: str, limit: int = MAX_LIST) -> list[Any]:
    value = obj.get(key)
    return value[:limit] if isinstance(value, list) else []


def get_number(obj: Mapping[str, Any], key: str) -> float | None:
    """A finite number (not a boolean); None otherwise."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def get_int(obj: Mapping[str, Any], key: str, low: int = 0, high: int = 2**31 - 1) -> int | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def need_match(
    obj: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str
) -> re.Match[str]:
    """A required string field that must match ``pattern`` in full; the match."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise RecordError(f"{what}: {key!r} is missing or not a string")
    m = pattern.fullmatch(value) if len(value) <= 2048 else None
    if m is None:
        raise RecordError(f"{what}: {short(value)} is not a valid {key!r}")
    return m


def need_str(obj: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    """A required string field that must match ``pattern`` in full."""
    return need_match(obj, key, pattern, what)[0]


# -- time ---------------------------------------------------------------------------------------
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# "Wed Sep 04 16:59:44.356 UTC 2024" (Inspector's EventBridge events)
_JAVA_DATE = re.compile(
    r"(?:[A-Za-z]{3}\s+)?([A-Za-z]{3})\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"\s+(?:UTC|GMT|Z)\s+(\d{4})"
)
# "Dec 3, 2021, 6:02:30 PM" (older Inspector EventBridge events, UTC)
_US_DATE = re.compile(
    r"([A-Za-z]{3})\s+(\d{1,2}),\s*(\d{4}),?\s+(\d{1,2}):(\d{2}):(\d{2})\s*([AaPp][Mm])"
)
_FRACTION = re.compile(r"\.(\d+)")


def _from_parts(date: tuple[int, int, int], clock: tuple[int, int, int], frac: str) -> int:
    (year, month, day), (hour, minute, sec) = date, clock
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec < 61):
        raise ValueError("out of range")
    dt = datetime(year, month, day, hour, minute, min(sec, 59), tzinfo=UTC)
    millis = int((frac + "000")[:3]) if frac else 0
    return calendar.timegm(dt.timetuple()) * 1000 + millis


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from what AWS findings put in a timestamp; None if unusable.

    Accepted: ISO 8601 ("2025-03-14T09:27:41.517Z", "+00:00" offsets, any fraction),
    "Wed Sep 04 16:59:44.356 UTC 2024", "Dec 3, 2021, 6:02:30 PM" (UTC), and numbers or
    numeric strings of epoch seconds (the API's JSON: 1728014790.377) or milliseconds.
    Anything outside 1980..2100 is unusable (OCSF's plausibility range).
    """
    ms: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        ms = _number_ms(value)
    elif isinstance(value, str) and 0 < len(value) <= 64:
        ms = _text_ms(value.strip())
    if ms is None or not _MIN_MS <= ms < _MAX_MS:
        return None
    return ms


def _number_ms(value: float) -> int | None:
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    if number >= 1e17:  # nanoseconds
        number /= 1e6
    elif number >= 1e14:  # microseconds
        number /= 1e3
    elif number < 1e11:  # seconds (1e11 ms is 1973; 1e11 s is the year 5138)
        number *= 1000
    return int(number)


def _text_ms(text: str) -> int | None:
    try:
        if re.fullmatch(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?", text):
            return _number_ms(float(text))
        m = _JAVA_DATE.fullmatch(text)
        if m:
            mon, day, hh, mm, ss, frac, year = m.groups()
            month = _MONTHS.get(mon.lower())
            if month is None:
                return None
            return _from_parts(
                (int(year), month, int(day)), (int(hh), int(mm), int(ss)), frac or ""
            )
        m = _US_DATE.fullmatch(text)
        if m:
            mon, day, year, hh, mm, ss, ampm = m.groups()
            month = _MONTHS.get(mon.lower())
            hour = int(hh)
            if month is None or not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
            return _from_parts((int(year), month, int(day)), (hour, int(mm), int(ss)), "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ][0-9:.,]+(?:Z|z|[+-]\d{2}:?\d{2})?", text):
            return None
        frac = _FRACTION.search(text.replace(",", "."))
        digits = frac.group(1) if frac else ""
        iso = text.replace(",", ".")
        iso = _FRACTION.sub(f".{(digits + '000000')[:6]}", iso, count=1) if frac else iso
        dt = datetime.fromisoformat(iso.replace("z", "Z").replace(",", "."))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return calendar.timegm(dt.utctimetuple()) * 1000 + int((digits + "000")[:3])
    except (ValueError, OverflowError):
        return None


def time_of(obj: Mapping[str, Any], key: str) -> int | None:
    return epoch_ms(obj.get(key))


# -- keys ---------------------------------------------------------------------------------------
def camel_keys(value: Any) -> Any:
    """SDK/CLI member names (``AccountId``) as the service's JSON names (``accountId``).

    Only keys that start with an upper-case letter change; nesting is already bounded by
    :func:`collectors.base.check_depth`.
    """
    if isinstance(value, dict):
        return {
            (k[:1].lower() + k[1:] if isinstance(k, str) and k[:1].isupper() else k): camel_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


# -- envelopes and batches ----------------------------------------------------------------------
def agree(what: str, claimed: str, origin: Origin, trusted: str | None) -> str:
    """The trusted value, after checking that the finding says the same.

    A finding about a configured member account may come through the administrator
    account's bus: its own account then stands (and its resources must be in it)."""
    if trusted is None:
        return claimed
    if "ccount" in what and claimed in origin.members:
        return claimed
    if claimed != trusted:
        why = ": rejected so that no action can target another account's resource"
        raise RecordError(
            f"finding's {what} {short(claimed)} disagrees with the {origin.who}'s "
            f"{trusted!r}{why if 'ccount' in what else ''}"
        )
    return trusted


@dataclass(frozen=True, slots=True)
class Scope:
    """The trusted partition, region and account a finding's resources must be in."""

    partition: str
    region: str
    account: str
    origin: Origin

    def check(self, arn: tuple[str, str, str], what: str) -> None:
        """An ARN (its partition, region, account) must name this scope."""
        arn_partition, arn_region, arn_account = arn
        if arn_account != self.account:
            raise RecordError(
                f"{what} is in account {arn_account}, not the {self.origin.who}'s {self.account}: "
                "rejected so that no action can target another account's resource"
            )
        if arn_region != self.region:
            raise RecordError(
                f"{what} is in region {arn_region}, not the {self.origin.who}'s {self.region}"
            )
        if arn_partition != self.partition:
            raise RecordError(f"{what} is in partition {arn_partition}, not {self.partition}")


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a source's records arrive: the EventBridge names, and how to spot a bare finding."""

    source: str
    event_source: str
    detail_type: str
    is_finding: Callable[[Mapping[str, Any]], bool]
    convert: Callable[[dict[str, Any], Origin, str], OcsfEvent]


def list_items(record: Mapping[str, Any]) -> list[Any] | None:
    """The findings of a ``get-findings``/``list-findings`` response, if ``record`` is one."""
    for key in ("findings", "Findings"):
        items = record.get(key)
        if isinstance(items, list):
            return items
    return None


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def preview(value: Any, limit: int = 2048) -> str:
    """A bounded text of a record, for a reject (never the whole of a huge one)."""
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", "replace")
    if isinstance(value, str):
        return clip(value, limit)
    if json_size(value, limit * 2) <= limit * 2:
        try:
            return clip(_dump(value), limit)
        except (RecursionError, ValueError, TypeError):
            pass
    return f"<a JSON {type(value).__name__} too large or too deep to show>"


def short(value: Any) -> str:
    """A value for a reject reason: scalars as they are (clipped), containers by kind."""
    if isinstance(value, str):
        return clip(repr(value[:80]), 60)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return "a very large number"
    if value is None or isinstance(value, int | float | bool):
        return clip(repr(value), 60)
    return f"a JSON {type(value).__name__}"


def _parse(record: Any) -> tuple[Any, str]:
    """The record as JSON, within the bounds, and its text (for ``raw_data``)."""
    if isinstance(record, bytes | str):
        value = load_json(record)
        text = record.decode("utf-8", "replace") if isinstance(record, bytes) else record
        return value, text
    check_depth(record)
    size = json_size(record, MAX_RECORD_BYTES)
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"record of over {size} bytes is over the {MAX_RECORD_BYTES}-byte limit")
    try:
        return record, _dump(record)
    except (ValueError, RecursionError, TypeError) as exc:  # e.g. a 5000-digit integer
        raise RecordError(f"not serialisable as JSON: {clip(str(exc), 120)}") from None


def json_size(value: Any, limit: int) -> int:
    """About how long ``value`` is as JSON, counting no further than just past ``limit``.

    Checked before serialising a parsed record: a structure may share one big string many
    times over (never after ``json.loads``, but callers may build records themselves).
    """
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item) + sum(len(k) if isinstance(k, str) else 8 for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 8
    return total


def _origin(envelope: Mapping[str, Any], ctx: Context) -> Origin:
    account = envelope.get("account")
    region = envelope.get("region")
    if not isinstance(account, str) or not ACCOUNT_RE.fullmatch(account):
        raise RecordError(f"EventBridge envelope: 'account' {short(account)} is not an account id")
    if not isinstance(region, str) or not REGION_RE.fullmatch(region):
        raise RecordError(f"EventBridge envelope: 'region' {short(region)} is not a region")
    if ctx.account is not None and ctx.account != account:
        raise RecordError(
            f"EventBridge envelope account {account} is not the operator-given "
            f"account {ctx.account}"
        )
    if ctx.region is not None and ctx.region != region:
        raise RecordError(
            f"EventBridge envelope region {region} is not the operator-given region {ctx.region}"
        )
    event_id = envelope.get("id")
    return Origin(
        account=account,
        region=region,
        enveloped=True,
        event_id=event_id
        if isinstance(event_id, str) and _EVENT_ID_RE.fullmatch(event_id)
        else None,
        time_ms=epoch_ms(envelope.get("time")),
        members=ctx.member_accounts,
    )


def normalize_findings(record: Any, ctx: Context, delivery: Delivery) -> Batch:
    """Run ``delivery.convert`` on every finding ``record`` holds; never raises on bad input."""
    batch = Batch()

    def reject(reason: str, text: str, part: str = "") -> None:
        batch.rejects.append(Reject(delivery.source, reason, clip(text, 2048), part))

    try:
        value, text = _parse(record)
    except RecordError as exc:
        reject(str(exc), preview(record))
        return batch
    try:
        for part, finding, origin, raw in _findings(value, text, ctx, delivery):
            try:
                if finding is None:
                    raise RecordError(f"not a {delivery.detail_type!r} finding")
                batch.events.append(delivery.convert(finding, origin, raw))
            except Unsupported:
                batch.skipped += 1
            except RecordError as exc:
                reject(str(exc), raw, part)
            except ValidationError as exc:
                errors = exc.errors()
                loc = ".".join(str(x) for x in errors[0]["loc"]) if errors else ""
                msg = errors[0]["msg"] if errors else str(exc)
                reject(f"does not fit the event model: {loc}: {msg}", raw, part)
    except Unsupported:
        batch.skipped += 1
    except RecordError as exc:
        reject(str(exc), text)
    return batch


def _findings(
    value: Any, text: str, ctx: Context, delivery: Delivery
) -> Iterator[tuple[str, dict[str, Any] | None, Origin, str]]:
    if not isinstance(value, dict):
        raise RecordError(
            f"not a {delivery.detail_type} event or finding: a JSON {type(value).__name__}"
        )
    if value.get("source") == delivery.event_source or "detail-type" in value or "detail" in value:
        if value.get("source") != delivery.event_source:
            raise RecordError(
                f"an EventBridge event from {short(value.get('source'))}, "
                f"not {delivery.event_source!r}"
            )
        missing = [k for k in _ENVELOPE_KEYS if k not in value]
        if missing:
            raise RecordError(f"EventBridge envelope: no {missing[0]!r}")
        if value.get("detail-type") != delivery.detail_type:
            raise Unsupported  # another event type of the same service (health, scans...)
        origin = _origin(value, ctx)
        detail = value.get("detail")
        if not isinstance(detail, dict):
            raise RecordError("EventBridge envelope: 'detail' is not an object")
        yield "", detail, origin, text
        return
    origin = Origin(account=ctx.account, region=ctx.region, members=ctx.member_accounts)
    items = list_items(value)
    if items is None:
        if not delivery.is_finding(value):
            raise RecordError(f"neither a {delivery.detail_type!r} event nor a finding")
        yield "", value, origin, text
        return
    if len(items) > MAX_LIST:
        raise RecordError(f"{len(items)} findings in one response; at most {MAX_LIST}")
    for i, item in enumerate(items):
        part = f"findings[{i}]"
        item_text = _dump(item)
        ok = isinstance(item, dict) and delivery.is_finding(item)
        yield part, item if ok else None, origin, item_text


def finding_metadata(
    product: str,
    origin: Origin,
    raw: str,
    *,
    finding_uid: str,
    original_time: str | None,
    event_code: str | None,
    sample: bool = False,
) -> tuple[Metadata, str]:
    """The event's metadata and its ``raw_data`` (bounded; truncation is flagged)."""
    kept, truncated = raw_data(raw)
    meta = metadata(
        product,
        "AWS",
        # the EventBridge event id names this delivery; a bare finding only has its own id
        uid=origin.event_id or finding_uid,
        correlation_uid=finding_uid,  # every update of one finding shares it
        original_time=original_time,
        logged_time=origin.time_ms,
        log_provider="Amazon EventBridge" if origin.enveloped else None,
        event_code=event_code,
        labels=["sample"] if sample else None,
        is_truncated=True if truncated else None,
        untruncated_size=len(raw) if truncated else None,
    )
    return meta, kept


def product_uid(partition: str, region: str, product: str) -> str:
    """The product's ARN as Security Hub names it (``.../product/aws/guardduty``)."""
    return f"arn:{partition}:securityhub:{region}::product/aws/{product}"


def device_of(workload: Workload) -> Device:
    """:func:`device_for`, with the container image's ``uid`` that OCSF 1.8 requires.

    GuardDuty names an image only by its reference (``repo:tag``), so the reference is its uid.
    """
    device = device_for(workload)
    image = device.container.image if device.container is not None else None
    if image is not None and not image.uid:
        image.uid = image.name
    return device


def with_role(resource: ResourceDetails, role_id: int, labels: list[str] | None) -> ResourceDetails:
    return resource.model_copy(update={"role_id": role_id, "labels": labels or None})


# =============================================================================================
# GuardDuty
# =============================================================================================

_FINDING_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,300}")
_FINDING_TYPE_RE = re.compile(r"[A-Za-z0-9:/._!&#-]{1,200}")
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_DETECTOR_ID_RE = re.compile(r"[A-Za-z0-9]{1,300}")
_ECS_CLUSTER_ARN_RE = re.compile(
    rf"arn:({ARN_PARTITION}):ecs:({ARN_REGION}):(\d{{12}}):cluster/([A-Za-z0-9_-]{{1,255}})"
)
_ECS_TASK_ARN_RE = re.compile(
    rf"arn:({ARN_PARTITION}):ecs:({ARN_REGION}):(\d{{12}}):task/(?:([A-Za-z0-9_-]{{1,255}})/)?"
    r"([A-Za-z0-9-]{1,64})"
)
_ECS_TASKDEF_ARN_RE = re.compile(
    rf"arn:{ARN_PARTITION}:ecs:{ARN_REGION}:\d{{12}}:task-definition/([A-Za-z0-9_-]{{1,255}}:\d{{1,9}})"
)
_EKS_CLUSTER_ARN_RE = re.compile(
    rf"arn:({ARN_PARTITION}):eks:({ARN_REGION}):(\d{{12}}):cluster/([A-Za-z0-9][A-Za-z0-9_-]{{0,99}})"
)
_K8S_NAMESPACE_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_K8S_NAME_RE = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?")
_CONSOLE = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-cn": "https://{region}.console.amazonaws.cn",
    "aws-us-gov": "https://{region}.console.amazonaws-us-gov.com",
}
MAX_LINEAGE = 8  # ancestors kept as parent_process links

# GuardDuty's numeric severity -> OCSF severity_id, highest band first (lower bounds
# inclusive). https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-severity.html
SEVERITY_BANDS: tuple[tuple[float, int], ...] = (
    (9.0, 5),  # Critical 9.0-10.0
    (7.0, 4),  # High     7.0-8.9
    (4.0, 3),  # Medium   4.0-6.9
    (1.0, 2),  # Low      1.0-3.9
)

# Threat purpose (the part before ':') -> MITRE ATT&CK tactic, where the purpose is one.
TACTICS: dict[str, tuple[str, str]] = {
    "InitialAccess": ("TA0001", "Initial Access"),
    "Execution": ("TA0002", "Execution"),
    "Persistence": ("TA0003", "Persistence"),
    "PrivilegeEscalation": ("TA0004", "Privilege Escalation"),
    "DefenseEvasion": ("TA0005", "Defense Evasion"),
    "Stealth": ("TA0005", "Defense Evasion"),
    "CredentialAccess": ("TA0006", "Credential Access"),
    "Discovery": ("TA0007", "Discovery"),
    "Exfiltration": ("TA0010", "Exfiltration"),
    "Backdoor": ("TA0011", "Command and Control"),
    "Trojan": ("TA0011", "Command and Control"),
    "Impact": ("TA0040", "Impact"),
    "CryptoCurrency": ("TA0040", "Impact"),
    "Recon": ("TA0043", "Reconnaissance"),
}
# Threat family (after '/', before '.' or '!') -> (technique, name, tactic): only where the
# finding type names one technique. Purpose-only types (Behavior, Policy...) get none.
TECHNIQUES: dict[str, tuple[str, str, str]] = {
    "ReverseShell": ("T1059", "Command and Scripting Interpreter", "TA0002"),
    "SuspiciousCommand": ("T1059", "Command and Scripting Interpreter", "TA0002"),
    "BitcoinTool": ("T1496", "Resource Hijacking", "TA0040"),
    "CryptoMinerExecuted": ("T1496", "Resource Hijacking", "TA0040"),
    "BitcoinDomainRequest": ("T1496", "Resource Hijacking", "TA0040"),
    "C&CActivity": ("T1071", "Application Layer Protocol", "TA0011"),
    "DGADomainRequest": ("T1568", "Dynamic Resolution", "TA0011"),
    "TorClient": ("T1090", "Proxy", "TA0011"),
    "TorRelay": ("T1090", "Proxy", "TA0011"),
    "DockerSocketAccessed": ("T1611", "Escape to Host", "TA0004"),
    "RuncContainerEscape": ("T1611", "Escape to Host", "TA0004"),
    "CGroupsReleaseAgentModified": ("T1611", "Escape to Host", "TA0004"),
    "ContainerMountsHostDirectory": ("T1611", "Escape to Host", "TA0004"),
    "UserfaultfdUsage": ("T1068", "Exploitation for Privilege Escalation", "TA0004"),
    "ElevationToRoot": ("T1548", "Abuse Elevation Control Mechanism", "TA0004"),
    "ProcessInjection": ("T1055", "Process Injection", "TA0005"),
    "FilelessExecution": ("T1620", "Reflective Code Loading", "TA0005"),
    "PtraceAntiDebugging": ("T1622", "Debugger Evasion", "TA0005"),
    "MetadataDNSRebind": ("T1552", "Unsecured Credentials", "TA0006"),
    "SSHBruteForce": ("T1110", "Brute Force", "TA0006"),
    "RDPBruteForce": ("T1110", "Brute Force", "TA0006"),
    "PortProbeUnprotectedPort": ("T1595", "Active Scanning", "TA0043"),
    "Portscan": ("T1046", "Network Service Discovery", "TA0007"),
    "DenialOfService": ("T1498", "Network Denial of Service", "TA0040"),
    "DropPoint": ("T1041", "Exfiltration Over C2 Channel", "TA0010"),
}
_TACTIC_NAMES = {uid: name for uid, name in TACTICS.values()}
_ROLES = {"TARGET": 1, "ACTOR": 2}  # OCSF resource role_id: 1 Target, 2 Actor (3 Affected)
_DIRECTIONS = {"INBOUND": (1, "Inbound"), "OUTBOUND": (2, "Outbound")}


def matches(record: Any) -> bool:
    """An EventBridge event from aws.guardduty, a GuardDuty finding, or a list of them."""
    if not isinstance(record, dict):
        return False
    if record.get("source") == EVENT_SOURCE and "detail-type" in record:
        return True
    items = list_items(record)
    if items is not None:
        return bool(items) and isinstance(items[0], dict) and _is_finding(items[0])
    return _is_finding(record)


def _is_finding(record: Mapping[str, Any]) -> bool:
    arn = record.get("arn", record.get("Arn"))
    return (
        isinstance(arn, str)
        and arn.startswith("arn:")
        and ":guardduty:" in arn[:40]
        and "/finding/" in arn
        and isinstance(record.get("resource", record.get("Resource")), dict)
    )


def normalize(record: Any, ctx: Context) -> Batch:
    return normalize_findings(record, ctx, _DELIVERY)


def severity_id(value: float) -> int:
    """GuardDuty's 1.0-10.0 severity as an OCSF severity_id (table in SEVERITY_BANDS)."""
    for low, sid in SEVERITY_BANDS:
        if value >= low:
            return sid
    return 1  # (0, 1.0): below GuardDuty's Low band; OCSF Informational


def attacks_for(finding_type: str) -> list[Attack] | None:
    purpose, _, rest = finding_type.partition(":")
    family = re.split(r"[.!]", rest.partition("/")[2], maxsplit=1)[0]
    technique = TECHNIQUES.get(family)
    if technique is not None:
        uid, name, tactic = technique
        return [
            Attack(
                technique=Technique(uid=uid, name=name),
                tactic=Tactic(uid=tactic, name=_TACTIC_NAMES.get(tactic)),
            )
        ]
    tactic_pair = TACTICS.get(purpose)
    if tactic_pair is None:
        return None
    return [Attack(tactic=Tactic(uid=tactic_pair[0], name=tactic_pair[1]))]


def console_url(partition: str, region: str, finding_id: str) -> str | None:
    base = _CONSOLE.get(partition)
    if base is None:
        return None
    return (
        f"{base.format(region=region)}/guardduty/home?region={region}"
        f"#/findings?macros=current&fId={finding_id}"
    )


def _convert(finding: dict[str, Any], origin: Origin, raw: str) -> OcsfEvent:
    if "AccountId" in finding and "accountId" not in finding:
        finding = camel_keys(finding)
    finding_id = need_str(finding, "id", _FINDING_ID_RE, "finding")
    finding_type = need_str(finding, "type", _FINDING_TYPE_RE, "finding")
    account = agree(
        "accountId", need_str(finding, "accountId", ACCOUNT_RE, "finding"), origin, origin.account
    )
    region = agree(
        "region", need_str(finding, "region", REGION_RE, "finding"), origin, origin.region
    )
    partition = finding.get("partition", "aws")
    if not isinstance(partition, str) or not PARTITION_RE.fullmatch(partition):
        raise RecordError(f"finding: {short(partition)} is not a partition")
    severity = get_number(finding, "severity")
    if severity is None or not 0 < severity <= 10:
        raise RecordError(
            f"finding: severity {short(finding.get('severity'))} is not a number "
            "in GuardDuty's 1.0-10.0 range"
        )
    service = get_obj(finding, "service")
    resource = finding.get("resource")
    if not isinstance(resource, dict):
        raise RecordError("finding: 'resource' is missing or not an object")

    workload, labels = _workload(resource, Scope(partition, region, account, origin))

    created = time_of(finding, "createdAt")
    updated = time_of(finding, "updatedAt")
    when = updated or created or origin.time_ms
    if when is None:
        raise RecordError("finding: no usable time (updatedAt, createdAt or the envelope's time)")
    first_seen = time_of(service, "eventFirstSeen")
    last_seen = time_of(service, "eventLastSeen")
    archived = service.get("archived") is True
    if archived:
        activity, status_id, status = DetectionFinding.CLOSE, 5, "Archived"
    elif created is not None and updated is not None and updated > created:
        activity, status_id, status = DetectionFinding.UPDATE, 1, "New"
    else:
        activity, status_id, status = DetectionFinding.CREATE, 1, "New"
    count = get_int(service, "count", 0)
    sample = get_obj(service, "additionalInfo").get("sample") is True
    title = get_str(finding, "title", 1024)
    feature = get_str(service, "featureName", 128)

    meta, kept = finding_metadata(
        PRODUCT,
        origin,
        raw,
        finding_uid=finding_id,
        original_time=get_str(finding, "updatedAt", 64) or get_str(finding, "createdAt", 64),
        event_code=finding_type,
        sample=sample,
    )
    role = _ROLES.get((get_str(service, "resourceRole", 16) or "").upper(), 3)
    runtime = get_obj(service, "runtimeDetails")
    process = _process(get_obj(runtime, "process"), get_obj(runtime, "context"))
    evidences = _evidences(get_obj(service, "action"), get_obj(runtime, "context"))
    unmapped = _unmapped(finding, service, resource, workload)
    return DetectionFinding(
        activity_id=activity,
        severity_id=severity_id(severity),
        time=when,
        metadata=meta,
        cloud=cloud(account, region),
        message=title,
        status_id=status_id,
        status=status,
        status_detail="ARCHIVED" if archived else None,
        raw_data=kept,
        unmapped=unmapped,
        finding_info=FindingInfo(
            uid=finding_id,
            title=title,
            desc=get_str(finding, "description"),
            types=[finding_type],
            analytic=Analytic(name=finding_type, uid=finding_type, category=feature),
            attacks=attacks_for(finding_type),
            created_time=created,
            modified_time=updated,
            first_seen_time=first_seen,
            last_seen_time=last_seen,
            src_url=console_url(partition, region, finding_id),
            product_uid=product_uid(partition, region, "guardduty"),
            data_sources=[feature] if feature else None,
        ),
        resources=[with_role(workload.resource(), role, labels)],
        device=device_of(workload),
        actor=Actor(process=process) if process is not None else None,
        count=count,
        start_time=first_seen,
        end_time=last_seen,
        is_alert=not archived and not sample,
        evidences=evidences or None,
    )


# -- the workload -------------------------------------------------------------------------------
def _workload(resource: Mapping[str, Any], scope: Scope) -> tuple[Workload, list[str]]:
    """The workload the finding is about, and labels for its resource entry."""
    rtype = resource.get("resourceType")
    node = get_obj(resource, "instanceDetails")
    node_id = node.get("instanceId")
    node_id = node_id if isinstance(node_id, str) and INSTANCE_ID_RE.fullmatch(node_id) else None
    account, region = scope.account, scope.region
    if rtype == "Lambda":
        details = get_obj(resource, "lambdaDetails")
        m = need_match(details, "functionArn", LAMBDA_ARN_RE, "lambdaDetails")
        scope.check((m[1], m[2], m[3]), "the Lambda function")
        w = lambda_function(m[4], account, region, scope.partition)
        version = get_str(details, "functionVersion", 128)
        return w, [f"lambda.version={version}"] if version else []
    if rtype == "Instance":
        instance_id = need_str(node, "instanceId", INSTANCE_ID_RE, "instanceDetails")
        return (
            Workload(
                "ec2",
                instance_id,
                name=_name_tag(node),
                account=account,
                region=region,
                instance_id=instance_id,
            ),
            [],
        )
    if rtype == "ECSCluster":
        return _ecs_task(resource, node_id, scope)
    if rtype == "EKSCluster":
        return _k8s_pod(resource, node_id, scope)
    if rtype == "Container":
        c = get_obj(resource, "containerDetails")
        cid = need_str(c, "id", CONTAINER_ID_RE, "containerDetails")
        return (
            Workload(
                "container",
                cid,
                name=get_str(c, "name", 256),
                account=account,
                region=region,
                instance_id=node_id,
                container_id=cid,
                container_name=get_str(c, "name", 256),
                image=get_str(c, "image", 1024),
            ),
            [],
        )
    if isinstance(rtype, str):
        raise Unsupported(rtype)  # AccessKey, S3Bucket, RDSDBInstance...: not a workload
    raise RecordError("resource: 'resourceType' is missing or not a string")


def _ecs_task(
    resource: Mapping[str, Any], node_id: str | None, scope: Scope
) -> tuple[Workload, list[str]]:
    ecs = get_obj(resource, "ecsClusterDetails")
    task = get_obj(ecs, "taskDetails")
    cluster = get_str(ecs, "name", 255)
    cluster_arn = ecs.get("arn")
    if cluster_arn is not None:
        m = need_match(ecs, "arn", _ECS_CLUSTER_ARN_RE, "ecsClusterDetails")
        scope.check((m[1], m[2], m[3]), "the ECS cluster")
        cluster = m[4]
    if "arn" not in task:
        raise RecordError("ecsClusterDetails: no taskDetails.arn, so no ECS task to name")
    m = need_match(task, "arn", _ECS_TASK_ARN_RE, "ecsClusterDetails.taskDetails")
    task_arn = m[0]
    scope.check((m[1], m[2], m[3]), "the ECS task")
    if m[4] and cluster and m[4] != cluster:
        raise RecordError(
            f"the ECS task's cluster {m[4]!r} is not the finding's cluster {cluster!r}"
        )
    container = _container(resource, get_list(task, "containers"))
    definition = get_str(task, "definitionArn", 2048)
    family = _ECS_TASKDEF_ARN_RE.fullmatch(definition) if definition else None
    labels = [f"ecs.cluster={m[4] or cluster}"] if (m[4] or cluster) else []
    launch = get_str(task, "launchType", 32)
    if launch:
        labels.append(f"ecs.launch_type={launch}")
    return (
        Workload(
            "ecs-task",
            task_arn,
            name=family[1] if family else None,
            account=scope.account,
            region=scope.region,
            instance_id=node_id,
            cluster=m[4] or cluster,
            **container,
        ),
        labels,
    )


def _k8s_pod(
    resource: Mapping[str, Any], node_id: str | None, scope: Scope
) -> tuple[Workload, list[str]]:
    eks = get_obj(resource, "eksClusterDetails")
    cluster = get_str(eks, "name", 100)
    if eks.get("arn") is not None:
        m = need_match(eks, "arn", _EKS_CLUSTER_ARN_RE, "eksClusterDetails")
        scope.check((m[1], m[2], m[3]), "the EKS cluster")
        cluster = m[4]
    pod = get_obj(get_obj(resource, "kubernetesDetails"), "kubernetesWorkloadDetails")
    if not pod:
        raise Unsupported("EKS control-plane finding without a workload")
    namespace = need_str(pod, "namespace", _K8S_NAMESPACE_RE, "kubernetesWorkloadDetails")
    name = need_str(pod, "name", _K8S_NAME_RE, "kubernetesWorkloadDetails")
    container = _container(resource, get_list(pod, "containers"))
    labels = [f"eks.cluster={cluster}"] if cluster else []
    kind = get_str(pod, "type", 64)
    if kind and kind.lower() not in ("pod", "pods"):
        labels.append(f"k8s.workload.type={kind}")  # a Deployment...: the pod is not named
    return (
        Workload(
            "k8s-pod",
            f"{namespace}/{name}",
            name=name,
            account=scope.account,
            region=scope.region,
            instance_id=node_id,
            cluster=cluster,
            **container,
        ),
        labels,
    )


def _container(resource: Mapping[str, Any], containers: list[Any]) -> dict[str, str | None]:
    """The container the finding is about: ``containerDetails``, else the only/first one."""
    c = get_obj(resource, "containerDetails")
    if not c:
        c = next((x for x in containers if isinstance(x, dict)), {})
    cid = c.get("id")
    return {
        "container_id": cid if isinstance(cid, str) and CONTAINER_ID_RE.fullmatch(cid) else None,
        "container_name": get_str(c, "name", 256),
        "image": get_str(c, "image", 1024),
    }


def _name_tag(instance: Mapping[str, Any]) -> str | None:
    for tag in get_list(instance, "tags"):
        if isinstance(tag, dict) and tag.get("key") == "Name":
            return get_str(tag, "value", 256)
    return None


# -- the process (Runtime Monitoring) -----------------------------------------------------------
def _process(p: Mapping[str, Any], context: Mapping[str, Any]) -> Process | None:
    """``runtimeDetails.process`` with its lineage as parent_process links.

    GuardDuty warns that runtime fields (paths above all) can be chosen by an attacker on the
    host: they are kept as data, clipped, and never used to name a workload.
    """
    proc = _one_process(p)
    if proc is None:
        return None
    cmd = get_str(context, "commandLineExample")
    if cmd:
        proc.cmd_line = cmd
    child = proc
    for item in get_list(p, "lineage", MAX_LINEAGE):
        parent = _one_process(item) if isinstance(item, dict) else None
        if parent is None:
            break
        child.parent_process = parent
        child = parent
    if proc.parent_process is None:
        parent_uuid = get_str(p, "parentUuid", 128)
        if parent_uuid:
            proc.parent_process = Process(uid=parent_uuid)
    return proc


def _one_process(p: Mapping[str, Any]) -> Process | None:
    pid = get_int(p, "pid")
    uid = get_str(p, "uuid", 128)
    if pid is None and uid is None:
        return None  # OCSF: a process has at least a pid or a uid
    path = get_str(p, "executablePath", 4096)
    file = None
    if path:
        sha = p.get("executableSha256")
        hashes = (
            [Fingerprint(algorithm_id=3, algorithm="SHA-256", value=sha.lower())]
            if isinstance(sha, str) and _SHA256_RE.fullmatch(sha)
            else None
        )
        file = File(name=path.rstrip("/").rsplit("/", 1)[-1] or path, path=path, hashes=hashes)
    user_name = get_str(p, "user", 256)
    user_id = get_int(p, "userId", 0, 2**32 - 1)
    return Process(
        pid=pid,
        uid=uid,
        name=get_str(p, "name", 1024),
        file=file,
        user=User(name=user_name, uid=str(user_id) if user_id is not None else None)
        if user_name or user_id is not None
        else None,
        created_time=time_of(p, "startTime"),
        namespace_pid=get_int(p, "namespacePid"),
        working_directory=get_str(p, "pwd", 4096),
    )


# -- evidences ----------------------------------------------------------------------------------
def _ip(details: Mapping[str, Any]) -> str | None:
    import ipaddress

    for key in ("ipAddressV4", "ipAddressV6"):
        value = details.get(key)
        if isinstance(value, str) and len(value) <= 64:
            try:
                return str(ipaddress.ip_address(value.strip()))
            except ValueError:
                continue
    return None


def _endpoint(ip_details: Mapping[str, Any], port_details: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ip = _ip(ip_details)
    if ip:
        out["ip"] = ip
    port = get_int(port_details, "port", 0, 65535)
    if port is not None:
        out["port"] = port
    return out


def _evidences(action: Mapping[str, Any], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What GuardDuty saw, as OCSF evidences: the connection, the DNS query, runtime context."""
    out: list[dict[str, Any]] = []
    net = get_obj(action, "networkConnectionAction")
    if net:
        remote = _endpoint(get_obj(net, "remoteIpDetails"), get_obj(net, "remotePortDetails"))
        local = _endpoint(get_obj(net, "localIpDetails"), get_obj(net, "localPortDetails"))
        direction = (get_str(net, "connectionDirection", 16) or "").upper()
        direction_id, direction_name = _DIRECTIONS.get(direction, (0, "Unknown"))
        info: dict[str, Any] = {"direction_id": direction_id, "direction": direction_name}
        protocol = get_str(net, "protocol", 16)
        if protocol and protocol.upper() != "UNKNOWN":
            info["protocol_name"] = protocol.lower()
        src, dst = (remote, local) if direction_id == 1 else (local, remote)
        evidence: dict[str, Any] = {"connection_info": info}
        if "ip" in src:  # OCSF: an endpoint needs an address, a port alone is not one
            evidence["src_endpoint"] = src
        if "ip" in dst:
            evidence["dst_endpoint"] = dst
        out.append(evidence)
    dns = get_obj(action, "dnsRequestAction")
    domain = get_str(dns, "domain", 253)
    if domain:
        out.append({"query": {"hostname": domain}})
    data = _runtime_context(context)
    if data:
        out.append({"name": "GuardDuty runtime context", "data": data})
    return out


def _runtime_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar facts of ``runtimeDetails.context`` (paths, tool names, modules), bounded."""
    data: dict[str, Any] = {}
    for key, value in list(context.items())[:64]:
        if not isinstance(key, str) or len(key) > 64:
            continue
        if isinstance(value, str):
            data[key] = clip(value, 4096)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
            data[key] = value
        elif isinstance(value, list):
            data[key] = [clip(v, 1024) for v in value[:32] if isinstance(v, str)]
        elif isinstance(value, dict):  # modifyingProcess / targetProcess
            proc = {k: value[k] for k in ("name", "pid", "executablePath") if k in value}
            data[key] = {
                k: (clip(v, 1024) if isinstance(v, str) else v)
                for k, v in proc.items()
                if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
            }
    return data


def _unmapped(
    finding: Mapping[str, Any],
    service: Mapping[str, Any],
    resource: Mapping[str, Any],
    workload: Workload,
) -> dict[str, Any]:
    """GuardDuty facts OCSF has no place for (under ``unmapped.guardduty``)."""
    facts: dict[str, Any] = {
        "resource_type": get_str(resource, "resourceType", 64),
        "resource_role": get_str(service, "resourceRole", 16),
        "detector_id": service.get("detectorId")
        if isinstance(service.get("detectorId"), str)
        and _DETECTOR_ID_RE.fullmatch(service["detectorId"])
        else None,
        "finding_arn": get_str(finding, "arn", 512),
        "schema_version": get_str(finding, "schemaVersion", 16),
        "severity": get_number(finding, "severity"),
        "confidence": get_number(finding, "confidence"),
        "cluster": workload.cluster,
        "sample": get_obj(service, "additionalInfo").get("sample") is True or None,
    }
    return {"guardduty": {k: v for k, v in facts.items() if v is not None}}


_DELIVERY = Delivery(
    source=SOURCE,
    event_source=EVENT_SOURCE,
    detail_type=DETAIL_TYPE,
    is_finding=_is_finding,
    convert=_convert,
)
