"""The function's installed Python distributions, and which of them it has imported.

Reported once per sandbox after the first invocation (``sensor.packages``), then only the
distributions imported since (``"update": true``), so the platform can tell a vulnerable
package that merely ships in the zip from one that runs. Cheap on purpose: distributions are
found from the names of ``*.dist-info`` / ``*.egg-info`` directories on ``sys.path`` (no
``importlib.metadata``), and a distribution's modules from its ``top_level.txt``, else the
paths in its ``RECORD``, else its own name. Standard library only, like the rest of the
sensor; the sensor calls it with its audit hook quiet, so these reads are not events.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_PACKAGES = 1000
MAX_NAME = 200
_META_SUFFIXES = (".dist-info", ".egg-info")


def _roots() -> list[str]:
    """sys.path directories that can hold third-party distributions (not the stdlib)."""
    stdlib = os.path.dirname(os.__file__)
    dynload = os.path.join(stdlib, "lib-dynload")
    out: list[str] = []
    for entry in sys.path:
        path = os.path.abspath(entry or ".")
        if path in (stdlib, dynload) or path in out or not os.path.isdir(path):
            continue
        out.append(path)
    return out


def _split(stem: str, egg: bool) -> tuple[str, str] | None:
    """(name, version) from a metadata directory's name without its suffix."""
    name, sep, rest = stem.partition("-")
    if not sep or not name or not rest:
        return None
    version = rest
    if egg:  # name-version-pyX.Y(-platform)
        version = rest.split("-py", 1)[0]
    return name[:MAX_NAME], version[:MAX_NAME]


def _lines(path: str, limit: int = 1 << 20) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(limit).splitlines()
    except OSError:
        return []


def _modules(meta: str, name: str) -> tuple[str, ...]:
    """The top-level importable names a distribution provides."""
    tops = [x.strip() for x in _lines(os.path.join(meta, "top_level.txt")) if x.strip()]
    if not tops:
        seen: set[str] = set()
        for line in _lines(os.path.join(meta, "RECORD")):
            path = line.split(",", 1)[0]
            if not path or path.startswith(("..", "/")):
                continue
            head = path.split("/", 1)[0]
            if head.endswith(_META_SUFFIXES) or head in ("__pycache__", "bin"):
                continue
            if "/" not in path:  # a single-file module (six.py) or an extension module
                if not path.endswith((".py", ".so", ".pyd")):
                    continue
                head = path.split(".", 1)[0]
            if head not in seen:
                seen.add(head)
                tops.append(head)
    if not tops:
        tops = [name.lower().replace("-", "_").replace(".", "_")]
    return tuple(t.replace("/", ".") for t in tops if t)


def scan() -> list[list[Any]]:
    """[name, version, root directory, top-level modules] for each distribution found."""
    found: list[list[Any]] = []
    seen: set[tuple[str, str]] = set()
    for root in _roots():
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith(_META_SUFFIXES):
                continue
            egg = entry.endswith(".egg-info")
            parsed = _split(entry[: -len(".dist-info")] if not egg else entry[:-9], egg)
            if parsed is None:
                continue
            key = (parsed[0].lower().replace("_", "-"), parsed[1])
            if key in seen:  # the first on sys.path is the one that imports
                continue
            seen.add(key)
            meta = os.path.join(root, entry)
            mods = _modules(meta, parsed[0]) if os.path.isdir(meta) else (parsed[0].lower(),)
            found.append([parsed[0], parsed[1], root, mods])
            if len(found) >= MAX_PACKAGES:
                return found
    return found


def imported(dists: list[list[Any]], modules: Any) -> list[bool]:
    """For each distribution: is one of its top-level modules loaded from its root?"""
    out: list[bool] = []
    for _name, _version, root, mods in dists:
        hit = False
        prefix = root.rstrip("/") + "/"
        for m in mods:
            mod = modules.get(m)
            if mod is None:
                continue
            where = getattr(mod, "__file__", None)
            if where is None:  # a namespace package: any of its paths under the root
                paths = getattr(mod, "__path__", None) or ()
                try:
                    hit = any(str(p).startswith(prefix) for p in paths)
                except Exception:
                    hit = False
            else:
                hit = str(where).startswith(prefix)
            if hit:
                break
        out.append(hit)
    return out
