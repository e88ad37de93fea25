"""Your own CDK app, protected by Ramparts: ``Aspects.of(app).add(Protect(...))``.

Two Python functions get the sensor (one L2 ``Function``, one L1 ``CfnFunction``), a third
with ``ProtectedFunction``; the Node.js function is skipped with a warning. Synthesize with
``cdk synth`` in this directory (``cdk.json``), or see ``tests/cdk/test_example_app.py``.

The layer ARNs are the ``LayerArn-*`` outputs of the ``RampartsLayer-<region>`` stack; the
log destination is the ``LogsDestinationArn`` output of ``RampartsCore``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # a source checkout of Ramparts

from cdk.protect import Protect, ProtectedFunction, Protection

HERE = Path(__file__).resolve().parent
ACCOUNT, REGION, CORE = "222222222222", "eu-west-1", "111111111111"
LAYERS = {
    f"python3.{minor}/{arch}": (
        f"arn:aws:lambda:{REGION}:{CORE}:layer:ramparts-sensor-py3{minor}-{arch.replace('_', '')}:1"
    )
    for minor in (11, 12, 13)
    for arch in ("x86_64", "arm64")
}
DESTINATION = f"arn:aws:logs:{REGION}:{CORE}:destination:ramparts-sensor-logs"


class OrdersStack(cdk.Stack):
    def __init__(self, scope: cdk.App, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        # L2, policy file shipped with the code (RAMPARTS_POLICY is relative to the code).
        lambda_.Function(
            self,
            "Orders",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler="app.handler",
            code=lambda_.Code.from_asset(str(HERE / "functions" / "orders")),
        )
        # L1, with its own role.
        role = iam.CfnRole(
            self,
            "ReportsRole",
            assume_role_policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            managed_policy_arns=[
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            ],
        )
        lambda_.CfnFunction(
            self,
            "Reports",
            runtime="python3.13",
            handler="index.handler",
            role=role.attr_arn,
            code=lambda_.CfnFunction.CodeProperty(
                zip_file="def handler(event, context):\n    return {'ok': True}\n"
            ),
        )
        # Not Python: left alone, with a warning.
        lambda_.Function(
            self,
            "Frontend",
            runtime=lambda_.Runtime.NODEJS_22_X,
            handler="index.handler",
            code=lambda_.Code.from_inline("exports.handler = async () => ({ok: true});"),
        )
        # One function protected on its own, with an inline policy and enforce mode.
        ProtectedFunction(
            self,
            "Payments",
            protection=Protection(
                layer_arn=LAYERS,
                policy={"mode": "enforce", "egress": {"allow": ["api.stripe.com:443"]}},
                log_destination_arn=DESTINATION,
            ),
            runtime=lambda_.Runtime.PYTHON_3_11,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return 'ok'\n"),
        )


def build(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    OrdersStack(app, "Orders", env=cdk.Environment(account=ACCOUNT, region=REGION))
    cdk.Aspects.of(app).add(
        Protect(
            layer_arn=LAYERS, policy="policy.yaml", mode="monitor", log_destination_arn=DESTINATION
        )
    )
    return app


if __name__ == "__main__":
    build().synth()
