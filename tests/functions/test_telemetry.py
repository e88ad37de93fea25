"""Exporter choice by the standard OTEL_* variables; nothing imported when none is set."""

from __future__ import annotations

import subprocess
import sys

import pytest

from functions import telemetry
from ramparts_cli.main import _tracing_configured


@pytest.mark.parametrize(
    ("env", "exporters", "cli"),
    [
        ({}, [], False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ["otlp"], True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ["otlp"], True),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"], True),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"], True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, [], False),
    ],
)
def test_exporters_follow_the_standard_variables(monkeypatch, env, exporters, cli) -> None:
    for k in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert telemetry._exporters() == exporters
    assert _tracing_configured() is cli


def test_an_unknown_exporter_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="'zipkin' is not otlp, console or none"):
        telemetry._exporters()


def test_the_cli_imports_no_opentelemetry_without_otel_variables(tmp_path) -> None:
    code = (
        "import sys; from ramparts_cli.main import main; "
        "rc = main(['rules', 'list', '--json']); "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
