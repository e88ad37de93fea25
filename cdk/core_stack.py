"""The Core stack (security account): ingest, findings storage, the bus, alerts, evidence.

Sources of the ingest function:

- members' sensor lines: CloudWatch Logs subscription filters in every protected account
  send to the ``AWS::Logs::Destination`` here, which writes to a Kinesis stream the ingest
  reads (``ReportBatchItemFailures``, bisect on error, failures to the failure DLQ);
- forwarded records (Falco, osquery, Tetragon forwarders): the ``ramparts-ingest`` SQS queue
  (``ReportBatchItemFailures``; after 5 receives a record goes to the poison DLQ);
- GuardDuty and Inspector findings: EventBridge rules on the default bus (this account, or a
  delegated administrator's aggregate) and on the ``ramparts`` bus (forwarded by members).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.bundling import (
    INGEST_REQUIREMENTS,
    REPO_ROOT,
    CodeBundler,
    DependencyBundler,
    bundling_options,
)
from cdk.config import RESPONDER_ROLE_NAME, RampartsConfig
from cdk.nag import acknowledge, acknowledge_runtime

__all__ = ["BUS_NAME", "INGEST_HANDLER", "CoreStack"]

BUS_NAME = "ramparts"
INGEST_HANDLER = "functions.ingest.handler"
INGEST_RUNTIME = lambda_.Runtime.PYTHON_3_13
INGEST_TIMEOUT = cdk.Duration.minutes(2)
GUARDDUTY_PATTERN = events.EventPattern(source=["aws.guardduty"], detail_type=["GuardDuty Finding"])
INSPECTOR_PATTERN = events.EventPattern(
    source=["aws.inspector2"], detail_type=["Inspector2 Finding"]
)


class CoreStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: RampartsConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.alarms: list[cloudwatch.Alarm] = []
        self.key = self._key()
        self.log_bucket, self.evidence_bucket = self._buckets()
        self.findings_table = self._table("Findings", "ramparts-findings")
        self.actions_table = self._table("Actions", "ramparts-actions")
        self.baseline_table = self._table("Baseline", "ramparts-baseline")
        self.bus = self._bus()
        self.poison_dlq = self._queue("PoisonDlq", "ramparts-ingest-poison")
        self.failure_dlq = self._queue("FailureDlq", "ramparts-ingest-failures")
        self.ingest_queue = self._queue(
            "IngestQueue",
            "ramparts-ingest",
            visibility_timeout=cdk.Duration.seconds(INGEST_TIMEOUT.to_seconds() * 6),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=self.poison_dlq),
        )
        self.topic = self._topic()
        self._tuning_source = self._tuning()
        self.stream, self.destination = self._log_destination()
        self.ingest = self._ingest()
        self._finding_rules()
        self._ingest_alarms()
        self.state_machines: dict[str, sfn.StateMachine] = {}
        self._playbooks()
        self._inventory()
        self._vulns()
        self.dashboard = self._dashboard()
        self._outputs()

    # -- encryption, storage -------------------------------------------------------------
    def _key(self) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            alias="alias/ramparts",
            description="Ramparts: findings, evidence, queues, stream and alerts",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Services that write into encrypted queues/topics on Ramparts' behalf.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ServicesEncryptForRamparts",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("sns.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        members = [a for a in self.config.member_accounts if a != self.account]
        if members or self.config.organization_id:
            principals: list[iam.IPrincipal] = (
                [iam.AnyPrincipal()]
                if self.config.organization_id
                else [iam.AccountPrincipal(a) for a in members]
            )
            conditions: dict[str, Any] = {
                "StringEquals": {"kms:ViaService": f"sqs.{self.region}.amazonaws.com"}
            }
            if self.config.organization_id:
                conditions["StringEquals"]["aws:PrincipalOrgID"] = self.config.organization_id
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="MembersSendToIngestQueue",
                    principals=principals,
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],
                    conditions=conditions,
                )
            )
        return key

    def _buckets(self) -> tuple[s3.Bucket, s3.Bucket]:
        log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logs take SSE-S3 only
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(400))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            log_bucket,
            "AwsSolutions-S1",
            "This is the server access log bucket; logging its own accesses would loop.",
        )
        lock_days = self.config.evidence_object_lock_days
        evidence = s3.Bucket(
            self,
            "Evidence",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="evidence/",
            object_lock_enabled=lock_days > 0 or None,
            object_lock_default_retention=(
                s3.ObjectLockRetention.governance(cdk.Duration.days(lock_days))
                if lock_days > 0
                else None
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        return log_bucket, evidence

    def _table(self, construct_id: str, name: str) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _queue(self, construct_id: str, name: str, **props: Any) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            construct_id,
            queue_name=name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=cdk.Duration.hours(1),
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            **props,
        )
        if "dead_letter_queue" not in props:
            acknowledge(
                queue,
                "Serverless-SQSRedrivePolicy",
                "A dead-letter queue itself: what lands here stays for inspection (alarmed).",
            )
        return queue

    # -- the bus, the topic, the log destination -----------------------------------------
    def _bus(self) -> events.EventBus:
        bus = events.EventBus(self, "Bus", event_bus_name=BUS_NAME)
        members = [a for a in self.config.member_accounts if a != self.account]
        if self.config.organization_id:
            bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OrganisationForwardsFindings",
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    resources=[bus.event_bus_arn],
                    conditions={
                        "StringEquals": {"aws:PrincipalOrgID": self.config.organization_id}
                    },
                )
            )
        elif members:
            bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="MembersForwardFindings",
                    principals=[iam.AccountPrincipal(a) for a in members],
                    actions=["events:PutEvents"],
                    resources=[bus.event_bus_arn],
                )
            )
        return bus

    def _share_ingest_queue(self) -> None:
        """Members' forwarders (Falco, osquery, Tetragon) send records to the ingest queue."""
        members = [a for a in self.config.member_accounts if a != self.account]
        if self.config.organization_id:
            self.ingest_queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OrganisationForwardsRecords",
                    principals=[iam.AnyPrincipal()],
                    actions=["sqs:SendMessage"],
                    resources=[self.ingest_queue.queue_arn],
                    conditions={
                        "StringEquals": {"aws:PrincipalOrgID": self.config.organization_id}
                    },
                )
            )
        elif members:
            self.ingest_queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="MembersForwardRecords",
                    principals=[iam.AccountPrincipal(a) for a in members],
                    actions=["sqs:SendMessage"],
                    resources=[self.ingest_queue.queue_arn],
                )
            )

    def _topic(self) -> sns.Topic:
        topic = sns.Topic(
            self,
            "Alerts",
            topic_name="ramparts-alerts",
            display_name="Ramparts alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        if self.config.notification_email:
            topic.add_subscription(
                subs.EmailSubscription(
                    self.config.notification_email, dead_letter_queue=self.failure_dlq
                )
            )
        for endpoint in self.config.notification_endpoints:
            topic.add_subscription(
                subs.UrlSubscription(
                    endpoint,
                    protocol=sns.SubscriptionProtocol.HTTPS,
                    dead_letter_queue=self.failure_dlq,
                )
            )
        return topic

    def _log_destination(self) -> tuple[kinesis.Stream, logs.CfnDestination]:
        stream = kinesis.Stream(
            self,
            "SensorStream",
            stream_name="ramparts-sensor-logs",
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.key,
            retention_period=cdk.Duration.hours(24),
        )
        acknowledge(
            stream,
            "AwsSolutions-KDS3",
            "Encrypted with the Ramparts customer-managed key on purpose: one key policy "
            "controls every store of sensor data, and its use is logged.",
        )
        accounts = self.config.protected_accounts
        role = iam.Role(
            self,
            "LogsDestinationRole",
            description="CloudWatch Logs puts members' sensor lines into the Ramparts stream",
            assumed_by=iam.ServicePrincipal(
                "logs.amazonaws.com",
                conditions={
                    "StringLike": {
                        "aws:SourceArn": [f"arn:aws:logs:{self.region}:{a}:*" for a in accounts]
                    }
                },
            ),
        )
        policy = iam.Policy(
            self,
            "LogsDestinationPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(actions=["kinesis:PutRecord"], resources=[stream.stream_arn]),
                iam.PolicyStatement(actions=["kms:GenerateDataKey"], resources=[self.key.key_arn]),
            ],
        )
        name = self.config.destination_name()
        destination_arn = self.config.destination_arn(self.region)
        if self.config.organization_id:
            statement: dict[str, Any] = {
                "Sid": "OrganisationSubscribes",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "logs:PutSubscriptionFilter",
                "Resource": destination_arn,
                "Condition": {
                    "StringEquals": {"aws:PrincipalOrgID": [self.config.organization_id]}
                },
            }
        else:
            statement = {
                "Sid": "AccountsSubscribe",
                "Effect": "Allow",
                "Principal": {"AWS": list(accounts)},
                "Action": "logs:PutSubscriptionFilter",
                "Resource": destination_arn,
            }
        destination = logs.CfnDestination(
            self,
            "LogsDestination",
            destination_name=name,
            role_arn=role.role_arn,
            target_arn=stream.stream_arn,
            destination_policy=cdk.Stack.of(self).to_json_string(
                {"Version": "2012-10-17", "Statement": [statement]}
            ),
        )
        destination.node.add_dependency(policy)
        return stream, destination

    # -- the ingest function ---------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        env = {
            "FINDINGS_TABLE": self.findings_table.table_name,
            "BASELINE_TABLE": self.baseline_table.table_name,
            "EVENT_BUS_NAME": self.bus.event_bus_name,
            "DLQ_URL": self.poison_dlq.queue_url,
            "ALERT_TOPIC_ARN": self.topic.topic_arn,
            "ALERT_MIN_SEVERITY": self.config.alert_min_severity,
            "SECURITY_HUB_EXPORT": "true" if self.config.security_hub_export else "false",
            "MEMBER_ACCOUNTS": ",".join(self.config.protected_accounts),
            "BASELINE_LEARNING_DAYS": str(self.config.baseline_learning_days),
            "POWERTOOLS_SERVICE_NAME": "ramparts-ingest",
            "POWERTOOLS_METRICS_NAMESPACE": "Ramparts",
        }
        if self.config.rules_dir:
            env["RULES_DIR"] = self.config.rules_dir
        if self._tuning_source is not None:
            env["TUNING_URI"] = self._tuning_source[0]
            env["RESPONDER_ROLE_NAME"] = RESPONDER_ROLE_NAME  # tags for tuning exceptions
        return env

    def _ingest(self) -> lambda_.Function:
        deps = lambda_.LayerVersion(
            self,
            "IngestDeps",
            description="Ramparts ingest: pydantic, aws-lambda-powertools, aws-xray-sdk",
            compatible_runtimes=[INGEST_RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            code=lambda_.Code.from_asset(
                str(INGEST_REQUIREMENTS.parent),
                bundling=bundling_options(
                    DependencyBundler(INGEST_REQUIREMENTS, INGEST_RUNTIME.name, "arm64"),
                    # Keys CDK's bundle cache (the local bundler does not read it).
                    environment={"RAMPARTS_DEPS": f"{INGEST_RUNTIME.name}/arm64"},
                ),
            ),
        )
        self.ingest_deps = deps  # shared with the inventory function
        role = iam.Role(
            self,
            "IngestRole",
            description="Ramparts ingest: named tables, bus, DLQ, topic, key only",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group = logs.LogGroup(
            self,
            "IngestLogs",
            retention=_retention(self.config.log_retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        fn = lambda_.Function(
            self,
            "Ingest",
            description="Ramparts ingest: normalise, detect, store and publish findings",
            runtime=INGEST_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=INGEST_HANDLER,
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / "functions"),
                asset_hash_type=cdk.AssetHashType.OUTPUT,
                bundling=bundling_options(CodeBundler()),
            ),
            layers=[deps],
            memory_size=1024,
            timeout=INGEST_TIMEOUT,
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            environment=self._environment(),
            dead_letter_queue=self.failure_dlq,
            on_failure=destinations.SqsDestination(self.failure_dlq),
            retry_attempts=2,
        )
        acknowledge_runtime(fn)
        # An own role, without AWSLambdaBasicExecutionRole: logs go to this log group only.
        role.add_to_principal_policy(_own_logs_statement(log_group))
        self._grant_ingest(role)
        fn.add_event_source(
            sources.KinesisEventSource(
                self.stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=500,
                max_batching_window=cdk.Duration.seconds(5),
                bisect_batch_on_error=True,
                retry_attempts=3,
                max_record_age=cdk.Duration.hours(6),
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.failure_dlq),
            )
        )
        fn.add_event_source(
            sources.SqsEventSource(
                self.ingest_queue,
                batch_size=10,
                max_batching_window=cdk.Duration.seconds(5),
                report_batch_item_failures=True,
            )
        )
        self._share_ingest_queue()
        esm = fn.node.find_child(
            f"SqsEventSource:{cdk.Names.node_unique_id(self.ingest_queue.node)}"
        )
        acknowledge(
            esm,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event source mappings take no on-failure destination: the queue's redrive "
            "policy moves a record to the poison DLQ after 5 receives.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords (tracing) have no resource-level "
            "permissions.",
        )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "Added by CDK's grants for the encrypted queue and stream; on the Ramparts "
                "key only.",
            )
        return fn

    def _grant_ingest(self, role: iam.Role) -> None:
        tables = [self.findings_table.table_arn, self.baseline_table.table_arn]
        statements = [
            iam.PolicyStatement(
                sid="Tables",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:ConditionCheckItem",  # TransactWriteItems conditions
                ],
                resources=tables,
            ),
            iam.PolicyStatement(
                sid="Key",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[self.key.key_arn],
            ),
            iam.PolicyStatement(
                sid="Bus", actions=["events:PutEvents"], resources=[self.bus.event_bus_arn]
            ),
            iam.PolicyStatement(
                sid="PoisonRecords",
                actions=["sqs:SendMessage"],
                resources=[self.poison_dlq.queue_arn],
            ),
            iam.PolicyStatement(
                sid="Alerts", actions=["sns:Publish"], resources=[self.topic.topic_arn]
            ),
        ]
        if self._tuning_source is not None:  # tag conditions of exceptions: read through members
            statements.append(
                iam.PolicyStatement(
                    sid="WorkloadTags",
                    actions=["sts:AssumeRole"],
                    resources=[
                        f"arn:{self.partition}:iam::{a}:role/{RESPONDER_ROLE_NAME}"
                        for a in self.config.protected_accounts
                    ],
                )
            )
        if self.config.security_hub_export:
            statements.append(
                iam.PolicyStatement(
                    sid="SecurityHub",
                    actions=["securityhub:BatchImportFindings"],
                    resources=[
                        f"arn:{self.partition}:securityhub:{self.region}:{self.account}"
                        f":product/{self.account}/default"
                    ],
                )
            )
        if self._tuning_source is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="Tuning", actions=["s3:GetObject"], resources=[self._tuning_source[1]]
                )
            )
        for statement in statements:
            role.add_to_principal_policy(statement)

    def _tuning(self) -> tuple[str, str] | None:
        if self.config.tuning_file is not None:
            asset = s3_assets.Asset(self, "Tuning", path=str(self.config.tuning_path()))
            return asset.s3_object_url, asset.bucket.arn_for_objects(asset.s3_object_key)
        obj = self.config.tuning_object()
        if obj is not None:
            bucket, key = obj
            return f"s3://{bucket}/{key}", f"arn:{self.partition}:s3:::{bucket}/{key}"
        return None

    def _finding_rules(self) -> None:
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        for bus_id, bus in (("Default", default_bus), ("Ramparts", self.bus)):
            for name, pattern in (
                ("GuardDuty", GUARDDUTY_PATTERN),
                ("Inspector", INSPECTOR_PATTERN),
            ):
                events.Rule(
                    self,
                    f"{name}From{bus_id}Bus",
                    description=f"{name} findings on the {bus_id.lower()} bus to the ingest",
                    event_bus=bus,
                    event_pattern=pattern,
                    targets=[
                        targets.LambdaFunction(
                            self.ingest,
                            dead_letter_queue=self.failure_dlq,
                            retry_attempts=8,
                            max_event_age=cdk.Duration.hours(6),
                        )
                    ],
                )

    # -- alarms, playbooks, dashboard ------------------------------------------------------
    def alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def _ingest_alarms(self) -> None:
        five = cdk.Duration.minutes(5)
        for name, queue in (("Poison", self.poison_dlq), ("Failure", self.failure_dlq)):
            self.alarm(
                f"{name}DlqDepth",
                queue.metric_approximate_number_of_messages_visible(
                    period=five, statistic="Maximum"
                ),
                1,
                f"Records in {queue.node.id}: the ingest could not process them",
            )
        self.alarm("IngestErrors", self.ingest.metric_errors(period=five), 1, "Ingest errors")
        self.alarm(
            "IngestThrottles", self.ingest.metric_throttles(period=five), 1, "Ingest throttled"
        )
        self.alarm(
            "IngestIteratorAge",
            self.ingest.metric("IteratorAge", period=five, statistic="Maximum"),
            cdk.Duration.minutes(5).to_milliseconds(),
            "Sensor lines wait more than 5 minutes in the stream",
        )

    def add_state_machine_alarms(self, machines: dict[str, sfn.StateMachine]) -> None:
        """A failed-executions alarm per playbook state machine."""
        for name, machine in sorted(machines.items()):
            self.state_machines[name] = machine
            self.alarm(
                f"Playbook{_camel(name)}Failed",
                machine.metric_failed(period=cdk.Duration.minutes(5)),
                1,
                f"Playbook {name}: an execution failed",
            )

    def _playbooks(self) -> None:
        # The single call site of the playbooks construct (cdk/playbooks/, built separately).
        if not self.config.playbooks:
            return
        from cdk.playbooks import Playbooks, PlaybooksConfig

        cfg = self.config
        playbooks = Playbooks(
            self,
            "Playbooks",
            bus=self.bus,
            actions_table=self.actions_table,
            findings_table=self.findings_table,
            evidence_bucket=self.evidence_bucket,
            topic=self.topic,
            key=self.key,
            layers=[self.ingest_deps],
            config=PlaybooksConfig(
                modes=dict(cfg.playbook_modes),
                accounts=cfg.protected_accounts,
                regions=cfg.regions,
            ),
        )
        self.add_state_machine_alarms(dict(playbooks.state_machines))
        self.alarm(
            "UndeliveredFindingsDepth",
            playbooks.undelivered.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5)
            ),
            1,
            "Findings EventBridge could not deliver to a playbook",
        )
        self.playbooks = playbooks

    def _vulns(self) -> None:
        """Vulnerability findings for deployed functions, and the OSV database kept current
        (cdk/vulns.py); the database lives under advisories/ in the evidence bucket."""
        from cdk.vulns import Vulns, VulnsConfig

        cfg = self.config
        self.vulns = Vulns(
            self,
            "Vulns",
            bucket=self.evidence_bucket,
            key=self.key,
            bus=self.bus,
            baseline_table=self.baseline_table,
            findings_table=self.findings_table,
            config=VulnsConfig(
                accounts=tuple(cfg.protected_accounts),
                regions=tuple(cfg.regions),
                log_retention=_retention(cfg.log_retention_days),
                layers=[self.ingest_deps],
            ),
        )
        for name, fn in (("OsvUpdate", self.vulns.updater), ("VulnScan", self.vulns.scanner)):
            self.alarm(
                f"{name}Errors",
                fn.metric_errors(period=cdk.Duration.minutes(5)),
                1,
                f"{name} failed (see its log)",
            )

    def _inventory(self) -> None:
        """The scheduled coverage inventory (cdk/inventory.py)."""
        from cdk.inventory import Inventory, InventoryConfig

        cfg = self.config
        self.inventory = Inventory(
            self,
            "Inventory",
            baseline_table=self.baseline_table,
            findings_table=self.findings_table,
            bus=self.bus,
            evidence_bucket=self.evidence_bucket,
            key=self.key,
            deps_layer=self.ingest_deps,
            dead_letter_queue=self.failure_dlq,
            config=InventoryConfig(
                accounts=cfg.protected_accounts,
                regions=cfg.regions,
                core_account=cfg.core_account,
                layer_name=cfg.layer_name,
                log_retention=_retention(cfg.log_retention_days),
            ),
        )
        self.alarm(
            "InventoryErrors",
            self.inventory.function.metric_errors(period=cdk.Duration.minutes(5)),
            1,
            "Coverage inventory failed",
        )

    def _dashboard(self) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name="Ramparts")
        fn = self.ingest
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingest",
                left=[fn.metric_invocations(), fn.metric_errors(), fn.metric_throttles()],
            ),
            cloudwatch.GraphWidget(
                title="Ingest duration / iterator age",
                left=[fn.metric_duration(statistic="p99")],
                right=[fn.metric("IteratorAge", statistic="Maximum")],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    q.metric_approximate_number_of_messages_visible(statistic="Maximum")
                    for q in (self.poison_dlq, self.failure_dlq, self.ingest_queue)
                ],
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms)),
        )
        return dashboard

    def _outputs(self) -> None:
        values = {
            "EventBusArn": self.bus.event_bus_arn,
            "LogsDestinationArn": self.destination.attr_arn,
            "IngestQueueUrl": self.ingest_queue.queue_url,
            "AlertTopicArn": self.topic.topic_arn,
            "EvidenceBucket": self.evidence_bucket.bucket_name,
            "FindingsTable": self.findings_table.table_name,
        }
        for name, value in values.items():
            cdk.CfnOutput(self, name, value=value)


def _own_logs_statement(log_group: logs.LogGroup) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="OwnLogGroupOnly",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group.log_group_arn],
    )


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-"))


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch Logs retention of at least ``days`` (CloudWatch's own steps)."""
    for step in sorted(_RETENTION):
        if step >= days:
            return _RETENTION[step]
    return logs.RetentionDays.TEN_YEARS
