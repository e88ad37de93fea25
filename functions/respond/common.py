"""What every responder shares: configuration, member-account sessions, the actions table.

Environment (set by the ``Playbooks`` construct):

``ACTIONS_TABLE``      actions table name (``pk``/``sk`` strings, TTL attribute ``expires_at``)
``FINDINGS_TABLE``     findings table name (item ``finding#<id>``/``finding``)
``EVIDENCE_BUCKET``    S3 bucket for evidence objects
``CORE_ACCOUNT``       the account the playbooks run in
``PLAYBOOKS_CONFIG``   JSON: ``{"accounts": [...], "regions": [...], "modes": {playbook: mode},
                       "breaker_limit": N, "retention_days": N}``

Actions table layout (all items: ``pk = "finding#<finding id>"``):

``sk = "response#<playbook>"``        the playbook's status for the finding
``sk = "action#<playbook>#<name>"``   one action: status, before, after, resource
``sk = "plan#<playbook>#<name>"``     one would-do action of a dry-run
``sk = "evidence#<playbook>"``        what the evidence step captured (and the S3 keys)
and, for the circuit breaker, ``pk = "breaker#<account>"``, ``sk = "hour#<YYYYMMDDHH>"``.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3

MEMBER_ROLE_NAME = "ramparts-responder"
REVOKE_POLICY_NAME = "ramparts-revoke-sessions"
EXEMPT_TAG = "ramparts:exempt"
CONTAINED_TAG = "ramparts:contained"
DEFAULT_RETENTION_DAYS = 400

Guard = dict[str, Any]  # the guardrails step's output, passed to every later step


@cache
def config() -> dict[str, Any]:
    raw = os.environ.get("PLAYBOOKS_CONFIG", "{}")
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("PLAYBOOKS_CONFIG must be a JSON object")
    return doc


def core_account() -> str:
    return os.environ["CORE_ACCOUNT"]


def actions_table() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["ACTIONS_TABLE"])


def findings_table() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["FINDINGS_TABLE"])


def evidence_bucket() -> str:
    return os.environ["EVIDENCE_BUCKET"]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expires_at() -> int:
    days = int(config().get("retention_days", DEFAULT_RETENTION_DAYS))
    return int(time.time()) + days * 86400


def member_role_arn(account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{MEMBER_ROLE_NAME}"


def session_for(guard: Guard) -> boto3.Session:
    """A session in the finding's account and region.

    Same account as the core: the responder's own role. Another account: the member's
    ``ramparts-responder`` role, assumed for this one step.
    """
    region = guard["region"]
    if not guard.get("cross_account"):
        return boto3.Session(region_name=region)
    sts = boto3.client("sts", region_name=region)
    creds = sts.assume_role(
        RoleArn=guard["role_arn"],
        RoleSessionName=f"ramparts-{guard['playbook']}"[:64],
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def pk(finding_id: str) -> str:
    return f"finding#{finding_id}"


def dumps(value: Any) -> str:
    """Before/after states are stored as canonical JSON strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def record_action(
    guard: Guard,
    name: str,
    *,
    status: str,
    before: Any,
    after: Any,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Write one action item; False (and nothing written) if it is already recorded.

    Would-do actions (dry-run) are ``plan#<playbook>#<name>`` items, so that a later real run
    records its own ``action#`` items.
    """
    from botocore.exceptions import ClientError

    kind = "plan" if status == "would-do" else "action"
    item: dict[str, Any] = {
        "pk": pk(guard["finding_id"]),
        "sk": f"{kind}#{guard['playbook']}#{name}",
        "finding_id": guard["finding_id"],
        "playbook": guard["playbook"],
        "action": name,
        "status": status,
        "resource": guard["resource_uid"],
        "account": guard["account"],
        "region": guard["region"],
        "before": dumps(before),
        "after": dumps(after),
        "execution": guard.get("execution", ""),
        "at": now_iso(),
        "expires_at": expires_at(),
    }
    if detail:
        item["detail"] = dumps(detail)
    try:
        actions_table().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def actions_of(finding_id: str, playbook: str) -> dict[str, dict[str, Any]]:
    """The recorded actions of a playbook on a finding, by action name."""
    from boto3.dynamodb.conditions import Key

    table = actions_table()
    out: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(pk(finding_id))
        & Key("sk").begins_with(f"action#{playbook}#"),
        "ConsistentRead": True,
    }
    while True:
        page = table.query(**kwargs)
        for item in page.get("Items", []):
            out[str(item["action"])] = item
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def get_item(finding_id: str, sk: str) -> dict[str, Any] | None:
    got = actions_table().get_item(Key={"pk": pk(finding_id), "sk": sk}, ConsistentRead=True)
    item: dict[str, Any] | None = got.get("Item")
    return item


def put_evidence(guard: Guard, evidence: dict[str, Any]) -> bool:
    """The evidence item of a playbook on a finding: the first capture is kept."""
    from botocore.exceptions import ClientError

    try:
        actions_table().put_item(
            Item={
                "pk": pk(guard["finding_id"]),
                "sk": f"evidence#{guard['playbook']}",
                "finding_id": guard["finding_id"],
                "playbook": guard["playbook"],
                "resource": guard["resource_uid"],
                "evidence": dumps(evidence),
                "execution": guard.get("execution", ""),
                "at": now_iso(),
                "expires_at": expires_at(),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def evidence_of(finding_id: str, playbook: str) -> dict[str, Any] | None:
    item = get_item(finding_id, f"evidence#{playbook}")
    if item is None:
        return None
    doc: dict[str, Any] = json.loads(item["evidence"])
    return doc


def put_object(key: str, body: bytes | str, content_type: str = "application/json") -> str:
    """One evidence object (SSE with the bucket's default key); returns its s3:// URI."""
    data = body.encode() if isinstance(body, str) else body
    bucket = evidence_bucket()
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    return f"s3://{bucket}/{key}"


def evidence_prefix(guard: Guard) -> str:
    return f"evidence/{guard['finding_id']}/{guard['playbook']}/"


def revoke_policy_document(issued_before: str) -> str:
    """Deny everything to sessions whose credentials were issued before ``issued_before``."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RampartsRevokeOlderSessions",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"DateLessThan": {"aws:TokenIssueTime": issued_before}},
                }
            ],
        },
        separators=(",", ":"),
    )


def role_name_of(role_arn: str) -> str:
    """``arn:aws:iam::1:role/path/name`` -> ``name``."""
    return role_arn.rsplit("/", 1)[-1]


def existing_inline_policy(iam: Any, role_name: str, policy_name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        doc = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity":
            return None
        raise
    return doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"))


Handler = Callable[..., Any]


def trace_parent(event: Any) -> tuple[str, str] | None:
    """The (trace id, span id) a responder's event carries: the guard's, or the finding's
    (the playbook's execution input) for the guardrails step."""
    from functions import telemetry

    if not isinstance(event, dict):
        return None
    guard = event.get("guard")
    if isinstance(guard, dict) and guard.get("trace_id") and guard.get("span_id"):
        return str(guard["trace_id"]), str(guard["span_id"])
    execution_input = event.get("input")
    if isinstance(execution_input, dict):
        return telemetry.trace_ids(execution_input.get("detail"))
    return None


def traced(name: str) -> Callable[[Handler], Handler]:
    """A ``ramparts.respond.<name>`` span around a responder, in the finding's trace."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(event: Any, context: Any = None) -> Any:
            from functions import telemetry

            guard = event.get("guard") if isinstance(event, dict) else None
            attrs: dict[str, Any] = {"ramparts.responder": name}
            if isinstance(guard, dict):
                attrs.update(
                    {
                        "ramparts.playbook": guard.get("playbook"),
                        "ramparts.finding.id": guard.get("finding_id"),
                        "ramparts.resource": guard.get("resource_uid"),
                        "ramparts.mode": guard.get("mode"),
                    }
                )
            with telemetry.span(
                f"ramparts.respond.{name}",
                service="ramparts-respond",
                parent=trace_parent(event),
                attributes=attrs,
            ):
                try:
                    return handler(event, context)
                finally:
                    telemetry.flush()

        return run

    return wrap
