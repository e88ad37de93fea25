"""The CDK app synthesizes offline."""

from __future__ import annotations

import json

from cdk.app import build_app


def test_app_synthesizes_offline(tmp_path):
    assembly = build_app(str(tmp_path)).synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["version"]
    assert assembly.directory == str(tmp_path)
