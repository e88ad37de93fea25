"""Warm invocation overhead: a realistic handler, many invocations, five configurations.

The handler (``App.handler``) parses an API Gateway v2 event, makes two HTTP calls with
``urllib3`` (a keep-alive pool) and one DynamoDB ``GetItem`` with ``boto3``, both against a
stub server on 127.0.0.1, does some JSON work and writes three files under ``/tmp``.

Configurations, each in its own long-lived worker process (audit hooks cannot be removed):

* ``baseline``  no sensor, no tracing;
* ``monitor``   ``ramparts.install(mode="monitor")`` with no policy (the built-in rules),
                handler wrapped by ``ramparts.protect`` (one summary line per invocation);
* ``enforce``   ``ramparts.install(mode="enforce", policy="bench/policy_warm.yaml")``, a
                policy that allows what the handler does, handler wrapped by ``protect``;
* ``otel``      OpenTelemetry SDK ``TracerProvider`` with a ``SimpleSpanProcessor`` into an
                ``InMemorySpanExporter`` (cleared after each invocation, outside the timing),
                ``BotocoreInstrumentor`` and ``URLLib3Instrumentor``;
* ``both``      ``enforce`` then ``otel`` in the same process.

The stub server is a separate process (``ThreadingHTTPServer``, HTTP/1.1 keep-alive,
``disable_nagle_algorithm = True``). When two CPUs are available the server is pinned to
one and the workers to the other. Rounds are interleaved: each round runs K invocations in
every worker, in a shuffled order, so drift affects all configurations alike. Overhead is
the median over rounds of (config round median / baseline round median - 1), with a
bootstrap 95% CI over rounds.

    .venv/bin/python bench/warm.py [--quick] [--rounds R] [--per-round K]
"""

from __future__ import annotations

import argparse
import ast
import atexit
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import _common as c

CONFIGS = ("baseline", "monitor", "enforce", "otel", "both")
RAMPARTS_CONFIGS = ("monitor", "enforce", "both")
OTEL_CONFIGS = ("otel", "both")
TARGET_PCT = 3.0
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # a placeholder for the loopback stub
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# -- the loopback stub server --------------------------------------------------------------
def serve() -> None:
    """HTTP stub on 127.0.0.1: inventory (GET), pricing (POST), DynamoDB GetItem (POST)."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    item = json.dumps(
        {
            "Item": {
                "pk": {"S": "order#1"},
                "status": {"S": "PAID"},
                "total": {"N": "129.90"},
                "customer": {"M": {"id": {"S": "c-981"}, "tier": {"S": "gold"}}},
                "lines": {
                    "L": [{"M": {"sku": {"S": f"SKU-{i}"}, "qty": {"N": str(i)}}} for i in range(8)]
                },
            }
        }
    ).encode()
    stock = json.dumps({"sku": "SKU-1", "available": 42, "warehouses": ["fra", "dub"]}).encode()
    price = json.dumps(
        {
            "currency": "EUR",
            "total": 129.9,
            "tax": 20.7,
            "discounts": [{"code": "GOLD", "amount": 5}],
        }
    ).encode()

    class Stub(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", "bench")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(stock, "application/json")

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            if self.headers.get("X-Amz-Target", "").endswith(".GetItem"):
                self._reply(item, "application/x-amz-json-1.0")
            else:
                self._reply(price, "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.daemon_threads = True
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


# -- the function under test ----------------------------------------------------------------
def make_event(n_items: int = 10) -> dict[str, Any]:
    import json

    order = {
        "order_id": "1",
        "customer": {"id": "c-981", "email": "a@example.com"},
        "items": [
            {"sku": f"SKU-{i}", "qty": i % 3 + 1, "note": "gift wrap" * (i % 2)}
            for i in range(n_items)
        ],
        "shipping": {"method": "express", "address": {"city": "Lyon", "zip": "69002"}},
    }
    return {
        "version": "2.0",
        "routeKey": "POST /orders",
        "rawPath": "/orders",
        "rawQueryString": "",
        "cookies": ["session=abc"],
        "headers": {
            "content-type": "application/json",
            "host": "api.example.com",
            "user-agent": "bench/1.0",
            "x-forwarded-for": "203.0.113.9",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "api.example.com",
            "http": {
                "method": "POST",
                "path": "/orders",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "bench/1.0",
            },
            "requestId": "req",
            "routeKey": "POST /orders",
            "stage": "$default",
            "time": "04/Dec/2025:20:00:00 +0000",
            "timeEpoch": 1764878400000,
        },
        "body": json.dumps(order),
        "isBase64Encoded": False,
    }


class Context:
    """The part of the Lambda context object handlers and Ramparts read."""

    function_name = "orders-api"
    memory_limit_in_mb = 1024

    def __init__(self, n: int) -> None:
        self.aws_request_id = f"bench-{n:08d}"


class App:
    """Clients are created once per sandbox, at init, as in a real function."""

    def __init__(self, port: int) -> None:
        import boto3
        import urllib3
        from botocore.config import Config

        self.base = f"http://127.0.0.1:{port}"
        self.http = urllib3.PoolManager(maxsize=2, retries=False, timeout=5.0)
        session = boto3.session.Session(region_name="us-east-1")
        self.ddb = session.client(
            "dynamodb",
            endpoint_url=self.base,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=5,
                read_timeout=5,
            ),
        )
        self.tmp = tempfile.mkdtemp(prefix="ramparts-bench-", dir="/tmp")
        atexit.register(shutil.rmtree, self.tmp, True)

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        import json

        order = json.loads(event["body"])
        oid = order["order_id"]
        stock = json.loads(self.http.request("GET", f"{self.base}/inventory/{oid}").data)
        quote = json.loads(
            self.http.request(
                "POST",
                f"{self.base}/pricing",
                body=json.dumps({"items": order["items"]}).encode(),
                headers={"Content-Type": "application/json"},
            ).data
        )
        record = self.ddb.get_item(TableName="orders", Key={"pk": {"S": f"order#{oid}"}})
        item = record["Item"]
        receipt = {
            "order": oid,
            "request": context.aws_request_id,
            "status": item["status"]["S"],
            "total": quote["total"],
            "available": stock["available"],
            "lines": [
                {"sku": li["M"]["sku"]["S"], "qty": int(li["M"]["qty"]["N"])}
                for li in item["lines"]["L"]
            ],
        }
        for name, doc in (("order", order), ("quote", quote), ("receipt", receipt)):
            with open(f"{self.tmp}/{name}.json", "w", encoding="utf-8") as fh:
                json.dump(doc, fh)
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(receipt),
        }


class _Trampoline:
    """Calls ``__wrapped__``; lets the probe time the handler inside ``protect``."""

    def __init__(self, fn: Any) -> None:
        self.__wrapped__ = fn

    def __call__(self, event: Any, context: Any) -> Any:
        return self.__wrapped__(event, context)


# -- a worker: one configuration, one process ----------------------------------------------------
def worker(config: str, port: int, out_fd: int, warmup: int) -> None:
    os.environ.update(FAKE_AWS)
    out = os.fdopen(out_fd, "w", buffering=1)
    if config in RAMPARTS_CONFIGS or config == "probe":
        import ramparts

        if config == "monitor":
            ramparts.install(mode="monitor")
        else:
            ramparts.install(mode="enforce", policy=c.POLICY_WARM)
    exporter = None
    if config in OTEL_CONFIGS:
        from opentelemetry import trace
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        BotocoreInstrumentor().instrument()
        URLLib3Instrumentor().instrument()
    app = App(port)
    handler: Any = app.handler
    inner: Any = None
    if config == "probe":
        inner = _Trampoline(app.handler)
        handler = inner
    if config in RAMPARTS_CONFIGS or config == "probe":
        handler = ramparts.protect(handler)
    event = make_event()
    n = 0
    for _ in range(warmup):
        n += 1
        handler(event, Context(n))
        if exporter is not None:
            exporter.clear()
    info: dict[str, Any] = {"pid": os.getpid()}
    if exporter is not None:
        n += 1
        handler(event, Context(n))
        spans = exporter.get_finished_spans()
        info["spans_per_invocation"] = len(spans)
        info["span_names"] = sorted(s.name for s in spans)
        exporter.clear()
    if config == "probe":
        info["audit_events"] = _probe(handler, inner, event)
        out.write("F " + repr(info) + "\n")
        return
    out.write("READY " + repr(info) + "\n")
    perf = time.perf_counter_ns
    cpu = time.thread_time_ns
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd != "run":
            break
        times = []
        cpus = []
        for _ in range(int(arg)):
            n += 1
            ctx = Context(n)
            c0 = cpu()
            t0 = perf()
            handler(event, ctx)
            t1 = perf()
            c1 = cpu()
            times.append(t1 - t0)
            cpus.append(c1 - c0)
            if exporter is not None:
                exporter.clear()
        out.write("R " + " ".join(map(str, times)) + " | " + " ".join(map(str, cpus)) + "\n")


def _probe(handler: Any, inner: Any, event: dict[str, Any], n: int = 300) -> dict[str, Any]:
    """Where the sensor's time goes inside the real handler (enforce configuration).

    Counts the audit events of one warm invocation, then, over ``n`` invocations, times
    every handler in the sensor's table where the audit hook calls it, and the
    ``protect`` wrapper as (outer - inner handler time). Diagnostic only: the timers
    themselves add ~1 µs per call, and this worker is not one of the timed ones.
    """
    from ramparts import _sensor

    counts: dict[str, int] = {}

    def hook(name: str, args: tuple[Any, ...]) -> None:
        counts[name] = counts.get(name, 0) + 1

    sys.addaudithook(hook)
    handler(event, Context(10**7))
    audit = dict(counts)
    sensor = _sensor._ACTIVE
    assert sensor is not None
    perf = time.perf_counter_ns
    spent: dict[str, list[int]] = {}

    def timed(name: str, fn: Any) -> Any:
        def run(args: tuple[Any, ...]) -> None:
            t0 = perf()
            try:
                fn(args)
            finally:
                spent[name][-1] += perf() - t0

        return run

    table = sensor._handlers
    for name in list(table):  # same keys, so the sensor's handler-count check stays quiet
        table[name] = timed(name, table[name])
        spent[name] = []
    inner_ns: list[int] = []
    outer_ns: list[int] = []
    orig_inner = inner.__wrapped__

    def timed_inner(ev: Any, ctx: Any) -> Any:
        t0 = perf()
        try:
            return orig_inner(ev, ctx)
        finally:
            inner_ns.append(perf() - t0)

    inner.__wrapped__ = timed_inner
    for i in range(n):
        for v in spent.values():
            v.append(0)
        t0 = perf()
        handler(event, Context(2 * 10**7 + i))
        outer_ns.append(perf() - t0)
    per_kind = {
        k: sum(v) / n / 1000 for k, v in sorted(spent.items(), key=lambda kv: -sum(kv[1])) if any(v)
    }
    overhead = [o - i for o, i in zip(outer_ns, inner_ns, strict=True)]
    return {
        "events": audit,
        "total": sum(audit.values()),
        "handled": sum(v for k, v in audit.items() if k in table),
        "invocation_median_us": sorted(outer_ns)[n // 2] / 1000,
        "hook_handlers_us_per_invocation": per_kind,
        "protect_wrapper_median_us": sorted(overhead)[n // 2] / 1000,
    }


# -- statistics ----------------------------------------------------------------------------
def _stats(rounds_ns: list[list[int]], base_ns: list[list[int]], compare: bool) -> dict[str, Any]:
    """Pooled median/p90 and, against the baseline, the paired per-round overhead."""
    pooled = [t / 1000 for r in rounds_ns for t in r]
    rmeds = [c.median(r) / 1000 for r in rounds_ns]
    out: dict[str, Any] = {
        "median_us": c.median(pooled),
        "p90_us": c.quantile(pooled, 0.9),
        "mean_us": sum(pooled) / len(pooled),
        "round_medians_us": rmeds,
    }
    if compare:
        bmeds = [c.median(r) / 1000 for r in base_ns]
        ratios = [100 * (m / b - 1) for m, b in zip(rmeds, bmeds, strict=True)]
        deltas = [m - b for m, b in zip(rmeds, bmeds, strict=True)]
        out.update(
            {
                "overhead_pct": c.median(ratios),
                "overhead_ci95_pct": list(c.bootstrap_ci(ratios)),
                "delta_us": c.median(deltas),
                "delta_ci95_us": list(c.bootstrap_ci(deltas)),
                "round_overheads_pct": ratios,
            }
        )
    return out


# -- the controller ------------------------------------------------------------------------------
class Worker:
    def __init__(
        self, config: str, port: int, warmup: int, *, logdir: str, cpu: int | None, path: str
    ) -> None:
        self.config = config
        r, w = os.pipe()
        self.log_path = os.path.join(logdir, f"{config}.log")
        # The worker's stdout is a pipe, drained by a thread into the log file: on Lambda the
        # function's stdout is a pipe to the log collector, not a file on disk.
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--worker",
                config,
                "--port",
                str(port),
                "--fd",
                str(w),
                "--warmup",
                str(warmup),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(w,),
            text=True,
            env=c.child_env(path, **FAKE_AWS),
        )
        os.close(w)
        self._drain = threading.Thread(target=self._copy_log, daemon=True)
        self._drain.start()
        if cpu is not None:
            os.sched_setaffinity(self.proc.pid, {cpu})
        self.results = os.fdopen(r, "r")
        self.info: dict[str, Any] = {}

    def ready(self) -> dict[str, Any]:
        line = self.results.readline()
        if not line.startswith(("READY ", "F ")):
            raise RuntimeError(
                f"worker {self.config} failed to start (see {self.log_path}): {line!r}"
            )
        self.info = ast.literal_eval(line.split(" ", 1)[1])
        return self.info

    def run(self, k: int) -> tuple[list[int], list[int]]:
        """Wall and thread-CPU nanoseconds of k invocations."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {k}\n")
        self.proc.stdin.flush()
        line = self.results.readline()
        if not line.startswith("R "):
            raise RuntimeError(f"worker {self.config} died (see {self.log_path})")
        wall, _, cpu = line[2:].partition(" | ")
        return [int(x) for x in wall.split()], [int(x) for x in cpu.split()]

    def _copy_log(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            self._log.write(chunk)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._drain.join(timeout=30)
        self._log.close()
        self.results.close()

    def summary(self) -> dict[str, Any]:
        """What the sensor reported for the last invocation (ramparts configurations)."""
        import json

        last = None
        kinds: dict[str, int] = {}
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith('{"ramparts"'):
                    continue
                rec = json.loads(line)
                kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
                if rec["kind"] == "invocation.summary":
                    last = rec
        return {"lines_by_kind": kinds, "last_summary": last}


def controller(args: argparse.Namespace) -> int:
    with c.snapshot() as snap:
        return _controller(args, snap)


def _controller(args: argparse.Namespace, snap: dict[str, str]) -> int:
    started = time.perf_counter()
    meta = c.machine()
    rounds = args.rounds or (10 if args.quick else 80)
    per_round = args.per_round or (20 if args.quick else 40)
    warmup = 30 if args.quick else 300
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = len(cpus) >= 2 and not args.no_pin
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdout=subprocess.PIPE,
        text=True,
        env=c.child_env(None),
    )
    workers: dict[str, Worker] = {}
    logdir = tempfile.mkdtemp(prefix="ramparts-warm-")
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        if pin:
            os.sched_setaffinity(server.pid, {cpus[-1]})
        cpu = cpus[0] if pin else None
        # The probe first, alone: its in-situ timings must not compete with warm-ups.
        probe = Worker("probe", port, warmup, logdir=logdir, cpu=cpu, path=snap["pyc"])
        probe_info = probe.ready()
        probe.proc.wait(timeout=60)
        for cfg in CONFIGS:
            workers[cfg] = Worker(cfg, port, warmup, logdir=logdir, cpu=cpu, path=snap["pyc"])
        for w in workers.values():
            w.ready()
        wall: dict[str, list[list[int]]] = {cfg: [] for cfg in CONFIGS}
        cpu: dict[str, list[list[int]]] = {cfg: [] for cfg in CONFIGS}
        rng = random.Random(3)
        for _ in range(rounds):
            order = list(CONFIGS)
            rng.shuffle(order)
            for cfg in order:
                w_ns, c_ns = workers[cfg].run(per_round)
                wall[cfg].append(w_ns)
                cpu[cfg].append(c_ns)
        for w in workers.values():
            w.stop()
        summaries = {cfg: workers[cfg].summary() for cfg in RAMPARTS_CONFIGS}
    finally:
        for w in workers.values():
            if w.proc.poll() is None:
                w.proc.kill()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(logdir, ignore_errors=True)

    results: dict[str, Any] = {
        "benchmark": "warm",
        "quick": args.quick,
        "machine": meta,
        "rounds": rounds,
        "invocations_per_round": per_round,
        "warmup": warmup,
        "pinned": pin,
        "target_pct": TARGET_PCT,
        "otel": "SDK TracerProvider + SimpleSpanProcessor + InMemorySpanExporter "
        "(cleared after each invocation, outside the timed region)",
        "probe": probe_info.get("audit_events"),
        "configs": {},
    }
    for cfg in CONFIGS:
        results["configs"][cfg] = {
            "wall": _stats(wall[cfg], wall["baseline"], cfg != "baseline"),
            "cpu": _stats(cpu[cfg], cpu["baseline"], cfg != "baseline"),
            "info": workers[cfg].info,
        }
        if cfg in summaries:
            results["configs"][cfg]["sensor"] = summaries[cfg]
    for metric, label in (
        ("wall", "wall-clock time per invocation"),
        ("cpu", "handler-thread CPU time per invocation (thread_time_ns)"),
    ):
        rows = []
        for cfg in CONFIGS:
            st = results["configs"][cfg][metric]
            over = ci = verdict = ""
            if cfg != "baseline":
                over = f"{st['overhead_pct']:+.1f}%"
                ci = f"[{st['overhead_ci95_pct'][0]:+.1f}, {st['overhead_ci95_pct'][1]:+.1f}]"
                if cfg == "enforce":
                    verdict = "ok" if st["overhead_pct"] <= TARGET_PCT else "MISSED"
            rows.append(
                [
                    cfg,
                    st["median_us"],
                    st["p90_us"],
                    min(st["round_medians_us"]),
                    max(st["round_medians_us"]),
                    over,
                    f"{st['delta_us']:+.0f}" if cfg != "baseline" else "",
                    ci,
                    verdict,
                ]
            )
        pinned = "; server and workers pinned to separate CPUs" if pin else ""
        print(
            c.table(
                [
                    "config",
                    "median µs",
                    "p90 µs",
                    "min round med",
                    "max round med",
                    "overhead",
                    "Δ µs",
                    "95% CI",
                    f"≤{TARGET_PCT:g}%",
                ],
                rows,
                f"\n{label}: {rounds} interleaved rounds x {per_round} invocations per "
                f"config (after {warmup} warm-up){pinned}",
            )
        )
    notes = []
    for cfg in RAMPARTS_CONFIGS:
        s = results["configs"][cfg]["sensor"]["last_summary"] or {}
        counts = s.get("counts", {})
        seen = ", ".join(f"{k} {sum(v.values())}" for k, v in sorted(counts.items()))
        notes.append([cfg, seen, s.get("alerts"), s.get("blocks"), s.get("sensor_errors")])
    print(
        c.table(
            [
                "config",
                "events counted in the last invocation",
                "alerts",
                "blocks",
                "sensor errors",
            ],
            notes,
            "\nwhat the sensor saw (last invocation.summary)",
        )
    )
    for cfg in OTEL_CONFIGS:
        info = results["configs"][cfg]["info"]
        print(
            f"{cfg}: {info.get('spans_per_invocation')} spans per invocation: "
            f"{', '.join(info.get('span_names', []))}"
        )
    ev = probe_info.get("audit_events") or {}
    if ev:
        rows = [[k, v] for k, v in ev["hook_handlers_us_per_invocation"].items()]
        rows.append(
            ["protect() wrapper (begin, end, summary line)", ev["protect_wrapper_median_us"]]
        )
        print(
            c.table(
                ["sensor code, enforce", "µs per invocation"],
                rows,
                f"\nwhere the sensor's time goes inside the handler (probe worker, "
                f"{ev['invocation_median_us']:.0f} µs median invocation; timers add ~1 µs/call)",
            )
        )
        top = sorted(ev["events"].items(), key=lambda kv: -kv[1])
        print(
            f"audit events per warm invocation: {ev['total']} raised, {ev['handled']} handled "
            f"by the sensor ({', '.join(f'{k} {v}' for k, v in top)})"
        )
    path = c.write_results("warm", results)
    print(f"\nwrote {os.path.relpath(path, c.REPO)} in {time.perf_counter() - started:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="few rounds (CI smoke, ~20 s)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 80, quick 10)")
    ap.add_argument("--per-round", type=int, help="invocations per round (default 40, quick 20)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server/workers to CPUs")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=100, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.worker:
        worker(args.worker, args.port, args.fd, args.warmup)
        return 0
    return controller(args)


if __name__ == "__main__":
    sys.exit(main())
