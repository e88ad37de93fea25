"""What every adapter shares: results with their rejects, bounds on hostile input, context.

An adapter is a pure function ``normalize(record, ctx) -> Batch``: one raw record in (a
parsed JSON value, or the text of one line), common events out, and every part it could not
use in ``rejects`` with a reason. It never raises on bad input and never calls AWS.

Records from the layer come from functions that may be compromised, and every sensor's
output can be malformed: sizes, nesting and counts are bounded here, once, for everyone.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.model import Account, Cloud, Metadata, OcsfEvent, Product

# Bounds on hostile input. A record past them is rejected (with the reason), not truncated
# into something that means less than it says.
MAX_RECORD_BYTES = 1 << 20  # one raw record (a decoded CloudWatch payload may be bigger)
MAX_PAYLOAD_BYTES = 8 << 20  # a decompressed CloudWatch Logs / Kinesis payload
MAX_DEPTH = 24  # nesting of a JSON value
MAX_LOG_EVENTS = 20_000  # log events in one subscription payload
MAX_STRING = 8192  # a single field kept in an event
MAX_RAW_DATA = 16_384  # the original record kept in raw_data (truncation is flagged)
MAX_LIST = 256  # list items kept (argv, answers, packages...)


class RecordError(ValueError):
    """A record (or part of one) that cannot be used; the message is the reason."""


@dataclass(slots=True)
class Reject:
    """One record, or one part of a record, that was not turned into events."""

    source: str
    reason: str
    record: str  # the offending text, bounded
    where: str = ""  # e.g. "logEvents[3]" or "line 12"

    def to_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "reason": self.reason,
            "where": self.where,
            "record": self.record,
        }


@dataclass(slots=True)
class Batch:
    """What an adapter made of one record."""

    events: list[OcsfEvent] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    skipped: int = 0  # parts that were fine but not for us (e.g. non-Ramparts log lines)
    # Records that are not activity but that the platform needs: sensor heartbeats
    # (start, invocation summaries) with the workload they came from, for coverage.
    signals: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.events.extend(other.events)
        self.rejects.extend(other.rejects)
        self.skipped += other.skipped
        self.signals.extend(other.signals)


@dataclass(frozen=True, slots=True)
class Context:
    """Trusted context from outside the record: the delivery envelope or the operator.

    ``account``/``region`` fill in where a source has no cloud context of its own (Falco,
    osquery and Tetragon run on hosts that do not say which account they are in).
    """

    account: str | None = None
    region: str | None = None
    function: str | None = None  # for raw layer lines with no envelope: the operator says whose
    # Accounts whose findings may arrive through this account's bus (a GuardDuty/Inspector
    # delegated administrator receives its members' findings): configured, never inferred.
    member_accounts: frozenset[str] = frozenset()
    received_ms: int | None = None
    origin: str = ""  # where the record came from, for rejects (file:line, SQS message id)


def clip(value: Any, limit: int = MAX_STRING) -> str:
    s = value if isinstance(value, str) else str(value)
    return s if len(s) <= limit else s[:limit] + "...[truncated]"


def raw_data(text: str) -> tuple[str, bool]:
    """The original record for ``raw_data``, bounded; the flag says it was cut."""
    if len(text) <= MAX_RAW_DATA:
        return text, False
    return text[:MAX_RAW_DATA], True


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Reject JSON nested deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise RecordError(f"nested deeper than {limit} levels")
        seen += 1
        if seen > 200_000:
            raise RecordError("more than 200000 values in one record")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def load_json(text: str | bytes, limit: int = MAX_RECORD_BYTES) -> Any:
    """Parse a JSON record within the size and nesting bounds; RecordError says why not."""
    if len(text) > limit:
        raise RecordError(f"record of {len(text)} bytes is over the {limit}-byte limit")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RecordError(f"not JSON: {exc}") from None
    check_depth(value)
    return value


def load_object(record: Any) -> tuple[dict[str, Any], str]:
    """A record as a JSON object within the bounds, and its text (for ``raw_data``).

    Records arrive as text (a log line), bytes, or already parsed (an EventBridge or SNS
    delivery): all three get the same size and nesting limits. RecordError says why not.
    """
    if isinstance(record, bytes):
        record = record.decode("utf-8", "replace")
    if isinstance(record, str):
        text = record
        value = load_json(record)
    else:
        check_depth(record)
        text = compact_json(record)
        if len(text) > MAX_RECORD_BYTES:
            raise RecordError(
                f"record of {len(text)} bytes is over the {MAX_RECORD_BYTES}-byte limit"
            )
        value = record
    if not isinstance(value, dict):
        raise RecordError(f"expected a JSON object, got {type(value).__name__}")
    return value, text


def as_int(value: Any, what: str) -> int:
    """Numbers arrive as numbers or as strings (osquery); bools are not numbers."""
    if isinstance(value, bool):
        raise RecordError(f"{what}: expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    digits = value.strip().lstrip("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit():  # not "¹" or "٣": str.isdigit takes those too
        return int(value.strip())
    raise RecordError(f"{what}: expected a number, got {clip(repr(value), 60)}")


def metadata(product: str, vendor: str, *, version: str | None = None, **extra: Any) -> Metadata:
    return Metadata(product=Product(name=product, vendor_name=vendor, version=version), **extra)


def cloud(account: str | None, region: str | None) -> Cloud:
    return Cloud(region=region, account=Account(uid=account) if account else None)


# -- values every adapter reads ---------------------------------------------------------------
MIN_MS, MAX_MS = 315_532_800_000, 4_102_444_800_000  # 1980 .. 2100: epoch ms, as OCSF checks
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?"
    r"(Z|z|[+-]\d{2}:?\d{2})$"
)


def plausible_ms(ms: int | None) -> int | None:
    """``ms`` when it is a plausible epoch-milliseconds time, else None."""
    return ms if ms is not None and MIN_MS <= ms < MAX_MS else None


def rfc3339_ms(text: Any) -> int | None:
    """Epoch milliseconds of an RFC 3339 time (up to nanoseconds), None if not one."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    m = _RFC3339.match(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7) or "", m.group(8)
    try:
        dt = datetime(year, month, day, hour, minute, min(sec, 59), tzinfo=UTC)
        if zone not in ("Z", "z"):
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            dt -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    except (ValueError, OverflowError):
        return None
    return plausible_ms(int(dt.timestamp()) * 1000 + int((frac + "000")[:3]))


def ip_text(text: str | None) -> str | None:
    """A canonical IP address (an IPv4-mapped IPv6 address as IPv4), None if not one."""
    if text is None or len(text) > 64:
        return None
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def basename(path: str) -> str:
    """The last component of a path (the path itself when it has none)."""
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def excerpt(record: Any, limit: int = 2048) -> str:
    """A bounded text of a record, for a reject (never fails, never huge)."""
    try:
        text = record if isinstance(record, str) else compact_json(record)
    except (ValueError, RecursionError):
        text = repr(type(record))
    return clip(text, limit)
