"""``ramparts rules list|test``: a user's rule folder, its cases and tuning, as a user runs them."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from collectors.rules import pack
from collectors.rules.cases import load_cases
from collectors.rules.engine import builtin
from ramparts_cli import main
from tests.cli.conftest import CliRun

CONTEXT = {"function": "orders", "account": "111122223333", "region": "eu-west-1"}


def spawn(executable: str, argv: list[str], seq: int = 3) -> dict[str, Any]:
    """A real-shaped sensor line: a process spawned by the function."""
    return {
        "ramparts": 1,
        "kind": "process.spawn",
        "verdict": "allow",
        "rule": None,
        "mode": "monitor",
        "executable": executable,
        "argv": argv,
        "op": "popen",
        "requested": argv[0],
        "sandbox": "5490db832e04c471",
        "seq": seq,
        "time": 1796417909458 + seq,
        "request_id": "25b18177-3d0d-4a8a-b2ec-d0d37aebbb66",
    }


ECHO = spawn("/usr/bin/echo", ["/bin/echo", "hello"])
LS = spawn("/usr/bin/ls", ["/bin/ls", "/tmp"])

GOOD_RULE = '''
from collectors.model import ProcessActivity
from collectors.rules import MEDIUM, Hit, rule


@rule(
    id="user.echo",
    title="echo spawned by a function",
    severity=MEDIUM,
    techniques=["T1059"],
    sources=["layer"],
    classes=[ProcessActivity],
)
def echo(event, ctx):
    """echo is never spawned by our functions."""
    if event.process.file and event.process.file.name == "echo":
        return Hit(key=event.process.file.path)
    return None
'''


def case(name: str, records: list[Any], **expect: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "source": "layer", "context": CONTEXT, "records": records}
    if expect:
        out["expect"] = expect
    return out


def write_folder(
    root: Path,
    rules: dict[str, str],
    cases: dict[str, dict[str, Any]] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in rules.items():
        (root / name).write_text(textwrap.dedent(body))
    if cases is not None:
        (root / "cases").mkdir(exist_ok=True)
        for name, doc in cases.items():
            (root / "cases" / name).write_text(json.dumps(doc))
    return root


GOOD_CASES = {
    "user.echo.json": {
        "rule": "user.echo",
        "fire": [case("echo spawned", [ECHO], count=1, key="/usr/bin/echo")],
        "quiet": [case("ls spawned", [LS])],
    }
}


@pytest.fixture
def ramparts(monkeypatch, capsys):
    monkeypatch.setattr(main, "_COMMAND_MODULES", ("ramparts_cli.rules", "ramparts_cli.replay"))

    def run(*argv: str | Path) -> CliRun:
        capsys.readouterr()
        try:
            code = main.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run


def test_a_good_folder_passes(ramparts, tmp_path):
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE}, GOOD_CASES)
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[:2] == ["PASS user.echo:fire:echo spawned", "PASS user.echo:quiet:ls spawned"]
    assert lines[-1] == (
        "ramparts rules test: 1 rules, 2 cases: 2 passed, 0 failed; 0 coverage problems"
    )


def test_a_failing_fire_case_fails_with_its_problem(ramparts, tmp_path):
    cases = {
        "user.echo.json": {
            "rule": "user.echo",
            "fire": [case("ls is not echo", [LS]), case("twice", [ECHO], count=2)],
            "quiet": [case("ls spawned", [LS])],
        }
    }
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE}, cases)
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 1
    path = folder / "cases" / "user.echo.json"
    assert f"FAIL user.echo:fire:ls is not echo: did not fire ({path})" in run.stdout
    assert f"FAIL user.echo:fire:twice: fired 1x, expected 2 ({path})" in run.stdout
    assert "PASS user.echo:quiet:ls spawned" in run.stdout
    assert run.stdout.splitlines()[-1].endswith("3 cases: 1 passed, 2 failed; 0 coverage problems")


def test_a_quiet_case_that_fires_fails(ramparts, tmp_path):
    cases = {
        "user.echo.json": {
            "rule": "user.echo",
            "fire": [case("echo", [ECHO])],
            "quiet": [case("echo is not quiet", [ECHO])],
        }
    }
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE}, cases)
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 1
    assert "FAIL user.echo:quiet:echo is not quiet: fired 1x: " in run.stdout


def test_a_rule_without_quiet_cases_fails_coverage(ramparts, tmp_path):
    cases = {"user.echo.json": {"rule": "user.echo", "fire": [case("echo", [ECHO])]}}
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE}, cases)
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 1
    assert f"FAIL coverage: user.echo: no 'quiet' case ({folder / 'echo.py'})" in run.stdout
    assert run.stdout.splitlines()[-1].endswith("1 passed, 0 failed; 1 coverage problems")


def test_a_folder_without_cases_fails_both_kinds(ramparts, tmp_path):
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE})
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 1
    assert "FAIL coverage: user.echo: no 'fire' case" in run.stdout
    assert "FAIL coverage: user.echo: no 'quiet' case" in run.stdout


def test_cases_of_a_rule_that_does_not_exist(ramparts, tmp_path):
    cases = dict(GOOD_CASES)
    cases["user.ghost.json"] = {"rule": "user.ghost", "fire": [case("x", [ECHO])]}
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE}, cases)
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 1
    assert "FAIL user.ghost:fire:x: no rule 'user.ghost'" in run.stdout
    assert "FAIL coverage: cases for 'user.ghost', which is not a rule" in run.stdout


def test_a_rule_that_raises_fails_its_cases(ramparts, tmp_path):
    broken = GOOD_RULE.replace("return Hit(key=event.process.file.path)", 'raise KeyError("boom")')
    folder = write_folder(tmp_path / "rules", {"echo.py": broken}, GOOD_CASES)
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 1
    assert "FAIL user.echo:fire:echo spawned: rule raised KeyError: 'boom'" in run.stdout


def test_a_syntax_error_is_exit_2_with_the_file(ramparts, tmp_path):
    folder = write_folder(
        tmp_path / "rules", {"echo.py": GOOD_RULE, "bad.py": "def oops(:\n"}, GOOD_CASES
    )
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert f"ramparts: error: {folder / 'bad.py'}: SyntaxError: " in run.stderr
    listed = ramparts("rules", "list", "--rules", folder)
    assert listed.exit_code == 2
    assert "SyntaxError" in listed.stderr


def test_a_duplicate_rule_id_is_exit_2(ramparts, tmp_path):
    folder = write_folder(
        tmp_path / "rules", {"a_echo.py": GOOD_RULE, "b_echo.py": GOOD_RULE}, GOOD_CASES
    )
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 2
    assert (
        f"{folder / 'b_echo.py'}: rule id 'user.echo' defined twice "
        f"({folder / 'a_echo.py'} and {folder / 'b_echo.py'})"
    ) in run.stderr


def test_a_rule_id_the_pack_has_is_exit_2(ramparts, tmp_path):
    taken = next(iter(builtin())).id
    folder = write_folder(
        tmp_path / "rules", {"echo.py": GOOD_RULE.replace("user.echo", taken)}, None
    )
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 2
    assert f"rule id '{taken}' defined twice (builtin and {folder / 'echo.py'})" in run.stderr


def test_a_bad_decorator_is_exit_2(ramparts, tmp_path):
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE.replace("T1059", "X1")})
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 2
    assert "user.echo: 'X1' is not a MITRE ATT&CK technique id" in run.stderr


def test_a_missing_folder_and_a_broken_case_file_are_exit_2(ramparts, tmp_path):
    run = ramparts("rules", "test", tmp_path / "nope")
    assert run.exit_code == 2
    assert "not a folder" in run.stderr
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE}, {})
    (folder / "cases" / "user.echo.json").write_text("{not json")
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 2
    assert f"{folder / 'cases' / 'user.echo.json'}: " in run.stderr
    (folder / "cases" / "user.echo.json").write_text(json.dumps({"rule": "user.echo", "fire": 3}))
    run = ramparts("rules", "test", folder)
    assert run.exit_code == 2
    assert "fire: a list of cases" in run.stderr


def test_the_builtin_pack(ramparts):
    cases = load_cases(Path(pack.__file__).parent / "cases")
    run = ramparts("rules", "test")
    lines = run.stdout.splitlines()
    assert len([line for line in lines if line.startswith(("PASS ", "FAIL "))]) == len(cases)
    assert lines[-1].startswith(f"ramparts rules test: {len(builtin())} rules, {len(cases)} cases")
    assert run.exit_code == (0 if all(line.startswith("PASS ") for line in lines[:-1]) else 1)


def test_list_shows_the_pack_and_user_rules(ramparts, tmp_path):
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE})
    run = ramparts("rules", "list", "--rules", folder, "--json")
    assert run.exit_code == 0
    rows = run.responses
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {r["id"] for r in rows} == {r.id for r in builtin()} | {"user.echo"}
    mine = next(r for r in rows if r["id"] == "user.echo")
    assert mine == {
        "id": "user.echo",
        "severity": "medium",
        "sources": ["layer"],
        "classes": ["Process Activity"],
        "techniques": ["T1059"],
        "title": "echo spawned by a function",
        "stateful": False,
        "origin": str(folder / "echo.py"),
    }
    table = ramparts("rules", "list", "--rules", folder)
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["ID", "SEVERITY", "SOURCES", "CLASSES", "TECHNIQUES"]
    echo = next(line for line in lines if line.startswith("user.echo "))
    assert re.split(r"\s{2,}", echo) == [
        "user.echo",
        "medium",
        "layer",
        "Process Activity",
        "T1059",
        "echo spawned by a function",
    ]
    n = len(builtin())
    assert lines[-1] == f"{n + 1} rules ({n} built-in, 1 yours)"


def test_tuning_is_checked_against_the_rules(ramparts, tmp_path):
    folder = write_folder(tmp_path / "rules", {"echo.py": GOOD_RULE}, GOOD_CASES)
    good = tmp_path / "tuning.yaml"
    good.write_text(
        "exceptions:\n"
        "  - rule: user.*\n"
        "    reason: the health check echoes\n"
        "    expires: 2099-01-31\n"
        "    resource: '*:function:orders'\n"
        "  - id: old\n"
        "    rule: user.echo\n"
        "    reason: was fine once\n"
        "    expires: 2020-01-31\n"
        "    where: {process.file.name: echo}\n"
        "disable: [user.echo]\n"
    )
    run = ramparts("rules", "test", folder, "--tuning", good)
    assert run.exit_code == 0, run.stdout
    assert f"WARN tuning: {good}: exception old expired 2020-01-31: it suppresses nothing" in (
        run.stdout
    )
    assert f"PASS tuning: {good}: 2 exceptions, 1 disabled, 0 severities" in run.stdout
    assert run.stdout.splitlines()[-1].endswith("; tuning ok; 1 warnings")

    bad = tmp_path / "bad.yaml"
    bad.write_text("severity: {user.nope: low}\n")
    run = ramparts("rules", "test", folder, "--tuning", bad)
    assert run.exit_code == 1
    assert f"FAIL tuning: {bad}: severity.user.nope: no rule matches 'user.nope'" in run.stdout
    assert run.stdout.splitlines()[-1].endswith("; tuning failed")

    run = ramparts("rules", "test", folder, "--tuning", tmp_path / "missing.yaml")
    assert run.exit_code == 2
    assert "missing.yaml: no such file" in run.stderr
