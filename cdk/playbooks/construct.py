"""The ``Playbooks`` construct: responder functions, one state machine per playbook, routing.

The state machines' definitions come from :mod:`cdk.playbooks.definitions`; each responder's
IAM policy comes from the ``PERMISSIONS`` its module declares (:mod:`functions.respond`); the
state machines' own policy from the SDK integrations their definitions use.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from cdk.nag import acknowledge, acknowledge_runtime, nag_spelling
from cdk.playbooks import definitions
from functions.respond import RESPONDERS, Permission

PLAYBOOKS = tuple(definitions.DEFINITIONS)
MODES = ("dry-run", "approval", "automatic")
REPO_ROOT = Path(__file__).resolve().parents[2]

# resource patterns of the SDK integrations' IAM actions, by service; Describe/List/Get
# calls of EC2 and Auto Scaling take no resource-level permission ("*")
_SDK_RESOURCES = {
    "lambda": ("arn:{partition}:lambda:*:*:function:*",),
    "iam": ("arn:{partition}:iam::*:role/*",),
    "ec2": ("arn:{partition}:ec2:*:*:instance/*",),
    "autoscaling": ("arn:{partition}:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*",),
    "ecs": ("arn:{partition}:ecs:*:*:task/*",),
}
_UNSCOPED_VERBS = ("Describe", "List", "Get")


def sdk_resources(service: str, action: str) -> tuple[str, ...]:
    """The resources an SDK integration's IAM action is granted on."""
    verb = action.split(":", 1)[1]
    if service in ("ec2", "autoscaling") and verb.startswith(_UNSCOPED_VERBS):
        return ("*",)
    return _SDK_RESOURCES[service]


@dataclass(frozen=True, slots=True)
class Route:
    """Findings that start a playbook: resource types, a minimum severity, finding types.

    ``include_types``: only these finding types (rule ids, ``finding_info.types``);
    ``exclude_types``: all but these (ignored when ``include_types`` is set, minus them).
    """

    playbook: str
    resource_types: tuple[str, ...]
    min_severity: int = 4
    include_types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()

    def pattern(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "resources": {"type": list(self.resource_types)},
            "severity_id": [{"numeric": [">=", self.min_severity]}],
        }
        if self.include_types:
            kept = [t for t in self.include_types if t not in self.exclude_types]
            detail["finding_info"] = {"types": kept}
        elif self.exclude_types:
            detail["finding_info"] = {"types": [{"anything-but": list(self.exclude_types)}]}
        return {"source": ["ramparts"], "detail-type": ["Ramparts Finding"], "detail": detail}


DEFAULT_ROUTES = (
    Route("contain-lambda", ("AwsLambdaFunction",)),
    Route("isolate-ec2", ("AwsEc2Instance",)),
    Route("stop-ecs-task", ("AwsEcsTask",)),
)


@dataclass(frozen=True, slots=True)
class PlaybooksConfig:
    """Per-playbook mode, scope, circuit breaker and routing.

    ``accounts``: accounts the playbooks may act in (default: the stack's own account);
    ``regions``: regions they may act in (default: any). Release playbooks have no route:
    they are started by hand (see docs/playbooks.md).
    """

    modes: dict[str, str] = field(default_factory=dict)  # playbook -> mode (default dry-run)
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    breaker_limit: int = 10
    approval_timeout_s: int = 86400
    retention_days: int = 400
    routes: tuple[Route, ...] = DEFAULT_ROUTES

    def __post_init__(self) -> None:
        for playbook, mode in self.modes.items():
            if playbook not in PLAYBOOKS:
                raise ValueError(f"unknown playbook {playbook!r}")
            if mode not in MODES:
                raise ValueError(f"{playbook}: mode must be one of {MODES}, not {mode!r}")
        for route in self.routes:
            if route.playbook not in PLAYBOOKS or route.playbook.startswith("release-"):
                raise ValueError(f"cannot route findings to {route.playbook!r}")
            if not 1 <= route.min_severity <= 6:
                raise ValueError("min_severity is an OCSF severity_id (1-6)")
        if self.breaker_limit < 0:
            raise ValueError("breaker_limit must be >= 0")

    def runtime(self, core_account: str) -> dict[str, Any]:
        """What the responders read (``PLAYBOOKS_CONFIG``)."""
        return {
            "accounts": list(self.accounts) or [core_account],
            "regions": list(self.regions),
            "modes": {p: self.modes.get(p, "dry-run") for p in PLAYBOOKS},
            "breaker_limit": self.breaker_limit,
            "retention_days": self.retention_days,
        }


def member_accounts(config: PlaybooksConfig, core_account: str) -> list[str]:
    return [a for a in config.accounts if a != core_account]


def permissions_of(responder: str) -> list[Permission]:
    module = RESPONDERS[responder].rsplit(".", 1)[0]
    perms: list[Permission] = importlib.import_module(module).PERMISSIONS
    return perms


def expand(perm: Permission, names: dict[str, str], member_roles: list[str]) -> list[str]:
    """A permission's resources with the placeholders filled in ([] when none applies)."""
    out: list[str] = []
    for pattern in perm.resources:
        if pattern == "{member_role_arns}":
            out.extend(member_roles)
        else:
            out.append(pattern.format(**names))
    return out


def default_code() -> lambda_.Code:
    """The responders' package: ``functions/`` only (boto3 is in the Lambda runtime)."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        exclude=["*", "!functions", "!functions/**", "**/__pycache__", "**/*.pyc"],
    )


class Playbooks(Construct):
    """Response playbooks on Step Functions, started by EventBridge rules on the findings bus."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        actions_table: Any,  # aws_dynamodb.ITable
        findings_table: Any,  # aws_dynamodb.ITable
        evidence_bucket: Any,  # aws_s3.IBucket
        topic: Any,  # aws_sns.ITopic
        key: Any,  # aws_kms.IKey
        config: PlaybooksConfig | None = None,
        code: lambda_.Code | None = None,
        layers: list[lambda_.ILayerVersion] | None = None,  # OpenTelemetry for the spans
    ) -> None:
        super().__init__(scope, construct_id)
        config = config or PlaybooksConfig()
        stack = cdk.Stack.of(self)
        core = stack.account
        self.config = config
        member_roles = [
            f"arn:{stack.partition}:iam::{a}:role/ramparts-responder"
            for a in member_accounts(config, core)
        ]
        names = {
            "partition": stack.partition,
            "core_account": core,
            "actions_table_arn": actions_table.table_arn,
            "findings_table_arn": findings_table.table_arn,
            "evidence_bucket_arn": evidence_bucket.bucket_arn,
            "topic_arn": topic.topic_arn,
            "key_arn": key.key_arn,
        }
        env = {
            "ACTIONS_TABLE": actions_table.table_name,
            "FINDINGS_TABLE": findings_table.table_name,
            "EVIDENCE_BUCKET": evidence_bucket.bucket_name,
            "CORE_ACCOUNT": core,
            "PLAYBOOKS_CONFIG": json.dumps(config.runtime(core), separators=(",", ":")),
        }
        code = code or default_code()
        retention = logs.RetentionDays.ONE_YEAR
        self.responders: dict[str, lambda_.Function] = {}
        for name, handler in RESPONDERS.items():
            # An own role and log group: no AWSLambdaBasicExecutionRole (logs on "*").
            log_group = logs.LogGroup(
                self,
                f"ResponderLogs-{name}",
                retention=retention,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            role = iam.Role(
                self,
                f"ResponderRole-{name}",
                description=f"Ramparts playbook responder {name}: its declared permissions",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            )
            fn = lambda_.Function(
                self,
                f"Responder-{name}",
                runtime=lambda_.Runtime.PYTHON_3_13,
                architecture=lambda_.Architecture.ARM_64,
                handler=handler,
                code=code,
                timeout=cdk.Duration.minutes(5),
                memory_size=512,
                environment=env,
                description=f"Ramparts playbook responder: {name}",
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                layers=layers,
            )
            acknowledge_runtime(fn)
            acknowledge(
                fn,
                "Serverless-LambdaDLQ",
                "Invoked synchronously by its state machine, which catches a failure, records "
                "it on the actions table and notifies: there is no asynchronous event to lose.",
            )
            for perm in permissions_of(name):
                resources = expand(perm, names, member_roles)
                if resources:
                    role.add_to_policy(
                        iam.PolicyStatement(actions=list(perm.actions), resources=resources)
                    )
            self.responders[name] = fn

        ctx = definitions.Context(
            partition=stack.partition,
            responders={n: f.function_arn for n, f in self.responders.items()},
            actions_table=actions_table.table_name,
            topic_arn=topic.topic_arn,
            approval_timeout_s=config.approval_timeout_s,
        )
        self.definitions: dict[str, dict[str, Any]] = {}
        self.state_machines: dict[str, sfn.StateMachine] = {}
        for playbook, build in definitions.DEFINITIONS.items():
            doc = build(ctx)
            self.definitions[playbook] = doc
            role = iam.Role(
                self,
                f"Role-{playbook}",
                assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            )
            for fn in self.responders.values():
                fn.grant_invoke(role)
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:PutItem"], resources=[actions_table.table_arn]
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                )
            )
            for service, action in sorted(definitions.sdk_actions(doc)):
                role.add_to_policy(
                    iam.PolicyStatement(
                        actions=[action],
                        resources=[p.format(**names) for p in sdk_resources(service, action)],
                    )
                )
            if member_roles:
                role.add_to_policy(
                    iam.PolicyStatement(actions=["sts:AssumeRole"], resources=member_roles)
                )
            sm_logs = logs.LogGroup(
                self,
                f"PlaybookLogs-{playbook}",
                retention=retention,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            sm = sfn.StateMachine(
                self,
                f"Playbook-{playbook}",
                definition_body=sfn.DefinitionBody.from_string(stack.to_json_string(doc)),
                role=role,
                comment=doc["Comment"],
                tracing_enabled=True,
                # every state's input and output: the audit trail of a containment
                logs=sfn.LogOptions(
                    destination=sm_logs, level=sfn.LogLevel.ALL, include_execution_data=True
                ),
            )
            self.state_machines[playbook] = sm

        # Events EventBridge could not deliver to a playbook (throttling, a deleted machine).
        self.undelivered = sqs.Queue(
            self,
            "UndeliveredFindings",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.undelivered,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the playbook routing rules.",
        )
        acknowledge(
            self.undelivered,
            "Serverless-SQSRedrivePolicy",
            "This queue is itself the dead-letter queue of the playbook routing rules.",
        )
        self.rules: dict[str, events.Rule] = {}
        for i, route in enumerate(config.routes):
            pattern = route.pattern()
            rule = events.Rule(
                self,
                f"Route-{i}-{route.playbook}",
                event_bus=bus,
                description=f"Ramparts findings -> playbook {route.playbook}",
                event_pattern=events.EventPattern(
                    source=pattern["source"],
                    detail_type=pattern["detail-type"],
                    detail=pattern["detail"],
                ),
            )
            rule.add_target(
                targets.SfnStateMachine(
                    self.state_machines[route.playbook],
                    dead_letter_queue=self.undelivered,
                    retry_attempts=8,
                )
            )
            self.rules[f"{i}-{route.playbook}"] = rule
        own = {
            stack.resolve(stack.get_logical_id(fn.node.default_child))  # type: ignore[arg-type]
            for fn in self.responders.values()
        }
        cdk.Aspects.of(self).add(_AcknowledgeWildcards(frozenset(own)))


# Wildcard resources the playbooks need, and why: any other wildcard still fails cdk-nag.
_WILDCARD_REASONS: tuple[tuple[str, str], ...] = (
    (
        ":lambda:*:*:function:*",
        "Playbooks act on whichever function a finding names, in any protected account and "
        "region; the guardrails step limits every run to the finding's own resource and skips "
        "resources tagged ramparts:exempt.",
    ),
    (
        ":iam::*:role/*",
        "Session revocation puts a deny policy on the execution role of the function, "
        "instance or task a finding names; the member role never touches Ramparts' own roles.",
    ),
    (
        "/evidence/*",
        "Evidence objects are written under the evidence/ prefix of the evidence bucket.",
    ),
    (
        ":ec2:*:",
        "EC2 isolation and evidence (instances, network interfaces, security groups, volumes, "
        "snapshots) on whichever instance a finding names, in any protected account and "
        "region; the guardrails step limits every run to the finding's own resource.",
    ),
    (
        ":autoscaling:*:*:autoScalingGroup:*",
        "Detaching the finding's instance from whichever Auto Scaling group holds it, and "
        "re-attaching it on release.",
    ),
    (
        ":ecs:*:*:task/*",
        "Stopping and describing the task a finding names, in any protected account/region.",
    ),
    (
        ":instance-profile/*",
        "Reading the instance profile of the finding's instance to find the role to revoke.",
    ),
)
# grant_invoke's "<function ARN>:*": any version or alias of the playbooks' own responders
_OWN_RESPONDER_VERSIONS = "Invoking any version or alias of the playbooks' own responders."
_STAR_REASON = (
    "EC2, Auto Scaling and ECS response and evidence calls (Describe*, snapshots, security "
    "groups, task definitions) on whichever instance or task a finding names, in any "
    "protected account and region; many take no resource-level permission. X-Ray and "
    "CloudWatch Logs vended delivery have no resource-level permissions."
)


@jsii.implements(cdk.IAspect)
class _AcknowledgeWildcards:
    """Acknowledge each wildcard resource of the playbooks' policies that is by design,
    spelled as cdk-nag reports it, with its reason."""

    def __init__(self, responders: frozenset[str]) -> None:
        self.versions = {f"<{r}.Arn>:*" for r in responders}

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, iam.CfnPolicy):
            return
        doc = cdk.Stack.of(node).resolve(node.policy_document)
        for st in doc.get("Statement", []):
            res = st.get("Resource", [])
            for r in res if isinstance(res, list) else [res]:
                name = nag_spelling(r)
                if name is None or "*" not in name:
                    continue
                reason = _STAR_REASON if name == "*" else None
                if name in self.versions:
                    reason = _OWN_RESPONDER_VERSIONS
                for fragment, why in _WILDCARD_REASONS:
                    if reason is None and fragment in name:
                        reason = why
                if reason is not None:
                    acknowledge(node, f"AwsSolutions-IAM5[Resource::{name}]", reason)
