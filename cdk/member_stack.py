"""The Member stack (every protected account, the core account included).

- **Log forwarding**: a reconciler Lambda (``functions/subscriber.py``) puts a subscription
  filter (the sensor's lines only) on the log group of every protected function, to the
  core account's CloudWatch Logs destination. It runs on CloudTrail events for new or changed
  functions and log groups (needs a trail that logs management events) and on a schedule,
  which catches whatever the events missed. Chosen over filters in CloudFormation because
  functions are created by other stacks, other tools and people, after this stack exists.
- **Finding forwarding** (member accounts only): GuardDuty and Inspector findings on the
  default bus go to the core account's ``ramparts`` bus.
- **Responder role** (``ramparts-responder``, primary region only: IAM is global): assumed by
  the core account's playbook roles (by principal ARN, and organisation when configured),
  limited to the response actions.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.bundling import REPO_ROOT, CodeBundler, bundling_options
from cdk.config import RESPONDER_ROLE_NAME, RampartsConfig
from cdk.core_stack import GUARDDUTY_PATTERN, INSPECTOR_PATTERN, _retention
from cdk.inventory import ECS_DESCRIBE_ACTIONS, LIST_ACTIONS, ecs_describe_resources
from cdk.nag import acknowledge, acknowledge_runtime, nag_name
from cdk.protect import LOG_FILTER_NAME, SENSOR_FILTER_PATTERN

__all__ = ["RESPONDER_ROLE_NAME", "MemberStack"]

CORE_STACK_NAME = "RampartsCore"
# Roles the responder role must never change, whatever the finding says.
_UNTOUCHABLE_ROLES = (
    f"role/{RESPONDER_ROLE_NAME}",
    "role/aws-service-role/*",
    "role/aws-reserved/*",
    "role/OrganizationAccountAccessRole",
    "role/cdk-*",
)


class MemberStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RampartsConfig,
        responder: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            queue_name="ramparts-member-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the reconciler and the forwarding rules.",
        )
        acknowledge(
            self.dlq,
            "Serverless-SQSRedrivePolicy",
            "A dead-letter queue itself: failed reconciler runs and forwards stay here.",
        )
        self.subscriber = self._subscriber()
        self._forward_findings()
        self.responder_role = self._responder() if responder else None

    def _subscriber(self) -> lambda_.Function:
        region, account = self.region, self.account
        role = iam.Role(
            self,
            "SubscriberRole",
            description="Ramparts: subscribe protected functions' log groups to the core account",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group = logs.LogGroup(
            self,
            "SubscriberLogs",
            retention=_retention(self.config.log_retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        log_groups = f"arn:{self.partition}:logs:{region}:{account}:log-group:*"
        functions = f"arn:{self.partition}:lambda:{region}:{account}:function:*"
        destination = self.config.destination_arn(region)
        statements = [
            iam.PolicyStatement(
                sid="OwnLogGroupOnly",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="ListFunctions", actions=["lambda:ListFunctions"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="ReadFunctions",
                actions=["lambda:GetFunctionConfiguration", "lambda:ListTags"],
                resources=[functions],
            ),
            iam.PolicyStatement(
                sid="SubscribeLogGroups",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:PutRetentionPolicy",
                    "logs:DescribeSubscriptionFilters",
                    "logs:PutSubscriptionFilter",
                ],
                resources=[log_groups],
            ),
            iam.PolicyStatement(
                sid="ToTheCoreDestination",
                actions=["logs:PutSubscriptionFilter"],
                resources=[destination],
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        fn = lambda_.Function(
            self,
            "Subscriber",
            description="Ramparts: subscription filters for protected functions' log groups",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="functions.subscriber.handler",
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / "functions"),
                asset_hash_type=cdk.AssetHashType.OUTPUT,
                bundling=bundling_options(
                    CodeBundler(
                        (
                            ("functions/__init__.py", "functions/__init__.py"),
                            ("functions/subscriber.py", "functions/subscriber.py"),
                        )
                    )
                ),
            ),
            memory_size=256,
            timeout=cdk.Duration.minutes(5),
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            reserved_concurrent_executions=2,
            dead_letter_queue=self.dlq,
            on_failure=destinations.SqsDestination(self.dlq),
            retry_attempts=2,
            environment={
                "DESTINATION_ARN": destination,
                "FILTER_PATTERN": SENSOR_FILTER_PATTERN,
                "FILTER_NAME": LOG_FILTER_NAME,
                "LAYER_NAME_PREFIX": self.config.layer_name,
                "LOG_RETENTION_DAYS": str(self.config.log_retention_days),
            },
        )
        acknowledge_runtime(fn)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "lambda:ListFunctions and X-Ray's PutTraceSegments/PutTelemetryRecords have no "
            "resource-level permissions.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_name(log_groups)}]",
            "The reconciler subscribes log groups of functions created after this stack, "
            "by other stacks and tools; their names cannot be known here.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_name(functions)}]",
            "The reconciler reads the configuration and tags of every function to find the "
            "protected ones; read-only actions.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::<SubscriberLogs7C3C24C6.Arn>:*]",
            "Log streams in the function's own log group get generated names.",
        )
        target = targets.LambdaFunction(
            fn, dead_letter_queue=self.dlq, retry_attempts=4, max_event_age=cdk.Duration.hours(2)
        )
        events.Rule(
            self,
            "NewFunctions",
            description="Ramparts: subscribe new or changed functions and log groups",
            event_pattern=events.EventPattern(
                detail_type=["AWS API Call via CloudTrail"],
                source=["aws.lambda", "aws.logs"],
                detail={
                    "eventName": [
                        {"prefix": "CreateFunction"},
                        {"prefix": "TagResource"},
                        {"prefix": "UpdateFunctionConfiguration"},
                        "CreateLogGroup",
                    ]
                },
            ),
            targets=[target],
        )
        events.Rule(
            self,
            "Reconcile",
            description="Ramparts: re-check every function's log subscription",
            schedule=events.Schedule.rate(cdk.Duration.minutes(self.config.reconcile_minutes)),
            targets=[target],
        )
        return fn

    def _forward_findings(self) -> None:
        if self.account == self.config.core_account and self.region == self.config.primary_region:
            return  # the Core stack reads this account's default bus itself
        role = iam.Role(
            self,
            "ForwardRole",
            description="Ramparts: put GuardDuty/Inspector findings on the core account's bus",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
        )
        core_bus = events.EventBus.from_event_bus_arn(self, "CoreBus", self.config.bus_arn())
        for name, pattern in (("GuardDuty", GUARDDUTY_PATTERN), ("Inspector", INSPECTOR_PATTERN)):
            events.Rule(
                self,
                f"Forward{name}",
                description=f"Ramparts: forward {name} findings to the core account",
                event_pattern=pattern,
                targets=[targets.EventBus(core_bus, role=role, dead_letter_queue=self.dlq)],
            )

    def _responder(self) -> iam.Role:
        cfg = self.config
        partition, account = self.partition, self.account
        conditions: dict[str, Any] = {
            # Only roles the Core stack created (its playbooks' responders) may assume it.
            "ArnLike": {
                "aws:PrincipalArn": (
                    f"arn:{partition}:iam::{cfg.core_account}:role/{CORE_STACK_NAME}-*"
                )
            },
        }
        # No sts:ExternalId: Step Functions' cross-account `Credentials` cannot pass one, and
        # the principal condition above already limits the role to the core account's own
        # Ramparts roles (an external id guards against confused deputies across owners).
        equals: dict[str, str] = {}
        if cfg.organization_id:
            equals["aws:PrincipalOrgID"] = cfg.organization_id
        if equals:
            conditions["StringEquals"] = equals
        role = iam.Role(
            self,
            "Responder",
            role_name=RESPONDER_ROLE_NAME,
            description="Ramparts playbooks: contain a compromised workload in this account",
            assumed_by=iam.AccountPrincipal(cfg.core_account).with_conditions(conditions),
            max_session_duration=cdk.Duration.hours(1),
        )

        def arns(service: str, resource: str) -> list[str]:
            return [f"arn:{partition}:{service}:{r}:{account}:{resource}" for r in cfg.regions]

        iam_role_arn = f"arn:{partition}:iam::{account}:role/*"
        statements = [
            iam.PolicyStatement(
                sid="LambdaContain",
                actions=[
                    "lambda:PutFunctionConcurrency",
                    "lambda:DeleteFunctionConcurrency",
                    "lambda:GetFunction",
                    "lambda:GetFunctionConfiguration",
                    "lambda:GetFunctionConcurrency",
                    "lambda:GetFunctionUrlConfig",
                    "lambda:TagResource",
                    "lambda:UntagResource",
                    "lambda:DeleteFunctionUrlConfig",
                    "lambda:CreateFunctionUrlConfig",
                    "lambda:RemovePermission",
                    "lambda:AddPermission",
                    "lambda:GetPolicy",
                    "lambda:ListTags",  # the exempt tag, and tuning exceptions by tag
                ],
                resources=arns("lambda", "function:*"),
            ),
            iam.PolicyStatement(
                sid="RevokeRoleSessions",
                actions=[
                    "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy",
                    "iam:GetRole",
                    "iam:GetRolePolicy",
                ],
                resources=[iam_role_arn],
                conditions={"StringNotEquals": {"iam:ResourceTag/ramparts:exempt": "true"}},
            ),
            iam.PolicyStatement(
                sid="NeverTheseRoles",
                effect=iam.Effect.DENY,
                actions=["iam:PutRolePolicy", "iam:DeleteRolePolicy"],
                resources=[f"arn:{partition}:iam::{account}:{r}" for r in _UNTOUCHABLE_ROLES],
            ),
            iam.PolicyStatement(
                sid="Ec2Isolate",
                actions=[
                    "ec2:CreateSecurityGroup",
                    "ec2:ModifyNetworkInterfaceAttribute",
                    "ec2:ModifyInstanceAttribute",
                    "ec2:CreateSnapshot",
                    "ec2:CreateTags",
                ],
                resources=[
                    *arns("ec2", "security-group/*"),
                    *arns("ec2", "vpc/*"),
                    *arns("ec2", "network-interface/*"),
                    *arns("ec2", "instance/*"),
                    *arns("ec2", "volume/*"),
                    *[f"arn:{partition}:ec2:{r}::snapshot/*" for r in cfg.regions],
                ],
            ),
            iam.PolicyStatement(
                sid="InstanceProfiles",
                actions=["iam:GetInstanceProfile"],
                resources=[f"arn:{partition}:iam::{account}:instance-profile/*"],
            ),
            iam.PolicyStatement(
                sid="Ec2Release",
                actions=["ec2:DeleteTags"],
                resources=[*arns("ec2", "instance/*"), *arns("ec2", "security-group/*")],
            ),
            iam.PolicyStatement(
                sid="Ec2IsolationCleanup",
                actions=["ec2:DeleteSecurityGroup"],
                resources=arns("ec2", "security-group/*"),
                conditions={"StringEquals": {"aws:ResourceTag/ramparts:isolation": "true"}},
            ),
            iam.PolicyStatement(
                sid="Ec2IsolationEgress",
                actions=["ec2:RevokeSecurityGroupEgress"],
                resources=arns("ec2", "security-group/*"),
                conditions={"StringEquals": {"aws:ResourceTag/ramparts:isolation": "true"}},
            ),
            iam.PolicyStatement(
                sid="AutoScalingDetach",
                actions=[
                    "autoscaling:DetachInstances",
                    "autoscaling:AttachInstances",
                    "autoscaling:EnterStandby",
                ],
                resources=arns("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*"),
            ),
            iam.PolicyStatement(
                sid="EcsStop",
                actions=["ecs:StopTask", "ecs:DescribeTasks", "ecs:ListTagsForResource"],
                resources=arns("ecs", "task/*"),
            ),
            iam.PolicyStatement(
                sid="EcsTaskDefinitions",
                actions=["ecs:DescribeTaskDefinition"],
                resources=["*"],  # DescribeTaskDefinition takes no resource-level permission
            ),
            iam.PolicyStatement(
                sid="EcsDescribe",
                actions=[
                    "ecs:DescribeClusters",
                    "ecs:DescribeServices",
                    "ecs:DescribeContainerInstances",
                ],
                resources=[
                    *arns("ecs", "cluster/*"),
                    *arns("ecs", "service/*"),
                    *arns("ecs", "container-instance/*"),
                ],
            ),
            iam.PolicyStatement(
                sid="DescribeOnly",
                actions=["ec2:Describe*", "autoscaling:Describe*"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="InventoryList",  # the coverage inventory (cdk/inventory.py)
                actions=list(LIST_ACTIONS),
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="InventoryDescribeEcs",
                actions=list(ECS_DESCRIBE_ACTIONS),
                resources=ecs_describe_resources(partition),
            ),
            iam.PolicyStatement(
                sid="VulnScanList",  # vulnerability scan (cdk/vulns.py): no narrower resource
                actions=["lambda:ListFunctions", "inspector2:ListFindings"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="VulnScanLayers",
                actions=["lambda:GetLayerVersion"],
                resources=[f"arn:{partition}:lambda:*:*:layer:*:*"],
            ),
            iam.PolicyStatement(
                sid="VulnScanRolePower",  # how much a function's role can do (read-only)
                actions=[
                    "iam:ListAttachedRolePolicies",
                    "iam:ListRolePolicies",
                    "iam:GetRolePolicy",
                ],
                resources=[iam_role_arn],
            ),
            iam.PolicyStatement(
                sid="VulnScanPolicies",
                actions=["iam:GetPolicy", "iam:GetPolicyVersion"],
                resources=[
                    f"arn:{partition}:iam::{account}:policy/*",
                    f"arn:{partition}:iam::aws:policy/*",
                ],
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::ec2:Describe*]",
            "ec2 Describe actions have no resource-level permissions; read-only.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::autoscaling:Describe*]",
            "autoscaling Describe actions have no resource-level permissions; read-only.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only read-only calls that cannot be scoped: the Describe actions above, and the "
            "coverage inventory's List/Describe/GetMetricData calls (InventoryList), and the "
            "vulnerability scan's lambda:ListFunctions and inspector2:ListFindings.",
        )
        for resource in _wildcard_resources(statements):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "The responder acts on whichever workload a finding names, in this account "
                "and the configured regions only; playbooks never act on another resource.",
            )
        return role


def _wildcard_resources(statements: list[iam.PolicyStatement]) -> list[str]:
    """Resources of the allow statements in the form cdk-nag reports them."""
    out: list[str] = []
    for statement in statements:
        if statement.effect != iam.Effect.ALLOW:
            continue
        for resource in statement.resources:
            if resource != "*" and "*" in resource:
                out.append(nag_name(resource))
    return out
