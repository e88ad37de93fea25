"""The state machines the Core stack deploys are the ones the playbook tests run.

tests/playbooks runs the Playbooks construct synthesized in a small test stack; this test
synthesizes the real Core stack and checks that each playbook's definition is the same,
up to the names CloudFormation gives the resources (tables, topic, responders) and the
account and region ids."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.cdk.conftest import Synth
from tests.playbooks.conftest import build_stack
from tests.playbooks.test_construct import symbolic

_REF = re.compile(r"<[A-Za-z0-9]+(?:\.[A-Za-z]+)?>")
_ACCOUNT = re.compile(r"\b\d{12}\b")
_REGION = re.compile(r"\b[a-z]{2}-[a-z]+-\d\b")


def definitions(template: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for logical, r in template["Resources"].items():
        if r["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        text = symbolic(r["Properties"]["DefinitionString"])
        text = _REGION.sub("<region>", _ACCOUNT.sub("<account>", _REF.sub("<ref>", text)))
        name = re.sub(r"[0-9A-F]{8}$", "", logical.removeprefix("PlaybooksPlaybook"))
        out[name] = json.loads(text)
    return out


def test_core_stack_state_machines_are_the_tested_ones(synth: Synth, tmp_path) -> None:
    app, _ = build_stack(str(tmp_path))
    app.synth()
    tested = definitions(json.loads((tmp_path / "PlaybooksTest.template.json").read_text()))
    deployed = definitions(synth.template("RampartsCore"))
    assert (
        sorted(deployed)
        == sorted(tested)
        == [
            "containlambda",
            "isolateec2",
            "releaseec2",
            "releaselambda",
            "stopecstask",
        ]
    )
    for name, definition in deployed.items():
        assert definition == tested[name], name
