"""A deliberately vulnerable Lambda function for the Ramparts demo. Never deploy it.

Three features, three classic serverless bugs:

* ``wordcount``: counts the bytes of an uploaded file with ``wc``, building a shell command
  from the file name (command injection);
* ``preview``: fetches any URL the caller names to show a preview (server-side request
  forgery, SSRF);
* ``describe``: a "read-only" AWS proxy for a dashboard that takes the service and the
  operation from the request (any AWS call the role allows).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from typing import Any

UPLOADS = "/tmp/uploads"


def _wordcount(name: str) -> dict[str, Any]:
    os.makedirs(UPLOADS, exist_ok=True)
    sample = os.path.join(UPLOADS, "notes.txt")
    if not os.path.exists(sample):
        with open(sample, "w") as fh:
            fh.write("ramparts watches from inside\n")
    # BUG: the name goes into a shell command unquoted-by-design (it is inside '...')
    proc = subprocess.run(
        f"wc -c '{UPLOADS}/{name}'",
        shell=True,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return {"stdout": proc.stdout.strip(), "exit": proc.returncode}


def _preview(url: str) -> dict[str, Any]:
    # BUG: no allowlist of hosts or schemes
    with urllib.request.urlopen(url, timeout=3) as resp:
        return {"status": resp.status, "body": resp.read(120).decode("utf-8", "replace")}


def _describe(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    import boto3

    # BUG: the caller chooses the service and the operation
    client = boto3.client(service)
    result = getattr(client, operation)(**params)
    result.pop("ResponseMetadata", None)
    return {"result": json.loads(json.dumps(result, default=str))}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action")
    try:
        if action == "wordcount":
            return {"ok": True, **_wordcount(str(event["name"]))}
        if action == "preview":
            return {"ok": True, **_preview(str(event["url"]))}
        if action == "describe":
            return {
                "ok": True,
                **_describe(event["service"], event["operation"], event.get("params", {})),
            }
        return {"ok": False, "error": f"unknown action {action!r}"}
    except Exception as exc:  # the function reports failures instead of crashing
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
