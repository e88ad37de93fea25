"""The demo's pieces that can be checked without running it."""

from __future__ import annotations

from typing import Any

from ramparts_cli._demo_account import aws_url, flatten_event
from ramparts_cli._demo_deploy import Deployment, Synth, Unresolved, _transport_only
from ramparts_cli._demo_report import html_report


class _Account:
    account, region = "123456789012", "eu-west-1"


def _deployment() -> Deployment:
    dep = Deployment(_Account(), Synth({"Resources": {}}, None, {}))  # type: ignore[arg-type]
    dep.refs["Table"] = "ramparts-findings"
    dep.attrs[("Table", "Arn")] = "arn:aws:dynamodb:eu-west-1:123456789012:table/x"
    return dep


def test_intrinsics_resolve_to_the_created_resources() -> None:
    dep = _deployment()
    assert dep.resolve({"Ref": "AWS::Region"}) == "eu-west-1"
    assert dep.resolve({"Fn::Join": ["/", [{"Ref": "Table"}, "a"]]}) == "ramparts-findings/a"
    assert dep.resolve({"Fn::Sub": "${AWS::AccountId}:${Table.Arn}"}).startswith(
        "123456789012:arn:aws:dynamodb"
    )
    assert dep.resolve({"Fn::Select": [1, {"Fn::Split": [":", "a:b:c"]}]}) == "b"
    try:
        dep.resolve({"Ref": "Missing"})
    except Unresolved:
        pass
    else:
        raise AssertionError("an unknown reference must not resolve")


def test_only_transport_denials_are_recognised() -> None:
    deny_tls: dict[str, Any] = {
        "Effect": "Deny",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert _transport_only(deny_tls)
    assert not _transport_only({**deny_tls, "Effect": "Allow"})
    assert not _transport_only({"Effect": "Deny", "Condition": {"StringEquals": {"a": "b"}}})


def test_event_arrays_of_objects_are_matched_per_element() -> None:
    flat = flatten_event({"detail": {"resources": [{"type": "A"}, {"type": "B"}], "n": 4}})
    assert flat["detail.resources.type"] == ["A", "B"]
    assert flat["detail.n"] == 4


def test_signing_names_map_to_aws_hosts() -> None:
    assert aws_url("iam", "us-east-1", "/") == "https://iam.amazonaws.com/"
    assert aws_url("states", "eu-west-1", "/x") == "https://states.eu-west-1.amazonaws.com/x"


def test_html_escapes_what_it_shows() -> None:
    report: dict[str, Any] = {
        "account": {"id": "1", "region": "r"},
        "isolated_network": True,
        "passed": False,
        "skipped": [],
        "checks": {"<b>check</b>": False},
        "outcomes": [],
        "findings": [],
        "playbook_runs": [],
        "functions": {"after": {}},
        "timeline": [{"t": 0.0, "phase": "x", "text": "<script>alert(1)</script>"}],
        "platform": {},
    }
    page = html_report(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "FAILED" in page
