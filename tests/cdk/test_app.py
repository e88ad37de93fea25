"""The app synthesizes offline, passes cdk-nag and cfn-lint, and grants no "*" it can avoid."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from cdk.app import build_app
from cdk.config import ConfigError, RampartsConfig, load_config
from cdk.nag import add_nag

from .conftest import CORE, MEMBER, REGION

STACKS = {
    "RampartsLayer-eu-west-1",
    "RampartsCore",
    f"RampartsMember-{CORE}-{REGION}",
    f"RampartsMember-{MEMBER}-{REGION}",
}

# Actions with no resource-level permissions: "Resource": "*" is the only way to grant them.
UNSCOPABLE = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "lambda:ListFunctions": "List actions take no resource",
    "lambda:ListLayers": "List actions take no resource",
    "ecs:DescribeTaskDefinition": "DescribeTaskDefinition takes no resource-level permission",
    "ec2:Describe*": "EC2 Describe actions take no resource",
    "autoscaling:Describe*": "Auto Scaling Describe actions take no resource",
    "xray:GetSampling*": "X-Ray has no resource-level permissions",
    "logs:*LogDeliver*": "CloudWatch Logs vended delivery (Step Functions logging) takes no "
    "resource",
    "logs:PutResourcePolicy": "vended delivery: the log resource policy takes no resource",
    "logs:DescribeResourcePolicies": "vended delivery: takes no resource",
    "logs:DescribeLogGroups": "vended delivery: takes no resource",
    "ecs:ListClusters": "List actions take no resource",
    "ecs:ListTasks": "the inventory lists tasks of clusters it does not know in advance",
    "cloudwatch:GetMetricData": "GetMetricData takes no resource-level permission",
    "inspector2:ListFindings": "ListFindings takes no resource-level permission",
}
# Resource policies whose "*" means the resource itself (a key policy names no key).
SELF_REFERENCING = {"AWS::KMS::Key"}
# cfn-lint findings on CDK's own output, with the reason they are accepted.
CFN_LINT_IGNORED = {
    "W3005": "CDK adds DependsOn on a role that a GetAtt already implies; harmless",
}


def test_default_app_synthesizes_offline(tmp_path):
    assembly = build_app(str(tmp_path), context={"aws:cdk:bundling-stacks": []}).synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["version"]
    assert assembly.directory == str(tmp_path)
    assert {s.stack_name for s in assembly.stacks} == {
        "RampartsLayer-us-east-1",
        "RampartsCore",
        "RampartsMember-111111111111-us-east-1",
    }


def test_stacks_have_explicit_environments(synth):
    envs = {
        s.stack_name: (s.environment.account, s.environment.region) for s in synth.assembly.stacks
    }
    assert set(envs) == STACKS
    assert envs["RampartsCore"] == (CORE, REGION)
    assert envs[f"RampartsMember-{MEMBER}-{REGION}"] == (MEMBER, REGION)


def test_nag_runs_and_everything_is_acknowledged(synth):
    # The synth in the fixture raised on any unacknowledged finding; the report is clean.
    report = synth.outdir / "validation-report.json"
    if report.exists():
        data = json.loads(report.read_text())
        assert all(p["conclusion"] == "success" for p in data["pluginReports"]), data


def test_nag_fails_synth_on_an_unacknowledged_finding(tmp_path):
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad", env=cdk.Environment(account=CORE, region=REGION))
    s3.Bucket(stack, "Open")
    add_nag(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_every_acknowledgement_has_a_reason(synth):
    seen = 0
    for path in synth.outdir.glob("*.metadata.json"):
        for entries in json.loads(path.read_text()).values():
            for entry in entries:
                if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    for rule, reason in entry["data"].items():
                        seen += 1
                        assert isinstance(reason, str) and len(reason) >= 10, rule
    assert seen >= 10


def test_cfn_lint_passes(synth):
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    assert len(templates) == len(STACKS)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--ignore-checks",
            *CFN_LINT_IGNORED,
            "--",
            *templates,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _statements(templates):
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            for key in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument"):
                doc = props.get(key)
                if isinstance(doc, dict):
                    for st in doc.get("Statement", []):
                        yield stack, logical_id, resource["Type"], st
            for policy in props.get("Policies", []) or []:
                for st in policy["PolicyDocument"].get("Statement", []):
                    yield stack, logical_id, resource["Type"], st


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_star_resource_except_unscopable_actions(synth):
    offenders = []
    checked = 0
    for stack, logical_id, rtype, st in _statements(synth.templates):
        if st.get("Effect") != "Allow" or "*" not in _as_list(st.get("Resource", [])):
            checked += 1
            continue
        if rtype in SELF_REFERENCING:
            continue
        bad = [
            a
            for a in _as_list(st.get("Action", []))
            if not any(fnmatch.fnmatchcase(a, pattern) for pattern in UNSCOPABLE)
        ]
        if bad:
            offenders.append((stack, logical_id, bad))
    assert checked > 20
    assert not offenders, offenders


def test_least_privilege_check_catches_a_star(synth):
    template = {
        "Resources": {
            "P": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
                        ]
                    }
                },
            }
        }
    }
    found = [st for *_, st in _statements({"x": template})]
    assert found and "*" in _as_list(found[0]["Resource"])
    assert "s3:GetObject" not in UNSCOPABLE


def test_config_from_context_and_errors(tmp_path):
    ctx = {
        "ramparts:core_account": "123456789012",
        "ramparts:member_accounts": "210987654321, 333333333333",
        "ramparts:regions": '["eu-west-1", "us-east-1"]',
        "ramparts:security_hub_export": "true",
        "ramparts:config": str(tmp_path / "none.json"),
    }
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(ctx.get)
    (tmp_path / "r.json").write_text(json.dumps({"alert_min_severity": "critical"}))
    ctx["ramparts:config"] = str(tmp_path / "r.json")
    cfg = load_config(ctx.get)
    assert cfg.member_accounts == ("210987654321", "333333333333")
    assert cfg.primary_region == "eu-west-1" and cfg.security_hub_export
    assert cfg.alert_min_severity == "CRITICAL"
    with pytest.raises(ConfigError, match="core_account"):
        RampartsConfig(core_account="12").validate()
    with pytest.raises(ConfigError, match="unknown key 'acounts'"):
        load_config({"ramparts:config": str(tmp_path / "bad.json")}.get) if (
            tmp_path / "bad.json"
        ).write_text('{"acounts": []}') else None
    with pytest.raises(ConfigError, match="playbook_modes"):
        RampartsConfig(playbook_modes={"contain-lambda": "yolo"}).validate()
