"""The report's period: ``[start, end)`` in epoch milliseconds, UTC.

``--from 2025-01-01 --to 2025-03-31`` covers both days whole: a date as the end bound means
the end of that day (the period stops at the next midnight, exclusive). A date-time
(``2025-01-01T12:00:00Z``; no zone means UTC) is taken as it is.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PeriodError(ValueError):
    """A bound that cannot be read, or a period that ends before it starts."""


def iso(ms: int) -> str:
    """Epoch milliseconds as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """An ISO 8601 date-time (UTC when no zone is given) in epoch milliseconds."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"{text!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def parse_bound(text: str, *, end: bool) -> int:
    """A ``--from``/``--to`` value: a date (whole day) or a date-time."""
    value = text.strip()
    if _DATE.match(value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise PeriodError(f"{text!r} is not a valid date") from None
        if end:
            day += dt.timedelta(days=1)
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return int(start.timestamp() * 1000)
    return parse_time(value)


@dataclass(frozen=True, slots=True)
class Period:
    start_ms: int  # inclusive
    end_ms: int  # exclusive

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise PeriodError(
                f"the period ends ({iso(self.end_ms)}) before it starts ({iso(self.start_ms)})"
            )

    @classmethod
    def parse(cls, start: str, end: str) -> Period:
        return cls(parse_bound(start, end=False), parse_bound(end, end=True))

    def contains(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms

    def overlaps(self, first_ms: int, last_ms: int) -> bool:
        """Whether ``[first, last]`` (an activity span) meets the period."""
        return first_ms < self.end_ms and last_ms >= self.start_ms

    def within(self, other: Period) -> bool:
        return other.start_ms <= self.start_ms and self.end_ms <= other.end_ms

    def to_dict(self) -> dict[str, str]:
        return {"from": iso(self.start_ms), "to": iso(self.end_ms)}
