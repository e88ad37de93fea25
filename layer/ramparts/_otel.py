"""Ramparts events in the function's own OpenTelemetry traces, when it has them.

Imported by the sensor only when ``opentelemetry.trace`` is already in ``sys.modules`` (the
function, or the OTel Lambda layer, imported it): a function without OpenTelemetry never
loads this module nor anything of OpenTelemetry's. With it, each alert or block becomes a
span event ``ramparts.<kind>`` on the active span, with OpenTelemetry's semantic-convention
attributes where they exist (``server.address``, ``server.port``, ``file.path``,
``process.executable.path``, ``process.command_args``, ``rpc.system``/``rpc.service``/
``rpc.method``, ``dns.question.name``) and ``ramparts.*`` for the rest; and every line the
sensor writes carries the active ``trace_id`` and ``span_id`` (W3C hex), so the platform
can link a finding to the trace it came from. Any failure here is contained by the caller.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_MAX_ATTR = 512


def ids(trace: Any) -> tuple[str, str] | None:
    """(trace id, span id) of the active span, or None when there is none."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def _text(value: Any) -> str:
    s = value if isinstance(value, str) else str(value)
    return s if len(s) <= _MAX_ATTR else s[:_MAX_ATTR] + "...[truncated]"


def attributes(
    kind: str, verdict: str, rule: str | None, target: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """The span event's attributes for one sensor event."""
    attrs: dict[str, Any] = {
        "ramparts.verdict": verdict,
        "ramparts.target": _text(target),
    }
    if rule:
        attrs["ramparts.rule"] = rule
    if kind == "network.connect":
        host = fields.get("host") or fields.get("ip") or fields.get("path")
        if host:
            attrs["server.address"] = _text(host)
        if isinstance(fields.get("port"), int):
            attrs["server.port"] = fields["port"]
        if fields.get("ip"):
            attrs["network.peer.address"] = _text(fields["ip"])
        if fields.get("proto"):
            attrs["network.transport"] = _text(fields["proto"])
        if fields.get("endpoint"):
            attrs["ramparts.endpoint"] = _text(fields["endpoint"])
    elif kind == "network.dns":
        if fields.get("host"):
            attrs["dns.question.name"] = _text(fields["host"])
    elif kind in ("file.write", "file.read"):
        if fields.get("path"):
            attrs["file.path"] = _text(fields["path"])
        if fields.get("op"):
            attrs["ramparts.op"] = _text(fields["op"])
    elif kind == "process.spawn":
        if fields.get("executable"):
            attrs["process.executable.path"] = _text(fields["executable"])
        argv = fields.get("argv")
        if isinstance(argv, list):
            attrs["process.command_args"] = [_text(a) for a in argv[:32]]
    elif kind == "aws.call":
        attrs["rpc.system"] = "aws-api"
        if fields.get("service"):
            attrs["rpc.service"] = _text(fields["service"])
        if fields.get("operation"):
            attrs["rpc.method"] = _text(fields["operation"])
        if fields.get("region"):
            attrs["cloud.region"] = _text(fields["region"])
    elif kind == "native.load":
        if fields.get("library"):
            attrs["file.path"] = _text(fields["library"])
    elif kind == "process.env":
        if fields.get("variable"):
            attrs["ramparts.variable"] = _text(fields["variable"])
    elif kind == "sensor.tamper" and fields.get("detail"):
        attrs["ramparts.detail"] = _text(fields["detail"])
    return attrs


def add_event(
    trace: Any, kind: str, verdict: str, rule: str | None, target: str, fields: dict[str, Any]
) -> None:
    """Add ``ramparts.<kind>`` to the active span, if it is recording."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.add_event("ramparts." + kind, attributes(kind, verdict, rule, target, fields))


# -- the sensor's lines as OpenTelemetry log records (RAMPARTS_OTEL_LOGS) -----------------------
_UNCONFIGURED = ("ProxyLoggerProvider", "NoOpLoggerProvider")
_LOGGERS: dict[int, Any] = {}


def _severity(logs: Any, line: dict[str, Any]) -> tuple[str, Any]:
    numbers = logs.SeverityNumber
    verdict = line.get("verdict")
    if verdict == "block":
        return "ERROR", numbers.ERROR
    if verdict == "alert" or line.get("kind") in ("sensor.tamper", "sensor.policy_error"):
        return "WARN", numbers.WARN
    return "INFO", numbers.INFO


def emit_log(logs: Any, line: dict[str, Any]) -> bool:
    """The line as a log record through the function's OpenTelemetry logger provider
    (``opentelemetry._logs``); False when the function has configured none."""
    provider = logs.get_logger_provider()
    if type(provider).__name__ in _UNCONFIGURED:
        return False
    logger = _LOGGERS.get(id(provider))
    if logger is None:
        from ramparts import __version__

        logger = provider.get_logger("ramparts", __version__)
        _LOGGERS.clear()
        _LOGGERS[id(provider)] = logger
    kind = str(line.get("kind", ""))
    verdict = line.get("verdict")
    attrs = {"ramparts.kind": kind, "ramparts.sandbox": str(line.get("sandbox", ""))}
    if verdict is not None:
        attrs.update(attributes(kind, str(verdict), line.get("rule"), _target(line), line))
    if line.get("request_id"):
        attrs["faas.invocation_id"] = str(line["request_id"])
    text, number = _severity(logs, line)
    record = logs.LogRecord(
        timestamp=int(line.get("time", 0)) * 1_000_000,
        severity_text=text,
        severity_number=number,
        body=line,
        attributes=attrs,
    )
    logger.emit(record)
    return True


def _target(line: dict[str, Any]) -> str:
    for key in ("host", "ip", "path", "executable", "library", "action", "variable", "detail"):
        value = line.get(key)
        if value:
            return str(value)
    return ""
