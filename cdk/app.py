"""The CDK app that ``cdk.json`` points at: Layer, Core and Member stacks.

- ``RampartsLayer-<region>``: the sensor layer in every configured region (core account);
- ``RampartsCore``: the security account's platform, in the primary region;
- ``RampartsMember-<account>-<region>``: every protected account (the core account too).

Configuration: ``ramparts.config.json`` and ``-c ramparts:<key>=...`` (see ``cdk/config.py``
and ``docs/deploy.md``). Synthesis works offline: every stack has an explicit account and
region, nothing is looked up. cdk-nag's AwsSolutions and Serverless packs run on every synth.
"""

from __future__ import annotations

import aws_cdk as cdk

from cdk.config import RampartsConfig, load_config
from cdk.core_stack import CoreStack
from cdk.layer_stack import LayerStack
from cdk.member_stack import CORE_STACK_NAME, MemberStack
from cdk.nag import add_nag

__all__ = ["FEATURE_FLAGS", "build_app", "main"]

# Feature flags the stacks rely on (also in cdk.json, for the CLI).
FEATURE_FLAGS: dict[str, object] = {
    # Server access logs delivered through a bucket policy, not the LogDeliveryWrite ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build_app(
    outdir: str | None = None,
    *,
    context: dict[str, object] | None = None,
    config: RampartsConfig | None = None,
    nag: bool = True,
) -> cdk.App:
    app = cdk.App(outdir=outdir, context={**FEATURE_FLAGS, **(context or {})})
    cfg = config or load_config(app.node.try_get_context)
    add_stacks(app, cfg)
    if nag:
        add_nag(app)
    return app


def add_stacks(app: cdk.App, cfg: RampartsConfig) -> None:
    def env(account: str, region: str) -> cdk.Environment:
        return cdk.Environment(account=account, region=region)

    for region in cfg.regions:
        LayerStack(
            app,
            f"RampartsLayer-{region}",
            config=cfg,
            env=env(cfg.core_account, region),
            description="Ramparts: the sensor layer per Python runtime and architecture",
        )
    CoreStack(
        app,
        CORE_STACK_NAME,
        config=cfg,
        env=env(cfg.core_account, cfg.primary_region),
        description="Ramparts: ingest, findings, response playbooks (security account)",
    )
    for account in cfg.protected_accounts:
        # Log forwarding needs the core destination in the same region: primary region only.
        MemberStack(
            app,
            f"RampartsMember-{account}-{cfg.primary_region}",
            config=cfg,
            responder=True,
            env=env(account, cfg.primary_region),
            description="Ramparts: log and finding forwarding, responder role (protected account)",
        )


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
