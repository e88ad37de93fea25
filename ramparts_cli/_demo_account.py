"""The demo's local AWS account: moto in this process, reachable on 127.0.0.1.

* :class:`LocalAccount` starts moto (``mock_aws``, Step Functions executing for real) and an
  HTTP front on loopback that hands every signed AWS request to moto's own dispatcher, so
  that the sample functions (separate processes), ``ramparts approve`` and, with
  ``--keep``, a user's AWS CLI reach the same account. Nothing is ever sent off the machine:
  requests are answered in process, and the code-download URL of ``GetFunction`` is served
  from moto too (every other URL fetched in process is refused).
* It routes the hops moto does not make itself, and says which:
  EventBridge rule -> Step Functions / Lambda target (moto delivers the matching events to a
  stand-in SQS queue per target; a pump starts the execution or invokes the function), and
  Lambda invoke -> the Python handler the template names (run in this process with the
  environment the template gives the function, its output kept as the function's log).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socketserver
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT = "123456789012"  # moto's default account: the core (security) account of the demo
REGION = "us-east-1"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_GLOBAL = {"iam": "iam.amazonaws.com", "sts": "sts.amazonaws.com"}
_ENV_LOCK = threading.RLock()


def aws_url(service: str, region: str, path: str) -> str:
    """The AWS URL moto's dispatcher recognises for a signing name and region."""
    host = _GLOBAL.get(service) or f"{service}.{region}.amazonaws.com"
    return f"https://{host}{path}"


# -- EventBridge's array matching ---------------------------------------------------------------
def flatten_event(
    node: Any, prefix: str = "", result: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An event as EventBridge matches it: a list of values per path, arrays of objects too.

    (moto's matcher does not look into arrays of objects, which the playbook routes need:
    ``"resources": {"type": [...]}`` matches any element of the finding's ``resources``.)
    """
    out: dict[str, Any] = {} if result is None else result

    def add(key: str, value: Any) -> None:
        if key in out:
            prev = out[key] if isinstance(out[key], list) else [out[key]]
            out[key] = prev + (value if isinstance(value, list) else [value])
        else:
            out[key] = value

    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and v:
                flatten_event(v, key, out)
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                for x in v:
                    for kk, vv in flatten_event(x, key, {}).items():
                        add(kk, vv if isinstance(vv, list) else [vv])
            else:
                add(key, v)
    return out


@dataclass(frozen=True)
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Route:
    """A hop the demo makes for moto: from a stand-in queue to a target."""

    rule: str
    queue_url: str
    target_arn: str


@dataclass
class Invocation:
    function: str
    handler: str
    event: Any
    result: Any
    error: str | None
    log: list[str]
    at: float


@dataclass
class LocalAccount:
    """moto in this process; see the module's docstring. Use as a context manager."""

    region: str = REGION
    account: str = ACCOUNT
    handlers: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    on_route: Callable[[str, str, dict[str, Any]], None] | None = None
    endpoint: str = ""
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _stop: threading.Event = field(default_factory=threading.Event)
    _servers: list[socketserver.BaseServer] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> LocalAccount:
        self._stack.enter_context(_patched_env({**CREDENTIALS, "AWS_DEFAULT_REGION": self.region}))
        from moto import mock_aws

        self._stack.enter_context(mock_aws(config=MOTO_CONFIG))  # type: ignore[call-overload]
        # moto logs every failed state in full; the demo reports executions from their status
        import logging

        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._patch()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _front(self.region))
        server.daemon_threads = True
        self._serve(server)
        self.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        pump = threading.Thread(target=self._pump, name="ramparts-demo-routes", daemon=True)
        pump.start()
        self._stack.callback(pump.join, 5)
        self._stack.callback(self._stop.set)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._stack.close()

    def _serve(self, server: socketserver.BaseServer) -> None:
        self._servers.append(server)
        threading.Thread(
            target=server.serve_forever, name="ramparts-demo-front", daemon=True
        ).start()

    def serve_unix(self, path: str) -> None:
        """Also answer on a unix socket (reachable across network namespaces)."""

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self._serve(Server(path, _front(self.region)))

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region)

    def env(self) -> dict[str, str]:
        """What a process outside needs to use this account (AWS CLI, boto3, functions)."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    # -- the hops moto does not make ---------------------------------------------------------
    def _patch(self) -> None:
        from moto.awslambda.models import LambdaBackend
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.events.models import EventPattern

        account = self

        def invoke(  # noqa: PLR0917 - moto's signature
            backend: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            payload, error = account.run_handler(function_name, body)
            if error:
                response_headers["x-amz-function-error"] = "Unhandled"
            return payload

        for cls in (LambdaBackend, LambdaSimpleBackend):
            self._stack.enter_context(_attr(cls, "invoke", invoke))
        self._stack.enter_context(_attr(EventPattern, "_flatten_dict", staticmethod(flatten_event)))
        opener = urllib.request.build_opener(_CodeHandler(self))
        previous = urllib.request._opener  # type: ignore[attr-defined]
        urllib.request.install_opener(opener)
        self._stack.callback(urllib.request.install_opener, previous)

    def run_handler(self, function_name: str, body: Any) -> tuple[bytes, bool]:
        """Lambda invoke -> the Python handler the template names, in this process."""
        import importlib

        name = (
            function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        )
        found = self.handlers.get(name)
        event = json.loads(body or b"{}")
        if found is None:
            msg = f"{name} is not run by the demo's Lambda router"
            return json.dumps(
                {"errorType": "Ramparts.NotRouted", "errorMessage": msg}
            ).encode(), True
        handler, env = found
        module, func = handler.rsplit(".", 1)
        ctx = LambdaContext(
            function_name=name,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{self.account}:function:{name}",
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{name}",
        )
        error: str | None = None
        with (
            _ENV_LOCK,
            _captured_stdout() as captured,
            _patched_env(
                {
                    **env,
                    "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region,
                    "AWS_LAMBDA_FUNCTION_NAME": name,
                    "POWERTOOLS_TRACE_DISABLED": "true",
                }
            ),
        ):
            from functions.respond import common

            common.config.cache_clear()
            try:
                result: Any = getattr(importlib.import_module(module), func)(event, ctx)
            except Exception as exc:  # the handler's failure is the invocation's error
                error = f"{type(exc).__name__}: {exc}"
                result = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            finally:
                common.config.cache_clear()
        log = [line for line in captured.getvalue().splitlines() if line.strip()]
        self.invocations.append(Invocation(name, handler, event, result, error, log, time.time()))
        self._put_logs(name, log)
        return json.dumps(result, default=str).encode(), error is not None

    def _put_logs(self, name: str, lines: list[str]) -> None:
        if not lines:
            return
        logs = self.client("logs")
        group = f"/aws/lambda/{name}"
        with contextlib.suppress(Exception):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(Exception):
            logs.create_log_stream(logGroupName=group, logStreamName="demo")
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName="demo",
            logEvents=[{"timestamp": now, "message": line} for line in lines],
        )

    def _pump(self) -> None:
        """EventBridge stand-in queues -> Step Functions executions / Lambda invocations."""
        while not self._stop.wait(0.05):
            with contextlib.suppress(Exception):  # the account may be closing
                self.deliver()

    def deliver(self) -> int:
        sqs = self.client("sqs")
        done = 0
        for route in list(self.routes):
            msgs = sqs.receive_message(QueueUrl=route.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            for m in msgs:
                sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=m["ReceiptHandle"])
                event = json.loads(m["Body"])
                service = route.target_arn.split(":")[2]
                if service == "states":
                    arn = self.client("stepfunctions").start_execution(
                        stateMachineArn=route.target_arn, name=str(uuid.uuid4()), input=m["Body"]
                    )["executionArn"]
                    if self.on_route is not None:
                        self.on_route(route.rule, arn, event)
                elif service == "lambda":
                    self.client("lambda").invoke(
                        FunctionName=route.target_arn, InvocationType="Event", Payload=m["Body"]
                    )
                done += 1
        return done


def _front(region: str) -> type[BaseHTTPRequestHandler]:
    """An HTTP handler that answers signed AWS requests from moto, in this process."""

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def address_string(self) -> str:
            return "local"

        def _handle(self) -> None:
            from botocore.awsrequest import AWSPreparedRequest
            from botocore.compat import HTTPHeaders
            from moto.core.botocore_stubber import BotocoreStubber

            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            match = _SCOPE.search(self.headers.get("Authorization") or "") or _SCOPE.search(
                self.path.replace("%2F", "/")
            )
            if match is None:
                self._reply(403, {"Content-Type": "text/plain"}, b"unsigned request\n")
                return
            url = aws_url(match.group(2), match.group(1) or region, self.path)
            headers = HTTPHeaders()
            for k, v in self.headers.items():
                headers[k] = v
            headers.replace_header("Host", url.split("/")[2]) if "Host" in headers else None
            request = AWSPreparedRequest(
                method=self.command, url=url, headers=headers, body=body, stream_output=False
            )
            try:
                got = BotocoreStubber().process_request(request)
            except Exception as exc:  # a moto failure: the client sees a 500, the demo goes on
                self._reply(500, {"Content-Type": "text/plain"}, f"{exc}\n".encode())
                return
            if got is None:
                self._reply(404, {"Content-Type": "text/plain"}, b"not implemented locally\n")
                return
            status, out_headers, out_body = got
            data = out_body.encode() if isinstance(out_body, str) else bytes(out_body or b"")
            self._reply(int(status), dict(out_headers or {}), data)

        def _reply(self, status: int, headers: dict[str, Any], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    return Front


class _CodeHandler(urllib.request.HTTPSHandler):
    """In process, ``https://`` reaches only ``GetFunction``'s code URL, served from moto."""

    def __init__(self, account: LocalAccount) -> None:
        super().__init__()
        self.account = account

    def https_open(self, req: urllib.request.Request) -> Any:
        import email.message
        import urllib.error
        import urllib.response

        url = req.full_url
        from moto.awslambda.models import lambda_backends
        from moto.awslambda_simple.models import lambda_simple_backends

        if ".amazonaws.com/" in url and "-tasks.s3." in url:
            for backends in (lambda_simple_backends, lambda_backends):
                for fn in backends[self.account.account][self.account.region].list_functions():
                    key = fn.code.get("S3Key")
                    if key and url.split("?")[0].endswith("/" + key):
                        headers = email.message.Message()
                        headers["Content-Length"] = str(len(fn.code_bytes))
                        resp = urllib.response.addinfourl(
                            io.BytesIO(bytes(fn.code_bytes)), headers, url, 200
                        )
                        resp.msg = "OK"  # type: ignore[attr-defined]
                        return resp
        raise urllib.error.URLError(f"the demo sends nothing off this machine: {url}")


@contextlib.contextmanager
def _attr(obj: Any, name: str, value: Any) -> Iterator[None]:
    saved = obj.__dict__[name] if name in obj.__dict__ else getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


@contextlib.contextmanager
def _patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Captured:
    def __init__(self) -> None:
        self.text = ""

    def getvalue(self) -> str:
        return self.text


@contextlib.contextmanager
def _captured_stdout() -> Iterator[_Captured]:
    """What a handler writes on stdout (fd 1: loggers hold the stream) becomes its log."""
    import sys

    out = _Captured()
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield out
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            out.text = tmp.read().decode("utf-8", "replace")
