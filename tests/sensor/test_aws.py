"""AWS API calls through botocore: service, operation and region, judged before the request."""

from __future__ import annotations

from tests.sensor.conftest import run_case

STUB = """
import http.server, threading, os
os.environ.update(AWS_ACCESS_KEY_ID="ASIAFAKE", AWS_SECRET_ACCESS_KEY="fake", AWS_SESSION_TOKEN="fake")
REQUESTS = []
class Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        REQUESTS.append(self.headers.get("x-amz-target"))
        out = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(out)))
        self.end_headers(); self.wfile.write(out)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
threading.Thread(target=srv.serve_forever, daemon=True).start()
ENDPOINT = f"http://127.0.0.1:{srv.server_address[1]}"
"""

CALLS = """
import boto3
from botocore.config import Config
ddb = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="eu-west-1",
                   config=Config(retries={"max_attempts": 1}))
attempt("get", lambda: ddb.get_item(TableName="t", Key={"k": {"S": "1"}}) and "ok")
attempt("delete", lambda: ddb.delete_table(TableName="t") and "ok")
attempt("requests", lambda: list(REQUESTS))
"""


def test_calls_are_reported_with_service_operation_and_region_in_learn_mode():
    r = run_case(STUB + CALLS, env={"RAMPARTS_MODE": "learn"})
    calls = [e for e in r.kinds("aws.call")]
    assert {(c["service"], c["operation"], c["region"]) for c in calls} == {
        ("dynamodb", "GetItem", "eu-west-1"),
        ("dynamodb", "DeleteTable", "eu-west-1"),
    }
    assert all(c["action"].startswith("dynamodb:") for c in calls)
    assert calls[0]["location"]["file"].endswith("case.py")


def test_policy_allows_listed_actions_and_blocks_others_before_the_request():
    policy = '{"aws": {"allow": ["dynamodb:Get*", "s3:*"]}}'
    r = run_case(STUB + CALLS, env={"RAMPARTS_MODE": "enforce", "RAMPARTS_POLICY": policy})
    assert r.results["get"] == {"ok": True, "value": "ok"}
    assert r.results["delete"]["ramparts"] is True
    assert "policy.aws" in r.results["delete"]["msg"]
    # the blocked call never reached the endpoint
    assert r.results["requests"]["value"] == ["DynamoDB_20120810.GetItem"]
    [block] = r.alerts("policy.aws")
    assert block["operation"] == "DeleteTable" and block["verdict"] == "block"


def test_botocore_imported_before_the_sensor_is_still_watched():
    r = run_case(
        "import boto3, botocore.client\nimport ramparts\nSENSOR = ramparts.install()\n"
        + STUB
        + CALLS,
        env={
            "RAMPARTS_MODE": "enforce",
            "RAMPARTS_POLICY": '{"aws": {"allow": ["dynamodb:GetItem"]}}',
        },
        install=False,
    )
    assert r.results["delete"]["ramparts"] is True


def test_connections_to_aws_endpoints_are_part_of_the_call_not_egress_violations():
    # GIVEN an egress allowlist that names no AWS host, and an endpoint that resolves
    # (inside the namespace) to an address that is not loopback
    policy = '{"egress": {"allow": ["api.partner.test:443"]}, "aws": {"allow": ["dynamodb:*"]}}'
    r = run_case(
        """
import os
os.environ.update(AWS_ACCESS_KEY_ID="ASIAFAKE", AWS_SECRET_ACCESS_KEY="fake")
import boto3
from botocore.config import Config
ddb = boto3.client("dynamodb", region_name="us-east-1",
                   config=Config(retries={"max_attempts": 1}, connect_timeout=1))
attempt("get", lambda: ddb.get_item(TableName="t", Key={"k": {"S": "1"}}))
import socket
attempt("raw_to_aws_host", lambda: socket.create_connection(("dynamodb.us-east-1.amazonaws.com", 443), timeout=1))
""",
        env={"RAMPARTS_MODE": "enforce", "RAMPARTS_POLICY": policy},
        hosts={"dynamodb.us-east-1.amazonaws.com": "198.51.100.7"},
    )
    # the SDK's own connection was allowed (it failed only for lack of a route)
    assert r.results["get"]["ramparts"] is False, r.results
    assert r.results["get"]["type"] == "EndpointConnectionError"
    # the same host contacted outside an AWS call is egress like any other: its look-up
    # is already outside the (egress-derived) DNS allowlist
    assert r.results["raw_to_aws_host"]["ramparts"] is True
    [block] = r.alerts()
    assert (block["rule"], block["host"]) == ("policy.dns", "dynamodb.us-east-1.amazonaws.com")


def test_repeated_allowed_calls_are_counted_and_a_forbidden_one_still_blocked():
    policy = '{"aws": {"allow": ["dynamodb:GetItem"]}}'
    r = run_case(
        STUB
        + """
import boto3
from botocore.config import Config
ddb = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="eu-west-1",
                   config=Config(retries={"max_attempts": 1}))
for _ in range(3):
    attempt("get", lambda: ddb.get_item(TableName="t", Key={"k": {"S": "1"}}) and "ok")
attempt("delete", lambda: ddb.delete_table(TableName="t") and "ok")
SENSOR.flush()
""",
        env={"RAMPARTS_MODE": "enforce", "RAMPARTS_POLICY": policy},
    )
    assert r.results["get"] == {"ok": True, "value": "ok"}
    assert r.results["delete"]["ramparts"] is True
    assert r.total("aws.call", "allow") == 3 and r.total("aws.call", "block") == 1
