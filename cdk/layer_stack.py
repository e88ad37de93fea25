"""The Layer stack: the sensor as a Lambda layer, one version per Python runtime and architecture.

The zip is built by ``ramparts_cli.layer.build_layer`` through local bundling (no Docker):
``python/ramparts/**`` and ``ramparts-wrapper`` (mode 0755), Lambda extracts them to ``/opt``.
Bytecode is compiled by the interpreter that runs the synth, so only the layer for that
runtime ships ``.pyc`` files; the others ship sources (see ``docs/deploy.md``).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk.bundling import REPO_ROOT, LayerBundler, bundling_options, interpreter_runtime
from cdk.config import RampartsConfig, runtime_arch_pairs

__all__ = ["LayerStack", "layer_key"]

_RUNTIMES = {
    "python3.11": lambda_.Runtime.PYTHON_3_11,
    "python3.12": lambda_.Runtime.PYTHON_3_12,
    "python3.13": lambda_.Runtime.PYTHON_3_13,
}
_ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


def layer_key(runtime: str, architecture: str) -> str:
    """The key of a layer ARN in ``Protect(layer_arn={...})``: ``python3.12/arm64``."""
    return f"{runtime}/{architecture}"


def _suffix(runtime: str, architecture: str) -> str:
    return f"{runtime.replace('python', 'py').replace('.', '')}-{architecture.replace('_', '')}"


class LayerStack(cdk.Stack):
    """Publishes ``<layer_name>-py312-arm64`` etc. and shares each version."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: RampartsConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.layers: dict[str, lambda_.LayerVersion] = {}
        source = str(REPO_ROOT / "layer")
        for runtime, architecture in runtime_arch_pairs(config):
            suffix = _suffix(runtime, architecture)
            bytecode = runtime == interpreter_runtime()
            layer = lambda_.LayerVersion(
                self,
                f"Sensor-{suffix}",
                layer_version_name=f"{config.layer_name}-{suffix}",
                description=(
                    f"Ramparts sensor for {runtime} on {architecture}: "
                    "AWS_LAMBDA_EXEC_WRAPPER=/opt/ramparts-wrapper"
                    + ("" if bytecode else " (sources only, compiled at cold start)")
                ),
                compatible_runtimes=[_RUNTIMES[runtime]],
                compatible_architectures=[_ARCHITECTURES[architecture]],
                license="Apache-2.0",
                # Older versions stay usable by the functions that pin them.
                removal_policy=cdk.RemovalPolicy.RETAIN,
                code=lambda_.Code.from_asset(
                    source,
                    # The zip's bytes decide the version: they follow the sources and whether
                    # bytecode is included, and builds are reproducible.
                    asset_hash_type=cdk.AssetHashType.OUTPUT,
                    # The environment is not used by the local bundler; it keys CDK's bundle
                    # cache, which would otherwise reuse one runtime's zip for another.
                    bundling=bundling_options(
                        LayerBundler(runtime), environment={"RAMPARTS_LAYER_RUNTIME": runtime}
                    ),
                ),
            )
            self._share(layer)
            key = layer_key(runtime, architecture)
            self.layers[key] = layer
            cdk.CfnOutput(
                self,
                f"LayerArn-{suffix}",
                value=layer.layer_version_arn,
                description=f"Ramparts sensor layer for {key}",
                export_name=f"ramparts-layer-{suffix}",
            )

    def _share(self, layer: lambda_.LayerVersion) -> None:
        if self.config.organization_id is not None:
            layer.add_permission(
                "Organization",
                account_id="*",
                organization_id=self.config.organization_id,
            )
            return
        for account in self.config.layer_principals:
            if account != self.account:
                layer.add_permission(f"Account{account}", account_id=account)

    def layer_arns(self) -> dict[str, str]:
        """``layer_key`` -> layer version ARN (tokens), for ``Protect(layer_arn=...)``."""
        return {key: layer.layer_version_arn for key, layer in self.layers.items()}
