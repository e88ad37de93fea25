"""Collectors: one adapter per telemetry source, raw record in, common events out.

Each adapter module (``collectors/<source>.py``) defines ``SOURCE`` (its name),
``matches(record) -> bool`` (does this record look like mine?) and
``normalize(record, ctx) -> Batch``. They are pure functions: no AWS calls, no I/O.
The registry below imports an adapter only when it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collectors.base import Batch, Context


class Adapter(Protocol):
    SOURCE: str

    def matches(self, record: Any) -> bool: ...

    def normalize(self, record: Any, ctx: Context) -> Batch: ...


# source name -> module; the order is the order of auto-detection (most specific first)
ADAPTERS: dict[str, str] = {
    "cloudwatch-logs": "collectors.cloudwatch",
    "layer": "collectors.layer",
    "falco": "collectors.falco",
    "osquery": "collectors.osquery",
    "tetragon": "collectors.tetragon",
    "guardduty": "collectors.guardduty",
    "inspector": "collectors.inspector",
}


def adapter(source: str) -> Adapter:
    """The adapter for ``source`` (a key of :data:`ADAPTERS`)."""
    try:
        module = ADAPTERS[source]
    except KeyError:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(ADAPTERS)}") from None
    return importlib.import_module(module)


def detect(record: Any) -> str | None:
    """The source a record comes from, or None when no adapter recognises it."""
    for source in ADAPTERS:
        try:
            if adapter(source).matches(record):
                return source
        except ModuleNotFoundError:
            continue
    return None
