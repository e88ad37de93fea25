"""The vulnerability functions of the Core stack: the advisory updater and the scan.

``Vulns(scope, id, bucket=..., key=..., bus=..., baseline_table=..., findings_table=...,
config=VulnsConfig(...))`` adds:

- ``OsvUpdate`` (``functions.osv_update.handler``) on a schedule (``update_minutes``, 6 h by
  default): reads and writes the ``advisories/`` prefix of the bucket only;
- ``VulnScan`` (``functions.vulnscan.handler``) on a schedule (``scan_minutes``, 24 h): reads
  the advisories, the baseline table's sensor reports, writes the findings table, puts
  events on the bus, reads Lambda, IAM and Inspector in its own account and assumes the
  ``ramparts-responder`` role of each member account.

Wildcards that remain, and why (the APIs allow nothing narrower):

- ``lambda:ListFunctions`` and ``inspector2:ListFindings`` have no resource-level permissions;
- ``lambda:GetLayerVersion`` (what ``GetLayerVersionByArn`` is authorised as): layers may be
  published by any account (public or shared layers), so any layer ARN;
- ``function:*``, ``role/*``, ``policy/*``: the scan reads every function of the account,
  its execution role and the policies attached to it, read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk.bundling import REPO_ROOT, CodeBundler, bundling_options
from cdk.nag import acknowledge, nag_name

__all__ = ["ADVISORY_PREFIX", "SCAN_HANDLER", "UPDATE_HANDLER", "Vulns", "VulnsConfig"]

ADVISORY_PREFIX = "advisories/"
UPDATE_HANDLER = "functions.osv_update.handler"
SCAN_HANDLER = "functions.vulnscan.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_13


@dataclass(frozen=True)
class VulnsConfig:
    accounts: tuple[str, ...]  # every protected account (the own account included)
    regions: tuple[str, ...]
    update_minutes: int = 360
    scan_minutes: int = 1440
    responder_role_name: str = "ramparts-responder"
    responder_external_id: str | None = None
    osv_url: str | None = None  # default: osv.dev's PyPI all.zip
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    layers: Sequence[lambda_.ILayerVersion] = field(default_factory=tuple)  # pydantic, powertools

    def __post_init__(self) -> None:
        for name in ("update_minutes", "scan_minutes"):
            value = getattr(self, name)
            if not 5 <= value <= 10080:
                raise ValueError(f"{name}: {value} is not between 5 and 10080 minutes")
        if not self.accounts or not self.regions:
            raise ValueError("accounts and regions: at least one of each")


class Vulns(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        bus: events.IEventBus,
        baseline_table: dynamodb.ITable,
        findings_table: dynamodb.ITable,
        config: VulnsConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        stack = cdk.Stack.of(self)
        self.partition, self.account, self.region = stack.partition, stack.account, stack.region
        self.advisories = bucket.arn_for_objects(ADVISORY_PREFIX + "*")
        self.nag_advisories = _nag_object_arn(bucket)
        self.updater = self._function(
            "OsvUpdate",
            UPDATE_HANDLER,
            "Ramparts: keep the PyPI OSV advisory database current in S3",
            memory=2048,
            storage=2048,
            timeout=cdk.Duration.minutes(5),
            environment={
                "ADVISORY_BUCKET": bucket.bucket_name,
                "ADVISORY_PREFIX": ADVISORY_PREFIX + "pypi/",
                "POWERTOOLS_SERVICE_NAME": "ramparts-osv-update",
                **({"OSV_URL": config.osv_url} if config.osv_url else {}),
            },
            rate=config.update_minutes,
        )
        self._grant(
            self.updater,
            iam.PolicyStatement(
                sid="Advisories",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[self.advisories],
            ),
            iam.PolicyStatement(
                sid="Key",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            ),
        )
        env = {
            "FINDINGS_TABLE": findings_table.table_name,
            "BASELINE_TABLE": baseline_table.table_name,
            "EVENT_BUS_NAME": bus.event_bus_name,
            "ADVISORY_BUCKET": bucket.bucket_name,
            "ADVISORY_PREFIX": ADVISORY_PREFIX + "pypi/",
            "SCAN_ACCOUNTS": ",".join(config.accounts),
            "SCAN_REGIONS": ",".join(config.regions),
            "RESPONDER_ROLE_NAME": config.responder_role_name,
            "POWERTOOLS_SERVICE_NAME": "ramparts-vulnscan",
        }
        if config.responder_external_id:
            env["RESPONDER_EXTERNAL_ID"] = config.responder_external_id
        self.scanner = self._function(
            "VulnScan",
            SCAN_HANDLER,
            "Ramparts: vulnerability findings for deployed functions",
            memory=3008,
            storage=4096,
            timeout=cdk.Duration.minutes(15),
            environment=env,
            rate=config.scan_minutes,
        )
        self._grant_scan(key, bus, baseline_table, findings_table)

    # -- functions -------------------------------------------------------------------------
    def _function(
        self,
        construct_id: str,
        handler: str,
        description: str,
        *,
        memory: int,
        storage: int,
        timeout: cdk.Duration,
        environment: dict[str, str],
        rate: int,
    ) -> lambda_.Function:
        role = iam.Role(
            self,
            f"{construct_id}Role",
            description=description,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=self.config.log_retention,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        fn = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / "functions"),
                asset_hash_type=cdk.AssetHashType.OUTPUT,
                bundling=bundling_options(CodeBundler()),
            ),
            layers=list(self.config.layers),
            memory_size=memory,
            ephemeral_storage_size=cdk.Size.mebibytes(storage),
            timeout=timeout,
            role=role,
            log_group=log_group,
            environment={"POWERTOOLS_METRICS_NAMESPACE": "Ramparts", **environment},
            retry_attempts=0,  # the next scheduled run is the retry
            reserved_concurrent_executions=1,  # one run at a time
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="OwnLogGroupOnly",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        schedule = events.Rule(
            self,
            f"{construct_id}Schedule",
            description=f"{description} (every {rate} minutes)",
            schedule=events.Schedule.rate(cdk.Duration.minutes(rate)),
            targets=[targets.LambdaFunction(fn, retry_attempts=0)],
        )
        acknowledge(
            schedule,
            "Serverless-EventBusDLQ",
            "A schedule: a missed run is made up by the next one (the runs are idempotent).",
        )
        acknowledge(
            fn,
            "Serverless-LambdaAsyncFailureDestination",
            "A scheduled, idempotent run: a failed run is retried by the next one, and its "
            "error is in the Errors metric (alarmed) and the log.",
        )
        for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
            acknowledge(fn, rule, "Pinned to python3.13 like the other platform functions.")
        acknowledge(
            fn,
            "Serverless-LambdaDLQ",
            "A scheduled, idempotent run: a failed run is retried by the next one, and its "
            "error is in the Errors metric and the log.",
        )
        acknowledge(
            fn,
            "Serverless-LambdaTracing",
            "Two scheduled batch jobs: their logs and metrics say what each run did.",
        )
        return fn

    @staticmethod
    def _grant(fn: lambda_.Function, *statements: iam.PolicyStatement) -> None:
        assert fn.role is not None
        for statement in statements:
            fn.role.add_to_principal_policy(statement)

    def _grant_scan(
        self,
        key: kms.IKey,
        bus: events.IEventBus,
        baseline_table: dynamodb.ITable,
        findings_table: dynamodb.ITable,
    ) -> None:
        p, account, cfg = self.partition, self.account, self.config
        functions = [f"arn:{p}:lambda:{r}:{account}:function:*" for r in cfg.regions]
        members = [a for a in cfg.accounts if a != account]
        statements = [
            iam.PolicyStatement(
                sid="Advisories", actions=["s3:GetObject"], resources=[self.advisories]
            ),
            iam.PolicyStatement(
                sid="Findings",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[findings_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="SensorReports",
                actions=["dynamodb:GetItem"],
                resources=[baseline_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="Key",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            ),
            iam.PolicyStatement(
                sid="Bus", actions=["events:PutEvents"], resources=[bus.event_bus_arn]
            ),
            iam.PolicyStatement(
                sid="ListFunctions", actions=["lambda:ListFunctions"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="ReadFunctions",
                actions=["lambda:GetFunction", "lambda:GetFunctionUrlConfig", "lambda:GetPolicy"],
                resources=functions,
            ),
            iam.PolicyStatement(
                sid="ReadLayers",
                actions=["lambda:GetLayerVersion"],
                resources=[f"arn:{p}:lambda:*:*:layer:*:*"],
            ),
            iam.PolicyStatement(
                sid="ReadRoles",
                actions=[
                    "iam:ListAttachedRolePolicies",
                    "iam:ListRolePolicies",
                    "iam:GetRolePolicy",
                ],
                resources=[f"arn:{p}:iam::{account}:role/*"],
            ),
            iam.PolicyStatement(
                sid="ReadPolicies",
                actions=["iam:GetPolicy", "iam:GetPolicyVersion"],
                resources=[f"arn:{p}:iam::{account}:policy/*", f"arn:{p}:iam::aws:policy/*"],
            ),
            iam.PolicyStatement(
                sid="InspectorFindings", actions=["inspector2:ListFindings"], resources=["*"]
            ),
        ]
        if members:
            statements.append(
                iam.PolicyStatement(
                    sid="MemberAccounts",
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:{p}:iam::{a}:role/{cfg.responder_role_name}" for a in members],
                )
            )
        self._grant(self.scanner, *statements)
        assert self.scanner.role is not None
        acknowledge(
            self.scanner.role,
            "AwsSolutions-IAM5[Resource::*]",
            "lambda:ListFunctions and inspector2:ListFindings have no resource-level "
            "permissions; both are read-only.",
        )
        wildcards = [
            *functions,
            f"arn:{p}:lambda:*:*:layer:*:*",
            f"arn:{p}:iam::{account}:role/*",
            f"arn:{p}:iam::{account}:policy/*",
            f"arn:{p}:iam::aws:policy/*",
            self.nag_advisories,
        ]
        for resource in (nag_name(r) for r in wildcards if r):
            if "${Token" in resource:
                continue  # cannot be named before deployment; cdk-nag reports it by token
            acknowledge(
                self.scanner.role,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "Read-only: the scan reads every function, layer, execution role and policy "
                "of the account, and the advisories prefix only.",
            )
        assert self.updater.role is not None
        if self.nag_advisories:
            acknowledge(
                self.updater.role,
                f"AwsSolutions-IAM5[Resource::{self.nag_advisories}]",
                "The updater writes the advisories/ prefix of the bucket only.",
            )


def _nag_object_arn(bucket: s3.IBucket) -> str | None:
    """``<LogicalId.Arn>/advisories/*``: how cdk-nag names the prefix of a bucket in the stack."""
    child = bucket.node.default_child
    if not isinstance(child, cdk.CfnElement):
        return None  # an imported bucket: its ARN is already a literal
    stack = cdk.Stack.of(child)
    logical = stack.resolve(stack.get_logical_id(child))
    return f"<{logical}.Arn>/{ADVISORY_PREFIX}*" if isinstance(logical, str) else None
