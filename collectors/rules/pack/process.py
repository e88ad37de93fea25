"""Built-in rules: processes and hosts.

What runs inside a Lambda function (the Ramparts layer's ``process.spawn``, ``process.env``,
``file.*`` and ``native.load`` lines) and on VMs and containers (Falco, osquery and Tetragon
launches, file changes and kernel probes): shells and network tools where there should be
none, reverse shells, fetch-and-run, programs run from writable directories (and files
written then run), miners, kernel modules, dynamic-linker hijacking and reads of process
environments. Command lines are read through :mod:`collectors.rules.pack._programs`, which
sees through ``sh -c`` strings, launchers (``env``, ``nohup``, ``sudo``...) and ``busybox``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from collectors.model import (
    DISPOSITION_BLOCKED,
    FileActivity,
    ModuleActivity,
    NetworkActivity,
    OcsfEvent,
    ProcessActivity,
)
from collectors.rules.engine import CRITICAL, HIGH, MEDIUM, Hit, RuleContext, rule
from collectors.rules.pack import _programs as P

_HOSTS = ("falco", "osquery", "tetragon")
_ALL = ("layer", "falco", "osquery", "tetragon")
_WRITES = frozenset(
    {
        FileActivity.CREATE,
        FileActivity.UPDATE,
        FileActivity.RENAME,
        FileActivity.SET_ATTRIBUTES,
        FileActivity.SET_SECURITY,
    }
)
_READS = frozenset({FileActivity.READ, FileActivity.OPEN})
# Agents that read other processes' environments as part of their job (container tagging,
# process inventories, the sensors themselves).
_ENV_READERS = frozenset(
    {
        "datadog-agent",
        "process-agent",
        "system-probe",
        "trace-agent",
        "security-agent",
        "newrelic-infra",
        "nri-agent",
        "dynatrace",
        "oneagentos",
        "oneagentwatchdog",
        "falco",
        "tetragon",
        "osqueryd",
        "sysdig",
        "dragent",
        "crowdstrike",
        "falcon-sensor",
        "systemd",
        "containerd",
        "containerd-shim",
        "containerd-shim-runc-v2",
        "runc",
        "crio",
        "dockerd",
        "kubelet",
        "amazon-ssm-agent",
        "ssm-agent-worker",
        "amazon-cloudwatch-agent",
        "fluent-bit",
        "otelcol",
        "otelcol-contrib",
        "elastic-agent",
        "metricbeat",
        "auditbeat",
    }
)


def _launch(event: ProcessActivity, ctx: RuleContext) -> P.ProcView | None:
    """The view of a process launch (None for exits and other activities)."""
    if event.activity_id != ProcessActivity.LAUNCH:
        return None
    if ctx.source == "osquery" and event.status_id == 2:
        return None  # bpf_process_events: the exec failed, nothing ran
    return P.view(event, ctx.source)


def _evidence(v: P.ProcView, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"command_line": v.cmdline[:1024]} if v.cmdline else {}
    if v.exe:
        out["executable"] = v.exe
    if v.parent.name:
        out["parent"] = v.parent.name
    if v.parent.cmdline:
        out["parent_command_line"] = v.parent.cmdline[:512]
    out.update({k: val for k, val in extra.items() if val not in (None, "", [])})
    return out


def _layer_location(event: OcsfEvent) -> dict[str, Any]:
    un = event.unmapped or {}
    out: dict[str, Any] = {}
    if isinstance(un.get("location"), dict):
        out["location"] = un["location"]
    if isinstance(un.get("verdict"), str):
        out["sensor_verdict"] = un["verdict"]
    if isinstance(un.get("rule"), str):
        out["sensor_rule"] = un["rule"]
    return out


# -- 1, 2: inside a Lambda function ---------------------------------------------------------
@rule(
    id="process.shell-from-function",
    title="Shell spawned inside a Lambda function",
    severity=HIGH,
    techniques=["T1059.004", "T1648"],
    sources=["layer"],
    classes=[ProcessActivity],
)
def shell_from_function(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
    """A Lambda function started a shell (sh, bash, dash, zsh, ash, busybox sh, ...): by
    ``os.system``/``shell=True`` or as a program a command string runs, whatever the sensor
    decided (allowed, alerted or blocked). Functions rarely need a shell; command injection
    always does. Grouped by shell, one finding per function. Not detected: code that runs
    shell commands without a shell (``subprocess.run([...])`` of other programs)."""
    v = _launch(event, ctx)
    if v is None:
        return None
    shells = P.shells_run(v)
    if not shells:
        return None
    blocked = event.disposition_id == DISPOSITION_BLOCKED
    return Hit(
        key=shells[0],
        summary=f"shell {shells[0]} started in the function: {v.cmdline[:200]}",
        evidence=_evidence(v, shells=shells, blocked=blocked or None, **_layer_location(event)),
    )


@rule(
    id="process.network-tool-from-function",
    title="Network tool run inside a Lambda function",
    severity=HIGH,
    techniques=["T1105", "T1059.004"],
    sources=["layer"],
    classes=[ProcessActivity],
)
def network_tool_from_function(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
    """A Lambda function ran a network tool: a downloader (curl, wget, busybox wget...), a raw
    client (nc, ncat, socat, telnet, openssl s_client), remote access (ssh, scp, sftp), a
    scanner (nmap, masscan), a DNS tool or a tunnel (chisel, ngrok...), directly or inside a
    shell string, or bash's ``/dev/tcp`` redirection. A function has its SDKs for the network;
    a tool means someone is fetching code or talking out. Grouped by tool."""
    v = _launch(event, ctx)
    if v is None:
        return None
    tools = P.network_tools_run(v)
    un = event.unmapped or {}
    programs = un.get("programs")
    if isinstance(programs, list) and "/dev/tcp" in programs and "/dev/tcp" not in tools:
        tools.append("/dev/tcp")
    if not tools:
        tools = (
            ["/dev/tcp"]
            if any(P.DEV_NET.search(t) for c in v.commands for _, t in c.redirects)
            else []
        )
    if not tools:
        return None
    return Hit(
        key=tools[0],
        summary=f"network tool {tools[0]} run in the function: {v.cmdline[:200]}",
        evidence=_evidence(v, tools=tools, **_layer_location(event)),
    )


# -- 3, 4: web servers on VMs and containers -----------------------------------------------
@rule(
    id="process.shell-from-web-process",
    title="Shell spawned by a web server or web application",
    severity=HIGH,
    techniques=["T1505.003", "T1059.004", "T1190"],
    sources=_HOSTS,
    classes=[ProcessActivity],
)
def shell_from_web_process(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
    """A shell whose parent is a web server or a web-facing runtime (nginx, httpd/apache2,
    php-fpm, node, java/tomcat, gunicorn/uwsgi/uvicorn, puma/unicorn, a python or ruby process
    that serves...): a web shell or a command injection. JVMs and node processes that run a
    build or CI (maven, gradle, jenkins agents, npm, yarn...) are not web processes. Needs the
    parent's name: Falco's ``proc.pname``, Tetragon's ``parent``; osquery's ``process_events``
    only has the parent's pid, so osquery launches match only when the query joins the
    parent's row as ``parent_name``/``parent_path``/``parent_cmdline`` columns. Grouped by
    parent and shell."""
    v = _launch(event, ctx)
    if v is None:
        return None
    shell = P.launched_shell(v)
    if shell is None:
        return None
    web = P.web_parent(v.parent)
    if web is None:
        return None
    return Hit(
        key=f"{v.parent.name}>{shell}",
        summary=f"{web} started {shell}: {v.cmdline[:200]}",
        evidence=_evidence(v, web_process=web, shell=shell),
    )


@rule(
    id="process.network-tool-from-web-process",
    title="Network tool run by a web server or web application",
    severity=HIGH,
    techniques=["T1505.003", "T1105"],
    sources=_HOSTS,
    classes=[ProcessActivity],
)
def network_tool_from_web_process(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
    """A network tool (curl, wget, nc, socat, ssh, nmap, busybox applets...) started by a web
    server or web-facing runtime, directly, inside the command string of a shell the web
    process started, or by a shell whose parent is the web process (Falco's
    ``proc.aname``): a web shell fetching tools or calling out. Same parents as
    ``process.shell-from-web-process``; no match when the parent is unknown. Grouped by
    web process and tool."""
    v = _launch(event, ctx)
    if v is None:
        return None
    tools = P.network_tools_run(v)
    if not tools:
        return None
    web = P.in_web_context(v)
    if web is None:
        return None
    return Hit(
        key=f"{web.split(' ')[0]}>{tools[0]}",
        summary=f"{web} ran {tools[0]}: {v.cmdline[:200]}",
        evidence=_evidence(v, web_process=web, tools=tools),
    )


# -- 5: reverse shells ----------------------------------------------------------------------
_SHELL_NET_EVT = frozenset({"dup", "dup2", "dup3"})


_INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


def _public(ip: str | None) -> bool:
    """An address outside the workload's own networks (private, loopback, link-local,
    carrier-grade NAT, multicast): where a reverse shell calls home."""
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not any(addr.version == n.version and addr in n for n in _INTERNAL)


@rule(
    id="process.reverse-shell",
    title="Reverse shell",
    severity=CRITICAL,
    techniques=["T1059.004", "T1095"],
    sources=_ALL,
    classes=[ProcessActivity, NetworkActivity],
)
def reverse_shell(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """A shell wired to a network connection: bash/sh redirections to ``/dev/tcp`` or
    ``/dev/udp``, ``exec N<>/dev/tcp``, netcat with ``-e``/``-c``/``--exec``, socat
    ``exec:``/``system:`` to a TCP/SSL address, a raw client (nc, telnet, openssl s_client)
    piped into a shell (the ``mkfifo`` forms), python/perl/php/ruby/node/lua/awk/PowerShell
    one-liners that open a socket and start a shell or ``pty.spawn`` it, zsh's ``ztcp``;
    from any source's command line. Also: a shell process (bash, sh...) itself opening a
    connection to a public address (osquery ``socket_events``, Tetragon ``tcp_connect``,
    Falco ``connect``) and Falco's ``dup2`` of a socket onto a shell's standard streams.
    Not detected: compiled reverse shells (a binary that connects and execs), which the
    network rules and ``process.exec-from-writable-path`` see. Grouped by technique and
    destination."""
    if isinstance(event, NetworkActivity):
        return _shell_socket(event, ctx)
    if not isinstance(event, ProcessActivity):
        return None
    v = _launch(event, ctx)
    if v is None:
        return None
    found = P.reverse_shell(v)
    if found is None:
        return None
    kind, dest = found
    return Hit(
        key=f"{kind}:{dest}" if dest else kind,
        summary=f"reverse shell ({kind}{' to ' + dest if dest else ''}): {v.cmdline[:200]}",
        evidence=_evidence(v, technique=kind, destination=dest, **_layer_location(event)),
    )


def _shell_socket(event: NetworkActivity, ctx: RuleContext) -> Hit | None:
    actor = event.actor.process if event.actor is not None else None
    if actor is None or ctx.source == "layer":
        return None
    path = actor.file.path if actor.file is not None and actor.file.path else ""
    name = P.prog_name(actor.name or path)
    if name not in P.SHELLS:
        return None
    dst = event.dst_endpoint
    src = event.src_endpoint
    code = (event.metadata.event_code or "").lower()
    if ctx.source == "falco" and code in _SHELL_NET_EVT:
        fd = P.falco_fields(event).get("fd.num")
        if fd not in (0, 1, 2, "0", "1", "2", None):
            return None
        remote = dst if dst is not None and _public(dst.ip) else src
        ip = remote.ip if remote is not None else None
        port = remote.port if remote is not None else None
        key = f"{ip}:{port}" if ip else "socket"
        return Hit(
            key=f"dup:{key}",
            summary=f"{name} has its standard streams on a network socket ({key})",
            evidence={"shell": name, "remote": key, "falco_event": code},
        )
    if event.activity_id != NetworkActivity.OPEN:
        return None
    direction = event.connection_info.direction_id if event.connection_info else None
    if direction != 2 or dst is None or not _public(dst.ip):
        return None
    key = f"{dst.ip}:{dst.port}"
    return Hit(
        key=f"shell-connect:{key}",
        severity=HIGH,
        summary=f"{name} (pid {actor.pid}) connected to {key}",
        evidence={"shell": name, "executable": path, "destination": key},
    )


# -- 6: download and execute ----------------------------------------------------------------
@rule(
    id="process.download-and-execute",
    title="Code downloaded and executed in one command",
    severity=HIGH,
    techniques=["T1105", "T1059.004"],
    sources=_ALL,
    classes=[ProcessActivity],
)
def download_and_execute(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
    """One command line that fetches code and runs it: a downloader piped into a shell or
    interpreter (``curl ... | sh``, ``wget -qO- ... | bash``, ``busybox wget -O- ... | sh``,
    ``curl ... | python3 -``), a download substituted into a shell, ``eval`` or interpreter
    (``sh -c "$(curl ...)"``, ``bash <(curl ...)``), a download saved then run
    (``curl -o /tmp/x ... && chmod +x /tmp/x && /tmp/x``, ``wget URL; sh x.sh``), and
    python/perl/php/ruby/node/lua/PowerShell one-liners that fetch and exec. Downloads piped
    into a data tool (``tar``, ``jq``, ``python -c 'json...'``) are not. Provisioning scripts
    that install this way match too (they are the same thing). Grouped by where from."""
    v = _launch(event, ctx)
    if v is None:
        return None
    found = P.download_execute(v)
    if found is None:
        return None
    kind, origin = found
    return Hit(
        key=origin or kind,
        summary=f"download and execute ({kind}) from {origin or 'unknown'}: {v.cmdline[:200]}",
        evidence=_evidence(v, technique=kind, origin=origin, **_layer_location(event)),
    )


# -- 7: programs from writable paths ----------------------------------------------------------
def _writable_exec(v: P.ProcView, lambda_fn: bool) -> list[str]:
    out: list[str] = []
    for p in v.exec_paths:
        if P.writable_dir(p) is None:
            continue
        if not lambda_fn and P.build_scratch(p):
            continue
        out.append(P.norm_path(p) if not P.is_memfd(p) else p)
    return list(dict.fromkeys(out))


@rule(
    id="process.exec-from-writable-path",
    title="Program executed from a writable directory",
    severity=HIGH,
    techniques=["T1105", "T1036"],
    sources=_ALL,
    classes=[ProcessActivity],
)
def exec_from_writable_path(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
    """A program (or a script given to a shell or interpreter) run from a directory anyone
    can write: ``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run/shm``, ``/dev/mqueue``,
    ``/run/user/<uid>``, or an anonymous memory file (``memfd:``); in a Lambda function,
    anything under ``/tmp`` (the only writable place), including the programs a shell string
    runs. Hidden names (``/tmp/.x``) are called out. On VMs, build tools' scratch directories
    (``/tmp/go-build*``, ``/tmp/bazel*``...) are left out. Paths are taken as the source
    resolved them. Grouped by path."""
    v = _launch(event, ctx)
    if v is None:
        return None
    is_lambda = ctx.source == "layer" or (
        ctx.workload is not None and ctx.workload.type == "lambda"
    )
    paths = _writable_exec(v, is_lambda)
    if not paths:
        return None
    path = paths[0]
    is_hidden = P.hidden(path)
    return Hit(
        key=path,
        title="Hidden program executed from a writable directory" if is_hidden else None,
        summary=f"{path} executed from {P.writable_dir(path)}: {v.cmdline[:200]}",
        evidence=_evidence(v, paths=paths, hidden=is_hidden or None, **_layer_location(event)),
    )


# -- 8: written, then executed ----------------------------------------------------------------
_WTE_MAX = 256  # remembered paths per workload
_WTE_WINDOW_S = 900


def _scope(event: OcsfEvent) -> str:
    """What shares a file system: the Lambda sandbox, else the container, else the host."""
    un = event.unmapped or {}
    sandbox = un.get("sandbox")
    if isinstance(sandbox, str) and sandbox:
        return sandbox
    device = getattr(event, "device", None)
    container = getattr(device, "container", None)
    uid = getattr(container, "uid", None)
    return uid if isinstance(uid, str) else ""


def _actor_name(event: OcsfEvent) -> str:
    actor = getattr(event, "actor", None)
    proc = actor.process if actor is not None else None
    if proc is None:
        return ""
    path = proc.file.path if proc.file is not None and proc.file.path else ""
    return P.prog_name(proc.name or path)


_COMPILERS = frozenset(
    {
        "ld",
        "ld.bfd",
        "ld.gold",
        "ld.lld",
        "lld",
        "collect2",
        "gcc",
        "cc",
        "g++",
        "clang",
        "clang++",
        "go",
        "link",
        "rustc",
        "cargo",
        "javac",
        "ghc",
        "nim",
        "zig",
        "swiftc",
        "mold",
        "pip",
        "pip3",
        "uv",
        "npm",
        "node-gyp",
        "make",
    }
)


@rule(
    id="process.write-then-exec",
    title="File written and then executed",
    severity=HIGH,
    techniques=["T1105", "T1222.002"],
    sources=_ALL,
    classes=[FileActivity, ProcessActivity],
    stateful=True,
    window_s=_WTE_WINDOW_S,
)
def write_then_exec(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """A file created, written, renamed into place or given new attributes or permissions
    (``chmod +x``) by a workload, and executed by the same workload (the same Lambda sandbox,
    container or host) within 15 minutes: a dropped payload. Writes by package managers,
    compilers and linkers (when the source names the writer) are not remembered. State is
    bounded: at most 256 paths per workload, pruned by age; a workload that writes more than
    that within the window can push an early write out. osquery's file events do not name
    the writer, so every monitored write counts. Grouped by path."""
    if not isinstance(event, FileActivity | ProcessActivity):
        return None
    window_ms = ctx.rule.window_s * 1000
    st: dict[str, Any] = ctx.state
    held = st.get("w")
    seen: dict[str, Any] = held if isinstance(held, dict) else {}
    scope = _scope(event)
    if isinstance(event, FileActivity):
        if event.activity_id not in _WRITES or _actor_name(event) in P.PACKAGE_TOOLS | _COMPILERS:
            return None
        paths = [event.file.path or ""]
        if event.file_result is not None and event.file_result.path:
            paths.append(event.file_result.path)
        for p in paths:
            if p.startswith("/") and event.file.type_id != 2:
                seen[f"{scope}|{P.norm_path(p)}"] = event.time
                st["w"] = seen
        if len(seen) > _WTE_MAX:
            for k in sorted(seen, key=lambda k: seen[k])[: len(seen) - _WTE_MAX]:
                del seen[k]
        return None
    v = _launch(event, ctx)
    if v is None or not seen:
        return None
    for k in [k for k, t in seen.items() if not isinstance(t, int) or event.time - t > window_ms]:
        del seen[k]
    if not seen:
        st.pop("w", None)  # nothing left to remember: the store drops the workload's state
        return None
    for p in v.exec_paths:
        key = f"{scope}|{P.norm_path(p)}"
        written = seen.get(key)
        if isinstance(written, int) and 0 <= event.time - written <= window_ms:
            path = P.norm_path(p)
            return Hit(
                key=path,
                summary=f"{path} executed {(event.time - written) // 1000}s after it was written",
                evidence=_evidence(v, path=path, written_ms=written, **_layer_location(event)),
            )
    return None


# -- 9: miners --------------------------------------------------------------------------------
@rule(
    id="process.crypto-miner",
    title="Cryptocurrency miner started",
    severity=HIGH,
    techniques=["T1496.001"],
    sources=_ALL,
    classes=[ProcessActivity],
)
def crypto_miner(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
    """A cryptocurrency miner: a known miner program (xmrig and its forks, xmr-stak, cpuminer,
    minerd, cgminer, bfgminer, ethminer, t-rex, nbminer, lolminer, phoenixminer, gminer,
    nanominer, srbminer, teamredminer...), or a program given miner arguments (a
    ``stratum+tcp://``/``stratum+ssl://`` pool, ``--donate-level``, a mining algorithm with
    ``-a``/``--algo``, a known pool's address or ``-o <...pool...>:<port>``, a Monero wallet
    with ``-u``), whatever its name. Miner names in the arguments of grep, pkill, kill and
    friends are searches, not miners. Grouped by miner or pool."""
    v = _launch(event, ctx)
    if v is None:
        return None
    found = P.crypto_miner(v)
    if found is None:
        return None
    how, what = found
    return Hit(
        key=what,
        summary=f"cryptocurrency miner ({how}: {what}): {v.cmdline[:200]}",
        evidence=_evidence(v, indicator=how, miner=what, **_layer_location(event)),
    )


# -- 10: kernel modules -------------------------------------------------------------------------
_MODULE_KPROBES = frozenset(
    {
        "init_module",
        "finit_module",
        "delete_module",
        "do_init_module",
        "load_module",
        "do_finit_module",
        "security_kernel_read_file",
        "security_kernel_post_read_file",
        "security_kernel_load_data",
        "security_kernel_module_request",
        "free_module",
    }
)
_FIRMWARE = ("/lib/firmware/", "/usr/lib/firmware/")


def _module_dir(path: str) -> str | None:
    p = P.norm_path(path)
    if p in P.MODULE_FILES:
        return p
    for d in P.MODULE_DIRS:
        if p.startswith(d):
            if d.endswith("/modules/"):  # /lib/modules/<version>: one finding per kernel
                version = p[len(d) :].split("/", 1)[0]
                return d + version
            return p
    return None


@rule(
    id="process.kernel-module",
    title="Kernel module loaded, unloaded or tampered with",
    severity=HIGH,
    techniques=["T1547.006", "T1014"],
    sources=_ALL,
    classes=[ProcessActivity, FileActivity],
)
def kernel_module(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """Kernel module activity: ``insmod``/``modprobe``/``rmmod``/``kmod`` loading or removing a
    module (query options such as ``--dry-run``, ``--show-depends``, ``-c`` left out; the
    kernel's own requests and daemons that load modules as part of their work —
    kube-proxy, dockerd, iptables, udev, systemd-modules-load... — left out); writes to
    ``/lib/modules``, ``modules-load.d``, ``modprobe.d`` and ``/etc/modules``, or of a
    ``.ko`` file anywhere, unless the writer is a package manager, dkms or depmod (osquery's
    file events do not name the writer: kernel upgrades match there); Tetragon kprobes on
    ``init_module``/``finit_module``/``delete_module``/``security_kernel_read_file`` with a
    file argument (kprobes without one are not mapped by the adapter). A module loaded from a
    writable directory is Critical. Grouped by module or directory."""
    if isinstance(event, FileActivity):
        return _module_file(event, ctx)
    if not isinstance(event, ProcessActivity):
        return None
    v = _launch(event, ctx)
    if v is None:
        return None
    found = P.module_operation(v)
    if found is None:
        return None
    parent = v.parent.name
    if parent.startswith(("kworker", "kthreadd")) or parent in P.MODULE_LOADER_PARENTS:
        return None
    op, module = found
    writable = module.startswith("/") and P.writable_dir(module) is not None
    name = P.base(module)
    for suffix in P.MODULE_SUFFIXES:
        name = name.removesuffix(suffix)
    return Hit(
        key=f"{op}:{name}",
        severity=CRITICAL if writable else None,
        summary=f"kernel module {name} {op}ed{' from ' + module if writable else ''}: "
        f"{v.cmdline[:200]}",
        evidence=_evidence(v, operation=op, module=module, writable_path=writable or None),
    )


def _module_file(event: FileActivity, ctx: RuleContext) -> Hit | None:
    path = event.file.path or ""
    if not path.startswith("/"):
        return None
    code = event.metadata.event_code or ""
    if ctx.source == "tetragon" and code.startswith("process_kprobe:"):
        fn = code.split(":", 1)[1]
        for prefix in ("__x64_sys_", "__arm64_sys_", "__ia32_sys_", "__se_sys_", "__do_sys_"):
            fn = fn.removeprefix(prefix)
        fn = fn.removeprefix("sys_")
        if fn in _MODULE_KPROBES:
            p = P.norm_path(path)
            if p.startswith(_FIRMWARE) or (
                fn.startswith("security_kernel") and not p.endswith(P.MODULE_SUFFIXES)
            ):
                return None
            writable = P.writable_dir(p) is not None
            name = P.base(p)
            for suffix in P.MODULE_SUFFIXES:
                name = name.removesuffix(suffix)
            return Hit(
                key=f"load:{name}",
                severity=CRITICAL if writable else None,
                summary=f"kernel module {p} loaded ({fn})",
                evidence={"module": p, "kprobe": fn, "loader": _actor_name(event)},
            )
    if event.activity_id not in _WRITES:
        return None
    writer = _actor_name(event)
    if writer in P.PACKAGE_TOOLS:
        return None
    paths = [path]
    if event.file_result is not None and event.file_result.path:
        paths.append(event.file_result.path)
    for p in paths:
        where = _module_dir(p)
        if where is None and P.norm_path(p).endswith(P.MODULE_SUFFIXES):
            where = P.norm_path(p)
        if where is not None:
            return Hit(
                key=f"write:{where}",
                summary=f"{P.norm_path(p)} changed{' by ' + writer if writer else ''}",
                evidence={"path": P.norm_path(p), "writer": writer or None},
            )
    return None


# -- 11: dynamic-linker hijacking ---------------------------------------------------------------
_LD_CONF = ("/etc/ld.so.conf.d/",)


@rule(
    id="process.ld-preload",
    title="Dynamic linker hijacking (LD_PRELOAD, ld.so.preload)",
    severity=HIGH,
    techniques=["T1574.006"],
    sources=_ALL,
    classes=[ProcessActivity, FileActivity],
)
def ld_preload(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """Code injected through the dynamic linker: ``LD_PRELOAD`` or ``LD_AUDIT`` passed to a
    child (the layer's ``env`` list) or set in a function's process (``process.env``), or
    given on a command line (``LD_PRELOAD=/tmp/x.so cmd``, ``env``/``export``);
    ``LD_LIBRARY_PATH`` when it points into a writable directory; writes to
    ``/etc/ld.so.preload`` (also by a command line's redirection) and, by anything but a
    package manager or ldconfig, to ``/etc/ld.so.conf`` and ``/etc/ld.so.conf.d``. Preloading
    a well-known allocator or test library from a system directory (jemalloc, tcmalloc,
    libfaketime...) is not hijacking; nor is reading ``/etc/ld.so.preload`` (every program
    does). Grouped by variable and library, or by file."""
    if isinstance(event, FileActivity):
        return _preload_file(event)
    if not isinstance(event, ProcessActivity):
        return None
    un = event.unmapped or {}
    proc = event.process
    if event.activity_id == 99 and ctx.source == "layer":  # process.env: set in the function
        for var in proc.environment_variables or []:
            if var.name in P.HIJACK_VARS and var.value.strip():
                suspicious = True
            elif var.name == "LD_LIBRARY_PATH":
                suspicious = P.loader_value_suspicious(var.name, var.value)
            else:
                continue
            if suspicious:
                return Hit(
                    key=f"{var.name}={var.value[:256]}",
                    summary=f"{var.name} set to {var.value[:200]} in the function",
                    evidence={"variable": var.name, "value": var.value[:1024]}
                    | _layer_location(event),
                )
        return None
    v = _launch(event, ctx)
    if v is None:
        return None
    env = un.get("env") if ctx.source == "layer" else None
    if isinstance(env, list):
        hijack = sorted(x for x in env if isinstance(x, str) and x in P.HIJACK_VARS)
        if hijack:
            return Hit(
                key=f"{hijack[0]}:{v.name}",
                summary=f"{', '.join(hijack)} passed to {v.name}: {v.cmdline[:200]}",
                evidence=_evidence(v, variables=hijack, **_layer_location(event)),
            )
    for name, value in P.loader_assignments(v):
        if P.loader_value_suspicious(name, value):
            return Hit(
                key=f"{name}={value[:256]}",
                summary=f"{name}={value[:200]} on a command line: {v.cmdline[:200]}",
                evidence=_evidence(v, variable=name, value=value[:1024]),
            )
    if ctx.source == "falco":
        envtext = P.falco_fields(event).get("proc.env")
        if isinstance(envtext, str):
            for item in envtext.split():
                name, eq, value = item.partition("=")
                if eq and name in P.HIJACK_VARS and P.loader_value_suspicious(name, value):
                    return Hit(
                        key=f"{name}={value[:256]}",
                        summary=f"{name}={value[:200]} in the environment of {v.name}",
                        evidence=_evidence(v, variable=name, value=value[:1024]),
                    )
    if P.preload_file_write(v):
        return Hit(
            key="/etc/ld.so.preload",
            summary=f"/etc/ld.so.preload written by a command line: {v.cmdline[:200]}",
            evidence=_evidence(v, path="/etc/ld.so.preload"),
        )
    return None


def _preload_file(event: FileActivity) -> Hit | None:
    if event.activity_id not in _WRITES:
        return None
    paths = [event.file.path or ""]
    if event.file_result is not None and event.file_result.path:
        paths.append(event.file_result.path)
    writer = _actor_name(event)
    for raw in paths:
        p = P.norm_path(raw)
        if p == "/etc/ld.so.preload":
            return Hit(
                key=p,
                summary=f"{p} changed{' by ' + writer if writer else ''}",
                evidence={"path": p, "writer": writer or None},
            )
        if (p == "/etc/ld.so.conf" or p.startswith(_LD_CONF)) and writer not in P.PACKAGE_TOOLS:
            if not writer and event.metadata.product.name == "osquery":
                return None  # FIM alone cannot tell an upgrade from a hijack here
            return Hit(
                key=p,
                severity=MEDIUM,
                summary=f"{p} changed by {writer}",
                evidence={"path": p, "writer": writer},
            )
    return None


# -- 12: native code from writable paths --------------------------------------------------------
_PACKAGED = ("/site-packages/", "/dist-packages/", "/sls-py-req/", "/node_modules/")


@rule(
    id="process.native-load-from-writable-path",
    title="Native library loaded from a writable directory",
    severity=HIGH,
    techniques=["T1129", "T1574.006"],
    sources=["layer"],
    classes=[ModuleActivity],
)
def native_load_from_writable_path(event: ModuleActivity, ctx: RuleContext) -> Hit | None:
    """A Lambda function loaded a native library or extension module (``ctypes``,
    ``dlopen``, an ``import`` of a ``.so``) from ``/tmp``, ``/var/tmp``, ``/dev/shm`` or
    another writable directory: code dropped at run time rather than deployed. Dependencies
    unpacked into ``/tmp`` by packaging plugins (``site-packages``, ``sls-py-req`` trees) are
    Medium; symbol look-ups (``dlsym``) are not loads. Grouped by the top directory under the
    writable one, so one unpacked tree is one finding."""
    if event.activity_id != ModuleActivity.LOAD:
        return None
    f = event.module.file
    path = f.path if f is not None and f.path else ""
    if not path.startswith("/") and not P.is_memfd(path):
        return None
    where = P.writable_dir(path)
    if where is None:
        return None
    p = P.norm_path(path)
    packaged = any(m in p for m in _PACKAGED) and not P.hidden(p)
    return Hit(
        key=P.staging_root(p),
        severity=MEDIUM if packaged else None,
        summary=f"native code loaded from {p}",
        evidence={"library": p, "hidden": P.hidden(p) or None, **_layer_location(event)},
    )


# -- 13: environment reads ------------------------------------------------------------------------
@rule(
    id="process.environment-read",
    title="Process environment read (credentials in environment variables)",
    severity=HIGH,
    techniques=["T1552", "T1082"],
    sources=_ALL,
    classes=[ProcessActivity, FileActivity],
)
def environment_read(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """Reading a process's environment, where functions and web apps keep their secrets
    (a Lambda function's AWS credentials are environment variables): ``env``/``printenv``
    listing it, or a command reading ``/proc/<pid>/environ``, run inside a Lambda function or
    by a web server or web-facing runtime (directly or through a shell it started); and any
    source's file reads of ``/proc/<pid|self|thread-self>/environ`` (the layer reports them
    as sensitive reads), except by monitoring agents and container runtimes. ``env`` running
    another program (``/usr/bin/env python3``) is not a read. Grouped by what read it."""
    if isinstance(event, FileActivity):
        if event.activity_id not in _READS:
            return None
        path = event.file.path or ""
        if not P.ENVIRON_PATH.match(P.norm_path(path)):
            return None
        reader = _actor_name(event)
        if reader in _ENV_READERS:
            return None
        un = event.unmapped or {}
        requested = un.get("requested") if isinstance(un.get("requested"), str) else None
        return Hit(
            key=f"read:{reader or ctx.source}",
            summary=f"{path} read{' by ' + reader if reader else ''}",
            evidence={"path": path, "requested": requested, "reader": reader or None}
            | _layer_location(event),
        )
    if not isinstance(event, ProcessActivity):
        return None
    v = _launch(event, ctx)
    if v is None:
        return None
    what = P.environment_dump(v)
    if what is None:
        return None
    if ctx.source == "layer":
        where = "the function"
    else:
        web = P.in_web_context(v)
        if web is None:
            return None
        where = web
    return Hit(
        key=f"cmd:{what}",
        summary=f"{what} run by {where}: {v.cmdline[:200]}",
        evidence=_evidence(v, reads=what, context=where, **_layer_location(event)),
    )
