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

__all__ = ["acknowledge", "add_nag", "nag_name"]

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
