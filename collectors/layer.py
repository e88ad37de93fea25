"""The Ramparts layer's sensor lines -> common events (``SOURCE = "layer"``).

A record is one sensor line: the JSON object (``{"ramparts": 1, "kind": ...}``), or the text
of one log line that holds it, as printed (``{...}``) or behind a log prefix
(``2024-05-01T09:12:01.037Z<TAB>request-id<TAB>{...}``). The mapping of every kind to OCSF is
in ``docs/collectors/layer.md``; in short:

* ``process.spawn``: Process Activity (1007) Launch;
* ``process.env``: Process Activity (1007) Other, with ``process.environment_variables``;
* ``file.write``: File System Activity (1001) Create, Update, Delete, Rename, Set ...;
* ``file.read``: File System Activity (1001) Read;
* ``network.connect``: Network Activity (4001) Open (connect), Traffic (sendto), Other (raw);
* ``network.dns``: DNS Activity (4003) Query;
* ``aws.call``: API Activity (6003), the activity from the operation's verb;
* ``native.load``: Module Activity (1005) Load (Other for a ``dlsym`` look-up);
* ``sensor.tamper``: Detection Finding (2004), High: the sensor already decided;
* ``sensor.policy_error``: Detection Finding (2004), Medium: protection is degraded;
* ``sensor.start``, ``invocation.summary``, ``sensor.error``, ``sensor.packages``: ``Batch.signals``
  (heartbeats, for coverage), not events.

Identity is never read from the line: the workload comes from the trusted context only
(the CloudWatch Logs envelope, or the operator), see :func:`identity`. Every field that is
used is checked by hand, by type and size (the JSON Schema of the lines is
``docs/schema/sensor-event.v1.schema.json``; running jsonschema per line would cost more
than the rest of the normalisation), and a line that does not validate is a reject with the
reason. Lines that are not Ramparts lines are counted as skipped.

Events are built with :func:`_new`, which assigns already-checked values without running
pydantic's validators: the checks here are the validation, and the test suite proves every
event equal to its validated round trip and valid OCSF (see ``tests/collectors``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Final, TypeVar

from collectors.base import (
    MAX_DEPTH,
    MAX_LIST,
    MAX_RAW_DATA,
    MAX_STRING,
    Batch,
    Context,
    RecordError,
    Reject,
    check_depth,
    clip,
    raw_data,
)
from collectors.base import cloud as make_cloud
from collectors.model import (
    ACTION_ALLOWED,
    ACTION_DENIED,
    ACTION_OBSERVED,
    DISPOSITION_ALERT,
    DISPOSITION_ALLOWED,
    DISPOSITION_BLOCKED,
    OCSF_VERSION,
    PROFILES,
    SECURITY_CONTROL,
    Actor,
    Analytic,
    Api,
    ApiActivity,
    Attack,
    Cloud,
    DetectionFinding,
    Device,
    DnsActivity,
    DnsQuery,
    EnvironmentVariable,
    File,
    FileActivity,
    FindingInfo,
    Metadata,
    Module,
    ModuleActivity,
    NetworkActivity,
    NetworkConnectionInfo,
    NetworkEndpoint,
    Obj,
    OcsfEvent,
    Process,
    ProcessActivity,
    Product,
    ResourceDetails,
    Service,
    Tactic,
    Technique,
)
from collectors.workload import Workload, device_for, lambda_function

SOURCE: Final = "layer"
SCHEMA_VERSION: Final = 1
PRODUCT: Final = Product(name="Ramparts", vendor_name="Ramparts")

# Bounds of one line. CloudWatch Logs cuts an event at 256 KiB; the sensor's longest lines
# (32 arguments of 512 characters, 50 policy errors) are a tenth of that.
MAX_LINE: Final = 262_144
MAX_PREFIX: Final = 512  # a log prefix before the JSON object (timestamp, request id, level)
MAX_NAME: Final = 256  # rule names, modes, ops, services, operations, request ids...
MAX_MATCHED: Final = 32
MAX_STACK: Final = 8  # the sensor's own limit
MAX_ARGV: Final = 32  # the sensor's own limit
MAX_INT: Final = (1 << 63) - 1
MAX_PID: Final = (1 << 31) - 1
# A line's time must be epoch milliseconds (OCSF's timestamp_t): 1980-01-01 .. 2100-01-01.
MIN_TIME_MS: Final = 315_532_800_000
MAX_TIME_MS: Final = 4_102_444_800_000

UNKNOWN_FUNCTION: Final = "(unknown function)"  # not a valid function name: cannot collide
MARKER: Final = '"ramparts"'
# Lines a Lambda log stream carries besides the function's own output.
PLATFORM_PREFIXES: Final = (
    "START RequestId:",
    "END RequestId:",
    "REPORT RequestId:",
    "INIT_START ",
    "INIT_REPORT ",
    "RESTORE_START ",
    "RESTORE_REPORT ",
    "EXTENSION\t",
    "TELEMETRY\t",
)

MODES: Final = frozenset({"off", "monitor", "enforce", "learn"})
PHASES: Final = frozenset({"init", "invoke", "idle"})
EVENT_KINDS: Final = frozenset(
    {
        "network.connect",
        "network.dns",
        "aws.call",
        "file.write",
        "file.read",
        "process.spawn",
        "process.env",
        "native.load",
    }
)
SIGNAL_KINDS: Final = frozenset(
    {"sensor.start", "invocation.summary", "sensor.error", "sensor.packages"}
)
FINDING_KINDS: Final = frozenset({"sensor.tamper", "sensor.policy_error"})
KINDS: Final = EVENT_KINDS | SIGNAL_KINDS | FINDING_KINDS

# verdict -> (action_id, action, disposition_id, disposition): the security_control profile
VERDICTS: Final[dict[str, tuple[int, str, int, str]]] = {
    "allow": (ACTION_ALLOWED, "Allowed", DISPOSITION_ALLOWED, "Allowed"),
    "alert": (ACTION_OBSERVED, "Observed", DISPOSITION_ALERT, "Alert"),
    "block": (ACTION_DENIED, "Denied", DISPOSITION_BLOCKED, "Blocked"),
}
# severity_id of an alert or a block, by kind (an allowed event is Informational)
SEVERITY: Final[dict[str, int]] = {
    "process.spawn": 4,  # High: shells, network tools, inline code, dropped binaries
    "process.env": 4,  # High: LD_PRELOAD and friends
    "file.read": 4,  # High: credentials, /proc/*/environ
    "network.connect": 3,  # Medium
    "aws.call": 3,
    "file.write": 3,
    "native.load": 3,
    "network.dns": 2,  # Low
    "sensor.tamper": 4,
    "sensor.policy_error": 3,
}
INFORMATIONAL: Final = 1

# file.write op -> (activity_id, file type_id)
FILE_OPS: Final[dict[str, tuple[int, int]]] = {
    "create": (FileActivity.CREATE, 1),
    "write": (FileActivity.UPDATE, 1),
    "append": (FileActivity.UPDATE, 1),
    "truncate": (FileActivity.UPDATE, 1),
    "delete": (FileActivity.DELETE, 1),
    "rename": (FileActivity.RENAME, 1),
    "rename-from": (FileActivity.RENAME, 1),
    "chmod": (FileActivity.SET_SECURITY, 1),
    "chown": (FileActivity.SET_SECURITY, 1),
    "utime": (FileActivity.SET_ATTRIBUTES, 1),
    "xattr": (FileActivity.SET_ATTRIBUTES, 1),
    "mkdir": (FileActivity.CREATE, 2),  # Folder
    "symlink": (FileActivity.CREATE, 7),  # Symbolic Link
    "link": (FileActivity.CREATE, 1),
}
SPAWN_OPS: Final[dict[str, int]] = {  # op -> launch_type_id (1 Spawn, 3 Exec)
    "popen": 1,
    "system": 1,
    "spawn": 1,
    "fork_exec": 1,
    "exec": 3,
}
CONNECT_OPS: Final[dict[str, int]] = {
    "connect": NetworkActivity.OPEN,
    "sendto": NetworkActivity.TRAFFIC,
    "socket": 99,  # a raw or packet socket created: Other
}
PROTOCOLS: Final[dict[str, int]] = {"tcp": 6, "udp": 17}
FAMILIES: Final[dict[str | int, int]] = {"ipv4": 4, "ipv6": 6, 2: 4, 10: 6}  # AF_INET(6)
DNS_OPS: Final = frozenset({"getaddrinfo", "gethostbyname"})
NATIVE_OPS: Final[dict[str, int]] = {"import": ModuleActivity.LOAD, "dlopen": ModuleActivity.LOAD}
# The verb an AWS operation starts with -> API Activity activity_id.
API_VERBS: Final[tuple[tuple[str, int], ...]] = (
    ("Get", 2),
    ("List", 2),
    ("Describe", 2),
    ("Create", 1),
    ("Put", 1),
    ("Update", 3),
    ("Modify", 3),
    ("Delete", 4),
    ("Remove", 4),
)
ATTACK_IMPAIR_DEFENSES: Final = Attack(
    technique=Technique(uid="T1562", name="Impair Defenses"),
    sub_technique=Technique(uid="T1562.001", name="Disable or Modify Tools"),
    tactic=Tactic(uid="TA0005", name="Defense Evasion"),
)
_PROFILES_SC: Final = (*PROFILES, SECURITY_CONTROL)

M = TypeVar("M", bound=Obj)
# json.loads without its two whitespace regex matches (the body is stripped already)
_raw_decode: Final = json.JSONDecoder().raw_decode


# -- fast construction ---------------------------------------------------------------------------
def _defaults(cls: type[Obj]) -> dict[str, Any]:
    return {
        name: f.default
        for name, f in cls.model_fields.items()
        if not f.is_required() and f.default_factory is None
    }


_DEFAULTS: dict[type[Obj], dict[str, Any]] = {}
_set = object.__setattr__
_object_new = object.__new__


def _new(cls: type[M], values: dict[str, Any]) -> M:
    """``cls(**values)`` for values already checked, without pydantic's validators.

    What :meth:`pydantic.BaseModel.model_construct` does, minus its per-field loop (which
    costs more than validating). Only immutable defaults are shared; a field with a
    ``default_factory`` must be given (``Metadata.profiles``).
    """
    try:
        defaults = _DEFAULTS[cls]
    except KeyError:
        defaults = _DEFAULTS[cls] = _defaults(cls)
    obj = _object_new(cls)
    state = defaults.copy()
    state.update(values)
    _set(obj, "__dict__", state)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


# -- identity ------------------------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class Identity:
    """The workload lines are attributed to, from trusted context only, and its OCSF parts.

    ``workload`` (and ``device.uid``, the function ARN) exist only when the function name,
    account and region are all known; otherwise the device names the function (or
    ``(unknown function)``) without a uid, so nothing downstream can act on it.
    """

    function: str | None
    account: str | None
    region: str | None
    workload: Workload | None
    device: Device
    cloud: Cloud
    endpoint: NetworkEndpoint  # the function as the source of its connections and API calls
    resources: list[ResourceDetails] | None
    _actors: dict[tuple[str, int | None], Actor] = field(default_factory=dict)

    @property
    def key(self) -> str | None:
        return self.workload.key if self.workload is not None else None

    def actor(self, sandbox: str, pid: int | None) -> Actor:
        """The function's own process (one per sandbox; a forked child has its pid)."""
        k = (sandbox, pid)
        a = self._actors.get(k)
        if a is None:
            if len(self._actors) > 1024:
                self._actors.clear()
            uid = sandbox if pid is None else f"{sandbox}:{pid}"
            values: dict[str, Any] = {"uid": uid}
            if pid is not None:
                values["pid"] = pid
            a = self._actors[k] = _new(Actor, {"process": _new(Process, values)})
        return a


def identity(function: str | None, account: str | None, region: str | None) -> Identity:
    """The :class:`Identity` of lines from ``function`` in ``account``/``region`` (trusted)."""
    workload = None
    if function and account and region:
        workload = lambda_function(function, account, region)
        device = device_for(workload)
        endpoint = NetworkEndpoint(name=function, uid=workload.uid)
        resources = [workload.resource()]
    else:
        name = function or UNKNOWN_FUNCTION
        device = Device(type_id=99, type="AWS Lambda function", name=name, region=region)
        endpoint = NetworkEndpoint(name=name)
        resources = None
    return Identity(
        function,
        account,
        region,
        workload,
        device,
        make_cloud(account, region),
        endpoint,
        resources,
    )


def _ctx_identity(ctx: Context) -> Identity:
    return identity(ctx.function, ctx.account, ctx.region)


# -- the adapter interface -----------------------------------------------------------------------
def matches(record: Any) -> bool:
    """A sensor line (object or text), or a Lambda platform line of the same log stream."""
    if isinstance(record, dict):
        return "ramparts" in record
    if isinstance(record, str):
        return MARKER in record or record.lstrip().startswith(PLATFORM_PREFIXES)
    return False


def normalize(record: Any, ctx: Context) -> Batch:
    """One sensor line (parsed object or log text) -> events, signals, a reject or a skip."""
    batch = Batch()
    ident = _ctx_identity(ctx)
    if isinstance(record, str):
        normalize_text(record, ident, ctx.received_ms, batch)
    elif isinstance(record, dict):
        normalize_object(record, ident, ctx.received_ms, batch)
    else:  # a log line that parsed as another JSON value (a number, a list...): not ours
        batch.skipped += 1
    return batch


def normalize_text(
    text: str, ident: Identity, received_ms: int | None, batch: Batch, where: str = ""
) -> None:
    """One log line (a CloudWatch Logs message) into ``batch``."""
    body = text if text[:1] == "{" else _json_part(text)
    if body is None or MARKER not in body:
        batch.skipped += 1  # START/END/REPORT, prints, other JSON logs
        return
    body = body.rstrip()  # the newline CloudWatch keeps at the end of a message
    if len(body) > MAX_LINE:
        _reject(
            batch,
            f"sensor line of {len(body)} characters is over the {MAX_LINE} limit",
            text,
            where,
        )
        return
    try:
        line, end = _raw_decode(body)
    except (ValueError, RecursionError) as exc:
        _reject(batch, f"looks like a Ramparts line but is not JSON: {clip(exc, 120)}", text, where)
        return
    if end != len(body):
        _reject(batch, f"looks like a Ramparts line but has extra text at {end}", text, where)
        return
    if type(line) is not dict or "ramparts" not in line:
        batch.skipped += 1
        return
    if ("\\ud" in body or "\\uD" in body) and not _encodable(line):
        _reject(
            batch, "contains an unpaired UTF-16 surrogate (not valid Unicode text)", text, where
        )
        return
    _normalize_line(line, body, ident, received_ms, batch=batch, where=where)


def normalize_object(
    line: dict[str, Any], ident: Identity, received_ms: int | None, batch: Batch, where: str = ""
) -> None:
    """One already-parsed sensor line into ``batch`` (its JSON text becomes ``raw_data``)."""
    if "ramparts" not in line:
        batch.skipped += 1
        return
    try:
        check_depth(line, MAX_DEPTH)
        text = json.dumps(line, separators=(",", ":"), ensure_ascii=False)
        text.encode("utf-8")
    except RecordError as exc:
        _reject(batch, str(exc), _excerpt(line), where)
        return
    except (TypeError, ValueError, RecursionError) as exc:
        reason = "not valid JSON text"
        if isinstance(exc, UnicodeEncodeError):
            reason = "contains an unpaired UTF-16 surrogate (not valid Unicode text)"
        _reject(batch, f"{reason}: {clip(exc, 120)}", _excerpt(line), where)
        return
    if len(text) > MAX_LINE:
        _reject(
            batch,
            f"sensor line of {len(text)} characters is over the {MAX_LINE} limit",
            text,
            where,
        )
        return
    _normalize_line(line, text, ident, received_ms, batch=batch, where=where)


# -- line parsing --------------------------------------------------------------------------------
def _json_part(text: str) -> str | None:
    """The JSON object of a log line: the line itself, or what follows a log prefix."""
    if text[:1] == "{":
        return text
    i = text.find("{", 0, MAX_PREFIX + 1)
    if i <= 0 or text[i - 1] not in "\t ":
        return None
    return text[i:]


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return False
    return True


def _excerpt(value: Any) -> str:
    if isinstance(value, dict):
        return clip("{" + ", ".join(repr(k)[:40] for k in list(value)[:20]) + "}", 400)
    return clip(repr(value)[:400], 400)


def _reject(batch: Batch, reason: str, text: str, where: str) -> None:
    batch.rejects.append(Reject(SOURCE, reason, clip(text, 1024), where))


def _normalize_line(
    line: dict[str, Any],
    text: str,
    ident: Identity,
    received_ms: int | None,
    *,
    batch: Batch,
    where: str,
) -> None:
    try:
        head = _head(line, text, ident, received_ms)
        kind = head.kind
        if kind in SIGNAL_KINDS:
            batch.signals.append(_signal(line, head, ident, received_ms))
            return
        batch.events.append(_BUILDERS[kind](line, head))
    except RecordError as exc:
        _reject(batch, str(exc), text, where)
    except Exception as exc:  # a bug must cost one line, not the batch (tests keep it at zero)
        _reject(batch, f"internal error: {type(exc).__name__}: {clip(exc, 200)}", text, where)


# -- field checks (by hand: this is the hot path) ------------------------------------------------
def _fail(key: str, what: str, value: Any) -> RecordError:
    if value is None:
        return RecordError(f"{key}: missing (expected {what})")
    return RecordError(
        f"{key}: expected {what}, got {type(value).__name__} {clip(repr(value), 60)}"
    )


def _str(d: dict[str, Any], key: str, limit: int = MAX_STRING) -> str:
    """A required, non-empty string."""
    v = d.get(key)
    if type(v) is not str or not v:
        raise _fail(key, "a non-empty string", v)
    if len(v) > limit:
        raise RecordError(f"{key}: {len(v)} characters, over the {limit} limit")
    return v


def _opt_str(d: dict[str, Any], key: str, limit: int = MAX_STRING) -> str | None:
    """An optional (or null) string."""
    v = d.get(key)
    if v is None:
        return None
    if type(v) is not str:
        raise _fail(key, "a string", v)
    if len(v) > limit:
        raise RecordError(f"{key}: {len(v)} characters, over the {limit} limit")
    return v


def _enum(d: dict[str, Any], key: str, allowed: Any) -> str:
    v = d.get(key)
    if type(v) is not str or v not in allowed:
        raise _fail(key, "one of " + ", ".join(sorted(allowed)), v)
    return v


def _int(d: dict[str, Any], key: str, low: int = 0, high: int = MAX_INT) -> int:
    v = d.get(key)
    if type(v) is not int:
        raise _fail(key, "an integer", v)
    if not low <= v <= high:
        raise RecordError(f"{key}: {clip(v, 40)} is out of range [{low}, {high}]")
    return v


def _opt_int(d: dict[str, Any], key: str, low: int = 0, high: int = MAX_INT) -> int | None:
    return None if d.get(key) is None else _int(d, key, low, high)


def _number(d: dict[str, Any], key: str) -> float | int:
    v = d.get(key)
    if type(v) is int and -MAX_INT <= v <= MAX_INT:
        return v
    if type(v) is float and math.isfinite(v) and abs(v) < 1e15:
        return v
    raise _fail(key, "a number", v)


def _str_list(
    d: dict[str, Any], key: str, max_items: int, limit: int = MAX_STRING
) -> list[str] | None:
    v = d.get(key)
    if v is None:
        return None
    if type(v) is not list:
        raise _fail(key, "a list of strings", v)
    if len(v) > max_items:
        raise RecordError(f"{key}: {len(v)} items, over the {max_items} limit")
    for item in v:
        if type(item) is not str or len(item) > limit:
            raise RecordError(f"{key}: items must be strings of at most {limit} characters")
    return v


def _ip(value: str, key: str) -> str:
    if "%" in value or len(value) > 64:
        raise RecordError(f"{key}: {clip(repr(value), 60)} is not an IP address")
    try:
        ip_address(value)
    except ValueError:
        raise RecordError(f"{key}: {clip(repr(value), 60)} is not an IP address") from None
    return value


def _basename(path: str) -> str:
    return path.rpartition("/")[2] or path


def _file(path: str, type_id: int = 1) -> File:
    parent, _, name = path.rpartition("/")
    values: dict[str, Any] = {"name": name or path, "path": path, "type_id": type_id}
    if parent or path.startswith("/"):
        values["parent_folder"] = parent or "/"
    return _new(File, values)


@dataclass(slots=True)
class _Head:
    """What every line has, checked; its text and where it came from, for the builders."""

    kind: str
    sandbox: str
    seq: int
    time: int
    request_id: str | None
    pid: int | None
    uid: str  # metadata.uid: sandbox[:pid]:seq (a forked child shares the sandbox's seq)
    text: str
    ident: Identity
    received_ms: int | None


def _head(d: dict[str, Any], text: str, ident: Identity, received_ms: int | None) -> _Head:
    version = d.get("ramparts")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise RecordError(
            f"unsupported sensor schema version {clip(repr(version), 40)} "
            f"(this collector reads version {SCHEMA_VERSION})"
        )
    kind = d.get("kind")
    if type(kind) is not str or kind not in KINDS:
        raise RecordError(f"unknown kind {clip(repr(kind), 60)}")
    sandbox = d.get("sandbox")
    if type(sandbox) is not str or len(sandbox) != 16 or sandbox.strip("0123456789abcdef"):
        raise _fail("sandbox", "16 lowercase hex digits", sandbox)
    # The common case inline; the helpers only to raise with the reason.
    seq = d.get("seq")
    if type(seq) is not int or not 0 < seq <= MAX_INT:
        seq = _int(d, "seq", 1)
    t = d.get("time")
    if type(t) is not int or not MIN_TIME_MS <= t < MAX_TIME_MS:
        raise _fail("time", "epoch milliseconds (1980..2100)", t)
    request_id = d.get("request_id")
    if request_id is not None and (type(request_id) is not str or len(request_id) > MAX_NAME):
        request_id = _opt_str(d, "request_id", MAX_NAME)
    pid = d.get("pid")
    if pid is not None and (type(pid) is not int or not 0 < pid <= MAX_PID):
        pid = _int(d, "pid", 1, MAX_PID)
    uid = f"{sandbox}:{seq}" if pid is None else f"{sandbox}:{pid}:{seq}"
    return _Head(kind, sandbox, seq, t, request_id, pid, uid, text, ident, received_ms)


@dataclass(slots=True)
class _Decision:
    """What every event line adds: the verdict and where in the code."""

    verdict: str
    rule: str | None
    unmapped: dict[str, Any]


def _decision(d: dict[str, Any], head: _Head, mode_required: bool = True) -> _Decision:
    verdict = d.get("verdict")
    if type(verdict) is not str or verdict not in VERDICTS:
        raise _fail("verdict", "allow, alert or block", verdict)
    if "rule" not in d:
        raise RecordError("rule: missing (expected a string or null)")
    rule = d["rule"]
    if rule is not None and (type(rule) is not str or len(rule) > MAX_NAME):
        rule = _opt_str(d, "rule", MAX_NAME)
    un: dict[str, Any] = {"verdict": verdict}
    if mode_required or "mode" in d:
        mode = d.get("mode")
        if type(mode) is not str or mode not in MODES:
            mode = _enum(d, "mode", MODES)
        un["mode"] = mode
    un["sandbox"] = head.sandbox
    un["seq"] = head.seq
    if rule is not None:
        un["rule"] = rule
    if head.request_id is not None:
        un["request_id"] = head.request_id
    if head.pid is not None:
        un["pid"] = head.pid
    if "matched" in d:
        matched = _str_list(d, "matched", MAX_MATCHED, MAX_NAME)
        if matched:
            un["matched"] = matched
    loc = d.get("location")
    if loc is not None:
        if type(loc) is not dict:
            raise _fail("location", "an object or null", loc)
        file_ = loc.get("file")
        function = loc.get("function")
        line_no = loc.get("line")
        if (
            type(file_) is not str
            or not file_
            or len(file_) > MAX_STRING
            or type(function) is not str
            or len(function) > MAX_NAME
            or (line_no is not None and (type(line_no) is not int or not 0 <= line_no <= MAX_PID))
        ):
            _str(loc, "file")
            if type(function) is not str:
                raise _fail("location.function", "a string", function)
            _opt_str(loc, "function", MAX_NAME)
            _opt_int(loc, "line", 0, MAX_PID)
        location: dict[str, Any] = {"file": file_, "function": function}
        if line_no is not None:
            location["line"] = line_no
        un["location"] = location
    stack = d.get("stack")
    if stack is not None:
        if type(stack) is not list or len(stack) > MAX_STACK:
            _str_list(d, "stack", MAX_STACK)
        for frame in stack:
            if type(frame) is not str or len(frame) > MAX_STRING:
                _str_list(d, "stack", MAX_STACK)
        if stack:
            un["stack"] = stack
    if "phase" in d:
        un["phase"] = _enum(d, "phase", PHASES)
    if "trace_id" in d:  # the function's OpenTelemetry trace (W3C ids), for linking
        un["trace_id"] = _hex_id(d, "trace_id", 32)
        if "span_id" in d:
            un["span_id"] = _hex_id(d, "span_id", 16)
    return _Decision(verdict, rule, un)


_HEX = frozenset("0123456789abcdef")


def _hex_id(d: dict[str, Any], key: str, size: int) -> str:
    v = d.get(key)
    if type(v) is not str or len(v) != size or not _HEX.issuperset(v):
        raise _fail(key, f"{size} lowercase hex digits", v)
    return v


# -- building events -----------------------------------------------------------------------------
def _metadata(head: _Head, received_ms: int | None, truncated: bool, sc: bool = True) -> Metadata:
    values: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": PRODUCT,
        "profiles": list(_PROFILES_SC if sc else PROFILES),
        "uid": head.uid,
        "sequence": head.seq,
        "event_code": head.kind,
    }
    if head.request_id is not None:
        values["correlation_uid"] = head.request_id
    if received_ms is not None:
        values["logged_time"] = received_ms
    if truncated:
        values["is_truncated"] = True
    return _new(Metadata, values)


def _common(head: _Head, dec: _Decision, target: str) -> dict[str, Any]:
    """The attributes every activity event of a line has."""
    ident, received_ms = head.ident, head.received_ms
    text = head.text
    truncated = len(text) > MAX_RAW_DATA
    raw = text[:MAX_RAW_DATA] if truncated else text
    action_id, action, disposition_id, disposition = VERDICTS[dec.verdict]
    verdict = dec.verdict
    values: dict[str, Any] = {
        "time": head.time,
        "severity_id": INFORMATIONAL if verdict == "allow" else SEVERITY[head.kind],
        "metadata": _metadata(head, received_ms, truncated),
        "cloud": ident.cloud,
        "device": ident.device,
        "actor": ident.actor(head.sandbox, head.pid),
        "action_id": action_id,
        "action": action,
        "disposition_id": disposition_id,
        "disposition": disposition,
        "raw_data": raw,
        "unmapped": dec.unmapped,
        "message": f"{head.kind} {target if len(target) <= 200 else clip(target, 200)}: {verdict}"
        + (f" ({dec.rule})" if dec.rule else ""),
    }
    if verdict == "block":
        values["status_id"] = 2
        values["status"] = "Failure"
        values["status_detail"] = f"blocked by Ramparts rule {dec.rule}"
    return values


Builder = Callable[[dict[str, Any], _Head], OcsfEvent]


def _process_spawn(d: dict[str, Any], head: _Head) -> OcsfEvent:
    ident = head.ident
    dec = _decision(d, head)
    executable = _str(d, "executable")
    argv = _str_list(d, "argv", MAX_ARGV)
    if argv is None:
        raise _fail("argv", "a list of strings", None)
    op = _enum(d, "op", SPAWN_OPS)
    requested = _opt_str(d, "requested")
    programs = _str_list(d, "programs", MAX_LIST)
    env = _str_list(d, "env", MAX_ARGV, MAX_NAME)
    un = dec.unmapped
    un["op"] = op
    un["argv"] = argv
    if requested is not None:
        un["requested"] = requested
    if programs:
        un["programs"] = programs
    if env:
        un["env"] = env
    actor = ident.actor(head.sandbox, head.pid)
    values = _common(head, dec, executable)
    values["activity_id"] = ProcessActivity.LAUNCH
    values["launch_type_id"] = SPAWN_OPS[op]
    values["process"] = _new(
        Process,
        {
            "uid": head.uid,
            "name": _basename(executable),
            "cmd_line": clip(" ".join(argv), MAX_STRING) if argv else executable,
            "file": _file(executable),
            "parent_process": actor.process,
        },
    )
    return _new(ProcessActivity, values)


def _process_env(d: dict[str, Any], head: _Head) -> OcsfEvent:
    ident = head.ident
    dec = _decision(d, head)
    variable = _str(d, "variable", MAX_NAME)
    value = _opt_str(d, "value")
    actor = ident.actor(head.sandbox, head.pid)
    values = _common(head, dec, f"{variable}=")
    values["activity_id"] = 99  # Other: an environment variable set in the process
    proc: dict[str, Any] = {"uid": actor.process.uid if actor.process else head.sandbox}
    if head.pid is not None:
        proc["pid"] = head.pid
    proc["environment_variables"] = [
        _new(EnvironmentVariable, {"name": variable, "value": value or ""})
    ]
    values["process"] = _new(Process, proc)
    return _new(ProcessActivity, values)


def _file_write(d: dict[str, Any], head: _Head) -> OcsfEvent:
    dec = _decision(d, head)
    path = _str(d, "path")
    op = _enum(d, "op", FILE_OPS)
    un = dec.unmapped
    un["op"] = op
    for key in ("requested", "source", "destination", "link_target"):
        v = _opt_str(d, key)
        if v is not None:
            un[key] = v
    if "file_mode" in d:
        mode = _opt_str(d, "file_mode", 32)
        if mode is not None:
            un["file_mode"] = mode
    for key in ("uid", "gid"):
        n = _opt_int(d, key, -1, (1 << 32) - 1)
        if n is not None:
            un[key] = n
    activity, type_id = FILE_OPS[op]
    values = _common(head, dec, f"{op} {path}")
    values["activity_id"] = activity
    if op == "rename":  # path is the new name, source the old one
        source = un.get("source")
        values["file"] = _file(source) if source else _file(path)
        values["file_result"] = _file(path)
    elif op == "rename-from":  # path is the old name (a protected file moved away)
        values["file"] = _file(path)
        dest = un.get("destination")
        if dest:
            values["file_result"] = _file(dest)
    elif op == "link" and "destination" in un:  # a hard link made to a sensitive file
        values["file"] = _file(un["destination"])
        un["link_source"] = path
    else:
        values["file"] = _file(path, type_id)
        if op == "link" and "source" in un:
            un["link_source"] = un["source"]
    return _new(FileActivity, values)


def _file_read(d: dict[str, Any], head: _Head) -> OcsfEvent:
    dec = _decision(d, head)
    path = _str(d, "path")
    op = d.get("op")
    if op != "read":
        raise _fail("op", "read", op)
    requested = _opt_str(d, "requested")
    if requested is not None:
        dec.unmapped["requested"] = requested
    values = _common(head, dec, path)
    values["activity_id"] = FileActivity.READ
    values["file"] = _file(path)
    return _new(FileActivity, values)


def _network_connect(d: dict[str, Any], head: _Head) -> OcsfEvent:
    ident = head.ident
    dec = _decision(d, head)
    op = _enum(d, "op", CONNECT_OPS)
    un = dec.unmapped
    un["op"] = op
    family = d.get("family")
    if family is not None and not (
        (type(family) is str and family in FAMILIES) or (type(family) is int and 0 <= family < 256)
    ):
        raise _fail("family", "ipv4, ipv6 or an address family number", family)
    for key in ("endpoint", "aws_service"):
        v = _opt_str(d, key, MAX_NAME)
        if v is not None:
            un[key] = v
    dst: NetworkEndpoint | None = None
    conn: NetworkConnectionInfo | None = None
    if op == "socket":
        target = "raw socket"
        if family is not None:
            un["family"] = family
        socket_type = _opt_int(d, "socket_type", 0, 1 << 16)
        if socket_type is not None:
            un["socket_type"] = socket_type
    elif d.get("path") is not None:  # a unix socket
        path = _str(d, "path")
        target = path
        dst = _new(NetworkEndpoint, {"name": path})
        conn = _new(
            NetworkConnectionInfo,
            {"protocol_name": "unix", "direction_id": 2, "direction": "Outbound"},
        )
    else:
        ip = _ip(_str(d, "ip", 64), "ip")
        port = _int(d, "port", 0, 65535)
        proto = _enum(d, "proto", PROTOCOLS)
        host = _opt_str(d, "host", 1024)
        ep: dict[str, Any] = {"ip": ip, "port": port}
        if host and host != ip:
            ep["hostname"] = host
        if "aws_service" in un:
            ep["svc_name"] = un["aws_service"]
        dst = _new(NetworkEndpoint, ep)
        ci: dict[str, Any] = {
            "protocol_name": proto,
            "protocol_num": PROTOCOLS[proto],
            "direction_id": 2,
            "direction": "Outbound",
        }
        ver = FAMILIES.get(family) if family is not None else None
        if ver is None:
            ver = 6 if ":" in ip else 4
        ci["protocol_ver_id"] = ver
        conn = _new(NetworkConnectionInfo, ci)
        target = f"{host} ({ip}):{port}" if host and host != ip else f"{ip}:{port}"
        if family is not None:
            un["family"] = family
    values = _common(head, dec, target)
    values["activity_id"] = CONNECT_OPS[op]
    values["src_endpoint"] = ident.endpoint
    if dst is not None:
        values["dst_endpoint"] = dst
    if conn is not None:
        values["connection_info"] = conn
    return _new(NetworkActivity, values)


def _network_dns(d: dict[str, Any], head: _Head) -> OcsfEvent:
    ident = head.ident
    dec = _decision(d, head)
    host = _str(d, "host", 1024)
    dec.unmapped["op"] = _enum(d, "op", DNS_OPS)
    values = _common(head, dec, host)
    values["activity_id"] = DnsActivity.QUERY
    values["query"] = _new(DnsQuery, {"hostname": host})
    values["src_endpoint"] = ident.endpoint
    return _new(DnsActivity, values)


def api_activity(operation: str) -> int:
    """API Activity's activity_id from an AWS operation's verb (CamelCase word)."""
    for verb, activity in API_VERBS:
        if operation.startswith(verb) and (
            len(operation) == len(verb) or not operation[len(verb)].islower()
        ):
            return activity
    return 99


def _aws_call(d: dict[str, Any], head: _Head) -> OcsfEvent:
    ident = head.ident
    dec = _decision(d, head)
    service = _str(d, "service", MAX_NAME)
    operation = _str(d, "operation", MAX_NAME)
    un = dec.unmapped
    un["action"] = _str(d, "action", MAX_NAME)
    region = _opt_str(d, "region", 64)
    if region is not None:
        un["api_region"] = region  # the call's region: not the function's (that is cloud.region)
    endpoint = _opt_str(d, "endpoint", 1024)
    values = _common(head, dec, f"{service}:{operation}")
    values["activity_id"] = api_activity(operation)
    values["api"] = _new(Api, {"operation": operation, "service": _new(Service, {"name": service})})
    values["src_endpoint"] = ident.endpoint
    if endpoint:
        un["endpoint"] = endpoint
        try:
            ep: dict[str, Any] = {"ip": _ip(endpoint, "endpoint"), "svc_name": service}
        except RecordError:
            ep = {"hostname": endpoint, "svc_name": service}
        values["dst_endpoint"] = _new(NetworkEndpoint, ep)
    return _new(ApiActivity, values)


def _native_load(d: dict[str, Any], head: _Head) -> OcsfEvent:
    dec = _decision(d, head)
    if "library" not in d:
        raise RecordError("library: missing (expected a string or null)")
    library = _opt_str(d, "library")
    op = _enum(d, "op", ("import", "dlopen", "dlsym"))
    un = dec.unmapped
    un["op"] = op
    for key in ("symbol", "module", "detail"):
        v = _opt_str(d, key, MAX_NAME if key != "detail" else MAX_STRING)
        if v is not None:
            un[key] = v
    module: dict[str, Any] = {
        "load_type_id": 1,  # Standard: the loader's own way
        "type": "Extension module" if op == "import" else "Shared library",
    }
    if library:
        if "/" in library:
            module["file"] = _file(library)
        else:
            module["file"] = _new(File, {"name": library, "type_id": 1})
    if "symbol" in un:
        module["function_name"] = un["symbol"]
    target = library or "dlopen(NULL)"
    if op == "dlsym":
        target = f"{un.get('symbol', '?')} in {library or 'the main program'}"
    values = _common(head, dec, target)
    values["activity_id"] = NATIVE_OPS.get(op, 99)  # dlsym: a symbol looked up, Other
    values["module"] = _new(Module, module)
    return _new(ModuleActivity, values)


def _finding(
    head: _Head, info: dict[str, Any], unmapped: dict[str, Any], verdict: str | None
) -> DetectionFinding:
    ident, received_ms = head.ident, head.received_ms
    raw, truncated = raw_data(head.text)
    prefix = ident.workload.uid if ident.workload is not None else (ident.function or "unknown")
    info["uid"] = f"{prefix}/{head.uid}"
    info["created_time"] = head.time
    info["first_seen_time"] = head.time
    info["last_seen_time"] = head.time
    info["product_uid"] = head.uid
    values: dict[str, Any] = {
        "activity_id": DetectionFinding.CREATE,
        "time": head.time,
        "severity_id": SEVERITY[head.kind],
        "metadata": _metadata(head, received_ms, truncated, sc=verdict is not None),
        "cloud": ident.cloud,
        "device": ident.device,
        "actor": ident.actor(head.sandbox, head.pid),
        "finding_info": _new(FindingInfo, info),
        "confidence_id": 3,  # High: the sensor saw it happen
        "raw_data": raw,
        "unmapped": unmapped,
        "message": info["title"],
    }
    if ident.resources is not None:
        values["resources"] = ident.resources
    if verdict is not None:
        action_id, action, disposition_id, disposition = VERDICTS[verdict]
        values.update(
            action_id=action_id,
            action=action,
            disposition_id=disposition_id,
            disposition=disposition,
        )
    return _new(DetectionFinding, values)


def _sensor_tamper(d: dict[str, Any], head: _Head) -> OcsfEvent:
    dec = _decision(d, head, mode_required=False)
    detail = _str(d, "detail")
    rule = dec.rule or "tamper"
    dec.unmapped["detail"] = detail
    info: dict[str, Any] = {
        "title": clip(f"Ramparts sensor tampering: {detail}", 400),
        "desc": detail,
        "types": ["Ramparts Sensor Tampering"],
        "analytic": _new(Analytic, {"type_id": 1, "type": "Rule", "name": rule, "uid": rule}),
        "attacks": [ATTACK_IMPAIR_DEFENSES],
        "data_sources": ["Ramparts layer"],
    }
    return _finding(head, info, dec.unmapped, dec.verdict)


def _sensor_policy_error(d: dict[str, Any], head: _Head) -> OcsfEvent:
    errors = _str_list(d, "errors", MAX_LIST)
    if errors is None:
        raise _fail("errors", "a list of strings", None)
    fallback = _str(d, "fallback", MAX_NAME)
    source = _opt_str(d, "source")
    un: dict[str, Any] = {"sandbox": head.sandbox, "seq": head.seq, "errors": errors}
    un["fallback"] = fallback
    if source is not None:
        un["source"] = source
    if head.request_id is not None:
        un["request_id"] = head.request_id
    if head.pid is not None:
        un["pid"] = head.pid
    info: dict[str, Any] = {
        "title": f"Ramparts policy rejected: the sensor runs as {clip(fallback, 80)}",
        "desc": clip("; ".join(errors), MAX_STRING) or "no errors given",
        "types": ["Ramparts Sensor Policy Error"],
        "analytic": _new(
            Analytic,
            {
                "type_id": 1,
                "type": "Rule",
                "name": "sensor.policy_error",
                "uid": "sensor.policy_error",
            },
        ),
        "data_sources": ["Ramparts layer"],
    }
    return _finding(head, info, un, None)


_BUILDERS: Final[dict[str, Builder]] = {
    "process.spawn": _process_spawn,
    "process.env": _process_env,
    "file.write": _file_write,
    "file.read": _file_read,
    "network.connect": _network_connect,
    "network.dns": _network_dns,
    "aws.call": _aws_call,
    "native.load": _native_load,
    "sensor.tamper": _sensor_tamper,
    "sensor.policy_error": _sensor_policy_error,
}


# -- signals -------------------------------------------------------------------------------------
def _counts(d: dict[str, Any]) -> dict[str, dict[str, int]]:
    v = d.get("counts")
    if type(v) is not dict:
        raise _fail("counts", "an object", v)
    if len(v) > 64:
        raise RecordError(f"counts: {len(v)} kinds, over the 64 limit")
    out: dict[str, dict[str, int]] = {}
    for kind, per in v.items():
        if len(kind) > MAX_NAME or type(per) is not dict:
            raise RecordError("counts: expected {kind: {allow, alert, block}}")
        allow, alert, block = per.get("allow"), per.get("alert"), per.get("block")
        if (
            type(allow) is int
            and type(alert) is int
            and type(block) is int
            and 0 <= allow <= MAX_INT
            and 0 <= alert <= MAX_INT
            and 0 <= block <= MAX_INT
        ):
            out[kind] = {"allow": allow, "alert": alert, "block": block}
            continue
        for verdict in ("allow", "alert", "block"):
            _int(per, verdict)  # raises with the reason
        raise RecordError(f"counts: {clip(kind, 60)}: expected allow, alert and block counts")
    return out


MAX_PACKAGES = 1000


def _packages(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The distributions of a ``sensor.packages`` line, checked."""
    v = d.get("packages")
    if type(v) is not list:
        raise _fail("packages", "a list", v)
    if len(v) > MAX_PACKAGES:
        raise RecordError(f"packages: {len(v)} entries, over the {MAX_PACKAGES} limit")
    out = []
    for n, item in enumerate(v):
        if type(item) is not dict:
            raise RecordError(f"packages[{n}]: expected an object")
        try:
            out.append(
                {
                    "name": _str(item, "name", MAX_NAME),
                    "version": _str(item, "version", MAX_NAME),
                    "path": _str(item, "path", 1024),
                    "imported": item.get("imported") is True,
                }
            )
        except RecordError as exc:
            raise RecordError(f"packages[{n}].{exc}") from None
    return out


def _signal(
    d: dict[str, Any], head: _Head, ident: Identity, received_ms: int | None
) -> dict[str, Any]:
    """A heartbeat, with the workload it came from (from the envelope) and its checked fields."""
    sig: dict[str, Any] = {
        "kind": head.kind,
        "source": SOURCE,
        "workload": ident.key,
        "function": ident.function,
        "account": ident.account,
        "region": ident.region,
        "time": head.time,
        "sandbox": head.sandbox,
        "seq": head.seq,
        "request_id": head.request_id,
    }
    if received_ms is not None:
        sig["received_ms"] = received_ms
    if head.pid is not None:
        sig["pid"] = head.pid
    if head.kind == "sensor.start":
        sig["version"] = _str(d, "version", 64)
        sig["mode"] = _enum(d, "mode", MODES)
        modes = d.get("modes")
        if type(modes) is not dict or len(modes) > 16:
            raise _fail("modes", "an object of category modes", modes)
        sig["modes"] = {
            k: _enum(modes, k, MODES) for k in modes if type(k) is str and len(k) <= MAX_NAME
        }
        sig["attach"] = _enum(
            d, "attach", ("exec-wrapper", "handler-redirect", "decorator", "install")
        )
        if "policy" not in d:
            raise RecordError("policy: missing (expected a string or null)")
        sig["policy"] = _opt_str(d, "policy")
        sig["policy_rules"] = _opt_int(d, "policy_rules") or 0
        sig["python"] = _str(d, "python", 32)
        sig["install_ms"] = _number(d, "install_ms")
    elif head.kind == "invocation.summary":
        sig["counts"] = _counts(d)
        for key in ("alerts", "blocks", "repeats", "suppressed", "invocation"):
            sig[key] = _int(d, key)
        sig["sensor_errors"] = _opt_int(d, "sensor_errors") or 0
        sig["duration_ms"] = _number(d, "duration_ms")
        if "phase" in d:
            sig["phase"] = _enum(d, "phase", PHASES)
        error = _opt_str(d, "error", MAX_NAME)
        if error is not None:
            sig["error"] = error
    elif head.kind == "sensor.packages":
        sig["update"] = d.get("update") is True
        sig["packages"] = _packages(d)
        sig["truncated"] = d.get("truncated") is True
    else:  # sensor.error
        sig["where"] = _str(d, "where", MAX_NAME)
        sig["error"] = _str(d, "error", 1024)
    return sig
