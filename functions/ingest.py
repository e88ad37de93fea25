"""The ingest Lambda: records in, findings stored and published, bad input dead-lettered.

``handler(event, context)`` accepts:

* a CloudWatch Logs subscription event, ``{"awslogs": {"data": ...}}`` (the layer's lines);
* a Kinesis event, ``Records[].kinesis.data``: CloudWatch Logs subscription payloads (gzip),
  or a raw JSON record (the same records an SQS body may carry);
* an SQS event, ``Records[].body``: an EventBridge event (a GuardDuty or Inspector2 finding,
  or a forwarder's event whose ``detail`` is a record, see below), falcosidekick's SNS
  notification, Falco/osquery/Tetragon JSON (one document, or JSON lines), a sensor line;
* an EventBridge event delivered directly (GuardDuty Finding, Inspector2 Finding, forwarders);
* anything else an adapter recognises (falcosidekick's SNS Lambda event, for instance).

Identity comes from the delivery, never from the record (``docs/collectors/README.md``):
CloudWatch Logs payloads name their account (``owner``) and the region is this function's
own; SQS and Kinesis records give the queue's or stream's account and region (from the
``eventSourceARN``) to sources that have none of their own; an EventBridge event's ``account``
must be this account or one of ``MEMBER_ACCOUNTS``. A forwarder's EventBridge event (any
other ``source``) is normalised from its ``detail`` with the envelope's account and region;
a CloudWatch Logs payload inside it must name that same account as its ``owner``.

Failures:

* a record, or part of one, that an adapter rejects or that no adapter recognises goes to
  the dead-letter queue (``DLQ_URL``) with the reason, the source, where in the record, the
  bounded record, and where it came from; it is not retried. If the dead-letter queue cannot
  take it, the item fails instead (retried: nothing is lost);
* storing or publishing failing (throttling, a conflict that would not resolve, a publisher
  down) is transient: SQS and Kinesis report the item in ``batchItemFailures`` and only it is
  retried; a CloudWatch Logs subscription or direct EventBridge invocation (asynchronous)
  raises, and Lambda's retries and on-failure destination take over. Retries never count an
  event twice (the store is idempotent by event uid).

Configuration: :mod:`functions.config` documents every environment variable. The pipeline is
built once per sandbox (:func:`build`, also what tests call with their own configuration).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from collectors import detect
from collectors.base import (
    MAX_RECORD_BYTES,
    Batch,
    Context,
    RecordError,
    Reject,
    clip,
    excerpt,
    load_json,
)
from collectors.rules.engine import Engine, Registry, RuleError, builtin, load_folder
from collectors.rules.tuning import Tuning, TuningError
from functions import telemetry
from functions.config import Config, parse_s3_uri
from functions.pipeline import Pipeline, Publisher, Result, normalise
from functions.publish import EventBridgePublisher, SecurityHubPublisher, SnsPublisher
from functions.store import (
    ConfirmPublished,
    DynamoBaseline,
    DynamoFindingStore,
    DynamoSeenStore,
    DynamoStateStore,
)
from functions.tags import TagLookup

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "ramparts-ingest")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Ramparts")
tracer = Tracer()

FINDING_SOURCES = ("aws.guardduty", "aws.inspector2")
MAX_DLQ_MESSAGE = 200_000  # bytes of one dead-letter message (SQS takes 256 KiB)
MAX_DLQ_BATCH = 250_000  # bytes of one SendMessageBatch
MAX_LOGGED_REASONS = 10


class DeadLetterError(RuntimeError):
    """Rejects that the dead-letter queue did not take: the item must be retried."""


# -- the dead-letter queue ---------------------------------------------------------------------
def dead_letter_bodies(rejects: Sequence[Reject], origin: dict[str, str]) -> list[str]:
    """Rejects as dead-letter message bodies (JSON), several per message, each bounded."""
    bodies: list[str] = []
    current: list[dict[str, str]] = []
    size = 0

    def flush() -> None:
        body = {"ramparts_dead_letter": 1, "origin": origin, "rejects": current}
        bodies.append(json.dumps(body, ensure_ascii=False))

    for r in rejects:
        entry = r.to_dict()
        entry["record"] = clip(entry["record"], 32_768)
        n = len(json.dumps(entry, ensure_ascii=False).encode())
        if current and size + n > MAX_DLQ_MESSAGE:
            flush()
            current, size = [], 0
        current.append(entry)
        size += n
    if current:
        flush()
    return bodies


class DeadLetterQueue:
    """Sends rejects to the dead-letter SQS queue; raises DeadLetterError if it cannot."""

    def __init__(self, url: str, *, client: Any = None, max_attempts: int = 2) -> None:
        self.url = url
        self.client = client if client is not None else boto3.client("sqs")
        self.max_attempts = max_attempts

    def send(self, rejects: Sequence[Reject], origin: dict[str, str]) -> int:
        """Send the rejects; the number of messages sent."""
        if not rejects:
            return 0
        bodies = dead_letter_bodies(rejects, origin)
        batches: list[list[str]] = [[]]
        size = 0
        for b in bodies:
            n = len(b.encode())
            if batches[-1] and (len(batches[-1]) == 10 or size + n > MAX_DLQ_BATCH):
                batches.append([])
                size = 0
            batches[-1].append(b)
            size += n
        for batch in batches:
            self._send_batch(batch)
        return len(bodies)

    def _send_batch(self, bodies: list[str]) -> None:
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
        error = ""
        for _ in range(self.max_attempts):
            try:
                resp = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except Exception as exc:  # the queue is unreachable, throttled, denied...
                error = f"{type(exc).__name__}: {clip(exc, 300)}"
                continue
            failed = {f.get("Id") for f in resp.get("Failed") or []}
            if not failed:
                return
            error = "; ".join(
                f"{f.get('Code')}: {f.get('Message', '')}" for f in resp.get("Failed") or []
            )
            entries = [e for e in entries if e["Id"] in failed]
        raise DeadLetterError(f"dead-letter queue did not take {len(entries)} message(s): {error}")


# -- what one invocation did ---------------------------------------------------------------------
@dataclass(slots=True)
class Counts:
    records: int = 0
    events: int = 0
    rejects: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    alerts: int = 0
    suppressed: int = 0
    created: int = 0
    updated: int = 0
    rule_failures: int = 0
    failed: int = 0
    dead_letter_failures: int = 0
    signals: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, result: Result) -> None:
        self.events += result.events
        self.skipped += result.skipped
        self.alerts += len(result.alerts)
        self.suppressed += result.suppressed
        self.created += sum(1 for p in result.published if p.change == "created")
        self.updated += sum(1 for p in result.published if p.change == "updated")
        self.rule_failures += len(result.rule_failures)
        self.signals += len(result.signals)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "reasons"
        }
        if self.reasons:
            out["reject_reasons"] = dict(self.reasons.most_common(MAX_LOGGED_REASONS))
        return out


_METRICS = {
    "records": "RecordsReceived",
    "events": "Events",
    "rejects": "Rejects",
    "dead_lettered": "DeadLettered",
    "skipped": "Skipped",
    "alerts": "Alerts",
    "suppressed": "Suppressed",
    "created": "FindingsCreated",
    "updated": "FindingsUpdated",
    "rule_failures": "RuleFailures",
    "failed": "TransientFailures",
    "dead_letter_failures": "DeadLetterFailures",
}


@dataclass(slots=True)
class Unit:
    """One record to normalise, with its trusted context; ``where`` prefixes its rejects."""

    record: Any
    ctx: Context
    source: str | None = None
    where: str = ""


@dataclass(slots=True)
class Item:
    """One batch item (an SQS message, a Kinesis record, or the whole async event)."""

    id: str | None
    origin: dict[str, str]
    units: list[Unit] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


class TransientError(RuntimeError):
    """An asynchronous invocation that must be retried by Lambda."""


def _arn_parts(arn: Any) -> tuple[str | None, str | None]:
    """(region, account) of an ARN, None where it does not say."""
    if not isinstance(arn, str):
        return None, None
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None, None
    return parts[3] or None, parts[4] or None


# -- the function --------------------------------------------------------------------------------
class Ingest:
    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        dlq: DeadLetterQueue,
        *,
        account: str | None = None,
        baseline: DynamoBaseline | None = None,
        tuning_status: str = "none",
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.dlq = dlq
        self.account = account
        self.baseline = baseline
        self.tuning_status = tuning_status

    # entry point -----------------------------------------------------------------------------
    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        started = time.monotonic()
        if self.baseline is not None:
            self.baseline.begin()
        if self.account is None and context is not None:
            self.account = _arn_parts(getattr(context, "invoked_function_arn", None))[1]
        kind, items = self.items(event)
        counts = Counts(records=len(items) if kind in ("sqs", "kinesis") else 1)
        failures: list[dict[str, str]] = []
        transient: list[str] = []
        for item in items:
            error = self.process(item, counts)
            if error is not None:
                transient.append(error)
                if item.id is not None:
                    failures.append({"itemIdentifier": item.id})
        self.report(kind, counts, started)
        if kind in ("sqs", "kinesis"):
            return {"batchItemFailures": failures}
        if transient:
            raise TransientError(f"{len(transient)} failure(s), retry: {transient[0]}")
        return counts.summary()

    def report(self, kind: str, counts: Counts, started: float) -> None:
        for attr, name in _METRICS.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(counts, attr))
        logger.info(
            "batch processed",
            extra={
                "delivery": kind,
                "counts": counts.summary(),
                "tuning": self.tuning_status,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )

    # one item --------------------------------------------------------------------------------
    def process(self, item: Item, counts: Counts) -> str | None:
        """Normalise, detect, store, publish, dead-letter; the transient error, if any."""
        batch = Batch(rejects=list(item.rejects))
        for unit in item.units:
            part = normalise(unit.record, unit.ctx, unit.source)
            if unit.where:
                for r in part.rejects:
                    r.where = f"{unit.where}.{r.where}" if r.where else unit.where
            batch.extend(part)
        try:
            result = self.pipeline.process(batch)
        except Exception as exc:  # store/publish: retried, never lost
            counts.failed += 1
            error = f"{type(exc).__name__}: {clip(exc, 500)}"
            logger.warning(
                "item failed, will be retried",
                extra={"item": item.id, "origin": item.origin, "error": error},
            )
            return error
        counts.add(result)
        for f in result.rule_failures[:MAX_LOGGED_REASONS]:
            logger.warning(
                "rule failed",
                extra={"rule_id": f.rule_id, "event_uid": f.event_uid, "error": f.error},
            )
        if result.rejects:
            counts.rejects += len(result.rejects)
            counts.reasons.update(f"{r.source}: {r.reason[:120]}" for r in result.rejects)
            try:
                self.dlq.send(result.rejects, item.origin)
            except DeadLetterError as exc:
                counts.failed += 1
                counts.dead_letter_failures += 1
                logger.error(
                    "dead-letter queue failed, item will be retried",
                    extra={"item": item.id, "origin": item.origin, "error": str(exc)},
                )
                return str(exc)
            counts.dead_lettered += len(result.rejects)
        return None

    # deliveries ------------------------------------------------------------------------------
    def items(self, event: Any) -> tuple[str, list[Item]]:
        """What kind of delivery this is, and its items."""
        now = int(time.time() * 1000)
        members = self.config.member_accounts
        if isinstance(event, dict):
            records = event.get("Records")
            first = records[0] if isinstance(records, list) and records else None
            source = first.get("eventSource") if isinstance(first, dict) else None
            if source == "aws:sqs":
                return "sqs", [self._sqs(r, i, now) for i, r in enumerate(records or [])]
            if source == "aws:kinesis":
                return "kinesis", [self._kinesis(r, i, now) for i, r in enumerate(records or [])]
            if isinstance(event.get("awslogs"), dict):
                ctx = Context(
                    region=self.config.region,
                    member_accounts=members,
                    received_ms=now,
                    origin="cloudwatch-logs",
                )
                unit = Unit(event, ctx, "cloudwatch-logs")
                return "cloudwatch-logs", [Item(None, {"delivery": "cloudwatch-logs"}, [unit])]
            if _is_eventbridge(event):
                item = Item(None, {"delivery": "eventbridge", "id": str(event.get("id"))[:100]})
                self._eventbridge(event, item, now, "")
                return "eventbridge", [item]
        ctx = Context(region=self.config.region, member_accounts=members, received_ms=now)
        return "other", [Item(None, {"delivery": "other"}, [Unit(event, ctx)])]

    def _sqs(self, rec: Any, index: int, now: int) -> Item:
        if not isinstance(rec, dict):
            item = Item(None, {"delivery": "sqs", "index": str(index)})
            item.rejects.append(
                Reject("sqs", "not an SQS record", excerpt(rec), f"Records[{index}]")
            )
            return item
        msg_id = rec.get("messageId")
        arn = rec.get("eventSourceARN")
        item = Item(
            msg_id if isinstance(msg_id, str) else None,
            {"delivery": "sqs", "messageId": str(msg_id), "eventSourceARN": str(arn)},
        )
        region, account = _arn_parts(arn)
        ctx = Context(
            account=account,
            region=region or self.config.region,
            member_accounts=self.config.member_accounts,
            received_ms=now,
            origin=f"sqs:{msg_id}",
        )
        body = rec.get("body")
        if not isinstance(body, str):
            item.rejects.append(Reject("sqs", "body: expected text", excerpt(rec), "body"))
            return item
        self._text(body, ctx, item, now, "body")
        return item

    def _kinesis(self, rec: Any, index: int, now: int) -> Item:
        if not isinstance(rec, dict) or not isinstance(rec.get("kinesis"), dict):
            item = Item(None, {"delivery": "kinesis", "index": str(index)})
            item.rejects.append(
                Reject("kinesis", "not a Kinesis record", excerpt(rec), f"Records[{index}]")
            )
            return item
        kin = rec["kinesis"]
        seq = kin.get("sequenceNumber")
        arn = rec.get("eventSourceARN")
        item = Item(
            seq if isinstance(seq, str) else None,
            {
                "delivery": "kinesis",
                "sequenceNumber": str(seq),
                "partitionKey": str(kin.get("partitionKey"))[:256],
                "eventSourceARN": str(arn),
            },
        )
        region, account = _arn_parts(arn)
        region = region or (rec.get("awsRegion") if isinstance(rec.get("awsRegion"), str) else None)
        ctx = Context(
            account=account,
            region=region or self.config.region,
            member_accounts=self.config.member_accounts,
            received_ms=now,
            origin=f"kinesis:{seq}",
        )
        data = kin.get("data")
        try:
            if not isinstance(data, str):
                raise RecordError("kinesis.data: expected base64 text")
            if len(data) > 2 * MAX_RECORD_BYTES:  # a Kinesis record holds at most 1 MiB
                raise RecordError(f"kinesis.data: {len(data)} characters, over the limit")
            raw = base64.b64decode(data, validate=True)
        except (RecordError, binascii.Error, ValueError) as exc:
            item.rejects.append(Reject("kinesis", str(exc), excerpt(rec, 400), "kinesis.data"))
            return item
        if raw[:2] == b"\x1f\x8b":  # a CloudWatch Logs subscription payload
            cw_ctx = replace(ctx, region=self.config.region or region)
            item.units.append(Unit(rec, cw_ctx, "cloudwatch-logs"))
        else:
            self._text(raw.decode("utf-8", "replace"), ctx, item, now, "kinesis.data")
        return item

    def _text(self, text: str, ctx: Context, item: Item, now: int, where: str) -> None:
        """A message body: one JSON document, or lines (JSON lines, sensor lines)."""
        try:
            value = load_json(text)
        except RecordError as exc:
            lines = [(n, x) for n, x in enumerate(text.splitlines(), 1) if x.strip()]
            if len(lines) > 1 and len(text) <= MAX_RECORD_BYTES:
                for n, line in lines:
                    self._value(line, ctx, item, now, f"{where}.line {n}")
                return
            if detect(text) is None:
                item.rejects.append(Reject("unknown", str(exc), excerpt(text), where))
                return
            item.units.append(Unit(text, ctx, where=where))
            return
        self._value(value, ctx, item, now, where)

    def _value(self, value: Any, ctx: Context, item: Item, now: int, where: str) -> None:
        if isinstance(value, str):
            try:
                value = load_json(value)
            except RecordError:
                item.units.append(Unit(value, ctx, where=where))
                return
        if _is_eventbridge(value):
            self._eventbridge(value, item, now, where)
        else:
            item.units.append(Unit(value, ctx, where=where))

    def _eventbridge(self, event: dict[str, Any], item: Item, now: int, where: str) -> None:
        """An EventBridge event: its account must be ours or a member's."""
        account = event.get("account")
        region = event.get("region")
        source = event.get("source")
        allowed = set(self.config.member_accounts)
        if self.account:
            allowed.add(self.account)
        if allowed and account not in allowed:
            item.rejects.append(
                Reject(
                    str(source)[:64] if isinstance(source, str) else "eventbridge",
                    f"EventBridge event from account {clip(repr(account), 40)}, which is neither "
                    "this account nor a configured member account (MEMBER_ACCOUNTS)",
                    excerpt(event),
                    where,
                )
            )
            return
        origin = f"eventbridge:{str(event.get('id'))[:100]}"
        if source in FINDING_SOURCES:  # the adapters check the envelope against the finding
            ctx = Context(
                member_accounts=self.config.member_accounts, received_ms=now, origin=origin
            )
            item.units.append(Unit(event, ctx, where=where))
            return
        detail = event.get("detail")
        dwhere = f"{where}.detail" if where else "detail"
        if isinstance(detail, dict) and "owner" in detail and detail.get("owner") != account:
            item.rejects.append(
                Reject(
                    "cloudwatch-logs",
                    f"forwarded payload names owner {clip(repr(detail.get('owner')), 40)}, "
                    f"not the EventBridge event's account {clip(repr(account), 40)}",
                    excerpt(detail),
                    dwhere,
                )
            )
            return
        ctx = Context(
            account=account if isinstance(account, str) else None,
            region=region if isinstance(region, str) else None,
            member_accounts=self.config.member_accounts,
            received_ms=now,
            origin=origin,
        )
        item.units.append(Unit(detail, ctx, where=dwhere))


def _is_eventbridge(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "detail-type" in value
        and "source" in value
        and "detail" in value
        and "account" in value
    )


# -- building it -------------------------------------------------------------------------------
def load_tuning(uri: str, registry: Registry, s3: Any = None) -> Tuning:
    """The tuning file at ``s3://bucket/key`` (YAML, or JSON for ``.json``); TuningError why not."""
    from ramparts import _yaml

    bucket, key = parse_s3_uri(uri)
    client = s3 if s3 is not None else boto3.client("s3")
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_RECORD_BYTES + 1)
    except Exception as exc:
        raise TuningError(
            f"{uri}: cannot be read: {type(exc).__name__}: {clip(exc, 300)}"
        ) from None
    if len(body) > MAX_RECORD_BYTES:
        raise TuningError(f"{uri}: over {MAX_RECORD_BYTES} bytes")
    try:
        text = body.decode("utf-8")
        data = json.loads(text) if key.endswith(".json") else _yaml.loads(text)
    except ValueError as exc:
        raise TuningError(f"{uri}: {clip(exc, 300)}") from None
    try:
        return Tuning.parse(data, registry)
    except TuningError as exc:
        raise TuningError(f"{uri}: {exc}") from None


def build(
    config: Config,
    *,
    account: str | None = None,
    registry: Registry | None = None,
    session: Any = None,
) -> Ingest:
    """The ingest function's pipeline for ``config`` (once per sandbox; tests build their own)."""
    sess = session if session is not None else boto3.session.Session()
    dynamodb = sess.client("dynamodb")
    reg = registry if registry is not None else builtin()
    if config.rules_dir:
        try:
            reg = reg.merged(load_folder(config.rules_dir))
        except RuleError as exc:
            logger.error(
                "user rules not loaded, running the built-in rules", extra={"error": str(exc)}
            )
            metrics.add_metric(name="RulesErrors", unit=MetricUnit.Count, value=1)
    tuning: Tuning | None = None
    status = "none"
    if config.tuning_uri:
        try:
            tuning = load_tuning(config.tuning_uri, reg, sess.client("s3"))
            status = f"loaded from {config.tuning_uri}"
        except TuningError as exc:
            status = f"UNTUNED: tuning file not used ({clip(exc, 300)})"
            logger.error("tuning file not used, running untuned", extra={"error": str(exc)})
            metrics.add_metric(name="TuningErrors", unit=MetricUnit.Count, value=1)
    baseline = DynamoBaseline(config.baseline_table, config.learning_s, client=dynamodb)
    needs_tags = tuning is not None and any(e.tags for e in tuning.exceptions)
    engine = Engine(
        reg,
        state=DynamoStateStore(config.baseline_table, client=dynamodb),
        baseline=baseline,
        tuning=tuning,
        tags=TagLookup(
            own_account=account,
            role_name=config.responder_role_name,
            session=sess,
        )
        if needs_tags
        else None,
    )
    store = DynamoFindingStore(config.findings_table, client=dynamodb)
    publishers: list[Publisher] = [
        EventBridgePublisher(config.event_bus_name, client=sess.client("events"))
    ]
    if config.security_hub_export:
        region = config.region or sess.region_name
        if not account or not region:
            raise RuntimeError("SECURITY_HUB_EXPORT needs the function's account and region")
        publishers.append(SecurityHubPublisher(account, region, client=sess.client("securityhub")))
    if config.alert_topic_arn:
        publishers.append(
            SnsPublisher(
                config.alert_topic_arn, config.alert_min_severity, client=sess.client("sns")
            )
        )
    publishers.append(ConfirmPublished(store))  # last: only after every publisher succeeded
    return Ingest(
        config,
        Pipeline(
            engine,
            store,
            publishers,
            observers=[DynamoSeenStore(config.baseline_table, client=dynamodb)],
        ),
        DeadLetterQueue(config.dlq_url, client=sess.client("sqs")),
        account=account,
        baseline=baseline,
        tuning_status=status,
    )


_SANDBOX: dict[str, Ingest] = {}


def app(context: Any = None) -> Ingest:
    """The sandbox's pipeline, built at the first invocation (cold start)."""
    found = _SANDBOX.get("app")
    if found is None:
        account = _arn_parts(getattr(context, "invoked_function_arn", None))[1]
        found = build(Config.from_env(os.environ), account=account)
        _SANDBOX["app"] = found
    return found


def reset() -> None:
    """Forget the sandbox's pipeline (tests; the next invocation builds a new one)."""
    _SANDBOX.clear()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with telemetry.span(
        "ramparts.ingest",
        service="ramparts-ingest",
        attributes={"faas.invocation_id": getattr(context, "aws_request_id", None)},
    ):
        try:
            return app(context).handle(event, context)
        finally:
            telemetry.flush()


def iter_dead_letters(bodies: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The rejects of dead-letter message bodies (for tools and tests)."""
    for body in bodies:
        data = json.loads(body)
        for r in data.get("rejects", []):
            yield {**r, "origin": data.get("origin", {})}
