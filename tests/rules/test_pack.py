"""The built-in pack: every rule's fire and quiet cases, and every rule has both kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.rules import pack
from collectors.rules.cases import coverage_problems, load_cases, run_case
from collectors.rules.engine import builtin
from collectors.rules.mitre import TECHNIQUES
from tests.ocsf import validate_ocsf

CASES_DIR = Path(pack.__file__).parent / "cases"
CASES = load_cases(CASES_DIR)
REGISTRY = builtin()


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_case(case) -> None:
    result, alerts = run_case(case, REGISTRY)
    assert result.ok, f"{case.path}: {case.label}: {result.problem}"
    for a in alerts:  # what a fired rule publishes is valid OCSF
        from collectors.findings import fold, to_ocsf

        record, _ = fold(None, [a])
        assert list(validate_ocsf(to_ocsf(record, "created"))) == []


def test_every_rule_has_fire_and_quiet_cases() -> None:
    assert list(coverage_problems(REGISTRY, CASES)) == []


def test_pack_size_and_techniques_named() -> None:
    rules = list(REGISTRY)
    assert len(rules) >= 25
    for r in rules:
        assert r.techniques, r.id
        for t in r.techniques:
            assert t in TECHNIQUES, f"{r.id}: {t} has no name in collectors/rules/mitre.py"
        assert r.description, f"{r.id}: a rule says what it detects in its docstring"
