"""Matching installed versions against real OSV advisories (``osv/``, see its README)."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from collectors.vulns.osv import Database, DatabaseError, load, load_records
from tests.vulns.conftest import OSV_DIR

REAL = sorted(p.name for p in OSV_DIR.glob("*.json"))


def real(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((OSV_DIR / f"{name}.json").read_text())
    return doc


@pytest.fixture(scope="module")
def db() -> Database:
    return load(str(OSV_DIR))


def hits(db: Database, name: str, version: str) -> dict[str, str | None]:
    """advisory id -> the fix offered, for what affects ``name`` at ``version``."""
    return {m.advisory.id: m.fixed for m in db.match(name, version)}


def test_the_real_set_loads_cleanly(db: Database) -> None:
    assert len(REAL) >= 10
    assert db.report.records == len(REAL)
    assert db.report.advisories == len(REAL)
    assert db.report.problems == []
    assert db.report.withdrawn == 0
    assert sorted(db.index) == [
        "aiohttp",
        "cryptography",
        "django",
        "jinja2",
        "py",
        "pyyaml",
        "requests",
        "urllib3",
    ]


# (package as installed, version, {advisory: fix}) -- exact matches and exact non-matches
CASES: list[tuple[str, str, dict[str, str | None]]] = [
    # requests: [2.3.0, 2.31.0), from PyPA and from GitHub
    ("requests", "2.30.0", {"GHSA-j8r2-6x86-q33q": "2.31.0", "PYSEC-2023-74": "2.31.0"}),
    ("requests", "2.3.0", {"GHSA-j8r2-6x86-q33q": "2.31.0", "PYSEC-2023-74": "2.31.0"}),
    ("Requests", "2.31.0rc1", {"GHSA-j8r2-6x86-q33q": "2.31.0", "PYSEC-2023-74": "2.31.0"}),
    ("requests", "2.31.0", {}),  # exactly at `fixed`: not affected
    ("requests", "2.2.1", {}),  # below `introduced`
    # urllib3: two intervals in one range, listed out of order; and [1.26.0, 1.26.4)
    ("urllib3", "1.26.16", {"PYSEC-2023-192": "1.26.17"}),
    ("urllib3", "1.26.17", {}),
    ("urllib3", "1.26.3", {"PYSEC-2023-192": "1.26.17", "PYSEC-2021-59": "1.26.4"}),
    ("urllib3", "1.26.4", {"PYSEC-2023-192": "1.26.17"}),
    ("urllib3", "1.25.11", {"PYSEC-2023-192": "1.26.17"}),
    ("urllib3", "2.0.0", {"PYSEC-2023-192": "2.0.6"}),
    ("urllib3", "2.0.5", {"PYSEC-2023-192": "2.0.6"}),
    ("urllib3", "2.0.6", {}),
    ("urllib3", "2.1.0", {}),
    # django: three branches
    ("Django", "4.2.15", {"PYSEC-0000-CVE-2024-45230": "4.2.16"}),
    ("django", "4.2.16", {}),
    ("django", "4.1.13", {}),
    ("django", "5.0.8", {"PYSEC-0000-CVE-2024-45230": "5.0.9"}),
    ("django", "5.0.9", {}),
    ("django", "5.1", {"PYSEC-0000-CVE-2024-45230": "5.1.1"}),
    ("django", "5.1.0", {"PYSEC-0000-CVE-2024-45230": "5.1.1"}),
    ("django", "5.1.1", {}),
    # cryptography: across the 3.4.8 -> 35.0.0 jump
    ("cryptography", "3.0", {}),
    ("cryptography", "3.1", {"PYSEC-2023-254": "41.0.6"}),
    ("cryptography", "3.4.8", {"PYSEC-2023-254": "41.0.6"}),
    ("cryptography", "35.0.0", {"PYSEC-2023-254": "41.0.6"}),
    ("cryptography", "41.0.5", {"PYSEC-2023-254": "41.0.6"}),
    ("cryptography", "41.0.6", {}),
    ("cryptography", "42.0.0", {}),
    # pyyaml: pre-releases of the fixed release are affected
    ("PyYAML", "5.3.1", {"PYSEC-2021-142": "5.4"}),
    ("PyYAML", "5.4b2", {"PYSEC-2021-142": "5.4"}),
    ("PyYAML", "5.4rc1", {"PYSEC-2021-142": "5.4"}),  # not listed; the range says so
    ("PyYAML", "5.4", {}),
    ("PyYAML", "5.4.1", {}),
    # jinja2: introduced "0"
    ("Jinja2", "0.1", {"PYSEC-2021-66": "2.11.3"}),
    ("jinja2", "2.11.2", {"PYSEC-2021-66": "2.11.3"}),
    ("jinja2", "2.11.3", {}),
    ("jinja2", "3.1.2", {}),
    # py: last_affected 1.11.0, no fix known
    ("py", "1.11.0", {"GHSA-w596-4wvx-j9j6": None, "PYSEC-2022-42969": None}),
    ("py", "1.4.32.dev1", {"GHSA-w596-4wvx-j9j6": None, "PYSEC-2022-42969": None}),
    ("py", "1.11.0.post1", {}),
    ("py", "1.11.1", {}),
    # aiohttp: [1.0.5, 3.9.2)
    ("aiohttp", "1.0.4", {}),
    ("aiohttp", "1.0.5", {"PYSEC-2024-24": "3.9.2"}),
    ("aiohttp", "3.7.4.post0", {"PYSEC-2024-24": "3.9.2"}),
    ("aiohttp", "3.9.0rc0", {"PYSEC-2024-24": "3.9.2"}),
    ("aiohttp", "3.9.1", {"PYSEC-2024-24": "3.9.2"}),
    ("aiohttp", "3.9.2", {}),
    # a package no advisory names
    ("six", "1.16.0", {}),
]


@pytest.mark.parametrize(("name", "version", "expected"), CASES)
def test_matches(db: Database, name: str, version: str, expected: dict[str, str | None]) -> None:
    assert hits(db, name, version) == expected


def test_how_a_match_was_made(db: Database) -> None:
    by = {m.advisory.id: m.how for m in db.match("urllib3", "1.26.3")}
    assert by == {"PYSEC-2023-192": "range", "PYSEC-2021-59": "range"}


def test_severity(db: Database) -> None:
    adv = {m.advisory.id: m.advisory for m in db.match("requests", "2.30.0")}
    ghsa, pysec = adv["GHSA-j8r2-6x86-q33q"], adv["PYSEC-2023-74"]
    assert ghsa.score == 6.1 and ghsa.severity == "Medium"  # the vector, not only MODERATE
    assert ghsa.database_severity == "MODERATE"
    assert pysec.score is None and pysec.severity is None
    assert pysec.cve == ghsa.cve == "CVE-2023-32681"
    urllib3 = db.match("urllib3", "2.0.5")[0].advisory
    assert (urllib3.score, urllib3.severity) == (8.1, "High")
    assert "https://github.com/urllib3/urllib3/security/advisories/GHSA-v845-jxx5-vc9f" in (
        urllib3.references
    )
    assert len(urllib3.references) == len(set(urllib3.references))


# -- the database's forms -----------------------------------------------------------------------
def _snapshot(db: Database) -> list[tuple[str, str, dict[str, str | None]]]:
    return [(n, v, hits(db, n, v)) for n, v, _ in CASES]


def test_zip_jsonl_and_array_give_the_same_matches(tmp_path: Path, db: Database) -> None:
    expected = _snapshot(db)
    docs = [json.loads((OSV_DIR / f).read_text()) for f in REAL]
    all_zip = tmp_path / "all.zip"
    with zipfile.ZipFile(all_zip, "w", zipfile.ZIP_DEFLATED) as zf:  # as osv.dev publishes it
        for f in REAL:
            zf.write(OSV_DIR / f, f)
    jsonl = tmp_path / "pypi.jsonl"
    jsonl.write_text("".join(json.dumps(d) + "\n" for d in docs))
    array = tmp_path / "pypi.json"
    array.write_text(json.dumps(docs, indent=1))
    single = tmp_path / "one.json"
    single.write_text(json.dumps(docs[0], indent=2))
    for path in (all_zip, jsonl, array):
        other = load(str(path))
        assert other.report.advisories == len(REAL), path
        assert _snapshot(other) == expected, path
    assert load(str(single)).report.advisories == 1


def test_missing_database(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no such file"):
        load(str(tmp_path / "nope.zip"))


# -- records the real set does not have (derived, see osv/README.md) ----------------------------
def test_withdrawn_advisories_are_ignored() -> None:
    # PYSEC-2021-66 with its range moved onto jinja2 3.x, then withdrawn
    derived = real("PYSEC-2021-66")
    derived["id"] = "RAMPARTS-TEST-WITHDRAWN-1"
    derived["affected"][0]["ranges"][0]["events"] = [{"introduced": "3.0.0"}, {"fixed": "3.1.3"}]
    live = load_records([copy.deepcopy(derived)])
    assert hits(live, "jinja2", "3.1.2") == {"RAMPARTS-TEST-WITHDRAWN-1": "3.1.3"}  # the control
    derived["withdrawn"] = "2024-01-01T00:00:00Z"
    gone = load_records([derived, real("PYSEC-2021-66")])
    assert hits(gone, "jinja2", "3.1.2") == {}
    assert hits(gone, "jinja2", "2.11.2") == {"PYSEC-2021-66": "2.11.3"}
    assert (gone.report.withdrawn, gone.report.advisories) == (1, 1)


def _record(vid: str, name: str, **affected: Any) -> dict[str, Any]:
    return {
        "id": vid,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": name}, **affected}],
    }


def test_epochs() -> None:
    db = load_records(
        [
            _record(
                "RAMPARTS-TEST-EPOCH-1",
                "Epoch_Pkg",
                ranges=[
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1!1.0"}, {"fixed": "1!1.5"}]}
                ],
            )
        ]
    )
    assert hits(db, "epoch-pkg", "2.0") == {}  # epoch 0 sorts before every epoch 1 version
    assert hits(db, "epoch.pkg", "1!0.9") == {}
    assert hits(db, "epoch-pkg", "1!1.2") == {"RAMPARTS-TEST-EPOCH-1": "1!1.5"}
    assert hits(db, "epoch-pkg", "1!1.5") == {}


def test_limit_events() -> None:
    ranges = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"limit": "2.0"}]}]
    db = load_records([_record("RAMPARTS-TEST-LIMIT-1", "limited", ranges=ranges)])
    assert hits(db, "limited", "1.9") == {"RAMPARTS-TEST-LIMIT-1": None}
    assert hits(db, "limited", "2.0") == {}
    assert hits(db, "limited", "3.0") == {}
    star = [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"limit": "*"}]}]
    db = load_records([_record("RAMPARTS-TEST-LIMIT-2", "limited", ranges=star)])
    assert hits(db, "limited", "99") == {"RAMPARTS-TEST-LIMIT-2": None}


def test_explicit_versions_only() -> None:
    db = load_records(
        [_record("RAMPARTS-TEST-VERSIONS-1", "listed", versions=["1.0", "1.2", "weird-build"])]
    )
    assert hits(db, "listed", "1.0.0") == {"RAMPARTS-TEST-VERSIONS-1": None}  # PEP 440 equal
    assert hits(db, "listed", "1.1") == {}
    # a version PEP 440 cannot read only matches the list, by its exact text
    assert hits(db, "listed", "weird-build") == {"RAMPARTS-TEST-VERSIONS-1": None}
    assert hits(db, "listed", "other-build") == {}


def test_cvss_v4_is_kept_unscored() -> None:
    record = _record(
        "RAMPARTS-TEST-CVSS4-1",
        "scored",
        ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}],
    )
    vector = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    record["severity"] = [{"type": "CVSS_V4", "score": vector}]
    record["database_specific"] = {"severity": "HIGH"}
    [m] = load_records([record]).match("scored", "0.9")
    assert m.advisory.score is None
    assert m.advisory.other_vectors == (("CVSS_V4", vector),)
    assert m.advisory.severity == "High"


def test_other_ecosystems_are_counted_not_matched() -> None:
    record = real("PYSEC-2021-66")
    record["affected"][0]["package"]["ecosystem"] = "npm"
    db = load_records([record])
    assert (db.report.other_ecosystems, db.report.advisories) == (1, 0)
    assert hits(db, "jinja2", "2.0") == {}


def test_malformed_advisories_are_reported_with_id_and_counted(tmp_path: Path) -> None:
    bad_event = real("PYSEC-2021-66")
    bad_event["id"] = "RAMPARTS-TEST-BAD-1"
    bad_event["affected"][0]["ranges"][0]["events"][1] = {"fixed": "2.11.x"}
    no_intro = _record(
        "RAMPARTS-TEST-BAD-2", "x", ranges=[{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]
    )
    two_kinds = _record(
        "RAMPARTS-TEST-BAD-3",
        "x",
        ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1.0"}]}],
    )
    bad_vector = real("PYSEC-2023-254")
    bad_vector["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}]
    lines = [
        json.dumps(bad_event),
        json.dumps({"summary": "no id"}),
        "{not json",
        json.dumps(no_intro),
        json.dumps(two_kinds),
        json.dumps({"id": "RAMPARTS-TEST-BAD-4", "affected": {"package": "x"}}),
        json.dumps(bad_vector),
        json.dumps(real("PYSEC-2021-142")),
    ]
    path = tmp_path / "db.jsonl"
    path.write_text("\n".join(lines) + "\n")
    db = load(str(path))
    assert [str(p) for p in db.report.problems] == [
        f"{path}:1 (RAMPARTS-TEST-BAD-1): advisory skipped: affected[0].ranges[0].events[1]: "
        "fixed '2.11.x' is not a PEP 440 version",
        f"{path}:2: advisory skipped: no 'id'",
        f"{path}:3: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1)",
        f"{path}:4 (RAMPARTS-TEST-BAD-2): advisory skipped: affected[0].ranges[0]: a range needs "
        "an 'introduced' event",
        f"{path}:5 (RAMPARTS-TEST-BAD-3): advisory skipped: affected[0].ranges[0].events[0]: an "
        "event has exactly one of introduced/fixed/last_affected/limit",
        f"{path}:6 (RAMPARTS-TEST-BAD-4): advisory skipped: 'affected' must be a list",
        "PYSEC-2023-254: severity[0]: 'CVSS:3.1/AV:N': base metric(s) AC, PR, UI, S, C, I, A "
        "missing: ignored",
    ]
    assert db.report.records == 8
    # the rest still loads: the advisory with a bad vector is kept, without a score
    assert hits(db, "pyyaml", "5.3") == {"PYSEC-2021-142": "5.4"}
    [m] = db.match("cryptography", "41.0.0")
    assert m.advisory.id == "PYSEC-2023-254" and m.advisory.score is None


def test_a_database_without_json_is_an_error_not_an_empty_scan(tmp_path: Path) -> None:
    yaml_only = tmp_path / "advisory-database"
    yaml_only.mkdir()
    (yaml_only / "PYSEC-2021-66.yaml").write_text("id: PYSEC-2021-66\n")
    with pytest.raises(DatabaseError, match=r"no OSV JSON files \(\*\.json\) in this directory"):
        load(str(yaml_only))
    z = tmp_path / "empty.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("README.txt", "nothing here")
    with pytest.raises(DatabaseError, match="in this zip"):
        load(str(z))


def test_oversized_zip_member_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collectors.vulns import osv

    monkeypatch.setattr(osv, "MAX_RECORD_BYTES", 3000)
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(OSV_DIR / "PYSEC-2021-59.json", "PYSEC-2021-59.json")  # 1.9 KB
        zf.write(OSV_DIR / "PYSEC-2023-192.json", "PYSEC-2023-192.json")  # 3.9 KB
    db = load(str(z))
    assert db.report.advisories == 1
    [problem] = db.report.problems
    assert problem.where == "PYSEC-2023-192.json"
    assert problem.reason.endswith("bytes: too large for an advisory")
