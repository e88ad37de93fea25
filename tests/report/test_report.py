"""ramparts report against a month of data in moto: counts, period, mapping, renderings."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import pytest

from collectors.report import (
    CONTROLS,
    DirectorySource,
    Period,
    SourceError,
    build_report,
    select_for_export,
    to_html,
    to_json,
    write_csv,
    write_export,
)
from collectors.report.controls import EVIDENCE, check
from collectors.report.render import CSV_TABLES
from ramparts_cli.errors import CliError
from tests.report.conftest import (
    BUCKET,
    DENIAL,
    SCRIPT_TITLE,
    SNAPSHOTS,
    cli,
    live_args,
    snapshot_key,
)

JAN = Period.parse("2026-01-01", "2026-01-31")
NOW = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


@pytest.fixture
def report(full):
    return build_report(full.source(page_size=2), JAN, now=NOW)


def test_counts_in_the_period(report):
    s = report["summary"]
    ids = [f["id"] for f in report["findings"]["items"]]
    assert sorted(ids) == sorted(
        ["f-shell", "f-revshell", "f-passwd", "f-blocked", "f-gap", "f-tor",
         "ramparts-vuln-aaaa0001"]
    )  # fmt: skip
    assert s["findings"] == 7
    assert s["findings_by_kind"] == {"coverage": 1, "detection": 5, "vulnerability": 1}
    assert s["findings_by_severity"] == {
        "Critical": 1, "High": 4, "Medium": 2, "Low": 0, "Informational": 0,
    }  # fmt: skip
    assert [(b["severity"], b["findings"]) for b in report["findings"]["by_severity"]] == [
        ("Critical", 1), ("High", 4), ("Medium", 2), ("Low", 0), ("Informational", 0),
    ]  # fmt: skip
    assert s["runs"] == 5 and s["actions"] == 8
    assert s["approvals"] == {"approved": 1, "denied": 1, "not-required": 3}
    assert s["coverage_snapshots"] == 4
    assert s["latest_coverage_ratio"] == round(4 / 6, 4)
    assert s["unreadable"] == 3 and s["no_data"] is False
    assert report["period"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
    assert report["scope"]["accounts"] == ["123456789012", "222222222222"]
    assert report["scope"]["regions"] == ["eu-west-1"]
    # the live source asks only for findings (not the event markers and indexes)
    assert report["read"]["findings"] == {"outside the period": 3, "read": 11, "unreadable": 1}


def test_findings_by_rule_and_resource(report):
    by_rule = {r["rule_id"]: r for r in report["findings"]["by_rule"]}
    assert by_rule["process.shell-from-function"]["occurrences"] == 3
    assert by_rule["network.tor"]["first_seen"] == "2025-12-20T00:00:00Z"
    assert by_rule["vulnerability"]["category"] == "vulnerability"
    by_res = {r["resource_uid"]: r for r in report["findings"]["by_resource"]}
    ec2 = by_res["i-0123456789abcdef0"]
    assert (ec2["findings"], ec2["occurrences"], ec2["max_severity"]) == (2, 3, "Critical")
    orders = by_res["arn:aws:lambda:eu-west-1:123456789012:function:orders"]
    assert orders["findings"] == 3  # shell, blocked, the vulnerability
    items = {f["id"]: f for f in report["findings"]["items"]}
    assert items["f-shell"]["response_status"] == (
        "contain-lambda: released; release-lambda: released"
    )
    assert items["f-passwd"]["response_status"] == "isolate-ec2: denied"
    assert items["f-revshell"]["first_seen"] == "2026-01-15T08:00:00Z"
    assert items["ramparts-vuln-aaaa0001"]["title"] == "urllib3 1.26.0: CVE-2099-0001"
    # most severe first
    assert report["findings"]["items"][0]["id"] == "f-revshell"


def test_response_runs_actions_and_approvals(report):
    runs = {(r["finding_id"], r["playbook"]): r for r in report["response"]["runs"]}
    assert set(runs) == {
        ("f-shell", "contain-lambda"), ("f-shell", "release-lambda"),
        ("f-revshell", "isolate-ec2"), ("f-passwd", "isolate-ec2"),
        ("f-blocked", "contain-lambda"),
    }  # fmt: skip
    denied = runs[("f-passwd", "isolate-ec2")]["approval"]
    assert denied == {
        "decision": "denied", "by": "alice", "at": "2026-01-16T13:00:00Z",
        "reason": "known deploy script", "note": "",
    }  # fmt: skip
    approved = runs[("f-revshell", "isolate-ec2")]["approval"]
    assert approved["decision"] == "approved" and "does not record who" in approved["note"]
    assert runs[("f-shell", "contain-lambda")]["evidence"] is True
    assert runs[("f-shell", "contain-lambda")]["actions"] == 3
    acts = report["response"]["actions"]
    assert [a["action"] for a in acts if a["finding_id"] == "f-shell"] == [
        "tag", "concurrency", "revoke", "restore-concurrency", "restore-keep-revoke",
    ]  # fmt: skip
    conc = next(a for a in acts if a["action"] == "concurrency" and a["finding_id"] == "f-shell")
    assert conc["before_summary"] == "reserved=none" and conc["after_summary"] == "reserved=0"
    plan = next(a for a in acts if a["kind"] == "plan")
    assert plan["status"] == "would-do" and plan["finding_id"] == "f-blocked"
    assert not any(a["finding_id"] == "f-dns-old" for a in acts)


def test_coverage_over_time_and_gaps(report):
    pts = report["coverage"]["points"]
    assert [p["time"] for p in pts] == [w for w, _, _ in SNAPSHOTS[1:]]
    assert [(p["covered"], p["total"]) for p in pts] == [(3, 5), (4, 5), (4, 6), (4, 6)]
    assert pts[1]["by_type"]["ec2"] == {"total": 1, "covered": 1}
    latest = report["coverage"]["latest"]
    assert latest["s3_key"] == snapshot_key("2026-01-26T00:00:00Z")
    assert latest["snapshot_read"] is True
    assert [g["key"] for g in latest["gaps"]] == [
        "lambda:arn:aws:lambda:eu-west-1:123456789012:function:legacy", "ec2:i-0fff",
    ]  # fmt: skip
    assert report["scope"]["inventoried_accounts"] == ["123456789012", "222222222222"]


def test_control_mapping(report):
    controls = {(c["framework"], c["control"]): c for c in report["controls"]}
    assert len(controls) == len(CONTROLS)
    ev = {e["id"]: e for c in report["controls"] for e in c["evidence"]}
    assert {k: ev[k]["count"] for k in ev} == {
        "coverage-snapshots": 4, "coverage-gaps": 1, "sensor-health": 0, "all-detections": 5,
        "process-detections": 2, "file-integrity": 1, "network-detections": 1,
        "covert-channels": 1, "provider-detections": 0, "prevention": 1, "vulnerabilities": 1,
        "tuning": 1, "containment": 5, "recovery": 2, "approvals": 2, "response-runs": 5,
        "audit-trail": 14,
    }  # fmt: skip
    assert ev["tuning"]["occurrences"] == 2
    assert ev["file-integrity"]["examples"] == ["finding#f-passwd"]
    assert ev["approvals"]["examples"] == [
        "finding#f-revshell response#isolate-ec2", "finding#f-passwd response#isolate-ec2",
    ]  # fmt: skip
    assert controls[("PCI DSS v4.0", "11.5.2")]["status"] == "evidence"
    assert controls[("SOC 2 (TSC)", "CC7.5")]["status"] == "evidence"
    assert controls[("CIS Controls v8", "8.12")]["status"] == "no-evidence"
    assert controls[("PCI DSS v4.0", "10.7.2")]["evidence_kinds_with_items"] == 1
    assert report["summary"]["controls_with_evidence"] == len(CONTROLS) - 1


def test_the_mapping_table_covers_the_asked_controls():
    check()
    ids = {(c.framework, c.id) for c in CONTROLS}
    for cc in ("CC7.1", "CC7.2", "CC7.3", "CC7.4", "CC7.5"):
        assert ("SOC 2 (TSC)", cc) in ids
    pci = {i for f, i in ids if f == "PCI DSS v4.0"}
    assert {i.split(".")[0] for i in pci} == {"10", "11"}
    assert {"11.5.1", "11.5.2", "10.2.1"} <= pci
    cis = {i for f, i in ids if f == "CIS Controls v8"}
    assert {i.split(".")[0] for i in cis} == {"8", "13"}
    used = {e for c in CONTROLS for e in c.evidence}
    assert used == {e.id for e in EVIDENCE}  # no evidence kind is defined and never used


def test_json_schema_is_stable(report):
    doc = json.loads(to_json(report))
    assert doc["schema"] == "ramparts-report" and doc["schema_version"] == 1
    assert list(doc) == [
        "schema", "schema_version", "generated_at", "period", "source", "scope", "summary",
        "coverage", "findings", "response", "controls", "read", "problems",
    ]  # fmt: skip
    assert set(doc["summary"]) == {
        "no_data", "findings", "findings_by_kind", "findings_by_severity", "open_findings",
        "runs", "actions", "approvals", "coverage_snapshots", "latest_coverage_ratio",
        "controls_with_evidence", "controls", "unreadable",
    }  # fmt: skip
    assert set(doc["findings"]["items"][0]) == set(CSV_TABLES["findings"])
    assert set(doc["response"]["actions"][0]) == set(CSV_TABLES["actions"])
    assert set(doc["response"]["runs"][0]) == {
        "finding_id", "playbook", "status", "mode", "reason", "at", "resource", "account",
        "execution", "approval", "actions", "evidence", "ref",
    }  # fmt: skip
    assert set(doc["coverage"]["latest"]) == {
        "time", "total", "covered", "by_type", "s3_key", "errors", "ratio", "snapshot_read",
        "gaps", "listing_errors",
    }  # fmt: skip
    assert set(doc["controls"][0]) == {
        "framework", "control", "title", "status", "evidence_kinds_with_items", "evidence",
        "limits",
    }  # fmt: skip
    assert set(doc["controls"][0]["evidence"][0]) >= {"id", "title", "count", "examples"}
    assert set(doc["problems"][0]) == {"table", "ref", "error"}


def _read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_tables_in_a_directory_and_a_zip(report, tmp_path):
    names = write_csv(report, tmp_path / "csv")
    assert names == sorted(f"{t}.csv" for t in CSV_TABLES)
    write_csv(report, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as z:
        assert sorted(z.namelist()) == names
        zipped = {n: z.read(n).decode() for n in names}
    for name in names:
        text = (tmp_path / "csv" / name).read_bytes().decode("utf-8")
        assert text == zipped[name]
        rows = _read_csv(text)
        assert tuple(rows[0]) == CSV_TABLES[name.removesuffix(".csv")]
    counts = {n: len(_read_csv(zipped[n])) - 1 for n in names}
    assert counts == {
        "actions.csv": 8, "controls.csv": sum(len(c.evidence) for c in CONTROLS),
        "coverage.csv": 4, "findings.csv": 7, "gaps.csv": 2, "problems.csv": 3, "runs.csv": 5,
    }  # fmt: skip
    runs = _read_csv(zipped["runs.csv"])
    header = runs[0]
    denied = next(r for r in runs[1:] if r[header.index("status")] == "denied")
    assert denied[header.index("approval_by")] == "alice"
    assert denied[header.index("reason")] == DENIAL
    findings = _read_csv(zipped["findings.csv"])
    titles = [r[findings[0].index("title")] for r in findings[1:]]
    assert SCRIPT_TITLE in titles


def test_csv_cells_cannot_become_formulas():
    from collectors.report.render import csv_text

    text = csv_text(("a", "b", "c"), [{"a": "=HYPERLINK(1)", "b": "-2+3", "c": "fine"}])
    assert _read_csv(text)[1] == ["'=HYPERLINK(1)", "'-2+3", "fine"]


def test_html_escapes_everything_and_has_charts(report):
    page = to_html(report)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<img" not in page and "legacy&lt;img src=x onerror=alert(1)&gt;" in page
    assert "default-src 'none'" in page  # and a CSP forbids scripts in any case
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "").replace(
        "curl http://evil", ""
    )  # no external asset
    assert page.count("<svg") == 2  # coverage over time, findings by severity
    assert "<polyline" in page and "<polygon" in page and "<rect" in page
    assert "Control mapping" in page and "CC7.4" in page and "11.5.2" in page
    assert "no evidence in the period" in page
    assert "3 stored item(s) could not be read" in page


def test_unreadable_items_are_reported_not_dropped(report):
    problems = {p["table"]: p for p in report["problems"]}
    assert set(problems) == {"findings", "actions", "coverage"}
    assert "pk=finding#f-broken sk=finding" in problems["findings"]["ref"]
    assert "'rule_id'" in problems["findings"]["error"]
    assert "yesterday" in problems["actions"]["error"]
    assert "summary" in problems["coverage"]["error"]
    page = to_html(report)
    assert "finding#f-broken" in page


def test_an_empty_period_says_no_data(full):
    empty = build_report(full.source(), Period.parse("2024-03-01", "2024-03-31"), now=NOW)
    s = empty["summary"]
    assert s["no_data"] is True
    assert (s["findings"], s["runs"], s["actions"], s["coverage_snapshots"]) == (0, 0, 0, 0)
    assert s["latest_coverage_ratio"] is None and empty["coverage"]["latest"] is None
    assert all(c["status"] == "no-evidence" for c in empty["controls"])
    assert s["unreadable"] == 3  # still reported: their period is unknown
    page = to_html(empty)
    assert "No data for this period" in page and "not evidence that the controls" in page
    assert "No coverage snapshot was taken in the period" in page


def test_a_missing_snapshot_is_a_problem(full):
    full.s3.delete_object(Bucket=BUCKET, Key=snapshot_key("2026-01-26T00:00:00Z"))
    rep = build_report(full.source(), JAN, now=NOW)
    assert rep["coverage"]["latest"]["snapshot_read"] is False
    prob = [p for p in rep["problems"] if p["table"] == "snapshots"]
    assert len(prob) == 1 and "NoSuchKey" in prob[0]["error"]
    assert "its gaps are unknown" in to_html(rep)


def _strip(doc):
    return {k: v for k, v in doc.items() if k not in ("source", "generated_at")}


def test_export_then_offline_report_is_the_same(full, tmp_path):
    live = build_report(full.source(), JAN, now=NOW)
    tables, snaps = select_for_export(full.source(), JAN)
    manifest = write_export(
        tmp_path / "x", period=JAN, source=full.source().describe(), tables=tables,
        snapshots=snaps,
    )  # fmt: skip
    assert {k: v["lines"] for k, v in manifest["files"].items()} == {
        "findings.jsonl": 8,  # 7 in the period + the unreadable one
        "actions.jsonl": 15,  # 14 items of the findings active in the period + the broken one
        "coverage.jsonl": 5,  # 4 in the period + the unreadable one
        "snapshots.jsonl": 1,
    }
    offline = build_report(DirectorySource(tmp_path / "x"), JAN, now=NOW)
    assert _strip(offline)["summary"] == _strip(live)["summary"]
    for section in ("coverage", "findings", "response", "controls", "scope"):
        assert offline[section] == live[section], section
    assert [p["table"] for p in offline["problems"]] == [p["table"] for p in live["problems"]]
    assert (
        offline["problems"][0]["ref"]
        == "findings.jsonl:" + offline["problems"][0]["ref"].split(":")[-1]
    )


def test_a_changed_export_is_refused(full, tmp_path):
    tables, snaps = select_for_export(full.source(), JAN)
    write_export(tmp_path / "x", period=JAN, source={}, tables=tables, snapshots=snaps)
    path = tmp_path / "x" / "findings.jsonl"
    path.write_text(path.read_text() + "{}\n")
    with pytest.raises(SourceError, match="sha256 does not match"):
        DirectorySource(tmp_path / "x")
    with pytest.raises(SourceError, match="not an empty directory"):
        write_export(tmp_path / "x", period=JAN, source={}, tables={}, snapshots=[])


def test_a_line_that_is_not_json_is_reported(tmp_path):
    good = {"pk": "finding#a", "sk": "finding", "id": "a", "rule_id": "process.reverse-shell",
            "title": "t", "severity": 5, "first_seen": 1767225600000,
            "last_seen": 1767225600000}  # fmt: skip
    write_export(tmp_path / "x", period=JAN, source={}, tables={"findings": [good]}, snapshots=[])
    path = tmp_path / "x" / "findings.jsonl"
    path.write_text(path.read_text() + '{"pk": "finding#b", \n')
    manifest_path = tmp_path / "x" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    import hashlib

    manifest["files"]["findings.jsonl"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    rep = build_report(DirectorySource(tmp_path / "x"), JAN, now=NOW)
    assert rep["summary"]["findings"] == 1
    assert rep["problems"] == [
        {"table": "findings", "ref": "findings.jsonl:2", "error": rep["problems"][0]["error"]}
    ]
    assert rep["problems"][0]["error"].startswith("not JSON")


def test_cli_live_export_and_offline(full, tmp_path, capsys):
    html_out = tmp_path / "r.html"
    assert cli("--from", "2026-01-01", "--to", "2026-01-31", *live_args(),
               "--out", str(html_out)) == 0  # fmt: skip
    assert "3 item(s) could not be read" in capsys.readouterr().err
    assert html_out.read_text().startswith("<!DOCTYPE html>")
    export = tmp_path / "export"
    assert cli("--from", "2026-01-01", "--to", "2026-01-31", *live_args(),
               "--export", str(export)) == 0  # fmt: skip
    assert (export / "manifest.json").is_file()
    out = tmp_path / "r.json"
    assert cli("--input", str(export), "--format", "json", "--out", str(out)) == 0
    doc = json.loads(out.read_text())
    assert doc["source"]["kind"] == "export" and doc["summary"]["findings"] == 7
    # a narrower period than the export's is fine; a wider one is refused
    assert cli("--input", str(export), "--from", "2026-01-10", "--to", "2026-01-12",
               "--format", "csv", "--out", str(tmp_path / "c.zip")) == 0  # fmt: skip
    with pytest.raises(CliError, match="not within the export"):
        cli("--input", str(export), "--from", "2025-12-01", "--to", "2026-01-31")


def test_cli_bad_input(tmp_path):
    with pytest.raises(CliError, match="--findings-table, --actions-table"):
        cli("--from", "2026-01-01", "--to", "2026-01-31", "--bucket", "b")
    with pytest.raises(CliError, match=r"ends .* before it starts"):
        cli("--from", "2026-02-01", "--to", "2026-01-01", *live_args())
    with pytest.raises(CliError, match="not an ISO 8601"):
        cli("--from", "last tuesday", "--to", "2026-01-01", *live_args())
    with pytest.raises(CliError, match="--from and --to are required"):
        cli(*live_args())
    with pytest.raises(CliError, match=r"no manifest\.json"):
        cli("--input", str(tmp_path))


def test_period_bounds():
    p = Period.parse("2026-01-01", "2026-01-31")
    assert p.to_dict() == {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
    assert p.contains(p.start_ms) and not p.contains(p.end_ms)
    assert p.overlaps(p.start_ms - 10, p.start_ms)  # ends at the start: still active in it
    assert not p.overlaps(p.end_ms, p.end_ms + 10)  # starts at the (exclusive) end
    t = Period.parse("2026-01-01T12:00:00+02:00", "2026-01-01T13:00:00")
    assert t.to_dict() == {"from": "2026-01-01T10:00:00Z", "to": "2026-01-01T13:00:00Z"}
