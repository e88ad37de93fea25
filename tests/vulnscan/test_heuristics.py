"""Role power and internet reachability: the heuristics, statement by statement."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from functions.vulnscan import reachability, role_power


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: object, resource: object = "*", **kw: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **kw}


@pytest.mark.parametrize(
    ("statements", "power", "why"),
    [
        ([allow("*")], "admin", "p allows * on *"),
        ([allow("*:*")], "admin", "p allows * on *"),
        ([allow("iam:Put*")], "admin", "p allows iam:Put* on * (can grant itself more)"),
        ([allow("iam:PassRole")], "write", "p allows iam:PassRole"),
        ([allow("*", "arn:aws:s3:::b/*")], "write", "p allows * on arn:aws:s3:::b/*"),
        ([allow("s3:*", "arn:aws:s3:::b/*")], "write", "p allows s3:*"),
        (
            [allow(["s3:GetObject", "s3:List*", "kms:Decrypt", "sqs:ReceiveMessage"])],
            "read",
            "p allows s3:GetObject",
        ),
        ([allow("s3:G*t")], "write", "p allows s3:G*t"),
        (
            [allow(["logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments"])],
            "none",
            "only telemetry (logs, traces, metrics)",
        ),
        (
            [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
            "none",
            "only telemetry (logs, traces, metrics)",
        ),
        (
            [{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}],
            "write",
            "p allows everything but iam:*, organizations:*",
        ),
        (
            [{"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "*"}],
            "admin",
            "p allows everything but s3:deletebucket",
        ),
    ],
)
def test_role_power(statements: list[dict], power: str, why: str) -> None:
    got, reasons = role_power([("p", doc(*statements))])
    assert got == power
    assert reasons[0].lower() == why.lower()


def test_role_power_reads_url_encoded_documents_and_no_policies() -> None:
    encoded = urllib.parse.quote(json.dumps(doc(allow("dynamodb:PutItem", "arn:aws:dynamodb:x"))))
    assert role_power([("p", encoded)]) == ("write", ["p allows dynamodb:PutItem"])
    assert role_power([]) == ("none", ["no policies"])


URL_STATEMENT = {
    "Sid": "FunctionURLAllowPublicAccess",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunctionUrl",
    "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:f",
    "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
}


@pytest.mark.parametrize(
    ("auth", "policy", "expected"),
    [
        (None, None, (False, [])),
        (
            "AWS_IAM",
            doc(
                {
                    **URL_STATEMENT,
                    "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
                }
            ),
            (False, []),
        ),
        ("NONE", doc(URL_STATEMENT), (True, ["function URL with AuthType NONE"])),
        (
            None,
            doc(
                {
                    "Sid": "s",
                    "Effect": "Allow",
                    "Principal": {"Service": "elasticloadbalancing.amazonaws.com"},
                    "Action": "lambda:InvokeFunction",
                }
            ),
            (True, ["resource policy lets an Application Load Balancer invoke it (statement s)"]),
        ),
        (
            None,
            doc({"Sid": "any", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "lambda:*"}),
            (True, ["resource policy lets any principal invoke it (statement any)"]),
        ),
        (
            None,
            doc(
                {
                    "Sid": "sns",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "lambda:InvokeFunction",
                }
            ),
            (False, []),
        ),
        (
            None,
            doc(
                {"Sid": "d", "Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction"}
            ),
            (False, []),
        ),
        (
            None,
            json.dumps(
                doc(
                    {
                        "Sid": "gw",
                        "Effect": "Allow",
                        "Principal": {"Service": "apigateway.amazonaws.com"},
                        "Action": "lambda:InvokeFunction",
                    }
                )
            ),
            (True, ["resource policy lets API Gateway invoke it (statement gw)"]),
        ),
    ],
)
def test_reachability(auth: str | None, policy: object, expected: tuple[bool, list[str]]) -> None:
    assert reachability(auth, policy) == expected
