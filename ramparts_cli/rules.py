"""``ramparts rules list|test``: the detection rules, and their cases, locally.

``list`` shows the built-in pack (and, with ``--rules DIR``, your own rules): id, severity,
sources, event classes, MITRE ATT&CK techniques and title, as a table or JSON lines.

``test`` runs rule cases (events that must fire a rule, events that must not) through the
engine exactly as ``collectors.rules.cases`` defines them: without DIR, the built-in pack's
cases; with DIR, the rules of ``DIR/*.py`` and the cases of ``DIR/cases/*.json``. A rule
without both a fire and a quiet case fails too. ``--tuning FILE`` also checks a tuning file
against the rules. One line per case (PASS or FAIL and the problem), then a summary.
Exit status: 0 when everything passed, 1 when something failed, 2 when the rules, their
cases or a file cannot be loaded at all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ramparts_cli.errors import CliError

if TYPE_CHECKING:
    from collectors.rules.engine import Registry


def load_registry(rules_dir: str | None, *, with_builtin: bool = True) -> Registry:
    """The pack and/or the rules of a folder; a folder that cannot be loaded is a CliError."""
    from collectors.rules.engine import Registry, RuleError, builtin, load_folder

    try:
        base = builtin() if with_builtin else Registry()
        if rules_dir is None:
            return base
        return base.merged(load_folder(rules_dir))
    except RuleError as exc:
        raise CliError(str(exc), hint=_hint(rules_dir)) from None


def _hint(rules_dir: str | None) -> str:
    if rules_dir is None:
        return ""
    return f"fix {rules_dir}: a rule file must import, and rule ids must be unique"


def _cmd_list(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from collectors.rules.docs import describe

    out = out or sys.stdout
    registry = load_registry(args.rules)
    rows = [describe(r) for r in sorted(registry, key=lambda r: r.id)]
    if args.json:
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
        return 0
    head = ("ID", "SEVERITY", "SOURCES", "CLASSES", "TECHNIQUES", "TITLE")
    cells = [
        (
            r["id"],
            r["severity"],
            ",".join(r["sources"]) or "any",
            ",".join(r["classes"]),
            ",".join(r["techniques"]),
            r["title"],
        )
        for r in rows
    ]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head[:-1])]
    for line in [head, *cells]:
        lead = "  ".join(v.ljust(w) for v, w in zip(line[:-1], widths, strict=True))
        out.write(f"{lead}  {line[-1]}\n")
    user = sum(1 for r in rows if r["origin"] != "builtin")
    out.write(f"{len(rows)} rules ({len(rows) - user} built-in, {user} yours)\n")
    return 0


def _check_tuning(path: str, registry: Registry, out: IO[str]) -> tuple[int, int]:
    """Check a tuning file against the rules: (failures, warnings), lines written to out."""
    from collectors.rules.tuning import Tuning, TuningError

    if not Path(path).is_file():
        raise CliError(f"{path}: no such file")
    try:
        tuning = Tuning.load(path, registry)
    except TuningError as exc:
        out.write(f"FAIL tuning: {exc}\n")
        return 1, 0
    warnings = 0
    for e in tuning.expired():
        when = dt.datetime.fromtimestamp(e.expires_ms / 1000, dt.UTC).date().isoformat()
        out.write(f"WARN tuning: {path}: exception {e.id} expired {when}: it suppresses nothing\n")
        warnings += 1
    out.write(
        f"PASS tuning: {path}: {len(tuning.exceptions)} exceptions, "
        f"{len(tuning.disabled)} disabled, {len(tuning.severities)} severities\n"
    )
    return 0, warnings


def _cmd_test(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from collectors.rules import pack
    from collectors.rules.cases import coverage_problems, load_cases, run_case
    from collectors.rules.engine import RuleError

    out = out or sys.stdout
    if args.dir is None:
        registry = load_registry(None)
        cases_dir = Path(pack.__file__).parent / "cases"
        tested = registry
    else:
        if not Path(args.dir).is_dir():
            raise CliError(f"{args.dir}: not a folder")
        tested = load_registry(args.dir, with_builtin=False)
        # Your rules run alongside the pack (replay --rules, the ingest function): an id the
        # pack already has is an error here too.
        registry = load_registry(args.dir)
        cases_dir = Path(args.dir) / "cases"
    try:
        cases = load_cases(cases_dir)
    except RuleError as exc:
        raise CliError(str(exc)) from None

    failed = passed = 0
    for case in cases:
        result, _ = run_case(case, registry)
        if result.ok:
            passed += 1
            out.write(f"PASS {case.label}\n")
        else:
            failed += 1
            out.write(f"FAIL {case.label}: {result.problem} ({case.path})\n")
    problems = list(coverage_problems(tested, cases))
    for p in problems:
        out.write(f"FAIL coverage: {p}\n")
    tuning_failed = warnings = 0
    if args.tuning is not None:
        tuning_failed, warnings = _check_tuning(args.tuning, registry, out)
    extra = f"; {warnings} warnings" if warnings else ""
    tuning = "" if args.tuning is None else f"; tuning {'failed' if tuning_failed else 'ok'}"
    out.write(
        f"ramparts rules test: {len(tested)} rules, {len(cases)} cases: {passed} passed, "
        f"{failed} failed; {len(problems)} coverage problems{tuning}{extra}\n"
    )
    return 1 if failed or problems or tuning_failed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rules",
        help="list the detection rules, test them against their cases",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="rules_command", metavar="ACTION")
    sub.required = True

    ls = sub.add_parser("list", help="the pack (and your rules): id, severity, sources, ...")
    ls.add_argument("--rules", metavar="DIR", help="your own rules (DIR/*.py), with the pack")
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    ls.set_defaults(func=_cmd_list)

    t = sub.add_parser("test", help="run rule cases: the pack's, or those of DIR/cases")
    t.add_argument(
        "dir",
        nargs="?",
        metavar="DIR",
        help="a folder of your rules (DIR/*.py) and their cases (DIR/cases/*.json)",
    )
    t.add_argument("--tuning", metavar="FILE", help="also check a tuning file against the rules")
    t.set_defaults(func=_cmd_test)
