"""``ramparts vulns --db FILE PATH...``: the table, the OCSF findings, exit status, problems."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from collectors.model import from_ocsf
from tests.ocsf import validate_ocsf
from tests.vulns.conftest import (
    OSV_DIR,
    dist_info,
    json_lines,
    metadata,
    run_cli,
    zip_members,
    zip_tree,
)

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:orders"


@pytest.fixture
def all_zip(tmp_path: Path) -> Path:
    """The real advisories packed as osv.dev packs PyPI/all.zip."""
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(OSV_DIR.glob("*.json")):
            zf.write(f, f.name)
    return z


@pytest.fixture
def fn(tmp_path: Path) -> Path:
    root = tmp_path / "orders"
    dist_info(root, "requests", "2.31.0", top_level="requests\n")  # fixed: no match
    dist_info(root, "urllib3", "2.0.5", top_level="urllib3\n")  # affected, fixed in 2.0.6
    dist_info(root, "Django", "4.2.16")  # fixed
    dist_info(root / "python", "PyYAML", "5.4b2", top_level="yaml\n")  # pre-release of the fix
    return root


def test_table(fn: Path, all_zip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["vulns", "--db", str(all_zip), str(fn)], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == [
        "PACKAGE",
        "VERSION",
        "ADVISORY",
        "CVE",
        "SEVERITY",
        "SCORE",
        "FIXED",
        "IN",
        "PRIORITY",
    ]
    rows = [line.split() for line in lines[1:]]
    assert rows == [
        ["PyYAML", "5.4b2", "PYSEC-2021-142", "CVE-2020-14343", "Unknown", "-", "5.4", "Unknown"],
        ["urllib3", "2.0.5", "PYSEC-2023-192", "CVE-2023-43804", "High", "8.1", "2.0.6", "High"],
    ]
    assert "4 packages in 1 path(s); 2 affected (2 advisory matches)" in err
    assert "database: 11 PyPI advisories, 0 withdrawn, 0 problems" in err


def test_json_findings(fn: Path, all_zip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        ["vulns", "--db", str(all_zip), str(fn), "--json", "--function", ARN], capsys
    )
    assert code == 1
    events = json_lines(out)
    assert [e["unmapped"]["ramparts"]["package"]["name"] for e in events] == ["PyYAML", "urllib3"]
    for e in events:
        assert validate_ocsf(e) == []
        assert from_ocsf(e).to_ocsf() == e
        assert e["resources"][0]["uid"] == ARN
    [vuln] = events[1]["vulnerabilities"]
    assert vuln["cve"]["uid"] == "CVE-2023-43804"
    assert vuln["affected_packages"][0]["fixed_in_version"] == "2.0.6"


def test_prioritisation_flags(fn: Path, all_zip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["vulns", "--db", str(all_zip), str(fn), "--json"]
    _, plain, _ = run_cli(args, capsys)
    _, lowered, _ = run_cli(
        [*args, "--imported", "json,boto3", "--internet-reachable", "no", "--role-power", "read"],
        capsys,
    )
    urllib3 = next(e for e in json_lines(plain) if "urllib3" in e["message"])
    urllib3_low = next(e for e in json_lines(lowered) if "urllib3" in e["message"])
    assert urllib3["severity_id"] == 4
    assert urllib3_low["severity_id"] == 3  # 8.1 - 3.0 - 1.0 = 4.1
    assert urllib3_low["unmapped"]["ramparts"]["prioritisation"]["score"] == 4.1
    modules = fn.parent / "imports.txt"
    modules.write_text("urllib3\nboto3\n")
    _, raised, _ = run_cli([*args, "--imported", f"@{modules}", "--role-power", "admin"], capsys)
    urllib3_high = next(e for e in json_lines(raised) if "urllib3" in e["message"])
    assert urllib3_high["severity_id"] == 5  # 8.1 + 0.5 + 1.5 = 10.0


def test_sbom_input_and_several_paths(
    fn: Path, all_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, sbom_text, _ = run_cli(["sbom", str(fn)], capsys)
    assert code == 0
    sbom = tmp_path / "orders.cdx.json"
    sbom.write_text(sbom_text)
    layer = zip_members(
        tmp_path / "layer.zip",
        {
            "python/lib/python3.12/site-packages/py-1.11.0.dist-info/METADATA": metadata(
                "py", "1.11.0"
            )
        },
    )
    _, direct, _ = run_cli(["vulns", "--db", str(all_zip), str(fn), "--json"], capsys)
    code, out, err = run_cli(
        ["vulns", "--db", str(all_zip), str(sbom), str(layer), "--json"], capsys
    )
    assert code == 1
    events = json_lines(out)
    by_source = {(e["unmapped"]["ramparts"]["source"], e["message"].split(":")[0]) for e in events}
    assert by_source == {
        (str(sbom), "PyYAML 5.4b2"),
        (str(sbom), "urllib3 2.0.5"),
        (str(layer), "py 1.11.0"),
    }
    # the SBOM gives the same vulnerabilities as the code it describes
    strip = lambda e: e["vulnerabilities"]  # noqa: E731
    from_sbom = [strip(e) for e in events if e["unmapped"]["ramparts"]["source"] == str(sbom)]
    assert from_sbom == [strip(e) for e in json_lines(direct)]
    assert "in 2 path(s)" in err


def test_clean_code_exits_zero(
    all_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "clean"
    dist_info(root, "requests", "2.32.3")
    dist_info(root, "urllib3", "2.2.2")
    code, out, err = run_cli(["vulns", "--db", str(all_zip), str(root)], capsys)
    assert (code, out) == (0, "")
    assert "2 packages in 1 path(s); 0 affected" in err


def test_problems_are_reported_counted_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.jsonl"
    good = json.loads((OSV_DIR / "PYSEC-2021-66.json").read_text())
    bad = {"id": "RAMPARTS-TEST-BAD-9", "affected": [{"package": {"ecosystem": "PyPI"}}]}
    db.write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    root = tmp_path / "fn"
    dist_info(root, "jinja2", "3.1.4")
    (root / "broken-1.0.dist-info").mkdir()
    code, out, err = run_cli(["vulns", "--db", str(db), str(root)], capsys)
    assert code == 3 and out == ""
    assert (
        f"{db}: {db}:1 (RAMPARTS-TEST-BAD-9): advisory skipped: affected[0].package: no 'name'"
        in err
    )
    assert f"{root}: broken-1.0.dist-info: no METADATA in this metadata directory" in err
    assert "database: 1 PyPI advisories, 0 withdrawn, 1 problems; 1 unusable metadata" in err
    # with a vulnerable package the exit status says so, problems or not
    dist_info(root, "jinja2", "2.11.2")
    code, _, _ = run_cli(["vulns", "--db", str(db), str(root)], capsys)
    assert code == 1


def test_bad_inputs(
    fn: Path, all_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["vulns", "--db", str(tmp_path / "nope.zip"), str(fn)], capsys)
    assert code == 2 and "no such file or directory" in err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": "world"}))
    code, _, err = run_cli(["vulns", "--db", str(all_zip), str(other)], capsys)
    assert code == 2 and "must be a CycloneDX SBOM" in err
    code, _, err = run_cli(
        ["vulns", "--db", str(all_zip), str(fn), str(fn), "--function", ARN], capsys
    )
    assert code == 2 and "exactly one PATH" in err


def test_zip_deployment_package(
    fn: Path, all_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    z = zip_tree(fn, tmp_path / "orders.zip")
    _, from_dir, _ = run_cli(["vulns", "--db", str(all_zip), str(fn)], capsys)
    code, from_zip, _ = run_cli(["vulns", "--db", str(all_zip), str(z)], capsys)
    assert code == 1 and from_zip == from_dir
