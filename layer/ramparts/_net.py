"""Addresses after resolution: an IP written another way is still that IP.

``169.254.169.254`` may be spelled ``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``,
``169.254.43518``, ``::ffff:169.254.169.254``, ``::ffff:a9fe:a9fe`` or ``64:ff9b::a9fe:a9fe``
(NAT64). Everything here turns such spellings into one canonical form using only the
``_socket`` C module (no ``ipaddress``, no ``re``).
"""

from __future__ import annotations

import _socket
import os

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6

# The instance and container credential endpoints (and their metadata services).
CREDENTIAL_V4 = {
    "169.254.169.254": "EC2 instance metadata (IMDS)",
    "169.254.170.2": "ECS task metadata / container credentials",
    "169.254.170.23": "EKS Pod Identity agent",
}
CREDENTIAL_V6 = {
    "fd00:ec2::254": "EC2 instance metadata (IMDS, IPv6)",
    "fd00:ec2::23": "EKS Pod Identity agent (IPv6)",
}
CREDENTIAL_NAMES = {
    "instance-data": "EC2 instance metadata (IMDS)",
    "instance-data.ec2.internal": "EC2 instance metadata (IMDS)",
    "metadata": "instance metadata",
    "metadata.google.internal": "instance metadata",
}

_NAT64 = bytes.fromhex("0064ff9b0000000000000000")
_MAPPED = bytes(10) + b"\xff\xff"


class Address:
    """A parsed IP: ``text`` canonical, ``v4`` the IPv4 it reaches (also through v6 forms)."""

    __slots__ = ("family", "packed", "text", "v4")

    def __init__(self, family: int, packed: bytes) -> None:
        self.family = family
        self.packed = packed
        self.text: str = _socket.inet_ntop(family, packed)
        self.v4: str | None = self.text if family == AF_INET else _embedded_v4(packed)

    def as_int(self) -> int:
        return int.from_bytes(self.packed, "big")


def _embedded_v4(packed: bytes) -> str | None:
    head = packed[:12]
    if head in (_MAPPED, _NAT64) or (head == bytes(12) and packed[12:] > b"\0\0\0\1"):
        return _socket.inet_ntop(AF_INET, packed[12:])
    return None


def parse_ip(host: object) -> Address | None:
    """Parse an IP literal in any spelling the C library accepts; None for a host name."""
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(host, str) or not host:
        return None
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if not h:
        return None
    if ":" in h:
        h = h.split("%", 1)[0]  # scope id
        try:
            return Address(AF_INET6, _socket.inet_pton(AF_INET6, h))
        except (OSError, ValueError):
            return None
    try:
        return Address(AF_INET, _socket.inet_pton(AF_INET, h))
    except (OSError, ValueError):
        pass
    # inet_aton takes the legacy forms (decimal, octal, hex, short dotted) that
    # getaddrinfo and connect also accept. A name like "cafe" is not a number.
    if not h[0].isdigit():
        return None
    try:
        return Address(AF_INET, _socket.inet_aton(h))
    except (OSError, ValueError):
        return None


def credential_endpoint(addr: Address) -> str | None:
    """What credential service ``addr`` is, if it is one."""
    if addr.v4 is not None and addr.v4 in CREDENTIAL_V4:
        return CREDENTIAL_V4[addr.v4]
    if addr.family == AF_INET6:
        return CREDENTIAL_V6.get(addr.text)
    return None


def is_loopback(addr: Address) -> bool:
    if addr.v4 is not None:
        return addr.v4.startswith("127.")
    return addr.text == "::1"


class Cidr:
    __slots__ = ("bits", "family", "net", "text")

    def __init__(self, text: str) -> None:
        base, _, bits = text.partition("/")
        addr = parse_ip(base)
        if addr is None:
            raise ValueError(f"{base!r} is not an IP address")
        width = 32 if addr.family == AF_INET else 128
        n = width if not bits else int(bits)
        if not 0 <= n <= width:
            raise ValueError(f"prefix length /{n} is out of range 0-{width}")
        self.family = addr.family
        self.bits = n
        mask = ((1 << n) - 1) << (width - n)
        if addr.as_int() & ~mask & ((1 << width) - 1):
            raise ValueError(
                f"{text!r} has host bits set; did you mean {_net_text(addr, mask)}/{n}?"
            )
        self.net = addr.as_int()
        self.text = text

    def contains(self, addr: Address) -> bool:
        width = 32 if self.family == AF_INET else 128
        value: int
        if addr.family == self.family:
            value = addr.as_int()
        elif self.family == AF_INET and addr.v4 is not None:
            value = int.from_bytes(_socket.inet_pton(AF_INET, addr.v4), "big")
        else:
            return False
        return (value >> (width - self.bits)) == (self.net >> (width - self.bits))


def _net_text(addr: Address, mask: int) -> str:
    width = len(addr.packed) * 8
    value = addr.as_int() & mask
    return _socket.inet_ntop(addr.family, value.to_bytes(width // 8, "big"))


def runtime_api_endpoint() -> tuple[str, int] | None:
    """The Lambda Runtime API address (``AWS_LAMBDA_RUNTIME_API``) as (canonical ip, port)."""
    raw = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        return None
    if host == "localhost":
        host = "127.0.0.1"
    addr = parse_ip(host)
    return (addr.text, int(port)) if addr else None


def container_credentials_endpoint() -> tuple[str, int] | None:
    """The host and port of ``AWS_CONTAINER_CREDENTIALS_FULL_URI``, when set."""
    uri = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    if "://" not in uri:
        return None
    scheme, _, rest = uri.partition("://")
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = hostport.partition(":")
    port = int(port_text) if port_text.isdigit() else (443 if scheme == "https" else 80)
    addr = parse_ip("127.0.0.1" if host == "localhost" else host)
    return (addr.text, port) if addr else None
