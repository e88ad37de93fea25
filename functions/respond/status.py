"""A playbook's response status: on the actions table and on the finding itself.

The state machines call this responder when a run ends (applied, dry-run, denied, failed,
released); guardrails uses :func:`set_status` when it starts or skips a run.
"""

from __future__ import annotations

import json
from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, Permission
from functions.respond.common import (
    Guard,
    actions_table,
    expires_at,
    findings_table,
    now_iso,
    pk,
    traced,
)

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    Permission(("dynamodb:UpdateItem",), ("{findings_table_arn}",)),
    KEY_USE,
]

# statuses after which the same playbook may run again on the same finding
RERUNNABLE = ("dry-run", "denied", "failed", "skipped", "expired")
FINAL = ("applied", "dry-run", "denied", "failed", "skipped", "expired", "released")


def set_status(
    guard: Guard,
    status: str,
    reason: str = "",
    *,
    only_if: str | None = None,
    approval: dict[str, Any] | None = None,
) -> bool:
    """Set ``response#<playbook>``; with ``only_if``, a DynamoDB condition on the old item.

    Returns False when the condition fails (someone else owns the run).
    """
    from botocore.exceptions import ClientError

    item = {
        "pk": pk(guard["finding_id"]),
        "sk": f"response#{guard['playbook']}",
        "finding_id": guard["finding_id"],
        "playbook": guard["playbook"],
        "status": status,
        "reason": reason,
        "mode": guard.get("mode", ""),
        "resource": guard.get("resource_uid", ""),
        "account": guard.get("account", ""),
        "execution": guard.get("execution", ""),
        "decision": guard.get("decision", ""),
        "at": now_iso(),
        "expires_at": expires_at(),
    }
    if approval:
        item["approval"] = approval
    kwargs: dict[str, Any] = {"Item": item}
    if only_if is not None:
        kwargs["ConditionExpression"] = only_if
        kwargs["ExpressionAttributeNames"] = {"#s": "status"}
        kwargs["ExpressionAttributeValues"] = {f":r{i}": s for i, s in enumerate(RERUNNABLE)}
    try:
        actions_table().put_item(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    mark_finding(guard, status, reason)
    return True


def rerun_condition() -> str:
    names = ", ".join(f":r{i}" for i in range(len(RERUNNABLE)))
    return f"attribute_not_exists(pk) OR #s IN ({names})"


def mark_finding(guard: Guard, status: str, reason: str = "") -> None:
    """``response`` on the finding's item; a finding that is not stored is left alone."""
    from botocore.exceptions import ClientError

    try:
        findings_table().update_item(
            Key={"pk": f"finding#{guard['finding_id']}", "sk": "finding"},
            # the ingest writes findings conditioned on their version: bump it, so a
            # concurrent ingest write re-reads the item (and keeps this response)
            UpdateExpression="SET #r = :r ADD version :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#r": "response"},
            ExpressionAttributeValues={
                ":one": 1,
                ":r": {
                    "playbook": guard["playbook"],
                    "status": status,
                    "reason": reason,
                    "mode": guard.get("mode", ""),
                    "execution": guard.get("execution", ""),
                    "at": now_iso(),
                },
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def approval_of(event: dict[str, Any], status: str) -> dict[str, Any] | None:
    """Who approved or denied the run, and when (from ``ramparts approve``/``deny``)."""
    given = event.get("approval")
    if isinstance(given, dict) and given.get("approved") is True:
        return {
            "decision": "approved",
            "by": str(given.get("by") or ""),
            "at": str(given.get("at") or ""),
        }
    err = event.get("error")
    if status == "denied" and isinstance(err, dict):
        try:
            cause = json.loads(str(err.get("Cause") or "{}"))
        except ValueError:
            cause = {}
        if isinstance(cause, dict) and cause.get("denied") is True:
            return {
                "decision": "denied",
                "by": str(cause.get("by") or ""),
                "at": str(cause.get("at") or ""),
                "reason": str(cause.get("reason") or ""),
            }
    return None


@traced("status")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """``{"guard": {...}, "status": "...", "reason": "..."}`` -> the status written."""
    guard: Guard = event["guard"]
    status = str(event["status"])
    if status not in FINAL:
        raise ValueError(f"unknown final status {status!r}")
    reason = str(event.get("reason") or "")
    if isinstance(event.get("error"), dict):  # a Catch's error object
        err = event["error"]
        reason = f"{err.get('Error', '')}: {str(err.get('Cause', ''))[:500]}".strip(": ")
    set_status(guard, status, reason, approval=approval_of(event, status))
    if status == "released":  # the containment it undid is released too
        contained = {**guard, "playbook": guard["restores"]}
        set_status(contained, "released", f"by {guard.get('execution', '')}")
        mark_finding(guard, status, reason)
    return {"status": status, "reason": reason, "expires_at": str(expires_at())}
