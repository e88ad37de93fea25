"""``ramparts coverage``: table, JSON snapshot, findings, exit codes, against moto."""

from __future__ import annotations

import json
import time

import pytest

from tests.inventory.conftest import CORE, REGIONS, Aws
from tests.ocsf import validate_ocsf


def _main(argv: list[str]) -> int:
    """As ``ramparts`` runs it (the command is registered here until main.py lists it)."""
    import argparse

    from ramparts_cli import coverage
    from ramparts_cli.errors import CliError

    p = argparse.ArgumentParser(prog="ramparts")
    sub = p.add_subparsers(dest="command")
    coverage.register(sub)
    args = p.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"ramparts: error: {exc}")
        return exc.exit_code


def _base() -> list[str]:
    return ["coverage", "--regions", REGIONS[0], "--no-invocations"]


def test_table_json_and_exit_codes(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    ok = aws.core.protected("orders", REGIONS[0])
    aws.seen(f"lambda:{ok}", "layer", int(time.time() * 1000) - 60_000)
    assert _main([*_base(), "--baseline-table", "ramparts-baseline"]) == 0
    out = capsys.readouterr().out
    assert "orders" in out and "yes" in out and "covered 1 of 1 workloads" in out

    aws.core.function("legacy", REGIONS[0], runtime="nodejs20.x", handler="index.handler")
    assert _main([*_base(), "--baseline-table", "ramparts-baseline"]) == 1
    lines = capsys.readouterr().out.splitlines()
    row = next(x for x in lines if x.startswith("legacy"))
    assert "NO" in row and "runtime-not-supported" in row and "nodejs20.x" in row

    assert _main([*_base(), "--baseline-table", "ramparts-baseline", "--json"]) == 1
    snap = json.loads(capsys.readouterr().out)
    assert snap["summary"] == {
        "total": 2,
        "covered": 1,
        "by_type": {
            "lambda": {"total": 2, "covered": 1},
            "ec2": {"total": 0, "covered": 0},
            "ecs-task": {"total": 0, "covered": 0},
            "eks-node": {"total": 0, "covered": 0},
        },
    }
    assert snap["accounts"] == [CORE]

    assert _main([*_base(), "--baseline-table", "ramparts-baseline", "--findings"]) == 1
    findings = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(findings) == 1 and validate_ocsf(findings[0]) == []
    assert findings[0]["resources"][0]["name"] == "legacy"


def test_offline_seen_file_and_errors(aws: Aws, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    arn = aws.core.protected("orders", REGIONS[0])
    seen = tmp_path / "seen.json"
    seen.write_text(
        json.dumps(
            [{"workload": f"lambda:{arn}", "sk": "layer", "last_seen_ms": int(time.time() * 1000)}]
        )
    )
    assert _main([*_base(), "--seen", str(seen)]) == 0
    seen.write_text("{not json")
    assert _main([*_base(), "--seen", str(seen)]) == 2
    assert "not valid JSON" in capsys.readouterr().out
    seen.write_text(json.dumps({"lambda:x": {"layer": {"last_seen_ms": "yesterday"}}}))
    assert _main([*_base(), "--seen", str(seen)]) == 2
    assert "integer last_seen_ms" in capsys.readouterr().out
    assert _main([*_base()]) == 2  # no source of reports
    assert _main([*_base(), "--seen", str(tmp_path / "none.json")]) == 2
    assert "No such file" in capsys.readouterr().out
    seen.write_text("{}")
    assert _main([*_base(), "--accounts", "12345", "--seen", str(seen)]) == 2
    assert "not a 12-digit account id" in capsys.readouterr().out
    # an account that cannot be listed: exit 2, reported on stderr
    # (the CLI makes its own session from the environment: moto's fake credentials)
    import boto3

    real = boto3.session.Session

    class Denying(real):  # type: ignore[misc,valid-type]
        def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*a, **kw)
            from botocore.exceptions import ClientError

            def deny(**k) -> None:  # type: ignore[no-untyped-def]
                raise ClientError(
                    {"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole"
                )

            self.events.register("provide-client-params.sts.AssumeRole", deny)

    boto3.session.Session = Denying  # type: ignore[misc]
    try:
        code = _main([*_base(), "--seen", str(seen), "--accounts", f"{CORE},222222222222"])
    finally:
        boto3.session.Session = real  # type: ignore[misc]
    err = capsys.readouterr().err
    assert code == 2
    assert "222222222222 eu-west-1 sts: AccessDenied" in err
