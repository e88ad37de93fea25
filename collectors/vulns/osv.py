"""OSV advisories for the PyPI ecosystem: loading a database, indexing it, matching versions.

The database is what osv.dev publishes for PyPI, in any of these forms:

* a zip of OSV JSON files, one advisory each (``PyPI/all.zip``), read member by member;
* a directory of such files (``*.json``, searched recursively);
* a JSON-lines file, one advisory per line;
* a JSON file holding one advisory or an array of them.

Matching follows the OSV schema (https://ossf.github.io/osv-schema/), for
``affected[].package.ecosystem == "PyPI"``, by PEP 503 name:

* a version is affected when an ``ECOSYSTEM`` range says so or when it is listed in
  ``affected[].versions`` (compared as PEP 440 versions, so ``1.0`` lists ``1.0.0`` too;
  an installed version that is not PEP 440 can only match that list, by its exact text);
* a range's events are sorted by PEP 440 order (``introduced: "0"`` before everything) and
  walked: at or after ``introduced`` the version is affected, at or after ``fixed`` it is
  not, after ``last_affected`` it is not; when the range has ``limit`` events the version
  must also be below one of them (``"*"`` is no limit). ``GIT`` ranges name commits and
  ``SEMVER`` ranges another ordering: neither applies to an installed PyPI version and
  both are ignored;
* the fix offered for an affected version is the lowest ``fixed`` of its range above it
  (none after a ``last_affected``: no fixed release is known);
* ``withdrawn`` advisories are counted and never matched.

An advisory that cannot be used (not an object, no ``id``, a PyPI range whose events are
not PEP 440 versions, a range without ``introduced``...) is reported as a :class:`Problem`
with its id and reason and counted; the rest of the database still loads. A severity
entry that cannot be read is reported too, and the advisory is kept without it.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from collectors.vulns.cvss import CvssError, V3Score, score_v3
from collectors.vulns.inventory import Problem
from collectors.vulns.pep440 import InvalidVersion, Version, canonical_name, parse, try_parse

__all__ = [
    "DATABASE_SEVERITIES",
    "AffectedEntry",
    "Database",
    "DatabaseError",
    "Match",
    "OsvAdvisory",
    "Range",
    "compile_advisory",
    "load",
]

ECOSYSTEM = "PyPI"
MAX_DETAILS = 2000
MAX_RECORD_BYTES = 8 * 1024 * 1024  # one advisory; real ones are at most a few hundred KB
# database_specific.severity (GitHub's labels; MEDIUM from other databases) -> OCSF caption
DATABASE_SEVERITIES = {
    "LOW": "Low",
    "MODERATE": "Medium",
    "MEDIUM": "Medium",
    "HIGH": "High",
    "CRITICAL": "Critical",
}
_FLOOR: tuple[object, ...] = (-1,)  # introduced "0": before every version (epochs are >= 0)
_CEILING: tuple[object, ...] = (float("inf"),)  # limit "*"
EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")


class DatabaseError(Exception):
    """The database as a whole cannot be read."""


class AdvisoryError(ValueError):
    """Why one advisory cannot be used."""


@dataclass(frozen=True, slots=True)
class Range:
    """One ECOSYSTEM range, events sorted in PEP 440 order."""

    events: tuple[tuple[tuple[object, ...], EventKind, str], ...]
    limits: tuple[tuple[object, ...], ...] = ()

    def affects(self, key: tuple[object, ...]) -> tuple[bool, str | None]:
        """(affected?, the fix: the lowest ``fixed`` above the version, if affected)."""
        if self.limits and not any(key < lim for lim in self.limits):
            return False, None
        affected = False
        for ekey, kind, _ in self.events:
            if kind == "introduced":
                if key >= ekey:
                    affected = True
            elif kind == "fixed":
                if key >= ekey:
                    affected = False
            elif kind == "last_affected" and key > ekey:
                affected = False
        if not affected:
            return False, None
        for ekey, kind, raw in self.events:
            if kind == "fixed" and ekey > key:
                return True, raw
        return True, None


@dataclass(slots=True)
class AffectedEntry:
    """``affected[i]`` of an advisory, for one PyPI package."""

    name: str  # PEP 503 name
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]  # affected[].versions as written (interned: they repeat)
    _raw: frozenset[str] | None = None
    _keys: frozenset[tuple[object, ...]] = frozenset()

    def _lookup(self) -> tuple[frozenset[str], frozenset[tuple[object, ...]]]:
        if self._raw is None:  # built on first use: most entries never meet a package
            self._raw = frozenset(self.versions)
            self._keys = frozenset(
                v.key for v in (try_parse(s) for s in self.versions) if v is not None
            )
        return self._raw, self._keys

    def affects(self, version: str, parsed: Version | None) -> tuple[bool, str | None, str]:
        """(affected?, fix, how: "range" or "versions")."""
        if parsed is not None:
            for r in self.ranges:
                hit, fixed = r.affects(parsed.key)
                if hit:
                    return True, fixed, "range"
        if not self.versions:
            return False, None, ""
        raw, keys = self._lookup()
        if version in raw or (parsed is not None and parsed.key in keys):
            return True, self._fix_above(parsed), "versions"
        return False, None, ""

    def _fix_above(self, parsed: Version | None) -> str | None:
        if parsed is None:
            return None
        fixes = [
            raw
            for r in self.ranges
            for key, kind, raw in r.events
            if kind == "fixed" and key > parsed.key
        ]
        return min(fixes, key=lambda s: parse(s).key) if fixes else None


@dataclass(slots=True)
class OsvAdvisory:
    id: str
    aliases: tuple[str, ...] = ()
    summary: str | None = None
    details: str | None = None
    published: str | None = None
    modified: str | None = None
    references: tuple[str, ...] = ()
    cvss_v3: tuple[V3Score, ...] = ()
    other_vectors: tuple[tuple[str, str], ...] = ()  # (type, vector): CVSS_V4, CVSS_V2
    database_severity: str | None = None  # database_specific.severity as written
    affected: list[AffectedEntry] = field(default_factory=list)

    @property
    def cve(self) -> str | None:
        ids = [self.id, *self.aliases]
        return next((a for a in ids if a.startswith("CVE-")), None)

    @property
    def score(self) -> float | None:
        """The highest CVSS v3 base score given, None without a v3 vector."""
        return max((s.base_score for s in self.cvss_v3), default=None)

    @property
    def severity(self) -> str | None:
        """Low/Medium/High/Critical: from the CVSS v3 score, else the database's label."""
        if self.cvss_v3:
            best = max(self.cvss_v3, key=lambda s: s.base_score)
            return "Informational" if best.severity == "None" else best.severity
        if self.database_severity is not None:
            return DATABASE_SEVERITIES.get(self.database_severity.upper())
        return None


@dataclass(frozen=True, slots=True)
class Match:
    advisory: OsvAdvisory
    fixed: str | None  # the release that fixes it, for this version; None if none known
    how: str  # "range" or "versions"


@dataclass(slots=True)
class LoadReport:
    records: int = 0  # records read (files, lines, array items)
    advisories: int = 0  # advisories kept that name at least one PyPI package
    withdrawn: int = 0
    other_ecosystems: int = 0  # no PyPI package among their affected entries
    problems: list[Problem] = field(default_factory=list)


# -- compiling one advisory ---------------------------------------------------------------------
def _version_key(value: Any, kind: EventKind, where: str) -> tuple[object, ...]:
    if not isinstance(value, str) or not value:
        raise AdvisoryError(f"{where}: {kind} must be a version string")
    if kind == "introduced" and value == "0":
        return _FLOOR
    if kind == "limit" and value == "*":
        return _CEILING
    try:
        return parse(value).key
    except InvalidVersion:
        raise AdvisoryError(f"{where}: {kind} {value[:80]!r} is not a PEP 440 version") from None


def _range(raw: Any, where: str) -> Range | None:
    if not isinstance(raw, dict):
        raise AdvisoryError(f"{where}: a range must be an object")
    kind = raw.get("type")
    if kind in ("GIT", "SEMVER"):
        return None  # commits, or another ordering: not for installed PyPI versions
    if kind != "ECOSYSTEM":
        raise AdvisoryError(f"{where}: unknown range type {str(kind)[:40]!r}")
    events = raw.get("events")
    if not isinstance(events, list) or not events:
        raise AdvisoryError(f"{where}: 'events' must be a non-empty list")
    out: list[tuple[tuple[object, ...], EventKind, str]] = []
    limits: list[tuple[object, ...]] = []
    for i, event in enumerate(events):
        here = f"{where}.events[{i}]"
        if not isinstance(event, dict):
            raise AdvisoryError(f"{here}: an event must be an object")
        kinds = [k for k in _EVENT_KINDS if k in event]
        if len(kinds) != 1:
            raise AdvisoryError(
                f"{here}: an event has exactly one of introduced/fixed/last_affected/limit"
            )
        k = kinds[0]
        key = _version_key(event[k], k, here)
        if k == "limit":
            limits.append(key)
        else:
            out.append((key, k, event[k]))
    if not any(k == "introduced" for _, k, _ in out):
        raise AdvisoryError(f"{where}: a range needs an 'introduced' event")
    out.sort(key=lambda e: e[0])
    return Range(events=tuple(out), limits=tuple(limits))


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise AdvisoryError(f"{where}: must be a list of strings")
    return tuple(raw)


def compile_advisory(raw: Any, problems: list[Problem]) -> OsvAdvisory | None:
    """An advisory's PyPI part, ready to match; None when it names no PyPI package.

    Raises :class:`AdvisoryError` when it cannot be used; appends non-fatal problems
    (an unreadable severity) to ``problems``.
    """
    if not isinstance(raw, dict):
        raise AdvisoryError("an advisory must be a JSON object")
    vid = raw.get("id")
    if not isinstance(vid, str) or not vid.strip():
        raise AdvisoryError("no 'id'")
    affected_raw = raw.get("affected", [])
    if not isinstance(affected_raw, list):
        raise AdvisoryError("'affected' must be a list")
    entries: list[AffectedEntry] = []
    for i, a in enumerate(affected_raw):
        where = f"affected[{i}]"
        if not isinstance(a, dict):
            raise AdvisoryError(f"{where}: must be an object")
        pkg = a.get("package")
        if not isinstance(pkg, dict):
            raise AdvisoryError(f"{where}: 'package' must be an object")
        if pkg.get("ecosystem") != ECOSYSTEM:
            continue
        name = pkg.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AdvisoryError(f"{where}.package: no 'name'")
        ranges_raw = a.get("ranges", [])
        if not isinstance(ranges_raw, list):
            raise AdvisoryError(f"{where}: 'ranges' must be a list")
        ranges = tuple(
            r
            for r in (_range(x, f"{where}.ranges[{j}]") for j, x in enumerate(ranges_raw))
            if r is not None
        )
        versions = tuple(map(sys.intern, _strings(a.get("versions"), f"{where}.versions")))
        entries.append(AffectedEntry(name=canonical_name(name), ranges=ranges, versions=versions))
    if not entries:
        return None

    cvss: list[V3Score] = []
    other: list[tuple[str, str]] = []
    severity_raw = raw.get("severity", [])
    for j, s in enumerate(severity_raw if isinstance(severity_raw, list) else [severity_raw]):
        where = f"{vid}: severity[{j}]"
        if not isinstance(s, dict) or not isinstance(s.get("score"), str):
            problems.append(Problem(where, "not {type, score}: ignored"))
            continue
        kind, vector = s.get("type"), s["score"]
        if kind == "CVSS_V3":
            try:
                cvss.append(score_v3(vector))
            except CvssError as exc:
                problems.append(Problem(where, f"{exc}: ignored"))
        elif kind in ("CVSS_V4", "CVSS_V2") or (isinstance(kind, str) and kind):
            other.append((str(kind), vector))
    db = raw.get("database_specific")
    db_sev = db.get("severity") if isinstance(db, dict) else None
    if db_sev is not None and (
        not isinstance(db_sev, str) or db_sev.upper() not in DATABASE_SEVERITIES
    ):
        problems.append(Problem(f"{vid}: database_specific.severity", f"{db_sev!r}: ignored"))
        db_sev = None
    refs: list[str] = []
    for r in raw.get("references") or []:
        url = r.get("url") if isinstance(r, dict) else None
        if isinstance(url, str) and url.startswith(("https://", "http://")) and url not in refs:
            refs.append(url)
    details = raw.get("details")
    summary = raw.get("summary")
    return OsvAdvisory(
        id=vid.strip(),
        aliases=_strings(raw.get("aliases"), "aliases"),
        summary=summary.strip() if isinstance(summary, str) and summary.strip() else None,
        details=details[:MAX_DETAILS] if isinstance(details, str) and details else None,
        published=raw.get("published") if isinstance(raw.get("published"), str) else None,
        modified=raw.get("modified") if isinstance(raw.get("modified"), str) else None,
        references=tuple(refs),
        cvss_v3=tuple(cvss),
        other_vectors=tuple(other),
        database_severity=db_sev,
        affected=entries,
    )


# -- the database -------------------------------------------------------------------------------
@dataclass(slots=True)
class Database:
    """Advisories indexed by PEP 503 package name."""

    index: dict[str, list[tuple[OsvAdvisory, AffectedEntry]]] = field(default_factory=dict)
    report: LoadReport = field(default_factory=LoadReport)

    def add(self, raw: Any, where: str) -> None:
        self.report.records += 1
        vid = raw.get("id") if isinstance(raw, dict) else None
        label = f"{where} ({vid})" if isinstance(vid, str) and vid not in where else where
        if isinstance(raw, dict) and raw.get("withdrawn"):
            self.report.withdrawn += 1
            return
        try:
            adv = compile_advisory(raw, self.report.problems)
        except AdvisoryError as exc:
            self.report.problems.append(Problem(label, f"advisory skipped: {exc}"))
            return
        if adv is None:
            self.report.other_ecosystems += 1
            return
        self.report.advisories += 1
        for entry in adv.affected:
            self.index.setdefault(entry.name, []).append((adv, entry))

    def match(self, name: str, version: str) -> list[Match]:
        """The advisories affecting ``name`` at ``version``, sorted by id."""
        parsed = try_parse(version)
        found: dict[str, Match] = {}
        for adv, entry in self.index.get(canonical_name(name), ()):
            hit, fixed, how = entry.affects(version, parsed)
            if hit and adv.id not in found:
                found[adv.id] = Match(adv, fixed, how)
        return [found[k] for k in sorted(found)]

    def __len__(self) -> int:
        return self.report.advisories


def _parse_json(data: bytes, where: str, report: LoadReport) -> Any | None:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        report.records += 1
        report.problems.append(Problem(where, f"not JSON: {exc}"))
        return None


def _records(path: str, report: LoadReport) -> Iterator[tuple[str, Any]]:
    if os.path.isdir(path):
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            found.extend(os.path.join(dirpath, f) for f in filenames if f.endswith(".json"))
        if not found:
            raise DatabaseError(f"{path}: no OSV JSON files (*.json) in this directory")
        for f in sorted(found):
            try:
                with open(f, "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                report.records += 1
                report.problems.append(Problem(f, f"unreadable: {exc.strerror or exc}"))
                continue
            doc = _parse_json(data, f, report)
            if doc is not None:
                yield os.path.relpath(f, path), doc
        return
    if zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DatabaseError(f"{path}: not a readable zip: {exc}") from None
        with zf:
            members = [i for i in zf.infolist() if not i.is_dir() and i.filename.endswith(".json")]
            if not members:
                raise DatabaseError(f"{path}: no OSV JSON files (*.json) in this zip")
            for info in members:
                if info.file_size > MAX_RECORD_BYTES:
                    report.records += 1
                    report.problems.append(
                        Problem(info.filename, f"{info.file_size} bytes: too large for an advisory")
                    )
                    continue
                try:
                    data = zf.read(info)
                except (OSError, RuntimeError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
                    report.records += 1
                    report.problems.append(Problem(info.filename, f"unreadable member: {exc}"))
                    continue
                doc = _parse_json(data, info.filename, report)
                if doc is not None:
                    yield info.filename, doc
        return
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DatabaseError(f"{path}: {exc.strerror or exc}") from None
    stripped = data.strip()
    if stripped[:1] == b"[" or (stripped[:1] == b"{" and b"\n" not in stripped):
        doc = _parse_json(stripped, path, report)
        items = doc if isinstance(doc, list) else [doc] if doc is not None else []
        for i, item in enumerate(items):
            yield (f"{path}[{i}]" if isinstance(doc, list) else path), item
        return
    try:  # one advisory pretty-printed over several lines
        doc = json.loads(stripped)
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict):
        yield path, doc
        return
    for n, line in enumerate(data.splitlines(), 1):  # JSON lines
        if line.strip():
            item = _parse_json(line, f"{path}:{n}", report)
            if item is not None:
                yield f"{path}:{n}", item


def load(path: str) -> Database:
    """Load an OSV database (zip, directory, JSON lines or JSON; see the module docstring)."""
    if not os.path.exists(path):
        raise DatabaseError(f"{path}: no such file or directory")
    db = Database()
    for where, doc in _records(path, db.report):
        db.add(doc, where)
    return db


def load_records(records: Iterable[Any]) -> Database:
    """A database from advisories already in memory (tests, other loaders)."""
    db = Database()
    for i, raw in enumerate(records):
        db.add(raw, f"[{i}]")
    return db
