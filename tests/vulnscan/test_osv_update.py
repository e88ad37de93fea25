"""The advisory updater against a loopback HTTP server and moto S3."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from functions import osv_update
from functions.osv_update import (
    DownloadError,
    Manifest,
    UpdateConfig,
    Updater,
    UpdateRefused,
    download,
)
from tests.vulnscan.conftest import BUCKET, LocalServer, Served, osv_zip, zip_bytes

PATH = "/PyPI/all.zip"
NOW = 1_796_417_910.0


def updater(s3: Any, server: LocalServer, **changes: Any) -> Updater:
    cfg = UpdateConfig(bucket=BUCKET, url=server.url(PATH), **changes)
    return Updater(cfg, s3=s3, clock=lambda: NOW, require_https=False)


def stored(s3: Any) -> tuple[bytes, dict[str, Any]]:
    db = s3.get_object(Bucket=BUCKET, Key="advisories/pypi/all.zip")["Body"].read()
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="advisories/pypi/manifest.json")["Body"].read()
    )
    return db, manifest


def test_new_file_is_validated_and_stored_with_its_manifest(
    aws_env: Any, server: LocalServer
) -> None:
    body = osv_zip()
    server.files[PATH] = Served(body, etag='"abc"', last_modified="Fri, 04 Dec 2026 10:00:00 GMT")
    s3 = aws_env.client("s3")
    result = updater(s3, server).run()
    assert result.status == "updated", result.reason
    db, manifest = stored(s3)
    assert db == body
    assert manifest == {
        "advisories": 11,
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "fetched_at": "2026-12-04T20:58:30+00:00",
        "source_url": server.url(PATH),
        "etag": '"abc"',
        "last_modified": "Fri, 04 Dec 2026 10:00:00 GMT",
        "records": 11,
        "problems": 0,
        "withdrawn": 0,
        "key": "advisories/pypi/all.zip",
        "format": "osv-zip",
        "version": 1,
    }
    assert server.requests[0][1].get("If-None-Match") is None  # nothing stored before


def test_unchanged_file_is_not_downloaded_again(aws_env: Any, server: LocalServer) -> None:
    server.files[PATH] = Served(
        osv_zip(), etag='"abc"', last_modified="Fri, 04 Dec 2026 10:00:00 GMT"
    )
    s3 = aws_env.client("s3")
    assert updater(s3, server).run().status == "updated"
    before = s3.head_object(Bucket=BUCKET, Key="advisories/pypi/manifest.json")["LastModified"]
    result = updater(s3, server).run()
    assert (result.status, result.reason) == ("unchanged", "304 Not Modified")
    headers = server.requests[-1][1]
    assert headers["If-None-Match"] == '"abc"'
    assert headers["If-Modified-Since"] == "Fri, 04 Dec 2026 10:00:00 GMT"
    assert (
        s3.head_object(Bucket=BUCKET, Key="advisories/pypi/manifest.json")["LastModified"] == before
    )


def test_same_content_without_etag_is_unchanged_by_sha256(
    aws_env: Any, server: LocalServer
) -> None:
    server.files[PATH] = Served(osv_zip())
    s3 = aws_env.client("s3")
    assert updater(s3, server).run().status == "updated"
    result = updater(s3, server).run()
    assert (result.status, result.reason) == ("unchanged", "same sha256 as the stored copy")


def test_new_version_replaces_the_stored_one(aws_env: Any, server: LocalServer) -> None:
    s3 = aws_env.client("s3")
    server.files[PATH] = Served(
        osv_zip(["PYSEC-2023-192", "PYSEC-2023-74", "PYSEC-2021-59"]), etag='"1"'
    )
    assert updater(s3, server).run().manifest.advisories == 3  # type: ignore[union-attr]
    server.files[PATH] = Served(osv_zip(), etag='"2"')
    result = updater(s3, server).run()
    assert result.status == "updated"
    assert stored(s3)[1]["advisories"] == 11 and stored(s3)[1]["etag"] == '"2"'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty download"),
        (b"<html>Service Unavailable</html>", "not a zip file"),
        (osv_zip()[:-200], "not a zip file"),  # truncated: the central directory is gone
        (zip_bytes({"README.txt": "no advisories"}), "not an OSV database"),
        (
            zip_bytes(
                {
                    "x.json": json.dumps(
                        {"id": "GO-1", "affected": [{"package": {"ecosystem": "Go", "name": "x"}}]}
                    )
                }
            ),
            "no PyPI advisory",
        ),
        (osv_zip(["PYSEC-2023-192"]), "looks truncated"),  # 1 advisory where 11 were stored
    ],
)
def test_bad_download_is_refused_and_the_old_copy_kept(
    aws_env: Any, server: LocalServer, body: bytes, reason: str
) -> None:
    s3 = aws_env.client("s3")
    good = osv_zip()
    server.files[PATH] = Served(good, etag='"good"')
    assert updater(s3, server).run().status == "updated"
    server.files[PATH] = Served(body, etag='"bad"')
    result = updater(s3, server).run()
    assert result.status == "refused" and reason in result.reason, result.reason
    db, manifest = stored(s3)
    assert db == good and manifest["etag"] == '"good"'


def test_corrupt_member_is_refused(aws_env: Any, server: LocalServer) -> None:
    body = bytearray(osv_zip())
    # flip bytes inside the first member's compressed data (past its 30-byte local header)
    name_len = int.from_bytes(body[26:28], "little") + int.from_bytes(body[28:30], "little")
    start = 30 + name_len
    for i in range(start, start + 40):
        body[i] ^= 0xFF
    server.files[PATH] = Served(bytes(body))
    result = updater(aws_env.client("s3"), server).run()
    assert result.status == "refused" and "corrupt zip" in result.reason, result.reason
    with pytest.raises(Exception, match="NoSuchKey"):
        aws_env.client("s3").get_object(Bucket=BUCKET, Key="advisories/pypi/manifest.json")


def test_download_is_bounded_and_http_errors_refused(
    aws_env: Any, server: LocalServer, tmp_path: Any
) -> None:
    server.files[PATH] = Served(osv_zip())
    with pytest.raises(DownloadError, match="over the 1000 limit"):
        download(server.url(PATH), str(tmp_path / "x"), max_bytes=1000, require_https=False)
    server.files[PATH] = Served(b"", status=503)
    result = updater(aws_env.client("s3"), server).run()
    assert result.status == "refused" and "HTTP 503" in result.reason
    with pytest.raises(DownloadError, match="only https URLs"):
        download(server.url(PATH), str(tmp_path / "x"), max_bytes=1000)


def test_handler_fails_on_refusal_and_config_is_checked(
    aws_env: Any, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADVISORY_BUCKET", raising=False)
    with pytest.raises(osv_update.ConfigError, match="ADVISORY_BUCKET is required"):
        UpdateConfig.from_env({})
    with pytest.raises(osv_update.ConfigError, match="not an https"):
        UpdateConfig.from_env({"ADVISORY_BUCKET": BUCKET, "OSV_URL": "http://example.com/x"})
    cfg = UpdateConfig.from_env({"ADVISORY_BUCKET": BUCKET})
    assert cfg.url == "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
    assert (cfg.db_key, cfg.manifest_key) == (
        "advisories/pypi/all.zip",
        "advisories/pypi/manifest.json",
    )
    server.files[PATH] = Served(b"not a zip")
    result = updater(aws_env.client("s3"), server).run()
    osv_update.record(result)  # logs and counts without raising
    monkeypatch.setattr(osv_update, "Updater", lambda cfg: updater(aws_env.client("s3"), server))
    monkeypatch.setenv("ADVISORY_BUCKET", BUCKET)

    class Ctx:
        function_name = "ramparts-osv-update"
        memory_limit_in_mb = 1024
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:ramparts-osv-update"
        aws_request_id = "r-1"

    with pytest.raises(UpdateRefused, match="not a zip file"):
        osv_update.handler({}, Ctx())


def test_manifest_round_trip_and_bad_manifest() -> None:
    m = Manifest(advisories=3, sha256="a" * 64, size=10, fetched_at="x", source_url="u")
    assert Manifest.from_json(m.to_json().encode()) == m
    with pytest.raises(ValueError, match="sha256"):
        Manifest.from_json(json.dumps({**json.loads(m.to_json()), "sha256": "x"}).encode())
