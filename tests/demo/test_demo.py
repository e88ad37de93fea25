"""`ramparts demo`: the documented first command, run the way a user runs it (JSON form)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ramparts_cli import _netns

VULNERABLE, HEALTHY = "orders-dashboard", "orders-api"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    html = tmp_path_factory.mktemp("demo") / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "ramparts_cli", "demo", "--json", "--report", str(html)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"report": json.loads(proc.stdout), "html": html}


def test_sensor_sees_attacks_in_monitor_and_blocks_them_in_enforce(run: dict[str, Any]) -> None:
    report = run["report"]
    assert report["isolated_network"] is _netns.netns_available()
    outcomes = report["outcomes"]
    by = {(o["mode"], o["title"]): o for o in outcomes}
    for o in outcomes:
        if o["kind"] == "benign":
            assert o["response"]["ok"] is True and o["rules"] == [], o
        elif o["mode"] == "enforce":
            assert "block" in o["verdicts"] and set(o["expected_rules"]) <= set(o["rules"]), o
        else:
            assert o["verdicts"] == ["alert"] and set(o["expected_rules"]) <= set(o["rules"]), o
    iam_monitor = by[("monitor", "an unexpected IAM call")]
    iam_enforce = by[("enforce", "an unexpected IAM call")]
    # the call reached the local account (moto) and listed its user, then was stopped
    assert iam_monitor["response"]["result"]["Users"][0]["UserName"] == "admin"
    assert "Ramparts blocked aws.call iam:ListUsers" in iam_enforce["response"]["error"]
    attacks = {o["title"] for o in outcomes if o["kind"] == "attack"}
    if report["isolated_network"]:
        assert len(attacks) == 4 and report["skipped"] == []
        ssrf = by[("enforce", "SSRF to the instance credential endpoint")]
        [event] = [e for e in ssrf["sensor_events"] if e["kind"] == "network.connect"]
        assert (event["ip"], event["port"]) == ("169.254.169.254", 80)
        assert event["location"]["file"].endswith("/app.py")
    else:
        assert len(attacks) == 2 and len(report["skipped"]) == 2


def test_platform_comes_from_the_synthesized_core_stack(run: dict[str, Any]) -> None:
    platform = run["report"]["platform"]
    created = platform["created"]
    assert created["AWS::StepFunctions::StateMachine"] == 5
    assert created["AWS::DynamoDB::Table"] == 3
    assert created["AWS::Events::EventBus"] == 1
    assert created["AWS::S3::Bucket"] == 2
    assert created["AWS::Lambda::Function"] >= 12  # ingest + responders
    assert set(platform["not_created"]) == {"AWS::Lambda::EventSourceMapping"}
    assert platform["outputs"]["FindingsTable"] == "ramparts-findings"
    assert any("states target" in r for r in platform["routed_by_demo"])


def test_findings_playbook_runs_and_final_state(run: dict[str, Any]) -> None:
    report = run["report"]
    assert report["passed"] is True and all(report["checks"].values()), report["checks"]
    findings = report["findings"]
    rules = {f["rule_id"] for f in findings}
    assert {"process.reverse-shell", "network.credential-endpoint", "layer.blocked"} <= rules
    assert all(f["resource"].endswith(f":function:{VULNERABLE}") for f in findings)
    # every ingest delivery went through the real handler
    assert sum(i["created"] for i in report["ingest"]) == len(findings)

    runs = report["playbook_runs"]
    assert runs and all(r["status"] == "SUCCEEDED" for r in runs)
    # one containment of the function, however many findings: the first finding claims it
    # and waits for `ramparts approve`; the others are recorded as skipped
    (approved,) = [r for r in runs if r["approved_with_ramparts_approve"]]
    assert approved["response_status"] == "applied"
    assert len(report["approvals"]) == 1
    others = [r for r in runs if r is not approved]
    assert others and all(r["response_status"] == "skipped" for r in others)
    assert all(approved["finding"] in str(r["response_reason"]) for r in others)
    assert all(not [a for a in r["actions"] if a["status"] == "applied"] for r in others)
    actions = {a["action"] for r in runs for a in r["actions"] if a["status"] == "applied"}
    assert {"tag", "concurrency", "url", "revoke"} <= actions
    changes = {
        (a["before"], a["after"])
        for r in runs
        for a in r["actions"]
        if a["action"] == "concurrency"
    }
    assert ("5", "0") in changes  # the first containment saw the function's own setting

    before, after = report["functions"]["before"], report["functions"]["after"]
    vuln = after[VULNERABLE]
    assert vuln["reserved_concurrency"] == 0
    assert vuln["function_url"] is None
    assert vuln["tags"]["ramparts:contained"] in {f["id"] for f in findings}
    assert vuln["role_inline_policies"] == ["ramparts-revoke-sessions"]
    healthy = after[HEALTHY]
    assert healthy["reserved_concurrency"] == 10
    assert healthy["tags"] == {"app": "orders", "team": "payments"}
    assert healthy["role_inline_policies"] == before[HEALTHY]["role_inline_policies"] == []
    finals = {c["function"]: c for c in report["final_invocations"]}
    assert finals[VULNERABLE]["invoked"] is False
    assert finals[HEALTHY]["ok"] is True


def test_timeline_and_html_report(run: dict[str, Any]) -> None:
    report = run["report"]
    phases = [e["phase"] for e in report["timeline"]]
    for phase in ("platform", "deploy", "monitor", "enforce", "ingest", "respond", "approve"):
        assert phase in phases
    assert phases.index("monitor") < phases.index("enforce") < phases.index("approve")
    times = [e["t"] for e in report["timeline"]]
    assert times == sorted(times)
    page = Path(run["html"]).read_text()
    assert report["html_report"] == str(run["html"].resolve())
    assert "<svg" in page and "Playbook runs" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # self-contained
    for f in report["findings"]:
        assert f["id"] in page or f["rule_id"] in page
