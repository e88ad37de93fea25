"""Detection speed: the rules over mixed events, and why the rule count does not matter.

The corpus mixes, by events: 70% layer events (real sensor lines recorded in
``tests/collectors/samples/layer/sensor-lines.jsonl`` in CloudWatch Logs subscription
payloads, built by ``normalize.corpus``, learn mix), 10% each Falco, osquery and Tetragon
events (the records of ``tests/collectors/samples/<source>/*.jsonl``, cycled). Records go
through ``functions.pipeline.normalise``, as in the ingest function.

Timed, interleaved in rounds (median over rounds):

* ``normalize``          normalising every record;
* ``normalize + rules``  the same, then the built-in pack over the events
                         (``Engine.run``, one engine kept warm across chunks, as in a
                         warm ingest function).

Then, over a fixed set of already normalised events, the engine alone (µs per event):

* ``pack``                the built-in pack;
* ``pack + 1000 inert``   plus 1000 rules declared for what the events never are: half
                          for a source absent from the corpus (``inspector``) over the
                          classes the corpus has, half for a class it lacks
                          (Vulnerability Finding) over its sources;
* ``pack + 1000 apply``   plus 1000 rules that apply to every event (any source, every
                          class in the corpus) and never match.

The engine indexes rules by (source, class), so the inert rules must cost nothing per
event; the applicable ones cost a call each.

    .venv/bin/python bench/rules.py [--quick] [--events N] [--rounds N] [--scaling-events N]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import time
from collections import Counter
from typing import Any

import _common

sys.path.insert(0, _common.REPO)

import normalize as layer_corpus

from collectors.base import Context
from collectors.model import OcsfEvent, VulnerabilityFinding
from collectors.rules.engine import Engine, Registry, Rule, builtin, source_of
from functions.pipeline import normalise

SAMPLES = os.path.join(_common.REPO, "tests", "collectors", "samples")
OTHER_SOURCES = ("falco", "osquery", "tetragon")
SHARES = {"layer": 0.7, "falco": 0.1, "osquery": 0.1, "tetragon": 0.1}
CTX = Context(account="123456789012", region="eu-west-1")
CHUNK = 2_000  # records timed together, per configuration, in a shuffled order
EXTRA_RULES = 1000


def _samples(source: str) -> list[tuple[Any, int]]:
    """The sample records of a source that produce events, with how many each produces."""
    out = []
    for path in sorted(glob.glob(os.path.join(SAMPLES, source, "*.jsonl"))):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                record = json.loads(line)
                n = len(normalise(record, CTX, source).events)
                if n:
                    out.append((record, n))
    return out


def corpus(n_events: int, seed: int = 11) -> tuple[list[tuple[str, Any]], Counter[str]]:
    """(source, record) pairs producing about ``n_events`` events in the shares above."""
    rng = random.Random(seed)
    records: list[tuple[str, Any]] = []
    wanted: Counter[str] = Counter()
    # Layer: whole CloudWatch payloads; ~81% of learn-mix lines are events.
    n_lines = int(n_events * SHARES["layer"] / 0.81)
    payloads, _ = layer_corpus.corpus(n_lines, 100, "learn")
    for p in payloads:
        records.append(("cloudwatch-logs", p))
    for source in OTHER_SOURCES:
        samples = _samples(source)
        target = int(n_events * SHARES[source])
        got = 0
        while got < target:
            record, n = samples[rng.randrange(len(samples))]
            records.append((source, record))
            got += n
        wanted[source] = got
    rng.shuffle(records)
    return records, wanted


def normalize_all(records: list[tuple[str, Any]]) -> list[OcsfEvent]:
    events: list[OcsfEvent] = []
    for source, record in records:
        events.extend(normalise(record, CTX, source).events)
    return events


def _never(event: OcsfEvent, ctx: Any) -> None:
    return None


def _applies_never_matches(event: OcsfEvent, ctx: Any) -> bool:
    return event.message == "\x00never"


def synthetic(kind: str, classes: set[int], sources: set[str]) -> Registry:
    rules = []
    for i in range(EXTRA_RULES):
        if kind == "inert":
            if i % 2:
                srcs, cls = frozenset({"inspector"}), frozenset(classes)
            else:
                srcs, cls = frozenset(sources), frozenset({VulnerabilityFinding.CLASS_UID})
            func = _never
        else:
            srcs, cls, func = frozenset(), frozenset(classes), _applies_never_matches
        rules.append(
            Rule(
                id=f"bench.{kind}.{i}",
                title="synthetic",
                severity=1,
                techniques=(),
                sources=srcs,
                classes=cls,
                func=func,
            )
        )
    return Registry(rules)


def timed_run(engine: Engine, events: list[OcsfEvent]) -> tuple[float, int]:
    start = time.perf_counter()
    alerts = engine.run(events)
    return time.perf_counter() - start, len(alerts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (20k events, 3 rounds)")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--scaling-events", type=int, default=None)
    args = ap.parse_args(argv)
    n_events = args.events or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 7)
    n_scaling = args.scaling_events or (5_000 if args.quick else 20_000)

    pack = builtin()
    t_build = time.perf_counter()
    records, _ = corpus(n_events)
    print(
        f"corpus: {len(records)} records, built in {time.perf_counter() - t_build:.1f} s; "
        f"built-in pack: {len(pack)} rules",
        flush=True,
    )

    # -- 1. normalisation alone vs normalisation + the pack ------------------------------
    configs = ["normalize", "normalize + rules"]
    samples: dict[str, list[float]] = {c: [] for c in configs}
    chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
    engine = Engine(pack)
    normalize_all(records[:20])  # warm up imports and caches
    events_total = alerts_total = 0
    per_source: Counter[str] = Counter()
    for r in range(rounds):
        total = dict.fromkeys(configs, 0.0)
        rng = random.Random(r)
        alerts = n = 0
        for chunk in chunks:
            order = configs[:]
            rng.shuffle(order)
            for config in order:
                start = time.perf_counter()
                events = normalize_all(chunk)
                if config == "normalize + rules":
                    alerts += len(engine.run(events))
                total[config] += time.perf_counter() - start
                if config == "normalize" and r == 0:
                    per_source.update(source_of(e) for e in events)
                n += len(events) if config == "normalize" else 0
                del events
        for c in configs:
            samples[c].append(total[c])
        events_total, alerts_total = n, alerts
        print(f"  round {r + 1}/{rounds} done", flush=True)
    failures = len(engine.failures)
    norm = _common.median(samples["normalize"])
    both = _common.median(samples["normalize + rules"])
    ratios = [
        b / a for a, b in zip(samples["normalize"], samples["normalize + rules"], strict=True)
    ]
    mix = ", ".join(f"{k} {v}" for k, v in per_source.most_common())
    rows = [
        [
            c,
            _common.median(samples[c]) * 1000,
            events_total / _common.median(samples[c]),
            _common.median(samples[c]) / events_total * 1e6,
        ]
        for c in configs
    ]
    print()
    print(
        _common.table(
            ["", "ms (median)", "events/s", "µs/event"],
            rows,
            title=f"{events_total} events ({mix}), {rounds} rounds, pack of {len(pack)} rules",
        )
    )
    rules_us = (both - norm) / events_total * 1e6
    print(
        f"\n(normalize + rules) / normalize = {_common.median(ratios):.3f}; rules alone "
        f"~{rules_us:.2f} µs/event; {alerts_total} alerts per round, {failures} rule failures"
    )

    # -- 2. does the rule count matter? --------------------------------------------------
    some: list[OcsfEvent] = []
    for chunk in chunks:
        some.extend(normalize_all(chunk))
        if len(some) >= n_scaling:
            break
    some = some[:n_scaling]
    classes = {e.CLASS_UID for e in some}
    sources = {source_of(e) for e in some}
    engines = {
        "pack": Engine(pack),
        f"pack + {EXTRA_RULES} inert": Engine(pack.merged(synthetic("inert", classes, sources))),
        f"pack + {EXTRA_RULES} apply": Engine(pack.merged(synthetic("apply", classes, sources))),
    }
    for e in engines.values():  # build the indexes, as a warm function has
        e.run(some[:200])
    scaling: dict[str, list[float]] = {k: [] for k in engines}
    parts = [some[i : i + 1000] for i in range(0, len(some), 1000)]
    for r in range(rounds):
        total = dict.fromkeys(engines, 0.0)
        rng = random.Random(100 + r)
        for part in parts:
            order = list(engines)
            rng.shuffle(order)
            for name in order:
                dt, _ = timed_run(engines[name], part)
                total[name] += dt
        for name in engines:
            scaling[name].append(total[name])
    base = _common.median(scaling["pack"])
    rows = []
    for name, engine_n in engines.items():
        med = _common.median(scaling[name])
        per_round = [x / b for x, b in zip(scaling[name], scaling["pack"], strict=True)]
        lo, hi = _common.bootstrap_ci(per_round)
        rows.append(
            [
                name,
                len(engine_n.registry),
                med / len(some) * 1e6,
                med / base,
                f"[{lo:.2f}, {hi:.2f}]",
            ]
        )
    print()
    print(
        _common.table(
            ["engine", "rules", "µs/event", "x pack", "95% CI"],
            rows,
            title=f"engine alone over {len(some)} normalised events "
            f"({len(classes)} classes, sources {', '.join(sorted(sources))}), {rounds} rounds",
        )
    )
    path = _common.write_results(
        "rules",
        {
            "quick": args.quick,
            "machine": _common.machine(),
            "events": events_total,
            "records": len(records),
            "per_source": dict(per_source),
            "rounds": rounds,
            "pack_rules": len(pack),
            "pack_ids": sorted(r.id for r in pack),
            "alerts_per_round": alerts_total,
            "rule_failures": failures,
            "seconds": samples,
            "ratio_rules_to_normalize": _common.median(ratios),
            "scaling_events": len(some),
            "scaling_seconds": scaling,
        },
    )
    print(f"results: {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
