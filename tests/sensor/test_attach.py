"""The three ways to attach the sensor, through the real runtime client (`ramparts invoke`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ramparts_cli.invoke import run_invocations

CODE = Path(__file__).resolve().parents[1] / "fixtures" / "functions" / "attach"
EVENTS = [{"n": 1}, {"n": 2, "shell": True}, {"n": 3, "raise": True}]

ATTACH = {
    "exec-wrapper": ("app.handler", {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper"}),
    "handler-redirect": ("ramparts.handler", {"RAMPARTS_HANDLER": "app.handler"}),
    "decorator": ("decorated.handler", {}),
}


def _norm(value: Any) -> Any:
    """Leave out what differs between sandboxes: pids, and the size of the environment."""
    import re

    if isinstance(value, str):
        return re.sub(r"/proc/\d+/", "/proc/PID/", value)
    if isinstance(value, dict):
        return {k: (v > 0 if k == "environ_bytes" else _norm(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_norm(v) for v in value)
    return value


def sensor_lines(log_lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in log_lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "ramparts" in obj:
            out.append(obj)
    return out


def behaviour(mode: str, attach: str) -> tuple[list[Any], list[tuple[Any, ...]], dict[str, Any]]:
    handler, env = ATTACH[attach]
    result = run_invocations(handler, CODE, EVENTS, env={**env, "RAMPARTS_MODE": mode}, timeout=30)
    lines = sensor_lines(result.log_lines)
    [start] = [e for e in lines if e["kind"] == "sensor.start"]
    assert start["attach"] == attach
    seen = [
        (
            e["kind"],
            e["rule"],
            e["verdict"],
            e.get("path") or e.get("executable"),
            e["request_id"] is not None,
        )
        for e in lines
        if e.get("verdict") in ("alert", "block")
    ]
    summaries = [
        (e["invocation"], e["counts"], e.get("error"))
        for e in lines
        if e["kind"] == "invocation.summary" and e["phase"] == "invoke"
    ]
    responses = [
        {k: v for k, v in (r.payload or {}).items() if k not in ("pid", "requestId", "stackTrace")}
        for r in result.responses
    ]
    return _norm(responses), _norm(seen), {"summaries": summaries, "lines": lines, "result": result}


@pytest.mark.parametrize("mode", ["monitor", "enforce"])
def test_three_attach_paths_behave_the_same(mode):
    results = {attach: behaviour(mode, attach) for attach in ATTACH}
    reference = results["exec-wrapper"]
    for attach, (responses, seen, extra) in results.items():
        assert responses == reference[0], attach
        assert seen == reference[1], attach
        assert extra["summaries"] == reference[2]["summaries"], attach
    responses, seen, extra = reference
    # the sensor saw the sensitive read and the shell in the invocation that made them
    assert (
        "file.read",
        "default.sensitive-read",
        "block" if mode == "enforce" else "alert",
        seen[0][3],
        True,
    ) in seen
    assert any(s[0] == "process.spawn" and s[1] == "default.shell" for s in seen)
    if mode == "enforce":
        assert "Ramparts blocked" in responses[0]["environ_blocked"]
        assert responses[1]["shell"].startswith("blocked: ")
    else:
        assert responses[1]["shell"] == "ran"
    # the handler that raised: Lambda's error response, and the summary says so
    assert responses[2]["errorType"] == "RuntimeError"
    assert [s[2] for s in extra["summaries"]] == [None, None, "RuntimeError"]
    # one warm sandbox served all three
    assert len({r.payload.get("pid") for r in extra["result"].responses[:2]}) == 1


def test_runtime_traffic_and_normal_work_are_never_reported_even_in_learn_mode():
    _, _, extra = behaviour("learn", "exec-wrapper")
    lines = extra["lines"]
    assert not [e for e in lines if e["kind"].startswith("network.")], lines
    # the /tmp cache write is recorded in learn mode, as allowed
    writes = [e for e in lines if e["kind"] == "file.write"]
    assert writes and {e["verdict"] for e in writes} == {"allow"}


def test_init_error_looks_the_same_with_the_sensor():
    plain = run_invocations("broken_import.handler", CODE, [{}], timeout=30)
    wrapped = run_invocations(
        "broken_import.handler",
        CODE,
        [{}],
        env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper", "RAMPARTS_MODE": "learn"},
        timeout=30,
    )
    assert plain.init_error is not None and wrapped.init_error is not None
    assert (
        wrapped.init_error["errorType"]
        == plain.init_error["errorType"]
        == "Runtime.ImportModuleError"
    )
    assert wrapped.init_error["errorMessage"] == plain.init_error["errorMessage"]
    assert "broken_import" in wrapped.init_error["errorMessage"]
    # posting the init error is the runtime's own traffic: not reported
    assert not [e for e in sensor_lines(wrapped.log_lines) if e["kind"].startswith("network.")]


def test_handler_redirect_without_the_real_handler_says_what_to_do():
    result = run_invocations("ramparts.handler", CODE, [{}], timeout=30)
    assert result.init_error is not None
    assert "RAMPARTS_HANDLER" in result.init_error["errorMessage"]


def test_off_mode_with_the_wrapper_changes_nothing():
    result = run_invocations(
        "app.handler",
        CODE,
        [{"shell": True}],
        env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper", "RAMPARTS_MODE": "off"},
        timeout=30,
    )
    assert result.responses[0].ok and result.responses[0].payload["shell"] == "ran"
    assert sensor_lines(result.log_lines) == []
