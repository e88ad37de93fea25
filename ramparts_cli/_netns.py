"""Run a command in a fresh network namespace that has only loopback.

Tests of attacks on non-loopback addresses (169.254.169.254, an exfiltration host, ...) run
in such a namespace so that a sensor that fails to block still cannot send a packet: there
is no route, and ``connect()`` fails at once with ``ENETUNREACH``. Loopback works, so a
Runtime API server and the runtime can still talk, provided both live inside.

How: the ``unshare`` binary creates the namespace (``unshare --net`` as root, ``unshare
--net --map-root-user`` otherwise), and this file, run by path, brings ``lo`` up with the
SIOCGIFFLAGS/SIOCSIFFLAGS ioctls and then ``exec``s the command (no dependency on ``ip``)::

    argv = isolated_command(["python", "attack.py"])
    subprocess.run(argv, check=True)

Standard library only, and it must stay importable by path (it execs into the command).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

# <linux/sockios.h> and <net/if.h>
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
# struct ifreq: char ifr_name[16]; then a 24-byte union whose first member we use as
# `short ifr_flags` (40 bytes in all on Linux).
_IFREQ = "16sh22x"


class NetnsUnavailableError(RuntimeError):
    """No way to create a network namespace here (no ``unshare``, or not permitted)."""


def bring_loopback_up() -> None:
    """Set IFF_UP on ``lo`` in the current network namespace."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        answer = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request)
        flags = struct.unpack(_IFREQ, answer)[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def _prefixes() -> list[list[str]]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    rootless = [unshare, "--net", "--map-root-user"]
    if os.geteuid() == 0:
        # A root without CAP_SYS_ADMIN (some containers) may still create a user namespace.
        return [[unshare, "--net"], rootless]
    return [rootless]


def _wrap(prefix: list[str], argv: list[str]) -> list[str]:
    # -I: the helper runs by path, and must not find its sibling modules before the stdlib's
    # (-I drops the script's directory from sys.path); the command gets the environment as is.
    return [*prefix, "--", sys.executable, "-I", os.path.abspath(__file__), "--", *argv]


@functools.cache
def _working_prefix() -> tuple[str, ...] | None:
    for prefix in _prefixes():
        try:
            probe = subprocess.run(
                _wrap(prefix, [sys.executable, "-c", "pass"]),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return tuple(prefix)
    return None


def netns_available() -> bool:
    """True when :func:`isolated_command` works here (checked once, by running it)."""
    return _working_prefix() is not None


def unavailable_reason() -> str:
    """Why :func:`netns_available` is false, in words a skipped test can print."""
    if shutil.which("unshare") is None:
        return "the `unshare` binary (util-linux) is not installed"
    if netns_available():
        return ""
    if os.geteuid() == 0:
        return "`unshare --net` is not permitted here (no CAP_SYS_ADMIN, no user namespaces)"
    return "unprivileged user namespaces are disabled (`unshare --net --map-root-user` failed)"


def isolated_command(argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` in a fresh loopback-only network namespace, ``lo`` up.

    The command keeps the caller's pid namespace, mounts and files; only the network is new.
    Raises NetnsUnavailableError when namespaces cannot be created here.
    """
    if not argv:
        raise ValueError("isolated_command needs a command to run")
    prefix = _working_prefix()
    if prefix is None:
        raise NetnsUnavailableError(unavailable_reason())
    return _wrap(list(prefix), argv)


def main(args: list[str]) -> int:
    """``python _netns.py -- CMD ...``: bring ``lo`` up, then exec CMD (already inside)."""
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.stderr.write("usage: python -m ramparts_cli._netns -- COMMAND [ARG ...]\n")
        return 2
    try:
        bring_loopback_up()
    except OSError as exc:
        sys.stderr.write(f"ramparts netns: cannot bring lo up: {exc}\n")
        return 125
    try:
        os.execvp(args[0], args)  # noqa: S606 - running the caller's command is the point
    except OSError as exc:
        sys.stderr.write(f"ramparts netns: cannot run {args[0]!r}: {exc}\n")
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
