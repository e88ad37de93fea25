"""The Ramparts CDK app: stacks and the constructs users add to their own apps."""

from __future__ import annotations

import os
import subprocess


def quiet_node_banner() -> None:
    """jsii prints a banner about the installed Node's support status (end of life,
    deprecated, untested) when it starts; its switches take the major versions to keep
    quiet about. For in-process synths (the demo, the tests) whose output is read by people:
    ``make synth`` keeps the banner. Call before the first ``import aws_cdk``."""
    try:
        out = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return
    major = out.strip().lstrip("v").split(".", 1)[0]
    if major.isdigit():
        for kind in ("END_OF_LIFE", "DEPRECATED", "UNTESTED"):
            os.environ.setdefault(f"JSII_SILENCE_WARNING_{kind}_NODE_VERSION", major)
