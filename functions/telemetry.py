"""OpenTelemetry spans of the platform: one trace from the sensor's event to the response.

The sensor writes the function's ``trace_id``/``span_id`` on its lines (``docs/sensor.md``);
the collector keeps them, a finding keeps those of its first traced occurrence
(``unmapped.ramparts.trace_id``/``span_id`` of the published finding), and the playbook's
execution input is that finding. So the ingest's ``ramparts.finding`` span and every
responder's span are created as children of the sensor's span: one trace id links the
attack inside the function, its detection and the containment that answered it.

Exporters follow the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``,
``none``, comma-separated), else ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, else none: spans are then created but never
exported (and cost next to nothing). ``OTEL_SERVICE_NAME`` names the service. Lambda
freezes the sandbox between invocations, so handlers call :func:`flush` before returning.
If OpenTelemetry is not installed, every function here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

_STATE: dict[str, Any] = {}


def _provider(service: str, exporters: list[Any] | None = None) -> Any:
    """The process's tracer provider, configured once from the environment."""
    found = _STATE.get("provider")
    if found is not None:
        return found
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        _STATE["provider"] = False
        return False
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # someone (a test, the OTel layer) set one up
        for exporter in exporters or ():
            if not isinstance(exporter, str):
                current.add_span_processor(SimpleSpanProcessor(exporter))
        _STATE["provider"] = current
        return current
    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    for exporter in exporters if exporters is not None else _exporters():
        if exporter == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:  # an exporter object (tests: the SDK's in-memory exporter)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _STATE["provider"] = trace.get_tracer_provider()
    return _STATE["provider"]


def _exporters() -> list[Any]:
    names = os.environ.get("OTEL_TRACES_EXPORTER")
    if names is None:
        configured = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        return ["otlp"] if configured else []
    out = []
    for raw in names.split(","):
        name = raw.strip().lower()
        if name in ("otlp", "console"):
            out.append(name)
        elif name not in ("", "none"):
            raise ValueError(f"OTEL_TRACES_EXPORTER: {name!r} is not otlp, console or none")
    return out


def configure(service: str, exporters: list[Any] | None = None) -> bool:
    """Set up tracing for ``service`` (idempotent); False when OpenTelemetry is missing."""
    return bool(_provider(service, exporters))


def reset() -> None:
    """Forget the configured provider (tests)."""
    _STATE.clear()


def trace_ids(finding: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(trace id, span id) a published finding (OCSF) carries, if any."""
    if not isinstance(finding, Mapping):
        return None
    ramparts = (finding.get("unmapped") or {}).get("ramparts") or {}
    tid, sid = ramparts.get("trace_id"), ramparts.get("span_id")
    if _hex(tid, 32) and _hex(sid, 16):
        return str(tid), str(sid)
    return None


def _hex(value: Any, size: int) -> bool:
    return (
        isinstance(value, str)
        and len(value) == size
        and all(c in "0123456789abcdef" for c in value)
        and value.strip("0") != ""
    )


@contextmanager
def span(
    name: str,
    *,
    service: str,
    parent: tuple[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """A span named ``name``; a child of the remote ``(trace id, span id)`` when given.

    Yields the span (or None without OpenTelemetry)."""
    provider = _provider(service)
    if not provider:
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    ctx = None
    if parent is not None:
        remote = SpanContext(
            trace_id=int(parent[0], 16),
            span_id=int(parent[1], 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        ctx = trace.set_span_in_context(NonRecordingSpan(remote))
    tracer = provider.get_tracer("ramparts")
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(name, context=ctx, attributes=attrs) as current:
        yield current


def flush(timeout_ms: int = 2000) -> None:
    """Export what is buffered (Lambda freezes the sandbox after the handler returns)."""
    provider = _STATE.get("provider")
    if provider:
        force = getattr(provider, "force_flush", None)
        if force is not None:
            force(timeout_ms)
