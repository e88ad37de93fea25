"""Contain Lambda function, step 1: preserve evidence before anything changes.

Captures the configuration (with revision id and code hash), code location, layers,
resource policy, function URL configuration, reserved concurrency and tags; writes them to
the evidence bucket together with a copy of the code package, and to the actions table
(``evidence#contain-lambda``). Returns what the later steps need: the before-state of each
action (canonical JSON strings, written into action items by the state machine) and the
session-revocation policy (deny to tokens issued before now).

In dry-run nothing is written: the state is read so that the plan can say what would change.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from typing import Any

from functions.respond import ACTIONS_TABLE_RW, KEY_USE, MEMBER_ROLE, Permission
from functions.respond.common import (
    CONTAINED_TAG,
    REVOKE_POLICY_NAME,
    Guard,
    dumps,
    evidence_prefix,
    existing_inline_policy,
    now_iso,
    put_evidence,
    put_object,
    revoke_policy_document,
    role_name_of,
    session_for,
    traced,
)

PERMISSIONS = [
    ACTIONS_TABLE_RW,
    KEY_USE,
    MEMBER_ROLE,
    Permission(("s3:PutObject",), ("{evidence_bucket_arn}/evidence/*",)),
    Permission(
        (
            "lambda:GetFunction",
            "lambda:GetPolicy",
            "lambda:GetFunctionUrlConfig",
            "lambda:GetFunctionConcurrency",
            "lambda:ListTags",
        ),
        ("arn:{partition}:lambda:*:*:function:*",),
    ),
    Permission(("iam:GetRolePolicy",), ("arn:{partition}:iam::*:role/*",)),
]

_PUBLIC_CONDITION_KEYS = {
    "aws:sourcearn",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:sourcevpc",
    "aws:sourcevpce",
}


def download(url: str) -> bytes:
    """The code package behind ``GetFunction``'s presigned URL (only https is followed)."""
    if not url.startswith("https://"):
        raise ValueError("code location is not an https URL")
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - scheme checked
        data: bytes = resp.read()
    return data


def is_public(statement: dict[str, Any]) -> bool:
    """An Allow to everyone (``*``) not narrowed to a source, account or organisation."""
    if statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    values = principal if isinstance(principal, list) else [principal]
    if "*" not in values:
        return False
    for operator in (statement.get("Condition") or {}).values():
        if isinstance(operator, dict) and any(
            k.lower() in _PUBLIC_CONDITION_KEYS for k in operator
        ):
            return False
    return True


def _optional(call: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise


def capture(guard: Guard) -> dict[str, Any]:
    """The function's state as the playbook will change it (read only)."""
    session = session_for(guard)
    lam = session.client("lambda")
    arn = guard["resource_uid"]
    fn = lam.get_function(FunctionName=arn)
    conf = fn["Configuration"]
    policy_doc = _optional(lam.get_policy, FunctionName=arn)
    policy = json.loads(policy_doc["Policy"]) if policy_doc else None
    statements = (policy or {}).get("Statement") or []
    url = _optional(lam.get_function_url_config, FunctionName=arn)
    url_config = (
        {k: url[k] for k in ("AuthType", "Cors", "InvokeMode", "FunctionUrl") if k in url}
        if url
        else None
    )
    conc = lam.get_function_concurrency(FunctionName=arn).get("ReservedConcurrentExecutions")
    tags = lam.list_tags(Resource=arn).get("Tags", {})
    role_arn = conf.get("Role", "")
    role_name = role_name_of(role_arn) if role_arn else ""
    revoke_before = (
        existing_inline_policy(session.client("iam"), role_name, REVOKE_POLICY_NAME)
        if role_name
        else None
    )
    return {
        "configuration": {k: v for k, v in conf.items() if k != "ResponseMetadata"},
        "revision_id": conf.get("RevisionId"),
        "code_sha256": conf.get("CodeSha256"),
        "code": fn.get("Code", {}),
        "layers": conf.get("Layers", []),
        "policy": policy,
        "public_statements": [s for s in statements if is_public(s)],
        "url": url_config,
        "reserved_concurrency": conc,
        "tags": tags,
        "role_arn": role_arn,
        "role_name": role_name,
        "revoke_policy_before": revoke_before,
    }


def planned(guard: Guard, state: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    """What containment would do, as action records (for dry-run)."""
    steps: list[dict[str, Any]] = [
        {"action": "tag", "before": state["tags"].get(CONTAINED_TAG), "after": guard["finding_id"]},
        {"action": "concurrency", "before": state["reserved_concurrency"], "after": 0},
    ]
    if state["url"] is not None:
        steps.append({"action": "url", "before": state["url"], "after": None})
    for st in state["public_statements"]:
        steps.append(
            {"action": f"remove-statement#{st.get('Sid', '')}", "before": st, "after": None}
        )
    if state["role_name"]:
        steps.append({"action": "revoke", "before": state["revoke_policy_before"], "after": policy})
    return steps


@traced("lambda-evidence")
def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    guard: Guard = event["guard"]
    state = capture(guard)
    revoked_at = now_iso()
    out: dict[str, Any] = {
        "function_arn": guard["resource_uid"],
        "role_name": state["role_name"],
        "has_role": bool(state["role_name"]),
        "has_url": state["url"] is not None,
        "public_sids": [s.get("Sid", "") for s in state["public_statements"]],
        "revoked_at": revoked_at,
        "revoke_policy": revoke_policy_document(revoked_at),
        "before": {
            "tag": dumps(state["tags"].get(CONTAINED_TAG)),
            "concurrency": dumps(state["reserved_concurrency"]),
            "url": dumps(state["url"]),
            "revoke": dumps(state["revoke_policy_before"]),
        },
        "objects": [],
    }
    if guard.get("decision") == "dry-run":
        out["planned"] = planned(guard, state, out["revoke_policy"])
        return out
    prefix = evidence_prefix(guard)
    objects = [put_object(prefix + "function.json", dumps(state))]
    location = (state["code"] or {}).get("Location")
    if location:
        package = download(location)
        digest = hashlib.sha256(package).hexdigest()
        objects.append(put_object(prefix + "code.zip", package, "application/zip"))
        state["code_copy"] = {"sha256": digest, "size": len(package), "uri": objects[-1]}
    state["code"] = {k: v for k, v in (state["code"] or {}).items() if k != "Location"}
    state["code_location_captured"] = bool(location)
    state["objects"] = objects
    put_evidence(guard, state)
    out["objects"] = objects
    return out
