"""The construct: IAM derived from the responders' declarations, routing, configuration."""

from __future__ import annotations

import importlib
import json

import pytest

from cdk.playbooks import PlaybooksConfig, Route
from cdk.playbooks.construct import permissions_of
from functions.respond import RESPONDERS
from tests.playbooks.harness import ACCOUNT, MEMBER, REGION


def symbolic(value):
    """CloudFormation intrinsics as readable strings (no AWS needed)."""
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        if k == "Ref":
            return {"AWS::Partition": "aws"}.get(v, f"<{v}>")
        if k == "Fn::GetAtt":
            return f"<{v[0]}.{v[1]}>"
        if k == "Fn::Join":
            return v[0].join(symbolic(x) for x in v[1])
    if isinstance(value, list):
        return [symbolic(x) for x in value]
    if isinstance(value, dict):
        return {k: symbolic(v) for k, v in value.items()}
    return value


def as_list(x):
    return x if isinstance(x, list) else [x]


def role_statements(template, role_ref):
    out = []
    for r in template["Resources"].values():
        if r["Type"] == "AWS::IAM::Policy" and role_ref in r["Properties"]["Roles"]:
            out.extend(r["Properties"]["PolicyDocument"]["Statement"])
    return [
        (tuple(sorted(as_list(s["Action"]))), tuple(sorted(as_list(symbolic(s["Resource"])))))
        for s in out
    ]


def logical(template, type_, prefix):
    return next(
        k for k, r in template["Resources"].items() if r["Type"] == type_ and k.startswith(prefix)
    )


def test_responder_policies_are_derived_from_their_declarations(template):
    names = {
        "partition": "aws",
        "core_account": ACCOUNT,
        "actions_table_arn": f"<{logical(template, 'AWS::DynamoDB::Table', 'Actions')}.Arn>",
        "findings_table_arn": f"<{logical(template, 'AWS::DynamoDB::Table', 'Findings')}.Arn>",
        "evidence_bucket_arn": f"<{logical(template, 'AWS::S3::Bucket', 'Evidence')}.Arn>",
        "topic_arn": f"<{logical(template, 'AWS::SNS::Topic', 'Topic')}>",
        "key_arn": f"<{logical(template, 'AWS::KMS::Key', 'Key')}.Arn>",
    }
    member_roles = [f"arn:aws:iam::{MEMBER}:role/ramparts-responder"]
    by_handler = {h: n for n, h in RESPONDERS.items()}
    seen = set()
    for r in template["Resources"].values():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        name = by_handler[r["Properties"]["Handler"]]
        seen.add(name)
        role_ref = {"Ref": r["Properties"]["Role"]["Fn::GetAtt"][0]}
        statements = role_statements(template, role_ref)
        # besides its declarations: writing to its own log group, and X-Ray tracing
        own_logs = (("logs:CreateLogStream", "logs:PutLogEvents"),)
        xray = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
        log_group = r["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert (own_logs[0], (f"<{log_group}.Arn>",)) in statements, name
        assert (xray, ("*",)) in statements, name
        deployed = sorted(st for st in statements if st[0] not in (own_logs[0], xray))
        expected = []
        for perm in permissions_of(name):
            resources = [
                m
                for p in perm.resources
                for m in (member_roles if p == "{member_role_arns}" else [p.format(**names)])
            ]
            expected.append((tuple(sorted(perm.actions)), tuple(sorted(resources))))
        assert deployed == sorted(expected), name
        for actions, _ in deployed:
            assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    assert seen == set(RESPONDERS)  # one function per responder module


def test_every_responder_declares_permissions():
    for name, handler in RESPONDERS.items():
        module = importlib.import_module(handler.rsplit(".", 1)[0])
        assert module.PERMISSIONS, name
        assert callable(getattr(module, handler.rsplit(".", 1)[1]))


def test_state_machine_roles_allow_exactly_their_sdk_integrations(template):
    from cdk.playbooks.definitions import sdk_actions

    for lid, r in template["Resources"].items():
        if r["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        definition = json.loads(symbolic(r["Properties"]["DefinitionString"]))
        role_ref = {"Ref": r["Properties"]["RoleArn"]["Fn::GetAtt"][0]}
        allowed = {a for actions, _ in role_statements(template, role_ref) for a in actions}
        needed = {a for _, a in sdk_actions(definition)}
        assert needed <= allowed, lid
        assert "sts:AssumeRole" in allowed  # the member account's role, for Credentials
        vended_logs = {
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        }
        for extra in allowed - needed - vended_logs:  # logging every state: vended delivery
            assert extra.split(":")[0] in ("lambda", "dynamodb", "sns", "kms", "sts", "xray"), extra


def test_member_account_steps_carry_credentials(h):
    def walk(sts, into):
        for name, s in sts.items():
            into[name] = s
            for b in s.get("Branches", []):
                walk(b["States"], into)

    for definition in h.definitions.values():
        states = {}
        walk(definition["States"], states)
        for name, s in states.items():
            if ":aws-sdk:" in str(s.get("Resource", "")):
                if name.endswith("(member account)"):
                    assert s["Credentials"] == {"RoleArn.$": "$.guard.role_arn"}
                else:
                    assert "Credentials" not in s


def test_guardrails_cross_account_uses_member_role(h):
    import boto3

    from functions.respond import common, guardrails
    from tests.playbooks.fixtures import finding

    env = h.function_env(next(iter(h.functions)))
    arn = f"arn:aws:lambda:{REGION}:{MEMBER}:function:remote"
    event = {"detail": finding(arn, "AwsLambdaFunction", fid="f-remote", account=MEMBER)}
    import os

    saved = dict(os.environ)
    os.environ.update(env)
    common.config.cache_clear()
    try:
        # the member account's function, created through the member role's credentials
        guard = {
            "cross_account": True,
            "role_arn": f"arn:aws:iam::{MEMBER}:role/ramparts-responder",
            "region": REGION,
            "playbook": "contain-lambda",
        }
        session = common.session_for(guard)
        assert session.client("sts").get_caller_identity()["Account"] == MEMBER
        iam = session.client("iam")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        from tests.playbooks.fixtures import CODE

        session.client("lambda").create_function(
            FunctionName="remote",
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": CODE},
        )
        out = guardrails.decide("contain-lambda", event, "exec-1")
        assert out["cross_account"] is True
        assert out["role_arn"] == f"arn:aws:iam::{MEMBER}:role/ramparts-responder"
        assert out["decision"] == "act"
        # same-account findings use the responder's own role
        local = finding(
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x", "AwsLambdaFunction", fid="f-local"
        )
        local_role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="x",
            Runtime="python3.11",
            Role=local_role,
            Handler="app.handler",
            Code={"ZipFile": CODE},
        )
        out = guardrails.decide("contain-lambda", {"detail": local}, "exec-2")
        assert out["cross_account"] is False and out["role_arn"] == ""
    finally:
        os.environ.clear()
        os.environ.update(saved)
        common.config.cache_clear()


def test_route_patterns():
    r = Route(
        "contain-lambda",
        ("AwsLambdaFunction",),
        min_severity=3,
        include_types=("layer.exec-shell", "layer.egress"),
        exclude_types=("layer.egress",),
    )
    assert r.pattern()["detail"] == {
        "resources": {"type": ["AwsLambdaFunction"]},
        "severity_id": [{"numeric": [">=", 3]}],
        "finding_info": {"types": ["layer.exec-shell"]},
    }
    r = Route("isolate-ec2", ("AwsEc2Instance",), exclude_types=("guardduty.recon",))
    assert r.pattern()["detail"]["finding_info"] == {
        "types": [{"anything-but": ["guardduty.recon"]}]
    }


def test_excluded_finding_types_are_not_routed(aws, monkeypatch, tmp_path):
    from moto.events.models import EventPattern

    from tests.playbooks.harness import flatten_event

    monkeypatch.setattr(EventPattern, "_flatten_dict", staticmethod(flatten_event))
    from tests.playbooks.fixtures import finding

    r = Route("contain-lambda", ("AwsLambdaFunction",), exclude_types=("layer.noisy",))
    pattern = EventPattern.load(json.dumps(r.pattern()))
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"

    def event(**kw):
        return {
            "source": "ramparts",
            "detail-type": "Ramparts Finding",
            "detail": finding(arn, "AwsLambdaFunction", fid="x", **kw),
        }

    assert pattern.matches_event(event())
    assert not pattern.matches_event(event(rule="layer.noisy"))
    assert not pattern.matches_event(event(severity=2))


@pytest.mark.parametrize(
    "bad",
    [
        {"modes": {"contain-lambda": "yolo"}},
        {"modes": {"nuke-account": "automatic"}},
        {"routes": (Route("release-lambda", ("AwsLambdaFunction",)),)},
        {"routes": (Route("contain-lambda", ("AwsLambdaFunction",), min_severity=0),)},
        {"breaker_limit": -1},
    ],
)
def test_config_is_validated(bad):
    with pytest.raises(ValueError):
        PlaybooksConfig(**bad)


def test_runtime_config_reaches_the_responders(h):
    cfg = json.loads(h.function_env(next(iter(h.functions)))["PLAYBOOKS_CONFIG"])
    assert cfg["accounts"] == [ACCOUNT, MEMBER]
    assert cfg["regions"] == [REGION]
    assert cfg["breaker_limit"] == 3
    assert cfg["modes"]["contain-lambda"] == "automatic"
    assert set(h.rule_queues)  # one rule per route
    assert len(h.rule_queues) == 3
