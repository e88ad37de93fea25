"""One in-process synth of the whole app per test session (bundling only the layer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdk.app import build_app
from cdk.config import RampartsConfig

CORE, MEMBER, REGION = "111111111111", "222222222222", "eu-west-1"
ORG = "o-abcdef1234"

CONFIG = RampartsConfig(
    core_account=CORE,
    member_accounts=(MEMBER,),
    regions=(REGION,),
    organization_id=ORG,
    notification_email="security@example.com",
    security_hub_export=True,
    tuning_uri="s3://ramparts-config-bucket/tuning.yaml",
).validate()


class Synth:
    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        # Bundle the layer for real (local bundling); skip the ingest's pip install.
        app = build_app(
            str(outdir), context={"aws:cdk:bundling-stacks": ["RampartsLayer*"]}, config=CONFIG
        )
        self.assembly = app.synth()

    def template(self, stack: str) -> dict:
        return json.loads((self.outdir / f"{stack}.template.json").read_text())

    @property
    def templates(self) -> dict[str, dict]:
        return {
            p.name.removesuffix(".template.json"): json.loads(p.read_text())
            for p in sorted(self.outdir.glob("*.template.json"))
        }


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("cdk.out"))
