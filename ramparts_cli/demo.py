"""``ramparts demo``: the whole platform on this machine, from attack to containment.

1. A local AWS account (moto, on 127.0.0.1) gets the platform's resources from the CDK app's
   synthesized Core stack (playbooks on; contain-lambda in approval mode).
2. Two sample functions are deployed in it with the sensor layer attached: a healthy one
   and a vulnerable one (``examples/functions/``), and run by ``ramparts invoke``'s machinery
   (the real Lambda runtime interface client).
3. Benign traffic and attacks (a reverse shell by command injection, SSRF to the credential
   endpoint, a dropped binary run from /tmp, an unexpected IAM call): in monitor mode, then
   in enforce mode.
4. Their log lines go to the ingest function as CloudWatch Logs subscription events;
   findings are stored and published on the bus; the contain-lambda playbook (the
   synthesized state machine, in moto's Step Functions) waits for approval, is approved with
   ``ramparts approve``, and contains the vulnerable function; the healthy one is untouched.
5. A timeline in the terminal, an HTML report, or ``--json``.

Attack traffic never leaves the machine: where network namespaces are available the demo
re-runs itself inside one that has only loopback; elsewhere the two attacks that need the
network are skipped, and the demo says so. ``--keep`` leaves the local account running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_REPORT = Path("build") / "ramparts-demo.html"


def _cli_env_lines(endpoint: str, region: str) -> list[str]:
    return [
        f"  export AWS_ENDPOINT_URL={endpoint} AWS_REGION={region} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
        "  aws lambda get-function-concurrency --function-name orders-dashboard",
        "  aws lambda list-tags --resource "
        "arn:aws:lambda:us-east-1:123456789012:function:orders-dashboard",
        "  aws dynamodb scan --table-name ramparts-findings --max-items 3",
        "  aws stepfunctions list-state-machines",
        "  (boto3 reads the same variables)",
    ]


def _keep_here(account: Any, report: dict[str, Any], socket_path: str | None) -> None:
    """--keep: serve the account until Ctrl-C (or over a unix socket for the outer process)."""
    _finish(report, _OPTIONS)
    if socket_path is not None:
        account.serve_unix(socket_path)
        print("ramparts demo: local account ready", file=sys.stderr, flush=True)
    else:
        print(
            "\nThe local account stays up (Ctrl-C to stop it). Look around:\n"
            + "\n".join(_cli_env_lines(account.endpoint, account.region)),
            file=sys.stderr,
            flush=True,
        )
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


_OPTIONS: dict[str, Any] = {}


def _finish(report: dict[str, Any], options: dict[str, Any]) -> None:
    """Print the report (timeline or JSON) and write the HTML page; once."""
    if options.get("done"):
        return
    options["done"] = True
    from ramparts_cli._demo_report import html_report, render

    path = Path(options["report"])
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html_report(report), encoding="utf-8")
        report["html_report"] = str(path.resolve())
    if options["json"]:
        out = options["stdout"]
        out.write(json.dumps(report, indent=2, default=str) + "\n")
        out.flush()
    else:
        print(render(report), flush=True)


def _relay(tcp: socket.socket, unix_path: str) -> None:
    """127.0.0.1 -> the unix socket of the account inside the namespace, byte for byte."""

    def pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def serve(conn: socket.socket) -> None:
        with conn, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            try:
                upstream.connect(unix_path)
            except OSError:
                return
            t = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
            t.start()
            pump(conn, upstream)
            t.join()

    while True:
        try:
            conn, _ = tcp.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _outer_keep(argv: list[str]) -> int:
    """Run the demo in the namespace, then expose its account on 127.0.0.1 here."""
    from ramparts_cli import _netns

    with tempfile.TemporaryDirectory(prefix="ramparts-demo-") as tmp:
        path = os.path.join(tmp, "account.sock")
        proc = subprocess.Popen(_netns.isolated_command([*argv, "--keep-socket", path]))
        try:
            while not os.path.exists(path):
                if proc.poll() is not None:
                    return proc.returncode or 1
                time.sleep(0.1)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", 0))
                tcp.listen(16)
                threading.Thread(target=_relay, args=(tcp, path), daemon=True).start()
                endpoint = f"http://127.0.0.1:{tcp.getsockname()[1]}"
                print(
                    "\nThe local account stays up (Ctrl-C to stop it). Look around:\n"
                    + "\n".join(_cli_env_lines(endpoint, "us-east-1")),
                    file=sys.stderr,
                    flush=True,
                )
                proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ramparts_cli import _netns

    if not args.inside_netns:
        if _netns.netns_available():
            argv = [
                sys.executable,
                "-m",
                "ramparts_cli",
                "demo",
                "--inside-netns",
                "--report",
                str(Path(args.report).resolve()),
            ]
            if args.json:
                argv.append("--json")
            if args.keep:
                return _outer_keep(argv)
            return subprocess.call(_netns.isolated_command(argv))
        print(
            f"ramparts demo: no network namespace here ({_netns.unavailable_reason()}); the "
            "attacks that would leave this machine are skipped",
            file=sys.stderr,
        )
    from cdk import quiet_node_banner

    quiet_node_banner()
    from ramparts_cli._demo_run import run_demo

    # Only the report goes to stdout: anything else a component prints goes to stderr.
    stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _OPTIONS.update(json=args.json, report=args.report, stdout=stdout)
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not args.json:
        print(render_intro(), file=sys.stderr, flush=True)
    keep = None
    if args.keep or args.keep_socket:
        socket_path = args.keep_socket

        def keep(account: Any, report: dict[str, Any]) -> None:
            _keep_here(account, report, socket_path)

    report = run_demo(isolated=args.inside_netns, progress=progress, keep=keep)
    _finish(report, _OPTIONS)
    return 0 if report["passed"] else 1


def render_intro() -> str:
    return (
        "Ramparts demo: the whole platform on this machine, in a local AWS account (moto).\n"
        "Nothing leaves the machine; no AWS account is used.\n"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole platform locally: attacks, findings, an approved containment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the local account running afterwards (for the AWS CLI or boto3)",
    )
    p.add_argument(
        "--report",
        default=str(DEFAULT_REPORT),
        metavar="PATH",
        help=f"where to write the HTML report (default: {DEFAULT_REPORT})",
    )
    p.add_argument("--inside-netns", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--keep-socket", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_demo)
