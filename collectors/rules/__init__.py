"""Detection rules over common events: the engine, tuning, the built-in pack and its cases.

See :mod:`collectors.rules.engine` for how a rule is written and
``docs/detections.md`` for the pack and how to add and tune rules.
"""

from collectors.rules.engine import (
    CRITICAL,
    HIGH,
    INFO,
    LOW,
    MEDIUM,
    Alert,
    Engine,
    Hit,
    MemoryBaseline,
    MemoryState,
    Registry,
    Rule,
    RuleContext,
    RuleError,
    builtin,
    load_folder,
    rule,
)

__all__ = [
    "CRITICAL",
    "HIGH",
    "INFO",
    "LOW",
    "MEDIUM",
    "Alert",
    "Engine",
    "Hit",
    "MemoryBaseline",
    "MemoryState",
    "Registry",
    "Rule",
    "RuleContext",
    "RuleError",
    "builtin",
    "load_folder",
    "rule",
]
