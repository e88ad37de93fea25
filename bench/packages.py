"""What the sensor's package report costs once per sandbox (``sensor.packages``).

Times ``ramparts._packages.scan()`` + ``imported()`` over (1) this venv's site-packages and
(2) a generated tree of N distributions shaped like a Lambda deployment package (half with
``top_level.txt``, half with only a ``RECORD``), with a warm page cache (the Lambda case:
the package was just unzipped), median of repeats, each in a fresh interpreter state.

    .venv/bin/python bench/packages.py [--dists 300] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layer"))

from ramparts import _packages  # noqa: E402


def make_tree(root: Path, n: int) -> None:
    for i in range(n):
        name, mod = f"pkg_{i}", f"mod_{i}"
        meta = root / f"{name}-1.{i}.0.dist-info"
        meta.mkdir()
        (root / mod).mkdir()
        (root / mod / "__init__.py").write_text("")
        files = [f"{mod}/__init__.py,sha256=abc,0"] + [
            f"{mod}/sub_{j}.py,sha256=abc,100" for j in range(40)
        ]
        files.append(f"{meta.name}/METADATA,,")
        (meta / "RECORD").write_text("\n".join(files) + "\n")
        if i % 2 == 0:
            (meta / "top_level.txt").write_text(mod + "\n")


def measure(paths: list[str], repeat: int) -> tuple[float, int]:
    saved = list(sys.path)
    sys.path[:] = paths
    try:
        times = []
        found = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            dists = _packages.scan()
            _packages.imported(dists, sys.modules)
            times.append((time.perf_counter() - t0) * 1000)
            found = len(dists)
        return statistics.median(times), found
    finally:
        sys.path[:] = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dists", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.repeat = 3
    site = [p for p in sys.path if p.endswith("site-packages")]
    ms, n = measure(site, args.repeat)
    print(f"venv site-packages: {n} distributions, scan + imported: {ms:.2f} ms (median)")
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp), args.dists)
        ms, n = measure([tmp], args.repeat)
        print(f"generated tree: {n} distributions, scan + imported: {ms:.2f} ms (median)")


if __name__ == "__main__":
    main()
