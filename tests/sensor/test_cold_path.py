"""The sensor's cold path imports nothing heavy (an import budget; timings live in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layer"
POLICY = (
    Path(__file__).resolve().parents[2] / "examples" / "functions" / "vulnerable" / "ramparts.yaml"
)

# Modules a bare interpreter (python -S) does not have that the sensor may add: its own,
# C accelerators, and the tiny pure-Python modules os needs.
ALLOWED = {
    "__future__",
    "_collections_abc",
    "_contextvars",
    "_json",
    "_posixsubprocess",
    "_socket",
    "_stat",
    "errno",
    "genericpath",
    "os",
    "os.path",
    "posixpath",
    "stat",
}
HEAVY = {
    "re",
    "json",
    "socket",
    "threading",
    "typing",
    "dataclasses",
    "enum",
    "functools",
    "collections",
    "inspect",
    "importlib.metadata",
    "asyncio",
    "ipaddress",
    "logging",
}


def new_modules(env_extra: dict[str, str], code: str) -> set[str]:
    probe = (
        "import sys; before = set(sys.modules)\n"
        f"{code}\n"
        "import os; os.write(2, ('MODULES ' + repr(sorted(set(sys.modules) - before))).encode())"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        env={"PYTHONPATH": str(LAYER), "PATH": "/usr/bin:/bin", **env_extra},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line[len("MODULES ") :].replace("'", '"')))


def test_import_and_install_pull_in_no_heavy_module():
    for env in ({}, {"RAMPARTS_POLICY": str(POLICY), "RAMPARTS_MODE": "enforce"}):
        mods = new_modules(env, "import ramparts; ramparts.install()")
        ours = {m for m in mods if m == "ramparts" or m.startswith("ramparts.")}
        assert mods - ours <= ALLOWED, sorted(mods - ours - ALLOWED)
        assert not mods & HEAVY


def test_protecting_a_handler_and_an_invocation_stay_light():
    mods = new_modules(
        {},
        "import ramparts\n"
        "h = ramparts.protect(lambda e, c: open('/tmp/ramparts-cold-path', 'w').close())\n"
        "h({}, None)",
    )
    assert not mods & HEAVY, sorted(mods & HEAVY)
