"""cdk-nag (3.x) on every synth: the AwsSolutions and Serverless packs as validation plugins.

A finding that is by design is acknowledged on the construct it concerns, with its reason,
through CDK's ``Validations.of(scope).acknowledge`` (cdk-nag 3 has no ``NagSuppressions``).
Any other error stops synthesis with the validation report.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

__all__ = ["acknowledge", "acknowledge_runtime", "add_nag", "nag_name", "nag_spelling"]

_PSEUDO = re.compile(r"\$\{Token\[AWS\.([A-Za-z]+)\.\d+\]\}")


def add_nag(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one nag finding (``AwsSolutions-IAM5[Resource::*]``) on ``scope``."""
    if len(reason.strip()) < 10:
        raise ValueError(f"{rule_id}: an acknowledgement needs a real reason")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def nag_name(resource: str) -> str:
    """How cdk-nag spells a resource in a finding id: pseudo parameters as ``<AWS::Name>``."""
    return _PSEUDO.sub(lambda m: f"<AWS::{m.group(1)}>", resource)


def acknowledge_runtime(fn: IConstruct) -> None:
    """python3.13 rather than the newest runtime: what the pinned dependencies are tested on."""
    for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
        acknowledge(
            fn,
            rule,
            "Pinned to python3.13, the newest runtime the platform's dependencies and tests "
            "cover; moved forward deliberately, not by a synth.",
        )


def nag_spelling(value: object) -> str | None:
    """How cdk-nag spells a resolved (CloudFormation) resource value in a finding id:
    ``Fn::GetAtt`` as ``<Logical.Attr>``, ``Ref`` as ``<Logical>`` or ``<AWS::Name>``,
    ``Fn::Join`` concatenated; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref" and isinstance(arg, str):
            return f"<{arg}>"
        if fn == "Fn::GetAtt" and isinstance(arg, list) and len(arg) == 2:
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            parts = [nag_spelling(x) for x in arg[1]]
            if all(p is not None for p in parts):
                return str(arg[0]).join(p for p in parts if p is not None)
    return None
