"""Tuning rules without editing them: exceptions (with an expiry), disabled rules, severities.

A tuning file is YAML (the dependency-free subset the sensor's policies use) or JSON::

    exceptions:
      - id: media-convert                 # optional; defaults to exceptions[N]
        rule: process.shell-from-function # a rule id, or a glob (process.*, *)
        reason: image-resizer runs ImageMagick through sh   # required
        expires: 2027-01-31                # required: date or RFC 3339 time (UTC)
        resource: "arn:aws:lambda:*:*:function:image-*"     # glob on the workload uid or name
        tags: {team: media}                # the workload's tags must have these values
        where:                             # OCSF field paths of the event, glob values
          process.cmd_line: "sh -c convert *"
    disable: [network.tor]                 # rules switched off
    severity: {dns.tunnelling: low}        # a rule's severity replaced

Every condition an exception states must hold. An expired exception no longer suppresses
anything (it is reported by :meth:`Tuning.expired`); a suppressed alert is still counted on
its finding, never dropped unseen.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.rules.engine import SEVERITIES, Alert, Registry, Rule, RuleError, TagLookup


class TuningError(RuleError):
    """A tuning file that cannot be used; the message names the entry and the problem."""


def _parse_expiry(value: Any, where: str) -> int:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time(23, 59, 59))
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                when = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(23, 59, 59))
            else:
                when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise TuningError(f"{where}.expires: {value!r} is not a date (YYYY-MM-DD)") from None
    else:
        raise TuningError(f"{where}.expires: required, a date (YYYY-MM-DD) or an RFC 3339 time")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def field_values(event: Any, path: str) -> list[str]:
    """The values at a dotted OCSF path of an event (lists are walked), as strings."""
    cur: list[Any] = [event]
    for part in path.split("."):
        nxt: list[Any] = []
        for obj in cur:
            if isinstance(obj, Mapping):
                v = obj.get(part)
            else:
                v = getattr(obj, part, None)
                if v is None and part == "class":
                    v = getattr(obj, "class_", None)
            if v is None:
                continue
            if isinstance(v, list):
                nxt.extend(v)
            else:
                nxt.append(v)
        cur = nxt
        if not cur:
            return []
    return [json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v) for v in cur]


@dataclass(frozen=True, slots=True)
class Exception_:
    id: str
    rule: str
    reason: str
    expires_ms: int
    resource: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    where: Mapping[str, str] = field(default_factory=dict)

    def applies(self, alert: Alert, tags: TagLookup | None, now_ms: int) -> bool:
        if now_ms > self.expires_ms:
            return False
        if not fnmatch.fnmatchcase(alert.rule.id, self.rule):
            return False
        wl = alert.workload
        if self.resource is not None:
            names = [alert.resource_uid] + ([wl.name] if wl and wl.name else [])
            if not any(fnmatch.fnmatchcase(n, self.resource) for n in names):
                return False
        if self.tags:
            if wl is None or tags is None:
                return False
            have = tags(wl)
            if any(have.get(k) != v for k, v in self.tags.items()):
                return False
        for path, pattern in self.where.items():
            if not any(fnmatch.fnmatchcase(v, pattern) for v in field_values(alert.event, path)):
                return False
        return True


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TuningError(f"{where}: a mapping of names to values")
    return {k: str(v) for k, v in value.items()}


class Tuning:
    """Parsed tuning; implements the engine's ``Tuner``."""

    def __init__(
        self,
        exceptions: list[Exception_] | None = None,
        disabled: frozenset[str] = frozenset(),
        severities: Mapping[str, int] | None = None,
        now_ms: int | None = None,
    ) -> None:
        self.exceptions = exceptions or []
        self.disabled = disabled
        self.severities = dict(severities or {})
        self._now_ms = now_ms

    def now_ms(self) -> int:
        if self._now_ms is not None:
            return self._now_ms
        return int(dt.datetime.now(dt.UTC).timestamp() * 1000)

    @classmethod
    def parse(
        cls, data: Any, registry: Registry | None = None, now_ms: int | None = None
    ) -> Tuning:
        if data is None:
            return cls(now_ms=now_ms)
        if not isinstance(data, dict):
            raise TuningError("a tuning file is a mapping with exceptions, disable, severity")
        unknown = set(data) - {"exceptions", "disable", "severity"}
        if unknown:
            raise TuningError(
                f"unknown keys {sorted(unknown)}; known: exceptions, disable, severity"
            )
        known = {r.id for r in registry} if registry is not None else None

        def check_rule(rid: Any, where: str, glob: bool) -> str:
            if not isinstance(rid, str) or not rid:
                raise TuningError(f"{where}: a rule id")
            if known is not None:
                hits = [k for k in known if fnmatch.fnmatchcase(k, rid)] if glob else [rid]
                if not hits or (not glob and rid not in known):
                    raise TuningError(f"{where}: no rule matches {rid!r}")
            return rid

        exceptions = []
        items = data.get("exceptions")
        items = [] if items is None else items
        if not isinstance(items, list):
            raise TuningError("exceptions: a list")
        for n, item in enumerate(items):
            where = f"exceptions[{n}]"
            if not isinstance(item, dict):
                raise TuningError(f"{where}: a mapping")
            extra = set(item) - {"id", "rule", "reason", "expires", "resource", "tags", "where"}
            if extra:
                raise TuningError(f"{where}: unknown keys {sorted(extra)}")
            reason = item.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                raise TuningError(f"{where}.reason: required (why this is not a threat)")
            resource = item.get("resource")
            if resource is not None and not isinstance(resource, str):
                raise TuningError(f"{where}.resource: a glob of workload uids or names")
            exc = Exception_(
                id=str(item.get("id") or where),
                rule=check_rule(item.get("rule"), f"{where}.rule", glob=True),
                reason=reason.strip(),
                expires_ms=_parse_expiry(item.get("expires"), where),
                resource=resource,
                tags=_str_map(item.get("tags"), f"{where}.tags"),
                where=_str_map(item.get("where"), f"{where}.where"),
            )
            if exc.resource is None and not exc.tags and not exc.where and exc.rule in ("*", ""):
                raise TuningError(
                    f"{where}: an exception of every rule for everything; use disable"
                )
            exceptions.append(exc)
        disabled = data.get("disable")
        disabled = [] if disabled is None else disabled
        if not isinstance(disabled, list):
            raise TuningError("disable: a list of rule ids")
        sev: dict[str, int] = {}
        raw_sev = data.get("severity")
        raw_sev = {} if raw_sev is None else raw_sev
        if not isinstance(raw_sev, dict):
            raise TuningError("severity: a mapping of rule id to severity")
        for rid, value in raw_sev.items():
            check_rule(rid, f"severity.{rid}", glob=False)
            level = SEVERITIES.get(str(value).lower()) if isinstance(value, str) else value
            if not isinstance(level, int) or level not in SEVERITIES.values():
                raise TuningError(f"severity.{rid}: one of {', '.join(SEVERITIES)} or 1-5")
            sev[rid] = level
        return cls(
            exceptions,
            frozenset(check_rule(r, f"disable[{i}]", glob=False) for i, r in enumerate(disabled)),
            sev,
            now_ms=now_ms,
        )

    @classmethod
    def load(cls, path: str | Path, registry: Registry | None = None) -> Tuning:
        from ramparts import _yaml

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise TuningError(f"{p}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if p.suffix == ".json" else _yaml.loads(text)
        except ValueError as exc:
            raise TuningError(f"{p}: {exc}") from None
        try:
            return cls.parse(data, registry)
        except TuningError as exc:
            raise TuningError(f"{p}: {exc}") from None

    def expired(self) -> list[Exception_]:
        now = self.now_ms()
        return [e for e in self.exceptions if e.expires_ms < now]

    # Tuner
    def enabled(self, rule: Rule) -> bool:
        return rule.id not in self.disabled

    def severity(self, rule: Rule, severity: int) -> int:
        return self.severities.get(rule.id, severity)

    def suppressed(self, alert: Alert, tags: TagLookup | None) -> str | None:
        if not self.exceptions:
            return None
        now = self.now_ms()
        for e in self.exceptions:
            if e.applies(alert, tags, now):
                return e.id
        return None
