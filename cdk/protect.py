"""Put the Ramparts sensor on Lambda functions in your own CDK app.

Either for everything in a scope::

    Aspects.of(app).add(Protect(layer_arn=..., policy={"mode": "monitor"}))

or for one function, ``ProtectedFunction(self, "Orders", protection=Protection(...), ...)``.

For each Python function (L2 ``aws_lambda.Function`` or L1 ``CfnFunction``, python3.11 to
python3.13) protection:

- attaches the layer (one ARN, or one per ``"<runtime>/<architecture>"``);
- sets ``AWS_LAMBDA_EXEC_WRAPPER=/opt/ramparts-wrapper``, and ``RAMPARTS_POLICY`` /
  ``RAMPARTS_MODE`` unless the function sets them itself (the function's own value wins);
- gives the function a log group of its own (``LoggingConfig.LogGroup``) unless it already
  names one, and replaces ``AWSLambdaBasicExecutionRole`` (``logs:PutLogEvents`` on every log
  group of the account) with a policy on that log group only: otherwise a compromised
  function could write forged sensor lines into another function's log;
- subscribes the log group to the core account's CloudWatch Logs destination when one is
  given, with a filter that keeps only the sensor's lines.

Limitation: the environment an L2 ``Function`` was given is not readable from Python at
synth time (jsii), so for L2 functions the protection's variables replace any the function
set itself; pass the function's own policy/mode through ``Protection`` (or use
``ProtectedFunction``). L1 ``CfnFunction`` variables are read, and the function's own win.

Functions of other runtimes (or with no runtime: container images) are left unchanged with a
warning annotation, so ``cdk synth`` lists what is not covered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from cdk.config import PYTHON_RUNTIMES

__all__ = [
    "LOG_FILTER_NAME",
    "SENSOR_FILTER_PATTERN",
    "WRAPPER_PATH",
    "Protect",
    "ProtectedFunction",
    "Protection",
    "protect_function",
    "scope_log_permissions",
]

WRAPPER_PATH = "/opt/ramparts-wrapper"
# Every sensor line is a JSON object whose "ramparts" key is the schema version (>= 1).
SENSOR_FILTER_PATTERN = "{ $.ramparts >= 1 }"
LOG_FILTER_NAME = "ramparts-sensor"
PROTECTED_METADATA = "ramparts:protected"
BASIC_EXECUTION_POLICY = "service-role/AWSLambdaBasicExecutionRole"
VPC_EXECUTION_POLICY = "service-role/AWSLambdaVPCAccessExecutionRole"
MODES = ("off", "monitor", "enforce", "learn")
MAX_LAYERS = 5
# Lambda allows 4 KB of environment variables in all; leave room for the function's own.
MAX_INLINE_POLICY = 3072


@dataclass(frozen=True)
class Protection:
    """What protection applies: the layer, the policy, the mode, where logs go.

    ``layer_arn`` is one layer version ARN, or a mapping from ``"python3.12/arm64"`` (or just
    ``"python3.12"``) to the ARN published for that runtime and architecture (the Layer stack
    outputs one per pair). ``policy`` is a policy file path (absolute, or relative to the
    function's code, as ``RAMPARTS_POLICY`` takes it) or the policy itself as a mapping,
    which is set inline as JSON.
    """

    layer_arn: str | Mapping[str, str]
    policy: str | Mapping[str, Any] | None = None
    mode: str | None = None
    log_destination_arn: str | None = None
    scope_log_permissions: bool = True
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {MODES}")
        if isinstance(self.policy, Mapping) and len(self.policy_value() or "") > MAX_INLINE_POLICY:
            raise ValueError(
                f"policy: {len(self.policy_value() or '')} characters of inline JSON, over "
                f"{MAX_INLINE_POLICY}; ship it as a file with the function's code and give its path"
            )

    def layer_for(self, runtime: str, architecture: str) -> str | None:
        if isinstance(self.layer_arn, str):
            return self.layer_arn
        return self.layer_arn.get(f"{runtime}/{architecture}") or self.layer_arn.get(runtime)

    def policy_value(self) -> str | None:
        if self.policy is None:
            return None
        if isinstance(self.policy, str):
            return self.policy
        return json.dumps(dict(self.policy), separators=(",", ":"), sort_keys=True)

    def environment(self) -> dict[str, str]:
        env = {"AWS_LAMBDA_EXEC_WRAPPER": WRAPPER_PATH}
        policy = self.policy_value()
        if policy is not None:
            env["RAMPARTS_POLICY"] = policy
        if self.mode is not None:
            env["RAMPARTS_MODE"] = self.mode
        return env


@jsii.implements(cdk.IAspect)
class Protect:
    """The aspect: ``Aspects.of(scope).add(Protect(layer_arn=..., policy=..., mode=...))``."""

    def __init__(
        self,
        *,
        layer_arn: str | Mapping[str, str],
        policy: str | Mapping[str, Any] | None = None,
        mode: str | None = None,
        log_destination_arn: str | None = None,
        scope_log_permissions: bool = True,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        self.protection = Protection(
            layer_arn=layer_arn,
            policy=policy,
            mode=mode,
            log_destination_arn=log_destination_arn,
            scope_log_permissions=scope_log_permissions,
            log_retention=log_retention,
        )

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, lambda_.Function) or (
            isinstance(node, lambda_.CfnFunction) and _l2_of(node) is None
        ):
            protect_function(node, self.protection)


class ProtectedFunction(lambda_.Function):
    """An ``aws_lambda.Function`` with the sensor on it (same properties, plus ``protection``)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, protection: Protection, **props: Any
    ) -> None:
        super().__init__(scope, construct_id, **props)
        protect_function(self, protection)


def _l2_of(cfn: lambda_.CfnFunction) -> lambda_.Function | None:
    parent = cfn.node.scope
    if isinstance(parent, lambda_.Function):
        child = parent.node.default_child
        # Compared by path: jsii may hand out a new proxy object for the same construct.
        if child is not None and child.node.path == cfn.node.path:
            return parent
    return None


def _is_protected(cfn: lambda_.CfnFunction) -> bool:
    return any(entry.type == PROTECTED_METADATA for entry in cfn.node.metadata)


def _warn(node: IConstruct, code: str, message: str) -> None:
    cdk.Annotations.of(node).add_warning_v2(f"ramparts:{code}", message)


def protect_function(
    target: lambda_.Function | lambda_.CfnFunction, protection: Protection
) -> bool:
    """Apply ``protection`` to one function; False (with a warning) when it cannot be."""
    if isinstance(target, lambda_.Function):
        l2: lambda_.Function | None = target
        cfn = target.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)
    else:
        cfn, l2 = target, _l2_of(target)
    if _is_protected(cfn):
        return True
    node: IConstruct = l2 if l2 is not None else cfn
    stack = cdk.Stack.of(cfn)

    runtime = l2.runtime.name if l2 is not None else stack.resolve(cfn.runtime)
    if not isinstance(runtime, str) or runtime not in PYTHON_RUNTIMES:
        _warn(
            node,
            "unsupported-runtime",
            f"Ramparts skipped this function: runtime {runtime!r} is not one of "
            f"{', '.join(PYTHON_RUNTIMES)}, so the sensor layer cannot run in it",
        )
        return False
    if l2 is not None:
        architecture = l2.architecture.name
    else:
        archs = stack.resolve(cfn.architectures)
        architecture = archs[0] if isinstance(archs, list) and archs else "x86_64"
    layer_arn = protection.layer_for(runtime, str(architecture))
    if layer_arn is None:
        _warn(
            node,
            "no-layer",
            f"Ramparts skipped this function: no layer for {runtime}/{architecture}",
        )
        return False

    variables = _variables(stack, cfn)
    wrapper = variables.get("AWS_LAMBDA_EXEC_WRAPPER")
    if wrapper is not None and wrapper != WRAPPER_PATH:
        _warn(
            node,
            "exec-wrapper",
            f"Ramparts skipped this function: it already has AWS_LAMBDA_EXEC_WRAPPER={wrapper!r} "
            "and a function can run one exec wrapper only",
        )
        return False
    layers = stack.resolve(cfn.layers) or []
    if len(layers) >= MAX_LAYERS and layer_arn not in layers:
        _warn(
            node, "too-many-layers", f"Ramparts skipped this function: it has {MAX_LAYERS} layers"
        )
        return False

    env = {k: v for k, v in protection.environment().items() if k not in variables}
    if l2 is not None:
        for key, value in env.items():
            l2.add_environment(key, value)
        if layer_arn not in layers:
            l2.add_layers(
                lambda_.LayerVersion.from_layer_version_arn(l2, "RampartsLayer", layer_arn)
            )
    else:
        for key, value in env.items():
            cfn.add_property_override(f"Environment.Variables.{key}", value)
        if layer_arn not in layers:
            cfn.add_property_override("Layers", [*layers, layer_arn])

    log_group = _own_log_group(cfn, protection)
    if protection.scope_log_permissions:
        scope_log_permissions(cfn, log_group)
    if protection.log_destination_arn is not None:
        subscription = logs.CfnSubscriptionFilter(
            _scope_of(cfn),
            f"{cfn.node.id}RampartsSubscription",
            destination_arn=protection.log_destination_arn,
            filter_pattern=SENSOR_FILTER_PATTERN,
            filter_name=LOG_FILTER_NAME,
            log_group_name=cdk.Token.as_string(log_group),
        )
        created = _scope_of(cfn).node.try_find_child(f"{cfn.node.id}RampartsLogGroup")
        if created is not None:
            subscription.node.add_dependency(created)
    cfn.node.add_metadata(PROTECTED_METADATA, {"layer": layer_arn, "runtime": runtime})
    return True


def _variables(stack: cdk.Stack, cfn: lambda_.CfnFunction) -> dict[str, Any]:
    """The environment variables of an L1 function (an L2's are not visible here)."""
    env = cfn.environment
    if isinstance(env, lambda_.CfnFunction.EnvironmentProperty):
        resolved = stack.resolve(env.variables) if env.variables is not None else {}
        return dict(resolved) if isinstance(resolved, dict) else {}
    resolved = stack.resolve(env)
    if isinstance(resolved, dict):
        found = resolved.get("Variables") or resolved.get("variables") or {}
        return dict(found) if isinstance(found, dict) else {}
    return {}


def _scope_of(cfn: lambda_.CfnFunction) -> Construct:
    scope = cfn.node.scope
    assert isinstance(scope, Construct)
    return scope


def _own_log_group(cfn: lambda_.CfnFunction, protection: Protection) -> Any:
    """The function's log group name as a CloudFormation value; created when it has none."""
    stack = cdk.Stack.of(cfn)
    config = stack.resolve(cfn.logging_config) or {}
    if isinstance(config, dict) and config.get("LogGroup"):
        return config["LogGroup"]
    group = logs.LogGroup(
        _scope_of(cfn),
        f"{cfn.node.id}RampartsLogGroup",
        retention=protection.log_retention,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    cfn.add_property_override("LoggingConfig.LogGroup", group.log_group_name)
    return stack.resolve(group.log_group_name)


def scope_log_permissions(cfn: lambda_.CfnFunction, log_group_name: Any) -> bool:
    """Replace ``AWSLambdaBasicExecutionRole`` on the function's role by its own log group.

    ``log_group_name`` is the CloudFormation value of the log group name (a string or an
    intrinsic). Returns False, with a warning, when the role cannot be changed here.
    """
    stack = cdk.Stack.of(cfn)
    role_ref = stack.resolve(cfn.role)
    role = _role_in_stack(stack, role_ref)
    node: IConstruct = _l2_of(cfn) or cfn
    if role is None:
        _warn(
            node,
            "role-not-scoped",
            "Ramparts could not scope this function's log permissions: its role is not "
            "defined in this stack; allow logs:CreateLogStream/PutLogEvents on its own "
            "log group only",
        )
        return False
    managed = stack.resolve(role.managed_policy_arns) or []
    kept = [arn for arn in managed if BASIC_EXECUTION_POLICY not in json.dumps(arn)]
    if any(VPC_EXECUTION_POLICY in json.dumps(arn) for arn in managed):
        _warn(
            node,
            "vpc-execution-role",
            "AWSLambdaVPCAccessExecutionRole also allows logs:PutLogEvents on every log group; "
            "replace it with the ec2 network-interface actions it grants",
        )
    if len(kept) == len(managed):
        return True  # a role of the user's own making: nothing to take away
    if kept:
        role.add_property_override("ManagedPolicyArns", kept)
    else:
        role.add_property_deletion_override("ManagedPolicyArns")
    arn = cdk.Token.as_string(
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${Group}:*",
                {"Group": log_group_name},
            ]
        }
    )
    statement = iam.PolicyStatement(
        sid="RampartsOwnLogGroupOnly",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[arn],
    )
    policy = iam.CfnPolicy(
        _scope_of(cfn),
        f"{cfn.node.id}RampartsLogPolicy",
        policy_name=f"ramparts-logs-{cdk.Names.unique_id(cfn)}"[:128],
        roles=[cdk.Token.as_string({"Ref": role_ref["Fn::GetAtt"][0]})],
        policy_document=iam.PolicyDocument(statements=[statement]),
    )
    cfn.node.add_dependency(policy)
    return True


def _role_in_stack(stack: cdk.Stack, role_ref: Any) -> iam.CfnRole | None:
    if not (isinstance(role_ref, dict) and isinstance(role_ref.get("Fn::GetAtt"), list)):
        return None
    logical_id = role_ref["Fn::GetAtt"][0]
    for child in stack.node.find_all():
        if isinstance(child, iam.CfnRole) and stack.resolve(child.logical_id) == logical_id:
            return child
    return None
