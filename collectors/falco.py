"""Falco alerts: a Detection Finding per alert, plus the activity the alert describes.

Forms read (field names and examples: ``docs/collectors/falco.md``):

* Falco's JSON output (``json_output: true``): ``time`` (RFC 3339, nanoseconds), ``rule``,
  ``priority``, ``source``, ``hostname``, ``output``, ``output_fields``, ``tags``;
* falcosidekick's JSON body (the same object plus ``uuid``), as posted to webhooks or
  written to SQS, Lambda, Kinesis, S3 or CloudWatch Logs;
* falcosidekick's SNS form: the ``Message`` is only the text ``output`` and the rule,
  priority, source, tags, hostname and every output field travel as message attributes
  (``[``/``]`` in field names become ``.``/nothing), delivered as an SNS notification, an
  SNS Lambda event (``Records[].Sns``), or an SQS message or Lambda SQS event whose body is
  the notification (or, with raw message delivery, the text with SQS message attributes);
  with falcosidekick's ``rawjson`` option the ``Message`` is the JSON body instead.

A Falco alert is a detection by someone else's rule, so it becomes a Detection Finding
(title and analytic name = the rule, severity from the priority, ATT&CK from the
``mitre_*``/``T####`` tags). When the output fields describe an activity (a process
launched, a file opened or changed, a connection), the matching activity event is emitted
too, with the same ``metadata.correlation_uid`` as the finding and listed in its
``finding_info.related_events``, so that detections can correlate it with other sources.

The workload is the Kubernetes pod (``k8s.ns.name``/``k8s.pod.name``), else the container
(``container.id`` other than ``host``), else the host (``hostname``). Account and region
come from the context: Falco does not know them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
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
    rfc3339_ms,
)
from collectors.model import (
    Actor,
    Analytic,
    Attack,
    Container,
    DetectionFinding,
    Device,
    File,
    FileActivity,
    FindingInfo,
    NetworkActivity,
    NetworkConnectionInfo,
    NetworkEndpoint,
    OcsfEvent,
    Process,
    ProcessActivity,
    RelatedEvent,
    Tactic,
    Technique,
    User,
)
from collectors.workload import Workload, device_for

SOURCE = "falco"
PRODUCT = "Falco"
VENDOR = "Falcosecurity"  # as falcosidekick's own OCSF (Security Lake) output names it

# Falco priority -> OCSF severity_id. Falco's three top levels are all Critical: OCSF's
# "Fatal" (6) means the reporting system itself failed, which an alert never says.
SEVERITY: dict[str, int] = {
    "emergency": 5,
    "alert": 5,
    "critical": 5,
    "error": 4,
    "warning": 3,
    "notice": 2,
    "informational": 1,
    "info": 1,
    "debug": 1,
}

# Falco's mitre_* tags -> ATT&CK tactics (ids from attack.mitre.org).
TACTICS: dict[str, tuple[str, str]] = {
    "mitre_reconnaissance": ("TA0043", "Reconnaissance"),
    "mitre_resource_development": ("TA0042", "Resource Development"),
    "mitre_initial_access": ("TA0001", "Initial Access"),
    "mitre_execution": ("TA0002", "Execution"),
    "mitre_persistence": ("TA0003", "Persistence"),
    "mitre_privilege_escalation": ("TA0004", "Privilege Escalation"),
    "mitre_defense_evasion": ("TA0005", "Defense Evasion"),
    "mitre_credential_access": ("TA0006", "Credential Access"),
    "mitre_discovery": ("TA0007", "Discovery"),
    "mitre_lateral_movement": ("TA0008", "Lateral Movement"),
    "mitre_collection": ("TA0009", "Collection"),
    "mitre_command_and_control": ("TA0011", "Command and Control"),
    "mitre_exfiltration": ("TA0010", "Exfiltration"),
    "mitre_impact": ("TA0040", "Impact"),
}
_TECHNIQUE = re.compile(r"^(T\d{4})(\.\d{3})?$", re.IGNORECASE)

# What Falco prints for a field it has no value for.
_MISSING = frozenset({"", "<NA>", "N/A", "<N/A>"})

# evt.type -> activity. Only a launch is mapped for processes: for other process syscalls
# (ptrace, setuid...) Falco's proc.* fields do not say which process was acted upon.
_PROCESS_EVT: dict[str, int] = {
    "execve": ProcessActivity.LAUNCH,
    "execveat": ProcessActivity.LAUNCH,
}
_OPEN = -1  # decided by the open flags
_FILE_EVT: dict[str, int] = {
    "open": _OPEN,
    "openat": _OPEN,
    "openat2": _OPEN,
    "open_by_handle_at": _OPEN,
    "creat": FileActivity.CREATE,
    "mkdir": FileActivity.CREATE,
    "mkdirat": FileActivity.CREATE,
    "symlink": FileActivity.CREATE,
    "symlinkat": FileActivity.CREATE,
    "link": FileActivity.CREATE,
    "linkat": FileActivity.CREATE,
    "unlink": FileActivity.DELETE,
    "unlinkat": FileActivity.DELETE,
    "rmdir": FileActivity.DELETE,
    "rename": FileActivity.RENAME,
    "renameat": FileActivity.RENAME,
    "renameat2": FileActivity.RENAME,
    "truncate": FileActivity.UPDATE,
    "ftruncate": FileActivity.UPDATE,
    "chmod": FileActivity.SET_SECURITY,
    "fchmod": FileActivity.SET_SECURITY,
    "fchmodat": FileActivity.SET_SECURITY,
    "chown": FileActivity.SET_SECURITY,
    "fchown": FileActivity.SET_SECURITY,
    "fchownat": FileActivity.SET_SECURITY,
    "lchown": FileActivity.SET_SECURITY,
}
# Network activity ids: 1 Open, 2 Close, 6 Traffic, 7 Listen; direction 1 in, 2 out.
_NET_EVT: dict[str, tuple[int, int]] = {
    "connect": (NetworkActivity.OPEN, 2),
    "accept": (NetworkActivity.OPEN, 1),
    "accept4": (NetworkActivity.OPEN, 1),
    "listen": (NetworkActivity.LISTEN, 0),
    "bind": (NetworkActivity.LISTEN, 0),
    "close": (2, 0),
}
_DIRECTIONS = {0: "Unknown", 1: "Inbound", 2: "Outbound"}
_FD_NAME = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})->(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$")
_TRANSPORT_ATTRS = frozenset({"priority", "rule", "source", "tags", "hostname"})


# -- small readers ---------------------------------------------------------------------------


def _ns_ms(value: Any) -> int | None:
    """Epoch ms from Falco's nanosecond counters (number or digit string)."""
    try:
        return plausible_ms(as_int(value, "time") // 1_000_000)
    except RecordError:
        return None


def _stable_uid(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _text(value: Any) -> str | None:
    """A present, non-placeholder string (numbers accepted: SNS may carry either)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or value.strip() in _MISSING:
        return None
    return clip(value)


def _num(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() in _MISSING):
        return None
    try:
        return as_int(value, "number")
    except RecordError:
        return None


def _port(value: Any) -> int | None:
    n = _num(value)
    return n if n is not None and 0 <= n <= 65535 else None


def _ip(value: Any) -> str | None:
    return ip_text(_text(value))


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# -- the alert, whatever form it came in -----------------------------------------------------


@dataclass(slots=True)
class _Alert:
    rule: str
    priority: str
    output: str | None
    fields: dict[str, Any]
    source: str
    tags: list[str]
    hostname: str | None
    uuid: str | None
    time_ms: int
    original_time: str | None
    raw: str
    transport: dict[str, Any] = field(default_factory=dict)
    provider: str | None = None


def _is_payload(d: dict[str, Any]) -> bool:
    return (
        isinstance(d.get("rule"), str)
        and isinstance(d.get("priority"), str)
        and d["priority"].lower() in SEVERITY
        and (isinstance(d.get("output_fields"), dict) or isinstance(d.get("output"), str))
    )


def _json_text(text: Any) -> Any:
    if isinstance(text, str) and text.lstrip().startswith("{"):
        try:
            return load_json(text)
        except RecordError:
            return None
    return None


def _attrs(raw: Any) -> dict[str, tuple[str, str]] | None:
    """SNS/SQS message attributes as name -> (data type, value); None if not attributes."""
    if not isinstance(raw, dict):
        return None
    if len(raw) > MAX_LIST:
        raise RecordError(f"{len(raw)} message attributes, over the {MAX_LIST} limit")
    out: dict[str, tuple[str, str]] = {}
    for name, attr in raw.items():
        if not isinstance(attr, dict):
            continue
        kind = attr.get("Type", attr.get("DataType", attr.get("dataType")))
        value = attr.get("Value", attr.get("StringValue", attr.get("stringValue")))
        if isinstance(kind, str) and isinstance(value, str):
            out[name] = (kind, value)
    return out


def _sns_is_falco(sns: dict[str, Any]) -> bool:
    inner = _json_text(sns.get("Message"))
    if isinstance(inner, dict):
        return _is_payload(inner)
    attrs = _attrs(sns.get("MessageAttributes")) or {}
    return isinstance(sns.get("Message"), str) and _attrs_are_falco(attrs)


def _attrs_are_falco(attrs: dict[str, tuple[str, str]]) -> bool:
    prio = attrs.get("priority")
    return "rule" in attrs and prio is not None and prio[1].lower() in SEVERITY


def _sqs_is_falco(body: Any, attrs: Any) -> bool:
    inner = _json_text(body)
    if isinstance(inner, dict):
        if inner.get("Type") == "Notification":
            return _sns_is_falco(inner)
        return _is_payload(inner)
    return isinstance(body, str) and _attrs_are_falco(_attrs(attrs) or {})


def matches(record: Any) -> bool:
    """Falco JSON, falcosidekick JSON, or falcosidekick's SNS/SQS forms of them."""
    try:
        if isinstance(record, str | bytes):
            text = record.decode("utf-8", "replace") if isinstance(record, bytes) else record
            record = _json_text(text)
        if not isinstance(record, dict):
            return False
        if _is_payload(record):
            return True
        if record.get("Type") == "Notification":
            return _sns_is_falco(record)
        if "Body" in record and "MessageId" in record:  # an SQS message (ReceiveMessage)
            return _sqs_is_falco(record.get("Body"), record.get("MessageAttributes"))
        records = record.get("Records")
        if isinstance(records, list) and records:
            for rec in records[:10]:
                if not isinstance(rec, dict):
                    continue
                sns = rec.get("Sns")
                if isinstance(sns, dict) and _sns_is_falco(sns):
                    return True
                if rec.get("eventSource") == "aws:sqs" and _sqs_is_falco(
                    rec.get("body"), rec.get("messageAttributes")
                ):
                    return True
        return False
    except Exception:  # matches() answers, it never fails
        return False


# -- unwrapping the delivery forms -----------------------------------------------------------


def _from_payload(
    p: dict[str, Any], raw: str, *, fallback_ms: int | None, transport: dict[str, Any]
) -> _Alert:
    rule = p.get("rule")
    if not isinstance(rule, str) or not rule.strip():
        raise RecordError("no rule name (`rule`)")
    priority = p.get("priority", "")
    if not isinstance(priority, str):
        raise RecordError("priority: expected a string")
    fields = p.get("output_fields")
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise RecordError("output_fields: expected an object")
    if len(fields) > MAX_LIST:
        raise RecordError(f"output_fields has {len(fields)} fields, over the {MAX_LIST} limit")
    output = p.get("output")
    if output is not None and not isinstance(output, str):
        raise RecordError("output: expected a string")
    tags = p.get("tags")
    if tags is None:
        tags = []
    if not isinstance(tags, list):
        raise RecordError("tags: expected a list")
    source = p.get("source") or "syscall"
    if not isinstance(source, str):
        raise RecordError("source: expected a string")
    hostname = _text(p.get("hostname")) or _text(fields.get("evt.hostname"))
    uuid = _text(p.get("uuid"))
    original = p.get("time") if isinstance(p.get("time"), str) else None
    time_ms = (
        rfc3339_ms(original)
        or _ns_ms(fields.get("evt.rawtime"))
        or _ns_ms(fields.get("evt.time"))
        or rfc3339_ms(fields.get("evt.time.iso8601"))
        or plausible_ms(fallback_ms)
    )
    if time_ms is None:
        raise RecordError("no usable time (`time`, evt.time or a delivery timestamp)")
    provider = "falcosidekick" if uuid or transport else None
    return _Alert(
        rule=clip(rule.strip(), 512),
        priority=priority,
        output=clip(output) if output else None,
        fields=fields,
        source=clip(source, 64),
        tags=[clip(t, 128) for t in tags[:MAX_LIST] if isinstance(t, str)],
        hostname=hostname,
        uuid=uuid,
        time_ms=time_ms,
        original_time=clip(original, 64) if original else None,
        raw=raw,
        transport=transport,
        provider=provider,
    )


def _attr_value(kind: str, value: str) -> Any:
    if kind.startswith("Number"):
        try:
            return as_int(value, "attribute")
        except RecordError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _from_text(
    message: str,
    attrs: dict[str, tuple[str, str]],
    raw: str,
    *,
    fallback_ms: int | None,
    transport: dict[str, Any],
) -> _Alert:
    """falcosidekick's SNS form: the text output, everything else in message attributes."""
    if "rule" not in attrs:
        raise RecordError("SNS message without a `rule` message attribute")
    fields = {
        name: _attr_value(kind, value)
        for name, (kind, value) in attrs.items()
        if name not in _TRANSPORT_ATTRS
    }
    payload: dict[str, Any] = {
        "rule": attrs["rule"][1],
        "priority": attrs.get("priority", ("String", ""))[1],
        "source": attrs.get("source", ("String", "syscall"))[1] or "syscall",
        "output": message,
        "output_fields": fields,
        "tags": [t for t in attrs.get("tags", ("String", ""))[1].split(",") if t],
    }
    if "hostname" in attrs:
        payload["hostname"] = attrs["hostname"][1]
    return _from_payload(payload, raw, fallback_ms=fallback_ms, transport=transport)


def _from_sns(sns: dict[str, Any], raw: str, received: int | None) -> _Alert:
    message = sns.get("Message")
    if not isinstance(message, str):
        raise RecordError("SNS notification without a `Message` text")
    sent = rfc3339_ms(sns.get("Timestamp")) or received
    transport: dict[str, Any] = {"delivery": "sns"}
    if isinstance(sns.get("MessageId"), str):
        transport["sns_message_id"] = clip(sns["MessageId"], 128)
    if isinstance(sns.get("TopicArn"), str):
        transport["sns_topic_arn"] = clip(sns["TopicArn"], 256)
    inner = _json_text(message)
    if isinstance(inner, dict):  # falcosidekick's `rawjson: true`
        return _from_payload(inner, raw, fallback_ms=sent, transport=transport)
    attrs = _attrs(sns.get("MessageAttributes"))
    if attrs is None:
        raise RecordError("SNS notification: text message without MessageAttributes")
    return _from_text(message, attrs, raw, fallback_ms=sent, transport=transport)


def _from_sqs(msg: tuple[Any, Any, Any, Any], raw: str, received: int | None) -> _Alert:
    """An SQS message: (body, message attributes, SentTimestamp, message id)."""
    body, attrs_raw, sent, msg_id = msg
    if not isinstance(body, str):
        raise RecordError("SQS message without a text body")
    sent_ms = plausible_ms(_num(sent)) or received
    transport: dict[str, Any] = {"delivery": "sqs"}
    if isinstance(msg_id, str):
        transport["sqs_message_id"] = clip(msg_id, 128)
    inner = _json_text(body)
    if isinstance(inner, dict):
        if inner.get("Type") == "Notification":
            return _from_sns(inner, raw, received)
        return _from_payload(inner, raw, fallback_ms=sent_ms, transport=transport)
    attrs = _attrs(attrs_raw)
    if not attrs:
        raise RecordError("SQS message: neither JSON nor falcosidekick message attributes")
    return _from_text(body, attrs, raw, fallback_ms=sent_ms, transport=transport)


def _unwrap(
    record: dict[str, Any], raw: str, received: int | None
) -> list[tuple[str, _Alert | RecordError]]:
    """(where, alert or why not) for every alert the record carries."""

    def one(fn: Any, *args: Any) -> _Alert | RecordError:
        try:
            alert: _Alert = fn(*args)
            return alert
        except RecordError as exc:
            return exc

    if "rule" in record or "output_fields" in record:
        return [("", one(_from_payload_plain, record, raw, received))]
    if record.get("Type") == "Notification":
        return [("", one(_from_sns, record, raw, received))]
    if "Body" in record and "MessageId" in record:
        attributes = record.get("Attributes")
        sent = attributes.get("SentTimestamp") if isinstance(attributes, dict) else None
        msg = (record.get("Body"), record.get("MessageAttributes"), sent, record["MessageId"])
        return [("", one(_from_sqs, msg, raw, received))]
    records = record.get("Records")
    if isinstance(records, list):
        if not records:
            return [("Records", RecordError("empty Records list"))]
        if len(records) > MAX_LOG_EVENTS:
            return [("Records", RecordError(f"{len(records)} records, over {MAX_LOG_EVENTS}"))]
        out: list[tuple[str, _Alert | RecordError]] = []
        for i, rec in enumerate(records):
            where = f"Records[{i}]"
            rec_raw = compact_json(rec)
            if not isinstance(rec, dict):
                out.append((where, RecordError("record is not an object")))
            elif isinstance(rec.get("Sns"), dict):
                out.append((where, one(_from_sns, rec["Sns"], rec_raw, received)))
            elif rec.get("eventSource") == "aws:sqs":
                attrs = rec.get("attributes")
                sent = attrs.get("SentTimestamp") if isinstance(attrs, dict) else None
                msg = (rec.get("body"), rec.get("messageAttributes"), sent, rec.get("messageId"))
                out.append((where, one(_from_sqs, msg, rec_raw, received)))
            else:
                out.append((where, RecordError("neither an SNS nor an SQS record")))
        return out
    return [("", RecordError("not a Falco alert: no `rule`, SNS notification or Records"))]


def _from_payload_plain(record: dict[str, Any], raw: str, received: int | None) -> _Alert:
    return _from_payload(record, raw, fallback_ms=received, transport={})


# -- mapping ---------------------------------------------------------------------------------


def _workload(a: _Alert, ctx: Context) -> Workload | None:
    f = a.fields
    cid = _text(f.get("container.id"))
    if cid == "host":
        cid = None
    cname = _text(f.get("container.name"))
    if cname == "host":
        cname = None
    repo = _text(f.get("container.image.repository"))
    tag = _text(f.get("container.image.tag"))
    image = _text(f.get("container.image")) or (f"{repo}:{tag}" if repo and tag else repo)
    common: dict[str, Any] = {
        "account": ctx.account,
        "region": ctx.region,
        "hostname": a.hostname,
        "container_id": cid,
        "container_name": cname,
        "image": image,
    }
    ns, pod = _text(f.get("k8s.ns.name")), _text(f.get("k8s.pod.name"))
    if ns and pod and a.source == "syscall":
        return Workload("k8s-pod", f"{ns}/{pod}", name=pod, **common)
    if cid and a.source == "syscall":
        return Workload("container", cid, name=cname or cid, **common)
    if a.hostname and a.source == "syscall":
        return Workload("host", a.hostname, name=a.hostname, **common)
    return None


def _device(w: Workload, f: dict[str, Any]) -> Device:
    device = device_for(w)
    image = device.container.image if device.container else None
    if image is not None and image.uid in (None, image.name):  # prefer a digest to the name
        image.uid = (
            _text(f.get("container.image.digest"))
            or _text(f.get("container.image.id"))
            or image.name
        )
    return device


def _user(f: dict[str, Any]) -> User | None:
    name, uid = _text(f.get("user.name")), _num(f.get("user.uid"))
    if name is None and uid is None:
        return None
    return User(name=name, uid=str(uid) if uid is not None else None)


def _process(a: _Alert, uid_base: str, w: Workload | None) -> Process | None:
    f = a.fields
    pid = _num(f.get("proc.pid"))
    exe = _text(f.get("proc.exepath")) or _text(f.get("proc.exe"))
    name = _text(f.get("proc.name"))
    cmd = _text(f.get("proc.cmdline"))
    if pid is None and not (exe or name or cmd):
        return None
    parent = None
    ppid, pname = _num(f.get("proc.ppid")), _text(f.get("proc.pname"))
    pexe = _text(f.get("proc.pexepath")) or _text(f.get("proc.pexe"))
    pcmd = _text(f.get("proc.pcmdline"))
    if ppid is not None or pname or pcmd:
        parent = Process(
            pid=ppid,
            uid=None if ppid is not None else f"{uid_base}:parent",
            name=clip(pname, 256) if pname else None,
            cmd_line=pcmd,
            file=File(name=basename(pexe), path=pexe) if pexe and pexe.startswith("/") else None,
        )
    container = None
    if w is not None and w.container_id:
        container = Container(uid=w.container_id, name=w.container_name)
    return Process(
        pid=pid,
        # Stock rule outputs carry no pid; OCSF needs pid or uid: an alert-scoped uid.
        uid=None if pid is not None else f"{uid_base}:process",
        name=clip(name, 256) if name else (basename(exe) if exe else None),
        cmd_line=cmd,
        file=File(name=basename(exe), path=exe) if exe and exe.startswith("/") else None,
        parent_process=parent,
        user=_user(f),
        working_directory=_text(f.get("proc.cwd")),
        container=container,
        namespace_pid=_num(f.get("proc.vpid")),
    )


def _endpoint(ip: str | None, port: int | None) -> NetworkEndpoint | None:
    return NetworkEndpoint(ip=ip, port=port) if ip else None


def _network(
    f: dict[str, Any], evt: str | None
) -> tuple[NetworkEndpoint | None, NetworkEndpoint | None, int, int] | None:
    """(src, dst, activity_id, direction_id) from the fd fields, or None if no socket."""
    activity, direction = _NET_EVT.get(evt or "", (NetworkActivity.TRAFFIC, 0))
    if evt is None:  # stock network rules fire on outbound connects
        activity, direction = NetworkActivity.OPEN, 2
    rip, lip = _ip(f.get("fd.rip")), _ip(f.get("fd.lip"))
    if rip or lip:
        remote = _endpoint(rip, _port(f.get("fd.rport")))
        local = _endpoint(lip, _port(f.get("fd.lport")))
        if direction == 1:
            return remote, local, activity, direction
        return local, remote, activity, direction
    name = _text(f.get("fd.name"))
    m = _FD_NAME.match(name) if name else None
    if m is not None:  # "client:port->server:port", whichever side this host is
        client = _endpoint(_ip(m.group(1)), _port(m.group(2)))
        server = _endpoint(_ip(m.group(3)), _port(m.group(4)))
        if client or server:
            return client, server, activity, direction
    sip, cip = _ip(f.get("fd.sip")), _ip(f.get("fd.cip"))
    if sip or cip:
        client = _endpoint(cip, _port(f.get("fd.cport")))
        server = _endpoint(sip, _port(f.get("fd.sport")))
        return client, server, activity, direction
    return None


def _file_activity(f: dict[str, Any], evt: str | None) -> tuple[File, File | None, int] | None:
    """(file, file_result, activity_id) when the alert is about a file."""
    if evt is not None and evt not in _FILE_EVT:
        return None
    kind = _FILE_EVT.get(evt or "", _OPEN)
    if kind == FileActivity.RENAME:
        old = _text(f.get("evt.arg.oldpath")) or _text(f.get("fs.path.source"))
        new = _text(f.get("evt.arg.newpath")) or _text(f.get("fs.path.target"))
        path, result = old or new, (new if old else None)
    else:
        fd_name = _text(f.get("fd.name"))
        fd_type = _text(f.get("fd.type")) or _text(f.get("fd.typechar"))
        if fd_type not in (None, "file", "f", "directory", "d"):
            fd_name = None
        path = (
            (fd_name if fd_name and fd_name.startswith("/") else None)
            or _text(f.get("fs.path.name"))
            or _text(f.get("evt.arg.path"))
            or _text(f.get("evt.arg.name"))
            or _text(f.get("evt.arg.filename"))
            or _text(f.get("evt.arg.linkpath"))
        )
        result = None
    if not path or not path.startswith("/"):
        return None
    if kind == _OPEN:
        flags = _text(f.get("evt.arg.flags")) or ""
        write = _truthy(f.get("evt.is_open_write")) or any(
            x in flags for x in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
        )
        if write:
            kind = FileActivity.CREATE if "O_CREAT" in flags else FileActivity.UPDATE
        elif _truthy(f.get("evt.is_open_read")) or "O_RDONLY" in flags:
            kind = FileActivity.READ
        else:
            kind = FileActivity.OPEN
    folder = evt in ("mkdir", "mkdirat", "rmdir")
    file = File(name=basename(path), path=path, type_id=2 if folder else 1)
    if "/" in path.rstrip("/")[1:]:
        file.parent_folder = path.rstrip("/").rsplit("/", 1)[0]
    res = File(name=basename(result), path=result) if result and result.startswith("/") else None
    return file, res, kind


def _attacks(tags: list[str]) -> list[Attack] | None:
    tactics = [TACTICS[t.lower()] for t in tags if t.lower() in TACTICS]
    techniques: list[tuple[str, str | None]] = []
    for t in tags:
        m = _TECHNIQUE.match(t.strip())
        if m is not None:
            base = m.group(1).upper()
            techniques.append((base, f"{base}{m.group(2)}" if m.group(2) else None))
    attacks: list[Attack] = []
    single = Tactic(uid=tactics[0][0], name=tactics[0][1]) if len(tactics) == 1 else None
    for base, sub in dict.fromkeys(techniques):
        attacks.append(
            Attack(
                technique=Technique(uid=base),
                sub_technique=Technique(uid=sub) if sub else None,
                tactic=single,
            )
        )
    if single is None or not attacks:  # tactics that no technique carries
        attacks.extend(Attack(tactic=Tactic(uid=u, name=n)) for u, n in dict.fromkeys(tactics))
    return attacks or None


def _bounded_fields(f: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in f.items():
        key = clip(k, 256)
        if v is None or isinstance(v, bool | int | float):
            out[key] = v
        elif isinstance(v, str):
            out[key] = clip(v)
        else:
            out[key] = clip(compact_json(v))
    return out


def _dump(obj: Any) -> dict[str, Any]:
    d: dict[str, Any] = obj.model_dump(mode="json", exclude_none=True, by_alias=True)
    return d


def _alert_events(a: _Alert, ctx: Context) -> list[OcsfEvent]:
    f = a.fields
    uid = a.uuid or _stable_uid(
        a.rule,
        a.time_ms,
        a.hostname,
        a.output,
        {k: None if v is None else str(v) for k, v in f.items()},
    )
    w = _workload(a, ctx)
    device = _device(w, f) if w else None
    raw, cut = raw_data(a.raw)
    evt = _text(f.get("evt.type"))
    evt = evt.lower() if evt else None
    process = _process(a, uid, w)
    user = _user(f)
    meta_common: dict[str, Any] = {
        "original_time": a.original_time,
        "correlation_uid": uid,
        "labels": a.tags or None,
        "log_provider": a.provider,
        "is_truncated": True if cut else None,
    }
    cl = cloud(ctx.account, ctx.region)
    activities: list[OcsfEvent] = []
    evidence: dict[str, Any] = {}
    if process is not None:
        evidence["process"] = _dump(process)
    if device is not None and device.container is not None:
        evidence["container"] = _dump(device.container)

    def meta(suffix: str) -> Any:
        return metadata(PRODUCT, VENDOR, uid=f"{uid}:{suffix}", event_code=evt, **meta_common)

    common: dict[str, Any] = {"time": a.time_ms, "cloud": cl, "raw_data": raw}
    if device is not None and a.source == "syscall":
        net = _network(f, evt) if evt is None or evt not in _FILE_EVT else None
        if evt in _PROCESS_EVT and process is not None:
            parent = process.parent_process
            actor = Actor(process=parent) if parent is not None else Actor(process=process)
            activities.append(
                ProcessActivity(
                    activity_id=_PROCESS_EVT[evt],
                    metadata=meta("process"),
                    actor=actor,
                    device=device,
                    process=process,
                    **common,
                )
            )
        elif net is not None:
            src, dst, activity_id, direction = net
            proto = _text(f.get("fd.l4proto"))
            ver = {"ipv4": 4, "ipv6": 6}.get((_text(f.get("fd.type")) or "").lower())
            activities.append(
                NetworkActivity(
                    activity_id=activity_id,
                    metadata=meta("network"),
                    device=device,
                    actor=Actor(process=process, user=user) if process or user else None,
                    src_endpoint=src,
                    dst_endpoint=dst,
                    connection_info=NetworkConnectionInfo(
                        direction_id=direction,
                        direction=_DIRECTIONS[direction],
                        protocol_name=proto.lower() if proto else None,
                        protocol_num={"tcp": 6, "udp": 17}.get((proto or "").lower()),
                        protocol_ver_id=ver,
                    ),
                    **common,
                )
            )
            for key, ep in (("src_endpoint", src), ("dst_endpoint", dst)):
                if ep is not None:
                    evidence[key] = _dump(ep)
        else:
            fa = _file_activity(f, evt)
            if fa is not None and (process is not None or user is not None):
                file, result, activity_id = fa
                activities.append(
                    FileActivity(
                        activity_id=activity_id,
                        metadata=meta("file"),
                        actor=Actor(process=process, user=user),
                        device=device,
                        file=file,
                        file_result=result,
                        **common,
                    )
                )
                evidence["file"] = _dump(file)
    unmapped: dict[str, Any] = {
        "priority": clip(a.priority, 64),
        "source": a.source,
        "output_fields": _bounded_fields(f),
    }
    unmapped.update(a.transport)
    if not evidence.keys() & {"process", "file", "src_endpoint", "dst_endpoint"}:
        evidence["data"] = unmapped["output_fields"]  # OCSF: evidence needs an artifact
    finding = DetectionFinding(
        activity_id=DetectionFinding.CREATE,
        severity_id=SEVERITY.get(a.priority.lower(), 0),
        metadata=metadata(PRODUCT, VENDOR, uid=uid, **meta_common),
        message=a.output,
        finding_info=FindingInfo(
            uid=uid,
            title=a.rule,
            types=[a.source],
            data_sources=[a.source],
            analytic=Analytic(name=a.rule, category=a.source),
            attacks=_attacks(a.tags),
            created_time=a.time_ms,
            first_seen_time=a.time_ms,
            last_seen_time=a.time_ms,
            related_events=[
                RelatedEvent(
                    uid=e.metadata.uid or "",
                    type_uid=e.type_uid,
                    type=f"{e.CLASS_NAME}: {e.ACTIVITIES.get(e.activity_id, 'Other')}",
                )
                for e in activities
            ]
            or None,
        ),
        device=device,
        resources=[w.resource()] if w else None,
        actor=Actor(process=process, user=user) if process or user else None,
        evidences=[evidence],
        unmapped=unmapped,
        **common,
    )
    return [finding, *activities]


def normalize(record: Any, ctx: Context) -> Batch:
    """Falco alert(s) in any of the forms above -> findings and activity events."""
    batch = Batch()
    origin = ctx.origin
    try:
        value, raw_text = load_object(record)
    except RecordError as exc:
        batch.rejects.append(Reject(SOURCE, str(exc), excerpt(record), origin))
        return batch
    for where, item in _unwrap(value, raw_text, ctx.received_ms):
        if isinstance(item, RecordError):
            batch.rejects.append(Reject(SOURCE, str(item), excerpt(value), where))
            continue
        try:
            batch.events.extend(_alert_events(item, ctx))
        except Exception as exc:  # a bug must not lose the batch: say so, with the record
            reason = f"internal error: {type(exc).__name__}: {clip(str(exc), 200)}"
            batch.rejects.append(Reject(SOURCE, reason, excerpt(value), where))
    return batch
