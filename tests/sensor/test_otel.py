"""OpenTelemetry: alerts become span events on the function's active span, and lines carry
the trace and span ids; a function without OpenTelemetry imports none of it."""

from __future__ import annotations

import json

import jsonschema

from tests.sensor.conftest import run_case
from tests.sensor.test_schema import SCHEMA

TRACED = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
EXPORTER = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("function")
import os, socket, subprocess, ramparts
SENSOR = ramparts.install() if not globals().get("SENSOR") else SENSOR

@ramparts.protect
def handler(event, context):
    with tracer.start_as_current_span("handler") as span:
        attempt("imds", lambda: socket.create_connection(("169.254.169.254", 80), timeout=0.2))
        attempt("shell", lambda: subprocess.run(["sh", "-c", "true"]))
        attempt("shell again", lambda: subprocess.run(["sh", "-c", "true"]))
        attempt("write", lambda: open("/srv/notes", "w").close())
        ctx = span.get_span_context()
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")

attempt("handler", lambda: handler({}, None))
spans = {s.name: s for s in EXPORTER.get_finished_spans()}
s = spans["handler"]
attempt("events", lambda: [[e.name, dict(e.attributes)] for e in s.events])
"""


def test_alerts_are_span_events_and_lines_carry_the_ids() -> None:
    r = run_case(TRACED, env={"RAMPARTS_MODE": "monitor"}, tmpfs=("/srv",))
    trace_id, span_id = r.results["handler"]["value"]
    events = r.results["events"]["value"]
    names = [n for n, _ in events]
    assert names.count("ramparts.network.connect") == 1
    assert names.count("ramparts.process.spawn") == 2  # the repeat too: it may be another span
    assert "ramparts.file.write" in names
    attrs = {n: a for n, a in events}
    conn = attrs["ramparts.network.connect"]
    assert conn["server.address"] == "169.254.169.254"
    assert conn["server.port"] == 80
    assert conn["ramparts.verdict"] == "alert"
    assert conn["ramparts.rule"] == "default.credential-endpoint"
    spawn = attrs["ramparts.process.spawn"]
    assert spawn["process.command_args"] == ["sh", "-c", "true"]
    assert spawn["process.executable.path"].endswith("sh")
    assert attrs["ramparts.file.write"]["file.path"] == "/srv/notes"
    alerts = [e for e in r.events if e.get("verdict") == "alert"]
    assert alerts and all(e["trace_id"] == trace_id and e["span_id"] == span_id for e in alerts), (
        alerts
    )


def test_enforce_block_is_recorded_on_the_span_before_raising() -> None:
    r = run_case(TRACED, env={"RAMPARTS_MODE": "enforce"}, tmpfs=("/srv",))
    assert r.results["handler"]["ok"]
    attrs = {n: a for n, a in r.results["events"]["value"]}
    assert attrs["ramparts.network.connect"]["ramparts.verdict"] == "block"


def test_a_function_without_opentelemetry_imports_none_of_it() -> None:
    r = run_case(
        """
import socket, sys, ramparts
@ramparts.protect
def handler(event, context):
    attempt("imds", lambda: socket.create_connection(("169.254.169.254", 80), timeout=0.2))
attempt("h", lambda: handler({}, None))
attempt("mods", lambda: sorted(m for m in sys.modules if "opentelemetry" in m or m == "ramparts._otel"))
"""
    )
    assert r.results["mods"]["value"] == []
    assert r.alerts("default.credential-endpoint")
    assert all("trace_id" not in e for e in r.events)


def test_lines_with_trace_ids_validate_and_normalise() -> None:
    from collectors import adapter
    from collectors.base import Context

    r = run_case(TRACED, tmpfs=("/srv",))
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for line in r.events:
        assert not list(validator.iter_errors(line)), line
    ctx = Context(account="123456789012", region="eu-west-1", function="f")
    traced = [e for e in r.events if "trace_id" in e and e.get("verdict")]
    assert traced
    for line in traced:
        batch = adapter("layer").normalize(json.dumps(line), ctx)
        assert batch.rejects == []
        assert batch.events[0].unmapped["trace_id"] == line["trace_id"]
        assert batch.events[0].unmapped["span_id"] == line["span_id"]


LOGGING = """
from opentelemetry import _logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor, InMemoryLogRecordExporter
LOGS = InMemoryLogRecordExporter()
provider = LoggerProvider()
provider.add_log_record_processor(SimpleLogRecordProcessor(LOGS))
_logs.set_logger_provider(provider)
import socket, subprocess, ramparts
SENSOR = ramparts.install()

@ramparts.protect
def handler(event, context):
    attempt("imds", lambda: socket.create_connection(("169.254.169.254", 80), timeout=0.2))
    attempt("shell", lambda: subprocess.run(["sh", "-c", "true"]))

attempt("handler", lambda: handler({}, None))
def records():
    out = []
    for r in LOGS.get_finished_logs():
        rec = getattr(r, "log_record", r)
        out.append({"severity": rec.severity_text, "attributes": dict(rec.attributes or {}),
                    "body": dict(rec.body)})
    return out
attempt("records", records)
"""


def _records(r) -> list[dict]:
    return r.results["records"]["value"]


def test_lines_beside_as_log_records() -> None:
    # installed by the case itself, after the function set up its OTel logging
    r = run_case(
        LOGGING, env={"RAMPARTS_OTEL_LOGS": "beside", "RAMPARTS_MODE": "monitor"}, install=False
    )
    records = _records(r)
    kinds = [x["body"]["kind"] for x in records]
    assert kinds == [e["kind"] for e in r.events]  # every line, in order, both ways
    imds = next(x for x in records if x["body"]["kind"] == "network.connect")
    assert imds["severity"] == "WARN"
    assert imds["attributes"]["ramparts.verdict"] == "alert"
    assert imds["attributes"]["server.address"] == "169.254.169.254"
    assert imds["attributes"]["ramparts.rule"] == "default.credential-endpoint"
    assert imds["body"]["port"] == 80


def test_lines_instead_of_stdout_when_a_provider_exists() -> None:
    r = run_case(
        LOGGING, env={"RAMPARTS_OTEL_LOGS": "instead", "RAMPARTS_MODE": "enforce"}, install=False
    )
    assert r.events == []  # nothing on the log stream
    records = _records(r)
    blocked = [x for x in records if x["body"].get("verdict") == "block"]
    assert blocked and all(x["severity"] == "ERROR" for x in blocked)
    assert {"sensor.start", "invocation.summary"} <= {x["body"]["kind"] for x in records}


def test_instead_without_a_logger_provider_still_writes_the_lines() -> None:
    r = run_case(
        """
from opentelemetry import _logs  # imported, but no provider set up
import socket, ramparts
SENSOR = ramparts.install()
attempt("imds", lambda: socket.create_connection(("169.254.169.254", 80), timeout=0.2))
SENSOR.flush()
""",
        env={"RAMPARTS_OTEL_LOGS": "instead"},
        install=False,
    )
    assert r.alerts("default.credential-endpoint")


def test_a_bad_value_is_reported_and_lines_are_written() -> None:
    r = run_case(
        "import ramparts\nSENSOR = ramparts.install()\n",
        env={"RAMPARTS_OTEL_LOGS": "both"},
        install=False,
    )
    (err,) = r.kinds("sensor.error")
    assert err["where"] == "RAMPARTS_OTEL_LOGS" and "'both'" in err["error"]
    assert r.kinds("sensor.start")
