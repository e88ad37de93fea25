"""Helpers shared by the network, DNS, AWS and file rules of the built-in pack.

Everything here is precomputed at import and cheap per call: rules run on every event of
their class. Nothing raises on odd input; a value that cannot be read gives ``None``.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from collectors.model import OcsfEvent, Process
from collectors.rules.pack import _programs

# -- addresses ---------------------------------------------------------------------------------
_NAT64 = IPv6Network("64:ff9b::/96")


def _legacy_v4(text: str) -> IPv4Address | None:
    """The IPv4 address ``inet_aton`` reads from ``text``: ``2852039166``, ``0xa9fea9fe``,
    ``0251.0376.0251.0376``, ``169.254.43518``... (what a resolver and ``connect`` accept)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    nums: list[int] = []
    for p in parts:
        if not p:
            return None
        try:
            if p[:2] in ("0x", "0X"):
                n = int(p[2:], 16) if p[2:] else 0
            elif len(p) > 1 and p[0] == "0":
                n = int(p[1:], 8)
            elif p.isdigit():
                n = int(p)
            else:
                return None
        except ValueError:
            return None
        nums.append(n)
    *head, last = nums
    if any(n > 255 for n in head) or last >= 1 << (8 * (5 - len(nums))):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return IPv4Address(value)


def canonical_ip(text: object) -> str | None:
    """An IP address in its canonical text, whatever the spelling; ``None`` for a name.

    IPv4 reached through IPv6 (v4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
    IPv4-compatible ``::a.b.c.d``) is written as the IPv4 address; IPv6 is compressed and
    lower case; brackets and a zone id are dropped; legacy IPv4 forms are read."""
    if not isinstance(text, str):
        return None
    h = text.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    h = h.split("%", 1)[0]
    if not h or len(h) > 64:
        return None
    if ":" in h:
        try:
            a6 = ip_address(h)
        except ValueError:
            return None
        if not isinstance(a6, IPv6Address):
            return str(a6)
        v4 = a6.ipv4_mapped
        if v4 is None and a6 in _NAT64:
            v4 = IPv4Address(int(a6) & 0xFFFFFFFF)
        if v4 is None and int(a6) >> 32 == 0 and int(a6) > 0xFFFF:
            v4 = IPv4Address(int(a6))  # IPv4-compatible (deprecated, still routed by some stacks)
        return str(v4) if v4 is not None else a6.compressed
    if not h[0].isdigit():
        return None
    try:
        return str(IPv4Address(h))
    except ValueError:
        pass
    v4l = _legacy_v4(h)
    return str(v4l) if v4l is not None else None


def is_loopback(ip: str) -> bool:
    """``ip`` canonical (see :func:`canonical_ip`)."""
    return ip.startswith("127.") or ip in {"::1", "0.0.0.0", "::"}  # noqa: S104


def is_link_local(ip: str) -> bool:
    return ip.startswith("169.254.") or ip.startswith("fe80:")


_PRIVATE_NETS = tuple(
    IPv4Network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "0.0.0.0/8",
    )
) + tuple(IPv6Network(n) for n in ("fc00::/7", "fe80::/10", "::1/128", "::/128"))


def is_private(ip: str) -> bool:
    """Loopback, link-local, RFC 1918, CGNAT, unique-local IPv6: not the internet. (The
    documentation ranges count as the internet here, unlike ``ipaddress.is_private``.)"""
    try:
        a = ip_address(ip)
    except ValueError:
        return False
    return any(a.version == n.version and a in n for n in _PRIVATE_NETS)


# The instance and container credential endpoints: canonical address -> what it is.
CREDENTIAL_IPS: dict[str, str] = {
    "169.254.169.254": "EC2 instance metadata (IMDS)",
    "fd00:ec2::254": "EC2 instance metadata (IMDS, IPv6)",
    "169.254.170.2": "ECS task metadata / container credentials",
    "169.254.170.23": "EKS Pod Identity agent",
    "fd00:ec2::23": "EKS Pod Identity agent (IPv6)",
}
IMDS_IPS = frozenset({"169.254.169.254", "fd00:ec2::254"})
ECS_CREDENTIAL_IPS = frozenset({"169.254.170.2"})
EKS_CREDENTIAL_IPS = frozenset({"169.254.170.23", "fd00:ec2::23"})
CREDENTIAL_NAMES: dict[str, str] = {
    "instance-data": "EC2 instance metadata (IMDS)",
    "instance-data.ec2.internal": "EC2 instance metadata (IMDS)",
    "metadata": "instance metadata",
    "metadata.google.internal": "instance metadata",
    "metadata.goog": "instance metadata",
}
# Wildcard DNS services that answer <ip>.<service> with <ip>: a way to reach IMDS by name.
_WILDCARD_DNS = ("nip.io", "sslip.io", "xip.io", "traefik.me", "nip.direct", "local.gd")
_HEX8 = re.compile(r"^[0-9a-f]{8}$")


def _wildcard_ip(name: str) -> str | None:
    """The address a wildcard-DNS name (``169.254.169.254.nip.io``,
    ``app-169-254-169-254.sslip.io``, ``a9fea9fe.nip.io``) resolves to."""
    for svc in _WILDCARD_DNS:
        if name.endswith("." + svc):
            head = name[: -len(svc) - 1]
            break
    else:
        return None
    labels = head.split(".")
    # dotted: the last four labels are the address (the first may carry a prefix-)
    if len(labels) >= 4:
        quad = labels[-4:]
        quad[0] = quad[0].rsplit("-", 1)[-1]
        ip = canonical_ip(".".join(quad))
        if ip is not None and ":" not in ip:
            return ip
    last = labels[-1]
    dashed = last.split("-")
    if len(dashed) >= 4:
        ip = canonical_ip(".".join(dashed[-4:]))
        if ip is not None:
            return ip
        ip6 = canonical_ip(last.replace("-", ":"))
        if ip6 is not None:
            return ip6
    tail = last.rsplit("-", 1)[-1]
    if _HEX8.match(tail):
        return str(IPv4Address(int(tail, 16)))
    return None


def normalise_host(host: object) -> str | None:
    """A host name lower case, without a trailing dot or brackets; ``None`` for nothing."""
    if not isinstance(host, str):
        return None
    h = host.strip().lower().rstrip(".")
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    return h or None


def credential_endpoint(host: object) -> tuple[str, str] | None:
    """``(canonical endpoint, what it is)`` when ``host`` (an address in any spelling, or a
    name) is a cloud credential/metadata endpoint; ``None`` otherwise."""
    h = normalise_host(host)
    if h is None:
        return None
    ip = canonical_ip(h)
    if ip is not None:
        what = CREDENTIAL_IPS.get(ip)
        return (ip, what) if what else None
    what = CREDENTIAL_NAMES.get(h)
    if what:
        return h, what
    if h.startswith("instance-data.") and h.endswith(".internal"):
        return h, "EC2 instance metadata (IMDS)"
    wild = _wildcard_ip(h)
    if wild is not None and wild in CREDENTIAL_IPS:
        return wild, CREDENTIAL_IPS[wild] + " via wildcard DNS " + h
    return None


_URL_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^/@\s]*@)?(\[[^\]]*\]|[^/:?#\s]*)", re.I)


def hosts_in_command(cmd: str) -> Iterable[str]:
    """The hosts a command line names: URL hosts and bare address/host[:port][/path] words."""
    for raw in cmd.replace("'", " ").replace('"', " ").replace("=", " ").split():
        m = _URL_HOST.match(raw)
        if m:
            yield m.group(1)
            continue
        word = raw.split("/", 1)[0]
        if word.startswith("["):
            yield word.split("]", 1)[0] + "]"
        elif word.count(":") == 1:
            yield word.split(":", 1)[0]
        elif word:
            yield word


# -- domains -----------------------------------------------------------------------------------
def suffix_match(name: str, suffixes: frozenset[str] | set[str]) -> str | None:
    """The entry of ``suffixes`` that ``name`` is, or is a subdomain of (label boundaries
    only: ``evilnanopool.org`` is not under ``nanopool.org``). ``name`` normalised."""
    n = name
    while True:
        if n in suffixes:
            return n
        dot = n.find(".")
        if dot < 0:
            return None
        n = n[dot + 1 :]


# Second-level public suffixes common enough to matter for grouping names by owner.
_PUBLIC_SLDS = frozenset(
    f"{sld}.{tld}"
    for tld in ("uk", "au", "nz", "jp", "br", "in", "za", "cn", "kr", "mx", "tr", "sg", "il")
    for sld in ("co", "com", "net", "org", "ac", "gov", "edu", "ne", "or")
) | frozenset({"compute.internal", "ec2.internal", "amazonaws.com", "cloudfront.net", "on.aws"})


def registrable_domain(name: str) -> str:
    """The owner's domain of ``name`` (eTLD+1, with a small built-in list of public
    second-level suffixes); the name itself when it has fewer labels."""
    labels = name.split(".")
    if len(labels) <= 2:
        return name
    last2 = ".".join(labels[-2:])
    if last2 in _PUBLIC_SLDS and len(labels) >= 3:
        return ".".join(labels[-3:])
    return last2


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` (0 for empty)."""
    n = len(text)
    if n == 0:
        return 0.0
    return -sum((c / n) * math.log2(c / n) for c in Counter(text).values())


_HEX = frozenset("0123456789abcdef")
_VOWELS = frozenset("aeiouy")


def looks_encoded(text: str, min_len: int = 16) -> bool:
    """Whether a DNS label (or several joined) looks like encoded data (hex, base32,
    base64-ish) rather than words: long, high entropy, few hyphens, digits mixed with
    letters or few vowels. Punycode (``xn--``) is words."""
    n = len(text)
    if n < min_len or text.startswith("xn--"):
        return False
    t = text.lower()
    if t.count("-") * 12 > n:
        return False  # hyphen-separated words
    digits = sum(c.isdigit() for c in t)
    letters = sum(c.isalpha() for c in t)
    if letters == 0 or digits == n:
        return False  # a number (an IP spelt out, a serial): not data
    ent = shannon_entropy(t)
    if sum(c in _HEX for c in t) * 10 >= n * 9:  # hex (with a separator or tag): <= 4 bits
        return digits > 0 and letters > 0 and ent >= min(3.2, math.log2(n) - 1.0)
    vowels = sum(c in _VOWELS for c in t)
    floor = min(3.5, math.log2(n) - 0.8)
    if ent < floor:
        return False
    return digits * 10 >= n or vowels * 4 < letters or ent >= 4.4


# -- processes ---------------------------------------------------------------------------------
# The process rules' shells and network tools (themselves the sensor's, extended), plus
# busybox and openssl, which count here as they are (a busybox or an openssl client reading a
# credential endpoint is not an SDK).
SHELLS = _programs.SHELLS | {"busybox"}
NETWORK_TOOLS = _programs.NETWORK_TOOLS | {"openssl", "httpie", "zgrab"}
INTERPRETERS = frozenset(
    {"python", "python2", "python3", "perl", "ruby", "php", "node", "nodejs", "lua", "pwsh"}
)
_INLINE_FLAGS = frozenset({"-c", "-e", "-r", "-E", "--eval", "-Command", "-command"})


def base_name(path: str | None) -> str:
    if not path:
        return ""
    return path.rstrip("/").rpartition("/")[2]


def program_names(proc: Process | None) -> set[str]:
    """A process's names: ``name`` and its executable's basename, lower case, with a
    version suffix dropped (``python3.12`` -> ``python3.12`` and ``python3``)."""
    out: set[str] = set()
    if proc is None:
        return out
    for n in (proc.name, base_name(proc.file.path) if proc.file else None):
        if n:
            low = n.lower()
            out.add(low)
            stem = low.split(".", 1)[0]
            out.add(stem)
            out.add(stem.rstrip("0123456789") or stem)
    return out


def inline_interpreter(proc: Process | None) -> bool:
    """An interpreter given code on its command line (``python -c``, ``perl -e``...)."""
    if proc is None or not proc.cmd_line:
        return False
    if not (program_names(proc) & INTERPRETERS):
        return False
    return any(tok in _INLINE_FLAGS for tok in proc.cmd_line.split()[1:6])


def suspicious_actor(proc: Process | None) -> str | None:
    """Why a process is not an SDK doing its job: a shell, a network tool, inline code."""
    if proc is None:
        return None
    names = program_names(proc)
    if names & SHELLS:
        return "shell"
    if names & NETWORK_TOOLS:
        return "network tool"
    if inline_interpreter(proc):
        return "inline interpreter"
    return None


def actor_process(event: OcsfEvent) -> Process | None:
    actor = getattr(event, "actor", None)
    return actor.process if actor is not None else None


def lineage_names(proc: Process | None, depth: int = 4) -> set[str]:
    """Names of a process and its ancestors (as far as the source reports them)."""
    out: set[str] = set()
    p = proc
    while p is not None and depth > 0:
        out |= program_names(p)
        p = p.parent_process
        depth -= 1
    return out


# -- paths -------------------------------------------------------------------------------------
# How a host-side sensor sees a container's files: strip the container root.
_CONTAINER_ROOT = re.compile(
    r"^(?:/proc/\d+/root|/host|/rootfs"
    r"|/var/lib/docker/overlay2/[^/]+/merged"
    r"|/var/lib/containerd/io\.containerd\.snapshotter\.v1\.overlayfs/snapshots/\d+/fs"
    r"|/run/containerd/io\.containerd\.runtime\.v2\.task/[^/]+/[^/]+/rootfs)(?=/)"
)


def normalise_path(path: object, cwd: str | None = None) -> str | None:
    """An absolute, lexically normalised path (``..``, ``.``, ``//`` gone), with a
    container root seen from the host stripped; relative paths are taken from ``cwd``, or
    from ``/`` when it is unknown (``../../etc/passwd`` is ``/etc/passwd``)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        return None
    p = path.strip()
    if not p.startswith("/"):
        p = posixpath.join(cwd, p) if cwd and cwd.startswith("/") else "/" + p
    p = posixpath.normpath(p)
    if p.startswith("//"):
        p = "/" + p.lstrip("/")
    m = _CONTAINER_ROOT.match(p)
    if m:
        p = p[m.end() :]
    return p
