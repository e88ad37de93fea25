"""``ramparts replay``: recorded layer logs in, OCSF events out, as a user runs it.

The samples are the real log streams of ``tests/collectors/samples/layer`` in their real
delivery formats. stdout carries only events (one JSON object per line); stderr carries the
rejects (``FILE:LINE [where]: source: reason``) and one summary line; the exit status says
whether anything was rejected.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collectors.model import from_ocsf
from ramparts_cli import main
from tests.ocsf import validate_ocsf

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "collectors" / "samples" / "layer"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
ORDERS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-dashboard"
MEDIA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:media-worker"


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    @property
    def events(self) -> list[dict[str, Any]]:
        """stdout: one OCSF event per line, nothing else."""
        return [json.loads(line) for line in self.out.splitlines()]

    @property
    def summary(self) -> str:
        lines = self.err.splitlines()
        assert lines and lines[-1].startswith("ramparts replay: "), self.err
        return lines[-1]

    @property
    def rejects(self) -> list[str]:
        return self.err.splitlines()[:-1]


@pytest.fixture
def replay(monkeypatch, capsys):
    """Run the real `ramparts` entry point in-process with `replay ARGS...`."""
    monkeypatch.setattr(main, "_COMMAND_MODULES", ("ramparts_cli.replay",))

    def run(*argv: str | Path) -> Run:
        capsys.readouterr()
        try:
            code = main.main(["replay", *(str(a) for a in argv)])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def check_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert validate_ocsf(event) == [], event
        assert from_ocsf(event).to_ocsf() == event


def sensor_count(payload: dict[str, Any]) -> tuple[int, int]:
    messages = [e["message"] for e in payload["logEvents"]]
    ours = sum(m.startswith('{"ramparts"') for m in messages)
    return ours, len(messages) - ours


# -- the samples, auto-detected and by explicit source --------------------------------------------
@pytest.mark.parametrize("source", ["auto", "cloudwatch-logs"])
def test_subscription_event(replay, source):
    run = replay(SAMPLES / "subscription-event.json", "--source", source, "--region", REGION)
    assert run.code == 0, run.err
    events = run.events
    check_events(events)
    assert [e["metadata"]["event_code"] for e in events] == [
        "process.spawn",
        "network.connect",
        "process.spawn",
        "aws.call",
    ]
    assert {e["device"]["uid"] for e in events} == {ORDERS}
    assert {e["disposition"] for e in events} == {"Blocked"}
    assert run.rejects == []
    assert run.summary == ("ramparts replay: 4 events (4 cloudwatch-logs); 0 rejected; 21 skipped")


def test_decoded_payload_document_and_json_line_agree(replay, tmp_path):
    document = SAMPLES / "decoded-payload.json"
    payload = json.loads(document.read_text())
    ours, other = sensor_count(payload)
    as_line = tmp_path / "payload.jsonl"
    as_line.write_text(json.dumps(payload) + "\n")
    from_document = replay(document, "--region", REGION)
    from_line = replay(as_line, "--region", REGION)
    assert from_document.code == from_line.code == 0
    assert from_document.out == from_line.out
    events = from_document.events
    check_events(events)
    assert {e["device"]["uid"] for e in events} == {MEDIA}
    assert f"; 0 rejected; {other} skipped" in from_document.summary
    assert len(events) < ours  # heartbeats are signals, not events


def test_kinesis_event_takes_the_region_of_its_records(replay):
    run = replay(SAMPLES / "kinesis-event.json")
    assert run.code == 0, run.err
    check_events(run.events)
    assert {e["device"]["uid"] for e in run.events} == {ORDERS}
    assert {e["cloud"]["region"] for e in run.events} == {REGION}


def test_control_message_is_skipped(replay):
    run = replay(SAMPLES / "control-message.json")
    assert (run.code, run.out) == (0, "")
    assert run.summary.endswith("; 0 rejected; 1 skipped")


@pytest.mark.parametrize("source", ["auto", "layer"])
def test_raw_sensor_lines_take_the_identity_the_operator_gives(replay, source):
    run = replay(
        SAMPLES / "sensor-lines.jsonl",
        "--source",
        source,
        "--function",
        "media-worker",
        "--account",
        ACCOUNT,
        "--region",
        REGION,
    )
    assert run.code == 0, run.err
    check_events(run.events)
    assert {e["device"]["uid"] for e in run.events} == {MEDIA}
    assert "events (" in run.summary and "layer); 0 rejected; 0 skipped" in run.summary


def test_raw_lines_without_identity_say_the_function_is_unknown(replay):
    run = replay(SAMPLES / "sensor-lines.jsonl", "--source", "layer")
    assert run.code == 0
    devices = {json.dumps(e["device"], sort_keys=True) for e in run.events}
    assert devices == {
        '{"name": "(unknown function)", "type": "AWS Lambda function", "type_id": 99}'
    }


def test_a_log_stream_as_text(replay):
    path = SAMPLES / "log-media-worker.log"
    lines = path.read_text().splitlines()
    ours = sum(x.startswith('{"ramparts"') for x in lines)
    run = replay(path, "--source", "layer", "--function", "media-worker")
    assert run.code == 0, run.err
    assert f"; 0 rejected; {len(lines) - ours} skipped" in run.summary
    # auto-detection knows the sensor's and Lambda's own lines, not the function's prints
    auto = replay(path, "--function", "media-worker")
    assert auto.code == 1
    assert auto.out == run.out
    assert all("no adapter recognises this record" in r for r in auto.rejects)
    printed = [x for x in lines if not x.startswith(('{"ramparts"', "START", "END", "REPORT"))]
    assert len(auto.rejects) == len(printed)


# -- rejects, summary and exit status -----------------------------------------------------------------
def test_rejects_name_file_line_and_reason_and_the_rest_goes_on(replay, tmp_path):
    lines = (SAMPLES / "sensor-lines.jsonl").read_text().splitlines()[:6]
    bad = json.loads(lines[2])
    bad["kind"] = "network.teleport"
    lines[2] = json.dumps(bad)
    lines.insert(4, lines[4][:-40])  # cut short
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    run = replay(path, "--source", "layer", "--function", "f")
    assert run.code == 1
    assert run.rejects == [
        f"{path}:3: layer: unknown kind 'network.teleport'",
        f"{path}:5: layer: looks like a Ramparts line but is not JSON: "
        + run.rejects[1].split("not JSON: ", 1)[1],
    ]
    good = len(run.events) + sum(1 for x in lines if '"sensor.start"' in x or "summary" in x)
    assert good >= 4
    assert "; 2 rejected; 0 skipped" in run.summary


def test_a_rejected_log_event_inside_a_payload(replay, tmp_path):
    payload = json.loads((SAMPLES / "custom-log-group.json").read_text())
    payload["logEvents"][1]["message"] = '{"ramparts": 1, "kind": "nope"}\n'
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload, indent=1))
    run = replay(path, "--region", REGION)
    assert run.code == 1
    assert run.rejects == [f"{path} logEvents[1]: layer: unknown kind 'nope'"]
    assert run.events  # the rest of the payload


def test_unrecognised_and_unparseable_records(replay, tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text('{"hello": "world"}\nnot json at all\n')
    run = replay(path)
    assert run.code == 1
    assert run.rejects == [
        f"{path}:1: no adapter recognises this record (try --source)",
        f"{path}:2: no adapter recognises this record (try --source)",
    ]
    assert run.summary == "ramparts replay: 0 events (none); 2 rejected; 0 skipped"


def test_gzip_input(replay, tmp_path):
    plain = SAMPLES / "sensor-lines.jsonl"
    packed = tmp_path / "lines.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    args = ("--source", "layer", "--function", "media-worker", "--account", ACCOUNT)
    a, b = replay(plain, *args), replay(packed, *args)
    assert a.code == b.code == 0
    assert a.out == b.out and a.out
    assert a.summary == b.summary


def test_json_array_document(replay, tmp_path):
    objects = [json.loads(x) for x in (SAMPLES / "sensor-lines.jsonl").read_text().splitlines()]
    path = tmp_path / "lines.json"
    path.write_text(json.dumps(objects[:10], indent=2))
    run = replay(path, "--source", "layer")
    assert run.code == 0, run.err
    check_events(run.events)


def test_unreadable_file_and_bad_source(replay, tmp_path):
    run = replay(tmp_path / "missing.json")
    assert run.code == 2 and "missing.json" in run.err
    run = replay(SAMPLES / "control-message.json", "--source", "nope")
    assert run.code == 2


def test_the_installed_command(tmp_path):
    """The real process: exit status and streams as a shell sees them."""
    path = tmp_path / "mixed.jsonl"
    good = (SAMPLES / "sensor-lines.jsonl").read_text().splitlines()[1]
    path.write_text(good + "\n" + '{"ramparts": 1, "kind": "nope"}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "ramparts_cli", "replay", str(path), "--source", "layer"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 1
    assert f"{path}:2: layer: unknown kind 'nope'" in proc.stderr
    assert proc.stderr.rstrip().endswith("1 rejected; 0 skipped")
