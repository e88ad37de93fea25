"""The advisory updater: keeps the PyPI OSV database current in S3 (a scheduled Lambda).

Each run:

1. reads the manifest of the copy in S3 (``advisories/pypi/manifest.json``), if any;
2. downloads the OSV bulk file (``OSV_URL``, default osv.dev's
   ``https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip``) with
   ``If-None-Match``/``If-Modified-Since`` from that manifest: a ``304 Not Modified``, or a
   body whose sha256 is the stored one, ends the run as ``unchanged`` (nothing written);
3. validates the download: a zip of OSV JSON files that :func:`collectors.vulns.osv.load`
   reads, with at least one PyPI advisory and not fewer than ``OSV_MIN_RATIO`` (0.5) times
   the previous count (a truncated but well-formed zip is refused too);
4. writes the zip to ``advisories/pypi/all.zip``, then the manifest (count, sha256, size,
   fetched time, source URL, ETag, Last-Modified, problems counted while loading).

A download that is too large (``OSV_MAX_BYTES``, 512 MiB), too slow (``OSV_TIMEOUT_S``, 60 s
per socket operation), not a zip, empty or corrupt is *refused*: the previous copy and its
manifest stay as they were, the reason is logged, the ``AdvisoryUpdateRefused`` metric is
emitted and the invocation fails (so Lambda's Errors metric shows it).

Environment: ``ADVISORY_BUCKET`` (required), ``ADVISORY_PREFIX`` (default
``advisories/pypi/``), ``OSV_URL``, ``OSV_MAX_BYTES``, ``OSV_TIMEOUT_S``, ``OSV_MIN_RATIO``.

:func:`download` (bounded, streamed to a file, sha256 while reading) is also what the
vulnerability scan (``functions/vulnscan.py``) fetches deployment packages with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from collectors.vulns.osv import DatabaseError, load

__all__ = [
    "DEFAULT_URL",
    "DownloadError",
    "Downloaded",
    "Manifest",
    "UpdateConfig",
    "UpdateRefused",
    "UpdateResult",
    "Updater",
    "download",
    "handler",
]

DEFAULT_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
DEFAULT_PREFIX = "advisories/pypi/"
DB_NAME = "all.zip"
MANIFEST_NAME = "manifest.json"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MIN_RATIO = 0.5
CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "ramparts-osv-update")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Ramparts")


class DownloadError(RuntimeError):
    """A download that failed or was refused (status, size, scheme, timeout); says why."""


class UpdateRefused(RuntimeError):
    """The new database was not stored; the previous copy is kept. The message says why."""


class ConfigError(ValueError):
    """A missing or invalid environment variable."""


# -- downloading ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Downloaded:
    """A completed GET: ``not_modified`` (304, nothing written) or the body in ``path``."""

    not_modified: bool
    path: str | None = None
    size: int = 0
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None


class _NoRedirectToHttp(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to https (when https is required)."""

    def __init__(self, require_https: bool) -> None:
        self.require_https = require_https

    def redirect_request(  # noqa: PLR0917 (urllib's signature)
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if self.require_https and urllib.parse.urlsplit(newurl).scheme != "https":
            raise DownloadError(f"redirected to a non-https URL: {_safe(newurl)}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _safe(url: str) -> str:
    """A URL fit for logs: scheme, host and path (presigned query strings are credentials)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:300]


def download(
    url: str,
    dest: str,
    *,
    max_bytes: int,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    headers: Mapping[str, str] | None = None,
    require_https: bool = True,
) -> Downloaded:
    """GET ``url`` into the file ``dest``, at most ``max_bytes``, hashing as it reads.

    Raises :class:`DownloadError` for a non-https URL (when required), an HTTP error, a
    ``Content-Length`` or a body over ``max_bytes``, a body shorter than its
    ``Content-Length``, a timeout or a connection error. A 304 answer to conditional
    ``headers`` returns ``Downloaded(not_modified=True)``. ``dest`` is left partial on error;
    callers delete it.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    allowed = ("https",) if require_https else ("https", "http")
    if scheme not in allowed:
        raise DownloadError(f"{_safe(url)}: only {' or '.join(allowed)} URLs are fetched")
    request = urllib.request.Request(url, headers=dict(headers or {}), method="GET")  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirectToHttp(require_https))
    where = _safe(url)
    try:
        with opener.open(request, timeout=timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise DownloadError(f"{where}: {expected} bytes, over the {max_bytes} limit")
            digest = hashlib.sha256()
            size = 0
            with open(dest, "wb") as out:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(f"{where}: over the {max_bytes} byte limit")
                    digest.update(chunk)
                    out.write(chunk)
            if expected is not None and size != expected:
                raise DownloadError(f"{where}: {size} of {expected} bytes received")
            return Downloaded(
                not_modified=False,
                path=dest,
                size=size,
                sha256=digest.hexdigest(),
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
            )
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Downloaded(not_modified=True)
        raise DownloadError(f"{where}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{where}: {exc.reason}") from None
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        raise DownloadError(f"{where}: {type(exc).__name__}: {exc}") from None


# -- the manifest ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Manifest:
    """What is stored next to the database in S3."""

    advisories: int
    sha256: str
    size: int
    fetched_at: str  # RFC 3339, UTC
    source_url: str
    etag: str | None = None
    last_modified: str | None = None
    records: int = 0
    problems: int = 0
    withdrawn: int = 0
    key: str = DEFAULT_PREFIX + DB_NAME
    format: str = "osv-zip"
    version: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """The manifest in ``data``; ValueError when it is not one."""
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("the manifest is not a JSON object")
        try:
            m = cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})
        except TypeError as exc:
            raise ValueError(f"the manifest lacks a field: {exc}") from None
        if not isinstance(m.sha256, str) or len(m.sha256) != 64:
            raise ValueError("the manifest's sha256 is not a sha256")
        if not isinstance(m.advisories, int) or m.advisories < 1:
            raise ValueError("the manifest's advisory count is not a positive number")
        return m


def read_manifest(s3: Any, bucket: str, key: str) -> Manifest | None:
    """The manifest stored at ``key``, None when there is none yet.

    Raises ValueError for a manifest that cannot be read (callers decide what that means).
    """
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    body = obj["Body"].read(MAX_MANIFEST_BYTES + 1)
    if len(body) > MAX_MANIFEST_BYTES:
        raise ValueError(f"s3://{bucket}/{key}: over {MAX_MANIFEST_BYTES} bytes")
    return Manifest.from_json(body)


# -- the updater ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UpdateConfig:
    bucket: str
    prefix: str = DEFAULT_PREFIX
    url: str = DEFAULT_URL
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    min_ratio: float = DEFAULT_MIN_RATIO

    @property
    def db_key(self) -> str:
        return self.prefix + DB_NAME

    @property
    def manifest_key(self) -> str:
        return self.prefix + MANIFEST_NAME

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> UpdateConfig:
        bucket = (env.get("ADVISORY_BUCKET") or "").strip()
        if not bucket:
            raise ConfigError("ADVISORY_BUCKET is required")
        prefix = (env.get("ADVISORY_PREFIX") or DEFAULT_PREFIX).strip()
        if not prefix.endswith("/") or prefix.startswith("/"):
            raise ConfigError(f"ADVISORY_PREFIX: {prefix!r} must be a key prefix ending in /")
        url = (env.get("OSV_URL") or DEFAULT_URL).strip()
        if urllib.parse.urlsplit(url).scheme != "https":
            raise ConfigError(f"OSV_URL: {_safe(url)!r} is not an https:// URL")
        return cls(
            bucket=bucket,
            prefix=prefix,
            url=url,
            max_bytes=_positive_int(env, "OSV_MAX_BYTES", DEFAULT_MAX_BYTES),
            timeout_s=float(_positive_int(env, "OSV_TIMEOUT_S", int(DEFAULT_TIMEOUT_S))),
            min_ratio=_ratio(env, "OSV_MIN_RATIO", DEFAULT_MIN_RATIO),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name}: {text!r} is not a positive whole number")
    return int(text)


def _ratio(env: Mapping[str, str], name: str, default: float) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"{name}: {text!r} is not between 0 and 1")
    return value


Status = Literal["updated", "unchanged", "refused"]


@dataclass(slots=True)
class UpdateResult:
    status: Status
    reason: str = ""
    manifest: Manifest | None = None
    previous: Manifest | None = None
    problems: list[str] = field(default_factory=list)  # the first few load problems

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.manifest is not None:
            out["advisories"] = self.manifest.advisories
            out["sha256"] = self.manifest.sha256
        return out


def _now_rfc3339(clock: Callable[[], float]) -> str:
    return dt.datetime.fromtimestamp(clock(), dt.UTC).isoformat(timespec="seconds")


class Updater:
    """Download, validate and store the database (see the module docstring)."""

    def __init__(
        self,
        config: UpdateConfig,
        *,
        s3: Any = None,
        clock: Callable[[], float] = time.time,
        require_https: bool = True,
        workdir: str | None = None,
    ) -> None:
        self.config = config
        self.s3 = s3 if s3 is not None else boto3.client("s3")
        self.clock = clock
        self.require_https = require_https
        self.workdir = workdir

    def run(self) -> UpdateResult:
        cfg = self.config
        try:
            previous = read_manifest(self.s3, cfg.bucket, cfg.manifest_key)
        except ValueError as exc:  # unreadable: fetch unconditionally, replace it
            logger.warning("stored manifest unreadable, replacing it", extra={"error": str(exc)})
            previous = None
        headers: dict[str, str] = {}
        if previous is not None and previous.source_url == cfg.url:
            if previous.etag:
                headers["If-None-Match"] = previous.etag
            if previous.last_modified:
                headers["If-Modified-Since"] = previous.last_modified
        with tempfile.TemporaryDirectory(prefix="ramparts-osv-", dir=self.workdir) as tmp:
            path = os.path.join(tmp, DB_NAME)
            try:
                got = download(
                    cfg.url,
                    path,
                    max_bytes=cfg.max_bytes,
                    timeout_s=cfg.timeout_s,
                    headers=headers,
                    require_https=self.require_https,
                )
            except DownloadError as exc:
                return UpdateResult("refused", f"download failed: {exc}", previous=previous)
            if got.not_modified:
                return UpdateResult("unchanged", "304 Not Modified", previous, previous)
            assert got.sha256 is not None
            if previous is not None and got.sha256 == previous.sha256:
                return UpdateResult(
                    "unchanged", "same sha256 as the stored copy", previous, previous
                )
            return self._validate_and_store(path, got, previous)

    def _validate_and_store(
        self, path: str, got: Downloaded, previous: Manifest | None
    ) -> UpdateResult:
        cfg = self.config
        if got.size == 0:
            return UpdateResult("refused", "empty download", previous=previous)
        if not zipfile.is_zipfile(path):
            return UpdateResult("refused", "not a zip file", previous=previous)
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()  # every member's CRC: a truncated or corrupt zip fails here
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, zlib.error) as exc:
            return UpdateResult("refused", f"corrupt zip: {exc}", previous=previous)
        if bad is not None:
            return UpdateResult("refused", f"corrupt zip: member {bad!r}", previous=previous)
        try:
            db = load(path)
        except DatabaseError as exc:
            return UpdateResult("refused", f"not an OSV database: {exc}", previous=previous)
        report = db.report
        problems = [str(p) for p in report.problems[:20]]
        if report.advisories == 0:
            return UpdateResult(
                "refused",
                f"no PyPI advisory among {report.records} records",
                previous=previous,
                problems=problems,
            )
        if previous is not None and report.advisories < previous.advisories * cfg.min_ratio:
            return UpdateResult(
                "refused",
                f"{report.advisories} advisories, fewer than {cfg.min_ratio:g} x the "
                f"{previous.advisories} stored: looks truncated",
                previous=previous,
                problems=problems,
            )
        assert got.sha256 is not None
        manifest = Manifest(
            advisories=report.advisories,
            sha256=got.sha256,
            size=got.size,
            fetched_at=_now_rfc3339(self.clock),
            source_url=cfg.url,
            etag=got.etag,
            last_modified=got.last_modified,
            records=report.records,
            problems=len(report.problems),
            withdrawn=report.withdrawn,
            key=cfg.db_key,
        )
        with open(path, "rb") as fh:
            self.s3.put_object(
                Bucket=cfg.bucket,
                Key=cfg.db_key,
                Body=fh,
                ContentType="application/zip",
                Metadata={"sha256": got.sha256, "advisories": str(report.advisories)},
            )
        # the manifest last: readers that see it find the database it describes
        self.s3.put_object(
            Bucket=cfg.bucket,
            Key=cfg.manifest_key,
            Body=manifest.to_json().encode(),
            ContentType="application/json",
        )
        return UpdateResult("updated", "", manifest, previous, problems)


# -- the Lambda handler ---------------------------------------------------------------------
def record(result: UpdateResult) -> None:
    """Log and count one run's outcome (metrics are flushed by the handler's decorator)."""
    name = {
        "updated": "AdvisoryUpdated",
        "unchanged": "AdvisoryUnchanged",
        "refused": "AdvisoryUpdateRefused",
    }[result.status]
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if result.manifest is not None:
        metrics.add_metric(
            name="Advisories", unit=MetricUnit.Count, value=result.manifest.advisories
        )
        metrics.add_metric(
            name="AdvisoryProblems", unit=MetricUnit.Count, value=result.manifest.problems
        )
    extra = {**result.summary(), "problems": result.problems[:5]}
    if result.status == "refused":
        logger.error("advisory database not updated; the previous copy is kept", extra=extra)
    else:
        logger.info("advisory database " + result.status, extra=extra)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    del event, context  # a schedule: nothing in the event matters
    result = Updater(UpdateConfig.from_env(os.environ)).run()
    record(result)
    if result.status == "refused":
        raise UpdateRefused(result.reason)
    return result.summary()
