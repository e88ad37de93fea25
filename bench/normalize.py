"""Collector speed: normalising layer events from CloudWatch Logs subscription payloads.

The corpus is built from the real sensor lines recorded in
``tests/collectors/samples/layer/sensor-lines.jsonl`` (every kind, learn and enforce modes,
alerts, blocks and heartbeats, 0.2-5 KB each), cycled with fresh sandbox ids, sequence
numbers, times and request ids, and packed 100 log events per payload as CloudWatch Logs
delivers them to a subscription Lambda: ``{"awslogs": {"data": base64(gzip(json))}}``.

Timed, each over the whole corpus, interleaved in rounds (median over rounds):

* ``decode``      the floor: base64 + gunzip + ``json.loads`` of each payload and of each
                  log event's message;
* ``normalize``   ``collectors.cloudwatch.normalize`` (decode, check, build the OCSF events
                  and heartbeat signals), the events built by ``layer._new`` (the default);
* ``validated``   the same with every object built by pydantic's validator instead
                  (``Model.model_validate``), to show what the fast construction saves;
* ``construct``   the same with ``Model.model_construct`` (pydantic's own unvalidated path);
* ``to_ocsf``     serialising the events afterwards (``event.to_ocsf()``), for scale only.

Target (issue 3): ``normalize`` at most 3x ``decode``.

    .venv/bin/python bench/normalize.py [--quick] [--mix learn|monitor] [--events N]
                                        [--rounds N] [--per-payload N]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import _common

sys.path.insert(0, _common.REPO)

from collectors import cloudwatch, layer
from collectors.base import Context

SAMPLE = os.path.join(_common.REPO, "tests", "collectors", "samples", "layer", "sensor-lines.jsonl")
TARGET = 3.0
CHUNK = 10  # payloads timed together, per configuration, in a shuffled order
CTX = Context(region="eu-west-1")


def corpus(
    n_events: int, per_payload: int, mix: str = "learn", seed: int = 7
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Subscription events carrying ``n_events`` real sensor lines, ``per_payload`` each.

    ``learn``: the recorded lines in their recorded proportions (learn mode prints every
    distinct event, allowed ones included: 81% activity lines, the worst case).
    ``monitor``: what a monitor/enforce sensor prints in production: an
    ``invocation.summary`` per invocation, a ``sensor.start`` per cold start, and only the
    alerts and blocks (here one alert or block line per two invocations).
    """
    with open(SAMPLE, encoding="utf-8") as fh:
        lines = [json.loads(x) for x in fh if x.strip()]
    if mix == "monitor":
        summaries = [x for x in lines if x["kind"] == "invocation.summary"]
        starts = [x for x in lines if x["kind"] == "sensor.start"]
        alerts = [x for x in lines if x.get("verdict") in ("alert", "block")]
        pick = random.Random(seed + 1)
        lines = []
        for n in range(600):
            if n % 20 == 0:
                lines.append(pick.choice(starts))
            lines.append(pick.choice(summaries))
            if n % 2:
                lines.append(pick.choice(alerts))
    rng = random.Random(seed)
    kinds: Counter[str] = Counter()
    records = []
    t = 1796417909000
    produced = 0
    while produced < n_events:
        sandbox = f"{rng.getrandbits(64):016x}"
        request = f"{rng.getrandbits(128):032x}"
        events = []
        for i in range(min(per_payload, n_events - produced)):
            line = dict(lines[(produced + i) % len(lines)])
            t += rng.randint(0, 40)
            line.update(sandbox=sandbox, seq=i + 1, time=t)
            if line.get("request_id") is not None:
                line["request_id"] = request
            kinds[line["kind"]] += 1
            message = json.dumps(line, separators=(",", ":")) + "\n"
            events.append({"id": f"{t:d}{i:040d}", "timestamp": t, "message": message})
        produced += len(events)
        payload = {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": f"/aws/lambda/fn-{len(records) % 20}",
            "logStream": f"2026/12/04/[$LATEST]{rng.getrandbits(128):032x}",
            "subscriptionFilters": ["ramparts-collector"],
            "logEvents": events,
        }
        data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
        records.append({"awslogs": {"data": data}})
    return records, kinds


def decode_only(records: list[dict[str, Any]]) -> int:
    n = 0
    loads = json.loads
    for record in records:
        payload = loads(gzip.decompress(base64.b64decode(record["awslogs"]["data"])))
        for event in payload["logEvents"]:
            loads(event["message"])
            n += 1
    return n


def normalize_all(records: list[dict[str, Any]]) -> tuple[int, int, int]:
    events = signals = rejects = 0
    for record in records:
        batch = cloudwatch.normalize(record, CTX)
        events += len(batch.events)
        signals += len(batch.signals)
        rejects += len(batch.rejects)
    return events, signals, rejects


@contextmanager
def builder(kind: str) -> Iterator[None]:
    """Swap how layer.py builds objects: ``fast`` (default), ``validated``, ``construct``."""
    original = layer._new
    if kind == "validated":
        layer._new = lambda cls, values: cls.model_validate(values)  # type: ignore[assignment]
    elif kind == "construct":
        layer._new = lambda cls, values: cls.model_construct(**values)  # type: ignore[assignment]
    try:
        yield
    finally:
        layer._new = original  # type: ignore[assignment]


def serialise(records: list[dict[str, Any]]) -> float:
    """Seconds ``to_ocsf`` takes for all the events of ``records`` (timed on a tenth)."""
    some = records[: max(1, len(records) // 10)]
    built = [e for record in some for e in cloudwatch.normalize(record, CTX).events]
    start = time.perf_counter()
    for event in built:
        event.to_ocsf()
    return (time.perf_counter() - start) * len(records) / len(some)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (20k events, 3 rounds)")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--per-payload", type=int, default=100)
    ap.add_argument(
        "--mix", choices=("learn", "monitor"), default="learn", help="the kinds of lines (above)"
    )
    args = ap.parse_args(argv)
    n_events = args.events or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 7)

    t_build = time.perf_counter()
    records, kinds = corpus(n_events, args.per_payload, args.mix)
    sizes = [len(r["awslogs"]["data"]) for r in records]
    print(
        f"corpus ({args.mix} mix): {n_events} sensor lines in {len(records)} payloads "
        f"({args.per_payload} per payload, median {_common.median(sizes) / 1024:.0f} KiB of "
        f"base64), built in {time.perf_counter() - t_build:.1f} s",
        flush=True,
    )

    configs = ["decode", "normalize", "validated", "construct"]
    samples: dict[str, list[float]] = {c: [] for c in [*configs, "to_ocsf"]}
    counts: tuple[int, int, int] = (0, 0, 0)
    normalize_all(records[:5])  # warm up imports and caches
    chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
    for r in range(rounds):
        # Every chunk of payloads goes through each configuration in a shuffled order, so
        # that load from other processes hits all of them alike; a round sums the chunks.
        total = dict.fromkeys(configs, 0.0)
        out = [0, 0, 0]
        rng = random.Random(r)
        for chunk in chunks:
            order = configs[:]
            rng.shuffle(order)
            for config in order:
                if config == "decode":
                    dt, _ = timed(lambda: decode_only(chunk))  # noqa: B023
                elif config == "normalize":
                    dt, got = timed(lambda: normalize_all(chunk))  # noqa: B023
                    out = [a + b for a, b in zip(out, got, strict=True)]
                else:
                    with builder(config):
                        dt, _ = timed(lambda: normalize_all(chunk))  # noqa: B023
                total[config] += dt
        for config in configs:
            samples[config].append(total[config])
        counts = (out[0], out[1], out[2])
        samples["to_ocsf"].append(serialise(records))
        print(f"  round {r + 1}/{rounds} done", flush=True)

    events, signals, rejects = counts
    decode = _common.median(samples["decode"])
    rows = []
    for config in [*configs, "to_ocsf"]:
        med = _common.median(samples[config])
        lo, hi = _common.bootstrap_ci(samples[config])
        rows.append(
            [
                config,
                med * 1000,
                f"[{lo * 1000:.0f}, {hi * 1000:.0f}]",
                n_events / med,
                med / n_events * 1e6,
                med / decode,
            ]
        )
    print()
    print(
        _common.table(
            ["", "ms (median)", "95% CI", "lines/s", "µs/line", "x decode"],
            rows,
            title=f"{n_events} lines ({args.mix} mix), {rounds} rounds",
        )
    )
    ratios = [n / d for n, d in zip(samples["normalize"], samples["decode"], strict=True)]
    ratio = _common.median(ratios)
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(
        f"\nnormalize / decode = {ratio:.2f} (target <= {TARGET:.0f}: {verdict}); "
        f"{events} events + {signals} signals, {rejects} rejects; "
        f"kinds: {', '.join(f'{k} {v}' for k, v in kinds.most_common())}"
    )
    path = _common.write_results(
        "normalize" if args.mix == "learn" else f"normalize-{args.mix}",
        {
            "quick": args.quick,
            "machine": _common.machine(),
            "events": n_events,
            "per_payload": args.per_payload,
            "mix": args.mix,
            "payloads": len(records),
            "rounds": rounds,
            "kinds": dict(kinds),
            "output": {"events": events, "signals": signals, "rejects": rejects},
            "seconds": samples,
            "ratio_normalize_to_decode": ratio,
            "ratio_per_round": ratios,
            "target": TARGET,
        },
    )
    print(f"results: {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
