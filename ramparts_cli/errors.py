"""The one error type of the command line: a message plus what to do next."""

from __future__ import annotations


class CliError(Exception):
    """A failure the user can act on. ``diagnostics()`` says how."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def diagnostics(self) -> str:
        return f"hint: {self.hint}" if self.hint else ""
