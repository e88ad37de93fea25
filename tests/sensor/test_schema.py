"""Every line the sensor writes validates against the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from tests.sensor.conftest import run_case

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/schema/sensor-event.v1.schema.json").read_text()
)


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_kind_of_line_validates():
    r = run_case(
        """
import os, socket, subprocess, ctypes, sys
import ramparts
@ramparts.protect
def handler(event, context):
    attempt("imds", lambda: socket.socket().connect(("169.254.169.254", 80)))
    attempt("dns", lambda: socket.getaddrinfo("instance-data", 80))
    attempt("env", lambda: open("/proc/self/environ").read())
    attempt("write", lambda: open("/srv/x", "w").close())
    attempt("shell", lambda: subprocess.run(["sh", "-c", "true"]))
    attempt("libc", lambda: ctypes.CDLL("libc.so.6").system)
    os.environ["LD_PRELOAD"] = "x"
    sys.addaudithook(lambda *a: None)
    raise RuntimeError("handler failure")
attempt("h", lambda: handler({}, None))
""",
        env={"RAMPARTS_POLICY": '{"egres": {}}'},
        tmpfs=("/srv",),
    )
    kinds = {e["kind"] for e in r.events}
    assert kinds >= {
        "sensor.start",
        "sensor.policy_error",
        "network.connect",
        "network.dns",
        "file.read",
        "file.write",
        "process.spawn",
        "process.env",
        "native.load",
        "sensor.tamper",
        "invocation.summary",
    }, kinds
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for event in r.events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, (event, [e.message for e in errors])


def test_learn_mode_and_aws_lines_validate():
    r = run_case(
        """
import os
os.environ.update(AWS_ACCESS_KEY_ID="A", AWS_SECRET_ACCESS_KEY="B")
import boto3
from botocore.config import Config
c = boto3.client("sts", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                 config=Config(retries={"max_attempts": 1}, connect_timeout=1))
attempt("call", lambda: c.get_caller_identity())
SENSOR.flush()
""",
        env={"RAMPARTS_MODE": "learn"},
    )
    assert r.kinds("aws.call")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for event in r.events:
        assert not list(validator.iter_errors(event)), event
