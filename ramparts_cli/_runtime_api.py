"""A local Lambda Runtime API (the ``2018-06-01`` interface that ``awslambdaric`` talks to).

Standard library only. One server serves one sandbox (one runtime process): the invoke
loop pushes invocations, the runtime pulls them with ``GET .../invocation/next`` (held open
until there is one) and posts the outcome back; every change of state is announced through
``on_change`` so that the caller can wait on a single wake-up source.

Endpoints (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):

- ``GET  /2018-06-01/runtime/invocation/next``
- ``POST /2018-06-01/runtime/invocation/{request_id}/response``
- ``POST /2018-06-01/runtime/invocation/{request_id}/error``
- ``POST /2018-06-01/runtime/init/error``

The runtime's C client (aws-lambda-cpp, libcurl) keeps its connection alive and gives a
POST only 100 ms to be answered, so the server speaks HTTP/1.1 and disables Nagle's
algorithm (without it, every answer waits ~40 ms for the client's delayed ACK).
"""

from __future__ import annotations

import collections
import http.server
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
NEXT_PATH = f"{API_PREFIX}/invocation/next"
INVOCATION_PREFIX = f"{API_PREFIX}/invocation/"
INIT_ERROR_PATH = f"{API_PREFIX}/init/error"

ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Lambda's synchronous invoke limit: a bigger response is refused, as Lambda does.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class PendingInvocation:
    """An event waiting for (or handed to) the runtime."""

    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str


@dataclass(frozen=True)
class PostedOutcome:
    """What the runtime posted: a response, an invocation error or an init error."""

    kind: str  # "response" | "error" | "init_error"
    body: bytes
    error_type: str | None
    request_id: str | None


class RuntimeApiServer:
    """The Runtime API for one sandbox, on 127.0.0.1 and a free port."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._on_change = on_change
        self._cond = threading.Condition()
        self._pending: collections.deque[PendingInvocation] = collections.deque()
        self._in_flight: dict[str, PendingInvocation] = {}
        self._outcomes: dict[str, PostedOutcome] = {}
        self._init_error: PostedOutcome | None = None
        self._waiting_next = 0
        self._next_calls = 0
        self._closed = False
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.api = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._httpd.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="ramparts-runtime-api",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release every request held open. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    # -- the invoke loop's side -------------------------------------------------------

    def push(self, invocation: PendingInvocation) -> None:
        with self._cond:
            self._pending.append(invocation)
            self._cond.notify_all()

    @property
    def runtime_waiting(self) -> bool:
        """True while the runtime holds a ``next`` request open with nothing to give it."""
        with self._cond:
            return self._waiting_next > 0 and not self._pending

    @property
    def next_calls(self) -> int:
        """How many times the runtime has asked for the next invocation."""
        with self._cond:
            return self._next_calls

    @property
    def init_error(self) -> PostedOutcome | None:
        with self._cond:
            return self._init_error

    def outcome(self, request_id: str) -> PostedOutcome | None:
        with self._cond:
            return self._outcomes.get(request_id)

    # -- the runtime's side (called from request threads) -----------------------------

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _take_next(self) -> PendingInvocation | None:
        with self._cond:
            self._waiting_next += 1
            self._next_calls += 1
        self._changed()
        with self._cond:
            try:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return None
                invocation = self._pending.popleft()
                self._in_flight[invocation.request_id] = invocation
                return invocation
            finally:
                self._waiting_next -= 1

    def _post(self, outcome: PostedOutcome) -> tuple[int, dict[str, str]]:
        with self._cond:
            if outcome.kind == "init_error":
                if self._init_error is None:
                    self._init_error = outcome
                status, body = 202, {"status": "OK"}
            elif outcome.request_id not in self._in_flight:
                status, body = (
                    400,
                    {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"},
                )
            elif outcome.request_id in self._outcomes:
                status, body = (
                    400,
                    {
                        "errorMessage": "Invocation already answered",
                        "errorType": "InvalidStateTransition",
                    },
                )
            else:
                self._outcomes[outcome.request_id] = outcome
                status, body = 202, {"status": "OK"}
        self._changed()
        return status, body


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    api: RuntimeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime killed mid-request resets its connection: that is not news."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server
    server_version = "ramparts-runtime-api"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log on stderr: stderr is the function's log stream."""

    # -- helpers ---------------------------------------------------------------------

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, obj: dict[str, str]) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it is larger than ``limit`` (then it is drained)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(1024)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunk = self.rfile.read(length)
                self.rfile.readline(8)
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
            return b"".join(chunks) if size <= limit else None
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return body if length <= limit else None

    # -- endpoints ---------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path != NEXT_PATH:
            self._send_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})
            return
        invocation = self.server.api._take_next()
        if invocation is None:  # shutting down: drop the connection, as a dying sandbox does
            self.close_connection = True
            return
        self._send(
            200,
            invocation.payload,
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def do_POST(self) -> None:
        path = self.path
        body = self._read_body(MAX_RESPONSE_BYTES)
        error_type = self.headers.get(ERROR_TYPE_HEADER)
        if path == INIT_ERROR_PATH:
            outcome = PostedOutcome("init_error", body or b"", error_type, None)
        elif path.startswith(INVOCATION_PREFIX):
            request_id, _, action = path[len(INVOCATION_PREFIX) :].partition("/")
            if action not in ("response", "error") or not request_id:
                self._send_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})
                return
            if body is None:
                # Lambda refuses the payload and the invoke fails with this error.
                body = json.dumps(
                    {
                        "errorMessage": (
                            f"Response payload size exceeded maximum allowed payload size "
                            f"({MAX_RESPONSE_BYTES} bytes)."
                        ),
                        "errorType": "Function.ResponseSizeTooLarge",
                    }
                ).encode()
                self.server.api._post(
                    PostedOutcome("error", body, "Function.ResponseSizeTooLarge", request_id)
                )
                self._send_json(
                    413,
                    {
                        "errorMessage": "Exceeded maximum allowed payload size",
                        "errorType": "RequestEntityTooLarge",
                    },
                )
                return
            outcome = PostedOutcome(action, body, error_type, request_id)
        else:
            self._send_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})
            return
        status, answer = self.server.api._post(outcome)
        self._send_json(status, answer)
