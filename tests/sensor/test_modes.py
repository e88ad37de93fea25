"""Modes, policies (good and broken), summaries, idempotence, uninstall and tampering."""

from __future__ import annotations

from tests.sensor.conftest import run_case

ATTACK = """
import os
attempt("environ", lambda: len(open("/proc/self/environ", "rb").read()))
attempt("shell", lambda: os.system("true"))
"""


def test_off_mode_installs_nothing():
    r = run_case(
        ATTACK + "import sys\nattempt('hooked', lambda: getattr(sys, '_ramparts_hooked', False))",
        env={"RAMPARTS_MODE": "off"},
    )
    assert r.events == []
    assert r.results["hooked"] == {"ok": True, "value": False}
    assert r.results["environ"]["ok"] and r.results["shell"]["ok"]


def test_monitor_is_the_default_and_never_blocks():
    r = run_case(ATTACK)
    [start] = r.kinds("sensor.start")
    assert start["mode"] == "monitor"
    assert {a["rule"] for a in r.alerts()} == {"default.sensitive-read", "default.shell"}
    assert all(a["verdict"] == "alert" for a in r.alerts())
    assert r.results["environ"]["ok"] and r.results["shell"]["ok"]


def test_broken_policy_falls_back_to_monitor_with_defaults_and_says_why(tmp_path):
    for policy in (
        "egres:\n  allow: [x]\n",  # typo'd key
        '{"egress": {"allow": ["10.0.0.0/33"]}}',  # bad CIDR, inline JSON
        "egress: {allow: [",  # broken YAML
        "/nonexistent/policy.yaml",  # missing file
    ):
        r = run_case(ATTACK, env={"RAMPARTS_MODE": "enforce", "RAMPARTS_POLICY": policy})
        [err] = r.kinds("sensor.policy_error")
        assert err["errors"], policy
        assert "monitor" in err["fallback"]
        assert "ramparts: policy rejected" in r.stderr
        [start] = r.kinds("sensor.start")
        assert start["mode"] == "monitor", policy
        # the built-in defaults still report, nothing is blocked, the function runs on
        assert {a["rule"] for a in r.alerts()} == {"default.sensitive-read", "default.shell"}
        assert r.results["shell"]["ok"], policy


def test_typo_in_policy_is_explained_with_a_suggestion():
    r = run_case("", env={"RAMPARTS_POLICY": '{"proces": {"allow": []}}'})
    [err] = r.kinds("sensor.policy_error")
    assert any("did you mean 'process'" in e for e in err["errors"]), err


def test_invalid_mode_value():
    r = run_case(ATTACK, env={"RAMPARTS_MODE": "block-everything"})
    [err] = r.kinds("sensor.policy_error")
    assert "RAMPARTS_MODE" in err["errors"][0]
    assert r.results["shell"]["ok"]


def test_policy_file_in_yaml_relative_to_task_root(tmp_path):
    (tmp_path / "ramparts.yaml").write_text(
        "# the function's policy\nprocess:\n  mode: enforce\n  allow: [/usr/bin/ls, /bin/ls]\n"
    )
    r = run_case(
        ATTACK,
        env={"RAMPARTS_POLICY": "ramparts.yaml", "LAMBDA_TASK_ROOT": str(tmp_path)},
        isolate=False,  # the policy lives in pytest's tmp_path (under /tmp)
    )
    [start] = r.kinds("sensor.start")
    assert start["policy"] == str(tmp_path / "ramparts.yaml")
    assert start["modes"]["process"] == "enforce" and start["modes"]["files"] == "monitor"
    assert r.results["shell"]["ramparts"] is True  # process section enforces
    assert r.results["environ"]["ok"] is True  # files section only monitors


def test_env_monitor_caps_a_policy_that_enforces():
    policy = '{"mode": "enforce", "process": {"mode": "enforce"}}'
    r = run_case(ATTACK, env={"RAMPARTS_MODE": "monitor", "RAMPARTS_POLICY": policy})
    assert r.results["shell"]["ok"] is True
    assert r.alerts("default.shell")[0]["verdict"] == "alert"


def test_disabled_default_rule():
    policy = '{"defaults": {"disable": ["default.shell"]}}'
    r = run_case(ATTACK, env={"RAMPARTS_MODE": "enforce", "RAMPARTS_POLICY": policy})
    assert r.results["shell"]["ok"] is True
    assert r.results["environ"]["ramparts"] is True


def test_learn_mode_records_allowed_events_once_per_invocation():
    r = run_case(
        """
import subprocess
for _ in range(5):
    open("/tmp/ramparts-cache", "w").close()
    subprocess.run(["ls", "/"], capture_output=True)
""",
        env={"RAMPARTS_MODE": "learn"},
    )
    writes = [e for e in r.kinds("file.write") if e["path"] == "/tmp/ramparts-cache"]
    spawns = r.kinds("process.spawn")
    assert len(writes) == 2  # create once, then write once (deduplicated)
    assert len(spawns) == 1 and spawns[0]["verdict"] == "allow"


def test_summaries_per_invocation_with_repeats_and_a_cap():
    r = run_case(
        """
import os
@__import__("ramparts").protect
def handler(event, context):
    for i in range(event["n"]):
        try:
            open(f"/srv/f{i % event['distinct']}", "w").close()
        except OSError:
            pass
    return "done"
class Ctx:
    aws_request_id = "req-1"
attempt("first", lambda: handler({"n": 10, "distinct": 2}, Ctx()))
Ctx.aws_request_id = "req-2"
attempt("second", lambda: handler({"n": 10, "distinct": 10}, Ctx()))
""",
        env={"RAMPARTS_MAX_ALERTS": "3"},
        tmpfs=("/srv",),
    )
    s1, s2 = r.summaries()
    assert (s1["request_id"], s2["request_id"]) == ("req-1", "req-2")
    for s in (s1, s2):
        lines = [a for a in r.alerts() if a.get("request_id") == s["request_id"]]
        assert s["counts"]["file.write"]["alert"] == s["alerts"] == 10
        assert len(lines) <= 3  # capped per invocation ...
        # ... and every alert is accounted for: printed, merged as a repeat, or suppressed
        assert len(lines) + s["repeats"] + s["suppressed"] == 10
    assert s1["repeats"] > 0  # the same two files again and again
    assert s2["suppressed"] == 7  # ten different files, three printed


def test_handler_that_raises_still_gets_a_summary_and_the_error_propagates():
    r = run_case(
        """
import ramparts
@ramparts.protect
def handler(event, context):
    raise ValueError("boom")
attempt("call", lambda: handler({}, None))
"""
    )
    assert r.results["call"]["type"] == "ValueError"
    [s] = r.summaries()
    assert s["error"] == "ValueError"


def test_install_and_protect_are_idempotent():
    r = run_case(
        """
import ramparts
again = ramparts.install()
attempt("same", lambda: again is SENSOR)
def h(e, c):
    return 1
p = ramparts.protect(ramparts.protect(h))
attempt("single_wrap", lambda: p.__wrapped__ is h)
attempt("call", lambda: p({}, None))
import socket
"""
    )
    assert len(r.kinds("sensor.start")) == 1
    assert r.results["same"]["value"] is True and r.results["single_wrap"]["value"] is True
    assert len(r.summaries()) == 1


def test_uninstall_restores_wrappers_and_stops_reporting():
    r = run_case(
        """
import os, socket, ramparts
orig_open = os.open.__ramparts_wrapped__
orig_gai = socket.getaddrinfo.__ramparts_wrapped__
ramparts.uninstall()
attempt("os_open", lambda: os.open is orig_open)
attempt("gai", lambda: socket.getaddrinfo is orig_gai)
os.system("true")
""",
    )
    assert r.results["os_open"]["value"] is True and r.results["gai"]["value"] is True
    # uninstalling is visible (an attacker could call it too), and then nothing is watched
    assert [a["rule"] for a in r.alerts()] == ["tamper.uninstall"]


def test_tampering_is_made_visible():
    r = run_case(
        """
import socket, sys, ramparts
@ramparts.protect
def handler(event, context):
    socket.getaddrinfo = lambda *a, **k: []
    sys.addaudithook(lambda e, a: None)
handler({}, None)
"""
    )
    rules = {a["rule"] for a in r.kinds("sensor.tamper")}
    assert rules == {"tamper.unwrapped", "tamper.audit-hook"}


def test_switching_the_sensor_off_from_inside_is_visible_or_blocked():
    r = run_case(
        """
import ramparts, ramparts._sensor as core
@ramparts.protect
def handler(event, context):
    sensor = ramparts.active()
    core._ACTIVE = None                       # re-pointing the module global does nothing
    attempt("shell_after_global", lambda: __import__("os").system("true"))
    attempt("patch_class", lambda: setattr(core.Sensor, "report", lambda *a, **k: "allow"))
    sensor._handlers.clear()                 # silent until the end of the invocation
handler({}, None)
""",
        env={"RAMPARTS_MODE": "enforce"},
    )
    assert r.results["shell_after_global"]["ramparts"] is True
    # replacing a method cannot be stopped from inside Python, but it is reported
    rules = {a["rule"] for a in r.kinds("sensor.tamper")}
    assert {"tamper.patch", "tamper.handlers"} <= rules


def test_sensor_failures_are_contained():
    # GIVEN a sensor whose file judgement is broken
    r = run_case(
        """
def broken(*a, **k):
    raise RuntimeError("sensor bug")
SENSOR._judge_write = broken
attempt("write", lambda: open("/tmp/ramparts-x", "w").write("fine"))
"""
    )
    assert r.results["write"] == {"ok": True, "value": 4}
    [err] = r.kinds("sensor.error")
    assert "sensor bug" in err["error"]
