"""Vulnerability Findings (OCSF 2002) from matches, and prioritisation by run-time facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors.model import from_ocsf
from collectors.vulns.findings import (
    FindingInputs,
    PackageMatches,
    findings,
    match_inventory,
    prioritise,
)
from collectors.vulns.inventory import scan
from collectors.vulns.osv import Database, load, load_records
from tests.ocsf import validate_ocsf
from tests.vulns.conftest import OSV_DIR, dist_info

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:orders"


@pytest.fixture(scope="module")
def db() -> Database:
    return load(str(OSV_DIR))


@pytest.fixture
def fn(tmp_path: Path) -> Path:
    dist_info(tmp_path, "requests", "2.30.0", top_level="requests\n")
    dist_info(tmp_path, "PyYAML", "5.3.1", top_level="_yaml\nyaml\n")
    dist_info(tmp_path / "python", "urllib3", "1.26.3", top_level="urllib3\n")
    dist_info(tmp_path, "py", "1.11.0", top_level="py\n")
    dist_info(tmp_path, "six", "1.16.0", top_level="six\n")
    return tmp_path


def by_package(pms: list[PackageMatches]) -> dict[str, PackageMatches]:
    return {pm.canonical: pm for pm in pms}


def test_one_finding_per_affected_package(db: Database, fn: Path) -> None:
    pms = match_inventory(db, scan(str(fn)))
    assert [(pm.canonical, len(pm.matches)) for pm in pms] == [
        ("py", 2),
        ("pyyaml", 1),
        ("requests", 2),
        ("six", 0),
        ("urllib3", 2),
    ]
    out = findings(pms, function=ARN, now_ms=1_733_000_000_000, tool_version="0.1.0")
    assert len(out) == 4
    for f in out:
        event = f.to_ocsf()
        assert validate_ocsf(event) == [], validate_ocsf(event)
        assert from_ocsf(event) == f
        assert event["class_uid"] == 2002 and event["resources"][0]["uid"] == ARN
        assert event["cloud"]["account"]["uid"] == "123456789012"


def test_cve_or_advisory_fix_and_references(db: Database, fn: Path) -> None:
    pms = by_package(match_inventory(db, scan(str(fn))))
    [urllib3] = findings([pms["urllib3"]], now_ms=1_733_000_000_000)
    event = urllib3.to_ocsf()
    vulns = {v["cve"]["uid"]: v for v in event["vulnerabilities"]}
    assert set(vulns) == {"CVE-2023-43804", "CVE-2021-28363"}
    v = vulns["CVE-2023-43804"]
    assert v["title"].startswith("PYSEC-2023-192")
    assert v["severity"] == "High"
    assert v["cve"]["cvss"] == [
        {
            "base_score": 8.1,
            "version": "3.1",
            "severity": "High",
            "vector_string": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N",
        }
    ]
    assert v["affected_packages"] == [
        {
            "name": "urllib3",
            "version": "1.26.3",
            "fixed_in_version": "1.26.17",
            "purl": "pkg:pypi/urllib3@1.26.3",
            "package_manager": "pip",
            "path": "python/urllib3-1.26.3.dist-info",
        }
    ]
    assert v["is_fix_available"] is True
    assert (
        "https://github.com/urllib3/urllib3/security/advisories/GHSA-v845-jxx5-vc9f"
        in (v["references"])
    )
    assert vulns["CVE-2021-28363"]["affected_packages"][0]["fixed_in_version"] == "1.26.4"
    assert event["severity_id"] == 4  # the highest: 8.1
    assert event["resources"][0] == {
        "uid": str(fn),
        "name": fn.name,
        "type": "Path",
        "role_id": 3,
    }
    osv = event["unmapped"]["ramparts"]["osv"]
    assert osv[0] == {
        "id": "PYSEC-2021-59",
        "matched_by": "range",
        "aliases": ["CVE-2021-28363", "GHSA-5phf-pp7p-vc2r"],
    }


def test_advisory_without_cve_and_no_fix(db: Database) -> None:
    # the GHSA record for py, without its CVE alias: an `advisory`, and no fixed release
    record = json.loads((OSV_DIR / "GHSA-w596-4wvx-j9j6.json").read_text())
    record["aliases"] = []
    only = load_records([record])
    pm = PackageMatches(
        source="fn",
        name="py",
        version="1.11.0",
        purl="pkg:pypi/py@1.11.0",
        locations=(),
        modules=(),
        matches=tuple(only.match("py", "1.11.0")),
    )
    [f] = findings([pm], now_ms=1_733_000_000_000)
    event = f.to_ocsf()
    assert validate_ocsf(event) == []
    [v] = event["vulnerabilities"]
    assert "cve" not in v
    assert v["advisory"]["uid"] == "GHSA-w596-4wvx-j9j6"
    assert v["advisory"]["src_url"] == "https://osv.dev/vulnerability/GHSA-w596-4wvx-j9j6"
    assert v["is_fix_available"] is False and "fixed_in_version" not in v["affected_packages"][0]
    assert event["message"] == "py 1.11.0: 1 known vulnerability (no fix known)"
    assert event["severity_id"] == 3  # CVSS 5.3


# -- prioritisation -----------------------------------------------------------------------------
INPUTS = FindingInputs(
    package="pyyaml", modules=("_yaml", "yaml"), base_score=7.5, base_severity="High"
)


def test_unknown_inputs_change_nothing() -> None:
    p = prioritise(INPUTS, imported=None, internet_reachable=None, role_power=None)
    assert (p.base_score, p.score, p.severity_id, p.reasons) == (7.5, 7.5, 4, ())
    assert p.explain() == "Score 7.5 as the advisories give it (nothing else known)."


@pytest.mark.parametrize(
    ("imported", "reachable", "power", "score", "severity_id"),
    [
        ({"yaml"}, None, None, 8.0, 4),
        ({"yaml.constructor"}, None, None, 8.0, 4),  # a submodule imports its package
        ({"PyYAML"}, None, None, 8.0, 4),  # a distribution name works too
        ({"json", "boto3"}, None, None, 4.5, 3),  # installed, never imported
        (set(), None, None, 4.5, 3),
        (None, True, None, 8.5, 4),
        (None, False, None, 6.5, 3),
        (None, None, "admin", 9.0, 5),
        (None, None, "write", 8.0, 4),
        (None, None, "read", 7.5, 4),
        (None, None, "none", 7.0, 4),
        ({"yaml"}, True, "admin", 10.0, 5),  # clamped at 10
        ({"json"}, False, "none", 3.0, 2),
    ],
)
def test_adjustments(
    imported: set[str] | None,
    reachable: bool | None,
    power: str | None,
    score: float,
    severity_id: int,
) -> None:
    p = prioritise(INPUTS, imported=imported, internet_reachable=reachable, role_power=power)
    assert (p.score, p.severity_id) == (score, severity_id)
    used = sum(x is not None for x in (imported, reachable, power))
    assert len(p.reasons) == used


def test_explanation_and_floor() -> None:
    low = FindingInputs(package="x", modules=(), base_score=2.0, base_severity="Low")
    p = prioritise(low, imported={"json"}, internet_reachable=False, role_power="none")
    assert p.score == 0.0 and p.severity_id == 1
    assert p.explain() == (
        "Score 2.0 from the advisories, 0.0 for this function: installed but not imported at "
        "run time (-3.0); not reachable from the internet (-1.0); execution role can none (-0.5)."
    )


def test_no_severity_means_nothing_to_adjust() -> None:
    unknown = FindingInputs(package="x", modules=(), base_score=None, base_severity=None)
    p = prioritise(unknown, imported=set(), internet_reachable=True, role_power="admin")
    assert (p.score, p.severity_id, p.reasons) == (None, 0, ())


def test_bad_role_power() -> None:
    with pytest.raises(ValueError, match="role_power 'root'"):
        prioritise(INPUTS, imported=None, internet_reachable=None, role_power="root")


def test_base_from_database_label_when_no_vector(db: Database) -> None:
    record = json.loads((OSV_DIR / "GHSA-j8r2-6x86-q33q.json").read_text())
    del record["severity"]
    pm = PackageMatches(
        source="fn",
        name="requests",
        version="2.30.0",
        purl="pkg:pypi/requests@2.30.0",
        locations=(),
        modules=("requests",),
        matches=tuple(load_records([record]).match("requests", "2.30.0")),
    )
    inputs = FindingInputs.of(pm)
    assert (inputs.base_score, inputs.base_severity) == (5.5, "Medium")  # MODERATE


def test_prioritised_finding_carries_its_reasons(db: Database, fn: Path) -> None:
    pms = by_package(match_inventory(db, scan(str(fn))))
    [f] = findings(
        [pms["pyyaml"]], imported={"boto3"}, internet_reachable=True, now_ms=1_733_000_000_000
    )
    event = f.to_ocsf()
    assert validate_ocsf(event) == []
    # PYSEC-2021-142 has no severity at all: Unknown, nothing to adjust
    assert event["severity_id"] == 0
    assert event["finding_info"]["desc"] == "No advisory gives a severity: not prioritised."
    [r] = findings(
        [pms["requests"]], imported={"boto3"}, internet_reachable=True, now_ms=1_733_000_000_000
    )
    ev = r.to_ocsf()
    prio = ev["unmapped"]["ramparts"]["prioritisation"]
    assert prio == {
        "severity": "Medium",
        "reasons": [
            "installed but not imported at run time (-3.0)",
            "reachable from the internet (+1.0)",
        ],
        "base_score": 6.1,
        "score": 4.1,
    }
    assert ev["severity_id"] == 3
    assert "6.1 from the advisories, 4.1 for this function" in ev["finding_info"]["desc"]


def test_function_named_without_an_arn(db: Database, fn: Path) -> None:
    pms = by_package(match_inventory(db, scan(str(fn))))
    [f] = findings([pms["urllib3"]], function="orders", now_ms=1_733_000_000_000)
    event = f.to_ocsf()
    assert validate_ocsf(event) == []
    assert event["resources"] == [
        {
            "uid": "orders",
            "name": "orders",
            "type": "AwsLambdaFunction",
            "role_id": 3,
            "labels": [f"code.path={fn}"],
        }
    ]
    assert "account" not in event["cloud"]
    # the finding's uid is stable for a function, package and version, whatever the path
    [again] = findings([pms["urllib3"]], function="orders", now_ms=1_800_000_000_000)
    assert again.finding_info.uid == f.finding_info.uid
