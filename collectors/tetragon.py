"""Tetragon JSON export: process executions, exits and kprobe file/socket events.

Tetragon writes one JSON object per line (``/var/run/cilium/tetragon/tetragon.log``, the
``export-stdout`` container): the event under its type's key (``process_exec``,
``process_exit``, ``process_kprobe``, ...), with ``node_name`` and ``time`` beside it.
Field names are the protobuf's (``api/v1/tetragon``) in snake case; 64-bit integers are
strings (protobuf JSON), so numbers are read from either form.

* ``process_exec`` -> Process Activity: Launch;
* ``process_exit`` -> Process Activity: Terminate (``status`` as the exit code, ``signal``);
* ``process_kprobe`` with a file argument (``file_arg``/``path_arg``, e.g.
  ``security_file_permission``, ``fd_install``, ``__x64_sys_write``) -> File System
  Activity; with a socket argument (``sock_arg``, ``sockaddr_arg``, ``skb_arg``, e.g.
  ``tcp_connect``) -> Network Activity. A kprobe whose action stopped the operation
  (``KPROBE_ACTION_SIGKILL``/``OVERRIDE``/``NOTIFY_ENFORCER``) is marked Denied/Blocked.

Other event types (tracepoints, uprobes, LSM, loader, throttle) and kprobes with neither a
file nor a socket argument are skipped and counted. The workload is the Kubernetes pod when
``process.pod`` is present, else the host named by ``node_name``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from collectors.base import (
    MAX_LIST,
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
    raw_data,
    rfc3339_ms,
)
from collectors.model import (
    ACTION_DENIED,
    DISPOSITION_BLOCKED,
    PROFILES,
    SECURITY_CONTROL,
    Actor,
    Container,
    Device,
    File,
    FileActivity,
    NetworkActivity,
    NetworkConnectionInfo,
    NetworkEndpoint,
    OcsfEvent,
    Process,
    ProcessActivity,
    User,
)
from collectors.workload import Workload, device_for

SOURCE = "tetragon"
PRODUCT = "Tetragon"
VENDOR = "Cilium"

MAPPED = ("process_exec", "process_exit", "process_kprobe")
# Event types Tetragon exports that Ramparts does not map (skipped, counted).
UNMAPPED = (
    "process_tracepoint",
    "process_uprobe",
    "process_lsm",
    "process_usdt",
    "process_loader",
    "process_throttle",
    "rate_limit_info",
    "test",
)
_BLOCKING = frozenset(
    {"KPROBE_ACTION_SIGKILL", "KPROBE_ACTION_OVERRIDE", "KPROBE_ACTION_NOTIFY_ENFORCER"}
)

_MASK = -1  # security_file_permission: read or write from the MAY_* mask
_BY_FLAGS = -2  # open(2) family: from the open flags
# Kernel functions (hooks) -> File System Activity id.
FILE_FUNCTIONS: dict[str, int] = {
    "security_file_permission": _MASK,
    "security_file_open": FileActivity.OPEN,
    "fd_install": FileActivity.OPEN,
    "security_mmap_file": FileActivity.OPEN,
    "vfs_write": FileActivity.UPDATE,
    "vfs_read": FileActivity.READ,
    "security_path_truncate": FileActivity.UPDATE,
    "do_truncate": FileActivity.UPDATE,
    "vfs_truncate": FileActivity.UPDATE,
    "security_path_unlink": FileActivity.DELETE,
    "security_inode_unlink": FileActivity.DELETE,
    "vfs_unlink": FileActivity.DELETE,
    "security_path_rmdir": FileActivity.DELETE,
    "security_path_rename": FileActivity.RENAME,
    "security_inode_rename": FileActivity.RENAME,
    "vfs_rename": FileActivity.RENAME,
    "security_path_mkdir": FileActivity.CREATE,
    "security_inode_mkdir": FileActivity.CREATE,
    "vfs_mkdir": FileActivity.CREATE,
    "security_inode_create": FileActivity.CREATE,
    "vfs_create": FileActivity.CREATE,
    "security_path_mknod": FileActivity.CREATE,
    "security_path_symlink": FileActivity.CREATE,
    "security_path_link": FileActivity.CREATE,
    "security_path_chmod": FileActivity.SET_SECURITY,
    "security_path_chown": FileActivity.SET_SECURITY,
    "chmod_common": FileActivity.SET_SECURITY,
    "chown_common": FileActivity.SET_SECURITY,
}
# System calls (after the arch prefix: __x64_sys_write -> write) -> File System Activity id.
FILE_SYSCALLS: dict[str, int] = {
    **dict.fromkeys(("write", "pwrite64", "writev", "pwritev", "pwritev2"), FileActivity.UPDATE),
    **dict.fromkeys(("read", "pread64", "readv", "preadv", "preadv2"), FileActivity.READ),
    **dict.fromkeys(("open", "openat", "openat2", "creat"), _BY_FLAGS),
    **dict.fromkeys(("unlink", "unlinkat", "rmdir"), FileActivity.DELETE),
    **dict.fromkeys(("rename", "renameat", "renameat2"), FileActivity.RENAME),
    **dict.fromkeys(("mkdir", "mkdirat"), FileActivity.CREATE),
    **dict.fromkeys(("truncate", "ftruncate"), FileActivity.UPDATE),
    **dict.fromkeys(
        ("chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat"),
        FileActivity.SET_SECURITY,
    ),
}
# Kernel functions and syscalls -> (Network Activity id, direction id: 1 in, 2 out, 0 unknown)
NET_FUNCTIONS: dict[str, tuple[int, int]] = {
    "tcp_connect": (NetworkActivity.OPEN, 2),
    "tcp_v4_connect": (NetworkActivity.OPEN, 2),
    "tcp_v6_connect": (NetworkActivity.OPEN, 2),
    "security_socket_connect": (NetworkActivity.OPEN, 2),
    "connect": (NetworkActivity.OPEN, 2),
    "inet_csk_accept": (NetworkActivity.OPEN, 1),
    "security_socket_accept": (NetworkActivity.OPEN, 1),
    "accept": (NetworkActivity.OPEN, 1),
    "accept4": (NetworkActivity.OPEN, 1),
    "inet_listen": (NetworkActivity.LISTEN, 0),
    "security_socket_listen": (NetworkActivity.LISTEN, 0),
    "listen": (NetworkActivity.LISTEN, 0),
    "security_socket_bind": (NetworkActivity.LISTEN, 0),
    "bind": (NetworkActivity.LISTEN, 0),
    "tcp_close": (2, 0),
    "tcp_sendmsg": (NetworkActivity.TRAFFIC, 0),
    "tcp_recvmsg": (NetworkActivity.TRAFFIC, 0),
    "udp_sendmsg": (NetworkActivity.TRAFFIC, 0),
    "udp_recvmsg": (NetworkActivity.TRAFFIC, 0),
    "ip_output": (NetworkActivity.TRAFFIC, 0),
    "sendto": (NetworkActivity.TRAFFIC, 0),
    "sendmsg": (NetworkActivity.TRAFFIC, 0),
}
_SYSCALL_PREFIX = re.compile(r"^(?:__(?:x64|arm64|ia32|riscv|s390x)_sys_|__se_sys_|__do_sys_|sys_)")
_DIRECTIONS = {0: "Unknown", 1: "Inbound", 2: "Outbound"}
_PROTOCOLS = {"IPPROTO_TCP": ("tcp", 6), "IPPROTO_UDP": ("udp", 17), "IPPROTO_ICMP": ("icmp", 1)}
_FAMILIES = {"AF_INET": 4, "AF_INET6": 6}
_MAY_EXEC, _MAY_WRITE, _MAY_READ, _MAY_APPEND = 0x1, 0x2, 0x4, 0x8
_O_ACCMODE, _O_CREAT = 0o3, 0o100
_RUNTIME_PREFIX = re.compile(r"^[a-z][a-z0-9+.-]*://")


class _Skip(Exception):
    """A record that is fine but not one we map."""


# -- readers ---------------------------------------------------------------------------------


def _canon(value: Any) -> Any:
    """The value with every number as a string and keys sorted (depth already bounded)."""
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text(value: Any, limit: int = 8192) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return clip(value, limit)


def _num(value: Any) -> int | None:
    """A number (protobuf JSON writes 64-bit ones as strings); None if absent or garbage."""
    if value is None:
        return None
    try:
        return as_int(value, "number")
    except RecordError:
        return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ip(value: Any) -> str | None:
    return ip_text(_text(value, 64))


def _port(value: Any) -> int | None:
    n = _num(value)
    return n if n is not None and 0 < n <= 65535 else None


def _container_id(value: Any) -> str | None:
    """``containerd://abc...`` -> ``abc...`` (the runtime prefix is not part of the id)."""
    text = _text(value, 256)
    return _RUNTIME_PREFIX.sub("", text) if text else None


def matches(record: Any) -> bool:
    """A Tetragon export line: one event-type key with an object, and node_name or time."""
    try:
        if isinstance(record, str) and record.lstrip().startswith("{"):
            record = load_json(record)
        if not isinstance(record, dict):
            return False
        if not ("node_name" in record or "time" in record):
            return False
        keys = [k for k in (*MAPPED, *UNMAPPED) if isinstance(record.get(k), dict)]
        return len(keys) == 1 and (keys[0] != "test" or len(record) <= 3)
    except Exception:  # matches() answers, it never fails
        return False


# -- processes and workload ------------------------------------------------------------------


def _workload(process: dict[str, Any], node: str | None, ctx: Context) -> Workload:
    pod = _obj(process.get("pod"))
    ns, name = _text(pod.get("namespace"), 253), _text(pod.get("name"), 253)
    if ns and name:
        container = _obj(pod.get("container"))
        image = _obj(container.get("image"))
        return Workload(
            "k8s-pod",
            f"{ns}/{name}",
            name=name,
            account=ctx.account,
            region=ctx.region,
            hostname=node,
            container_id=_container_id(container.get("id")),
            container_name=_text(container.get("name"), 253),
            image=_text(image.get("name"), 1024),
        )
    if node:
        return Workload(
            "host", node, name=node, account=ctx.account, region=ctx.region, hostname=node
        )
    raise RecordError("no workload: no process.pod and no node_name")


def _device(w: Workload, process: dict[str, Any]) -> Device:
    device = device_for(w)
    image = device.container.image if device.container else None
    if image is not None and image.uid in (None, image.name):  # prefer a digest to the name
        pod = _obj(process.get("pod"))
        image_id = _obj(_obj(pod.get("container")).get("image")).get("id")
        image.uid = _text(image_id, 1024) or image.name
    return device


def _process(p: dict[str, Any], *, with_parent: dict[str, Any] | None = None) -> Process | None:
    pid, exec_id = _num(p.get("pid")), _text(p.get("exec_id"), 512)
    if pid is None and exec_id is None:
        return None
    binary, args = _text(p.get("binary")), _text(p.get("arguments"))
    cmd = f"{binary} {args}" if binary and args else binary
    uid = _num(p.get("uid"))
    pod = _obj(p.get("pod"))
    c = _obj(pod.get("container"))
    cid = _container_id(c.get("id")) or _text(p.get("docker"), 256)
    parent = None
    if with_parent is not None:
        parent = _process(with_parent)
    if parent is None and _text(p.get("parent_exec_id"), 512):
        parent = Process(uid=_text(p.get("parent_exec_id"), 512))
    return Process(
        pid=pid,
        uid=exec_id,
        name=basename(binary) if binary else None,
        cmd_line=clip(cmd) if cmd else None,
        file=File(name=basename(binary), path=binary) if binary else None,
        user=User(uid=str(uid)) if uid is not None else None,
        working_directory=_text(p.get("cwd")),
        created_time=rfc3339_ms(p.get("start_time")),
        parent_process=parent,
        container=Container(uid=cid, name=_text(c.get("name"), 253)) if cid else None,
        namespace_pid=_num(c.get("pid")),
    )


# -- kprobe arguments ------------------------------------------------------------------------


def _args(body: dict[str, Any]) -> list[dict[str, Any]]:
    args = body.get("args")
    if args is None:
        return []
    if not isinstance(args, list):
        raise RecordError("args: expected a list")
    if len(args) > MAX_LIST:
        raise RecordError(f"{len(args)} kprobe arguments, over the {MAX_LIST} limit")
    return [a for a in args if isinstance(a, dict)]


def _paths(args: list[dict[str, Any]]) -> list[str]:
    out = []
    for arg in args:
        for key in ("file_arg", "path_arg", "linux_binprm_arg"):
            path = _text(_obj(arg.get(key)).get("path"))
            if path:
                out.append(path)
    return out


def _ints(args: list[dict[str, Any]]) -> list[int]:
    out = []
    for arg in args:
        for key in ("int_arg", "uint_arg", "long_arg", "size_arg"):
            if key in arg and (n := _num(arg[key])) is not None:
                out.append(n)
    return out


def _file_kprobe(
    fn: str, syscall: str, args: list[dict[str, Any]]
) -> tuple[File, File | None, int] | None:
    paths = _paths(args)
    kind = FILE_FUNCTIONS.get(fn, FILE_SYSCALLS.get(syscall))
    if not paths and kind == _BY_FLAGS:  # open(2): the path is a string argument
        paths = [s for a in args if (s := _text(a.get("string_arg"))) and s.startswith("/")]
    if not paths:
        return None
    if kind is None:
        kind = 99
    ints = _ints(args)
    if kind == _MASK:
        mask = ints[0] if ints else 0
        if mask & (_MAY_WRITE | _MAY_APPEND):
            kind = FileActivity.UPDATE
        elif mask & _MAY_READ:
            kind = FileActivity.READ
        else:
            kind = FileActivity.OPEN
    elif kind == _BY_FLAGS:
        flags = ints[-1] if ints else 0
        if flags & _O_ACCMODE:
            kind = FileActivity.CREATE if flags & _O_CREAT else FileActivity.UPDATE
        else:
            kind = FileActivity.READ
    path = paths[0]
    folder = fn.endswith("mkdir") or syscall in ("mkdir", "mkdirat", "rmdir")
    file = File(name=basename(path), path=path, type_id=2 if folder else 1)
    if "/" in path.rstrip("/")[1:]:
        file.parent_folder = path.rstrip("/").rsplit("/", 1)[0]
    result = None
    if kind == FileActivity.RENAME and len(paths) > 1:
        result = File(name=basename(paths[1]), path=paths[1])
    return file, result, kind


def _net_kprobe(
    fn: str, syscall: str, args: list[dict[str, Any]], ret: dict[str, Any]
) -> tuple[NetworkEndpoint | None, NetworkEndpoint | None, int, int, dict[str, Any]] | None:
    activity, direction = NET_FUNCTIONS.get(fn, NET_FUNCTIONS.get(syscall, (99, 0)))
    socks = [_obj(a.get("sock_arg")) for a in args if isinstance(a.get("sock_arg"), dict)]
    if isinstance(ret.get("sock_arg"), dict):  # inet_csk_accept returns the new socket
        socks.append(ret["sock_arg"])
    sock = socks[0] if socks else {}
    local_ip, remote_ip = _ip(sock.get("saddr")), _ip(sock.get("daddr"))
    local_port, remote_port = _port(sock.get("sport")), _port(sock.get("dport"))
    for arg in args:
        addr = _obj(arg.get("sockaddr_arg"))
        if _ip(addr.get("addr")):  # connect()/bind() target
            remote_ip, remote_port = _ip(addr.get("addr")), _port(addr.get("port"))
            if activity == NetworkActivity.LISTEN:
                local_ip, local_port, remote_ip, remote_port = remote_ip, remote_port, None, None
        skb = _obj(arg.get("skb_arg"))
        if not sock and (_ip(skb.get("saddr")) or _ip(skb.get("daddr"))):  # a packet
            local_ip, local_port = _ip(skb.get("saddr")), _port(skb.get("sport"))
            remote_ip, remote_port = _ip(skb.get("daddr")), _port(skb.get("dport"))
            sock = skb
    if not local_ip and not remote_ip:
        return None
    local = NetworkEndpoint(ip=local_ip, port=local_port) if local_ip else None
    remote = NetworkEndpoint(ip=remote_ip, port=remote_port) if remote_ip else None
    if activity == NetworkActivity.LISTEN:
        src, dst = None, local
    elif direction == 1:
        src, dst = remote, local
    else:
        src, dst = local, remote
    if src is None and dst is None:
        return None
    return src, dst, activity, direction, sock


# -- events ----------------------------------------------------------------------------------


def _event(record: dict[str, Any], ctx: Context, raw: str) -> OcsfEvent:
    kind = next((k for k in (*MAPPED, *UNMAPPED) if k in record), None)
    if kind is None:
        raise RecordError("no Tetragon event: expected process_exec, process_exit, process_kprobe")
    if kind in UNMAPPED:
        raise _Skip(kind)
    body = record[kind]
    if not isinstance(body, dict):
        raise RecordError(f"{kind}: expected an object")
    process_raw = body.get("process")
    if not isinstance(process_raw, dict):
        raise RecordError(f"{kind}: no process")
    node = _text(record.get("node_name"), 253)
    time_ms = rfc3339_ms(record.get("time")) or rfc3339_ms(body.get("time"))
    if time_ms is None and kind == "process_exec":
        time_ms = rfc3339_ms(process_raw.get("start_time"))
    if time_ms is None:
        raise RecordError("no usable time (`time`)")
    parent_raw = body.get("parent") if isinstance(body.get("parent"), dict) else None
    process = _process(process_raw, with_parent=parent_raw)
    if process is None:
        raise RecordError(f"{kind}: process has neither pid nor exec_id")
    w = _workload(process_raw, node, ctx)
    device = _device(w, process_raw)
    pod = _obj(process_raw.get("pod"))
    unmapped: dict[str, Any] = {
        "event": kind,
        "flags": _text(process_raw.get("flags"), 256),
        "docker": _text(process_raw.get("docker"), 64),
        "in_init_tree": process_raw.get("in_init_tree")
        if isinstance(process_raw.get("in_init_tree"), bool)
        else None,
        "pod_workload": _text(pod.get("workload"), 253),
        "pod_workload_kind": _text(pod.get("workload_kind"), 64),
        "maybe_exec_probe": _obj(pod.get("container")).get("maybe_exec_probe") is True or None,
    }
    raw_text, cut = raw_data(raw)
    # numbers and numbers-as-strings (protobuf JSON's 64-bit ints) give the same uid
    uid = hashlib.sha256(compact_json(_canon(record)).encode("utf-8", "replace")).hexdigest()[:32]
    labels: list[str] | None = None
    profiles = list(PROFILES)
    fields: dict[str, Any] = {}
    event_code = kind
    cls: type[OcsfEvent]
    if kind == "process_exec":
        flags = (_text(process_raw.get("flags"), 256) or "").split()
        launch = None if "procFS" in flags else 1 if "clone" in flags else 3
        parent = process.parent_process
        cls = ProcessActivity
        fields = {
            "activity_id": ProcessActivity.LAUNCH,
            "actor": Actor(process=parent) if parent is not None else Actor(process=process),
            "process": process,
            "launch_type_id": launch,
        }
    elif kind == "process_exit":
        signal = _text(body.get("signal"), 64)
        status = _num(body.get("status"))
        process.terminated_time = time_ms
        parent = process.parent_process
        cls = ProcessActivity
        fields = {
            "activity_id": ProcessActivity.TERMINATE,
            "actor": Actor(process=parent) if parent is not None else Actor(process=process),
            "process": process,
            # protobuf JSON leaves a zero status out; with a signal there is no exit code
            "exit_code": status if status is not None else (None if signal else 0),
            "status_detail": signal,
        }
        unmapped["signal"] = signal
    else:
        fn = _text(body.get("function_name"), 256)
        if fn is None:
            raise RecordError("process_kprobe: no function_name")
        syscall = _SYSCALL_PREFIX.sub("", fn)
        args = _args(body)
        ret = _obj(body.get("return"))
        event_code = f"process_kprobe:{fn}"
        action = _text(body.get("action"), 64)
        tags = body.get("tags")
        if isinstance(tags, list):
            labels = [clip(t, 128) for t in tags[:MAX_LIST] if isinstance(t, str)] or None
        unmapped.update(
            function_name=fn,
            policy_name=_text(body.get("policy_name"), 256),
            action=action,
            return_action=_text(body.get("return_action"), 64),
            message=_text(body.get("message"), 1024),
        )
        actor = Actor(process=process)
        net = _net_kprobe(fn, syscall, args, ret)
        file = _file_kprobe(fn, syscall, args) if net is None else None
        if net is not None:
            src, dst, activity, direction, sock = net
            proto = _PROTOCOLS.get(_text(sock.get("protocol"), 32) or "")
            cls = NetworkActivity
            fields = {
                "activity_id": activity,
                "actor": actor,
                "src_endpoint": src,
                "dst_endpoint": dst,
                "connection_info": NetworkConnectionInfo(
                    direction_id=direction,
                    direction=_DIRECTIONS[direction],
                    protocol_name=proto[0] if proto else None,
                    protocol_num=proto[1] if proto else None,
                    protocol_ver_id=_FAMILIES.get(_text(sock.get("family"), 32) or ""),
                ),
            }
            unmapped["socket_state"] = _text(sock.get("state"), 64)
        elif file is not None:
            f, result, activity = file
            cls = FileActivity
            fields = {"activity_id": activity, "actor": actor, "file": f, "file_result": result}
        else:
            raise _Skip(f"kprobe {fn} has no file or socket argument")
        returned = _num(ret.get("int_arg"))
        if returned is not None:
            fields["status_id"] = 1 if returned >= 0 else 2
            fields["status_detail"] = f"returned {returned}" if returned < 0 else None
        if action in _BLOCKING or _text(body.get("return_action"), 64) in _BLOCKING:
            profiles.append(SECURITY_CONTROL)
            fields.update(
                action_id=ACTION_DENIED,
                action="Denied",
                disposition_id=DISPOSITION_BLOCKED,
                disposition="Blocked",
            )
    meta = metadata(
        PRODUCT,
        VENDOR,
        uid=uid,
        original_time=_text(record.get("time"), 64),
        event_code=event_code,
        labels=labels,
        profiles=profiles,
        is_truncated=True if cut else None,
    )
    return cls(
        time=time_ms,
        metadata=meta,
        cloud=cloud(ctx.account, ctx.region),
        device=device,
        raw_data=raw_text,
        unmapped={k: v for k, v in unmapped.items() if v is not None},
        **fields,
    )


def normalize(record: Any, ctx: Context) -> Batch:
    """One Tetragon export line -> one activity event (or a skip, or a reject)."""
    batch = Batch()
    try:
        value, raw = load_object(record)
        batch.events.append(_event(value, ctx, raw))
    except _Skip:
        batch.skipped += 1
    except RecordError as exc:
        batch.rejects.append(Reject(SOURCE, str(exc), excerpt(record), ctx.origin))
    except Exception as exc:  # a bug must not take the caller down: say so, with the record
        reason = f"internal error: {type(exc).__name__}: {clip(str(exc), 200)}"
        batch.rejects.append(Reject(SOURCE, reason, excerpt(record), ctx.origin))
    return batch
