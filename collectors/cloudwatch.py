"""The layer's lines as CloudWatch Logs delivers them -> common events (``cloudwatch-logs``).

Four shapes of record, all carrying the same CloudWatch Logs payload
(``messageType``, ``owner``, ``logGroup``, ``logStream``, ``subscriptionFilters``,
``logEvents: [{id, timestamp, message}]``):

* the subscription filter's Lambda event, ``{"awslogs": {"data": base64(gzip(payload))}}``;
* the payload itself, already decoded;
* a Kinesis event, ``{"Records": [{"kinesis": {"data": base64(gzip(payload)), ...},
  "awsRegion", "eventSourceARN", ...}, ...]}``;
* one record of such an event (``{"kinesis": {...}, "awsRegion": ...}``).

Each log event's message is a log line of the function, normalised by
:mod:`collectors.layer`. Identity comes from the envelope only, never from a line:

* account: the payload's ``owner`` (CloudWatch sets it; the context's account is not used);
* function: the log group ``/aws/lambda/<name>`` (Lambda@Edge's
  ``/aws/lambda/<region>.<name>`` names the function's own region too); in a custom log group
  (Lambda's ``LoggingConfig.LogGroup``) the stream names the function:
  ``YYYY/MM/DD/<name>[<version>]<id>``. Anything else: the function is unknown (events still
  come out, with a device that says so, and nothing downstream can act on it);
* region: the context's (the ingest function's own region: subscriptions deliver within a
  region), else the Kinesis record's ``awsRegion``.

Hostile input is bounded: the encoded and decompressed sizes (gzip is inflated incrementally
with a cap, so a bomb costs at most the cap), the number of records and log events, and the
nesting. A payload that cannot be used is one reject with the reason; a log event that cannot
be used is a reject of that event only (``where`` = ``logEvents[i]``), and the rest of the
batch is still processed. ``CONTROL_MESSAGE`` payloads (CloudWatch checking the destination)
are skipped.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any, Final

from collectors import layer
from collectors.base import (
    MAX_LOG_EVENTS,
    MAX_PAYLOAD_BYTES,
    Batch,
    Context,
    RecordError,
    Reject,
    clip,
)

SOURCE: Final = "cloudwatch-logs"

# Lambda accepts at most 6 MB as an invocation payload: no genuine encoded payload is bigger.
MAX_ENCODED: Final = 6 * 1024 * 1024
MAX_RECORDS: Final = 10_000  # a Kinesis event source mapping's largest batch
MAX_EVENT_DECOMPRESSED: Final = 64 * 1024 * 1024  # all the payloads of one Kinesis event
MAX_NAME: Final = 512  # log group and log stream names (CloudWatch's own limit)

_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
_FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EDGE = re.compile(r"([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})\.([A-Za-z0-9_-]{1,64})")
_CUSTOM_STREAM = re.compile(r"[0-9]{4}/[0-9]{2}/[0-9]{2}/([A-Za-z0-9_-]{1,64})\[")
LAMBDA_PREFIX: Final = "/aws/lambda/"


def matches(record: Any) -> bool:
    """A subscription event, a decoded payload, a Kinesis event or one Kinesis record."""
    if not isinstance(record, dict):
        return False
    if isinstance(record.get("awslogs"), dict):
        return True
    if "messageType" in record and "logEvents" in record:
        return True
    records = record.get("Records")
    if isinstance(records, list) and records:
        first = records[0]
        return isinstance(first, dict) and isinstance(first.get("kinesis"), dict)
    return isinstance(record.get("kinesis"), dict)


def normalize(record: Any, ctx: Context) -> Batch:
    batch = Batch()
    budget = _Budget(MAX_EVENT_DECOMPRESSED)
    where = ""
    try:
        if not isinstance(record, dict):
            raise RecordError(f"expected a JSON object, got {type(record).__name__}")
        if "awslogs" in record:
            where = "awslogs.data"
            awslogs = record["awslogs"]
            if not isinstance(awslogs, dict):
                raise RecordError("awslogs: expected an object with data")
            payload = decode(awslogs.get("data"), budget)
            where = ""
            _payload(payload, ctx.region, batch, "")
        elif "Records" in record:
            _kinesis_event(record, ctx, batch, budget)
        elif "kinesis" in record:
            _kinesis_record(record, ctx, batch, budget, "")
        elif "messageType" in record or "logEvents" in record:
            _payload(record, ctx.region, batch, "")
        else:
            raise RecordError(
                "not a CloudWatch Logs subscription event, payload, Kinesis event or record"
            )
    except RecordError as exc:
        batch.rejects.append(Reject(SOURCE, str(exc), _excerpt(record), where))
    return batch


# -- decoding ------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Budget:
    """Decompressed bytes still allowed for this record (all of a Kinesis event's payloads)."""

    left: int


def decode(data: Any, budget: _Budget | None = None) -> Any:
    """base64(gzip(json)) -> the payload, within every bound; RecordError says why not."""
    if type(data) is not str:
        raise RecordError(f"data: expected base64 text, got {type(data).__name__}")
    if len(data) > MAX_ENCODED:
        raise RecordError(f"data: {len(data)} characters of base64, over the {MAX_ENCODED} limit")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise RecordError(f"data: not valid base64 ({clip(exc, 80)})") from None
    limit = MAX_PAYLOAD_BYTES if budget is None else min(MAX_PAYLOAD_BYTES, budget.left)
    text = gunzip(raw, limit)
    if budget is not None:
        budget.left -= len(text)
    # The size is bounded by the inflation cap. Nesting is not walked (check_depth would
    # cost more than the parse): the payload's fields are checked by type where they are
    # read, nothing else in it is ever visited, and the parser itself stops runaway depth.
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RecordError(f"payload: not JSON: {clip(exc, 120)}") from None


def gunzip(raw: bytes, limit: int) -> bytes:
    """Inflate gzip data (one or more members) to at most ``limit`` bytes, incrementally."""
    if raw[:2] != b"\x1f\x8b":
        raise RecordError("data: not gzip-compressed")
    out = b""
    while raw:
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunk = inflater.decompress(raw, limit + 1 - len(out))
        except zlib.error as exc:
            raise RecordError(f"data: corrupt gzip stream ({clip(exc, 80)})") from None
        out = chunk if not out else out + chunk
        if len(out) > limit:
            raise RecordError(f"data: decompresses to more than {limit} bytes")
        if not inflater.eof:
            raise RecordError("data: truncated gzip stream")
        raw = inflater.unused_data
        if raw and not raw.strip(b"\x00"):
            break  # zero padding after the last member
    return out


def _excerpt(value: Any) -> str:
    if isinstance(value, dict):
        return clip("{" + ", ".join(repr(k)[:40] for k in list(value)[:20]) + "}", 400)
    if isinstance(value, str):
        return clip(value, 400)
    return clip(repr(value)[:400], 400)


# -- envelopes -----------------------------------------------------------------------------------
def _kinesis_event(record: dict[str, Any], ctx: Context, batch: Batch, budget: _Budget) -> None:
    records = record.get("Records")
    if type(records) is not list:
        raise RecordError("Records: expected a list of Kinesis records")
    if len(records) > MAX_RECORDS:
        raise RecordError(f"Records: {len(records)} records, over the {MAX_RECORDS} limit")
    for i, rec in enumerate(records):
        where = f"Records[{i}]"
        try:
            if not isinstance(rec, dict):
                raise RecordError("expected a Kinesis record (an object)")
            _kinesis_record(rec, ctx, batch, budget, where + ".")
        except RecordError as exc:
            batch.rejects.append(Reject(SOURCE, str(exc), _excerpt(rec), where))


def _kinesis_record(
    rec: dict[str, Any], ctx: Context, batch: Batch, budget: _Budget, where: str
) -> None:
    kinesis = rec.get("kinesis")
    if not isinstance(kinesis, dict):
        raise RecordError("kinesis: expected an object with data")
    region = ctx.region
    if region is None:
        aws_region = rec.get("awsRegion")
        if type(aws_region) is str and _REGION.fullmatch(aws_region):
            region = aws_region
    try:
        payload = decode(kinesis.get("data"), budget)
    except RecordError as exc:
        raise RecordError(f"kinesis.{exc}") from None
    _payload(payload, region, batch, where)


def function_of(group: str, stream: str) -> tuple[str | None, str | None]:
    """(function name, its region when the log group says it) from the envelope's names."""
    if group.startswith(LAMBDA_PREFIX):
        name = group[len(LAMBDA_PREFIX) :]
        if _FUNCTION.fullmatch(name):
            return name, None
        edge = _EDGE.fullmatch(name)
        if edge:  # Lambda@Edge: /aws/lambda/us-east-1.<name>, logged in the edge's region
            return edge.group(2), edge.group(1)
        return None, None
    m = _CUSTOM_STREAM.match(stream)
    if m:  # a custom log group: Lambda names the function in the stream
        return m.group(1), None
    return None, None


def _payload(payload: Any, region: str | None, batch: Batch, where: str) -> None:
    if not isinstance(payload, dict):
        raise RecordError(f"payload: expected a JSON object, got {type(payload).__name__}")
    kind = payload.get("messageType")
    if kind == "CONTROL_MESSAGE":
        batch.skipped += 1
        return
    if kind != "DATA_MESSAGE":
        raise RecordError(
            f"messageType: {clip(repr(kind), 40)} is not DATA_MESSAGE or CONTROL_MESSAGE"
        )
    owner = payload.get("owner")
    if type(owner) is not str or not _ACCOUNT.fullmatch(owner):
        raise RecordError(f"owner: {clip(repr(owner), 40)} is not a 12-digit AWS account id")
    group = payload.get("logGroup")
    stream = payload.get("logStream")
    if type(group) is not str or not 0 < len(group) <= MAX_NAME:
        raise RecordError("logGroup: expected a log group name")
    if type(stream) is not str or len(stream) > MAX_NAME:
        raise RecordError("logStream: expected a log stream name")
    events = payload.get("logEvents")
    if type(events) is not list:
        raise RecordError("logEvents: expected a list")
    if len(events) > MAX_LOG_EVENTS:
        raise RecordError(f"logEvents: {len(events)} events, over the {MAX_LOG_EVENTS} limit")
    function, edge_region = function_of(group, stream)
    ident = layer.identity(function, owner, edge_region or region)
    normalize_text = layer.normalize_text
    rejects = batch.rejects
    low, high = layer.MIN_TIME_MS, layer.MAX_TIME_MS
    for i, event in enumerate(events):
        if type(event) is not dict:
            rejects.append(
                Reject(
                    SOURCE,
                    "log event: expected an object",
                    _excerpt(event),
                    f"{where}logEvents[{i}]",
                )
            )
            continue
        message = event.get("message")
        if type(message) is not str:
            rejects.append(
                Reject(
                    SOURCE,
                    "log event: message is not text",
                    _excerpt(event),
                    f"{where}logEvents[{i}]",
                )
            )
            continue
        ts = event.get("timestamp")
        if type(ts) is not int or not low <= ts < high:
            ts = None  # only metadata.logged_time: not worth losing the line over
        seen = len(rejects)
        normalize_text(message, ident, ts, batch)
        if len(rejects) != seen:  # say where, only when needed (formatting costs per line)
            for r in rejects[seen:]:
                r.where = f"{where}logEvents[{i}]"
