"""Cold start added by the sensor: ``import ramparts`` + ``ramparts.install()``.

Three interpreter set-ups, each compared with the same interpreter doing nothing:

* ``clean``   ``python -S``: no ``site``, nothing preloaded. The strictest view: the sensor
              pays for every module it pulls in.
* ``venv``    ``.venv/bin/python`` as is. Its ``site`` runs the editable-install ``.pth``
              of this checkout, which already imports ``re``, ``pathlib``, ``urllib``...
              (~15 ms), so this flatters the sensor; reported because it is what
              ``python -c ...`` means here.
* ``runtime`` ``python -S`` that first imports ``awslambdaric.bootstrap``: the modules the
              Lambda runtime has loaded when it imports the handler (and so ``ramparts``).
              This is the marginal cost a function actually pays.
* ``otel``    ``runtime`` plus an OpenTelemetry SDK ``TracerProvider`` set up first, as in a
              function traced with OpenTelemetry: the sensor then links its lines to the
              active span, but still imports nothing at start (its ``_otel`` module loads at
              the first alert), so the delta must match ``runtime``'s.

Variants: ``bare`` (the set-up alone), ``import`` (``import ramparts``), ``install``
(``+ ramparts.install()``), ``policy`` (``RAMPARTS_POLICY`` = the 50-rule
``bench/policy50.yaml``) and ``policy, no .pyc`` (the sensor compiled from source at
start, as with the layer zip, which ships no bytecode, on Lambda's read-only ``/opt``).

Measured two ways: (i) whole-process wall time of fresh interpreters, all variants
interleaved round by round (shuffled); (ii) ``time.perf_counter_ns`` around the import and
the install inside fresh processes. Then ``-X importtime`` (median of runs), the
``sys.modules`` difference against the bare interpreter, and a cProfile of ``install()``.

    .venv/bin/python bench/cold_start.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import subprocess
import sys
import sysconfig
import time
from typing import Any

import _common as c

SETUPS = ("clean", "venv", "runtime", "otel")
VARIANTS = ("bare", "import", "install", "policy", "policy-src")
VARIANT_LABEL = {
    "bare": "bare interpreter",
    "import": "import ramparts",
    "install": "import + install()",
    "policy": "import + install(), 50-rule policy",
    "policy-src": "same, compiled at start (no .pyc)",
}
SENSOR_CODE = {
    "bare": "pass",
    "import": "import ramparts",
    "install": "import ramparts; ramparts.install()",
    "policy": "import ramparts; ramparts.install()",
    "policy-src": "import ramparts; ramparts.install()",
}
# Modules the sensor's design keeps off the cold path (ramparts/_sensor.py docstring).
AVOIDED = (
    "re",
    "json",
    "socket",
    "threading",
    "dataclasses",
    "typing",
    "ipaddress",
    "pathlib",
    "logging",
    "enum",
    "collections",
    "functools",
)
TARGET_MS = 10.0


def _prelude(setup: str) -> str:
    if setup in ("runtime", "otel"):
        purelib = sysconfig.get_paths()["purelib"]
        pre = f"import sys; sys.path.append({purelib!r}); import awslambdaric.bootstrap"
        if setup == "otel":
            pre += (
                "; from opentelemetry import trace"
                "; from opentelemetry.sdk.trace import TracerProvider"
                "; trace.set_tracer_provider(TracerProvider())"
            )
        return pre
    return ""


def _flags(setup: str) -> list[str]:
    return [] if setup == "venv" else ["-S"]


def _command(
    setup: str, variant: str, code: str | None = None, extra_flags: tuple[str, ...] = ()
) -> list[str]:
    body = code if code is not None else SENSOR_CODE[variant]
    pre = _prelude(setup)
    if pre:
        body = pre if body == "pass" else pre + "; " + body
    return [sys.executable, *_flags(setup), *extra_flags, "-c", body]


def _env(snap: dict[str, str], variant: str) -> dict[str, str]:
    path = snap["src"] if variant == "policy-src" else snap["pyc"]
    extra = {"RAMPARTS_POLICY": c.POLICY50} if variant.startswith("policy") else {}
    return c.child_env(path, **extra)


# -- (i) whole-process wall time ------------------------------------------------------------
def _spawn_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall ms and CPU ms (user + sys) of one child, stdout to /dev/null."""
    actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - t0) / 1e6
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child failed ({status}): {argv}")
    return wall, (ru.ru_utime + ru.ru_stime) * 1000


def whole_process(
    snap: dict[str, str], setups: tuple[str, ...], rounds: int, warmup: int = 3
) -> dict[str, dict[str, dict[str, list[float]]]]:
    jobs = [(s, v, _command(s, v), _env(snap, v)) for s in setups for v in VARIANTS]
    for _ in range(warmup):  # page cache, pyc files of the stdlib
        for _s, _v, argv, env in jobs:
            _spawn_once(argv, env)
    out: dict[str, dict[str, dict[str, list[float]]]] = {
        s: {v: {"wall": [], "cpu": []} for v in VARIANTS} for s in setups
    }
    rng = random.Random(42)
    for _ in range(rounds):
        order = list(jobs)
        rng.shuffle(order)
        for s, v, argv, env in order:
            wall, cpu = _spawn_once(argv, env)
            out[s][v]["wall"].append(wall)
            out[s][v]["cpu"].append(cpu)
    return out


# -- (ii) in-process timing ---------------------------------------------------------------
_TIMED = """\
import sys, time
before = set(sys.modules)
t0 = time.perf_counter_ns()
import ramparts
t1 = time.perf_counter_ns()
sensor = ramparts.install()
t2 = time.perf_counter_ns()
sys.stderr.write("RESULT " + repr({
    "import_ms": (t1 - t0) / 1e6, "install_ms": (t2 - t1) / 1e6, "total_ms": (t2 - t0) / 1e6,
    "self_reported_ms": sensor.install_ms, "file": ramparts.__file__,
    "rules": sensor.policy.rule_count if sensor.policy else 0,
    "errors": sensor.config_errors, "new": sorted(set(sys.modules) - before),
}) + "\\n")
"""


def _run_timed(setup: str, variant: str, snap: dict[str, str]) -> dict[str, Any]:
    argv = _command(setup, variant, code=_TIMED)
    proc = subprocess.run(
        argv,
        env=_env(snap, variant),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    for line in proc.stderr.splitlines():
        if line.startswith("RESULT "):
            res: dict[str, Any] = ast.literal_eval(line[7:])
            return res
    raise RuntimeError(f"no result from child: {proc.stderr[-2000:]}")


def in_process(
    snap: dict[str, str], setups: tuple[str, ...], runs: int
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    variants = [v for v in VARIANTS if v not in ("bare", "import")]
    out: dict[str, dict[str, list[dict[str, Any]]]] = {s: {v: [] for v in variants} for s in setups}
    jobs = [(s, v) for s in setups for v in variants]
    for s, v in jobs:  # warm-up, and sanity checks
        r = _run_timed(s, v, snap)
        want = _env(snap, v)["PYTHONPATH"]
        if not r["file"].startswith(want + "/"):
            raise RuntimeError(f"{s}/{v} imported ramparts from {r['file']}, not {want}")
        if r["errors"]:
            raise RuntimeError(f"policy rejected: {r['errors']}")
    rng = random.Random(7)
    for _ in range(runs):
        rng.shuffle(jobs)
        for s, v in jobs:
            out[s][v].append(_run_timed(s, v, snap))
    return out


# -- -X importtime -----------------------------------------------------------------------------
def _importtime(argv: list[str], env: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """(module, depth, self_us, cumulative_us) in import order."""
    proc = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:") :].split("|")
        self_us, cum_us, raw = parts[0], parts[1], parts[2]
        depth = (len(raw) - len(raw.lstrip(" ")) - 1) // 2
        rows.append((raw.strip(), depth, int(self_us), int(cum_us)))
    return rows


def importtime(snap: dict[str, str], setup: str, variant: str, runs: int) -> dict[str, Any]:
    bare_names = {
        r[0]
        for r in _importtime(
            _command(setup, "bare", extra_flags=("-X", "importtime")), _env(snap, "bare")
        )
    }
    samples: dict[str, list[tuple[int, int, int]]] = {}
    order: list[str] = []
    for _ in range(runs):
        for name, depth, s_us, c_us in _importtime(
            _command(setup, variant, extra_flags=("-X", "importtime")), _env(snap, variant)
        ):
            if name in bare_names:
                continue
            if name not in samples:
                samples[name] = []
                order.append(name)
            samples[name].append((depth, s_us, c_us))
    rows = []
    for name in order:
        ss = samples[name]
        rows.append(
            {
                "module": name,
                "depth": ss[0][0],
                "self_us": c.median([s[1] for s in ss]),
                "cumulative_us": c.median([s[2] for s in ss]),
            }
        )
    top_level_cum = sum(r["cumulative_us"] for r in rows if r["depth"] == 0)
    return {
        "setup": setup,
        "variant": variant,
        "runs": runs,
        "modules": rows,
        "sum_top_level_cumulative_us": top_level_cum,
    }


# -- cProfile of install() ---------------------------------------------------------------------
_PROFILED = """\
import cProfile, pstats, io, sys
import ramparts
pr = cProfile.Profile()
pr.enable()
ramparts.install()
pr.disable()
st = pstats.Stats(pr)
rows = []
for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
    if "/ramparts/" in fn or fn == "~":
        short = fn.rsplit("/", 1)[-1] + f":{line}" if fn != "~" else ""
        rows.append((ct * 1000, tt * 1000, nc, f"{short}({name})"))
rows.sort(reverse=True)
sys.stderr.write("RESULT " + repr(rows[:30]) + "\\n")
"""


def profile_install(snap: dict[str, str], variant: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        _command("clean", variant, code=_PROFILED),
        env=_env(snap, variant),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    for line in proc.stderr.splitlines():
        if line.startswith("RESULT "):
            return [
                {"cum_ms": r[0], "self_ms": r[1], "calls": r[2], "function": r[3]}
                for r in ast.literal_eval(line[7:])
            ]
    raise RuntimeError(proc.stderr[-2000:])


# -- report ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="few runs (CI smoke, ~15 s)")
    ap.add_argument("--rounds", type=int, help="whole-process rounds (default 100, quick 12)")
    ap.add_argument("--runs", type=int, help="in-process runs (default 40, quick 6)")
    args = ap.parse_args(argv)
    rounds = args.rounds or (12 if args.quick else 100)
    runs = args.runs or (6 if args.quick else 40)
    it_runs = 3 if args.quick else 9
    setups = SETUPS
    started = time.perf_counter()
    meta = c.machine()

    with c.snapshot() as snap:
        wp = whole_process(snap, setups, rounds)
        ip = in_process(snap, setups, runs)
        it = [
            importtime(snap, "clean", "policy", it_runs),
            importtime(snap, "runtime", "policy", it_runs),
            importtime(snap, "clean", "policy-src", it_runs),
        ]
        prof = profile_install(snap, "policy")

    results: dict[str, Any] = {
        "benchmark": "cold_start",
        "quick": args.quick,
        "machine": meta,
        "rounds": rounds,
        "in_process_runs": runs,
        "target_ms": TARGET_MS,
        "policy": os.path.relpath(c.POLICY50, c.REPO),
        "whole_process": {},
        "in_process": {},
        "modules": {},
        "importtime": it,
        "install_profile": prof,
    }

    # (i) whole process
    rows = []
    for s in setups:
        bare = wp[s]["bare"]["wall"]
        for v in VARIANTS:
            wall = wp[s][v]["wall"]
            cpu = wp[s][v]["cpu"]
            entry: dict[str, Any] = {
                "median_ms": c.median(wall),
                "p90_ms": c.quantile(wall, 0.9),
                "min_ms": min(wall),
                "cpu_median_ms": c.median(cpu),
                "samples_ms": wall,
            }
            if v != "bare":
                d = c.median(wall) - c.median(bare)
                lo, hi = c.bootstrap_diff_ci(wall, bare)
                entry.update(
                    {
                        "delta_median_ms": d,
                        "delta_ci95_ms": [lo, hi],
                        "delta_p90_ms": c.quantile(wall, 0.9) - c.quantile(bare, 0.9),
                        "delta_cpu_ms": c.median(cpu) - c.median(wp[s]["bare"]["cpu"]),
                    }
                )
                verdict = ""
                if v in ("install", "policy", "policy-src"):
                    verdict = "ok" if d <= TARGET_MS else "MISSED"
                rows.append(
                    [
                        s,
                        VARIANT_LABEL[v],
                        c.median(wall),
                        c.quantile(wall, 0.9),
                        f"{d:+.2f}",
                        f"[{lo:+.1f}, {hi:+.1f}]",
                        f"{entry['delta_cpu_ms']:+.2f}",
                        verdict,
                    ]
                )
            else:
                rows.append(
                    [s, VARIANT_LABEL[v], c.median(wall), c.quantile(wall, 0.9), "", "", "", ""]
                )
            results["whole_process"].setdefault(s, {})[v] = entry
    print(
        c.table(
            [
                "setup",
                "variant",
                "median ms",
                "p90 ms",
                "Δ median ms",
                "Δ 95% CI",
                "Δ cpu ms",
                f"≤{TARGET_MS:g} ms",
            ],
            rows,
            f"\n(i) whole-process wall time, {rounds} interleaved rounds "
            f"(Δ = variant - bare, same set-up)",
        )
    )

    # (ii) in-process
    rows = []
    for s in setups:
        for v, samples in ip[s].items():
            imp = [r["import_ms"] for r in samples]
            ins = [r["install_ms"] for r in samples]
            tot = [r["total_ms"] for r in samples]
            own = [r["self_reported_ms"] for r in samples]
            results["in_process"].setdefault(s, {})[v] = {
                "import_median_ms": c.median(imp),
                "install_median_ms": c.median(ins),
                "total_median_ms": c.median(tot),
                "total_p90_ms": c.quantile(tot, 0.9),
                "self_reported_install_median_ms": c.median(own),
                "policy_rules": samples[0]["rules"],
                "samples_total_ms": tot,
            }
            rows.append(
                [
                    s,
                    VARIANT_LABEL[v],
                    c.median(imp),
                    c.median(ins),
                    c.median(tot),
                    c.quantile(tot, 0.9),
                    c.median(own),
                ]
            )
            new = samples[0]["new"]
            results["modules"].setdefault(s, {})[v] = new
    print(
        c.table(
            [
                "setup",
                "variant",
                "import ms",
                "install() ms",
                "total ms",
                "total p90",
                "install_ms (self-reported)",
            ],
            rows,
            f"\n(ii) in-process perf_counter, {runs} fresh processes each (median)",
        )
    )

    # sys.modules diff
    rows = []
    for s in setups:
        for v in ("install", "policy"):
            new = results["modules"][s][v]
            stdlib = [m for m in new if not m.startswith("ramparts")]
            avoided = [m for m in AVOIDED if m in new]
            text = " ".join(stdlib)
            rows.append(
                [
                    s,
                    VARIANT_LABEL[v],
                    len(new),
                    len(stdlib),
                    ", ".join(avoided) or "none",
                    text if len(text) < 120 else text[:117] + "...",
                ]
            )
    print(
        c.table(
            [
                "setup",
                "variant",
                "new modules",
                "non-ramparts",
                "of re/json/socket/threading/dataclasses/typing/...",
                "non-ramparts modules (full list in the JSON)",
            ],
            rows,
            "\nsys.modules after import + install() minus the bare set-up's",
        )
    )

    # importtime
    for entry in it:
        mods = sorted(entry["modules"], key=lambda r: r["self_us"], reverse=True)[:12]
        total_ms = entry["sum_top_level_cumulative_us"] / 1000
        print(
            c.table(
                ["module", "depth", "self µs", "cumulative µs"],
                [[m["module"], m["depth"], m["self_us"], m["cumulative_us"]] for m in mods],
                f"\n-X importtime, set-up {entry['setup']}, "
                f"{VARIANT_LABEL[entry['variant']]} (median of {entry['runs']} runs; "
                f"modules the bare set-up does not import; top-level cumulative "
                f"{total_ms:.1f} ms)",
            )
        )
    print(
        c.table(
            ["cum ms", "self ms", "calls", "function"],
            [[p["cum_ms"], p["self_ms"], p["calls"], p["function"]] for p in prof[:12]],
            "\ncProfile of ramparts.install() with the 50-rule policy (clean set-up; "
            "profiler overhead inflates absolute figures)",
        )
    )

    path = c.write_results("cold_start", results)
    print(f"\nwrote {os.path.relpath(path, c.REPO)} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
