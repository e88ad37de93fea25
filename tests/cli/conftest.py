"""Helpers for the command-line tests: run `ramparts ...` and read what a user would see."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from ramparts_cli import main

FUNCTIONS = Path(__file__).resolve().parent.parent / "fixtures" / "functions"


@dataclass
class CliRun:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def responses(self) -> list:
        """stdout: one JSON document per line, nothing else."""
        return [json.loads(line) for line in self.stdout.splitlines()]


@pytest.fixture
def functions() -> Path:
    """The directory of sample handlers, one directory per function."""
    return FUNCTIONS


@pytest.fixture
def ramparts(monkeypatch, capsys):
    """Run the real `ramparts` entry point with the given arguments, in-process.

    Only this suite's commands are registered, so the tests do not depend on the state of
    the other subcommands.
    """
    monkeypatch.setattr(main, "_COMMAND_MODULES", ("ramparts_cli.invoke", "ramparts_cli.layer"))

    def run(*argv: str) -> CliRun:
        capsys.readouterr()
        try:
            code = main.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run


@pytest.fixture
def write_script(tmp_path):
    """Write an executable shell script and return its path."""

    def write(name: str, body: str, *, executable: bool = True) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n" + body)
        mode = 0o755 if executable else 0o644
        os.chmod(path, mode)
        assert bool(path.stat().st_mode & stat.S_IXUSR) is executable
        return path

    return write
