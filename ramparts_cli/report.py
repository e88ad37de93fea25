"""Compliance evidence for a period: coverage, findings, response actions, control mapping.

Reads either the live tables (``--findings-table``, ``--actions-table``,
``--baseline-table``, ``--bucket``; the caller's AWS credentials) or an export directory
(``--input DIR``, as ``--export DIR`` writes it, so an auditor can rerun the report offline).
``--from``/``--to`` take dates (whole days, UTC) or ISO date-times.

  ramparts report --from 2025-01-01 --to 2025-03-31 --findings-table ramparts-findings \\
      --actions-table ramparts-actions --baseline-table ramparts-baseline \\
      --bucket ramparts-evidence --region eu-west-1 --format html --out q1.html
  ramparts report --from 2025-01-01 --to 2025-03-31 ... --export q1-export/
  ramparts report --input q1-export/ --format csv --out q1-csv/      (or q1.zip)

Exit status: 0 written (items that could not be read are listed in the report and counted
on stderr), 2 bad arguments or a source that cannot be read. See docs/report.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ramparts_cli.errors import CliError


def _period(args: argparse.Namespace, exported: Any = None) -> Any:
    from collectors.report.period import Period, PeriodError

    try:
        if exported is not None and not (args.start or args.end):
            return exported
        if not (args.start and args.end):
            raise CliError(
                "--from and --to are required (with --input they default to the export's)"
            )
        period = Period.parse(args.start, args.end)
    except PeriodError as exc:
        raise CliError(f"bad period: {exc}") from None
    if exported is not None and not period.within(exported):
        span = exported.to_dict()
        raise CliError(
            f"the period is not within the export's ({span['from']} to {span['to']})",
            hint="export the period you want to report on with --export",
        )
    return period


def _live_source(args: argparse.Namespace) -> Any:
    missing = [
        flag
        for flag, value in (
            ("--findings-table", args.findings_table),
            ("--actions-table", args.actions_table),
            ("--baseline-table", args.baseline_table),
            ("--bucket", args.bucket),
        )
        if not value
    ]
    if missing:
        raise CliError(
            f"{', '.join(missing)} required (or --input DIR to read an export)",
            hint="the Core stack's outputs name the tables and the evidence bucket",
        )
    import boto3

    from functions.report_source import DynamoReportSource

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    return DynamoReportSource(
        findings_table=args.findings_table,
        actions_table=args.actions_table,
        baseline_table=args.baseline_table,
        bucket=args.bucket,
        dynamodb=session.client("dynamodb"),
        s3=session.client("s3"),
        region=session.region_name,
    )


def _write(report: dict[str, Any], fmt: str, out: str | None) -> None:
    from collectors.report.render import to_html, to_json, write_csv

    if fmt == "csv":
        if not out:
            raise CliError("--format csv needs --out DIR (or --out FILE.zip)")
        try:
            names = write_csv(report, out)
        except OSError as exc:
            raise CliError(f"cannot write {out}: {exc}") from None
        print(f"ramparts report: wrote {', '.join(names)} to {out}", file=sys.stderr)
        return
    text = to_html(report) if fmt == "html" else to_json(report)
    if not out or out == "-":
        sys.stdout.write(text)
        return
    try:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc}") from None
    print(f"ramparts report: wrote {out}", file=sys.stderr)


def _cmd_report(args: argparse.Namespace) -> int:
    from collectors.report.build import build_report, select_for_export
    from collectors.report.source import DirectorySource, SourceError, write_export

    try:
        if args.input:
            if args.export:
                raise CliError("--export reads the live tables; it cannot be used with --input")
            source: Any = DirectorySource(args.input)
            period = _period(args, source.period)
        else:
            period = _period(args)
            source = _live_source(args)
            if args.export:
                tables, snapshots = select_for_export(source, period)
                manifest = write_export(
                    args.export,
                    period=period,
                    source=source.describe(),
                    tables=tables,
                    snapshots=snapshots,
                )
                counts = ", ".join(f"{k} {v['lines']}" for k, v in manifest["files"].items())
                print(f"ramparts report: exported to {args.export} ({counts})", file=sys.stderr)
                if not args.out:
                    return 0
                source = DirectorySource(args.export)  # the report an auditor will rerun
        report = build_report(source, period)
    except SourceError as exc:
        raise CliError(str(exc)) from None
    _write(report, args.format, args.out)
    unreadable = report["summary"]["unreadable"]
    if unreadable:
        print(
            f"ramparts report: {unreadable} item(s) could not be read; they are listed under "
            "Problems in the report",
            file=sys.stderr,
        )
    if report["summary"]["no_data"]:
        print("ramparts report: no data in the period", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "report",
        help="compliance evidence for a period (HTML with charts, JSON, CSV)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", dest="start", metavar="DATE", help="start (date or ISO date-time)")
    p.add_argument("--to", dest="end", metavar="DATE", help="end (a date is included whole)")
    p.add_argument("--findings-table", metavar="T", help="the findings table")
    p.add_argument("--actions-table", metavar="T", help="the playbooks' actions table")
    p.add_argument("--baseline-table", metavar="T", help="the baseline table (coverage)")
    p.add_argument("--bucket", metavar="B", help="the evidence bucket (coverage snapshots)")
    p.add_argument("--region", metavar="R", help="the region of the tables and bucket")
    p.add_argument("--profile", metavar="P", help="AWS profile to use")
    p.add_argument("--input", metavar="DIR", help="read an export directory instead")
    p.add_argument("--export", metavar="DIR", help="write the period's items to DIR (offline)")
    p.add_argument("--format", choices=("html", "json", "csv"), default="html")
    p.add_argument(
        "--out", metavar="PATH", help="output file (html, json; default stdout) or csv DIR/.zip"
    )
    p.set_defaults(func=_cmd_report)
