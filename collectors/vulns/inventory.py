"""The Python distributions in a function's code: a directory, a deployment zip, a layer zip.

A distribution is found by its metadata directory, wherever it sits in the tree (a function
zip has its packages at the root, a layer under ``python/`` or
``python/lib/python3.x/site-packages/``, vendored copies deeper):

* ``NAME-VERSION.dist-info/METADATA`` (wheels; what pip installs);
* ``NAME-VERSION.egg-info/PKG-INFO`` (setuptools' directory form) and ``NAME.egg-info`` as a
  file (distutils and old setuptools write PKG-INFO content to a file of that name);
* ``NAME.egg/EGG-INFO/PKG-INFO`` (an unzipped egg).

Only the metadata's header block is read (up to the first blank line, at most
:data:`MAX_HEADER_BYTES`): the long description that follows is never loaded. Zips are read
in place, member by member, never extracted. ``top_level.txt`` (a small file of the import
names a distribution provides) is read when present, for the prioritisation by imports.

Metadata that cannot be used (no ``Name`` or ``Version``, an invalid name, a metadata
directory without its metadata file, an unreadable member) becomes a :class:`Problem` with
its path and reason, counted in :attr:`Inventory.problems`; the scan goes on.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from collectors.vulns.pep440 import canonical_name, try_parse

__all__ = [
    "MAX_HEADER_BYTES",
    "Distribution",
    "Inventory",
    "InventoryError",
    "Problem",
    "parse_headers",
    "purl_of",
    "scan",
    "scan_directory",
    "scan_zip",
]

MAX_HEADER_BYTES = 64 * 1024  # a METADATA header block is a few KB; the rest is never read
MAX_TOP_LEVEL_BYTES = 16 * 1024
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)  # PEP 508
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*$")
_MAX_LICENSE_NAME = 200

MetadataKind = Literal["dist-info", "egg-info", "egg"]


class InventoryError(Exception):
    """The input as a whole cannot be read (no such path, not a zip, a broken zip)."""


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # the metadata path, relative to the scanned root
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Distribution:
    """One installed distribution, as its metadata says, at one place in the tree."""

    name: str  # as the metadata spells it
    version: str  # as the metadata spells it
    path: str  # the .dist-info/.egg-info path, relative to the scanned root, "/"-separated
    kind: MetadataKind = "dist-info"
    licenses: tuple[str, ...] = ()  # licence names (License, licence classifiers)
    license_expression: str | None = None  # License-Expression (metadata 2.4), SPDX
    modules: tuple[str, ...] = ()  # top-level import names (top_level.txt), when known

    @property
    def canonical(self) -> str:
        return canonical_name(self.name)

    @property
    def purl(self) -> str:
        return purl_of(self.name, self.version)


@dataclass(slots=True)
class Inventory:
    source: str  # what was scanned, as given
    kind: Literal["directory", "zip", "sbom"]
    distributions: list[Distribution] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0  # SBOM components that are not PyPI packages

    def sort(self) -> None:
        self.distributions.sort(key=_dist_order)
        self.problems.sort(key=lambda p: (p.where, p.reason))


def _dist_order(d: Distribution) -> tuple[object, ...]:
    v = try_parse(d.version)
    return (d.canonical, 0 if v is not None else 1, v.key if v else (), d.version, d.path)


def purl_of(name: str, version: str) -> str:
    """``pkg:pypi/<PEP 503 name>@<version>`` (the purl spec's pypi type)."""
    return f"pkg:pypi/{quote(canonical_name(name), safe='-._~')}@{quote(version, safe='-._~+!')}"


# -- the metadata header block ------------------------------------------------------------------
def parse_headers(data: bytes) -> dict[str, list[str]]:
    """The RFC 822-style header block of METADATA/PKG-INFO: field -> values, in order.

    Reading stops at the first blank line (the body is the long description) or at the first
    line that is neither a header nor a continuation. Field names are case-insensitive
    (kept lower-case here); continuation lines join their field with a newline.
    """
    text = data.decode("utf-8") if _is_utf8(data) else data.decode("latin-1")
    headers: dict[str, list[str]] = {}
    last: tuple[str, int] | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[:1] in (" ", "\t"):
            if last is None:
                break
            key, i = last
            headers[key][i] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name.strip():
            break
        key = name.strip().lower()
        values = headers.setdefault(key, [])
        values.append(value.strip())
        last = (key, len(values) - 1)
    return headers


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _head(read: Callable[[int], bytes]) -> bytes:
    """The header block of a metadata file: up to its first blank line, bounded."""
    data = read(MAX_HEADER_BYTES)
    for sep in (b"\n\n", b"\r\n\r\n"):
        i = data.find(sep)
        if i >= 0:
            return data[: i + 1]
    return data


def _licenses(headers: dict[str, list[str]]) -> tuple[tuple[str, ...], str | None]:
    names: list[str] = []
    expression = None
    for value in headers.get("license-expression", []):
        if value.strip():
            expression = value.strip()
            break
    for value in headers.get("license", []):
        first = value.strip().split("\n", 1)[0].strip()
        # a one-line License is a name; a multi-line one is the licence's text
        if first and "\n" not in value.strip() and first.upper() != "UNKNOWN":
            names.append(first[:_MAX_LICENSE_NAME])
    for value in headers.get("classifier", []):
        parts = [p.strip() for p in value.split("::")]
        if len(parts) >= 2 and parts[0] == "License" and parts[-1] != "OSI Approved":
            names.append(parts[-1][:_MAX_LICENSE_NAME])
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return tuple(seen), expression


def _distribution(
    path: str, kind: MetadataKind, head: bytes, top_level: bytes | None
) -> Distribution | Problem:
    headers = parse_headers(head)
    names = headers.get("name", [])
    versions = headers.get("version", [])
    if not names or not names[0]:
        return Problem(path, "metadata has no Name")
    if not versions or not versions[0]:
        return Problem(path, f"metadata of {names[0]!r} has no Version")
    name, version = names[0], versions[0]
    if not _NAME_RE.match(name):
        return Problem(path, f"Name {name[:80]!r} is not a valid distribution name")
    if len(version) > 128 or any(c.isspace() for c in version):
        return Problem(path, f"Version {version[:80]!r} of {name} is not a version")
    licenses, expression = _licenses(headers)
    modules: tuple[str, ...] = ()
    if top_level is not None:
        text = top_level.decode("utf-8", "replace")
        found = {line.strip() for line in text.splitlines() if _MODULE_RE.match(line.strip())}
        modules = tuple(sorted(found))
    return Distribution(
        name=name,
        version=version,
        path=path,
        kind=kind,
        licenses=licenses,
        license_expression=expression,
        modules=modules,
    )


# -- where metadata lives -----------------------------------------------------------------------
def _metadata_file(dirname: str) -> tuple[MetadataKind, str] | None:
    """For a metadata directory's name: its kind and the file that holds its headers."""
    if dirname.endswith(".dist-info"):
        return "dist-info", "METADATA"
    if dirname.endswith(".egg-info"):
        return "egg-info", "PKG-INFO"
    return None


def scan(path: str) -> Inventory:
    """Scan a directory or a zip file (see the module's docstring)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InventoryError(f"{path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        return scan_directory(path)
    if not zipfile.is_zipfile(path):
        raise InventoryError(f"{path}: neither a directory nor a zip file")
    return scan_zip(path)


def scan_directory(root: str) -> Inventory:
    inv = Inventory(source=root, kind="directory")
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for d in sorted(dirnames):
            meta = _metadata_file(d)
            if meta is None and d.endswith(".egg"):
                meta_dir = os.path.join(dirpath, d, "EGG-INFO")
                if os.path.isdir(meta_dir):
                    _read_dir(inv, meta_dir, rel_dir + d + "/EGG-INFO", "egg", "PKG-INFO")
                continue
            if meta is not None:
                _read_dir(inv, os.path.join(dirpath, d), rel_dir + d, meta[0], meta[1])
        # never descend into metadata directories (or eggs, read above)
        dirnames[:] = sorted(
            d for d in dirnames if _metadata_file(d) is None and not d.endswith(".egg")
        )
        for f in sorted(filenames):
            if f.endswith(".egg-info"):
                full = os.path.join(dirpath, f)
                try:
                    with open(full, "rb") as fh:
                        head = _head(fh.read)
                except OSError as exc:
                    inv.problems.append(Problem(rel_dir + f, f"unreadable: {exc.strerror}"))
                    continue
                _add(inv, _distribution(rel_dir + f, "egg-info", head, None))
    inv.sort()
    return inv


def _raise(exc: OSError) -> None:
    raise InventoryError(f"{exc.filename}: {exc.strerror or exc}")


def _read_dir(inv: Inventory, full: str, rel: str, kind: MetadataKind, filename: str) -> None:
    try:
        with open(os.path.join(full, filename), "rb") as fh:
            head = _head(fh.read)
    except FileNotFoundError:
        inv.problems.append(Problem(rel, f"no {filename} in this metadata directory"))
        return
    except OSError as exc:
        inv.problems.append(Problem(rel, f"{filename} unreadable: {exc.strerror or exc}"))
        return
    top_level = None
    try:
        with open(os.path.join(full, "top_level.txt"), "rb") as fh:
            top_level = fh.read(MAX_TOP_LEVEL_BYTES)
    except OSError:
        pass
    _add(inv, _distribution(rel, kind, head, top_level))


def _add(inv: Inventory, got: Distribution | Problem) -> None:
    if isinstance(got, Problem):
        inv.problems.append(got)
    else:
        inv.distributions.append(got)


def scan_zip(path: str) -> Inventory:
    inv = Inventory(source=path, kind="zip")
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InventoryError(f"{path}: not a readable zip: {exc}") from None
    with zf:
        members = {i.filename: i for i in zf.infolist()}
        # metadata directories: every path component that names one (zips often omit
        # directory entries, so they are found from their members' names)
        dirs: dict[str, tuple[MetadataKind, str]] = {}
        for name in members:
            parts = name.split("/")
            for i, part in enumerate(parts[:-1]):
                meta = _metadata_file(part)
                prefix = "/".join(parts[: i + 1])
                if meta is not None:
                    dirs.setdefault(prefix, meta)
                    break
                if part.endswith(".egg") and parts[i + 1 : i + 2] == ["EGG-INFO"]:
                    dirs.setdefault(prefix + "/EGG-INFO", ("egg", "PKG-INFO"))
                    break
        for prefix in sorted(dirs):
            kind, filename = dirs[prefix]
            info = members.get(f"{prefix}/{filename}")
            if info is None or info.is_dir():
                inv.problems.append(Problem(prefix, f"no {filename} in this metadata directory"))
                continue
            try:
                with zf.open(info) as fh:
                    head = _head(fh.read)
                top = members.get(f"{prefix}/top_level.txt")
                top_level = None
                if top is not None and not top.is_dir():
                    with zf.open(top) as fh:
                        top_level = fh.read(MAX_TOP_LEVEL_BYTES)
            except (OSError, RuntimeError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
                inv.problems.append(Problem(prefix, f"unreadable member: {exc}"))
                continue
            _add(inv, _distribution(prefix, kind, head, top_level))
        for name, info in members.items():
            if info.is_dir() or not name.endswith(".egg-info"):
                continue
            if any(name.startswith(p + "/") for p in _parents(name) if p in dirs):
                continue
            try:
                with zf.open(info) as fh:
                    head = _head(fh.read)
            except (OSError, RuntimeError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
                inv.problems.append(Problem(name, f"unreadable member: {exc}"))
                continue
            _add(inv, _distribution(name, "egg-info", head, None))
    inv.sort()
    return inv


def _parents(name: str) -> Iterator[str]:
    parts = name.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
