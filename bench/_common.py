"""Helpers shared by the benchmarks: statistics, tables, results files, package snapshots.

Standard library only. The benchmarks run from the repository root as
``.venv/bin/python bench/<name>.py``; this module is imported as ``_common``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
LAYER = os.path.join(REPO, "layer")
RESULTS = os.path.join(BENCH_DIR, "results")
POLICY50 = os.path.join(BENCH_DIR, "policy50.yaml")
POLICY_WARM = os.path.join(BENCH_DIR, "policy_warm.yaml")

# Environment variables that would change what a child interpreter does at start-up.
_SCRUB = (
    "RAMPARTS_",
    "PYTHONSTARTUP",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONPYCACHEPREFIX",
    "PYTHONINSPECT",
    "PYTHONTRACEMALLOC",
    "PYTHONDEVMODE",
    "PYTHONWARNINGS",
)


# -- statistics ---------------------------------------------------------------------------
def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def quantile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1])."""
    s = sorted(xs)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def bootstrap_ci(
    xs: Sequence[float],
    stat: Callable[[Sequence[float]], float] = median,
    n: int = 2000,
    alpha: float = 0.05,
    seed: int = 1,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``stat`` over ``xs``."""
    rng = random.Random(seed)
    k = len(xs)
    vals = sorted(stat([xs[rng.randrange(k)] for _ in range(k)]) for _ in range(n))
    return vals[int(n * alpha / 2)], vals[int(n * (1 - alpha / 2)) - 1]


def bootstrap_diff_ci(
    a: Sequence[float], b: Sequence[float], n: int = 2000, alpha: float = 0.05, seed: int = 1
) -> tuple[float, float]:
    """CI of median(a) - median(b), resampling both samples independently."""
    rng = random.Random(seed)
    ka, kb = len(a), len(b)
    vals = sorted(
        median([a[rng.randrange(ka)] for _ in range(ka)])
        - median([b[rng.randrange(kb)] for _ in range(kb)])
        for _ in range(n)
    )
    return vals[int(n * alpha / 2)], vals[int(n * (1 - alpha / 2)) - 1]


# -- output -------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain-text table (right-aligned numbers), also valid as a Markdown table."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = []
    if title:
        lines.append(title)
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        out = []
        for i, c in enumerate(r):
            out.append(c.rjust(widths[i]) if _numeric(c) else c.ljust(widths[i]))
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def _numeric(s: str) -> bool:
    t = s.replace("+", "").replace("-", "").replace(".", "").replace("%", "").replace(",", "")
    return t.replace(" ", "").replace("[", "").replace("]", "").replace("…", "").isdigit()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "git_commit": _git("rev-parse", "HEAD"),
        "layer_dirty": bool(_git("status", "--porcelain", "--", "layer")),
        "loadavg_at_start": list(os.getloadavg()),
    }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def write_results(name: str, data: dict[str, Any]) -> str:
    """Write ``bench/results/<name>.json`` (``<name>-quick.json`` for a --quick run)."""
    os.makedirs(RESULTS, exist_ok=True)
    suffix = "-quick" if data.get("quick") else ""
    path = os.path.join(RESULTS, f"{name}{suffix}.json")
    data = {**data, "loadavg_at_end": list(os.getloadavg())}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
    return path


# -- children -----------------------------------------------------------------------------
def child_env(pythonpath: str | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for a child interpreter: no RAMPARTS_*, no bytecode writes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    else:
        env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


@contextmanager
def snapshot() -> Iterator[dict[str, str]]:
    """Two private copies of ``layer/ramparts``: one byte-compiled, one source only.

    Benchmarks import the sensor from these copies (``PYTHONPATH``), so concurrent edits to
    ``layer/`` cannot change a run half-way, the checkout's ``__pycache__`` is irrelevant,
    and the source-only copy reproduces the layer zip (which ships no ``.pyc``; ``/opt`` is
    read-only on Lambda, so the interpreter compiles the sensor at every cold start).
    """
    import compileall

    root = tempfile.mkdtemp(prefix="ramparts-bench-")
    try:
        out = {}
        for kind in ("pyc", "src"):
            dest = os.path.join(root, kind)
            shutil.copytree(
                os.path.join(LAYER, "ramparts"),
                os.path.join(dest, "ramparts"),
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            out[kind] = dest
        ok = compileall.compile_dir(os.path.join(out["pyc"], "ramparts"), quiet=1)
        if not ok:
            raise RuntimeError("could not byte-compile the ramparts snapshot")
        yield out
    finally:
        shutil.rmtree(root, ignore_errors=True)
