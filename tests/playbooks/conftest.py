from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.playbooks.harness import ACCOUNT, MEMBER, REGION, Harness

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def build_stack(outdir: str, config: Any = None) -> tuple[Any, Any]:
    import aws_cdk as cdk
    from aws_cdk import aws_dynamodb as ddb
    from aws_cdk import aws_events as events
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from cdk.playbooks import Playbooks, PlaybooksConfig

    app = cdk.App(outdir=outdir)
    stack = cdk.Stack(app, "PlaybooksTest", env=cdk.Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key")

    def table(name: str) -> ddb.Table:
        return ddb.Table(
            stack,
            name,
            partition_key=ddb.Attribute(name="pk", type=ddb.AttributeType.STRING),
            sort_key=ddb.Attribute(name="sk", type=ddb.AttributeType.STRING),
            time_to_live_attribute="expires_at",
            encryption=ddb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
        )

    playbooks = Playbooks(
        stack,
        "Playbooks",
        bus=events.EventBus(stack, "Bus", event_bus_name="ramparts"),
        actions_table=table("Actions"),
        findings_table=table("Findings"),
        evidence_bucket=s3.Bucket(stack, "Evidence", encryption_key=key),
        topic=sns.Topic(stack, "Topic", master_key=key),
        key=key,
        config=config
        or PlaybooksConfig(
            modes={
                "contain-lambda": "automatic",
                "release-lambda": "automatic",
                "isolate-ec2": "automatic",
                "release-ec2": "automatic",
                "stop-ecs-task": "automatic",
            },
            accounts=(ACCOUNT, MEMBER),
            regions=(REGION,),
            breaker_limit=3,
        ),
    )
    return app, playbooks


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("cdk.out")
    app, _playbooks = build_stack(str(out))
    app.synth()
    template = json.loads((Path(out) / "PlaybooksTest.template.json").read_text())
    return {"template": template, "outdir": out}


@pytest.fixture
def template(synthesized: dict[str, Any]) -> dict[str, Any]:
    return synthesized["template"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config=MOTO_CONFIG):
        yield


@pytest.fixture
def h(aws: Any, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Harness:
    return Harness(template, monkeypatch)
