"""``ramparts replay FILE...``: normalise recorded telemetry into common events, locally.

A file is either JSON lines (one record per line) or one JSON document (an object, or an
array of records). Each record goes to the adapter of its source (``--source``, or detected
when ``auto``) and the events come out as OCSF JSON lines on stdout. A record that cannot be
used is reported on stderr with its file, line and reason, and counted; the rest of the file
is still processed. Exit status: 0 when nothing was rejected, 1 when something was, 2 for
unreadable files or bad arguments.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ramparts_cli.errors import CliError

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


def _cmd_replay(args: argparse.Namespace) -> int:
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
    p.set_defaults(func=_cmd_replay)
