"""``ramparts replay FILE...``: normalise recorded telemetry into common events, locally.

A file is either JSON lines (one record per line) or one JSON document (an object, or an
array of records). Each record goes to the adapter of its source (``--source``, or detected
when ``auto``) and the events come out as OCSF JSON lines on stdout. A record that cannot be
used is reported on stderr with its file, line and reason, and counted; the rest of the file
is still processed. Exit status: 0 when nothing was rejected, 1 when something was, 2 for
unreadable files or bad arguments.

With ``--findings`` the records go through what the ingest function runs
(``functions.pipeline``: normalise, the detection rules, findings merged in memory), without
AWS, and stdout carries the findings instead of the events: OCSF Detection Findings, one
per line, each once in its final merged state (count, first and last seen, samples), in
the order they first occurred. Findings whose every alert a tuning exception suppressed
are counted, not printed. The same event given twice (the same file twice) is counted
once. ``--tuning``, ``--rules`` and ``--baseline`` give the tuning file, a folder of your
own rules (added to the built-in pack) and a baseline (JSON ``{workload: {kind:
[values]}}``). Exit status 1 also when a rule raised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ramparts_cli.errors import CliError

if TYPE_CHECKING:
    from collectors.findings import Change
    from collectors.rules.engine import Engine

SOURCE_CHOICES = (
    "auto",
    "layer",
    "cloudwatch-logs",
    "falco",
    "osquery",
    "tetragon",
    "guardduty",
    "inspector",
)


def _records(path: str, data: str) -> Iterator[tuple[str, Any]]:
    """(where, record) pairs: a whole-file JSON document, or one per line."""
    stripped = data.strip()
    if stripped[:1] in ("{", "[") and "\n" in stripped:
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                yield f"{path}[{i}]", item
            return
        if isinstance(doc, dict):
            yield path, doc
            return
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record: Any = json.loads(line)
        except ValueError:
            record = line  # a text line: the layer adapter reads prefixed log lines
        except RecursionError:
            record = line  # nested past Python's limit: the adapter rejects it with a reason
        yield f"{path}:{n}", record


def _read(path: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise CliError(f"{path}: not a valid gzip file: {exc}") from None
    return raw.decode("utf-8", "replace")


def replay(
    paths: list[str],
    source: str,
    *,
    account: str | None = None,
    region: str | None = None,
    function: str | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> tuple[int, int, int, Counter[str]]:
    """Normalise every record of ``paths``; returns (events, rejected, skipped, per source)."""
    from collectors import adapter, detect
    from collectors.base import Context

    out = out or sys.stdout
    err = err or sys.stderr
    events = rejected = skipped = 0
    per_source: Counter[str] = Counter()
    for path in paths:
        data = _read(path)
        for where, record in _records(path, data):
            src = source if source != "auto" else detect(record)
            if src is None:
                rejected += 1
                err.write(f"{where}: no adapter recognises this record (try --source)\n")
                continue
            ctx = Context(account=account, region=region, function=function, origin=where)
            try:
                batch = adapter(src).normalize(record, ctx)
            except Exception as exc:  # an adapter bug must not lose the rest of the file
                rejected += 1
                err.write(f"{where}: {src}: internal error: {type(exc).__name__}: {exc}\n")
                continue
            for event in batch.events:
                out.write(json.dumps(event.to_ocsf(), separators=(",", ":")) + "\n")
            events += len(batch.events)
            skipped += batch.skipped
            per_source[src] += len(batch.events)
            for r in batch.rejects:
                rejected += 1
                part = f" {r.where}" if r.where else ""
                err.write(f"{where}{part}: {r.source}: {r.reason}\n")
    return events, rejected, skipped, per_source


# Records normalised before the pipeline runs over them: one "invocation" of the ingest
# function. Events are sorted by time within a chunk, as within an ingest batch.
CHUNK_RECORDS = 10_000


@dataclass(slots=True)
class FindingsSummary:
    events: int = 0
    rejected: int = 0
    skipped: int = 0
    alerts: int = 0
    suppressed_alerts: int = 0
    repeats: int = 0  # alerts on events already counted (the same event given twice)
    findings: int = 0
    suppressed_findings: int = 0
    rule_failures: int = 0
    per_source: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        by = ", ".join(f"{n} {s}" for s, n in sorted(self.per_source.items()) if n) or "none"
        repeats = f", {self.repeats} already counted" if self.repeats else ""
        return (
            f"ramparts replay: {self.events} events ({by}); {self.alerts} alerts "
            f"({self.suppressed_alerts} suppressed{repeats}); {self.findings} findings; "
            f"{self.suppressed_findings} suppressed findings (not shown); "
            f"{self.rejected} rejected; {self.skipped} skipped; "
            f"{self.rule_failures} rule failures"
        )


def _load_baseline(path: str) -> dict[str, dict[str, list[str]]]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{path}: not JSON: {exc}") from None
    shape = "a baseline is JSON {workload key: {kind: [values]}}"
    if not isinstance(doc, dict):
        raise CliError(f"{path}: {shape}")
    out: dict[str, dict[str, list[str]]] = {}
    for wl, kinds in doc.items():
        if not isinstance(kinds, dict):
            raise CliError(f"{path}: {wl}: {shape}")
        out[wl] = {}
        for kind, values in kinds.items():
            if not isinstance(values, list) or not all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in values
            ):
                raise CliError(f"{path}: {wl}.{kind}: a list of strings")
            out[wl][kind] = [str(v) for v in values]
    return out


def build_engine(
    rules_dir: str | None = None,
    tuning_path: str | None = None,
    baseline_path: str | None = None,
    err: IO[str] | None = None,
) -> Engine:
    """The engine ``--rules/--tuning/--baseline`` describe (the pack and the user's rules)."""
    from collectors.rules.engine import Engine, MemoryBaseline, RuleError, builtin, load_folder
    from collectors.rules.tuning import Tuning

    err = err or sys.stderr
    try:
        registry = builtin()
        if rules_dir is not None:
            registry = registry.merged(load_folder(rules_dir))
        tuning = Tuning.load(tuning_path, registry) if tuning_path is not None else None
    except RuleError as exc:
        raise CliError(str(exc)) from None
    if tuning is not None:
        for e in tuning.expired():
            when = dt.datetime.fromtimestamp(e.expires_ms / 1000, dt.UTC).isoformat()
            err.write(f"{tuning_path}: exception {e.id} expired {when}: it suppresses nothing\n")
    baseline = MemoryBaseline(_load_baseline(baseline_path)) if baseline_path is not None else None
    return Engine(registry, baseline=baseline, tuning=tuning)


def replay_findings(
    paths: list[str],
    source: str,
    engine: Engine,
    *,
    account: str | None = None,
    region: str | None = None,
    function: str | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> FindingsSummary:
    """Run ``paths`` through the ingest pipeline; print the findings; return the counts."""
    from collectors.base import Batch, Context
    from collectors.findings import MemoryStore, to_ocsf
    from collectors.rules.engine import source_of
    from functions.pipeline import Pipeline, normalise

    out = out or sys.stdout
    err = err or sys.stderr
    store = MemoryStore()
    pipeline = Pipeline(engine, store, service="ramparts-cli")
    summary = FindingsSummary()
    updated: set[str] = set()

    def run(batch: Batch) -> None:
        result = pipeline.process(batch)
        summary.alerts += len(result.alerts)
        summary.suppressed_alerts += result.suppressed
        for p in result.published:
            if p.change == "updated":
                updated.add(p.record.id)
        for f in result.rule_failures:
            summary.rule_failures += 1
            err.write(f"rule {f.rule_id} failed on event {f.event_uid}: {f.error}\n")

    for path in paths:
        data = _read(path)
        batch = Batch()
        held = 0
        for where, record in _records(path, data):
            src = None if source == "auto" else source
            ctx = Context(account=account, region=region, function=function, origin=where)
            got = normalise(record, ctx, src)
            for r in got.rejects:
                summary.rejected += 1
                part = f" {r.where}" if r.where else ""
                err.write(f"{where}{part}: {r.source}: {r.reason}\n")
            for event in got.events:
                summary.per_source[source_of(event)] += 1
            summary.events += len(got.events)
            summary.skipped += got.skipped
            batch.events.extend(got.events)
            held += 1
            if held >= CHUNK_RECORDS:
                run(batch)
                batch, held = Batch(), 0
        if batch.events:
            run(batch)

    counted = 0
    for record in store.records.values():
        counted += record.count + record.suppressed
        if record.count == 0:
            summary.suppressed_findings += 1
            continue
        summary.findings += 1
        change: Change = "updated" if record.id in updated else "created"
        out.write(json.dumps(to_ocsf(record, change), separators=(",", ":")) + "\n")
    summary.repeats = summary.alerts - counted
    return summary


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.findings:
        engine = build_engine(args.rules, args.tuning, args.baseline)
        summary = replay_findings(
            args.files,
            args.source,
            engine,
            account=args.account,
            region=args.region,
            function=args.function,
        )
        print(summary.line(), file=sys.stderr)
        return 1 if summary.rejected or summary.rule_failures else 0
    for flag in ("rules", "tuning", "baseline"):
        if getattr(args, flag) is not None:
            raise CliError(f"--{flag} needs --findings", hint="ramparts replay --findings ...")
    events, rejected, skipped, per_source = replay(
        args.files, args.source, account=args.account, region=args.region, function=args.function
    )
    by = ", ".join(f"{n} {s}" for s, n in sorted(per_source.items()) if n) or "none"
    print(
        f"ramparts replay: {events} events ({by}); {rejected} rejected; {skipped} skipped",
        file=sys.stderr,
    )
    return 1 if rejected else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "replay",
        help="normalise recorded telemetry (layer logs, Falco, osquery, ...) into common events",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="JSON lines or a JSON document; - for stdin"
    )
    p.add_argument(
        "--source",
        choices=SOURCE_CHOICES,
        default="auto",
        help="the records' source (default: detected per record)",
    )
    p.add_argument("--account", help="AWS account id for sources that do not carry one")
    p.add_argument("--region", help="AWS region for sources that do not carry one")
    p.add_argument("--function", help="the Lambda function raw layer lines (no envelope) came from")
    p.add_argument(
        "--findings",
        action="store_true",
        help="run the detection rules and print findings (OCSF Detection Findings) instead",
    )
    p.add_argument("--tuning", metavar="FILE", help="with --findings: a tuning file")
    p.add_argument(
        "--rules", metavar="DIR", help="with --findings: your own rules (DIR/*.py), with the pack"
    )
    p.add_argument(
        "--baseline",
        metavar="FILE",
        help="with --findings: JSON {workload key: {kind: [values]}} for baseline rules",
    )
    p.set_defaults(func=_cmd_replay)
