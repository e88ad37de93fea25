"""The exception the sensor raises when enforce mode blocks an operation."""

from __future__ import annotations

import errno


class RampartsBlocked(PermissionError):
    """Raised in place of an operation the function's policy forbids (enforce mode).

    Only that operation fails; the invocation goes on. ``rule`` names the rule that
    decided, ``kind`` the event kind and ``target`` what was being reached.
    """

    def __init__(self, kind: str, rule: str, target: str) -> None:
        super().__init__(
            errno.EACCES,
            f"Ramparts blocked {kind} {target} (rule {rule}); "
            "allow it in the function's Ramparts policy if it is expected",
        )
        self.kind = kind
        self.rule = rule
        self.target = target
