"""``ramparts vulns --db FILE PATH...``: known vulnerabilities of the Python packages in code.

Each PATH is what ``ramparts sbom`` reads (a code directory, a deployment zip, a layer zip)
or an existing CycloneDX SBOM (JSON). ``--db`` is an OSV database for PyPI: the zip osv.dev
publishes (``PyPI/all.zip``), a directory of OSV JSON files, or a JSON-lines file. Versions
are compared in PEP 440 order against the advisories' ECOSYSTEM ranges and explicit version
lists; withdrawn advisories are ignored.

Output: a table, one row per package and advisory, or with ``--json`` one OCSF Vulnerability
Finding (2002) per line: one per PATH and package version, listing each advisory (``cve``
when it has a CVE alias, ``advisory`` otherwise) with the fixed version, severity and
references.

Prioritisation: ``--imported``, ``--internet-reachable`` and ``--role-power`` say what is
known about the function at run time; the finding's severity is raised or lowered
accordingly and the reasons are written into it (see docs/vulnerabilities.md). Left out,
they change nothing.

Unusable metadata and malformed advisories are reported on stderr with their place (the
advisory's id) and reason, and counted; the rest is still matched. Exit status: 0 when no
package is affected, 1 when some are, 3 when none is but something could not be used,
2 for an unreadable PATH or database, or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ramparts_cli.errors import CliError

if TYPE_CHECKING:
    from collectors.vulns.findings import PackageMatches
    from collectors.vulns.inventory import Inventory
    from collectors.vulns.osv import Database

EXIT_AFFECTED, EXIT_PROBLEMS = 1, 3


def load_inventory(path: str) -> Inventory:
    """A directory or zip is scanned; a JSON file is read as a CycloneDX SBOM."""
    from collectors.vulns.sbom import is_cyclonedx, read_cyclonedx
    from ramparts_cli.sbom import scan_path

    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"{path}: {exc.strerror or exc}") from None
        except (ValueError, RecursionError) as exc:
            raise CliError(f"{path}: not JSON: {exc}") from None
        if not is_cyclonedx(doc):
            raise CliError(f"{path}: a JSON file here must be a CycloneDX SBOM")
        return read_cyclonedx(doc, path)
    return scan_path(path)


def load_db(path: str) -> Database:
    from collectors.vulns.osv import DatabaseError, load

    try:
        return load(path)
    except DatabaseError as exc:
        raise CliError(
            str(exc), hint="--db is an OSV zip (PyPI/all.zip), a directory or a JSONL file"
        ) from None


def _imported(value: str | None) -> set[str] | None:
    if value is None:
        return None
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{value[1:]}: {exc.strerror or exc}") from None
        items = text.split()
    else:
        items = value.split(",")
    return {x.strip() for x in items if x.strip()}


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows
    )


def _rows(pm: PackageMatches, priority: str, multi: bool) -> list[list[str]]:
    rows = []
    for m in pm.matches:
        adv = m.advisory
        score = adv.score
        row = [
            pm.name,
            pm.version,
            adv.id,
            adv.cve or "-",
            adv.severity or "Unknown",
            f"{score:.1f}" if score is not None else "-",
            m.fixed or "-",
            priority,
        ]
        rows.append([pm.source, *row] if multi else row)
    return rows


def _cmd_vulns(args: argparse.Namespace) -> int:
    from ramparts import __version__

    from collectors.vulns.findings import FindingInputs, match_inventory, prioritise, to_finding

    if args.function is not None and len(args.paths) != 1:
        raise CliError("--function names the function of one PATH; give exactly one PATH")
    imported = _imported(args.imported)
    reachable = {"yes": True, "no": False, None: None}[args.internet_reachable]
    inventories = [load_inventory(p) for p in args.paths]
    db = load_db(args.db)

    problems = 0
    for p in db.report.problems:
        print(f"{args.db}: {p}", file=sys.stderr)
    problems += len(db.report.problems)
    for inv in inventories:
        for p in inv.problems:
            print(f"{inv.source}: {p}", file=sys.stderr)
        problems += len(inv.problems)

    multi = len(inventories) > 1
    header = ["PACKAGE", "VERSION", "ADVISORY", "CVE", "SEVERITY", "SCORE", "FIXED IN", "PRIORITY"]
    rows: list[list[str]] = [["PATH", *header] if multi else header]
    packages = affected = advisories = 0
    out: list[str] = []
    for inv in inventories:
        for pm in match_inventory(db, inv):
            packages += 1
            if not pm.matches:
                continue
            affected += 1
            advisories += len(pm.matches)
            priority = prioritise(
                FindingInputs.of(pm),
                imported=imported,
                internet_reachable=reachable,
                role_power=args.role_power,
            )
            if args.json:
                finding = to_finding(pm, priority, function=args.function, tool_version=__version__)
                out.append(json.dumps(finding.to_ocsf(), separators=(",", ":")) + "\n")
            else:
                rows.extend(_rows(pm, priority.severity, multi))
    if args.json:
        sys.stdout.write("".join(out))
    elif affected:
        sys.stdout.write(_table(rows))
    r = db.report
    summary: dict[str, Any] = {
        "packages": packages,
        "affected": affected,
        "advisories": advisories,
    }
    print(
        f"ramparts vulns: {summary['packages']} packages in {len(inventories)} path(s); "
        f"{affected} affected ({advisories} advisory matches); database: {r.advisories} "
        f"PyPI advisories, {r.withdrawn} withdrawn, {len(r.problems)} problems; "
        f"{sum(len(i.problems) for i in inventories)} unusable metadata",
        file=sys.stderr,
    )
    if affected:
        return EXIT_AFFECTED
    return EXIT_PROBLEMS if problems else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "vulns",
        help="match the Python packages of code (or an SBOM) against OSV advisories",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a code directory, deployment zip, layer zip, or CycloneDX SBOM (.json)",
    )
    p.add_argument(
        "--db",
        required=True,
        metavar="FILE",
        help="OSV advisories: PyPI/all.zip, a directory of OSV JSON files, or JSON lines",
    )
    p.add_argument(
        "--json", action="store_true", help="print OCSF Vulnerability Findings, one per line"
    )
    p.add_argument(
        "--function",
        metavar="ARN",
        help="the Lambda function PATH is the code of (the findings' resource)",
    )
    p.add_argument(
        "--imported",
        metavar="MODULES",
        help="modules the function imports at run time: a,b,c or @FILE (one per line)",
    )
    p.add_argument(
        "--internet-reachable",
        choices=("yes", "no"),
        help="whether the function can be invoked from the internet",
    )
    p.add_argument(
        "--role-power",
        choices=("admin", "write", "read", "none"),
        help="how much the function's execution role can do",
    )
    p.set_defaults(func=_cmd_vulns)
