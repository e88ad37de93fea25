"""The member account's responder role allows every call the responders make in a member
account (they assume it there), so a containment never stops at AccessDenied."""

from __future__ import annotations

import fnmatch
import importlib

from functions.respond import RESPONDERS, Permission
from tests.cdk.conftest import MEMBER, REGION, Synth

# Permissions on the core account's own resources, or the assume-role itself: not member calls.
_CORE = (
    "{actions_table_arn}",
    "{findings_table_arn}",
    "{evidence_bucket_arn}",
    "{topic_arn}",
    "{key_arn}",
    "{member_role_arns}",
)


def _as_list(x):
    return x if isinstance(x, list) else [x]


def member_role_actions(synth: Synth) -> set[str]:
    t = synth.template(f"RampartsMember-{MEMBER}-{REGION}")
    role = next(
        k
        for k, r in t["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == "ramparts-responder"
    )
    out = set()
    for r in t["Resources"].values():
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]:
            for st in r["Properties"]["PolicyDocument"]["Statement"]:
                if st.get("Effect") == "Allow":
                    out.update(_as_list(st["Action"]))
    return out


def test_member_role_allows_what_the_responders_call_there(synth: Synth) -> None:
    allowed = member_role_actions(synth)
    missing = []
    for name, handler in RESPONDERS.items():
        perms: list[Permission] = importlib.import_module(handler.rsplit(".", 1)[0]).PERMISSIONS
        for perm in perms:
            if all(r.startswith(_CORE) for r in perm.resources):
                continue
            for action in perm.actions:
                if not any(fnmatch.fnmatchcase(action, a) for a in allowed):
                    missing.append((name, action))
    assert missing == []
