"""Run sensor cases in fresh subprocesses (audit hooks cannot be removed).

A case is a snippet of Python. The harness prepends a prelude that:

* opens the result file *before* the sensor is installed (so reporting results is not an
  event), and defines ``attempt(name, fn)`` which records whether ``fn()`` worked or what
  it raised;
* installs the sensor (unless ``install=False``) with the environment the test gives.

Cases that touch anything but loopback run in a new network namespace (only ``lo``, up)
and a new mount namespace, where ``/etc/hosts`` can be replaced and system directories
covered by a tmpfs: a sensor that fails to block still cannot send a packet or change the
machine.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layer"
NETNS_HELPER = ROOT / "ramparts_cli" / "_netns.py"

PRELUDE = """
import json as _json, os as _os, sys as _sys
_sys.path.insert(0, {layer!r})
_RESULT_FD = _os.open({result!r}, _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC, 0o600)
RESULTS = {{}}

def attempt(name, fn):
    try:
        value = fn()
        try:
            _json.dumps(value)
        except (TypeError, ValueError):
            value = repr(value)
        RESULTS[name] = {{"ok": True, "value": value}}
    except BaseException as exc:
        RESULTS[name] = {{"ok": False, "type": type(exc).__name__, "msg": str(exc),
                         "errno": getattr(exc, "errno", None),
                         "ramparts": type(exc).__name__ == "RampartsBlocked"}}

def _dump_results():
    _os.write(_RESULT_FD, _json.dumps(RESULTS).encode())
    _os.close(_RESULT_FD)

import atexit as _atexit
_atexit.register(_dump_results)
if {install!r}:
    import ramparts
    SENSOR = ramparts.install()
"""


@dataclass
class CaseResult:
    returncode: int
    events: list[dict[str, Any]]
    results: dict[str, Any]
    stdout: str
    stderr: str
    other_lines: list[str] = field(default_factory=list)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]

    def alerts(self, rule: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("verdict") in ("alert", "block") and (rule is None or e.get("rule") == rule)
        ]

    def summaries(self) -> list[dict[str, Any]]:
        return self.kinds("invocation.summary")

    def total(self, kind: str, verdict: str) -> int:
        return sum(s["counts"].get(kind, {}).get(verdict, 0) for s in self.summaries())


@functools.cache
def _isolation_prefix() -> tuple[str, ...] | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    options = [[unshare, "--net", "--mount"]]
    if os.geteuid() != 0:
        options = [[unshare, "--net", "--mount", "--map-root-user"]]
    else:
        options.append([unshare, "--net", "--mount", "--map-root-user"])
    for prefix in options:
        probe = subprocess.run(
            [*prefix, "--", sys.executable, str(NETNS_HELPER), "--", sys.executable, "-c", "pass"],
            capture_output=True,
            timeout=20,
            check=False,
        )
        if probe.returncode == 0:
            return tuple(prefix)
    return None


def isolation_available() -> bool:
    return _isolation_prefix() is not None


def run_case(
    code: str,
    *,
    env: dict[str, str] | None = None,
    install: bool = True,
    isolate: bool = True,
    hosts: dict[str, str] | None = None,
    tmpfs: tuple[str, ...] = (),
    cwd: str | None = None,
    timeout: float = 60,
) -> CaseResult:
    """Run ``code`` after the prelude in a fresh interpreter; parse the sensor's lines."""
    # Not under /tmp: isolated cases get a private tmpfs on /tmp, so they leave nothing behind.
    workdir = Path(tempfile.mkdtemp(prefix="ramparts-case-", dir="/var/tmp"))
    try:
        result_path = workdir / "result.json"
        script = workdir / "case.py"
        prelude = PRELUDE.format(layer=str(LAYER), result=str(result_path), install=install)
        script.write_text(prelude + "\n" + textwrap.dedent(code))
        child_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "RAMPARTS_TEST_WORKDIR": str(workdir),
        }
        child_env.update(env or {})
        argv = [sys.executable, str(script)]
        if isolate or hosts or tmpfs:
            prefix = _isolation_prefix()
            if prefix is None:
                pytest.skip("network/mount namespaces are not available here")
            setup = []
            if hosts:
                hosts_file = workdir / "hosts"
                lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
                lines += [f"{ip} {name}" for name, ip in hosts.items()]
                hosts_file.write_text("\n".join(lines) + "\n")
                setup.append(f"mount --bind {hosts_file} /etc/hosts")
            # What the case needs that a fresh tmpfs would hide (a checkout or venv under
            # /tmp, as a CI clone may be): set aside with bind mounts, then put back.
            keep = _needed_paths_under(("/tmp", *tmpfs))
            for n, path in enumerate(keep):
                stash = workdir / f"keep{n}"
                stash.mkdir()
                setup.append(f"mount --bind {_quote(path)} {_quote(str(stash))}")
            for d in ("/tmp", *tmpfs):
                setup.append(f"mkdir -p {d} && mount -t tmpfs ramparts-test {d}")
            for n, path in enumerate(keep):
                stash = workdir / f"keep{n}"
                setup.append(
                    f"mkdir -p {_quote(path)} && mount --bind {_quote(str(stash))} {_quote(path)}"
                )
            inner = [sys.executable, str(NETNS_HELPER), "--", *argv]
            shell = " && ".join([*setup, "exec " + " ".join(_quote(a) for a in inner)])
            argv = [*prefix, "--", "/bin/sh", "-c", shell]
        proc = subprocess.run(
            argv,
            env=child_env,
            cwd=cwd or str(workdir),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        events: list[dict[str, Any]] = []
        other: list[str] = []
        for line in proc.stdout.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                other.append(line)
                continue
            if isinstance(obj, dict) and "ramparts" in obj:
                events.append(obj)
            else:
                other.append(line)
        try:
            results = json.loads(result_path.read_text() or "{}")
        except (OSError, ValueError):
            results = {}
        return CaseResult(proc.returncode, events, results, proc.stdout, proc.stderr, other)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _needed_paths_under(mounts: tuple[str, ...]) -> list[str]:
    """The checkout and the interpreter's prefix, where a tmpfs on ``mounts`` would hide them."""
    needed = {str(ROOT), sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    out = []
    for path in sorted(needed):
        hidden = any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)
        if hidden and not any(path.startswith(o + "/") for o in out):
            out.append(path)
    return out


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


@pytest.fixture
def case():
    return run_case
