"""The function's policy: allowlists per category, a mode per category, validation.

A policy is YAML or JSON (see ``docs/policy.md``)::

    version: 1
    mode: enforce                 # default mode; RAMPARTS_MODE overrides it
    egress:
      mode: enforce               # per category: off | monitor | enforce
      allow:
        - "*.amazonaws.com:443"
        - {host: api.stripe.com, ports: [443]}
        - {cidr: 10.0.0.0/8, ports: ["5432", "6379"]}
    dns:      {allow: ["*.amazonaws.com", api.stripe.com]}
    files:    {write: ["/tmp/**"], read: []}
    process:  {allow: ["/usr/bin/git"]}
    native:   {allow: ["/opt/lib/*.so", "libvips.so*"]}
    aws:      {allow: ["s3:GetObject", "dynamodb:*"]}
    defaults: {disable: [default.shell]}

Validation collects every error with where it is (``egress.allow[2].ports[0]: ...``) so
``ramparts policy check`` can explain them all at once; the sensor refuses an invalid
policy as a whole and falls back to monitor mode with the built-in defaults.
"""

from __future__ import annotations

import os

from ramparts._glob import HostGlobs, PathGlobs, _wild, validate
from ramparts._net import Cidr, parse_ip

# typing is not imported at run time: it pulls in re, functools, contextlib (~6 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MODES = ("off", "monitor", "enforce", "learn")
SECTION_MODES = ("off", "monitor", "enforce")
SECTIONS = ("egress", "dns", "files", "process", "native", "aws")
TOP_KEYS = ("version", "mode", "description", "defaults", *SECTIONS)
SECTION_KEYS = {
    "egress": ("mode", "allow"),
    "dns": ("mode", "allow"),
    "files": ("mode", "write", "read"),
    "process": ("mode", "allow"),
    "native": ("mode", "allow"),
    "aws": ("mode", "allow"),
}

# The built-in rules, the section whose mode governs each, and what it means.
DEFAULT_RULES = {
    "default.credential-endpoint": (
        "egress",
        "contact with an instance/container credential endpoint",
    ),
    "default.runtime-api": ("egress", "user code talking to the Lambda Runtime API"),
    "default.raw-socket": ("egress", "a raw or packet socket"),
    "default.sensitive-read": ("files", "a read of a credential or secret file"),
    "default.sensitive-write": ("files", "a write to a system, credential or persistence file"),
    "default.write-outside-tmp": ("files", "a write outside /tmp"),
    "default.shell": ("process", "a shell spawned"),
    "default.network-tool": ("process", "a network tool spawned"),
    "default.inline-code": ("process", "an interpreter spawned with code on its command line"),
    "default.writable-exec": ("process", "a program run from a writable directory"),
    "default.preload": ("process", "LD_PRELOAD-style loader variables set"),
    "default.native-writable": ("native", "a native library loaded from a writable directory"),
    "default.native-libc": ("native", "libc or its process/network symbols loaded via ctypes"),
}
POLICY_RULES = {
    "policy.egress": "egress",
    "policy.dns": "dns",
    "policy.files.write": "files",
    "policy.process": "process",
    "policy.native": "native",
    "policy.aws": "aws",
}


class PolicyError(ValueError):
    """A policy that does not validate; ``errors`` lists every problem with its location."""

    def __init__(self, errors: list[str], source: str = "policy") -> None:
        self.errors = errors
        self.source = source
        super().__init__(f"{source}: " + "; ".join(errors))


class PortSet:
    __slots__ = ("ranges", "text")

    def __init__(self, ranges: list[tuple[int, int]], text: list[str]) -> None:
        self.ranges = tuple(ranges)
        self.text = text

    def __contains__(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ranges)


class EgressEntry:
    __slots__ = ("cidr", "hosts", "ports")

    def __init__(self, hosts: HostGlobs | None, cidr: Cidr | None, ports: PortSet | None) -> None:
        self.hosts = hosts
        self.cidr = cidr
        self.ports = ports


class Policy:
    """A validated policy. ``None`` allowlists mean "no restriction from the policy"."""

    def __init__(self) -> None:
        self.version = 1
        self.mode: str | None = None
        self.section_modes: dict[str, str] = {}
        self.egress: list[EgressEntry] | None = None
        self.egress_host_patterns: list[str] = []
        self.dns: HostGlobs | None = None
        self.write: PathGlobs | None = None
        self.read: PathGlobs = PathGlobs(())
        self.process: PathGlobs | None = None
        self.native_paths: PathGlobs | None = None
        self.native_names: tuple[str, ...] = ()
        self.aws: list[tuple[str, str]] | None = None
        self.disabled: frozenset[str] = frozenset()
        self.rule_count = 0

    # -- matching -----------------------------------------------------------------
    def egress_allows(self, host: str | None, addr: Any, port: int) -> bool:
        assert self.egress is not None
        for e in self.egress:
            if e.ports is not None and port not in e.ports:
                continue
            if e.hosts is not None and host is not None and e.hosts.match(host):
                return True
            if e.cidr is not None and addr is not None and e.cidr.contains(addr):
                return True
            if e.hosts is not None and addr is not None and e.hosts.match(addr.text):
                return True
        return False

    def dns_allows(self, host: str) -> bool:
        if self.dns is not None:
            return self.dns.match(host)
        if self.egress is not None:
            return any(e.hosts is not None and e.hosts.match(host) for e in self.egress)
        return True

    def dns_restricted(self) -> bool:
        return self.dns is not None or self.egress is not None

    def native_allows(self, library: str) -> bool:
        if (
            self.native_paths is not None
            and library.startswith("/")
            and self.native_paths.match(library)
        ):
            return True
        base = library.rsplit("/", 1)[-1]
        return any(_wild(p, base) for p in self.native_names)

    def aws_allows(self, names: tuple[str, ...], operation: str) -> bool:
        assert self.aws is not None
        op = operation.lower()
        for svc_pat, op_pat in self.aws:
            if any(_wild(svc_pat, n) for n in names) and _wild(op_pat, op):
                return True
        return False


def _port_set(value: Any, where: str, errors: list[str]) -> PortSet | None:
    items = value if isinstance(value, list) else [value]
    ranges: list[tuple[int, int]] = []
    text: list[str] = []
    for i, item in enumerate(items):
        loc = f"{where}[{i}]" if isinstance(value, list) else where
        if item == "*" or item == "any":
            return None
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            errors.append(f"{loc}: a port is a number 1-65535 or a range like '8000-8100'")
            continue
        s = str(item).strip()
        lo_s, sep, hi_s = s.partition("-")
        if not lo_s.isdigit() or (sep and not hi_s.isdigit()):
            errors.append(f"{loc}: {item!r} is not a port or a port range like '8000-8100'")
            continue
        lo = int(lo_s)
        hi = int(hi_s) if sep else lo
        if not (1 <= lo <= 65535 and 1 <= hi <= 65535) or lo > hi:
            errors.append(f"{loc}: port {s} is out of range 1-65535")
            continue
        ranges.append((lo, hi))
        text.append(s)
    return PortSet(ranges, text)


def _egress_entry(item: Any, where: str, errors: list[str]) -> EgressEntry | None:
    host: str | None = None
    cidr_text: str | None = None
    ports: Any = None
    if isinstance(item, str):
        s = item.strip()
        if s.startswith("["):  # [v6]:port or [v6]/len
            inner, _, tail = s[1:].partition("]")
            if tail.startswith(":"):
                ports = tail[1:]
                tail = ""
            cidr_text = inner + tail
        elif "/" in s or s.count(":") > 1:
            base, sep, port = s.rpartition(":") if "/" in s and s.count(":") == 1 else (s, "", "")
            cidr_text = base if sep else s
            ports = port or None
        else:
            h, sep, port = s.partition(":")
            if parse_ip(h) is not None:
                cidr_text = h
            else:
                host = h
            ports = port if sep else None
    elif isinstance(item, dict):
        unknown = set(item) - {"host", "cidr", "ip", "ports", "port", "comment"}
        if unknown:
            errors.append(f"{where}: unknown key(s) {sorted(unknown)}; use host, cidr, ports")
        host = item.get("host")
        cidr_text = item.get("cidr") or item.get("ip")
        ports = item.get("ports", item.get("port"))
        if (host is None) == (cidr_text is None):
            errors.append(f"{where}: give exactly one of 'host' or 'cidr'")
            return None
        if host is not None and not isinstance(host, str):
            errors.append(f"{where}.host: must be a string")
            return None
        if cidr_text is not None and not isinstance(cidr_text, str):
            errors.append(f"{where}.cidr: must be a string like 10.0.0.0/8")
            return None
    else:
        errors.append(f"{where}: expected 'host[:port]', a CIDR, or {{host|cidr, ports}}")
        return None
    n = len(errors)
    port_set = _port_set(ports, f"{where}.ports", errors) if ports not in (None, "") else None
    hosts = None
    cidr = None
    if host is not None:
        why = validate(host, "host")
        if why:
            errors.append(f"{where}: host {host!r}: {why}")
        hosts = HostGlobs([host])
    if cidr_text is not None:
        try:
            cidr = Cidr(cidr_text.strip())
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
    return EgressEntry(hosts, cidr, port_set) if len(errors) == n else None


def _str_list(section: dict[str, Any], key: str, where: str, errors: list[str]) -> list[str] | None:
    if key not in section:
        return None
    value = section[key]
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"{where}.{key}: expected a list")
        return None
    out: list[str] = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            errors.append(f"{where}.{key}[{i}]: expected a non-empty string")
        else:
            out.append(v)
    return out


def _suggest(word: str, options: tuple[str, ...]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build(data: Any, source: str = "policy") -> Policy:
    """Validate a parsed policy document and compile it. Raises PolicyError."""
    errors: list[str] = []
    p = Policy()
    if not isinstance(data, dict):
        raise PolicyError(["the policy must be a mapping (YAML keys or a JSON object)"], source)
    for key in data:
        if key not in TOP_KEYS:
            errors.append(
                f"{key}: unknown key{_suggest(str(key), TOP_KEYS)}; "
                f"known keys: {', '.join(TOP_KEYS)}"
            )
    version = data.get("version", 1)
    if version != 1:
        errors.append(f"version: {version!r} is not supported; this sensor reads version 1")
    mode = data.get("mode")
    if mode is not None:
        if mode not in MODES:
            errors.append(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        else:
            p.mode = mode
    for name in SECTIONS:
        section = data.get(name)
        if section is None:
            continue
        if not isinstance(section, dict):
            errors.append(f"{name}: expected a mapping with keys {', '.join(SECTION_KEYS[name])}")
            continue
        for key in section:
            if key not in SECTION_KEYS[name]:
                errors.append(f"{name}.{key}: unknown key{_suggest(str(key), SECTION_KEYS[name])}")
        smode = section.get("mode")
        if smode is not None:
            if smode not in SECTION_MODES:
                errors.append(f"{name}.mode: {smode!r} is not one of {', '.join(SECTION_MODES)}")
            else:
                p.section_modes[name] = smode
        if name == "egress" and "allow" in section:
            allow = section["allow"]
            if not isinstance(allow, list):
                errors.append("egress.allow: expected a list")
            else:
                entries = []
                for i, item in enumerate(allow):
                    e = _egress_entry(item, f"egress.allow[{i}]", errors)
                    if e is not None:
                        entries.append(e)
                        if e.hosts is not None:
                            p.egress_host_patterns.extend(e.hosts.patterns)
                p.egress = entries
                p.rule_count += len(entries)
        elif name in ("dns", "process", "native", "aws"):
            items = _str_list(section, "allow", name, errors)
            if items is None:
                continue
            p.rule_count += len(items)
            kind = {"dns": "host", "process": "path", "native": "any", "aws": "aws"}[name]
            for i, it in enumerate(items):
                where = f"{name}.allow[{i}]"
                if kind == "host" or (kind == "path"):
                    why = validate(it, kind)
                    if why:
                        errors.append(
                            f"{where}: {it!r}: {why}"
                            + (
                                "; name the program by its absolute path, e.g. /usr/bin/git"
                                if kind == "path" and not it.startswith("/")
                                else ""
                            )
                        )
                elif kind == "any" and it.startswith("/"):
                    why = validate(it, "path")
                    if why:
                        errors.append(f"{where}: {it!r}: {why}")
                elif kind == "aws":
                    svc, sep, op = it.partition(":")
                    if not sep or not svc or not op:
                        errors.append(
                            f"{where}: {it!r}: expected 'service:Operation', "
                            "e.g. s3:GetObject or dynamodb:*"
                        )
            if name == "dns":
                p.dns = HostGlobs(items)
            elif name == "process":
                p.process = PathGlobs(items)
            elif name == "native":
                p.native_paths = PathGlobs([i for i in items if i.startswith("/")])
                p.native_names = tuple(i for i in items if not i.startswith("/"))
            else:
                p.aws = [(s.partition(":")[0].lower(), s.partition(":")[2].lower()) for s in items]
        elif name == "files":
            write = _str_list(section, "write", "files", errors)
            read = _str_list(section, "read", "files", errors)
            for key, items in (("write", write), ("read", read)):
                for i, it in enumerate(items or []):
                    why = validate(it, "path")
                    if why:
                        errors.append(f"files.{key}[{i}]: {it!r}: {why}")
            if write is not None:
                p.write = PathGlobs(write)
                p.rule_count += len(write)
            if read is not None:
                p.read = PathGlobs(read)
                p.rule_count += len(read)
    defaults = data.get("defaults")
    if defaults is not None:
        if not isinstance(defaults, dict) or set(defaults) - {"disable"}:
            errors.append("defaults: expected {disable: [rule ids]}")
        else:
            dis = _str_list(defaults, "disable", "defaults", errors) or []
            for i, rid in enumerate(dis):
                if rid not in DEFAULT_RULES:
                    errors.append(
                        f"defaults.disable[{i}]: {rid!r} is not a built-in rule"
                        f"{_suggest(rid, tuple(DEFAULT_RULES))}"
                    )
            p.disabled = frozenset(dis)
    if errors:
        raise PolicyError(errors, source)
    return p


def parse_text(text: str, source: str) -> Any:
    """Parse JSON or YAML text (JSON when it starts with '{')."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        from ramparts._jsonl import loads

        try:
            return loads(stripped)
        except ValueError as exc:
            raise PolicyError([f"invalid JSON: {exc}"], source) from None
    from ramparts._yaml import YAMLError
    from ramparts._yaml import loads as yaml_loads

    try:
        return yaml_loads(text)
    except YAMLError as exc:
        raise PolicyError([f"invalid YAML: {exc}"], source) from None


def load_file(path: str) -> Policy:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(1 << 20)
    except OSError as exc:
        raise PolicyError([f"cannot read the policy file: {exc.strerror or exc}"], path) from None
    return build(parse_text(text, path), path)


def load_from_env(environ: Any = None) -> tuple[Policy | None, str | None]:
    """The policy named by ``RAMPARTS_POLICY``: a file path or inline JSON. Raises PolicyError."""
    env = os.environ if environ is None else environ
    raw = env.get("RAMPARTS_POLICY", "").strip()
    if not raw:
        return None, None
    if raw.startswith("{"):
        return build(parse_text(raw, "RAMPARTS_POLICY"), "RAMPARTS_POLICY (inline JSON)"), "inline"
    path = raw
    if not path.startswith("/"):
        root = env.get("LAMBDA_TASK_ROOT") or os.getcwd()
        path = root.rstrip("/") + "/" + path
    return load_file(path), path
