"""``ramparts replay --findings``: the ingest pipeline over recorded telemetry, locally.

stdout carries OCSF Detection Findings, one per line, each once in its final state; stderr
the rejects, rule failures and one summary line.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from collectors.model import from_ocsf
from ramparts_cli import main
from tests.ocsf import validate_ocsf

ROOT = Path(__file__).resolve().parents[2]
LINES = ROOT / "tests" / "collectors" / "samples" / "layer" / "sensor-lines.jsonl"
ACCOUNT = "111122223333"
REGION = "eu-west-1"
IDENTITY = ("--function", "orders", "--account", ACCOUNT, "--region", REGION)
WORKLOAD = f"lambda:arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders"

SUMMARY = re.compile(
    r"ramparts replay: (?P<events>\d+) events \((?P<by>[^)]*)\); (?P<alerts>\d+) alerts "
    r"\((?P<suppressed_alerts>\d+) suppressed(?:, (?P<repeats>\d+) already counted)?\); "
    r"(?P<findings>\d+) findings; (?P<suppressed>\d+) suppressed findings \(not shown\); "
    r"(?P<rejected>\d+) rejected; (?P<skipped>\d+) skipped; (?P<failures>\d+) rule failures"
)


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    @property
    def findings(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]

    def of(self, rule_id: str) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["metadata"]["event_code"] == rule_id]

    @property
    def summary(self) -> dict[str, int]:
        last = self.err.splitlines()[-1]
        m = SUMMARY.fullmatch(last)
        assert m, last
        return {k: int(v or 0) for k, v in m.groupdict().items() if k != "by"}


@pytest.fixture
def replay(monkeypatch, capsys):
    monkeypatch.setattr(main, "_COMMAND_MODULES", ("ramparts_cli.replay",))

    def run(*argv: str | Path) -> Run:
        capsys.readouterr()
        try:
            code = main.main(["replay", *(str(a) for a in argv)])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def blocked_lines() -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in LINES.read_text().splitlines()]
    return [d for d in lines if d.get("verdict") == "block"]


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_blocked_events_become_valid_detection_findings(replay):
    run = replay("--findings", LINES, *IDENTITY)
    assert run.code == 0, run.err
    for f in run.findings:
        assert validate_ocsf(f) == [], f
        assert f["class_uid"] == 2004
        assert from_ocsf(f).to_ocsf() == f
    blocked = run.of("layer.blocked")
    want = {f"{d['kind']}:{d['rule']}" for d in blocked_lines()}
    assert len(want) == 4
    assert {f["unmapped"]["ramparts"]["grouping_key"] for f in blocked} == want
    for f in blocked:
        assert f["count"] == 1
        assert f["resources"][0]["uid"] == WORKLOAD.split(":", 1)[1]
        assert f["activity_name"] == "Create"
    ids = [f["finding_info"]["uid"] for f in run.findings]
    assert len(ids) == len(set(ids))  # each finding printed once
    s = run.summary
    assert s["events"] == 122
    assert s["findings"] == len(run.findings)
    assert s["rejected"] == s["failures"] == s["suppressed"] == s["repeats"] == 0
    assert s["alerts"] == sum(f["count"] for f in run.findings)


def test_findings_in_order_of_first_occurrence(replay):
    run = replay("--findings", LINES, *IDENTITY)
    firsts = [f["finding_info"]["first_seen_time"] for f in run.findings]
    assert firsts == sorted(firsts)


def test_the_same_events_twice_are_counted_once(replay):
    once = replay("--findings", LINES, *IDENTITY)
    twice = replay("--findings", LINES, LINES, *IDENTITY)
    assert twice.code == 0
    assert twice.out == once.out
    s1, s2 = once.summary, twice.summary
    assert s2["events"] == 2 * s1["events"]
    assert s2["alerts"] == 2 * s1["alerts"]
    assert s2["repeats"] == s1["alerts"]
    assert s2["findings"] == s1["findings"]


def test_repeats_merge_into_one_finding(replay, tmp_path):
    first = blocked_lines()[1]  # the credential endpoint
    repeats = [dict(first, seq=first["seq"] + 100 * i, time=first["time"] + i) for i in range(3)]
    path = write_lines(tmp_path / "repeats.jsonl", repeats)
    run = replay("--findings", path, *IDENTITY)
    assert run.code == 0, run.err
    [f] = run.of("layer.blocked")
    assert f["count"] == 3
    assert f["finding_info"]["first_seen_time"] == first["time"]
    assert f["finding_info"]["last_seen_time"] == first["time"] + 2
    assert len(f["finding_info"]["related_events"]) == 3
    assert f["activity_name"] == "Create"  # repeats within the window are not published again
    assert validate_ocsf(f) == []


def test_an_update_after_the_window_is_the_final_state(replay, tmp_path):
    first = blocked_lines()[1]
    later = dict(first, seq=first["seq"] + 1000, time=first["time"] + 600_000)
    one = write_lines(tmp_path / "one.jsonl", [first])
    two = write_lines(tmp_path / "two.jsonl", [later])
    # One file is one ingest batch: a batch publishes a finding at most once (created).
    [f] = replay("--findings", write_lines(tmp_path / "x.jsonl", [first, later]), *IDENTITY).of(
        "layer.blocked"
    )
    assert (f["count"], f["activity_name"]) == (2, "Create")
    # Two batches, the second past the rule's window with a higher count: updated.
    [f] = replay("--findings", one, two, *IDENTITY).of("layer.blocked")
    assert (f["count"], f["activity_name"]) == (2, "Update")
    assert f["finding_info"]["last_seen_time"] == later["time"]
    assert validate_ocsf(f) == []
    # Within the window: merged, not published again.
    soon = write_lines(tmp_path / "soon.jsonl", [dict(later, time=first["time"] + 1000)])
    [f] = replay("--findings", one, soon, *IDENTITY).of("layer.blocked")
    assert (f["count"], f["activity_name"]) == (2, "Create")


def tuning(tmp_path: Path, expires: str) -> Path:
    path = tmp_path / f"tuning-{expires}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            exceptions:
              - id: orders-blocks
                rule: layer.blocked
                reason: the orders function is a red-team target
                expires: {expires}
                resource: "*:function:orders"
            """
        )
    )
    return path


def test_a_tuning_exception_suppresses_and_counts(replay, tmp_path):
    plain = replay("--findings", LINES, *IDENTITY)
    run = replay("--findings", LINES, *IDENTITY, "--tuning", tuning(tmp_path, "2099-12-31"))
    assert run.code == 0, run.err
    assert run.of("layer.blocked") == []
    others = [f for f in plain.findings if f["metadata"]["event_code"] != "layer.blocked"]
    assert run.findings == others
    s = run.summary
    assert s["suppressed"] == 4
    assert s["suppressed_alerts"] == 4
    assert s["findings"] == plain.summary["findings"] - 4


def test_an_expired_exception_does_not_suppress(replay, tmp_path):
    plain = replay("--findings", LINES, *IDENTITY)
    path = tuning(tmp_path, "2020-01-31")
    run = replay("--findings", LINES, *IDENTITY, "--tuning", path)
    assert run.code == 0
    assert run.out == plain.out
    assert len(run.of("layer.blocked")) == 4
    assert f"{path}: exception orders-blocks expired 2020-01-31T23:59:59+00:00" in run.err
    assert run.summary["suppressed"] == 0


def test_tuning_disable_and_severity(replay, tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"severity": {"layer.blocked": "low"}}))
    run = replay("--findings", LINES, *IDENTITY, "--tuning", path)
    assert {f["severity"] for f in run.of("layer.blocked")} == {"Low"}
    path.write_text(json.dumps({"disable": ["layer.blocked"]}))
    run = replay("--findings", LINES, *IDENTITY, "--tuning", path)
    assert run.of("layer.blocked") == []
    assert run.summary["suppressed"] == 0  # disabled: never evaluated


USER_RULES = '''
from collectors.model import ProcessActivity
from collectors.rules import LOW, Hit, rule


@rule(id="user.new-program", title="A program this function never ran", severity=LOW,
      techniques=["T1059"], sources=["layer"], classes=[ProcessActivity])
def new_program(event, ctx):
    """A program not in the function's baseline."""
    path = event.process.file.path if event.process.file else ""
    if path and ctx.baseline.known(ctx.workload_key, "program", path, ctx.now_ms) is False:
        return Hit(key=path)
    return None


@rule(id="user.boom", title="raises", severity=LOW, techniques=["T1059"],
      sources=["layer"], classes=[ProcessActivity])
def boom(event, ctx):
    """Always raises."""
    raise RuntimeError("rule bug")
'''


def test_user_rules_baseline_and_rule_failures(replay, tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "mine.py").write_text(USER_RULES)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({WORKLOAD: {"program": ["/usr/bin/echo"]}}))
    run = replay("--findings", LINES, *IDENTITY, "--rules", folder, "--baseline", baseline)
    assert run.code == 1  # a rule failed
    lines = [json.loads(line) for line in LINES.read_text().splitlines()]
    spawns = [d for d in lines if d["kind"] == "process.spawn"]
    processes = [d for d in lines if d["kind"] in ("process.spawn", "process.env")]
    failures = [line for line in run.err.splitlines() if line.startswith("rule user.boom")]
    assert len(failures) == len(processes) == run.summary["failures"]
    assert failures[0].endswith(": RuntimeError: rule bug")
    assert re.match(r"rule user\.boom failed on event layer:\S+: ", failures[0])
    new = run.of("user.new-program")
    keys = {f["unmapped"]["ramparts"]["grouping_key"] for f in new}
    assert keys == {d["executable"] for d in spawns} - {"/usr/bin/echo"}
    for f in new:
        assert validate_ocsf(f) == []
    # Without a baseline the workload is still learning: nothing is new.
    run = replay("--findings", LINES, *IDENTITY, "--rules", folder)
    assert run.of("user.new-program") == []


def test_rejects_are_reported_and_the_rest_goes_on(replay, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(blocked_lines()[0]) + "\n" + '{"what": "nothing"}\n')
    run = replay("--findings", path, *IDENTITY)
    assert run.code == 1
    assert f"{path}:2: unknown: no adapter recognises this record" in run.err
    assert len(run.of("layer.blocked")) == 1
    assert run.summary["rejected"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--baseline", "{missing}"), "missing: No such file or directory"),
        (("--baseline", "{list}"), "a baseline is JSON {workload key: {kind: [values]}}"),
        (("--baseline", "{nested}"), ".program: a list of strings"),
        (("--tuning", "{list}"), "a tuning file is a mapping"),
        (("--tuning", "{missing}"), "missing: No such file or directory"),
        (("--rules", "{missing}"), "missing: not a folder"),
    ],
)
def test_bad_options_are_exit_2(replay, tmp_path, args, message):
    files = {
        "missing": tmp_path / "missing",
        "list": tmp_path / "list.json",
        "nested": tmp_path / "nested.json",
    }
    files["list"].write_text("[1, 2]")
    files["nested"].write_text(json.dumps({WORKLOAD: {"program": "echo"}}))
    argv = [a.format(**files) for a in args]
    run = replay("--findings", LINES, *IDENTITY, *argv)
    assert run.code == 2
    assert run.out == ""
    assert message in run.err


def test_finding_options_need_findings(replay, tmp_path):
    run = replay(LINES, "--tuning", tmp_path / "t.yaml")
    assert run.code == 2
    assert "--tuning needs --findings" in run.err
