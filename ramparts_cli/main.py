"""Entry point of the ``ramparts`` command.

Each subcommand lives in its own module that exposes ``register(subparsers)``; the module
is imported only when the command line is built, and heavy imports stay inside the
command functions so that ``ramparts --help`` is quick.
"""

from __future__ import annotations

import argparse
import importlib
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"ramparts: error: {exc}", file=sys.stderr)
        hint = exc.diagnostics()
        if hint:
            print(hint, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
