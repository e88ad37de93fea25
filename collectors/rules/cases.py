"""Rule cases: for each rule, events that must fire it and events that must not.

A rule's cases live beside it, in ``cases/<rule id>.json``::

    {
      "rule": "process.shell-from-function",
      "fire": [
        {"name": "command injection through sh -c",
         "source": "layer",
         "context": {"function": "orders", "account": "111122223333", "region": "eu-west-1"},
         "records": [ ...raw records of that source, in order... ],
         "baseline": {"lambda:arn:...": {"egress": ["api.example.com:443"]}},
         "expect": {"count": 1, "key": "..."}}
      ],
      "quiet": [ ...the same shape: records that must not fire the rule... ]
    }

``records`` are raw records exactly as the source writes them (sensor lines, Falco JSON,
GuardDuty EventBridge events...), normalised by the source's own adapter, so a case tests
the rule on what production delivers. ``source: "ocsf"`` takes common events (OCSF JSON)
instead. A case runs on a fresh engine with only its rule (and fresh state), in order;
``fire`` cases pass when the rule raises at least one alert (``expect`` can say how many, and
the grouping key), ``quiet`` ones when it raises none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.base import Batch, Context
from collectors.model import from_ocsf
from collectors.rules.engine import Alert, Engine, MemoryBaseline, Registry, RuleError


@dataclass(slots=True)
class Case:
    rule_id: str
    kind: str  # fire | quiet
    name: str
    source: str
    context: dict[str, Any]
    records: list[Any]
    baseline: dict[str, Any] | None
    expect: dict[str, Any]
    path: str

    @property
    def label(self) -> str:
        return f"{self.rule_id}:{self.kind}:{self.name}"


@dataclass(slots=True)
class CaseResult:
    case: Case
    ok: bool
    problem: str = ""
    alerts: int = 0


def load_cases(folder: str | Path) -> list[Case]:
    """Every case of the ``*.json`` files of a cases folder."""
    root = Path(folder)
    out: list[Case] = []
    for path in sorted(root.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuleError(f"{path}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("rule"), str):
            raise RuleError(f"{path}: a mapping with 'rule', 'fire' and 'quiet'")
        for kind in ("fire", "quiet"):
            items = doc.get(kind, [])
            if not isinstance(items, list):
                raise RuleError(f"{path}: {kind}: a list of cases")
            for n, item in enumerate(items):
                where = f"{path}: {kind}[{n}]"
                if not isinstance(item, dict) or not isinstance(item.get("records"), list):
                    raise RuleError(f"{where}: a mapping with 'source' and 'records'")
                source = item.get("source")
                if not isinstance(source, str):
                    raise RuleError(f"{where}: 'source' names the adapter (layer, falco, ...)")
                out.append(
                    Case(
                        rule_id=doc["rule"],
                        kind=kind,
                        name=str(item.get("name") or n),
                        source=source,
                        context=dict(item.get("context") or {}),
                        records=item["records"],
                        baseline=item.get("baseline"),
                        expect=dict(item.get("expect") or {}),
                        path=str(path),
                    )
                )
    return out


def normalise(case: Case) -> Batch:
    """The case's records as common events, through the source's own adapter."""
    from collectors import adapter

    batch = Batch()
    ctx_args = {k: case.context[k] for k in ("account", "region", "function") if k in case.context}
    for n, record in enumerate(case.records):
        if case.source == "ocsf":
            batch.events.append(from_ocsf(record))
            continue
        ctx = Context(
            **ctx_args,
            member_accounts=frozenset(case.context.get("member_accounts", ())),
            origin=f"{case.path}:{case.kind}:{case.name}[{n}]",
        )
        batch.extend(adapter(case.source).normalize(record, ctx))
    return batch


def run_case(case: Case, registry: Registry) -> tuple[CaseResult, list[Alert]]:
    if case.rule_id not in registry:
        return CaseResult(case, False, f"no rule {case.rule_id!r}"), []
    try:
        batch = normalise(case)
    except Exception as exc:
        return CaseResult(case, False, f"records: {type(exc).__name__}: {exc}"), []
    if batch.rejects:
        r = batch.rejects[0]
        return CaseResult(case, False, f"records rejected by {r.source}: {r.reason}"), []
    if not batch.events:
        return CaseResult(case, False, "records produce no events"), []
    engine = Engine(
        registry.only([case.rule_id]),
        baseline=MemoryBaseline(case.baseline) if case.baseline is not None else None,
    )
    alerts = [a for a in engine.run(batch.events) if a.rule.id == case.rule_id]
    if engine.failures:
        f = engine.failures[0]
        return CaseResult(case, False, f"rule raised {f.error}", len(alerts)), alerts
    if case.kind == "quiet":
        if alerts:
            return CaseResult(
                case, False, f"fired {len(alerts)}x: {alerts[0].summary}", len(alerts)
            ), alerts
        return CaseResult(case, True), alerts
    if not alerts:
        return CaseResult(case, False, "did not fire"), alerts
    want = case.expect.get("count")
    if want is not None and len(alerts) != want:
        return CaseResult(
            case, False, f"fired {len(alerts)}x, expected {want}", len(alerts)
        ), alerts
    key = case.expect.get("key")
    if key is not None and alerts[0].key != key:
        return CaseResult(case, False, f"grouping key {alerts[0].key!r}, expected {key!r}"), alerts
    sev = case.expect.get("severity")
    if sev is not None and alerts[0].severity != sev:
        return CaseResult(case, False, f"severity {alerts[0].severity}, expected {sev}"), alerts
    return CaseResult(case, True, alerts=len(alerts)), alerts


def coverage_problems(registry: Registry, cases: list[Case]) -> Iterator[str]:
    """Rules without both kinds of case, and cases of rules that do not exist."""
    kinds: dict[str, set[str]] = {}
    for c in cases:
        kinds.setdefault(c.rule_id, set()).add(c.kind)
    for r in registry:
        have = kinds.get(r.id, set())
        for k in ("fire", "quiet"):
            if k not in have:
                yield f"{r.id}: no '{k}' case ({r.origin})"
    for rid in sorted(set(kinds) - {r.id for r in registry}):
        yield f"cases for {rid!r}, which is not a rule"
