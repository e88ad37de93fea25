"""DynamoDB stores: findings (idempotent by event uid), rule state, workload baselines.

Every table has partition key ``pk`` (S), sort key ``sk`` (S) and TTL attribute
``expires_at`` (epoch seconds). Items:

findings table
    ``pk = "finding#<id>"``, ``sk = "finding"``: the :class:`~collectors.findings.FindingRecord`
    (its fields as attributes), plus ``publish_change``/``publish_token`` while a publication
    of it has not been confirmed, and ``updated_at`` (epoch seconds of the last write).

    ``pk = "finding#<id>"``, ``sk = "event#<event uid>"``: one marker per event counted on the
    finding, expiring after ``marker_ttl_s`` (14 days by default).

baseline table
    ``pk = "state#<rule id>"``, ``sk = <workload key>``: a stateful rule's state, with
    ``expires_at`` = now + the rule's window.

    ``pk = "baseline#<workload key>"``, ``sk = "meta"``: when the workload was first seen;
    ``sk = "<kind>#<value>"``: a value the workload was seen with while learning.

Counting is exact under retries and concurrency: the markers of the events being counted and
the finding (conditioned on the ``version`` it was read at, or on not existing yet) are
written in one transaction. When the transaction is cancelled, the markers that already
existed were counted before (a retried batch): they are dropped, and the rest is folded
again into a fresh read of the finding. A lost race on ``version`` is retried the same way.

Publication is at least once: a write that changes what is published also sets
``publish_change``/``publish_token`` on the finding; :meth:`DynamoFindingStore.confirm`
clears them once every publisher succeeded. A batch retried after a failed publication
finds its events counted and the publication still pending, and publishes it again. Anything
else writing a finding item (a response playbook recording ``response``) must increment
``version`` with a condition on it, or its change can be overwritten.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from collectors.findings import Change, FindingRecord, Published, fold, group
from collectors.rules.engine import DEFAULT_LEARNING_S, Alert

MARKER_TTL_S = 14 * 24 * 3600
MAX_TRANSACT_ITEMS = 100  # DynamoDB's limit on items per TransactWriteItems
MAX_ITEM_BYTES = 300_000  # well under DynamoDB's 400 KB per item, for attribute-name overhead
MAX_KEY_BYTES = 1024  # DynamoDB's limit on a sort key value
EMPTY_KEY = "-"  # key attributes cannot be empty strings

_SER = TypeSerializer()
_DE = TypeDeserializer()


class StoreError(RuntimeError):
    """A write that could not be completed (after retries); the batch should be retried."""


# -- values ----------------------------------------------------------------------------------
def to_dynamo(value: Any) -> Any:
    """A JSON-able value as DynamoDB accepts it: Decimal numbers, no floats, no NaN."""
    if value is None or isinstance(value, bool | str | Decimal):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**38 else str(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return str(value)


def from_dynamo(value: Any) -> Any:
    """A value read from DynamoDB as plain JSON-able Python: Decimals as int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(to_dynamo(v)) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: from_dynamo(_DE.deserialize(v)) for k, v in item.items()}


def key_text(text: str, limit: int = MAX_KEY_BYTES - 64) -> str:
    """A sort-key-safe form of ``text``: itself, or a digest when too long or empty."""
    if not text:
        return EMPTY_KEY
    if len(text.encode()) <= limit:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def fit_item(item: dict[str, Any], limit: int = MAX_ITEM_BYTES) -> dict[str, Any]:
    """Shrink a finding item to fit DynamoDB: sample objects first, then the samples."""

    def size(x: dict[str, Any]) -> int:
        return len(json.dumps(to_dynamo(x), default=str))

    if size(item) <= limit:
        return item
    samples = item.get("samples") or []
    for s in samples:
        if size(item) <= limit:
            return item
        s.pop("objects", None)
        s.pop("evidence", None)
    while samples and size(item) > limit:
        samples.pop()
    if size(item) > limit:
        raise StoreError(f"finding {item.get('id')}: item too large for DynamoDB")
    return item


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# -- findings --------------------------------------------------------------------------------
class DynamoFindingStore:
    """Findings in DynamoDB, counted exactly once per event uid (see the module docstring)."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        marker_ttl_s: int = MARKER_TTL_S,
        max_attempts: int = 8,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table_name
        self.client = client if client is not None else boto3.client("dynamodb")
        self.marker_ttl_s = marker_ttl_s
        self.max_attempts = max_attempts
        self.clock = clock
        self.sleep = sleep

    @staticmethod
    def key(finding_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"finding#{finding_id}"}, "sk": {"S": "finding"}}

    def get(self, finding_id: str) -> FindingRecord | None:
        """The stored finding (strongly consistent read), or None."""
        item = self._get_item(finding_id)
        return FindingRecord.from_item(item) if item else None

    def _get_item(self, finding_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table, Key=self.key(finding_id), ConsistentRead=True
        )
        raw = resp.get("Item")
        return deserialize(raw) if raw else None

    def apply(self, alerts: Iterable[Alert]) -> list[Published]:
        out = []
        for fid, items in group(alerts).items():
            unique: dict[str, Alert] = {}
            for a in items:
                unique.setdefault(a.event_uid, a)
            published = self._apply_finding(fid, list(unique.values()))
            if published is not None:
                out.append(published)
        return out

    def _apply_finding(self, fid: str, alerts: list[Alert]) -> Published | None:
        pending = alerts
        conflicts = 0
        item = self._get_item(fid)
        while True:
            record = FindingRecord.from_item(item) if item else None
            publish: Change | None = item.get("publish_change") if item else None
            if not pending:
                break
            chunk = pending[: MAX_TRANSACT_ITEMS - 1]
            new, change = fold(copy.deepcopy(record), chunk)
            new.version = (record.version if record else 0) + 1
            new_item = fit_item(new.to_item())
            token = item.get("publish_token") if item else None
            if change is not None:
                publish = "created" if "created" in (publish, change) else "updated"
                token = uuid.uuid4().hex
            if publish is not None:
                new_item["publish_change"] = publish
                new_item["publish_token"] = token
            try:
                self._write(fid, chunk, new_item, record)
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                counted = {
                    chunk[i].event_uid
                    for i, r in enumerate(reasons[: len(chunk)])
                    if r.get("Code") == "ConditionalCheckFailed"
                }
                if counted:  # counted before: a retried batch
                    pending = [a for a in pending if a.event_uid not in counted]
                else:  # the finding changed under us (or a transient conflict): read again
                    conflicts += 1
                    if conflicts >= self.max_attempts:
                        raise StoreError(
                            f"finding {fid}: still conflicting after {conflicts} attempts"
                        ) from exc
                    self.sleep(min(0.05 * 2**conflicts, 1.0) * random.random())  # noqa: S311
                item = self._get_item(fid)
                continue
            pending = pending[len(chunk) :]
            item = new_item
        if record is None or publish is None:
            return None
        return Published(record, publish)

    def _write(
        self,
        fid: str,
        chunk: Sequence[Alert],
        new_item: dict[str, Any],
        old: FindingRecord | None,
    ) -> None:
        now = int(self.clock())
        pk = f"finding#{fid}"
        ops: list[dict[str, Any]] = []
        for a in chunk:
            marker = {
                "pk": pk,
                "sk": "event#" + key_text(a.event_uid),
                "event_uid": a.event_uid[:2048],
                "rule_id": a.rule.id,
                "time": a.time,
                "expires_at": now + self.marker_ttl_s,
            }
            ops.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": serialize(marker),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        finding = {**new_item, "pk": pk, "sk": "finding", "updated_at": now}
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(finding)}
        if old is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(old.version)}}
        ops.append({"Put": put})
        self.client.transact_write_items(TransactItems=ops)

    def confirm(self, items: Sequence[Published]) -> None:
        """Clear the pending publication of findings every publisher has now received."""
        for p in items:
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=self.key(p.record.id),
                    UpdateExpression="REMOVE publish_change, publish_token",
                    ConditionExpression="publish_change = :c",
                    ExpressionAttributeValues={":c": {"S": p.change}},
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                # a newer write replaced the pending publication: it publishes again


class ConfirmPublished:
    """The last publisher of a pipeline: marks what every publisher before it received."""

    def __init__(self, store: DynamoFindingStore) -> None:
        self.store = store

    def publish(self, items: Sequence[Published]) -> None:
        self.store.confirm(items)


# -- rule state ------------------------------------------------------------------------------
class DynamoStateStore:
    """Stateful rules' state per (rule, workload), expiring after the rule's window."""

    def __init__(
        self, table_name: str, *, client: Any = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.table = table_name
        self.client = client if client is not None else boto3.client("dynamodb")
        self.clock = clock

    @staticmethod
    def key(rule_id: str, workload: str) -> dict[str, Any]:
        return {"pk": {"S": f"state#{rule_id}"}, "sk": {"S": key_text(workload)}}

    def load(self, rule_id: str, workload: str) -> dict[str, Any]:
        resp = self.client.get_item(
            TableName=self.table, Key=self.key(rule_id, workload), ConsistentRead=True
        )
        raw = resp.get("Item")
        if not raw:
            return {}
        item = deserialize(raw)
        if int(item.get("expires_at", 0)) <= self.clock():  # TTL deletes lazily
            return {}
        state = item.get("state")
        return dict(state) if isinstance(state, dict) else {}

    def save(self, rule_id: str, workload: str, state: dict[str, Any], ttl_s: int) -> None:
        key = self.key(rule_id, workload)
        if not state:
            self.client.delete_item(TableName=self.table, Key=key)
            return
        item = {
            "state": state,
            "rule_id": rule_id,
            "workload": workload,
            "expires_at": int(self.clock()) + ttl_s,
        }
        self.client.put_item(TableName=self.table, Item={**key, **serialize(item)})


# -- baselines -------------------------------------------------------------------------------
class DynamoBaseline:
    """What each workload did while learning, and when it was first seen.

    Reads are cached: a workload's first-seen time for the life of the sandbox (it never
    changes), values known to be in the baseline likewise, values not (yet) in it until
    :meth:`begin` (called per invocation), so a batch asks DynamoDB once per distinct value.
    """

    def __init__(
        self,
        table_name: str,
        learning_s: int = DEFAULT_LEARNING_S,
        *,
        client: Any = None,
    ) -> None:
        self.table = table_name
        self.learning_ms = learning_s * 1000
        self.client = client if client is not None else boto3.client("dynamodb")
        self._first_seen: dict[str, int] = {}
        self._known: set[tuple[str, str]] = set()
        self._unknown: set[tuple[str, str]] = set()
        self.reads = 0  # GetItem calls, for tests and logs

    def begin(self) -> None:
        """A new invocation: forget which values were not in the baseline."""
        self._unknown.clear()

    @staticmethod
    def _pk(workload: str) -> str:
        return "baseline#" + key_text(workload, 1000)

    def first_seen(self, workload: str, now_ms: int) -> int:
        cached = self._first_seen.get(workload)
        if cached is not None:
            return cached
        pk = self._pk(workload)
        key = {"pk": {"S": pk}, "sk": {"S": "meta"}}
        self.reads += 1
        raw = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if raw:
            first = int(deserialize(raw)["first_seen"])
        else:
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={**key, **serialize({"first_seen": now_ms, "workload": workload})},
                    ConditionExpression="attribute_not_exists(pk)",
                )
                first = now_ms
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                self.reads += 1
                raw = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)[
                    "Item"
                ]
                first = int(deserialize(raw)["first_seen"])
        self._first_seen[workload] = first
        return first

    def learning(self, workload: str, now_ms: int) -> bool:
        return now_ms - self.first_seen(workload, now_ms) < self.learning_ms

    def _value_key(self, workload: str, kind: str, value: str) -> dict[str, Any]:
        return {"pk": {"S": self._pk(workload)}, "sk": {"S": key_text(f"{kind}#{value}")}}

    def known(self, workload: str, kind: str, value: str, now_ms: int) -> bool | None:
        if self.learning(workload, now_ms):
            return None
        k = (workload, f"{kind}#{value}")
        if k in self._known:
            return True
        if k in self._unknown:
            return False
        self.reads += 1
        raw = self.client.get_item(
            TableName=self.table, Key=self._value_key(workload, kind, value)
        ).get("Item")
        (self._known if raw else self._unknown).add(k)
        return bool(raw)

    def record(self, workload: str, kind: str, value: str, now_ms: int) -> None:
        if not self.learning(workload, now_ms):
            return
        k = (workload, f"{kind}#{value}")
        if k in self._known:
            return
        item = {"kind": kind, "value": value[:4096], "learnt_ms": now_ms}
        self.client.put_item(
            TableName=self.table,
            Item={**self._value_key(workload, kind, value), **serialize(item)},
        )
        self._known.add(k)
        self._unknown.discard(k)


# -- coverage: which sensor last reported for each workload ----------------------------------
SEEN_PREFIX = "seen#"


def _seen_from(batch: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest report per (workload key, source) in a normalised batch."""
    from collectors.rules.engine import source_of
    from collectors.workload import workload_of

    out: dict[tuple[str, str], dict[str, Any]] = {}
    for e in batch.events:
        account = e.cloud.account.uid if e.cloud.account else None
        wl = workload_of(getattr(e, "device", None), account)
        if wl is None:
            continue
        k = (wl.key, source_of(e))
        cur = out.get(k)
        if cur is None or e.time > cur["last_seen_ms"]:
            out[k] = {
                "workload": wl.key,
                "type": wl.type,
                "name": wl.name,
                "account": account,
                "region": e.cloud.region,
                "last_seen_ms": e.time,
            }
    for s in batch.signals:
        key = s.get("workload")
        if not isinstance(key, str) or not isinstance(s.get("time"), int):
            continue
        k = (key, str(s.get("source") or "layer"))
        cur = out.get(k)
        if cur is None or s["time"] >= cur["last_seen_ms"]:
            entry = {
                "workload": key,
                "type": key.split(":", 1)[0],
                "name": s.get("function"),
                "account": s.get("account"),
                "region": s.get("region"),
                "last_seen_ms": s["time"],
            }
            if cur is not None:
                entry = {**cur, **{k2: v for k2, v in entry.items() if v is not None}}
            out[k] = entry
        if s.get("kind") == "sensor.start":
            for field_name, attr in (
                ("version", "sensor_version"),
                ("mode", "mode"),
                ("attach", "attach"),
                ("python", "python"),
            ):
                if s.get(field_name) is not None:
                    out[k][attr] = s[field_name]
    return out


class DynamoSeenStore:
    """Coverage: when each workload's sensor last reported, and what a function's sensor
    said about its packages. A pipeline observer (``observe(batch)``).

    baseline table items
        ``pk = "seen#<workload key>"``, ``sk = <source>`` (``layer``, ``falco``, ``osquery``,
        ``tetragon``, ``guardduty``, ``inspector``): ``workload``, ``type``, ``name``,
        ``account``, ``region``, ``first_seen_ms``, ``last_seen_ms`` and, for the layer, the
        sensor's ``sensor_version``, ``mode``, ``attach``, ``python`` from its last start.
        Only moves forward in time (a late batch never makes a workload look older).

        ``pk = "seen#<workload key>"``, ``sk = "packages"``: the distributions of the last
        full ``sensor.packages`` report (``packages``: name, version, path, imported),
        ``reported_ms``, and ``imported`` (the names imported so far, with later updates).
    """

    def __init__(self, table_name: str, *, client: Any = None) -> None:
        self.table = table_name
        self.client = client if client is not None else boto3.client("dynamodb")

    @staticmethod
    def key(workload: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": SEEN_PREFIX + key_text(workload)}, "sk": {"S": sk}}

    def observe(self, batch: Any) -> None:
        for (workload, source), seen in _seen_from(batch).items():
            self._touch(workload, source, seen)
        for s in batch.signals:
            if s.get("kind") == "sensor.packages" and isinstance(s.get("workload"), str):
                self._packages(s)

    def _touch(self, workload: str, source: str, seen: dict[str, Any]) -> None:
        values = {k: v for k, v in seen.items() if v is not None and k != "last_seen_ms"}
        sets = [f"#{k} = :{k}" for k in values]
        sets += ["last_seen_ms = :t", "first_seen_ms = if_not_exists(first_seen_ms, :t)"]
        attrs = {f":{k}": _SER.serialize(to_dynamo(v)) for k, v in values.items()}
        attrs[":t"] = {"N": str(seen["last_seen_ms"])}
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self.key(workload, source),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_not_exists(last_seen_ms) OR last_seen_ms < :t",
                ExpressionAttributeNames={f"#{k}": k for k in values},
                ExpressionAttributeValues=attrs,
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":  # older than what is stored
                raise

    def _packages(self, s: dict[str, Any]) -> None:
        pkgs = [p for p in s.get("packages") or [] if isinstance(p, dict)]
        imported = sorted({str(p.get("name")) for p in pkgs if p.get("imported")})
        key = self.key(s["workload"], "packages")
        when = s.get("time") if isinstance(s.get("time"), int) else 0
        if not s.get("update"):
            item = serialize({"packages": pkgs, "reported_ms": when, "workload": s["workload"]})
            if imported:
                item["imported"] = {"SS": imported}
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={**key, **item},
                    ConditionExpression="attribute_not_exists(reported_ms) OR reported_ms <= :t",
                    ExpressionAttributeValues={":t": {"N": str(when)}},
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":  # a newer report is stored
                    raise
        elif imported:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="ADD imported :i",
                ExpressionAttributeValues={":i": {"SS": imported}},
            )

    def get(self, workload: str) -> dict[str, dict[str, Any]]:
        """Every item of a workload, by sort key (for tools and tests)."""
        resp = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": SEEN_PREFIX + key_text(workload)}},
        )
        return {i["sk"]["S"]: deserialize(i) for i in resp.get("Items", [])}
