"""osquery results logs: process, socket and file events as OCSF activity.

Formats read (``docs/collectors/osquery.md``), one JSON object per results-log line:

* differential, event format (the default): ``columns`` + ``action`` (added/removed);
* differential, batch format (``--logger_event_type=false``): ``diffResults`` with
  ``added`` and ``removed`` row lists;
* snapshot: ``snapshot`` row list (``action: snapshot``);

each with ``name`` (the scheduled query: its schedule key, or ``pack<d><pack><d><query>``
for packs, ``<d>`` being ``--pack_delimiter``, ``_`` by default), ``hostIdentifier``,
``calendarTime``, ``unixTime``, ``epoch``, ``counter``, ``numerics`` and ``decorations``
(or decorations at top level with ``--decorations_top_level``). Column values are strings
unless ``--logger_numerics``; both are read, and give equal events.

Tables: ``process_events``/``bpf_process_events`` -> Process Activity (Launch),
``socket_events``/``bpf_socket_events`` -> Network Activity, ``file_events`` (FIM) ->
File System Activity. The table is found from the query ``name`` (it must contain the table
name), else from the row's columns. Rows of other queries are skipped and counted, and so are
``removed`` rows: for an events table, "removed" only means a row left the previous result
set; nothing happened on the host.

Workload: an EC2 instance when an instance id is known (``hostIdentifier`` from
``--host_identifier=instance``, or an ``instance_id`` decoration), else the host
(``hostname`` decoration or ``hostIdentifier``). Account and region come from the context.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collectors.base import (
    MAX_LIST,
    MAX_LOG_EVENTS,
    Batch,
    Context,
    RecordError,
    Reject,
    as_int,
    basename,
    clip,
    cloud,
    compact_json,
    excerpt,
    ip_text,
    load_json,
    load_object,
    metadata,
    plausible_ms,
    raw_data,
)
from collectors.model import (
    Actor,
    File,
    FileActivity,
    Fingerprint,
    NetworkActivity,
    NetworkConnectionInfo,
    NetworkEndpoint,
    OcsfEvent,
    Process,
    ProcessActivity,
    User,
)
from collectors.workload import Workload, device_for

SOURCE = "osquery"
PRODUCT = "osquery"
VENDOR = "osquery"

# Table names a query name may contain, longest first so that a table whose name ends in
# another's (process_file_events, es_process_events) is not taken for it. None: not mapped.
TABLES: tuple[tuple[str, str | None], ...] = (
    ("es_process_file_events", None),
    ("process_file_events", None),
    ("es_process_events", None),
    ("bpf_process_events", "process"),
    ("bpf_socket_events", "socket"),
    ("process_events", "process"),
    ("socket_events", "socket"),
    ("file_events", "file"),
)
_TOP_LEVEL = frozenset(
    {
        "name",
        "hostIdentifier",
        "hostname",
        "calendarTime",
        "unixTime",
        "epoch",
        "counter",
        "numerics",
        "decorations",
        "columns",
        "action",
        "diffResults",
        "snapshot",
    }
)
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
_INSTANCE_KEYS = ("instance_id", "ec2_instance_id", "aws_instance_id")
_HOSTNAME_KEYS = ("hostname", "host_name", "local_hostname", "computer_name")
# FIM actions (osquery's inotify publisher, and FSEvents on macOS) -> File System Activity.
FILE_ACTIONS: dict[str, int] = {
    "CREATED": FileActivity.CREATE,
    "UPDATED": FileActivity.UPDATE,
    "DELETED": FileActivity.DELETE,
    "ATTRIBUTES_MODIFIED": FileActivity.SET_ATTRIBUTES,
    "MOVED_FROM": FileActivity.RENAME,
    "MOVED_TO": FileActivity.RENAME,
    "OPENED": FileActivity.OPEN,
    "ACCESSED": FileActivity.READ,
}
# socket_events action (or bpf_socket_events syscall) -> (activity_id, direction_id)
SOCKET_ACTIONS: dict[str, tuple[int, int]] = {
    "connect": (NetworkActivity.OPEN, 2),
    "accept": (NetworkActivity.OPEN, 1),
    "accept4": (NetworkActivity.OPEN, 1),
    "bind": (NetworkActivity.LISTEN, 0),
}
_DIRECTIONS = {0: "Unknown", 1: "Inbound", 2: "Outbound"}
_FAMILIES = {"2": 4, "10": 6, "30": 6}  # AF_INET; AF_INET6 on Linux and on macOS
_PROTOCOLS = {"6": "tcp", "17": "udp"}
_HASHES = (("md5", 1, "MD5"), ("sha1", 2, "SHA-1"), ("sha256", 3, "SHA-256"))
_AUID_UNSET = 4294967295


class _Skip(Exception):
    """A row that is fine but not one we map (the message says why, for debugging)."""


def _canon(value: Any) -> str | None:
    """A column value as osquery writes it without --logger_numerics (a string)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return compact_json(value)


def table_of(name: str, columns: dict[str, Any] | None = None) -> tuple[str | None, str | None]:
    """(table, kind) for a query: from its name, else from the shape of a row."""
    lowered = name.lower()
    for table, kind in TABLES:
        start = lowered.find(table)
        while start != -1:
            end = start + len(table)
            before = lowered[start - 1] if start else ""
            after = lowered[end] if end < len(lowered) else ""
            if not before.isalnum() and not after.isalnum():
                return table, kind
            start = lowered.find(table, start + 1)
    if columns is not None:
        keys = set(columns)
        if {"target_path", "action"} <= keys:
            return "file_events", "file"
        if {"pid", "path", "cmdline", "time"} <= keys:
            return "process_events", "process"
        if {"remote_address", "time"} <= keys and ({"action", "syscall"} & keys):
            return "socket_events", "socket"
    return None, None


@dataclass(slots=True)
class _Host:
    workload: Workload
    name: str
    identifier: str
    calendar: str | None
    unix_ms: int | None
    epoch: int | None
    counter: int | None
    decorations: dict[str, str]
    envelope: dict[str, Any]  # the record without its rows, for each row's raw_data


def _text(value: Any, limit: int = 8192) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = _canon(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return clip(value, limit)


def _int(row: dict[str, Any], key: str) -> int | None:
    """An integer column (string or number); absent or empty -> None; garbage -> reject."""
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return as_int(value, key)


def _calendar_ms(text: Any) -> int | None:
    """osquery's calendarTime: 'Tue Sep 30 17:37:30 2014 UTC' (the zone may be absent)."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    parts = text.split()
    if len(parts) == 6:
        parts = parts[:5]
    try:
        dt = datetime.strptime(" ".join(parts), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError:
        return None
    return plausible_ms(int(dt.timestamp()) * 1000)


def _ip(value: Any) -> str | None:
    return ip_text(_text(value, 64))


def _host(record: dict[str, Any], ctx: Context) -> _Host:
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RecordError("no query name (`name`)")
    decorations_raw = record.get("decorations")
    if decorations_raw is None:
        decorations_raw = {}
    if not isinstance(decorations_raw, dict):
        raise RecordError("decorations: expected an object")
    # --decorations_top_level puts them beside the legacy fields
    extra = {k: v for k, v in record.items() if k not in _TOP_LEVEL}
    merged = {**extra, **decorations_raw}
    if len(merged) > MAX_LIST:
        raise RecordError(f"{len(merged)} decorations, over the {MAX_LIST} limit")
    decorations = {clip(k, 256): t for k, v in merged.items() if (t := _text(v, 1024))}
    identifier = _text(record.get("hostIdentifier"), 256) or _text(record.get("hostname"), 256)
    instance = next(
        (decorations[k] for k in _INSTANCE_KEYS if _INSTANCE_ID.match(decorations.get(k, ""))),
        identifier if identifier and _INSTANCE_ID.match(identifier) else None,
    )
    hostname = next((decorations[k] for k in _HOSTNAME_KEYS if k in decorations), None)
    if hostname is None and identifier and identifier != instance:
        hostname = identifier
    if instance:
        w = Workload(
            "ec2",
            instance,
            name=hostname or instance,
            account=ctx.account,
            region=ctx.region,
            hostname=hostname,
            instance_id=instance,
        )
    elif hostname:
        w = Workload(
            "host",
            hostname,
            name=hostname,
            account=ctx.account,
            region=ctx.region,
            hostname=hostname,
        )
    else:
        raise RecordError("no host identity: no hostIdentifier, hostname or instance_id")
    unix = record.get("unixTime")
    try:
        unix_ms = plausible_ms(as_int(unix, "unixTime") * 1000) if unix is not None else None
    except RecordError:
        raise RecordError("unixTime: expected a number") from None
    calendar = record.get("calendarTime")

    def opt_int(key: str) -> int | None:
        try:
            return as_int(record[key], key) if record.get(key) is not None else None
        except RecordError:
            return None

    envelope: dict[str, Any] = {
        k: record[k]
        for k in ("name", "hostIdentifier", "calendarTime", "unixTime", "epoch", "counter")
        if k in record
    }
    if decorations_raw:
        envelope["decorations"] = decorations_raw
    return _Host(
        workload=w,
        name=clip(name.strip(), 512),
        identifier=identifier or instance or "",
        calendar=clip(calendar, 64) if isinstance(calendar, str) else None,
        unix_ms=unix_ms or _calendar_ms(calendar),
        epoch=opt_int("epoch"),
        counter=opt_int("counter"),
        decorations=decorations,
        envelope=envelope,
    )


def _rows(record: dict[str, Any]) -> tuple[list[tuple[str, str, Any]], int]:
    """([(where, action, row)], rows skipped as removed)."""
    if "columns" in record:
        action = record.get("action", "added")
        if action not in ("added", "removed", "snapshot"):
            raise RecordError(f"action: expected added or removed, got {clip(repr(action), 40)}")
        if action == "removed":
            return [], 1
        return [("columns", str(action), record["columns"])], 0
    if "diffResults" in record:
        diff = record["diffResults"]
        if not isinstance(diff, dict):
            raise RecordError("diffResults: expected an object")
        added, removed = diff.get("added") or [], diff.get("removed") or []
        if not isinstance(added, list) or not isinstance(removed, list):
            raise RecordError("diffResults: added and removed must be lists")
        if len(added) + len(removed) > MAX_LOG_EVENTS:
            raise RecordError(f"{len(added) + len(removed)} rows, over {MAX_LOG_EVENTS}")
        return [(f"diffResults.added[{i}]", "added", r) for i, r in enumerate(added)], len(removed)
    if "snapshot" in record:
        rows = record["snapshot"]
        if not isinstance(rows, list):
            raise RecordError("snapshot: expected a list of rows")
        if len(rows) > MAX_LOG_EVENTS:
            raise RecordError(f"{len(rows)} rows, over {MAX_LOG_EVENTS}")
        return [(f"snapshot[{i}]", "snapshot", r) for i, r in enumerate(rows)], 0
    raise RecordError("no rows: expected columns, diffResults or snapshot")


def matches(record: Any) -> bool:
    """An osquery results-log line (differential, batch or snapshot)."""
    try:
        if isinstance(record, str) and record.lstrip().startswith("{"):
            record = load_json(record)
        if not isinstance(record, dict) or not isinstance(record.get("name"), str):
            return False
        if not any(k in record for k in ("hostIdentifier", "calendarTime", "unixTime")):
            return False
        if isinstance(record.get("columns"), dict):
            return record.get("action") in ("added", "removed", "snapshot")
        return isinstance(record.get("diffResults"), dict) or isinstance(
            record.get("snapshot"), list
        )
    except Exception:  # matches() answers, it never fails
        return False


# -- rows ------------------------------------------------------------------------------------


def _process_row(row: dict[str, Any], table: str) -> tuple[Any, dict[str, Any]]:
    pid = _int(row, "pid")
    path, cmd = _text(row.get("path")), _text(row.get("cmdline"))
    if pid is None:
        if path or cmd:
            raise RecordError(f"{table} row without a pid")
        raise _Skip("no process columns")
    parent = _int(row, "parent")
    uid, euid, auid = _int(row, "uid"), _int(row, "euid"), _int(row, "auid")
    effective = euid if euid is not None else uid  # the user the process acts as
    user = User(uid=str(effective)) if effective is not None else None
    parent_process = Process(pid=parent) if parent is not None and parent > 0 else None
    process = Process(
        pid=pid,
        name=basename(path) if path else None,
        cmd_line=cmd,
        file=File(name=basename(path), path=path) if path else None,
        working_directory=_text(row.get("cwd")),
        user=user,
        parent_process=parent_process,
    )
    if parent_process is not None:
        actor = Actor(process=parent_process)
    elif auid is not None and auid != _AUID_UNSET:
        actor = Actor(user=User(uid=str(auid)))
    else:
        actor = Actor(process=process)
    syscall = (_text(row.get("syscall")) or "").lower()
    launch = 2 if syscall in ("fork", "vfork", "clone", "clone3") else 3 if syscall else None
    extra: dict[str, Any] = {"actor": actor, "process": process, "launch_type_id": launch}
    exit_code = _int(row, "exit_code")  # bpf_process_events: the exec syscall's result
    if exit_code is not None:
        extra["status_id"] = 1 if exit_code == 0 else 2
    return ProcessActivity, {"activity_id": ProcessActivity.LAUNCH, **extra}


def _socket_row(row: dict[str, Any], table: str) -> tuple[Any, dict[str, Any]]:
    action = (_text(row.get("action")) or _text(row.get("syscall")) or "").lower()
    family = _canon(row.get("family"))
    if family == "1":
        raise _Skip("a UNIX domain socket")
    remote, local = _ip(row.get("remote_address")), _ip(row.get("local_address"))
    if not remote and not local:
        if any(_text(row.get(k)) for k in ("remote_address", "local_address")):
            raise RecordError(f"{table} row: addresses are not IP addresses")
        raise _Skip("no addresses")
    rport, lport = _int(row, "remote_port"), _int(row, "local_port")
    for port in (rport, lport):
        if port is not None and not 0 <= port <= 65535:
            raise RecordError(f"{table} row: port {port} out of range")
    remote_ep = NetworkEndpoint(ip=remote, port=rport) if remote else None
    local_ep = NetworkEndpoint(ip=local, port=lport or None) if local else None
    activity, direction = SOCKET_ACTIONS.get(action, (99, 0))
    if action == "bind":
        src, dst = None, local_ep
    elif direction == 1:
        src, dst = remote_ep, local_ep
    else:
        src, dst = local_ep, remote_ep
    if src is None and dst is None:
        raise _Skip("no endpoint for this action")
    pid, path = _int(row, "pid"), _text(row.get("path"))
    actor = None
    if pid is not None:
        actor = Actor(
            process=Process(
                pid=pid,
                name=basename(path) if path else None,
                file=File(name=basename(path), path=path) if path else None,
            )
        )
    proto = _PROTOCOLS.get(_canon(row.get("protocol")) or "")
    extra: dict[str, Any] = {
        "activity_id": activity,
        "actor": actor,
        "src_endpoint": src,
        "dst_endpoint": dst,
        "connection_info": NetworkConnectionInfo(
            direction_id=direction,
            direction=_DIRECTIONS[direction],
            protocol_name=proto,
            protocol_num={"tcp": 6, "udp": 17}.get(proto or ""),
            protocol_ver_id=_FAMILIES.get(family or ""),
        ),
    }
    status, success = _text(row.get("status")), _canon(row.get("success"))
    if status == "succeeded" or success == "1":
        extra["status_id"] = 1
    elif status == "failed" or success == "0":
        extra["status_id"] = 2
    return NetworkActivity, extra


def _file_row(row: dict[str, Any], table: str) -> tuple[Any, dict[str, Any]]:
    path = _text(row.get("target_path"))
    if path is None:
        raise _Skip("no target_path")
    action = (_text(row.get("action"), 64) or "").upper()
    file = File(name=basename(path), path=path, type_id=2 if path.endswith("/") else 1)
    if "/" in path.rstrip("/")[1:]:
        file.parent_folder = path.rstrip("/").rsplit("/", 1)[0]
    hashes = [
        Fingerprint(algorithm_id=alg, algorithm=label, value=value)
        for col, alg, label in _HASHES
        if (value := _text(row.get(col), 128))
    ]
    file.hashes = hashes or None
    size, inode, owner = _int(row, "size"), _int(row, "inode"), _int(row, "uid")
    file.size = size
    file.uid = str(inode) if inode else None
    file.owner = User(uid=str(owner)) if owner is not None else None
    mtime = _int(row, "mtime")
    file.modified_time = plausible_ms(mtime * 1000) if mtime is not None else None
    return FileActivity, {
        "activity_id": FILE_ACTIONS.get(action, 99),
        # inotify/FSEvents say what changed, not who changed it: OCSF needs an actor.
        "actor": Actor(app_name="unknown"),
        "file": file,
    }


_MAPPERS = {"process": _process_row, "socket": _socket_row, "file": _file_row}
_MAPPED_COLUMNS = {
    "process": {
        "pid",
        "path",
        "cmdline",
        "cwd",
        "uid",
        "euid",
        "auid",
        "parent",
        "time",
        "syscall",
        "exit_code",
    },
    "socket": {
        "action",
        "syscall",
        "family",
        "remote_address",
        "local_address",
        "remote_port",
        "local_port",
        "pid",
        "path",
        "protocol",
        "status",
        "success",
        "time",
    },
    "file": {
        "target_path",
        "action",
        "md5",
        "sha1",
        "sha256",
        "size",
        "inode",
        "uid",
        "mtime",
        "time",
    },
}


def _row_kind(name: str, row: Any) -> tuple[str, str]:
    if not isinstance(row, dict):
        raise RecordError("row is not an object")
    if len(row) > MAX_LIST:
        raise RecordError(f"row has {len(row)} columns, over the {MAX_LIST} limit")
    table, kind = table_of(name, row)
    if table is None or kind is None:
        raise _Skip(f"query {name!r} is not a mapped table")
    return table, kind


def _row_event(host: _Host, action: str, row: dict[str, Any], ctx: Context) -> OcsfEvent:
    table, kind = _row_kind(host.name, row)
    cls, fields = _MAPPERS[kind](row, table)
    row_time = _int(row, "time")
    time_ms = (plausible_ms(row_time * 1000) if row_time is not None else None) or host.unix_ms
    if time_ms is None:
        raise RecordError("no usable time (time column, unixTime or calendarTime)")
    canon = {k: _canon(v) for k, v in row.items()}
    uid = hashlib.sha256(
        compact_json([host.identifier, host.name, sorted(canon.items())]).encode("utf-8", "replace")
    ).hexdigest()[:32]
    raw, cut = raw_data(compact_json({**host.envelope, "columns": row, "action": action}))
    unmapped: dict[str, Any] = {
        "query": host.name,
        "table": table,
        "action": action,
        "epoch": host.epoch,
        "counter": host.counter,
        "decorations": host.decorations or None,
        "columns": {
            clip(k, 256): clip(v)
            for k, v in canon.items()
            if k not in _MAPPED_COLUMNS[kind] and v not in (None, "")
        }
        or None,
    }
    version = host.decorations.get("osquery_version") or host.decorations.get("version")
    device = device_for(host.workload)
    meta = metadata(
        PRODUCT,
        VENDOR,
        version=clip(version, 64) if version else None,
        uid=uid,
        original_time=host.calendar,
        logged_time=host.unix_ms,
        log_name=host.name,
        event_code=table,
        is_truncated=True if cut else None,
    )
    event: OcsfEvent = cls(
        time=time_ms,
        metadata=meta,
        cloud=cloud(ctx.account, ctx.region),
        device=device,
        raw_data=raw,
        unmapped={k: v for k, v in unmapped.items() if v is not None},
        **fields,
    )
    return event


def normalize(record: Any, ctx: Context) -> Batch:
    """One results-log line -> activity events (removed and unmapped rows skipped)."""
    batch = Batch()
    try:
        value, _text = load_object(record)
        name = value.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RecordError("no query name (`name`)")
        rows, removed = _rows(value)
    except RecordError as exc:
        batch.rejects.append(Reject(SOURCE, str(exc), excerpt(record), ctx.origin))
        return batch
    batch.skipped += removed
    host: _Host | None = None
    for where, action, row in rows:
        try:
            _row_kind(name, row)  # skip what is not ours before asking who the host is
            if host is None:
                try:
                    host = _host(value, ctx)
                except RecordError as exc:  # the whole record: no host to put events on
                    batch.rejects.append(Reject(SOURCE, str(exc), excerpt(value), ctx.origin))
                    return batch
            batch.events.append(_row_event(host, action, row, ctx))
        except _Skip:
            batch.skipped += 1
        except RecordError as exc:
            batch.rejects.append(Reject(SOURCE, str(exc), excerpt(row), where))
        except Exception as exc:  # a bug must not lose the other rows: say so
            reason = f"internal error: {type(exc).__name__}: {clip(str(exc), 200)}"
            batch.rejects.append(Reject(SOURCE, reason, excerpt(row), where))
    return batch
