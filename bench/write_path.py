"""Diagnostic: the steps of the sensor's check of a file opened for writing, timed in place.

The audit hook's ``open`` handler for a write runs ``_paths.absolute``, ``_paths.resolve``
(``os.path.realpath``: one ``lstat`` per path component), ``_harmless``,
``os.path.lexists``, ``_paths.stat_id`` (``os.stat``), ``_write_rule`` (the sensitive-path
globs, then the policy) and ``report``. This script replaces the sensor's ``open`` handler
with a copy of those steps that times each one, then opens files under /tmp in two
patterns:

* ``empty``  ``open(path, "w").close()`` in a loop (what bench/micro.py times);
* ``write``  ``open(path, "w")``, write 200 bytes, close, for three files in turn (what
             the warm handler does): each check then follows a write and a truncate.

It reaches into sensor internals (``_paths``, ``Sensor._harmless``, ``_write_rule``,
``report``): update it when they change. Numbers are medians in µs per check.

    .venv/bin/python bench/write_path.py [--quick] [--n N]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import _common as c

STEPS = ("absolute", "realpath", "harmless", "lexists", "stat_id", "write_rule", "report")


def child(pattern: str, n: int) -> None:
    import ramparts
    from ramparts import _paths

    sensor = ramparts.install(mode="enforce", policy=c.POLICY_WARM)
    perf = time.perf_counter_ns
    steps: dict[str, list[int]] = {k: [] for k in STEPS}

    def judge(args: tuple[Any, ...]) -> None:
        path, _mode, flags = args
        if not isinstance(path, str) or not (flags or 0) & (os.O_WRONLY | os.O_RDWR):
            return
        t0 = perf()
        ap = _paths.absolute(path, None)
        t1 = perf()
        real = _paths.resolve(ap)
        t2 = perf()
        sensor._harmless(ap, real)
        t3 = perf()
        os.path.lexists(real)
        t4 = perf()
        ident = _paths.stat_id(ap)
        t5 = perf()
        rule = sensor._write_rule(real, ident)
        t6 = perf()
        sensor.report(
            "file.write",
            "files",
            rule,
            f"write {real}",
            {"path": real, "op": "write"},
            key=(real, "write"),
        )
        t7 = perf()
        for name, d in zip(
            STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6), strict=True
        ):
            steps[name].append(d)

    sensor._handlers["open"] = judge  # same key set: the handler-count check stays quiet
    tmp = tempfile.mkdtemp(prefix="ramparts-bench-", dir="/tmp")
    atexit.register(shutil.rmtree, tmp, True)
    data = "x" * 200

    def once() -> None:
        for name in ("order", "quote", "receipt"):
            with open(f"{tmp}/{name}.json", "w", encoding="utf-8") as fh:
                if pattern == "write":
                    fh.write(data)

    for _ in range(100):
        once()
    for v in steps.values():
        v.clear()
    for _ in range(n):
        once()
    out = {k: statistics.median(v) / 1000 for k, v in steps.items()}
    sys.stderr.write("RESULT " + repr(out) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="200 rounds instead of 1000")
    ap.add_argument("--n", type=int, help="rounds of three opens (default 1000, quick 200)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.n = args.n or (200 if args.quick else 1000)
    if args.child:
        child(args.child, args.n)
        return 0
    import ast

    rows = []
    res: dict[str, dict[str, float]] = {}
    with c.snapshot() as snap:
        for pattern in ("empty", "write"):
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", pattern, "--n", str(args.n)],
                env=c.child_env(snap["pyc"]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=True,
            )
            line = next(x for x in proc.stderr.splitlines() if x.startswith("RESULT "))
            res[pattern] = ast.literal_eval(line[7:])
    for step in STEPS:
        rows.append([step, res["empty"][step], res["write"][step]])
    rows.append(["total", sum(res["empty"].values()), sum(res["write"].values())])
    print(
        c.table(
            ["step", "µs, after open+close", "µs, after write+truncate"],
            rows,
            "\nthe sensor's write check, step by step (median per check)",
        )
    )
    path = c.write_results(
        "write_path",
        {
            "benchmark": "write_path",
            "machine": c.machine(),
            "quick": args.quick,
            "n": args.n,
            "steps_us": res,
        },
    )
    print(f"\nwrote {os.path.relpath(path, c.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
