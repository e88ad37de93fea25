"""Guardrails: the first step of every playbook.

Reads the finding (the EventBridge event's ``detail``, or the finding itself), and decides:

``skip``      out of scope (account/region not configured), the resource is not the kind the
              playbook acts on, or it is tagged ``ramparts:exempt``; recorded as skipped.
``done``      this playbook already ran (or is running) on this finding: nothing happens.
``dry-run``   the playbook's mode is dry-run: actions are recorded as would-do.
``approval``  the mode is approval, or the circuit breaker is open: wait for a task token.
``act``       automatic.

The circuit breaker counts containments per account per hour (an atomic counter on the
actions table, ``breaker#<account>`` / ``hour#<YYYYMMDDHH>``); past ``breaker_limit`` the
run waits for approval instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from functions.aws_tags import read_tags
from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import (
    EXEMPT_TAG,
    Guard,
    actions_table,
    config,
    core_account,
    expires_at,
    get_item,
    member_role_arn,
    now_iso,
    record_action,
    session_for,
    traced,
)
from functions.respond.status import rerun_condition, set_status
from functions.telemetry import trace_ids

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    Permission(("dynamodb:UpdateItem",), ("{findings_table_arn}",)),
    KEY_USE,
    MEMBER_ROLE,
    Permission(("lambda:ListTags",), ("arn:{partition}:lambda:*:*:function:*",)),
    Permission(("ecs:ListTagsForResource",), ("arn:{partition}:ecs:*:*:task/*",)),
    Permission(("ec2:DescribeTags",), ("*",)),  # no resource-level permission
]

MODES = ("dry-run", "approval", "automatic")
DEFAULT_MODE = "dry-run"

# playbook -> (resource type it acts on, the containment it releases or None)
PLAYBOOKS: dict[str, tuple[str, str | None]] = {
    "contain-lambda": ("AwsLambdaFunction", None),
    "release-lambda": ("AwsLambdaFunction", "contain-lambda"),
    "isolate-ec2": ("AwsEc2Instance", None),
    "release-ec2": ("AwsEc2Instance", "isolate-ec2"),
    "stop-ecs-task": ("AwsEcsTask", None),
}

_LAMBDA_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"function:(?P<name>[A-Za-z0-9_-]{1,64})$"
)
_EC2_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_EC2_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ec2:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"instance/(?P<name>i-[0-9a-f]{8,17})$"
)
_ECS_TASK_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"task/(?P<cluster>[A-Za-z0-9_-]+)/(?P<name>[a-f0-9]{32}|[A-Za-z0-9-]+)$"
)


class Reject(Exception):
    """The finding does not name a resource this playbook may act on."""


def parse_finding(event: dict[str, Any]) -> dict[str, Any]:
    finding = event.get("detail", event)
    if not isinstance(finding, dict):
        raise Reject("the input carries no finding")
    info = finding.get("finding_info") or {}
    fid = info.get("uid")
    if not isinstance(fid, str) or not fid:
        raise Reject("the finding has no finding_info.uid")
    resources = finding.get("resources") or []
    if not resources or not isinstance(resources[0], dict):
        raise Reject("the finding names no resource")
    res = resources[0]
    cloud = finding.get("cloud") or {}
    account = (cloud.get("account") or {}).get("uid")
    region = cloud.get("region") or res.get("region")
    types = info.get("types") or []
    return {
        "finding_id": fid,
        "rule_id": (types[0] if types else None)
        or (finding.get("metadata") or {}).get("event_code", ""),
        "severity": int(finding.get("severity_id") or 0),
        "title": str(info.get("title") or finding.get("message") or ""),
        "resource_uid": str(res.get("uid") or ""),
        "resource_type": str(res.get("type") or ""),
        "account": str(account or ""),
        "region": str(region or ""),
    }


def resource_of(playbook: str, f: dict[str, Any]) -> dict[str, str]:
    """The one resource the playbook may touch: checked against the finding's account/region."""
    kind, _ = PLAYBOOKS[playbook]
    if f["resource_type"] != kind:
        raise Reject(f"{playbook} acts on {kind}, the finding's resource is {f['resource_type']}")
    uid = f["resource_uid"]
    out: dict[str, str] = {"partition": "aws"}
    if kind == "AwsLambdaFunction":
        m = _LAMBDA_ARN.match(uid)
        if not m:
            raise Reject(f"not an unqualified Lambda function ARN: {uid!r}")
    elif kind == "AwsEc2Instance":
        if _EC2_ID.match(uid):
            out.update(name=uid, arn=uid)
            return out
        m = _EC2_ARN.match(uid)
        if not m:
            raise Reject(f"not an EC2 instance id: {uid!r}")
    else:
        m = _ECS_TASK_ARN.match(uid)
        if not m:
            raise Reject(f"not an ECS task ARN: {uid!r}")
        out["cluster"] = m["cluster"]
    if m["account"] != f["account"] or m["region"] != f["region"]:
        raise Reject("the resource's ARN is in another account or region than the finding")
    out.update(name=m["name"], partition=m["partition"])
    return out


def _tags(guard: Guard) -> dict[str, str]:
    kind = {"AwsLambdaFunction": "lambda", "AwsEc2Instance": "ec2"}.get(
        guard["resource_type"], "ecs-task"
    )
    resource = guard["resource_name"] if kind == "ec2" else guard["resource_uid"]
    return read_tags(session_for(guard), kind, resource)


def _breaker_allows(account: str, limit: int) -> bool:
    """Count one containment in this account's hour; False when the limit is reached."""
    from botocore.exceptions import ClientError

    hour = datetime.now(UTC).strftime("%Y%m%d%H")
    try:
        actions_table().update_item(
            Key={"pk": f"breaker#{account}", "sk": f"hour#{hour}"},
            UpdateExpression="ADD #n :one SET expires_at = :exp",
            ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
            ExpressionAttributeNames={"#n": "count"},
            ExpressionAttributeValues={":one": 1, ":limit": limit, ":exp": expires_at()},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


# A finding's run that no longer holds its resource: it did not act, or was released (a
# release marks the containment it undid "released" too, see status.py).
_INACTIVE = ("dry-run", "denied", "failed", "skipped", "expired", "released")


def _owner_active(owner: str, playbook: str) -> bool:
    """Does ``owner``'s run of ``playbook`` still hold the resource?"""
    status = get_item(owner, f"response#{playbook}")
    return status is not None and status.get("status") not in _INACTIVE


def _claim_resource(guard: Guard) -> str | None:
    """Claim the finding's resource for this playbook; the finding holding it, if another.

    Item ``pk = "resource#<uid>"``, ``sk = "claim#<playbook>"`` on the actions table: the
    first finding on a resource claims it; later findings are skipped while that run holds
    it (awaiting approval, running or applied), and take it over once it no longer does
    (denied, failed, expired, or released)."""
    from botocore.exceptions import ClientError

    playbook, fid = guard["playbook"], guard["finding_id"]
    key = {"pk": f"resource#{guard['resource_uid']}", "sk": f"claim#{playbook}"}
    table = actions_table()
    for _ in range(3):
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
        extra: dict[str, Any] = {}
        if item is None:
            condition = "attribute_not_exists(pk)"
        else:
            owner = str(item.get("finding_id", ""))
            if owner == fid:
                return None
            if _owner_active(owner, playbook):
                return owner
            condition = "finding_id = :old"
            extra = {"ExpressionAttributeValues": {":old": owner}}
        try:
            table.put_item(
                Item={
                    **key,
                    "finding_id": fid,
                    "claimed_at": now_iso(),
                    "expires_at": expires_at(),
                },
                ConditionExpression=condition,
                **extra,
            )
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
    return "another finding (contended)"


def _skip(guard: Guard, reason: str) -> Guard:
    guard.update(decision="skip", reason=reason)
    if guard.get("finding_id"):
        record_action(
            guard,
            "guardrails",
            status="skipped",
            before=None,
            after=None,
            detail={"reason": reason},
        )
        set_status(guard, "skipped", reason, only_if=rerun_condition())
    return guard


def decide(playbook: str, event: dict[str, Any], execution: str = "") -> Guard:
    if playbook not in PLAYBOOKS:
        raise ValueError(f"unknown playbook {playbook!r}")
    cfg = config()
    mode = str((cfg.get("modes") or {}).get(playbook, DEFAULT_MODE))
    if mode not in MODES:
        raise ValueError(f"{playbook}: unknown mode {mode!r}")
    core = core_account()
    guard: Guard = {
        "playbook": playbook,
        "restores": PLAYBOOKS[playbook][1] or "",
        "mode": mode,
        "execution": execution,
        "decision": "",
        "reason": "",
        "finding_id": "",
        "resource_uid": "",
        "resource_name": "",
        "resource_type": "",
        "account": "",
        "region": "",
        "cross_account": False,
        "role_arn": "",
        "cluster": "",
        "started_at": now_iso(),
        "expires_at": str(expires_at()),
    }
    try:
        f = parse_finding(event)
    except Reject as exc:
        return _skip(guard, str(exc))
    guard.update(
        finding_id=f["finding_id"],
        rule_id=f["rule_id"],
        severity=f["severity"],
        title=f["title"],
        resource_uid=f["resource_uid"],
        resource_type=f["resource_type"],
        account=f["account"],
        region=f["region"],
    )
    ids = trace_ids(event.get("detail") if isinstance(event, dict) else None)
    if ids is not None:  # the sensor's trace: later steps' spans join it
        guard["trace_id"], guard["span_id"] = ids
    accounts = [str(a) for a in (cfg.get("accounts") or [core])]
    regions = [str(r) for r in (cfg.get("regions") or [])]
    if f["account"] not in accounts:
        return _skip(guard, f"account {f['account'] or '(none)'} is not in scope")
    if regions and f["region"] not in regions:
        return _skip(guard, f"region {f['region'] or '(none)'} is not in scope")
    try:
        res = resource_of(playbook, f)
    except Reject as exc:
        return _skip(guard, str(exc))
    guard.update(resource_name=res["name"], cluster=res.get("cluster", ""))
    if f["account"] != core:
        guard.update(cross_account=True, role_arn=member_role_arn(f["account"], res["partition"]))

    # idempotency: a run that is in progress or has acted owns the finding
    current = get_item(f["finding_id"], f"response#{playbook}")
    if current is not None and current.get("status") not in (
        "dry-run",
        "denied",
        "failed",
        "skipped",
        "expired",
    ):
        guard.update(decision="done", reason=f"already {current.get('status')}")
        return guard
    restores = PLAYBOOKS[playbook][1]
    if restores:
        contained = get_item(f["finding_id"], f"response#{restores}")
        # a containment that failed half-way is released too: only its applied actions are
        if contained is None or contained.get("status") not in ("applied", "failed"):
            return _skip(guard, f"{restores} has not been applied to this finding")

    if EXEMPT_TAG in _tags(guard):
        return _skip(guard, f"the resource is tagged {EXEMPT_TAG}")

    if not restores and mode != "dry-run":
        owner = _claim_resource(guard)
        if owner is not None:  # one containment per resource, whatever number of findings
            return _skip(guard, f"the resource is already being handled for finding {owner}")

    decision = {"dry-run": "dry-run", "approval": "approval", "automatic": "act"}[mode]
    reason = f"mode {mode}"
    if decision == "act" and not restores:
        limit = int(cfg.get("breaker_limit", 10))
        if not _breaker_allows(f["account"], limit):
            decision, reason = "approval", f"circuit breaker: {limit} containments this hour"
    guard.update(decision=decision, reason=reason)
    status = "awaiting-approval" if decision == "approval" else "running"
    if not set_status(guard, status, reason, only_if=rerun_condition()):
        guard.update(decision="done", reason="another run owns this finding")
    return guard


@traced("guardrails")
def handler(event: dict[str, Any], _context: Any = None) -> Guard:
    """``{"playbook": name, "input": <execution input>, "execution": arn}`` -> the guard."""
    return decide(str(event["playbook"]), event.get("input") or {}, str(event.get("execution", "")))
