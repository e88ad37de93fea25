"""The inventory against moto: functions, instances, ECS tasks in two accounts and two regions.

Everything runs inside ``mock_aws`` with fake credentials; nothing leaves the process. The
member account is reached the way the inventory reaches it in AWS: ``sts:AssumeRole`` of
its ``ramparts-responder`` role (moto gives the assumed credentials that account's data).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.store import DynamoSeenStore
from tests.aws import create_table as table

CORE = "123456789012"
MEMBER = "222222222222"
REGIONS = ("eu-west-1", "us-east-1")
LAYER = "ramparts-sensor-py312-arm64"
NOW = 1_796_500_000_000  # epoch ms of "now" in every test
HOUR = 3_600_000
BUCKET = "ramparts-evidence"


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


@dataclass
class Account:
    """One account's session and helpers to create workloads in it."""

    id: str
    session: Any
    role_arn: str = ""
    layers: dict[str, dict[int, str]] = field(default_factory=dict)  # region -> version -> ARN

    def client(self, name: str, region: str) -> Any:
        return self.session.client(name, region_name=region)

    def setup(self) -> None:
        iam = self.session.client("iam")
        self.role_arn = iam.create_role(
            RoleName="fn-role",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]

    def layer(self, region: str, version: int) -> str:
        versions = self.layers.setdefault(region, {})
        client = self.client("lambda", region)
        while len(versions) < version:
            arn = client.publish_layer_version(
                LayerName=LAYER,
                Content={"ZipFile": zip_bytes()},
                CompatibleRuntimes=["python3.12"],
            )["LayerVersionArn"]
            versions[len(versions) + 1] = arn
        return versions[version]

    def function(
        self,
        name: str,
        region: str,
        *,
        runtime: str = "python3.12",
        layer_version: int | None = None,
        env: dict[str, str] | None = None,
        handler: str = "app.handler",
    ) -> str:
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": runtime,
            "Role": self.role_arn,
            "Handler": handler,
            "Code": {"ZipFile": zip_bytes()},
        }
        if layer_version is not None:
            kwargs["Layers"] = [self.layer(region, layer_version)]
        if env:
            kwargs["Environment"] = {"Variables": env}
        return str(self.client("lambda", region).create_function(**kwargs)["FunctionArn"])

    def protected(self, name: str, region: str, **kw: Any) -> str:
        env = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper", **kw.pop("env", {})}
        return self.function(name, region, layer_version=kw.pop("layer_version", 2), env=env, **kw)

    def instances(
        self, region: str, count: int, tags: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        ec2 = self.client("ec2", region)
        kwargs: dict[str, Any] = {"ImageId": "ami-12c6146b", "MinCount": count, "MaxCount": count}
        if tags:
            kwargs["TagSpecifications"] = [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ]
        return list(ec2.run_instances(**kwargs)["Instances"])

    def fargate_tasks(self, region: str, cluster: str, count: int) -> list[str]:
        ecs = self.client("ecs", region)
        ecs.create_cluster(clusterName=cluster)
        ecs.register_task_definition(
            family="web",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}],
        )
        ec2 = self.client("ec2", region)
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
        tasks = ecs.run_task(
            cluster=cluster,
            taskDefinition="web",
            count=count,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [subnet],
                    "securityGroups": [group["GroupId"]],
                    "assignPublicIp": "DISABLED",
                }
            },
        )["tasks"]
        return [str(t["taskArn"]) for t in tasks]


@dataclass
class Aws:
    session: Any
    core: Account
    member: Account
    published_url: str
    ddb: Any
    s3: Any
    env: dict[str, str]

    def seen(self, workload: str, source: str, last_seen_ms: int, **extra: Any) -> None:
        """A sensor report, written in DynamoSeenStore's layout (through its own key)."""
        item = {
            "workload": {"S": workload},
            "type": {"S": workload.split(":", 1)[0]},
            "last_seen_ms": {"N": str(last_seen_ms)},
            "first_seen_ms": {"N": str(last_seen_ms)},
        }
        for k, v in extra.items():
            item[k] = {"S": str(v)}
        self.ddb.put_item(
            TableName="ramparts-baseline", Item={**DynamoSeenStore.key(workload, source), **item}
        )

    def published(self) -> list[dict[str, Any]]:
        sqs = self.session.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.published_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.published_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for k in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECURITY_TOKEN",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.setenv(k, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGIONS[0])
    monkeypatch.setenv("AWS_REGION", REGIONS[0])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGIONS[0])
        core = Account(CORE, session)
        core.setup()
        creds = session.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{MEMBER}:role/ramparts-responder", RoleSessionName="setup"
        )["Credentials"]
        member = Account(
            MEMBER,
            boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=REGIONS[0],
            ),
        )
        member.setup()
        ddb = session.client("dynamodb")
        table(ddb, "ramparts-baseline")
        table(ddb, "ramparts-findings")
        s3 = session.client("s3")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGIONS[0]}
        )
        sqs = session.client("sqs")
        url = sqs.create_queue(QueueName="published")["QueueUrl"]
        events = session.client("events")
        events.create_event_bus(Name="ramparts")
        events.put_rule(
            Name="all",
            EventBusName="ramparts",
            EventPattern=json.dumps({"source": ["ramparts"], "detail-type": ["Ramparts Finding"]}),
        )
        events.put_targets(
            Rule="all",
            EventBusName="ramparts",
            Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGIONS[0]}:{CORE}:published"}],
        )
        env = {
            "BASELINE_TABLE": "ramparts-baseline",
            "FINDINGS_TABLE": "ramparts-findings",
            "EVIDENCE_BUCKET": BUCKET,
            "EVENT_BUS_NAME": "ramparts",
            "ACCOUNTS": f"{CORE},{MEMBER}",
            "REGIONS": ",".join(REGIONS),
            "AWS_REGION": REGIONS[0],
            "CHECK_INVOCATIONS": "false",
        }
        yield Aws(session, core, member, url, ddb, s3, env)
