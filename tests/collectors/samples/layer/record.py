"""Record the layer samples of this directory by really running the sensor (run it to regenerate).

    .venv/bin/python tests/collectors/samples/layer/record.py

Everything runs inside a new network namespace that has only loopback (re-executing this
script there), with a stub partner/AWS endpoint on loopback, under the real runtime client
(``ramparts_cli.invoke.run_invocations``) with the layer attached by its exec wrapper:

* ``media-worker`` (``function/app.py``), learn mode: every kind of sensor line, with
  ``START``/``END``/``REPORT`` lines, ``print`` output and the runtime's logging format;
* ``orders-dashboard`` (``examples/functions/vulnerable``) attacked as ``ramparts demo``
  attacks it, in enforce mode and in learn mode, with its policy;
* ``orders-dashboard`` with a broken policy (``sensor.policy_error``).

Each log line becomes one CloudWatch Logs event (the timestamp when it was written, the
message with its newline), wrapped as the real deliveries are:

* ``log-media-worker.log``     the function's log stream as written, one event per line;
* ``sensor-lines.jsonl``       every sensor line of every run, as printed;
* ``decoded-payload.json``     media-worker's DATA_MESSAGE payload, decoded (indented);
* ``subscription-event.json``  orders-dashboard (enforce) as the Lambda subscription event,
                               ``{"awslogs": {"data": base64(gzip(payload))}}``;
* ``kinesis-event.json``       orders-dashboard (learn) as a Kinesis event: three records of
                               DATA_MESSAGE payloads and one CONTROL_MESSAGE;
* ``control-message.json``     a CONTROL_MESSAGE payload, decoded;
* ``custom-log-group.json``    the broken-policy run, decoded, from a custom log group
                               (``/ramparts/shared``) whose stream names the function.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def _run(
    name: str, code: Path, events: list[dict[str, Any]], env: dict[str, str]
) -> list[tuple[int, str]]:
    from ramparts_cli.invoke import run_invocations

    lines: list[tuple[int, str]] = []

    def on_line(line: str) -> None:
        lines.append((int(time.time() * 1000), line))

    full_env = {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **env,
    }
    result = run_invocations(
        "app.handler",
        code,
        events,
        env=full_env,
        timeout=30,
        on_log=on_line,
        on_platform=on_line,
    )
    for r in result.responses:
        print(f"  {name}: {json.dumps(r.payload)[:160]}", file=sys.stderr)
    return lines


def _stream(t: int, function: str | None = None) -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime(t / 1000))
    return f"{day}/{function or ''}[$LATEST]{secrets.token_hex(16)}"


def _payload(
    lines: list[tuple[int, str]], group: str, stream: str, first_id: int
) -> dict[str, Any]:
    events = [
        {"id": f"{first_id + i:056d}", "timestamp": t, "message": line + "\n"}
        for i, (t, line) in enumerate(lines)
    ]
    return {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["ramparts-collector"],
        "logEvents": events,
    }


def _pack(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw)).decode()


def _is_sensor(line: str) -> bool:
    return line.startswith('{"ramparts"')


def record() -> None:
    from ramparts_cli.demo import DROPPED, FUNCTION_DIR, POLICY, _serve, scenarios

    server, url = _serve()
    try:
        stub = {"AWS_ENDPOINT_URL": url}
        media = _run(
            "media-worker",
            HERE / "function",
            [{"action": a} for a in ("network", "files", "process", "native", "aws", "tamper")],
            {**stub, "RAMPARTS_MODE": "learn"},
        )
        attacks = [s.event for s in scenarios(url)]
        enforce = _run(
            "orders-dashboard",
            FUNCTION_DIR,
            attacks,
            {**stub, "RAMPARTS_MODE": "enforce", "RAMPARTS_POLICY": str(POLICY)},
        )
        learn = _run(
            "orders-dashboard",
            FUNCTION_DIR,
            attacks,
            {**stub, "RAMPARTS_MODE": "learn", "RAMPARTS_POLICY": str(POLICY)},
        )
        with tempfile.TemporaryDirectory() as tmp:
            broken = Path(tmp) / "ramparts.yaml"
            broken.write_text("version: 1\nmode: enforce\negress:\n  allow: 42\nfiles: [oops\n")
            policy_error = _run(
                "orders-dashboard",
                FUNCTION_DIR,
                attacks[:1],
                {**stub, "RAMPARTS_POLICY": str(broken)},
            )
    finally:
        server.shutdown()
        Path(DROPPED).unlink(missing_ok=True)  # what the "dropped binary" attack left in learn mode

    (HERE / "log-media-worker.log").write_text("".join(line + "\n" for _, line in media))
    sensor = [line for run in (media, enforce, learn, policy_error) for _, line in run]
    (HERE / "sensor-lines.jsonl").write_text(
        "".join(line + "\n" for line in sensor if _is_sensor(line))
    )

    decoded = _payload(media, "/aws/lambda/media-worker", _stream(media[0][0]), 3_781_000)
    (HERE / "decoded-payload.json").write_text(json.dumps(decoded, indent=2) + "\n")

    sub = _payload(enforce, "/aws/lambda/orders-dashboard", _stream(enforce[0][0]), 3_782_000)
    (HERE / "subscription-event.json").write_text(
        json.dumps({"awslogs": {"data": _pack(sub)}}, indent=2) + "\n"
    )

    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": learn[0][0],
                "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.",
            }
        ],
    }
    (HERE / "control-message.json").write_text(json.dumps(control, indent=2) + "\n")

    stream = _stream(learn[0][0])
    third = len(learn) // 3 + 1
    chunks = [learn[i : i + third] for i in range(0, len(learn), third)]
    payloads = [
        _payload(chunk, "/aws/lambda/orders-dashboard", stream, 3_783_000 + 1000 * n)
        for n, chunk in enumerate(chunks)
    ]
    payloads.insert(1, control)
    records = []
    shard = "shardId-000000000000"
    for n, payload in enumerate(payloads):
        seq = f"4965{n:052d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": secrets.token_hex(16),
                    "sequenceNumber": seq,
                    "data": _pack(payload),
                    "approximateArrivalTimestamp": round(
                        payload["logEvents"][0]["timestamp"] / 1000 + 0.4, 3
                    ),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/ramparts-ingest",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/ramparts-logs",
            }
        )
    (HERE / "kinesis-event.json").write_text(json.dumps({"Records": records}, indent=2) + "\n")

    custom = _payload(
        policy_error, "/ramparts/shared", _stream(policy_error[0][0], "orders-dashboard"), 3_784_000
    )
    (HERE / "custom-log-group.json").write_text(json.dumps(custom, indent=2) + "\n")
    print(f"recorded {sum(_is_sensor(x) for x in sensor)} sensor lines", file=sys.stderr)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    if "--inside-netns" in sys.argv:
        record()
        return 0
    from ramparts_cli import _netns

    argv = [sys.executable, str(Path(__file__).resolve()), "--inside-netns"]
    return subprocess.call(_netns.isolated_command(argv), cwd=str(ROOT), env=dict(os.environ))


if __name__ == "__main__":
    raise SystemExit(main())
