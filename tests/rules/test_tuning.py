"""Tuning: exceptions (rule and resource globs, tags, where, expiry), disable, severity, errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from collectors import adapter
from collectors.base import Context
from collectors.model import OcsfEvent, ProcessActivity
from collectors.rules.engine import HIGH, LOW, MEDIUM, Alert, Engine, Registry, Rule
from collectors.rules.tuning import Tuning, TuningError, field_values
from collectors.workload import Workload

SAMPLES = Path(__file__).resolve().parents[1] / "collectors" / "samples"
ACCOUNT = "111122223333"
NOW = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)


def processes(function: str) -> list[OcsfEvent]:
    ctx = Context(account=ACCOUNT, region="eu-west-1", function=function)
    out: list[OcsfEvent] = []
    for line in (SAMPLES / "layer" / "sensor-lines.jsonl").read_text().splitlines():
        out.extend(adapter("layer").normalize(json.loads(line), ctx).events)
    return [e for e in out if isinstance(e, ProcessActivity) and e.process.file]


def always(event: OcsfEvent, ctx: Any) -> bool:
    return True


def make(rule_id: str) -> Rule:
    return Rule(
        id=rule_id,
        title=rule_id,
        severity=MEDIUM,
        techniques=("T1059",),
        sources=frozenset({"layer"}),
        classes=frozenset({ProcessActivity.CLASS_UID}),
        func=always,
    )


REGISTRY = Registry([make("process.shell"), make("process.curl"), make("network.tor")])
ORDERS = processes("orders")
IMAGES = processes("image-resize")


def alerts(tuning: Tuning, events: list[OcsfEvent], tags: Any = None) -> list[Alert]:
    return Engine(REGISTRY, tuning=tuning, tags=tags).run(events)


def tuned(doc: Any, now_ms: int = NOW) -> Tuning:
    return Tuning.parse(doc, REGISTRY, now_ms=now_ms)


def exception(**kw: Any) -> dict[str, Any]:
    return {"reason": "known good", "expires": "2026-12-31", **kw}


def suppressed(found: list[Alert]) -> set[tuple[str, str]]:
    """(rule id, function name) of the suppressed alerts."""
    return {(a.rule.id, a.workload.name or "") for a in found if a.suppressed_by and a.workload}


def test_rule_globs():
    t = tuned({"exceptions": [exception(id="procs", rule="process.*")]})
    found = alerts(t, ORDERS[:1])
    assert {(a.rule.id, a.suppressed_by) for a in found} == {
        ("process.shell", "procs"),
        ("process.curl", "procs"),
        ("network.tor", None),
    }


def test_default_exception_id_is_its_position():
    t = tuned({"exceptions": [exception(rule="network.tor"), exception(rule="process.shell")]})
    by_rule = {a.rule.id: a.suppressed_by for a in alerts(t, ORDERS[:1])}
    assert by_rule == {
        "network.tor": "exceptions[0]",
        "process.shell": "exceptions[1]",
        "process.curl": None,
    }


def test_resource_globs_on_the_workload_uid_or_name():
    by_arn = tuned(
        {"exceptions": [exception(rule="*", resource="arn:aws:lambda:*:function:image-*")]}
    )
    assert suppressed(alerts(by_arn, ORDERS[:1] + IMAGES[:1])) == {
        (r, "image-resize") for r in ("process.shell", "process.curl", "network.tor")
    }
    by_name = tuned({"exceptions": [exception(rule="process.shell", resource="image-*")]})
    assert suppressed(alerts(by_name, ORDERS[:1] + IMAGES[:1])) == {
        ("process.shell", "image-resize")
    }
    none = tuned({"exceptions": [exception(rule="process.shell", resource="billing")]})
    assert suppressed(alerts(none, ORDERS + IMAGES)) == set()


def test_tags_through_the_tag_lookup():
    def tags(w: Workload) -> Mapping[str, str]:
        return {"team": "media", "env": "prod"} if w.name == "image-resize" else {"team": "shop"}

    t = tuned({"exceptions": [exception(rule="process.shell", tags={"team": "media"})]})
    assert suppressed(alerts(t, ORDERS[:1] + IMAGES[:1], tags)) == {
        ("process.shell", "image-resize")
    }
    both = tuned(
        {"exceptions": [exception(rule="process.shell", tags={"team": "media", "env": "dev"})]}
    )
    assert suppressed(alerts(both, IMAGES[:1], tags)) == set()
    # Without a tag lookup, an exception that needs tags never applies.
    assert suppressed(alerts(t, IMAGES[:1])) == set()


def test_where_field_paths_with_glob_values():
    echo = next(e for e in ORDERS if e.process.file and e.process.file.name == "echo")
    other = next(e for e in ORDERS if e.process.file and e.process.file.name != "echo")
    t = tuned(
        {
            "exceptions": [
                exception(
                    rule="process.shell",
                    where={"process.file.name": "ech?", "process.cmd_line": "*hello*"},
                )
            ]
        }
    )
    assert suppressed(alerts(t, [echo, other])) == {("process.shell", "orders")}
    assert [a.event for a in alerts(t, [echo, other]) if a.suppressed_by] == [echo]
    missing = tuned({"exceptions": [exception(rule="process.shell", where={"process.nope": "*"})]})
    assert suppressed(alerts(missing, [echo])) == set()


def test_field_values_walks_objects_lists_and_dicts():
    event = ORDERS[0]
    assert field_values(event, "process.file.path") == [event.process.file.path]
    assert field_values(event, "metadata.profiles") == event.metadata.profiles
    assert field_values({"a": [{"b": 1}, {"b": {"c": 2}}]}, "a.b") == ["1", '{"c": 2}']
    assert field_values(event, "nothing.here") == []


def test_an_expired_exception_does_not_suppress():
    doc = {"exceptions": [exception(id="old", rule="process.shell", expires="2026-05-31")]}
    live = tuned(doc, now_ms=NOW - 2 * 86_400_000)
    assert suppressed(alerts(live, ORDERS[:1])) == {("process.shell", "orders")}
    assert live.expired() == []
    dead = tuned(doc)
    assert suppressed(alerts(dead, ORDERS[:1])) == set()
    assert [e.id for e in dead.expired()] == ["old"]


def test_a_date_expires_at_the_end_of_that_day_utc_and_times_are_exact():
    day = tuned({"exceptions": [exception(rule="process.shell", expires="2026-06-01")]})
    end = int(dt.datetime(2026, 6, 1, 23, 59, 59, tzinfo=dt.UTC).timestamp() * 1000)
    assert day.exceptions[0].expires_ms == end
    at = tuned({"exceptions": [exception(rule="process.shell", expires="2026-06-01T10:00:00Z")]})
    assert at.exceptions[0].expires_ms == NOW + 10 * 3_600_000
    local = tuned(
        {"exceptions": [exception(rule="process.shell", expires="2026-06-01T12:00:00+02:00")]}
    )
    assert local.exceptions[0].expires_ms == NOW + 10 * 3_600_000


def test_disable_and_severity():
    t = tuned(
        {"disable": ["network.tor"], "severity": {"process.shell": "high", "process.curl": 2}}
    )
    found = alerts(t, ORDERS[:1])
    assert {a.rule.id: a.severity for a in found} == {"process.shell": HIGH, "process.curl": LOW}
    assert not t.enabled(REGISTRY.get("network.tor"))


def test_empty_and_none():
    assert tuned(None).exceptions == []
    assert tuned({}).disabled == frozenset()
    assert suppressed(alerts(tuned({"exceptions": None}), ORDERS[:1])) == set()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "a tuning file is a mapping with exceptions, disable, severity"),
        ({"rules": []}, "unknown keys ['rules']; known: exceptions, disable, severity"),
        ({"exceptions": {"rule": "x"}}, "exceptions: a list"),
        ({"exceptions": {}}, "exceptions: a list"),  # empty, but still the wrong type
        ({"disable": {}}, "disable: a list of rule ids"),
        ({"severity": []}, "severity: a mapping of rule id to severity"),
        ({"exceptions": ["x"]}, "exceptions[0]: a mapping"),
        (
            {"exceptions": [exception(rule="process.shell", why="x")]},
            "exceptions[0]: unknown keys ['why']",
        ),
        (
            {"exceptions": [{"rule": "process.shell", "expires": "2026-12-31"}]},
            "exceptions[0].reason: required (why this is not a threat)",
        ),
        (
            {"exceptions": [exception(rule="process.shell", reason="  ")]},
            "exceptions[0].reason: required",
        ),
        ({"exceptions": [exception()]}, "exceptions[0].rule: a rule id"),
        (
            {"exceptions": [exception(rule="nope.*")]},
            "exceptions[0].rule: no rule matches 'nope.*'",
        ),
        (
            {"exceptions": [exception(rule="process.shell", expires=None)]},
            "exceptions[0].expires: required, a date (YYYY-MM-DD) or an RFC 3339 time",
        ),
        (
            {"exceptions": [exception(rule="process.shell", expires="next week")]},
            "exceptions[0].expires: 'next week' is not a date (YYYY-MM-DD)",
        ),
        (
            {"exceptions": [exception(rule="process.shell", expires=20261231)]},
            "exceptions[0].expires: required, a date",
        ),
        (
            {"exceptions": [exception(rule="process.shell", resource=["a"])]},
            "exceptions[0].resource: a glob of workload uids or names",
        ),
        (
            {"exceptions": [exception(rule="process.shell", tags=["team"])]},
            "exceptions[0].tags: a mapping of names to values",
        ),
        (
            {"exceptions": [exception(rule="process.shell", where="process.name")]},
            "exceptions[0].where: a mapping of names to values",
        ),
        (
            {"exceptions": [exception(rule="*")]},
            "exceptions[0]: an exception of every rule for everything; use disable",
        ),
        ({"disable": "network.tor"}, "disable: a list of rule ids"),
        ({"disable": ["network.*"]}, "disable[0]: no rule matches 'network.*'"),
        ({"disable": [3]}, "disable[0]: a rule id"),
        ({"severity": ["high"]}, "severity: a mapping of rule id to severity"),
        ({"severity": {"nope": "high"}}, "severity.nope: no rule matches 'nope'"),
        (
            {"severity": {"process.shell": "urgent"}},
            "severity.process.shell: one of informational, low, medium, high, critical or 1-5",
        ),
        ({"severity": {"process.shell": 7}}, "severity.process.shell: one of"),
    ],
)
def test_every_malformed_entry_is_named(doc, message):
    with pytest.raises(TuningError) as exc:
        tuned(doc)
    assert str(exc.value).startswith(message), str(exc.value)


def test_without_a_registry_rule_ids_are_not_checked():
    t = Tuning.parse({"disable": ["anything"], "exceptions": [exception(rule="x.*")]})
    assert t.disabled == frozenset({"anything"})


def test_load_yaml_and_json_files(tmp_path):
    yaml = tmp_path / "tuning.yaml"
    yaml.write_text(
        "exceptions:\n"
        "  - id: media\n"
        "    rule: process.shell\n"
        "    reason: image-resize runs ImageMagick through sh\n"
        "    expires: 2099-01-31\n"
        "    resource: 'arn:aws:lambda:*:*:function:image-*'\n"
        "    tags: {team: media}\n"
        "    where:\n"
        "      process.cmd_line: 'sh -c convert *'\n"
        "disable: [network.tor]\n"
        "severity: {process.curl: low}\n"
    )
    t = Tuning.load(yaml, REGISTRY)
    [e] = t.exceptions
    assert (e.id, e.rule, e.resource, dict(e.tags), dict(e.where)) == (
        "media",
        "process.shell",
        "arn:aws:lambda:*:*:function:image-*",
        {"team": "media"},
        {"process.cmd_line": "sh -c convert *"},
    )
    assert t.disabled == frozenset({"network.tor"})
    assert t.severities == {"process.curl": LOW}
    js = tmp_path / "tuning.json"
    js.write_text(json.dumps({"disable": ["network.tor"]}))
    assert Tuning.load(js, REGISTRY).disabled == frozenset({"network.tor"})


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(TuningError, match=r"missing.yaml: No such file or directory"):
        Tuning.load(tmp_path / "missing.yaml")
    bad_json = tmp_path / "t.json"
    bad_json.write_text("{nope")
    with pytest.raises(TuningError, match=rf"^{bad_json}: Expecting property name"):
        Tuning.load(bad_json)
    bad_yaml = tmp_path / "t.yaml"
    bad_yaml.write_text("exceptions:\n  - rule: [unclosed\n")
    with pytest.raises(TuningError, match=rf"^{bad_yaml}: "):
        Tuning.load(bad_yaml)
    wrong = tmp_path / "w.yaml"
    wrong.write_text("disable: [nope]\n")
    with pytest.raises(TuningError, match=rf"^{wrong}: disable\[0\]: no rule matches 'nope'$"):
        Tuning.load(wrong, REGISTRY)
