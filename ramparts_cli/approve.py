"""Approve or deny a playbook run that waits for approval.

A playbook in ``approval`` mode (or past its circuit breaker) publishes a notification with a
task token and waits. ``ramparts approve TOKEN`` lets it continue (``SendTaskSuccess``);
``ramparts deny TOKEN [--reason TEXT]`` stops it (``SendTaskFailure``, error
``Ramparts.Denied``): the finding's response is recorded as denied and nothing is changed.
Credentials and region come from the usual AWS configuration (``--region``, ``--profile``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from ramparts_cli.errors import CliError

DENIED_ERROR = "Ramparts.Denied"
MAX_CAUSE = 32768


def _client(region: str | None, profile: str | None) -> Any:
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    return session.client("stepfunctions")


def _call(action: str, fn: Any, **kwargs: Any) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        fn(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("TaskDoesNotExist", "InvalidToken", "TaskTimedOut"):
            raise CliError(
                f"cannot {action}: the token is unknown, already used or expired ({code})"
            ) from None
        raise CliError(f"cannot {action}: {code}: {exc}") from None
    except BotoCoreError as exc:
        raise CliError(f"cannot {action}: {exc}") from None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def approve(token: str, *, client: Any, who: str = "") -> None:
    output = json.dumps({"approved": True, "by": who, "at": _now()}, separators=(",", ":"))
    _call("approve", client.send_task_success, taskToken=token, output=output)


def deny(token: str, *, client: Any, reason: str = "", who: str = "") -> None:
    cause = json.dumps(
        {"denied": True, "reason": reason, "by": who, "at": _now()}, separators=(",", ":")
    )
    _call(
        "deny",
        client.send_task_failure,
        taskToken=token,
        error=DENIED_ERROR,
        cause=cause[:MAX_CAUSE],
    )


def _token(raw: str) -> str:
    token = raw.strip()
    if not token:
        raise CliError("the task token is empty")
    return token


def _cmd_approve(args: argparse.Namespace) -> int:
    approve(_token(args.token), client=_client(args.region, args.profile), who=args.by or "")
    print("ramparts approve: the playbook continues", file=sys.stderr)
    return 0


def _cmd_deny(args: argparse.Namespace) -> int:
    deny(
        _token(args.token),
        client=_client(args.region, args.profile),
        reason=args.reason or "",
        who=args.by or "",
    )
    print("ramparts deny: the playbook stops; nothing was changed", file=sys.stderr)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("token", metavar="TOKEN", help="the task token from the notification")
    p.add_argument("--region", help="the region the playbooks run in")
    p.add_argument("--profile", help="AWS profile to use")
    p.add_argument("--by", help="who decides (recorded with the decision)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "approve",
        help="let a playbook that waits for approval continue",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.set_defaults(func=_cmd_approve)
    d = subparsers.add_parser(
        "deny",
        help="stop a playbook that waits for approval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(d)
    d.add_argument("--reason", help="why (recorded on the finding's response)")
    d.set_defaults(func=_cmd_deny)
