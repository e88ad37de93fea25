"""Synthesize the Core stack and create its resources in the local account, from the template.

:func:`synth_core` runs the CDK app in process (bundling skipped, the playbooks on);
:func:`deploy` does what ``cdk deploy`` and CloudFormation would: it publishes the file
assets to the bootstrap bucket, then creates every resource of the template with its own
properties, the template's ``Ref``/``Fn::GetAtt``/``Fn::Join``/``Fn::Sub``... resolved to the
moto resources. (moto's own CloudFormation needs packages the platform does not install.)
Resource types it does not create are listed with the reason, never replaced by a second
definition. Two kinds of resources are created with a visible difference:

* Lambda functions get the asset the template names as their code, but run in this process
  (:class:`~ramparts_cli._demo_account.LocalAccount` routes their invocations to the handler);
* EventBridge targets moto cannot call (Step Functions, Lambda) become a stand-in SQS queue
  per target, which the account's router drains into the real target.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ramparts_cli._demo_account import LocalAccount, Route

STACK = "RampartsCore"

# Creation order: a type's resources only refer to resources of earlier types.
ORDER = (
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::IAM::Role",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::Topic",
    "AWS::SNS::TopicPolicy",
    "AWS::Events::EventBus",
    "AWS::Kinesis::Stream",
    "AWS::Logs::LogGroup",
    "AWS::Logs::Destination",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::EventSourceMapping",
    "AWS::StepFunctions::StateMachine",
    "AWS::Events::Rule",
    "AWS::IAM::Policy",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
)
NOT_CREATED = {
    "AWS::Lambda::EventSourceMapping": (
        "nothing writes to the sensor stream or the ingest queue in the demo: the sensor lines "
        "reach the ingest as CloudWatch Logs subscription events"
    ),
}


class Unresolved(LookupError):
    """A reference to a resource that is not created (yet)."""


@dataclass
class Synth:
    template: dict[str, Any]
    outdir: Path
    assets: dict[str, Any]


def synth_core(account: str, region: str, outdir: str) -> Synth:
    """The Core stack of ``cdk/app.py`` with the playbooks on (contain-lambda in approval)."""
    from cdk import quiet_node_banner

    quiet_node_banner()
    from cdk.app import build_app
    from cdk.config import RampartsConfig

    config = RampartsConfig(
        core_account=account,
        regions=(region,),
        playbooks=True,
        playbook_modes={"contain-lambda": "approval", "release-lambda": "automatic"},
    ).validate()
    # bundling skipped for every stack (no Docker, no pip); cdk-nag runs in `make test`
    app = build_app(outdir, context={"aws:cdk:bundling-stacks": []}, config=config, nag=False)
    app.synth()
    out = Path(outdir)
    return Synth(
        template=json.loads((out / f"{STACK}.template.json").read_text()),
        outdir=out,
        assets=json.loads((out / f"{STACK}.assets.json").read_text()),
    )


@dataclass
class Deployment:
    account: LocalAccount
    synth: Synth
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)  # logical id -> type
    skipped: dict[str, str] = field(default_factory=dict)  # logical id -> reason
    routed: list[str] = field(default_factory=list)  # what the demo routes, in words
    outputs: dict[str, str] = field(default_factory=dict)
    assets_published: int = 0

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        res: dict[str, dict[str, Any]] = self.synth.template["Resources"]
        return res

    def of_type(self, kind: str) -> dict[str, str]:
        """Logical id -> physical id (Ref) of the created resources of a type."""
        return {k: self.refs[k] for k, t in self.created.items() if t == kind}

    def find(self, kind: str, prefix: str) -> str:
        for lid, ref in self.of_type(kind).items():
            if lid.startswith(prefix):
                return ref
        raise KeyError(f"no {kind} {prefix}* in the template")

    def summary(self) -> dict[str, Any]:
        return {
            "stack": STACK,
            "created": dict(Counter(self.created.values())),
            "not_created": {
                t: {"count": n, "reason": _reason(self, t)}
                for t, n in Counter(self.resources[k]["Type"] for k in self.skipped).items()
            },
            "routed_by_demo": self.routed,
            "assets_published": self.assets_published,
            "outputs": self.outputs,
        }

    # -- intrinsic functions -------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((k, v),) = value.items()
            if k == "Ref":
                return self._ref(v)
            if k == "Fn::GetAtt":
                lid, attr = v if isinstance(v, list) else v.split(".", 1)
                if (lid, attr) not in self.attrs:
                    raise Unresolved(f"{lid}.{attr}")
                return self.attrs[(lid, attr)]
            if k == "Fn::Join":
                return v[0].join(str(self.resolve(x)) for x in v[1])
            if k == "Fn::Select":
                return self.resolve(v[1])[int(self.resolve(v[0]))]
            if k == "Fn::Split":
                return str(self.resolve(v[1])).split(v[0])
            if k == "Fn::Sub":
                return self._sub(v)
            if k == "Fn::GetAZs":
                return [f"{self.account.region}{z}" for z in "abc"]
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": self.account.region,
            "AWS::AccountId": self.account.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name not in self.refs:
            raise Unresolved(name)
        return self.refs[name]

    def _sub(self, v: Any) -> str:
        text, extra = (v, {}) if isinstance(v, str) else (v[0], self.resolve(v[1]))

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                lid, attr = name.split(".", 1)
                return str(self.resolve({"Fn::GetAtt": [lid, attr]}))
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    # -- deployment ----------------------------------------------------------------------
    def publish_assets(self) -> None:
        """What ``cdk deploy`` does first: file assets into the bootstrap bucket."""
        s3 = self.account.client("s3")
        buckets: set[str] = set()
        for asset in self.synth.assets.get("files", {}).values():
            src = Path(asset["source"]["path"])
            path = src if src.is_absolute() else self.synth.outdir / src
            data = (
                _zip_dir(path) if asset["source"].get("packaging") == "zip" else path.read_bytes()
            )
            for dest in asset["destinations"].values():
                bucket = dest["bucketName"].replace("${AWS::AccountId}", self.account.account)
                bucket = bucket.replace("${AWS::Region}", self.account.region)
                if bucket not in buckets:
                    s3.create_bucket(Bucket=bucket)
                    buckets.add(bucket)
                s3.put_object(Bucket=bucket, Key=dest["objectKey"], Body=data)
                self.assets_published += 1

    def deploy(self) -> None:
        self.publish_assets()
        pending = [
            lid
            for lid in sorted(self.resources, key=lambda k: _rank(self.resources[k]["Type"]))
            if self.resources[lid]["Type"] not in NOT_CREATED
        ]
        self.skipped.update(
            {
                lid: NOT_CREATED[r["Type"]]
                for lid, r in self.resources.items()
                if r["Type"] in NOT_CREATED
            }
        )
        while pending:
            left: list[str] = []
            for lid in pending:
                kind = self.resources[lid]["Type"]
                create = getattr(self, "_" + kind.replace("AWS::", "").replace("::", "_"), None)
                if create is None:
                    self.skipped[lid] = "not a resource type the demo creates"
                    continue
                try:
                    create(lid, self.resources[lid].get("Properties", {}))
                except Unresolved:
                    left.append(lid)
                    continue
                self.created[lid] = kind
            if len(left) == len(pending):
                for lid in left:
                    self.skipped[lid] = "refers to a resource that was not created"
                break
            pending = left
        for name, out in self.synth.template.get("Outputs", {}).items():
            try:
                self.outputs[name] = str(self.resolve(out["Value"]))
            except Unresolved:
                continue

    def _name(self, lid: str, limit: int = 64) -> str:
        return f"{STACK}-{lid}"[:limit]

    # -- one method per resource type (properties as the template gives them) -----------
    def _KMS_Key(self, lid: str, p: dict[str, Any]) -> None:
        kms = self.account.client("kms")
        meta = kms.create_key(
            Description=p.get("Description", ""), Policy=json.dumps(self.resolve(p["KeyPolicy"]))
        )["KeyMetadata"]
        if p.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        self.refs[lid] = meta["KeyId"]
        self.attrs[(lid, "Arn")] = meta["Arn"]
        self.attrs[(lid, "KeyId")] = meta["KeyId"]

    def _KMS_Alias(self, lid: str, p: dict[str, Any]) -> None:
        self.account.client("kms").create_alias(
            AliasName=p["AliasName"], TargetKeyId=self.resolve(p["TargetKeyId"])
        )
        self.refs[lid] = p["AliasName"]

    def _IAM_Role(self, lid: str, p: dict[str, Any]) -> None:
        iam = self.account.client("iam")
        name = p.get("RoleName") or self._name(lid)
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(self.resolve(p["AssumeRolePolicyDocument"])),
            Description=p.get("Description", ""),
        )["Role"]
        for doc in p.get("Policies", []):
            iam.put_role_policy(
                RoleName=name,
                PolicyName=doc["PolicyName"],
                PolicyDocument=json.dumps(self.resolve(doc["PolicyDocument"])),
            )
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = role["Arn"]
        self.attrs[(lid, "RoleId")] = role["RoleId"]

    def _IAM_Policy(self, lid: str, p: dict[str, Any]) -> None:
        iam = self.account.client("iam")
        doc = json.dumps(self.resolve(p["PolicyDocument"]))
        for role in self.resolve(p.get("Roles", [])):
            iam.put_role_policy(RoleName=role, PolicyName=p["PolicyName"], PolicyDocument=doc)
        self.refs[lid] = p["PolicyName"]

    def _S3_Bucket(self, lid: str, p: dict[str, Any]) -> None:
        s3 = self.account.client("s3")
        name = p.get("BucketName") or self._name(lid, 63).lower()
        s3.create_bucket(Bucket=name)
        if p.get("VersioningConfiguration"):
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration=p["VersioningConfiguration"]
            )
        enc = p.get("BucketEncryption")
        if enc:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": rule.get(
                                "ServerSideEncryptionByDefault", {}
                            ),
                            "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled")),
                        }
                        for rule in self.resolve(enc["ServerSideEncryptionConfiguration"])
                    ]
                },
            )
        if p.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": p["Tags"]})
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = f"arn:aws:s3:::{name}"
        self.attrs[(lid, "DomainName")] = f"{name}.s3.amazonaws.com"
        self.attrs[(lid, "RegionalDomainName")] = f"{name}.s3.{self.account.region}.amazonaws.com"

    def _S3_BucketPolicy(self, lid: str, p: dict[str, Any]) -> None:
        bucket = self.resolve(p["Bucket"])
        doc = self.resolve(p["PolicyDocument"])
        kept = [s for s in doc["Statement"] if not _transport_only(s)]
        if len(kept) < len(doc["Statement"]):
            note = (
                "S3 bucket policies: the statements that deny requests without TLS "
                "(aws:SecureTransport) are left out, as moto judges every local request insecure"
            )
            if note not in self.routed:
                self.routed.append(note)
        if kept:
            self.account.client("s3").put_bucket_policy(
                Bucket=bucket, Policy=json.dumps({**doc, "Statement": kept})
            )
        self.refs[lid] = bucket

    def _DynamoDB_Table(self, lid: str, p: dict[str, Any]) -> None:
        ddb = self.account.client("dynamodb")
        name = p.get("TableName") or self._name(lid, 255)
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
            "BillingMode": p.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = p["ProvisionedThroughput"]
        sse = p.get("SSESpecification")
        if sse:
            args["SSESpecification"] = {
                "Enabled": bool(sse.get("SSEEnabled")),
                "SSEType": sse.get("SSEType", "KMS"),
                "KMSMasterKeyId": self.resolve(sse.get("KMSMasterKeyId", "")),
            }
        table = ddb.create_table(**args)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = table["TableArn"]

    def _SQS_Queue(self, lid: str, p: dict[str, Any]) -> None:
        sqs = self.account.client("sqs")
        name = p.get("QueueName") or self._name(lid, 80)
        attributes: dict[str, str] = {}
        for key in (
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
            "MessageRetentionPeriod",
            "VisibilityTimeout",
            "DelaySeconds",
        ):
            if key in p:
                attributes[key] = str(self.resolve(p[key]))
        if "RedrivePolicy" in p:
            attributes["RedrivePolicy"] = json.dumps(self.resolve(p["RedrivePolicy"]))
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.refs[lid] = url
        self.attrs[(lid, "Arn")] = arn
        self.attrs[(lid, "QueueName")] = name
        self.attrs[(lid, "QueueUrl")] = url

    def _SQS_QueuePolicy(self, lid: str, p: dict[str, Any]) -> None:
        doc = json.dumps(self.resolve(p["PolicyDocument"]))
        for url in self.resolve(p["Queues"]):
            self.account.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": doc}
            )
        self.refs[lid] = lid

    def _SNS_Topic(self, lid: str, p: dict[str, Any]) -> None:
        sns = self.account.client("sns")
        name = p.get("TopicName") or self._name(lid, 256)
        attributes = {
            k: str(self.resolve(p[k])) for k in ("KmsMasterKeyId", "DisplayName") if k in p
        }
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.refs[lid] = arn
        self.attrs[(lid, "TopicArn")] = arn
        self.attrs[(lid, "TopicName")] = name

    def _SNS_TopicPolicy(self, lid: str, p: dict[str, Any]) -> None:
        doc = json.dumps(self.resolve(p["PolicyDocument"]))
        for arn in self.resolve(p["Topics"]):
            self.account.client("sns").set_topic_attributes(
                TopicArn=arn, AttributeName="Policy", AttributeValue=doc
            )
        self.refs[lid] = lid

    def _Events_EventBus(self, lid: str, p: dict[str, Any]) -> None:
        arn = self.account.client("events").create_event_bus(Name=p["Name"])["EventBusArn"]
        self.refs[lid] = p["Name"]
        self.attrs[(lid, "Arn")] = arn
        self.attrs[(lid, "Name")] = p["Name"]

    def _Kinesis_Stream(self, lid: str, p: dict[str, Any]) -> None:
        kinesis = self.account.client("kinesis")
        name = p.get("Name") or self._name(lid, 128)
        args: dict[str, Any] = {"StreamName": name}
        if "StreamModeDetails" in p:
            args["StreamModeDetails"] = p["StreamModeDetails"]
        else:
            args["ShardCount"] = int(p.get("ShardCount", 1))
        kinesis.create_stream(**args)
        arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = arn

    def _Logs_LogGroup(self, lid: str, p: dict[str, Any]) -> None:
        logs = self.account.client("logs")
        name = p.get("LogGroupName") or f"/{STACK}/{lid}"
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in p:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = (
            f"arn:aws:logs:{self.account.region}:{self.account.account}:log-group:{name}:*"
        )

    def _Logs_Destination(self, lid: str, p: dict[str, Any]) -> None:
        logs = self.account.client("logs")
        dest = logs.put_destination(
            destinationName=p["DestinationName"],
            targetArn=self.resolve(p["TargetArn"]),
            roleArn=self.resolve(p["RoleArn"]),
        )["destination"]
        if p.get("DestinationPolicy"):
            logs.put_destination_policy(
                destinationName=p["DestinationName"],
                accessPolicy=self.resolve(p["DestinationPolicy"]),
            )
        self.refs[lid] = p["DestinationName"]
        self.attrs[(lid, "Arn")] = dest["arn"]

    def _Lambda_LayerVersion(self, lid: str, p: dict[str, Any]) -> None:
        got = self.account.client("lambda").publish_layer_version(
            LayerName=p.get("LayerName") or self._name(lid, 64),
            Description=p.get("Description", ""),
            Content=self.resolve(p["Content"]),
            CompatibleRuntimes=p.get("CompatibleRuntimes", []),
        )
        self.refs[lid] = got["LayerVersionArn"]

    def _Lambda_Function(self, lid: str, p: dict[str, Any]) -> None:
        name = p.get("FunctionName") or self._name(lid)
        env = {
            k: str(v)
            for k, v in self.resolve(p.get("Environment", {})).get("Variables", {}).items()
        }
        args: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": p["Runtime"],
            "Role": self.resolve(p["Role"]),
            "Handler": p["Handler"],
            "Code": self.resolve(p["Code"]),
            "Description": p.get("Description", ""),
            "Timeout": int(p.get("Timeout", 3)),
            "MemorySize": int(p.get("MemorySize", 128)),
            "Environment": {"Variables": env},
            "Layers": self.resolve(p.get("Layers", [])),
            "Architectures": p.get("Architectures", ["x86_64"]),
        }
        if "TracingConfig" in p:
            args["TracingConfig"] = p["TracingConfig"]
        if "DeadLetterConfig" in p:
            args["DeadLetterConfig"] = self.resolve(p["DeadLetterConfig"])
        if "LoggingConfig" in p:
            args["LoggingConfig"] = self.resolve(p["LoggingConfig"])
        arn = self.account.client("lambda").create_function(**args)["FunctionArn"]
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = arn
        self.account.handlers[name] = (p["Handler"], env)
        if len(self.account.handlers) == 1:
            self.routed.append(
                "Lambda invoke -> the function's Python handler, run in this process with the "
                "template's environment (code assets published, bundling skipped)"
            )

    def _Lambda_Permission(self, lid: str, p: dict[str, Any]) -> None:
        args = {
            "FunctionName": self.resolve(p["FunctionName"]),
            "StatementId": lid,
            "Action": p["Action"],
            "Principal": p["Principal"],
        }
        for key in ("SourceArn", "SourceAccount"):
            if key in p:
                args[key] = self.resolve(p[key])
        self.account.client("lambda").add_permission(**args)
        self.refs[lid] = lid

    def _Lambda_EventInvokeConfig(self, lid: str, p: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "FunctionName": self.resolve(p["FunctionName"]),
            "Qualifier": p.get("Qualifier", "$LATEST"),
        }
        if "MaximumRetryAttempts" in p:
            args["MaximumRetryAttempts"] = int(p["MaximumRetryAttempts"])
        if "DestinationConfig" in p:
            args["DestinationConfig"] = self.resolve(p["DestinationConfig"])
        self.account.client("lambda").put_function_event_invoke_config(**args)
        self.refs[lid] = lid

    def _StepFunctions_StateMachine(self, lid: str, p: dict[str, Any]) -> None:
        name = p.get("StateMachineName") or self._name(lid, 80)
        definition = self.resolve(p["DefinitionString"])
        arn = self.account.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=self.resolve(p["RoleArn"])
        )["stateMachineArn"]
        self.refs[lid] = arn
        self.attrs[(lid, "Arn")] = arn
        self.attrs[(lid, "Name")] = name

    def _Events_Rule(self, lid: str, p: dict[str, Any]) -> None:
        events = self.account.client("events")
        sqs = self.account.client("sqs")
        name = p.get("Name") or self._name(lid, 64)
        bus = self.resolve(p.get("EventBusName", "default"))
        trigger: dict[str, str] = (
            {"EventPattern": json.dumps(self.resolve(p["EventPattern"]))}
            if "EventPattern" in p
            else {"ScheduleExpression": p["ScheduleExpression"]}
        )
        arn = events.put_rule(
            Name=name,
            EventBusName=bus,
            State=p.get("State", "ENABLED"),
            Description=p.get("Description", ""),
            **trigger,
        )["RuleArn"]
        targets = []
        for i, target in enumerate(p.get("Targets", [])):
            target_arn = self.resolve(target["Arn"])
            service = target_arn.split(":")[2]
            if service in ("sqs", "events", "logs"):
                targets.append({"Id": target["Id"], "Arn": target_arn})
                continue
            queue = sqs.create_queue(QueueName=f"demo-route-{lid}-{i}"[:80])["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            targets.append({"Id": target["Id"], "Arn": queue_arn})
            self.account.routes.append(Route(name, queue, target_arn))
            self.routed.append(
                f"EventBridge rule {name} -> {service} target (through a stand-in queue)"
            )
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = arn

    def _CloudWatch_Alarm(self, lid: str, p: dict[str, Any]) -> None:
        keys = (
            "AlarmDescription",
            "MetricName",
            "Namespace",
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmActions",
            "Dimensions",
        )
        args = {k: self.resolve(p[k]) for k in keys if k in p}
        if "Metrics" in p:
            args["Metrics"] = self.resolve(p["Metrics"])
        name = p.get("AlarmName") or self._name(lid, 255)
        self.account.client("cloudwatch").put_metric_alarm(AlarmName=name, **args)
        self.refs[lid] = name
        self.attrs[(lid, "Arn")] = (
            f"arn:aws:cloudwatch:{self.account.region}:{self.account.account}:alarm:{name}"
        )

    def _CloudWatch_Dashboard(self, lid: str, p: dict[str, Any]) -> None:
        name = p.get("DashboardName") or self._name(lid, 255)
        self.account.client("cloudwatch").put_dashboard(
            DashboardName=name, DashboardBody=self.resolve(p["DashboardBody"])
        )
        self.refs[lid] = name


def _transport_only(statement: dict[str, Any]) -> bool:
    """A Deny whose only condition is ``aws:SecureTransport`` (CDK's ``enforceSSL``)."""
    cond = statement.get("Condition") or {}
    return (
        statement.get("Effect") == "Deny"
        and list(cond) == ["Bool"]
        and list(cond["Bool"]) == ["aws:SecureTransport"]
    )


def _rank(kind: str) -> int:
    return ORDER.index(kind) if kind in ORDER else len(ORDER)


def _reason(dep: Deployment, kind: str) -> str:
    for lid, reason in dep.skipped.items():
        if dep.resources[lid]["Type"] == kind:
            return reason
    return ""


def _zip_dir(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if path.is_file():
            zf.write(path, path.name)
        else:
            for f in sorted(path.rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    zf.write(f, f.relative_to(path).as_posix())
    return buf.getvalue()


def synth_and_deploy(account: LocalAccount) -> Deployment:
    outdir = tempfile.mkdtemp(prefix="ramparts-demo-cdk-")
    dep = Deployment(account, synth_core(account.account, account.region, outdir))
    dep.deploy()
    return dep
