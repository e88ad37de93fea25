"""Run every benchmark in turn (each in its own interpreter) and say where the results are.

    .venv/bin/python bench/run_all.py [--quick]

``--quick`` is the CI smoke run (well under a minute in total). Targets missed are reported
in the tables, not by the exit status: these are benchmarks, not timed tests. The exit
status is non-zero only when a benchmark itself fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = (
    "cold_start.py",
    "warm.py",
    "micro.py",
    "write_path.py",
    "normalize.py",
    "rules.py",
    "sbom.py",
    "packages.py",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke run")
    ap.add_argument(
        "--only", action="append", choices=SCRIPTS, help="run only this script (repeatable)"
    )
    args = ap.parse_args(argv)
    started = time.perf_counter()
    failed = []
    for script in args.only or SCRIPTS:
        print(f"\n=== {script}{' --quick' if args.quick else ''} ===", flush=True)
        cmd = [sys.executable, os.path.join(BENCH_DIR, script)]
        if args.quick:
            cmd.append("--quick")
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(script)
    print(
        f"\nall benchmarks done in {time.perf_counter() - started:.0f} s; "
        f"results in {os.path.relpath(os.path.join(BENCH_DIR, 'results'))}/"
    )
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
