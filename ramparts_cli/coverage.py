"""``ramparts coverage``: which workloads a Ramparts sensor covers, and which it does not.

Lists every Lambda function, EC2 instance (EKS nodes included) and ECS task of the accounts
and regions given, with your credentials (other accounts through ``--role-name``, by default
the member role ``ramparts-responder``), reads when each sensor last reported (the baseline
table, ``--baseline-table``, or a JSON file, ``--seen``), and prints what is covered and why
the rest is not: the same computation as the scheduled inventory function
(``functions/inventory.py``; ``docs/coverage.md``).

Output: a table (default), the coverage snapshot (``--json``), or one OCSF Detection Finding
per uncovered workload (``--findings``, JSON lines). Exit status: 0 when everything listed
is covered, 1 when something is not (for CI), 2 when an account, region or service could
not be listed (reported on stderr and in the snapshot's ``errors``) or on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from ramparts_cli.errors import CliError


def _read_seen(path: str) -> Any:
    from functions.inventory import InventoryError, seen_from_json

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--seen {path}: {exc.strerror or exc}") from exc
    try:
        return seen_from_json(json.loads(text))
    except InventoryError as exc:
        raise CliError(f"--seen {path}: {exc}") from exc
    except ValueError as exc:
        raise CliError(f"--seen {path}: not valid JSON: {exc}") from exc


def _when(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    ago = (now_ms - ms) / 1000
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
    if ago < 3600:
        return f"{stamp} ({int(ago // 60)}m ago)"
    if ago < 172_800:
        return f"{stamp} ({int(ago // 3600)}h ago)"
    return f"{stamp} ({int(ago // 86400)}d ago)"


def table(snapshot: dict[str, Any]) -> str:
    """The snapshot as a text table, then the totals."""
    now = int(snapshot["time"])
    header = ("WORKLOAD", "TYPE", "COVERED", "SENSORS", "LAST SEEN", "PROBLEMS")
    rows = [
        (
            f"{w['name']} ({w['account']} {w['region']})",
            w["type"] + (f" {w['runtime']}" if w.get("runtime") else ""),
            "yes" if w["covered"] else "NO",
            ",".join(w["sensors"]) or "-",
            _when(w["last_seen_ms"], now),
            ",".join(w["problems"]) or "-",
        )
        for w in snapshot["workloads"]
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [header, *rows]
    ]
    s = snapshot["summary"]
    lines.append("")
    parts = [f"{k}: {v['covered']}/{v['total']}" for k, v in s["by_type"].items() if v["total"]]
    lines.append(
        f"covered {s['covered']} of {s['total']} workloads"
        + (f" ({', '.join(parts)})" if parts else "")
    )
    return "\n".join(lines)


def _cmd_coverage(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from functions.inventory import (
        InventoryError,
        Lister,
        Settings,
        compute,
        coverage_ocsf,
        new_record,
        read_seen,
        seen_keys,
    )

    if args.seen and args.baseline_table:
        raise CliError("give --seen or --baseline-table, not both")
    if not args.seen and not args.baseline_table:
        raise CliError(
            "where do the sensors' reports come from?",
            hint="--baseline-table ramparts-baseline (the Core stack's table) or --seen FILE",
        )
    seen = _read_seen(args.seen) if args.seen else None
    try:
        settings = Settings(
            layer_name=args.layer_name,
            current_layers=Settings.current_from(args.current_layer or []),
            silent_after_ms=int(args.silent_hours * 3_600_000),
            role_name=args.role_name,
            external_id=args.external_id,
            check_invocations=not args.no_invocations,
        )
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        lister = Lister(settings, session=session)
        accounts = [a.strip() for a in (args.accounts or "").split(",") if a.strip()]
        regions = [r.strip() for r in (args.regions or "").split(",") if r.strip()]
        if not regions:
            if not session.region_name:
                raise CliError("no region", hint="--regions us-east-1,eu-west-1")
            regions = [session.region_name]
        inv = lister.list(accounts or [lister.own_account], regions)
        if seen is None:
            ddb = session.client("dynamodb", region_name=args.table_region or regions[0])
            seen = read_seen(ddb, args.baseline_table, seen_keys(inv))
    except InventoryError as exc:
        raise CliError(str(exc)) from exc
    except NoCredentialsError as exc:
        raise CliError(str(exc), hint="configure AWS credentials (or --profile)") from exc
    except (ClientError, BotoCoreError) as exc:
        raise CliError(f"AWS: {exc}") from exc
    now = int(time.time() * 1000)
    snapshot = compute(inv, seen, now, settings)
    if args.json:
        print(json.dumps(snapshot, indent=2, sort_keys=True))
    elif args.findings:
        for w in snapshot["workloads"]:
            if w["covered"]:
                continue
            record = new_record(w, now)
            coverage = {
                "workload": w["key"],
                "problems": w["problems"],
                "explain": w["details"].get("explain", {}),
            }
            print(json.dumps(coverage_ocsf(record, None, coverage), separators=(",", ":")))
    else:
        print(table(snapshot))
    for e in snapshot["errors"]:
        print(
            f"ramparts: error: {e['account']} {e['region']} {e['service']}: {e['error']}",
            file=sys.stderr,
        )
    if snapshot["errors"]:
        return 2
    return 0 if snapshot["summary"]["covered"] == snapshot["summary"]["total"] else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "coverage",
        help="which Lambda functions, instances and tasks a sensor covers, and why not",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--accounts", help="comma-separated account ids (default: your own)")
    p.add_argument("--regions", help="comma-separated regions (default: your profile's)")
    p.add_argument(
        "--role-name",
        default="ramparts-responder",
        help="role assumed in the other accounts (default: ramparts-responder)",
    )
    p.add_argument("--external-id", help="sts:ExternalId for that role, when it requires one")
    p.add_argument("--profile", help="AWS profile of your credentials")
    p.add_argument("--region", help="region of the STS/DynamoDB clients (default: your profile's)")
    seen = p.add_mutually_exclusive_group()
    seen.add_argument("--baseline-table", help="read sensor reports from this table")
    seen.add_argument(
        "--seen",
        metavar="FILE",
        help="sensor reports as JSON ({workload key: {source: item}} or a list of items)",
    )
    p.add_argument("--table-region", help="region of --baseline-table (default: first region)")
    p.add_argument(
        "--layer-name",
        default="ramparts-sensor",
        help="the sensor layer's name prefix, or a layer ARN prefix (default: ramparts-sensor)",
    )
    p.add_argument(
        "--current-layer",
        action="append",
        metavar="ARN",
        help="a current layer version ARN (or name:version); repeat per runtime/architecture",
    )
    p.add_argument(
        "--silent-hours",
        type=float,
        default=24.0,
        help="a sensor silent for longer has stopped reporting (default: 24)",
    )
    p.add_argument(
        "--no-invocations",
        action="store_true",
        help="do not ask CloudWatch whether silent functions were invoked",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the coverage snapshot (JSON)")
    out.add_argument(
        "--findings",
        action="store_true",
        help="print one OCSF Detection Finding per uncovered workload (JSON lines)",
    )
    p.set_defaults(func=_cmd_coverage)
