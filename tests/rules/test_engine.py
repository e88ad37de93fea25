"""The detection engine: indexing by source and class, failures, state, finding ids, Hit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectors import adapter
from collectors.base import Context
from collectors.model import NetworkActivity, OcsfEvent, ProcessActivity
from collectors.rules.engine import (
    HIGH,
    LOW,
    MEDIUM,
    Engine,
    Hit,
    MemoryBaseline,
    MemoryState,
    Registry,
    Rule,
    RuleError,
    event_uid,
    load_folder,
    source_of,
)
from collectors.rules.tuning import Tuning

SAMPLES = Path(__file__).resolve().parents[1] / "collectors" / "samples"
ACCOUNT = "111122223333"


def normalised(path: Path, source: str, function: str = "orders") -> list[OcsfEvent]:
    ctx = Context(account=ACCOUNT, region="eu-west-1", function=function)
    out: list[OcsfEvent] = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.extend(adapter(source).normalize(json.loads(line), ctx).events)
    return out


LAYER = normalised(SAMPLES / "layer" / "sensor-lines.jsonl", "layer")
OSQUERY = normalised(
    SAMPLES / "osquery" / "osquery-5.14-differential-event-format.jsonl", "osquery"
)
TETRAGON = normalised(SAMPLES / "tetragon" / "tetragon-1.4-json-export.jsonl", "tetragon")
ALL = LAYER + OSQUERY + TETRAGON


def of(events: list[OcsfEvent], cls: type[OcsfEvent]) -> list[OcsfEvent]:
    return [e for e in events if isinstance(e, cls)]


def make(
    func: Callable[..., Any],
    id: str = "t.rule",
    sources: frozenset[str] = frozenset(),
    classes: frozenset[int] = frozenset({ProcessActivity.CLASS_UID}),
    **kw: Any,
) -> Rule:
    return Rule(
        id=id,
        title=kw.pop("title", f"title of {id}"),
        severity=kw.pop("severity", MEDIUM),
        techniques=("T1059",),
        sources=sources,
        classes=classes,
        func=func,
        **kw,
    )


class Counting:
    def __init__(self, result: Any = None) -> None:
        self.calls: list[OcsfEvent] = []
        self.result = result

    def __call__(self, event: OcsfEvent, ctx: Any) -> Any:
        self.calls.append(event)
        return self.result


def test_the_samples_have_what_the_tests_need():
    assert len(of(LAYER, ProcessActivity)) >= 5
    assert len(of(OSQUERY, ProcessActivity)) >= 2
    assert of(LAYER, NetworkActivity) and of(OSQUERY, NetworkActivity)
    assert {source_of(e) for e in ALL} == {"layer", "osquery", "tetragon"}


def test_a_rule_is_called_only_for_its_source_and_class():
    osq = Counting()
    anywhere = Counting()
    engine = Engine(
        Registry(
            [
                make(osq, "t.osquery", frozenset({"osquery"})),
                make(anywhere, "t.any-process"),
            ]
        )
    )
    engine.run(
        of(LAYER, ProcessActivity) + of(LAYER, NetworkActivity) + of(OSQUERY, NetworkActivity)
    )
    assert osq.calls == []
    assert len(anywhere.calls) == len(of(LAYER, ProcessActivity))
    engine.run(ALL)
    assert osq.calls == of(OSQUERY, ProcessActivity)
    assert len(anywhere.calls) == len(of(LAYER, ProcessActivity)) + len(of(ALL, ProcessActivity))
    assert engine.rules_for("layer", NetworkActivity.CLASS_UID) == ()
    assert [r.id for r in engine.rules_for("osquery", ProcessActivity.CLASS_UID)] == [
        "t.osquery",
        "t.any-process",
    ]
    assert engine.rules_for("tetragon", 1007) is engine.rules_for("tetragon", 1007)  # cached


def test_an_event_no_rule_can_match_costs_no_call():
    never = [Counting() for _ in range(50)]
    reg = Registry(make(c, f"t.{i}", frozenset({"guardduty"})) for i, c in enumerate(never))
    assert Engine(reg).run(ALL) == []
    assert all(c.calls == [] for c in never)


def test_a_raising_rule_is_reported_and_the_others_still_run():
    def boom(event: OcsfEvent, ctx: Any) -> None:
        raise ZeroDivisionError("division by zero")

    good = Counting(True)
    engine = Engine(Registry([make(boom, "t.boom"), make(good, "t.good")]))
    events = of(LAYER, ProcessActivity)
    alerts = engine.run(events)
    assert [a.rule.id for a in alerts] == ["t.good"] * len(events)
    assert len(good.calls) == len(events)
    assert [(f.rule_id, f.event_uid) for f in engine.failures] == [
        ("t.boom", event_uid(e)) for e in events
    ]
    assert engine.failures[0].error == "ZeroDivisionError: division by zero"


def counter_rule(threshold: int) -> Rule:
    def count(event: OcsfEvent, ctx: Any) -> Hit | None:
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        if ctx.state["n"] == threshold:
            return Hit(key="threshold")
        return None

    return make(count, "t.count", frozenset({"layer"}), stateful=True, window_s=60)


def test_state_flows_across_runs_and_engines():
    state = MemoryState()
    events = of(LAYER, ProcessActivity)[:3]
    engine = Engine(Registry([counter_rule(3)]), state=state)
    assert engine.run(events[:1]) == []
    assert engine.run(events[1:2]) == []
    wl = f"lambda:arn:aws:lambda:eu-west-1:{ACCOUNT}:function:orders"
    assert state.items == {("t.count", wl): {"n": 2}}
    # A new engine (the next Lambda invocation) over the same store carries on.
    again = Engine(Registry([counter_rule(3)]), state=state)
    [alert] = again.run(events[2:3])
    assert alert.key == "threshold"
    assert state.items[("t.count", wl)] == {"n": 3}


def test_state_is_per_workload():
    state = MemoryState()
    engine = Engine(Registry([counter_rule(2)]), state=state)
    a = of(LAYER, ProcessActivity)[:1]
    b = of(
        normalised(SAMPLES / "layer" / "sensor-lines.jsonl", "layer", "billing"), ProcessActivity
    )
    assert engine.run(a + b[:1]) == []
    assert len(state.items) == 2
    assert {v["n"] for v in state.items.values()} == {1}
    [alert] = engine.run(b[1:2])
    assert alert.workload is not None and alert.workload.name == "billing"


def test_a_stateless_rule_never_touches_state():
    state = MemoryState()
    engine = Engine(Registry([make(Counting(True))]), state=state)
    engine.run(ALL)
    assert state.items == {}


def test_state_emptied_is_deleted():
    def clear(event: OcsfEvent, ctx: Any) -> None:
        ctx.state.clear()

    state = MemoryState()
    state.items[("t.rule", f"lambda:arn:aws:lambda:eu-west-1:{ACCOUNT}:function:orders")] = {"x": 1}
    Engine(Registry([make(clear, stateful=True)]), state=state).run(of(LAYER, ProcessActivity))
    assert state.items == {}


def keyed(event: OcsfEvent, ctx: Any) -> Hit:
    return Hit(key="k1")


def test_finding_ids_are_stable_and_differ_by_rule_resource_and_key():
    orders = of(LAYER, ProcessActivity)
    billing = of(
        normalised(SAMPLES / "layer" / "sensor-lines.jsonl", "layer", "billing"), ProcessActivity
    )
    a1 = Engine(Registry([make(keyed, "t.a")])).run(orders[:2])
    a2 = Engine(Registry([make(keyed, "t.a")])).run(orders[:2])
    assert a1[0].finding_id == a1[1].finding_id == a2[0].finding_id  # same rule/resource/key
    assert len(a1[0].finding_id) == 32
    other_rule = Engine(Registry([make(keyed, "t.b")])).run(orders[:1])[0]
    other_resource = Engine(Registry([make(keyed, "t.a")])).run(billing[:1])[0]

    def k2(event: OcsfEvent, ctx: Any) -> Hit:
        return Hit(key="k2")

    other_key = Engine(Registry([make(k2, "t.a")])).run(orders[:1])[0]
    ids = {a1[0].finding_id, other_rule.finding_id, other_resource.finding_id, other_key.finding_id}
    assert len(ids) == 4


def test_an_event_without_a_workload_is_about_its_account():
    falco = normalised(SAMPLES / "falco" / "falco-0.39-json-output.jsonl", "falco")
    reg = Registry([make(Counting(True), classes=frozenset({e.CLASS_UID for e in falco}))])
    alerts = Engine(reg).run(falco)
    assert alerts
    for a in alerts:
        if a.workload is None:
            assert a.resource_uid == f"account:{ACCOUNT}"
        else:
            assert a.resource_uid == a.workload.uid


def test_true_and_hit_defaults():
    event = of(LAYER, ProcessActivity)[0]
    [alert] = Engine(Registry([make(Counting(True), severity=LOW)])).run([event])
    assert alert.key == ""
    assert alert.title == "title of t.rule"
    assert alert.severity == LOW
    assert alert.summary == event.message
    assert alert.evidence is None
    assert alert.time == event.time
    assert alert.event_uid == event_uid(event) == f"layer:{event.metadata.uid}"
    assert alert.account == ACCOUNT and alert.region == "eu-west-1"
    assert alert.suppressed_by is None


def test_hit_overrides_title_severity_summary_and_evidence():
    def custom(event: OcsfEvent, ctx: Any) -> Hit:
        return Hit(
            key="curl",
            title="curl ran",
            severity=HIGH,
            summary="curl fetched a payload",
            evidence={"url": "http://127.0.0.1/x"},
        )

    [alert] = Engine(Registry([make(custom, severity=LOW)])).run(of(LAYER, ProcessActivity)[:1])
    assert (alert.key, alert.title, alert.severity, alert.summary) == (
        "curl",
        "curl ran",
        HIGH,
        "curl fetched a payload",
    )
    assert alert.evidence == {"url": "http://127.0.0.1/x"}


@pytest.mark.parametrize("result", [None, False])
def test_none_and_false_are_no_match(result):
    assert Engine(Registry([make(Counting(result))])).run(ALL) == []


def test_tuning_disables_and_overrides_severity():
    off = Counting(True)
    on = Counting(True)
    tuning = Tuning(disabled=frozenset({"t.off"}), severities={"t.on": HIGH})
    engine = Engine(Registry([make(off, "t.off"), make(on, "t.on")]), tuning=tuning)
    alerts = engine.run(of(LAYER, ProcessActivity))
    assert off.calls == []
    assert {a.severity for a in alerts} == {HIGH}


def test_event_uid_without_a_source_uid_is_a_digest():
    event = of(LAYER, ProcessActivity)[0]
    bare = event.model_copy(update={"metadata": event.metadata.model_copy(update={"uid": None})})
    uid = event_uid(bare)
    assert uid.startswith("sha256:") and len(uid) == 7 + 32
    assert uid == event_uid(bare.model_copy())
    changed = bare.model_copy(update={"time": bare.time + 1})
    assert event_uid(changed) != uid


def test_baseline_learns_then_answers():
    b = MemoryBaseline(learning_s=10)
    assert b.known("w", "egress", "a:443", 0) is None
    b.record("w", "egress", "a:443", 5_000)
    assert b.known("w", "egress", "a:443", 9_999) is None
    assert b.known("w", "egress", "a:443", 10_000) is True
    assert b.known("w", "egress", "b:443", 10_000) is False
    b.record("w", "egress", "b:443", 20_000)  # learning is over: not recorded
    assert b.known("w", "egress", "b:443", 20_001) is False
    loaded = MemoryBaseline({"w": {"egress": ["a:443"]}})
    assert loaded.known("w", "egress", "a:443", 0) is True
    assert loaded.known("w", "egress", "c:443", 0) is False
    assert loaded.to_json() == {"w": {"egress": ["a:443"]}}


def test_registry_rejects_duplicates_and_selects():
    a, b = make(Counting(), "t.a"), make(Counting(), "t.b")
    reg = Registry([a, b])
    with pytest.raises(RuleError, match=r"rule id 't.a' defined twice \(builtin and builtin\)"):
        reg.add(make(Counting(), "t.a"))
    assert [r.id for r in reg.only(["t.b"])] == ["t.b"]
    with pytest.raises(KeyError, match=r"no rule 't\.c'"):
        reg.get("t.c")
    with pytest.raises(RuleError, match="defined twice"):
        reg.merged(Registry([make(Counting(), "t.b")]))
    assert len(reg.merged(Registry([make(Counting(), "t.c")]))) == 3


RULE_FILE = """
from collectors.model import ProcessActivity
from collectors.rules import rule


@rule(id={id!r}, title="t", severity={severity!r}, techniques={techniques!r},
      sources={sources!r}, classes={classes}, window_s={window_s})
def f(event, ctx):
    '''doc of f.'''
    return True
"""


def write_rule(tmp_path: Path, **kw: Any) -> Path:
    values = {
        "id": "user.x",
        "severity": "high",
        "techniques": ["T1059.004"],
        "sources": ["layer"],
        "classes": "[ProcessActivity]",
        "window_s": 300,
        **kw,
    }
    (tmp_path / "r.py").write_text(RULE_FILE.format(**values))
    return tmp_path / "r.py"


def test_the_decorator_registers_into_the_folder_being_loaded(tmp_path):
    path = write_rule(tmp_path)
    (tmp_path / "_helpers.py").write_text("raise RuntimeError('never imported')\n")
    reg = load_folder(tmp_path)
    [r] = list(reg)
    assert (r.id, r.severity, r.techniques, r.sources, r.classes) == (
        "user.x",
        HIGH,
        ("T1059.004",),
        frozenset({"layer"}),
        frozenset({1007}),
    )
    assert r.origin == str(path)
    assert r.description == "doc of f."
    assert "user.x" not in Engine().registry  # the built-in pack is untouched


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"severity": "urgent"}, "user.x: severity must be 1-5 or informational..critical"),
        ({"severity": 9}, "user.x: severity must be 1-5"),
        ({"id": "has space"}, "rule id must be a non-empty word, not 'has space'"),
        ({"techniques": ["T10x"]}, "'T10x' is not a MITRE ATT&CK technique id"),
        ({"sources": ["syslog"]}, "user.x: unknown sources ['syslog']"),
        ({"classes": "[]"}, "user.x: declare the event classes the rule reads"),
        ({"classes": "[42]"}, "unknown event class 42"),
        ({"window_s": 0}, "user.x: window_s must be positive"),
    ],
)
def test_the_decorator_says_what_is_wrong(tmp_path, kw, message):
    path = write_rule(tmp_path, **kw)
    with pytest.raises(RuleError) as exc:
        load_folder(tmp_path)
    assert str(exc.value).startswith(f"{path}: ")
    assert message in str(exc.value)
