"""`ramparts demo`: the documented first command, run the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from ramparts_cli import _netns


def test_demo_sees_attacks_in_monitor_and_blocks_them_in_enforce():
    proc = subprocess.run(
        [sys.executable, "-m", "ramparts_cli", "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["passed"] is True
    outcomes = report["outcomes"]
    assert report["isolated_network"] is _netns.netns_available()
    by = {(o["mode"], o["title"]): o for o in outcomes}
    # benign work: answered, no alerts, in both modes
    for o in outcomes:
        if o["kind"] == "benign":
            assert o["response"]["ok"] is True and o["rules"] == [], o
    # the IAM call went through in monitor mode and was stopped in enforce mode
    iam_monitor = by[("monitor", "an unexpected IAM call")]
    iam_enforce = by[("enforce", "an unexpected IAM call")]
    assert iam_monitor["response"]["ok"] is True and iam_monitor["verdicts"] == ["alert"]
    assert iam_enforce["response"]["ok"] is False
    assert "Ramparts blocked aws.call iam:ListUsers" in iam_enforce["response"]["error"]
    # every attack in enforce mode was blocked by the rule the demo expects
    for o in outcomes:
        if o["kind"] == "attack" and o["mode"] == "enforce":
            assert "block" in o["verdicts"] and set(o["expected_rules"]) <= set(o["rules"]), o
    if report["isolated_network"]:
        ssrf = by[("enforce", "SSRF to the instance credential endpoint")]
        [event] = [e for e in ssrf["sensor_events"] if e["kind"] == "network.connect"]
        assert (event["ip"], event["port"]) == ("169.254.169.254", 80)
        assert event["location"]["file"].endswith("examples/functions/vulnerable/app.py")
