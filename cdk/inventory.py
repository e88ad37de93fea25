"""The inventory: a scheduled Lambda that says which workloads a sensor covers (Core stack).

``functions/inventory.py`` lists every function, instance and task of the configured accounts
and regions (other accounts through their ``ramparts-responder`` role), writes a coverage
snapshot to the evidence bucket with a summary in the baseline table, and keeps one finding
per uncovered workload on the bus. Least privilege: read-only List/Describe actions (which
take no resource-level permissions), ``sts:AssumeRole`` on the members' role only, the two
tables, the bus, the evidence bucket's ``coverage/`` prefix and the key.

The members' ``ramparts-responder`` role must allow, for the inventory:
``lambda:ListFunctions``, ``ec2:DescribeInstances``, ``ecs:ListClusters``, ``ecs:ListTasks``,
``ecs:DescribeTasks``, ``ecs:DescribeContainerInstances`` and ``cloudwatch:GetMetricData``
(see :data:`MEMBER_ACTIONS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.bundling import (
    INGEST_REQUIREMENTS,
    REPO_ROOT,
    CodeBundler,
    DependencyBundler,
    bundling_options,
)
from cdk.nag import acknowledge

__all__ = [
    "ECS_DESCRIBE_ACTIONS",
    "INVENTORY_HANDLER",
    "LIST_ACTIONS",
    "MEMBER_ACTIONS",
    "Inventory",
    "InventoryConfig",
    "ecs_describe_resources",
]

INVENTORY_HANDLER = "functions.inventory.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_13
# What listing needs in every account (no resource-level permissions for any of these).
# Listing calls that take no resource-level permission (or whose resources are unknown until
# listed): granted on "*".
LIST_ACTIONS = (
    "lambda:ListFunctions",
    "lambda:ListLayers",  # the current sensor layer versions (the core account's own)
    "ec2:DescribeInstances",
    "ecs:ListClusters",
    "ecs:ListTasks",
    "cloudwatch:GetMetricData",
)
# ECS Describe calls, scoped to tasks and container instances.
ECS_DESCRIBE_ACTIONS = ("ecs:DescribeTasks", "ecs:DescribeContainerInstances")
MEMBER_ACTIONS = (*LIST_ACTIONS, *ECS_DESCRIBE_ACTIONS)


def ecs_describe_resources(partition: str) -> list[str]:
    return [
        f"arn:{partition}:ecs:*:*:task/*",
        f"arn:{partition}:ecs:*:*:container-instance/*",
    ]


@dataclass(frozen=True)
class InventoryConfig:
    accounts: Sequence[str]  # every protected account; the core account is listed directly
    regions: Sequence[str]
    core_account: str
    role_name: str = "ramparts-responder"
    external_id: str | None = None
    layer_name: str = "ramparts-sensor"
    current_layers: Sequence[str] = ()  # layer version ARNs that are current (may be tokens)
    silent_after_hours: int = 24
    schedule_minutes: int = 360
    check_invocations: bool = True
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    snapshot_retention_days: int = 400

    def __post_init__(self) -> None:
        if not self.accounts or not self.regions:
            raise ValueError("InventoryConfig: at least one account and one region")
        if not 5 <= self.schedule_minutes <= 1440:
            raise ValueError("InventoryConfig.schedule_minutes: between 5 and 1440")
        if self.silent_after_hours < 1:
            raise ValueError("InventoryConfig.silent_after_hours: at least 1")


class Inventory(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        baseline_table: dynamodb.ITable,
        bus: events.IEventBus,
        evidence_bucket: s3.IBucket,
        key: kms.IKey,
        config: InventoryConfig,
        findings_table: dynamodb.ITable | None = None,
        deps_layer: lambda_.ILayerVersion | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.config = config
        members = [a for a in config.accounts if a != config.core_account]
        if deps_layer is None:
            deps_layer = lambda_.LayerVersion(
                self,
                "Deps",
                description="Ramparts inventory: pydantic, aws-lambda-powertools",
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[lambda_.Architecture.ARM_64],
                code=lambda_.Code.from_asset(
                    str(INGEST_REQUIREMENTS.parent),
                    bundling=bundling_options(
                        DependencyBundler(INGEST_REQUIREMENTS, RUNTIME.name, "arm64"),
                        environment={"RAMPARTS_DEPS": f"{RUNTIME.name}/arm64"},
                    ),
                ),
            )
        self.role = iam.Role(
            self,
            "Role",
            description="Ramparts inventory: list workloads, read reports, write coverage",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group = logs.LogGroup(
            self, "Logs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.RETAIN
        )
        environment = {
            "BASELINE_TABLE": baseline_table.table_name,
            "EVIDENCE_BUCKET": evidence_bucket.bucket_name,
            "EVENT_BUS_NAME": bus.event_bus_name,
            "ACCOUNTS": ",".join(config.accounts),
            "REGIONS": ",".join(config.regions),
            "ROLE_NAME": config.role_name,
            "LAYER_NAME": config.layer_name,
            "SILENT_AFTER_HOURS": str(config.silent_after_hours),
            "CHECK_INVOCATIONS": "true" if config.check_invocations else "false",
            "SNAPSHOT_RETENTION_DAYS": str(config.snapshot_retention_days),
        }
        if findings_table is not None:
            environment["FINDINGS_TABLE"] = findings_table.table_name
        if config.external_id:
            environment["EXTERNAL_ID"] = config.external_id
        if config.current_layers:
            environment["CURRENT_LAYERS"] = cdk.Fn.join(",", list(config.current_layers))
        self.function = lambda_.Function(
            self,
            "Function",
            description="Ramparts inventory: which workloads a sensor covers",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=INVENTORY_HANDLER,
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / "functions"),
                asset_hash_type=cdk.AssetHashType.OUTPUT,
                bundling=bundling_options(CodeBundler()),
            ),
            layers=[deps_layer],
            memory_size=1024,
            timeout=cdk.Duration.minutes(15),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=log_group,
            environment=environment,
            reserved_concurrent_executions=1,  # one inventory at a time
            dead_letter_queue=dead_letter_queue,
            on_failure=destinations.SqsDestination(dead_letter_queue)
            if dead_letter_queue is not None
            else None,
            retry_attempts=1,
        )
        part = stack.partition
        tables = [baseline_table.table_arn]
        if findings_table is not None:
            tables.append(findings_table.table_arn)
        statements = [
            iam.PolicyStatement(
                sid="OwnLogGroupOnly",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
            iam.PolicyStatement(sid="ListWorkloads", actions=list(LIST_ACTIONS), resources=["*"]),
            iam.PolicyStatement(
                sid="DescribeEcs",
                actions=list(ECS_DESCRIBE_ACTIONS),
                resources=ecs_describe_resources(part),
            ),
            iam.PolicyStatement(
                sid="Tables",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=tables,
            ),
            iam.PolicyStatement(
                sid="Snapshots",
                actions=["s3:PutObject"],
                resources=[evidence_bucket.arn_for_objects("coverage/*")],
            ),
            iam.PolicyStatement(
                sid="Key",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[key.key_arn],
            ),
            iam.PolicyStatement(
                sid="Bus", actions=["events:PutEvents"], resources=[bus.event_bus_arn]
            ),
        ]
        if members:
            statements.append(
                iam.PolicyStatement(
                    sid="MemberRoles",
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:{part}:iam::{a}:role/{config.role_name}" for a in members],
                )
            )
        for statement in statements:
            self.role.add_to_principal_policy(statement)
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Ramparts: coverage inventory",
            schedule=events.Schedule.rate(cdk.Duration.minutes(config.schedule_minutes)),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=2,
                    max_event_age=cdk.Duration.hours(1),
                    dead_letter_queue=dead_letter_queue,
                )
            ],
        )
        for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
            acknowledge(
                self.function,
                rule,
                "Pinned to python3.13, the newest runtime the platform's dependencies and "
                "tests cover; moved forward deliberately, not by a synth.",
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "List/Describe actions (lambda:ListFunctions, ec2:DescribeInstances, ecs:List*, "
            "ecs:Describe*, cloudwatch:GetMetricData) and X-Ray writes take no resource-level "
            "permissions; read-only.",
        )
        bucket_resource = evidence_bucket.node.default_child
        if isinstance(bucket_resource, cdk.CfnElement):
            logical = stack.get_logical_id(bucket_resource)
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::<{logical}.Arn>/coverage/*]",
                "Snapshots are new objects under coverage/ with time-stamped names.",
            )
        for resource in ecs_describe_resources("<AWS::Partition>"):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "Read-only: the inventory describes every ECS task (and its container "
                "instance) it listed, in each protected account and region.",
            )
        if dead_letter_queue is not None:
            for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
                acknowledge(
                    self.role,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "Added by CDK's grant to send to the encrypted failure queue; on its key only.",
                )
        if dead_letter_queue is None:
            acknowledge(
                self.function,
                "Serverless-LambdaDLQ",
                "A failed run is retried by the next scheduled run; its errors are in the log.",
            )
            acknowledge(
                self.function,
                "Serverless-LambdaAsyncFailureDestination",
                "A failed run is retried by the next scheduled run; its errors are in the log.",
            )
            acknowledge(
                self.rule,
                "Serverless-EventBusDLQ",
                "A schedule: a missed run is made up by the next one.",
            )
