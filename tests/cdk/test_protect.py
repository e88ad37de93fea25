"""The Protect aspect and ProtectedFunction on the example app (examples/cdk-app)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template

from cdk.protect import Protect, Protection

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cdk-app" / "app.py"


def _example():
    spec = importlib.util.spec_from_file_location("ramparts_example_app", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    module = _example()
    app = module.build(cdk.App())
    stack = app.node.find_child("Orders")
    return module, stack, Template.from_stack(stack)


def _fn(t: Template, handler_or_id: str) -> dict:
    for logical_id, res in t.find_resources("AWS::Lambda::Function").items():
        if logical_id.startswith(handler_or_id):
            return res["Properties"]
    raise AssertionError(handler_or_id)


def test_python_functions_get_layer_wrapper_and_policy(example):
    module, _, t = example
    orders = _fn(t, "Orders")
    assert orders["Layers"] == [module.LAYERS["python3.12/arm64"]]
    assert orders["Environment"]["Variables"] == {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper",
        "RAMPARTS_POLICY": "policy.yaml",
        "RAMPARTS_MODE": "monitor",
    }
    reports = _fn(t, "Reports")  # L1, default architecture
    assert reports["Layers"] == [module.LAYERS["python3.13/x86_64"]]
    assert reports["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/ramparts-wrapper"
    payments = _fn(t, "Payments")  # ProtectedFunction: its own inline policy is kept
    assert json.loads(payments["Environment"]["Variables"]["RAMPARTS_POLICY"])["mode"] == "enforce"
    assert payments["Layers"] == [module.LAYERS["python3.11/x86_64"]]


def test_node_function_is_skipped_with_a_warning(example):
    _, stack, t = example
    frontend = _fn(t, "Frontend")
    assert "Layers" not in frontend and "Environment" not in frontend
    Annotations.from_stack(stack).has_warning(
        "/Orders/Frontend", Match.string_like_regexp("nodejs22.x.*not one of")
    )
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    assert len(warnings) == 1


def test_log_permissions_scoped_to_the_functions_own_log_group(example):
    _, _, t = example
    for name in ("Orders", "Reports", "Payments"):
        fn = _fn(t, name)
        group = fn["LoggingConfig"]["LogGroup"]["Ref"]
        role_id = fn["Role"]["Fn::GetAtt"][0]
        role = t.find_resources("AWS::IAM::Role")[role_id]["Properties"]
        assert "AWSLambdaBasicExecutionRole" not in json.dumps(role)
        policies = [
            p
            for p in t.find_resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
        ]
        resources = [
            st["Resource"]
            for p in policies
            for st in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert resources == [
            {
                "Fn::Sub": [
                    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${Group}:*",
                    {"Group": {"Ref": group}},
                ]
            }
        ]
        t.has_resource_properties(
            "AWS::Logs::SubscriptionFilter",
            {
                "LogGroupName": {"Ref": group},
                "FilterPattern": "{ $.ramparts >= 1 }",
                "DestinationArn": Match.string_like_regexp(":destination:ramparts-sensor-logs$"),
            },
        )
    # The Node function keeps the managed policy: it is not protected.
    assert "AWSLambdaBasicExecutionRole" in json.dumps(t.find_resources("AWS::IAM::Role"))
    t.resource_count_is("AWS::Logs::SubscriptionFilter", 3)


def test_aspect_leaves_other_exec_wrappers_and_own_settings_alone():
    app = cdk.App()
    stack = cdk.Stack(app, "S", env=cdk.Environment(account="222222222222", region="eu-west-1"))
    common = {
        "runtime": lambda_.Runtime.PYTHON_3_12,
        "handler": "i.h",
        "code": lambda_.Code.from_inline("x"),
    }
    role = "arn:aws:iam::222222222222:role/r"
    # L1 functions: their environment is readable at synth (see the report about L2).
    lambda_.CfnFunction(
        stack,
        "Other",
        runtime="python3.12",
        role=role,
        code={"zipFile": "x"},
        environment={"variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel"}},
    )
    lambda_.CfnFunction(
        stack,
        "Own",
        runtime="python3.12",
        role=role,
        code={"zipFile": "x"},
        environment={"variables": {"RAMPARTS_MODE": "enforce"}},
    )
    layer = "arn:aws:lambda:eu-west-1:111111111111:layer:ramparts-sensor-py312-x8664:1"
    cdk.Aspects.of(app).add(Protect(layer_arn={"python3.12": layer}, mode="monitor"))
    lambda_.Function(stack, "NoLayer", **{**common, "runtime": lambda_.Runtime.PYTHON_3_11})
    t = Template.from_stack(stack)
    assert _fn(t, "Other")["Environment"]["Variables"] == {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel"}
    assert _fn(t, "Own")["Environment"]["Variables"]["RAMPARTS_MODE"] == "enforce"
    assert _fn(t, "Own")["Layers"] == [layer]
    notes = Annotations.from_stack(stack)
    notes.has_warning("/S/Other", Match.string_like_regexp("AWS_LAMBDA_EXEC_WRAPPER"))
    notes.has_warning("/S/NoLayer", Match.string_like_regexp("no layer for python3.11"))


def test_protection_checks_its_arguments():
    with pytest.raises(ValueError, match="mode"):
        Protection(layer_arn="arn:x", mode="block")
    with pytest.raises(ValueError, match="over"):
        Protection(layer_arn="arn:x", policy={"files": {"allow": ["/tmp/" + "x" * 4000]}})
    p = Protection(layer_arn={"python3.12/arm64": "a", "python3.12": "b"})
    assert p.layer_for("python3.12", "arm64") == "a"
    assert p.layer_for("python3.12", "x86_64") == "b"
    assert p.layer_for("python3.11", "arm64") is None
