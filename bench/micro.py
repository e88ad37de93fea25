"""Per-event cost of the sensor: what one audited operation costs with and without it.

Configurations, each a long-lived worker process (audit hooks cannot be removed):

* ``none``     no audit hook at all;
* ``pyhook``   one no-op Python audit hook (``def hook(event, args): pass``): the floor that
               any PEP 578 hook written in Python pays;
* ``monitor``  ``ramparts.install(mode="monitor")``, no policy;
* ``enforce``  ``ramparts.install(mode="enforce")`` with the 50-rule ``bench/policy50.yaml``.

Operations (each timed as a loop; the loop's own cost cancels in the Δ columns):

* ``unhandled``   ``sys.audit("bench.unhandled", 1)``: an event the sensor has no handler for;
* ``id()``        ``id(obj)``: CPython raises ``builtins.id`` on every call (``copy.deepcopy``
                  and botocore call it a lot), also unhandled by the sensor;
* ``tmp write``   ``open("/tmp/.../f.json", "w").close()``;
* ``tmp read``    ``open("/tmp/.../f.json", "rb").close()``;
* ``connect``     ``socket()`` + ``connect()`` to a loopback listener + ``accept`` + close;
                  the sensor's verdict cache for that destination is warm;
* ``connect, first``  the same with the verdict cache emptied each time (as it is at every
                  invocation boundary: the first connect to a destination per invocation);
* ``aws.call``    ``client.get_item(...)`` on a botocore DynamoDB client whose
                  ``BaseClient._make_api_call`` is stubbed out, so only the sensor's
                  wrapper (``on_aws_call``) differs between configurations;
* ``invocation``  a no-op handler called through ``ramparts.protect`` (begin, end, integrity
                  check, one ``invocation.summary`` line to fd 1 = /dev/null) vs called bare.

Rounds are interleaved across workers; each figure is the median over rounds of the mean
ns per operation in that round (min over rounds in the JSON).

    .venv/bin/python bench/micro.py [--quick]
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import _common as c

CONFIGS = ("none", "pyhook", "monitor", "enforce")
OPS = (
    "unhandled",
    "id()",
    "tmp write",
    "tmp read",
    "connect",
    "connect, first",
    "aws.call",
    "invocation",
)
# Iterations per timed loop (full run); quick divides by 5. Chosen for ~5-20 ms per loop.
ITERS = {
    "unhandled": 50_000,
    "id()": 50_000,
    "tmp write": 2_000,
    "tmp read": 4_000,
    "connect": 400,
    "connect, first": 400,
    "aws.call": 5_000,
    "invocation": 5_000,
}


def _ops(config: str) -> dict[str, Callable[[int], int]]:
    """Build the timed loops for one configuration. Each returns elapsed ns for n ops."""
    import botocore.client
    import botocore.session

    # Stub the network part of botocore *before* the sensor wraps _make_api_call.
    botocore.client.BaseClient._make_api_call = lambda self, op, params: {}  # type: ignore[method-assign]
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # placeholders

    sensor = None
    if config == "pyhook":

        def hook(event: str, args: tuple[Any, ...]) -> None:
            pass

        sys.addaudithook(hook)
    elif config in ("monitor", "enforce"):
        import ramparts

        if config == "monitor":
            sensor = ramparts.install(mode="monitor")
        else:
            sensor = ramparts.install(mode="enforce", policy=c.POLICY50)
        if sensor.config_errors:
            raise RuntimeError(f"policy rejected: {sensor.config_errors}")

    import socket

    tmpdir = tempfile.mkdtemp(prefix="ramparts-micro-", dir="/tmp")
    atexit.register(shutil.rmtree, tmpdir, True)
    path = os.path.join(tmpdir, "f.json")
    with open(path, "w") as fh:
        fh.write("{}")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    addr = listener.getsockname()
    verdicts: Any = sensor._verdicts if sensor is not None else {}
    perf = time.perf_counter_ns
    audit = sys.audit

    def unhandled(n: int) -> int:
        t0 = perf()
        for _ in range(n):
            audit("bench.unhandled", 1)
        return perf() - t0

    def ident(n: int) -> int:
        obj = object()
        t0 = perf()
        for _ in range(n):
            id(obj)
        return perf() - t0

    def tmp_write(n: int) -> int:
        t0 = perf()
        for _ in range(n):
            open(path, "w").close()
        return perf() - t0

    def tmp_read(n: int) -> int:
        t0 = perf()
        for _ in range(n):
            open(path, "rb").close()
        return perf() - t0

    def connect(n: int, first: bool = False) -> int:
        new = socket.socket
        acc = listener.accept
        t0 = perf()
        for _ in range(n):
            if first:
                verdicts.clear()
            s = new(socket.AF_INET, socket.SOCK_STREAM)
            s.connect(addr)
            conn, _ = acc()
            conn.close()
            s.close()
        return perf() - t0

    def aws_call(n: int) -> int:
        get = client.get_item
        key = {"pk": {"S": "order#1"}}
        t0 = perf()
        for _ in range(n):
            get(TableName="orders", Key=key)
        return perf() - t0

    def noop(event: Any, context: Any) -> None:
        return None

    fn: Callable[[Any, Any], Any] = noop
    if sensor is not None:
        import ramparts

        fn = ramparts.protect(noop)

    class Ctx:
        aws_request_id = "bench"

    def invocation(n: int) -> int:
        ctx = Ctx()
        ev: dict[str, Any] = {}
        t0 = perf()
        for _ in range(n):
            fn(ev, ctx)
        return perf() - t0

    return {
        "unhandled": unhandled,
        "id()": ident,
        "tmp write": tmp_write,
        "tmp read": tmp_read,
        "connect": connect,
        "connect, first": lambda n: connect(n, True),
        "aws.call": aws_call,
        "invocation": invocation,
    }


def worker(config: str, out_fd: int) -> None:
    out = os.fdopen(out_fd, "w", buffering=1)
    ops = _ops(config)
    for op in ops.values():  # warm-up: caches, first-time paths, pyc
        op(20)
    out.write("READY\n")
    for line in sys.stdin:
        op, _, n = line.rstrip("\n").rpartition(" ")
        if not op:
            break
        out.write(f"{ops[op](int(n))}\n")


class Worker:
    def __init__(self, config: str, cpu: int | None, pythonpath: str) -> None:
        self.config = config
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", config, "--fd", str(w)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            pass_fds=(w,),
            text=True,
            env=c.child_env(pythonpath),
        )
        os.close(w)
        if cpu is not None:
            os.sched_setaffinity(self.proc.pid, {cpu})
        self.results = os.fdopen(r, "r")

    def ready(self) -> None:
        if self.results.readline() != "READY\n":
            raise RuntimeError(f"micro worker {self.config} failed to start")

    def time(self, op: str, n: int) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{op} {n}\n")
        self.proc.stdin.flush()
        line = self.results.readline()
        if not line.strip():
            raise RuntimeError(f"micro worker {self.config} died during {op}")
        return int(line)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.results.close()


def _measure(
    pythonpath: str, rounds: int, scale: int, cpu: int | None
) -> dict[str, dict[str, list[float]]]:
    """ns per operation, per round, for every (operation, configuration)."""
    workers = {cfg: Worker(cfg, cpu, pythonpath) for cfg in CONFIGS}
    per_op: dict[str, dict[str, list[float]]] = {op: {cfg: [] for cfg in CONFIGS} for op in OPS}
    try:
        for w in workers.values():
            w.ready()
        rng = random.Random(11)
        for _ in range(rounds):
            for op in OPS:
                n = max(10, ITERS[op] // scale)
                order = list(CONFIGS)
                rng.shuffle(order)
                for cfg in order:
                    per_op[op][cfg].append(workers[cfg].time(op, n) / n)
        for w in workers.values():
            w.stop()
    finally:
        for w in workers.values():
            if w.proc.poll() is None:
                w.proc.kill()

    return per_op


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="few rounds (CI smoke, ~10 s)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 25, quick 5)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.fd)
        return 0
    started = time.perf_counter()
    rounds = args.rounds or (5 if args.quick else 25)
    scale = 5 if args.quick else 1
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    meta = c.machine()
    with c.snapshot() as snap:
        per_op = _measure(snap["pyc"], rounds, scale, cpus[0] if cpus else None)

    results: dict[str, Any] = {
        "benchmark": "micro",
        "quick": args.quick,
        "machine": meta,
        "rounds": rounds,
        "ops": {},
    }
    rows = []
    for op in OPS:
        base = per_op[op]["none"]
        entry: dict[str, Any] = {}
        row: list[Any] = [op]
        for cfg in CONFIGS:
            xs = per_op[op][cfg]
            d = [x - b for x, b in zip(xs, base, strict=True)]  # paired by round
            entry[cfg] = {
                "median_ns": c.median(xs),
                "min_ns": min(xs),
                "delta_median_ns": c.median(d),
                "delta_ci95_ns": list(c.bootstrap_ci(d)),
                "rounds_ns": xs,
            }
            row.append(_ns(c.median(xs)))
        for cfg in CONFIGS[1:]:
            row.append(_ns(entry[cfg]["delta_median_ns"], signed=True))
        results["ops"][op] = entry
        rows.append(row)
    print(
        c.table(
            ["operation", *(f"{cfg}" for cfg in CONFIGS), *(f"Δ {cfg}" for cfg in CONFIGS[1:])],
            rows,
            f"\nper-operation time (median of {rounds} interleaved rounds; Δ = config - "
            "none, the cost the hook or sensor adds per operation)",
        )
    )
    path = c.write_results("micro", results)
    print(f"\nwrote {os.path.relpath(path, c.REPO)} in {time.perf_counter() - started:.0f} s")
    return 0


def _ns(v: float, signed: bool = False) -> str:
    sign = "+" if signed and v >= 0 else ""
    if abs(v) >= 10_000:
        return f"{sign}{v / 1000:.1f} µs"
    return f"{sign}{v:.0f} ns"


if __name__ == "__main__":
    sys.exit(main())
