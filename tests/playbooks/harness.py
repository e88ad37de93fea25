"""Run the synthesized playbooks in moto.

The template comes from synthesizing the ``Playbooks`` construct in a test stack; every
resource it names is created in moto under the template's logical id, and the state
machines are created from the template's ``DefinitionString`` with its CloudFormation
intrinsics resolved to those moto resources. Two hops moto does not make itself are routed
here: EventBridge rule -> state machine (moto delivers the matching events to an SQS queue
that stands in for each rule's target; the harness starts the rule's state machine with
each message) and Lambda invoke -> Python handler (moto's Lambda backend is patched to call
the handler the template names, with the environment the template gives the function).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import threading
import time
import uuid
import zipfile
from typing import Any

import boto3

from ramparts_cli._demo_account import flatten_event  # the demo routes events the same way

ACCOUNT = "123456789012"
MEMBER = "210987654321"
REGION = "eu-west-1"
_ENV_LOCK = threading.Lock()


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


class Harness:
    def __init__(self, template: dict[str, Any], monkeypatch: Any) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}
        self.env_overrides: dict[str, str] = {}
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        self.c = {
            s: boto3.client(s, region_name=REGION)
            for s in (
                "lambda",
                "dynamodb",
                "s3",
                "sns",
                "sqs",
                "events",
                "stepfunctions",
                "iam",
                "ec2",
                "ecs",
                "autoscaling",
            )
        }
        self._create_all()
        self._patch_lambda(monkeypatch)

    # ---- resources -------------------------------------------------------------------
    def _of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def _create_all(self) -> None:
        iam = self.c["iam"]
        trust = json.dumps(
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
        )
        for lid in self._of_type("AWS::IAM::Role"):
            arn = iam.create_role(RoleName=lid[:64], AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            self.refs[lid] = lid[:64]
            self.attrs[(lid, "Arn")] = arn
        for lid in self._of_type("AWS::KMS::Key"):
            kid = str(uuid.uuid4())
            self.refs[lid] = kid
            self.attrs[(lid, "Arn")] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{kid}"
        for lid in self._of_type("AWS::DynamoDB::Table"):
            name = lid.lower()
            d = self.c["dynamodb"].create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            )
            self.refs[lid] = name
            self.attrs[(lid, "Arn")] = d["TableDescription"]["TableArn"]
        for lid in self._of_type("AWS::S3::Bucket"):
            name = lid.lower()
            self.c["s3"].create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            self.refs[lid] = name
            self.attrs[(lid, "Arn")] = f"arn:aws:s3:::{name}"
        for lid in self._of_type("AWS::SNS::Topic"):
            arn = self.c["sns"].create_topic(Name=lid)["TopicArn"]
            self.refs[lid] = arn
            self.attrs[(lid, "TopicName")] = lid
            q = self.c["sqs"].create_queue(QueueName=f"notify-{lid}")["QueueUrl"]
            qarn = self.c["sqs"].get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            self.c["sns"].subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
            self.notify_queue = q
        for lid, r in self._of_type("AWS::Events::EventBus").items():
            name = r["Properties"]["Name"]
            arn = self.c["events"].create_event_bus(Name=name)["EventBusArn"]
            self.refs[lid] = name
            self.attrs[(lid, "Arn")] = arn
            self.attrs[(lid, "Name")] = name
        fn_role = iam.create_role(RoleName="harness-fn", AssumeRolePolicyDocument=trust)
        self.functions: dict[str, dict[str, Any]] = {}
        for lid, r in self._of_type("AWS::Lambda::Function").items():
            name = lid[:64]
            arn = self.c["lambda"].create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=fn_role["Role"]["Arn"],
                Handler=r["Properties"]["Handler"],
                Code={"ZipFile": zip_of({"x.py": "pass"})},
            )["FunctionArn"]
            self.refs[lid] = name
            self.attrs[(lid, "Arn")] = arn
            self.functions[name] = r["Properties"]
        self.state_machines: dict[str, str] = {}  # logical id -> arn
        self.definitions: dict[str, dict[str, Any]] = {}
        for lid, r in self._of_type("AWS::StepFunctions::StateMachine").items():
            definition = self.resolve(r["Properties"]["DefinitionString"])
            arn = self.c["stepfunctions"].create_state_machine(
                name=lid[:80],
                definition=definition,
                roleArn=self.resolve(r["Properties"]["RoleArn"]),
            )["stateMachineArn"]
            self.refs[lid] = arn
            self.attrs[(lid, "Arn")] = arn
            self.state_machines[lid] = arn
            self.definitions[lid] = json.loads(definition)
        self.rule_queues: dict[str, tuple[str, str]] = {}  # rule -> (queue url, sm arn)
        for lid, r in self._of_type("AWS::Events::Rule").items():
            props = r["Properties"]
            bus = self.resolve(props["EventBusName"])
            self.c["events"].put_rule(
                Name=lid[:64], EventBusName=bus, EventPattern=json.dumps(props["EventPattern"])
            )
            q = self.c["sqs"].create_queue(QueueName=f"rule-{lid}"[:80])["QueueUrl"]
            qarn = self.c["sqs"].get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            self.c["events"].put_targets(
                Rule=lid[:64], EventBusName=bus, Targets=[{"Id": "stand-in", "Arn": qarn}]
            )
            self.rule_queues[lid] = (q, self.resolve(props["Targets"][0]["Arn"]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((k, v),) = value.items()
            if k == "Ref":
                return {
                    "AWS::Partition": "aws",
                    "AWS::Region": REGION,
                    "AWS::AccountId": ACCOUNT,
                    "AWS::URLSuffix": "amazonaws.com",
                }.get(v) or self.refs[v]
            if k == "Fn::GetAtt":
                return self.attrs[(v[0], v[1])]
            if k == "Fn::Join":
                return v[0].join(str(self.resolve(x)) for x in v[1])
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def sm(self, playbook: str) -> str:
        for lid, arn in self.state_machines.items():
            if lid.startswith(f"PlaybooksPlaybook{playbook.replace('-', '')}"):
                return arn
        raise KeyError(playbook)

    def table(self, part: str) -> str:
        return next(
            self.refs[k] for k in self._of_type("AWS::DynamoDB::Table") if k.startswith(part)
        )

    # ---- Lambda invoke -> Python handler -------------------------------------------
    def function_env(self, name: str) -> dict[str, str]:
        props = self.functions[name]
        env = {
            k: str(self.resolve(v))
            for k, v in props.get("Environment", {}).get("Variables", {}).items()
        }
        env.update(self.env_overrides)
        return env

    def _patch_lambda(self, monkeypatch: Any) -> None:
        from moto.awslambda.models import LambdaBackend

        harness = self

        def invoke(  # noqa: PLR0917 - moto's signature
            self: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            name = (
                function_name.rsplit(":", 1)[-1]
                if function_name.startswith("arn:")
                else function_name
            )
            props = harness.functions[name]
            module, func = props["Handler"].rsplit(".", 1)
            event = json.loads(body or b"{}")
            harness.invocations.append((props["Handler"], event))
            from functions.respond import common

            with _ENV_LOCK:
                saved = dict(os.environ)
                os.environ.update(harness.function_env(name))
                common.config.cache_clear()
                try:
                    result = getattr(importlib.import_module(module), func)(event, None)
                    payload = json.dumps(result).encode()
                except Exception as exc:
                    response_headers["x-amz-function-error"] = "Unhandled"
                    payload = json.dumps(
                        {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                    ).encode()
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                    common.config.cache_clear()
            return payload

        from moto.awslambda_simple.models import LambdaSimpleBackend

        monkeypatch.setattr(LambdaBackend, "invoke", invoke)
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

        # moto's event-pattern matcher does not look into arrays of objects, which
        # EventBridge does (``"resources": {"type": [...]}`` matches any element): flatten
        # them the EventBridge way, into lists of values per path.
        from moto.events.models import EventPattern

        monkeypatch.setattr(EventPattern, "_flatten_dict", staticmethod(flatten_event))

        from moto.awslambda.models import lambda_backends
        from moto.awslambda_simple.models import lambda_simple_backends

        def download(url: str) -> bytes:
            for backends in (lambda_simple_backends, lambda_backends):
                for fn in backends[ACCOUNT][REGION].list_functions():
                    if fn.code.get("S3Key") and url.endswith(fn.code["S3Key"]):
                        return bytes(fn.code_bytes)
            raise AssertionError(f"no code behind {url}")

        from functions.respond import lambda_evidence

        monkeypatch.setattr(lambda_evidence, "download", download)

    def set_config(self, **changes: Any) -> None:
        """Change the responders' PLAYBOOKS_CONFIG (as a redeploy with another config would)."""
        any_fn = next(iter(self.functions))
        cfg = json.loads(self.function_env(any_fn)["PLAYBOOKS_CONFIG"])
        for k, v in changes.items():
            if k == "modes":
                cfg["modes"].update(v)
            else:
                cfg[k] = v
        self.env_overrides["PLAYBOOKS_CONFIG"] = json.dumps(cfg)

    # ---- EventBridge -> state machine ---------------------------------------------
    def publish(self, finding: dict[str, Any]) -> list[str]:
        """Put the finding on the bus; start the state machine of every rule it matches."""
        self.c["events"].put_events(
            Entries=[
                {
                    "Source": "ramparts",
                    "DetailType": "Ramparts Finding",
                    "Detail": json.dumps(finding),
                    "EventBusName": "ramparts",
                }
            ]
        )
        started = []
        for q, sm_arn in self.rule_queues.values():
            msgs = (
                self.c["sqs"]
                .receive_message(QueueUrl=q, MaxNumberOfMessages=10)
                .get("Messages", [])
            )
            for m in msgs:
                self.c["sqs"].delete_message(QueueUrl=q, ReceiptHandle=m["ReceiptHandle"])
                started.append(
                    self.c["stepfunctions"].start_execution(
                        stateMachineArn=sm_arn, name=str(uuid.uuid4()), input=m["Body"]
                    )["executionArn"]
                )
        return started

    def start(self, playbook: str, finding: dict[str, Any]) -> str:
        """Start a playbook by hand (release playbooks have no rule)."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "source": "ramparts",
            "detail-type": "Ramparts Finding",
            "account": ACCOUNT,
            "region": REGION,
            "resources": [],
            "detail": finding,
        }
        return str(
            self.c["stepfunctions"].start_execution(
                stateMachineArn=self.sm(playbook), name=str(uuid.uuid4()), input=json.dumps(event)
            )["executionArn"]
        )

    def wait(
        self,
        arn: str,
        until: tuple[str, ...] = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"),
        timeout: float = 120,  # an upper bound on a loaded machine; polls return early
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            d = self.c["stepfunctions"].describe_execution(executionArn=arn)
            if d["status"] in until:
                return dict(d)
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still {d['status']}")
            time.sleep(0.05)

    def run(self, playbook: str, finding: dict[str, Any]) -> dict[str, Any]:
        return self.wait(self.start(playbook, finding))

    def notifications(self) -> list[dict[str, Any]]:
        out = []
        while True:
            msgs = (
                self.c["sqs"]
                .receive_message(QueueUrl=self.notify_queue, MaxNumberOfMessages=10)
                .get("Messages", [])
            )
            if not msgs:
                return out
            for m in msgs:
                self.c["sqs"].delete_message(
                    QueueUrl=self.notify_queue, ReceiptHandle=m["ReceiptHandle"]
                )
                out.append(json.loads(m["Body"]))

    def wait_for_token(self, timeout: float = 60) -> tuple[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.notifications():
                attrs = n.get("MessageAttributes") or {}
                if "task_token" in attrs:
                    return attrs["task_token"]["Value"], n
            time.sleep(0.05)
        raise AssertionError("no approval notification")

    # ---- state of the account ---------------------------------------------------------
    def items(self, finding_id: str) -> dict[str, dict[str, Any]]:
        table = boto3.resource("dynamodb", region_name=REGION).Table(self.table("Actions"))
        got = table.query(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": f"finding#{finding_id}"},
        )["Items"]
        return {i["sk"]: i for i in got}

    def all_items(self) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb", region_name=REGION).Table(self.table("Actions"))
        return list(table.scan()["Items"])


@contextlib.contextmanager
def nothing() -> Any:
    yield
