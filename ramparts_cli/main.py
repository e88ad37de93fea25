"""Entry point of the ``ramparts`` command.

Each subcommand lives in its own module that exposes ``register(subparsers)``; the module
is imported only when the command line is built, and heavy imports stay inside the
command functions so that ``ramparts --help`` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ramparts_cli.errors import CliError

# Modules that contribute subcommands, in the order --help lists them.
_COMMAND_MODULES = (
    "ramparts_cli.invoke",
    "ramparts_cli.policy",
    "ramparts_cli.replay",
    "ramparts_cli.rules",
    "ramparts_cli.sbom",
    "ramparts_cli.vulns",
    "ramparts_cli.approve",
    "ramparts_cli.coverage",
    "ramparts_cli.report",
    "ramparts_cli.layer",
    "ramparts_cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ramparts",
        description="Ramparts: serverless-native workload protection for AWS.",
    )
    from ramparts import __version__

    parser.add_argument("--version", action="version", version=f"ramparts {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _tracing_configured() -> bool:
    """OpenTelemetry spans for the command, when the standard OTEL_* variables ask for them."""
    exporter = (os.environ.get("OTEL_TRACES_EXPORTER") or "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if not _tracing_configured():
            return int(args.func(args))
        from functions import telemetry  # only when OTEL_* asks for spans

        with telemetry.span(f"ramparts {args.command}", service="ramparts-cli"):
            try:
                return int(args.func(args))
            finally:
                telemetry.flush()
    except CliError as exc:
        print(f"ramparts: error: {exc}", file=sys.stderr)
        hint = exc.diagnostics()
        if hint:
            print(hint, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
