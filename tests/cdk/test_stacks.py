"""What the Layer, Core and Member stacks contain."""

from __future__ import annotations

import json
import sys
import zipfile

from aws_cdk.assertions import Match, Template

from .conftest import CORE, MEMBER, ORG, REGION


def test_layer_versions_per_runtime_and_architecture(synth):
    t = Template.from_json(synth.template("RampartsLayer-eu-west-1"))
    t.resource_count_is("AWS::Lambda::LayerVersion", 6)
    for minor in (11, 12, 13):
        for arch in ("x86_64", "arm64"):
            t.has_resource_properties(
                "AWS::Lambda::LayerVersion",
                {
                    "LayerName": f"ramparts-sensor-py3{minor}-{arch.replace('_', '')}",
                    "CompatibleRuntimes": [f"python3.{minor}"],
                    "CompatibleArchitectures": [arch],
                },
            )
    t.resource_count_is("AWS::Lambda::LayerVersionPermission", 6)
    t.all_resources_properties(
        "AWS::Lambda::LayerVersionPermission",
        {"Action": "lambda:GetLayerVersion", "Principal": "*", "OrganizationId": ORG},
    )


def test_layer_zip_is_bundled_locally(synth):
    assets = json.loads((synth.outdir / "RampartsLayer-eu-west-1.assets.json").read_text())
    template = synth.template("RampartsLayer-eu-west-1")
    by_runtime = {}
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Lambda::LayerVersion":
            key = res["Properties"]["Content"]["S3Key"]
            by_runtime[res["Properties"]["CompatibleRuntimes"][0]] = key.removesuffix(".zip")
    for runtime, asset_hash in by_runtime.items():
        path = synth.outdir / assets["files"][asset_hash]["source"]["path"]
        assert path.suffix == ".zip", "the bundle is the layer zip itself"
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            wrapper = zf.getinfo("ramparts-wrapper")
            assert (wrapper.external_attr >> 16) & 0o777 == 0o755
        assert "python/ramparts/__init__.py" in names
        pycs = {n for n in names if n.endswith(".pyc")}
        here = f"python{sys.version_info.major}.{sys.version_info.minor}"
        tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
        if runtime == here:
            assert pycs and all(tag in n for n in pycs)
        else:
            assert not pycs, f"{runtime} must ship sources only"


def test_layer_shared_with_listed_accounts_without_an_organisation():
    import aws_cdk as cdk

    from cdk.config import RampartsConfig
    from cdk.layer_stack import LayerStack

    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    cfg = RampartsConfig(
        core_account=CORE,
        member_accounts=(MEMBER,),
        python_runtimes=("python3.12",),
        architectures=("arm64",),
    ).validate()
    t = Template.from_stack(
        LayerStack(app, "L", config=cfg, env=cdk.Environment(account=CORE, region=REGION))
    )
    t.resource_count_is("AWS::Lambda::LayerVersionPermission", 1)
    t.has_resource_properties(
        "AWS::Lambda::LayerVersionPermission",
        {"Principal": MEMBER, "OrganizationId": Match.absent()},
    )


def core(synth) -> Template:
    return Template.from_json(synth.template("RampartsCore"))


def test_bus_tables_bucket(synth):
    t = core(synth)
    t.has_resource_properties("AWS::Events::EventBus", {"Name": "ramparts"})
    t.has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {
            "Statement": Match.object_like(
                {
                    "Action": "events:PutEvents",
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
                }
            )
        },
    )
    for name in ("ramparts-findings", "ramparts-actions", "ramparts-baseline"):
        t.has_resource(
            "AWS::DynamoDB::Table",
            {
                "DeletionPolicy": "Retain",
                "Properties": {
                    "TableName": name,
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {
                        "SSEEnabled": True,
                        "SSEType": "KMS",
                        "KMSMasterKeyId": Match.any_value(),
                    },
                },
            },
        )
    t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    t.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "Retain",
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "BucketKeyEnabled": True,
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            },
                        }
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "LoggingConfiguration": {
                    "DestinationBucketName": Match.any_value(),
                    "LogFilePrefix": "evidence/",
                },
            },
        },
    )
    # enforce SSL on both buckets
    policies = t.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for p in policies.values():
        assert any(
            st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for st in p["Properties"]["PolicyDocument"]["Statement"]
        )


def _ingest(t: Template) -> dict:
    fns = t.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "functions.ingest.handler"}}
    )
    assert len(fns) == 1
    return next(iter(fns.values()))


def test_ingest_function_and_environment(synth):
    t = core(synth)
    fn = _ingest(t)["Properties"]
    assert fn["Runtime"] == "python3.13" and fn["Architectures"] == ["arm64"]
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert "DeadLetterConfig" in fn and len(fn["Layers"]) == 1
    env = fn["Environment"]["Variables"]
    assert set(env) == {
        "FINDINGS_TABLE",
        "BASELINE_TABLE",
        "EVENT_BUS_NAME",
        "DLQ_URL",
        "ALERT_TOPIC_ARN",
        "ALERT_MIN_SEVERITY",
        "SECURITY_HUB_EXPORT",
        "MEMBER_ACCOUNTS",
        "BASELINE_LEARNING_DAYS",
        "TUNING_URI",
        "RESPONDER_ROLE_NAME",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }
    assert env["SECURITY_HUB_EXPORT"] == "true"
    assert env["MEMBER_ACCOUNTS"] == f"{CORE},{MEMBER}"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Ramparts"
    assert env["TUNING_URI"] == "s3://ramparts-config-bucket/tuning.yaml"
    assert env["EVENT_BUS_NAME"] == {"Ref": next(iter(t.find_resources("AWS::Events::EventBus")))}


def test_ingest_event_sources_report_batch_item_failures(synth):
    t = core(synth)
    t.resource_count_is("AWS::Lambda::EventSourceMapping", 2)
    t.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("SensorStream"), "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    t.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("IngestQueue"), "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    t.has_resource_properties(
        "AWS::Logs::Destination",
        {
            "DestinationName": "ramparts-sensor-logs",
            "TargetArn": {"Fn::GetAtt": [Match.string_like_regexp("SensorStream"), "Arn"]},
        },
    )
    dest = next(iter(t.find_resources("AWS::Logs::Destination").values()))
    policy = json.loads(dest["Properties"]["DestinationPolicy"])
    assert policy["Statement"][0]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": [ORG]}}
    for source, detail in (
        ("aws.guardduty", "GuardDuty Finding"),
        ("aws.inspector2", "Inspector2 Finding"),
    ):
        rules = t.find_resources(
            "AWS::Events::Rule",
            {"Properties": {"EventPattern": {"source": [source], "detail-type": [detail]}}},
        )
        assert len(rules) == 2  # default bus and the ramparts bus
        for rule in rules.values():
            target = rule["Properties"]["Targets"][0]
            assert "DeadLetterConfig" in target and "RetryPolicy" in target


def test_queues_are_encrypted_with_the_key_and_dlqs_alarmed(synth):
    t = core(synth)
    t.resource_count_is("AWS::SQS::Queue", 4)  # + the playbooks' undelivered findings
    t.all_resources_properties("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value()})
    t.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "ramparts-ingest",
            "RedrivePolicy": {"maxReceiveCount": 5, "deadLetterTargetArn": Match.any_value()},
        },
    )
    t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    t.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "RedrivePolicy": Match.any_value()}
    )
    alarms = t.find_resources("AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    assert metrics == sorted(
        [
            "ApproximateNumberOfMessagesVisible",  # poison DLQ
            "ApproximateNumberOfMessagesVisible",  # failure DLQ
            "ApproximateNumberOfMessagesVisible",  # findings no playbook could take
            "Errors",  # ingest
            "Errors",  # inventory
            "Errors",  # OSV update
            "Errors",  # vulnerability scan
            "IteratorAge",
            "Throttles",
            *["ExecutionsFailed"] * 5,  # one per playbook
        ]
    )
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [
            {"Ref": next(iter(t.find_resources("AWS::SNS::Topic")))}
        ]
    t.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_ingest_permissions_are_named(synth):
    t = core(synth)
    role_id = _ingest(t)["Properties"]["Role"]["Fn::GetAtt"][0]
    role = t.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    statements = [
        st
        for p in t.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {st.get("Sid"): st for st in statements}
    assert set(by_sid["Tables"]["Action"]) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    assert len(by_sid["Tables"]["Resource"]) == 2
    assert f"securityhub:{REGION}:{CORE}:product/{CORE}/default" in json.dumps(
        by_sid["SecurityHub"]["Resource"]
    )
    # tag conditions of tuning exceptions are read through each account's responder role
    assert by_sid["WorkloadTags"]["Action"] == "sts:AssumeRole"
    assert (
        sorted(json.dumps(r) for r in by_sid["WorkloadTags"]["Resource"])
        == sorted(
            json.dumps(r)
            for r in by_sid["WorkloadTags"]["Resource"]
            if f":{CORE}:role/ramparts-responder" in json.dumps(r)
            or f":{MEMBER}:role/ramparts-responder" in json.dumps(r)
        )
        and len(by_sid["WorkloadTags"]["Resource"]) == 2
    )
    assert (
        by_sid["Tuning"]["Resource"] == "arn:aws:s3:::ramparts-config-bucket/tuning.yaml"
        or "ramparts-config-bucket/tuning.yaml" in json.dumps(by_sid["Tuning"]["Resource"])
    )
    assert by_sid["PoisonRecords"]["Action"] == "sqs:SendMessage"
    assert by_sid["Bus"]["Action"] == "events:PutEvents"
    assert by_sid["Alerts"]["Action"] == "sns:Publish"
    logs = by_sid["OwnLogGroupOnly"]["Resource"]
    assert logs["Fn::GetAtt"][1] == "Arn"


def member(synth, account) -> Template:
    return Template.from_json(synth.template(f"RampartsMember-{account}-{REGION}"))


def test_member_forwards_findings_and_reconciles_subscriptions(synth):
    t = member(synth, MEMBER)
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "functions.subscriber.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "DESTINATION_ARN": f"arn:aws:logs:{REGION}:{CORE}:destination:ramparts-sensor-logs",
                        "FILTER_PATTERN": "{ $.ramparts >= 1 }",
                    }
                )
            },
        },
    )
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "detail-type": ["AWS API Call via CloudTrail"],
                    "detail": {"eventName": Match.array_with(["CreateLogGroup"])},
                }
            )
        },
    )
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(6 hours)"})
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": f"arn:aws:events:{REGION}:{CORE}:event-bus/ramparts",
                        "DeadLetterConfig": Match.any_value(),
                    }
                )
            ],
        },
    )
    # The core account's own member stack does not forward to itself.
    member(synth, CORE).resource_properties_count_is(
        "AWS::Events::Rule",
        {"EventPattern": {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}},
        0,
    )


def test_responder_role(synth):
    t = member(synth, MEMBER)
    roles = t.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": "ramparts-responder"}})
    assert len(roles) == 1
    role_id, role = next(iter(roles.items()))
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ORG}
    assert f":{CORE}:role/RampartsCore-*" in json.dumps(
        trust["Condition"]["ArnLike"]["aws:PrincipalArn"]
    )
    statements = [
        st
        for p in t.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        a
        for st in statements
        if st["Effect"] == "Allow"
        for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    }
    assert {
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionUrlConfig",
        "iam:PutRolePolicy",
        "ec2:ModifyInstanceAttribute",
        "autoscaling:DetachInstances",
        "ecs:StopTask",
    } <= actions
    assert not any(a.endswith(":*") or a == "*" for a in actions)
    deny = [st for st in statements if st["Effect"] == "Deny"]
    assert deny and any("ramparts-responder" in json.dumps(st["Resource"]) for st in deny)
