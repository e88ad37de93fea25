"""Responders: the Lambda task handlers of the response playbooks (``cdk/playbooks``).

One module per concern. Each module declares the IAM permissions it needs as data,
``PERMISSIONS``: a list of :class:`Permission` whose resource patterns name the deployment's
resources by placeholder. The ``Playbooks`` construct turns these declarations into the
policies of each responder's role, so code and policy cannot drift apart.

Placeholders: ``{partition}``, ``{core_account}``, ``{actions_table_arn}``,
``{findings_table_arn}``, ``{evidence_bucket_arn}``, ``{topic_arn}``, ``{key_arn}``,
``{member_role_arns}`` (one resource per configured member account's
``ramparts-responder`` role; the statement is dropped when there is none).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Permission:
    """IAM actions allowed on resource patterns (placeholders in ``{}``)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]


# responder name -> (module, handler function); the construct deploys one function each.
RESPONDERS: dict[str, str] = {
    "guardrails": "functions.respond.guardrails.handler",
    "status": "functions.respond.status.handler",
    "plan": "functions.respond.plan.handler",
    "lambda-evidence": "functions.respond.lambda_evidence.handler",
    "lambda-policy": "functions.respond.lambda_policy.handler",
    "lambda-release": "functions.respond.lambda_release.handler",
    "ec2-evidence": "functions.respond.ec2_evidence.handler",
    "ec2-isolate": "functions.respond.ec2_isolate.handler",
    "ec2-release": "functions.respond.ec2_release.handler",
    "ecs-evidence": "functions.respond.ecs_evidence.handler",
    "ecs-stop": "functions.respond.ecs_stop.handler",
}

# Shared by every responder that works in a member account or on the core tables.
MEMBER_ROLE = Permission(("sts:AssumeRole",), ("{member_role_arns}",))
ACTIONS_TABLE_RW = Permission(
    ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"),
    ("{actions_table_arn}",),
)
KEY_USE = Permission(("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"), ("{key_arn}",))
