"""Where the report's items come from: the data-source interface and the offline export.

A :class:`ReportSource` yields the stored items as plain JSON (:class:`RawItem`); the
report reads and checks them itself, so a live source (``functions/report_source.py``:
DynamoDB and S3) and an exported directory (:class:`DirectorySource`) give the same report.

The export (``ramparts report --export DIR``) is a directory of JSON lines:

``manifest.json``    ``{"format": "ramparts-report-export", "version": 1, "period": {"from",
                     "to"}, "exported_at", "source": {...}, "files": {name: {"lines",
                     "sha256"}}}``
``findings.jsonl``   findings-table items (``finding#<id>`` and ``vuln#<uid>``, ``sk =
                     "finding"``), one DynamoDB item per line as plain JSON
``actions.jsonl``    actions-table items of the findings with activity in the period
``coverage.jsonl``   baseline-table coverage summaries (``pk = "coverage"``)
``snapshots.jsonl``  ``{"s3_key": K, "snapshot": {...}}`` for each full snapshot the report
                     reads (the latest of the period), or ``{"s3_key": K, "error": "..."}``
                     when it could not be read

Each file's sha256 is in the manifest and is checked when the directory is read: an export
that was changed afterwards is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from collectors.report.period import Period, PeriodError, parse_time

EXPORT_FORMAT = "ramparts-report-export"
EXPORT_VERSION = 1
TABLES = ("findings", "actions", "coverage")
FILES = (*(f"{t}.jsonl" for t in TABLES), "snapshots.jsonl")


class SourceError(RuntimeError):
    """The source cannot be read at all (missing table, refused export, no access)."""


@dataclass(frozen=True, slots=True)
class RawItem:
    """A stored item as read, or why it could not be read; ``ref`` says where it is."""

    ref: str
    item: Any = None
    error: str | None = None


class ReportSource(Protocol):
    """What the report reads. Items are yielded whole and unfiltered by content."""

    def describe(self) -> dict[str, Any]:
        """Where the data comes from (tables, bucket, region or directory)."""
        ...

    def items(self, table: str) -> Iterator[RawItem]:
        """The items of ``findings``, ``actions`` or ``coverage``."""
        ...

    def snapshot(self, s3_key: str) -> Any:
        """A full coverage snapshot; raises :class:`SourceError` when it cannot be read."""
        ...


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DirectorySource:
    """An export directory (see the module docstring), checked against its manifest."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        manifest_path = self.dir / "manifest.json"
        if not manifest_path.is_file():
            raise SourceError(f"{self.dir}: no manifest.json (not a ramparts report export)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SourceError(f"{manifest_path}: cannot be read: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
            raise SourceError(f"{manifest_path}: not a {EXPORT_FORMAT} manifest")
        if manifest.get("version") != EXPORT_VERSION:
            raise SourceError(
                f"{manifest_path}: export version {manifest.get('version')!r} "
                f"(this ramparts reads version {EXPORT_VERSION})"
            )
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise SourceError(f"{manifest_path}: no 'files'")
        for name in FILES:
            path = self.dir / name
            entry = files.get(name)
            if not isinstance(entry, dict) or not path.is_file():
                raise SourceError(f"{self.dir}: {name} is missing")
            if _sha256(path) != entry.get("sha256"):
                raise SourceError(
                    f"{path}: sha256 does not match manifest.json (the export was changed)"
                )
        period = manifest.get("period") or {}
        try:
            self.period = Period(parse_time(str(period["from"])), parse_time(str(period["to"])))
        except (KeyError, PeriodError) as exc:
            raise SourceError(f"{manifest_path}: bad period: {exc}") from None
        self.manifest = manifest
        self._snapshots: dict[str, RawItem] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "export",
            "directory": str(self.dir),
            "exported_at": str(self.manifest.get("exported_at") or ""),
            "exported_from": self.manifest.get("source") or {},
            "export_period": self.period.to_dict(),
        }

    def _lines(self, name: str) -> Iterator[RawItem]:
        path = self.dir / name
        with path.open(encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                ref = f"{name}:{n}"
                try:
                    yield RawItem(ref, json.loads(line))
                except ValueError as exc:
                    yield RawItem(ref, error=f"not JSON: {exc}")

    def items(self, table: str) -> Iterator[RawItem]:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        yield from self._lines(f"{table}.jsonl")

    def snapshot(self, s3_key: str) -> Any:
        if self._snapshots is None:
            self._snapshots = {}
            for raw in self._lines("snapshots.jsonl"):
                if isinstance(raw.item, dict) and isinstance(raw.item.get("s3_key"), str):
                    self._snapshots[raw.item["s3_key"]] = raw
        found = self._snapshots.get(s3_key)
        if found is None:
            raise SourceError(f"snapshot {s3_key} is not in the export")
        doc = found.item
        assert isinstance(doc, dict)
        if doc.get("error"):
            raise SourceError(f"snapshot {s3_key}: {doc['error']} (when exported)")
        if "snapshot" not in doc:
            raise SourceError(f"snapshot {s3_key}: {found.ref} has neither snapshot nor error")
        return doc["snapshot"]


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_export(
    directory: str | os.PathLike[str],
    *,
    period: Period,
    source: dict[str, Any],
    tables: Mapping[str, Iterable[Any]],
    snapshots: Iterable[tuple[str, Any, str | None]],
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write an export: the chosen items of each table, the snapshots and the manifest.

    ``tables`` maps ``findings``/``actions``/``coverage`` to their items (plain JSON);
    ``snapshots`` yields ``(s3_key, document, error)``. Returns the manifest. The directory
    must be empty or new: an export is never merged into another one.
    """
    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SourceError(f"{out}: exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}

    def write(name: str, lines: Iterable[str]) -> None:
        path = out / name
        count = 0
        with path.open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
                count += 1
        files[name] = {"lines": count, "sha256": _sha256(path)}

    for table in TABLES:
        write(f"{table}.jsonl", (_dump(item) for item in tables.get(table, ())))
    write(
        "snapshots.jsonl",
        (
            _dump({"s3_key": key, "error": error} if error else {"s3_key": key, "snapshot": doc})
            for key, doc, error in snapshots
        ),
    )
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "period": period.to_dict(),
        "exported_at": stamp,
        "source": source,
        "files": files,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest
