"""The detection engine: rules over common events, indexed by source and event class.

A rule is a small function over one common event (:mod:`collectors.model`), registered with
the :func:`rule` decorator, which declares what a finding needs to say (title, severity,
MITRE ATT&CK techniques) and what the engine needs to know to call it only where it can
match (the sources and OCSF classes it reads)::

    @rule(
        id="process.shell-from-function",
        title="Shell spawned by a Lambda function",
        severity=HIGH,
        techniques=["T1059.004"],
        sources=["layer"],
        classes=[ProcessActivity],
    )
    def shell_from_function(event: ProcessActivity, ctx: RuleContext) -> Hit | None:
        ...

The function returns ``None``/``False`` (no match), ``True`` (a match, grouped as one finding
per workload) or a :class:`Hit` (a match with its grouping key, and optionally its own
title, severity or evidence). Stateful rules (``stateful=True``) keep a small JSON-able
``ctx.state`` per workload (the same Lambda sandbox's function, host or container), which the
engine persists between batches through a :class:`StateStore`; ``ctx.baseline`` answers
"has this workload done this before" for baseline rules.

The engine indexes rules by (source, class_uid), so an event costs only the rules that can
match it, however many rules are loaded; see ``bench/rules.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from collectors.model import EVENT_CLASSES, OcsfEvent
from collectors.workload import Workload, workload_of

INFO, LOW, MEDIUM, HIGH, CRITICAL = 1, 2, 3, 4, 5
SEVERITIES = {
    "informational": INFO,
    "low": LOW,
    "medium": MEDIUM,
    "high": HIGH,
    "critical": CRITICAL,
}

# metadata.product.name -> the source name rules declare (the adapter's name)
SOURCE_OF_PRODUCT = {
    "Ramparts": "layer",
    "Falco": "falco",
    "osquery": "osquery",
    "Tetragon": "tetragon",
    "GuardDuty": "guardduty",
    "Inspector": "inspector",
}
SOURCES = frozenset(SOURCE_OF_PRODUCT.values())

DEFAULT_WINDOW_S = 300


class RuleError(ValueError):
    """A rule, or a rules folder, that cannot be loaded; the message says where and why."""


def source_of(event: OcsfEvent) -> str:
    """The source an event came from, by the product that reported it."""
    return SOURCE_OF_PRODUCT.get(event.metadata.product.name, "other")


def event_uid(event: OcsfEvent) -> str:
    """A stable id for an event: the source's own uid, or a digest of the event."""
    uid = event.metadata.uid
    if uid:
        return f"{source_of(event)}:{uid}"
    body = event.model_dump_json(exclude_none=True)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Hit:
    """A match. ``key`` groups matches into one finding (with the rule and the resource)."""

    key: str = ""
    title: str | None = None  # defaults to the rule's title
    severity: int | None = None  # defaults to the rule's severity
    summary: str | None = None  # one line saying what happened; defaults to the event's message
    evidence: Mapping[str, Any] | None = None  # small, JSON-able: what an analyst needs first
    # MITRE ATT&CK ids of this match, when the event knows better than the rule (a Falco or
    # GuardDuty finding's own mapping); invalid ids are ignored
    techniques: tuple[str, ...] | None = None


def is_technique(t: str) -> bool:
    """``T1234`` or ``T1234.001``."""
    head, _, sub = t.partition(".")
    return (
        len(head) == 5
        and head[0] == "T"
        and head[1:].isdigit()
        and (not sub or (len(sub) == 3 and sub.isdigit()))
    )


RuleFunc = Callable[..., "Hit | bool | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: int
    techniques: tuple[str, ...]
    sources: frozenset[str]  # empty: any source
    classes: frozenset[int]  # OCSF class_uids
    func: RuleFunc
    stateful: bool = False
    window_s: int = DEFAULT_WINDOW_S  # how long state, and repeats merged into one finding, last
    description: str = ""
    tags: tuple[str, ...] = ()
    origin: str = "builtin"  # or the file a user rule came from

    def applies(self, source: str, class_uid: int) -> bool:
        return class_uid in self.classes and (not self.sources or source in self.sources)


class Registry:
    """A set of rules by id, and the index the engine walks."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, Rule] = {}
        for r in rules:
            self.add(r)

    def add(self, r: Rule) -> None:
        if r.id in self._rules:
            other = self._rules[r.id]
            raise RuleError(f"rule id {r.id!r} defined twice ({other.origin} and {r.origin})")
        self._rules[r.id] = r

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def get(self, rule_id: str) -> Rule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise KeyError(f"no rule {rule_id!r}") from None

    def merged(self, other: Registry) -> Registry:
        out = Registry(self)
        for r in other:
            out.add(r)
        return out

    def only(self, ids: Iterable[str]) -> Registry:
        return Registry(self.get(i) for i in ids)


# Where @rule registers: the built-in pack's registry, or the one a user folder is loading into.
BUILTIN = Registry()
_TARGET: list[Registry] = [BUILTIN]
_ORIGIN: list[str] = ["builtin"]


def _class_uids(classes: Iterable[type[OcsfEvent] | int]) -> frozenset[int]:
    out = set()
    for c in classes:
        uid = c if isinstance(c, int) else getattr(c, "CLASS_UID", None)
        if not isinstance(uid, int) or uid not in EVENT_CLASSES:
            raise RuleError(f"unknown event class {c!r}")
        out.add(uid)
    return frozenset(out)


def rule(
    *,
    id: str,
    title: str,
    severity: int | str,
    techniques: Iterable[str],
    classes: Iterable[type[OcsfEvent] | int],
    sources: Iterable[str] = (),
    stateful: bool = False,
    window_s: int = DEFAULT_WINDOW_S,
    tags: Iterable[str] = (),
) -> Callable[[RuleFunc], RuleFunc]:
    """Register the decorated function as a detection rule (see the module's docstring)."""
    sev = SEVERITIES.get(severity.lower(), 0) if isinstance(severity, str) else severity
    if sev not in range(INFO, CRITICAL + 1):
        raise RuleError(f"{id}: severity must be 1-5 or informational..critical, not {severity!r}")
    if not id or any(c.isspace() for c in id):
        raise RuleError(f"rule id must be a non-empty word, not {id!r}")
    techs = tuple(techniques)
    for t in techs:
        if not is_technique(t):
            raise RuleError(f"{id}: {t!r} is not a MITRE ATT&CK technique id (T1234 or T1234.001)")
    srcs = frozenset(sources)
    unknown = srcs - SOURCES
    if unknown:
        raise RuleError(f"{id}: unknown sources {sorted(unknown)}; known: {sorted(SOURCES)}")
    if window_s <= 0:
        raise RuleError(f"{id}: window_s must be positive")

    def register(func: RuleFunc) -> RuleFunc:
        r = Rule(
            id=id,
            title=title,
            severity=sev,
            techniques=techs,
            sources=srcs,
            classes=_class_uids(classes),
            func=func,
            stateful=stateful,
            window_s=window_s,
            description=inspect.cleandoc(func.__doc__ or ""),
            tags=tuple(tags),
            origin=_ORIGIN[-1],
        )
        if not r.classes:
            raise RuleError(f"{id}: declare the event classes the rule reads")
        _TARGET[-1].add(r)
        return func

    return register


def load_folder(folder: str | Path) -> Registry:
    """The rules defined by the ``*.py`` files of a folder (a user's own rules)."""
    root = Path(folder)
    if not root.is_dir():
        raise RuleError(f"{root}: not a folder")
    reg = Registry()
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = (
            "ramparts_user_rules." + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        )
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RuleError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        _TARGET.append(reg)
        _ORIGIN.append(str(path))
        try:
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except RuleError as exc:
            raise RuleError(f"{path}: {exc}") from None
        except Exception as exc:
            raise RuleError(f"{path}: {type(exc).__name__}: {exc}") from exc
        finally:
            _TARGET.pop()
            _ORIGIN.pop()
            sys.modules.pop(name, None)
    return reg


def builtin() -> Registry:
    """The built-in rule pack."""
    import collectors.rules.pack  # noqa: F401 (registers the pack into BUILTIN)

    return BUILTIN


# -- state and baselines -----------------------------------------------------------------------
class StateStore(Protocol):
    """Where stateful rules' per-workload state lives between batches."""

    def load(self, rule_id: str, workload: str) -> dict[str, Any]: ...

    def save(self, rule_id: str, workload: str, state: dict[str, Any], ttl_s: int) -> None: ...


class MemoryState:
    """State kept in memory: for one process (replay, tests, the CLI)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def load(self, rule_id: str, workload: str) -> dict[str, Any]:
        return dict(self.items.get((rule_id, workload), {}))

    def save(self, rule_id: str, workload: str, state: dict[str, Any], ttl_s: int) -> None:
        if state:
            self.items[(rule_id, workload)] = state
        else:
            self.items.pop((rule_id, workload), None)


class Baseline(Protocol):
    """What each workload has done before: destinations, names, AWS actions, programs."""

    def known(self, workload: str, kind: str, value: str, now_ms: int) -> bool | None:
        """True if seen before, False if new, None while the workload's baseline is learning."""
        ...

    def record(self, workload: str, kind: str, value: str, now_ms: int) -> None: ...


DEFAULT_LEARNING_S = 7 * 24 * 3600


class MemoryBaseline:
    """A baseline in memory, learnt from the events it is shown for ``learning_s`` after a
    workload is first seen, or loaded from JSON (``{workload: {kind: [values]}}``, complete)."""

    def __init__(
        self,
        data: Mapping[str, Mapping[str, Iterable[str]]] | None = None,
        learning_s: int = DEFAULT_LEARNING_S,
    ) -> None:
        self.learning_ms = learning_s * 1000
        self.first_seen: dict[str, int] = {}
        self.values: dict[str, dict[str, set[str]]] = {}
        self.complete: set[str] = set()
        for wl, kinds in (data or {}).items():
            self.values[wl] = {k: {str(v) for v in vs} for k, vs in kinds.items()}
            self.complete.add(wl)

    def learning(self, workload: str, now_ms: int) -> bool:
        if workload in self.complete:
            return False
        first = self.first_seen.setdefault(workload, now_ms)
        return now_ms - first < self.learning_ms

    def known(self, workload: str, kind: str, value: str, now_ms: int) -> bool | None:
        if self.learning(workload, now_ms):
            return None
        return value in self.values.get(workload, {}).get(kind, ())

    def record(self, workload: str, kind: str, value: str, now_ms: int) -> None:
        if self.learning(workload, now_ms):
            self.values.setdefault(workload, {}).setdefault(kind, set()).add(value)

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        return {w: {k: sorted(v) for k, v in ks.items()} for w, ks in self.values.items()}


# -- tuning: exceptions, overrides -------------------------------------------------------------
TagLookup = Callable[[Workload], Mapping[str, str]]


@dataclass(slots=True)
class RuleContext:
    """What a rule sees besides the event."""

    rule: Rule
    workload: Workload | None
    source: str
    now_ms: int
    baseline: Baseline
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def workload_key(self) -> str:
        return self.workload.key if self.workload else ""


@dataclass(slots=True)
class Alert:
    """One rule's match on one event, before findings merge it with its repeats."""

    rule: Rule
    event: OcsfEvent
    workload: Workload | None
    key: str
    title: str
    severity: int
    summary: str
    time: int
    event_uid: str
    account: str | None
    region: str | None
    evidence: Mapping[str, Any] | None = None
    suppressed_by: str | None = None  # the exception that matched, when tuned away
    techniques: tuple[str, ...] = ()  # the match's own, else the rule's

    @property
    def resource_uid(self) -> str:
        """What the finding is about: the workload, else the account the event came from."""
        if self.workload is not None:
            return self.workload.uid
        return f"account:{self.account or 'unknown'}"

    @property
    def finding_id(self) -> str:
        """Stable id: the same rule, resource and grouping key always give the same id."""
        text = f"{self.rule.id}\x1f{self.resource_uid}\x1f{self.key}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class Tuner(Protocol):
    """Exceptions and overrides (see :mod:`collectors.rules.tuning`)."""

    def enabled(self, rule: Rule) -> bool: ...

    def severity(self, rule: Rule, severity: int) -> int: ...

    def suppressed(self, alert: Alert, tags: TagLookup | None) -> str | None: ...


class NoTuning:
    def enabled(self, rule: Rule) -> bool:
        return True

    def severity(self, rule: Rule, severity: int) -> int:
        return severity

    def suppressed(self, alert: Alert, tags: TagLookup | None) -> str | None:
        return None


@dataclass(slots=True)
class RuleFailure:
    rule_id: str
    event_uid: str
    error: str


class Engine:
    """Runs a registry's rules over events; keeps stateful rules' state per workload."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        state: StateStore | None = None,
        baseline: Baseline | None = None,
        tuning: Tuner | None = None,
        tags: TagLookup | None = None,
    ) -> None:
        self.registry = registry if registry is not None else builtin()
        self.state = state if state is not None else MemoryState()
        self.baseline: Baseline = baseline if baseline is not None else MemoryBaseline()
        self.tuning: Tuner = tuning if tuning is not None else NoTuning()
        self.tags = tags
        self.failures: list[RuleFailure] = []  # rules that raised: reported, never fatal
        self._index: dict[tuple[str, int], tuple[Rule, ...]] = {}
        self._rules = [r for r in self.registry if self.tuning.enabled(r)]
        self._dirty: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}

    def rules_for(self, source: str, class_uid: int) -> tuple[Rule, ...]:
        """The rules that can match events of this source and class (cached index)."""
        key = (source, class_uid)
        found = self._index.get(key)
        if found is None:
            found = tuple(r for r in self._rules if r.applies(source, class_uid))
            self._index[key] = found
        return found

    def _state(self, r: Rule, wl: str) -> dict[str, Any]:
        held = self._dirty.get((r.id, wl))
        if held is not None:
            return held[0]
        st = self.state.load(r.id, wl)
        self._dirty[(r.id, wl)] = (st, r.window_s)
        return st

    def evaluate(self, event: OcsfEvent) -> list[Alert]:
        """The alerts one event raises (suppressed ones included, marked)."""
        source = source_of(event)
        rules = self.rules_for(source, event.CLASS_UID)
        if not rules:
            return []
        account = event.cloud.account.uid if event.cloud.account else None
        device = getattr(event, "device", None)
        wl = workload_of(device, account)
        out: list[Alert] = []
        uid: str | None = None
        for r in rules:
            ctx = RuleContext(r, wl, source, event.time, self.baseline)
            if r.stateful:
                ctx.state = self._state(r, wl.key if wl else "")
            try:
                res = r.func(event, ctx)
            except Exception as exc:  # one rule's bug must not lose the batch or other rules
                uid = uid or event_uid(event)
                self.failures.append(RuleFailure(r.id, uid, f"{type(exc).__name__}: {exc}"))
                continue
            if res is None or res is False:
                continue
            hit = res if isinstance(res, Hit) else Hit()
            uid = uid or event_uid(event)
            sev = hit.severity if hit.severity is not None else r.severity
            alert = Alert(
                rule=r,
                event=event,
                workload=wl,
                key=hit.key,
                title=hit.title or r.title,
                severity=self.tuning.severity(r, sev),
                summary=hit.summary or event.message or r.title,
                time=event.time,
                event_uid=uid,
                account=account,
                region=event.cloud.region,
                evidence=hit.evidence,
                techniques=tuple(t for t in hit.techniques if is_technique(t))
                if hit.techniques
                else r.techniques,
            )
            if not alert.techniques:
                alert.techniques = r.techniques
            alert.suppressed_by = self.tuning.suppressed(alert, self.tags)
            out.append(alert)
        return out

    def run(self, events: Iterable[OcsfEvent]) -> list[Alert]:
        """Every alert the events raise, in order; then :meth:`flush` the state."""
        out: list[Alert] = []
        for e in events:
            out.extend(self.evaluate(e))
        self.flush()
        return out

    def flush(self) -> None:
        """Persist the state stateful rules changed."""
        for (rule_id, wl), (st, ttl) in self._dirty.items():
            self.state.save(rule_id, wl, st, ttl)
        self._dirty.clear()
