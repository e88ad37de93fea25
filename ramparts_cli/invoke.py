"""``ramparts invoke``: run a Python Lambda handler locally, the way Lambda runs it.

A local Runtime API server (:mod:`ramparts_cli._runtime_api`) and the real runtime
interface client (``awslambdaric``) in a fresh process, started by a bootstrap that does
what ``/var/runtime/bootstrap`` does (:mod:`ramparts_cli._bootstrap`), behind
``AWS_LAMBDA_EXEC_WRAPPER`` when one is set, with the environment Lambda sets. Every event
is one invocation of the same warm sandbox; a sandbox that crashed or timed out is replaced
by a cold one for the next event, as Lambda does.

Python API (the CLI, the demo and the tests use it)::

    result = run_invocations("app.handler", "path/to/code", [{"a": 1}, {"a": 2}])
    result.responses[0].ok, result.responses[0].payload
    result.log_lines, result.init_error, result.exit_code

With ``isolate_network=True`` the whole thing (server and runtime) runs inside a new
network namespace that has only loopback (:mod:`ramparts_cli._netns`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ramparts_cli.errors import CliError

if TYPE_CHECKING:
    import argparse
    import subprocess

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "InvokeResult",
    "Layer",
    "Response",
    "resolve_layer",
    "run_invocations",
]

DEFAULT_TIMEOUT_S = 30.0
# Lambda gives the init phase of an on-demand function 10 seconds.
INIT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 128
DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"

# Lambda always hands a function its role's temporary credentials. These are well formed
# and obviously fake, so that SDK clients build and sign, and nothing real can leak in.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIARAMPARTSLOCAL000",
    "AWS_SECRET_ACCESS_KEY": "rampartsLocalFakeSecretAccessKey00000000",
    "AWS_SESSION_TOKEN": (
        "IQoJcmFtcGFydHMtbG9jYWwtZmFrZS1zZXNzaW9uLXRva2VuLW5vdC1hLXJlYWwtY3JlZGVudGlhbA=="
    ),
}
# The only variables taken from the caller's environment; everything else is Lambda's.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG")

_PACKAGE_DIR = Path(__file__).resolve().parent
_BOOTSTRAP = _PACKAGE_DIR / "_bootstrap.py"
# In a source checkout the layer is `layer/`: `layer/ramparts/` and `layer/ramparts-wrapper`.
SOURCE_LAYER_DIR = _PACKAGE_DIR.parent / "layer"


# --------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Response:
    """The outcome of one invocation, as the Invoke API returns it."""

    request_id: str
    ok: bool
    # The decoded JSON payload; for an error, Lambda's error object
    # {"errorMessage", "errorType", "requestId", "stackTrace"} (or what the platform says).
    payload: Any
    raw: bytes
    duration_ms: float = 0.0
    init_duration_ms: float | None = None  # set when this invocation had a cold start

    @property
    def error_type(self) -> str | None:
        if self.ok or not isinstance(self.payload, dict):
            return None
        value = self.payload.get("errorType")
        return str(value) if value is not None else None

    def to_json_line(self) -> str:
        """One line of JSON: the payload as the runtime sent it, re-encoded only if needed."""
        import json

        text = self.raw.decode("utf-8", "replace")
        if "\n" in text or "\r" in text:
            return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)
        try:
            json.loads(text)
        except ValueError:
            return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "ok": self.ok,
            "payload": self.payload,
            "raw": self.raw.decode("latin-1"),
            "duration_ms": self.duration_ms,
            "init_duration_ms": self.init_duration_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Response:
        return cls(
            request_id=str(data["request_id"]),
            ok=bool(data["ok"]),
            payload=data["payload"],
            raw=str(data["raw"]).encode("latin-1"),
            duration_ms=float(data["duration_ms"]),
            init_duration_ms=data.get("init_duration_ms"),
        )


@dataclass
class InvokeResult:
    """Every response in order, the function's log stream, and how init went."""

    responses: list[Response] = field(default_factory=list)
    # The runtime process's stdout and stderr, one entry per line, in the order written.
    log_lines: list[str] = field(default_factory=list)
    # The first init failure (Lambda's error object), or None when every init succeeded.
    init_error: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 when every invocation succeeded, 1 when any failed or an init failed."""
        if self.init_error is not None or not all(r.ok for r in self.responses):
            return 1
        return 0

    @property
    def payloads(self) -> list[Any]:
        return [r.payload for r in self.responses]


# --------------------------------------------------------------------------------------
# The layer (what Lambda extracts at /opt)


@dataclass(frozen=True)
class Layer:
    """A layer directory standing in for ``/opt``.

    Two layouts: an extracted layer zip (``python/ramparts/...``, ``ramparts-wrapper``), or
    the source tree's ``layer/`` (``ramparts/...``, ``ramparts-wrapper``) where the package
    directory itself is the python path entry.
    """

    root: Path
    python_dir: Path

    def python_path(self) -> list[str]:
        """The layer's entries of sys.path, in Lambda's order."""
        entries: list[str] = []
        if self.python_dir == self.root / "python":
            version = f"python{sys.version_info.major}.{sys.version_info.minor}"
            site = self.python_dir / "lib" / version / "site-packages"
            if site.is_dir():
                entries.append(str(site))
        entries.append(str(self.python_dir))
        return entries

    def map_opt(self, path: str) -> Path:
        """Where a ``/opt/...`` path of Lambda's is in this layer."""
        relative = path[len("/opt/") :].lstrip("/")
        if relative == "python" or relative.startswith("python/"):
            return self.python_dir / relative[len("python") :].lstrip("/")
        return self.root / relative


def resolve_layer(path: str | os.PathLike[str], extract_to: str | None = None) -> Layer:
    """A :class:`Layer` for a directory, or for a layer zip extracted into ``extract_to``."""
    layer_path = Path(path).expanduser().resolve()
    if layer_path.is_file():
        if extract_to is None:
            raise CliError(f"--layer {path}: a zip needs a directory to be extracted into")
        _extract_zip(layer_path, Path(extract_to))
        layer_path = Path(extract_to).resolve()
    elif not layer_path.is_dir():
        raise CliError(
            f"--layer {path}: no such file or directory",
            hint="pass a layer zip (ramparts layer build) or a directory laid out like /opt",
        )
    if (layer_path / "python").is_dir():
        return Layer(root=layer_path, python_dir=layer_path / "python")
    return Layer(root=layer_path, python_dir=layer_path)


def default_layer() -> Layer | None:
    """The source tree's layer, when running from a checkout."""
    if (SOURCE_LAYER_DIR / "ramparts").is_dir():
        return Layer(root=SOURCE_LAYER_DIR, python_dir=SOURCE_LAYER_DIR)
    return None


def _extract_zip(archive: Path, dest: Path) -> None:
    """Extract a layer zip keeping Unix modes (the exec bit) and symlinks, as Lambda does."""
    import stat
    import zipfile

    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise CliError(f"--layer {archive}: not a zip file ({exc})") from exc
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zf:
        for info in zf.infolist():
            target = (root / info.filename).resolve()
            if target != root and root not in target.parents:
                raise CliError(f"--layer {archive}: entry {info.filename!r} escapes the layer")
            mode = (info.external_attr >> 16) & 0xFFFF
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                os.symlink(zf.read(info).decode(), target)
                continue
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 16):
                    out.write(chunk)
            if mode & 0o777:
                os.chmod(target, mode & 0o777)


# --------------------------------------------------------------------------------------
# The sandbox's definition: command, environment, identity


@dataclass(frozen=True)
class _SandboxSpec:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    function_name: str
    function_arn: str
    memory_mb: int


def _module_exists(module: str, roots: Sequence[str]) -> bool:
    parts = module.split(".")
    for root in roots:
        base = Path(root).joinpath(*parts)
        if base.with_suffix(".py").is_file() or base.is_dir():
            return True
        if base.parent.is_dir() and any(base.parent.glob(f"{parts[-1]}.*.so")):
            return True
        if base.with_suffix(".so").is_file() or base.with_suffix(".pyc").is_file():
            return True
    return False


def _check_handler(handler: str, code_dir: Path, layer: Layer | None) -> None:
    module, _, function = handler.rpartition(".")
    if not module or not function:
        raise CliError(
            f"bad handler {handler!r}: expected MODULE.FUNCTION",
            hint="e.g. `app.handler` for a function `handler` in app.py under --code",
        )
    module = module.replace("/", ".")
    roots = [str(code_dir), *(layer.python_path() if layer else [])]
    if not _module_exists(module, roots):
        file_name = module.replace(".", "/") + ".py"
        raise CliError(
            f"handler module {module!r} not found: there is no {file_name} in {code_dir}",
            hint=(
                "HANDLER is MODULE.FUNCTION relative to --code "
                f"(e.g. `app.handler` for {code_dir / 'app.py'})"
            ),
        )


def _sandbox_spec(
    handler: str,
    code_dir: Path,
    layer: Layer | None,
    user_env: Mapping[str, str],
    memory_mb: int,
) -> _SandboxSpec:
    import datetime
    import uuid

    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    name = user_env.get("AWS_LAMBDA_FUNCTION_NAME") or code_dir.name
    region = user_env.get("AWS_REGION") or user_env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    python_path = [str(code_dir), *(layer.python_path() if layer else [])]
    today = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    env.update(
        {
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(_PACKAGE_DIR),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            **FAKE_CREDENTIALS,
            # No ~/.aws of the caller's: a function has none.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    env.update(user_env)

    argv = [sys.executable, str(_BOOTSTRAP)]
    wrapper = env.get("AWS_LAMBDA_EXEC_WRAPPER")
    if wrapper:
        wrapper_path = _wrapper_path(wrapper, layer)
        env["AWS_LAMBDA_EXEC_WRAPPER"] = str(wrapper_path)
        argv = [str(wrapper_path), *argv]
    arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{name}"
    return _SandboxSpec(argv, env, str(code_dir), name, arn, memory_mb)


def _wrapper_path(wrapper: str, layer: Layer | None) -> Path:
    if wrapper.startswith("/opt/"):
        if layer is None:
            raise CliError(
                f"AWS_LAMBDA_EXEC_WRAPPER={wrapper} is in a layer, but no layer is attached",
                hint="pass --layer PATH (a layer zip or a directory laid out like /opt)",
            )
        path = layer.map_opt(wrapper)
    else:
        path = Path(wrapper).expanduser().resolve()
    if not path.is_file():
        raise CliError(
            f"AWS_LAMBDA_EXEC_WRAPPER={wrapper}: {path} does not exist",
            hint="Lambda would fail the init with Runtime.InvalidEntrypoint",
        )
    if not os.access(path, os.X_OK):
        raise CliError(
            f"AWS_LAMBDA_EXEC_WRAPPER={wrapper}: {path} is not executable",
            hint=f"chmod +x {path} (Lambda needs the exec bit too)",
        )
    return path


# --------------------------------------------------------------------------------------
# One sandbox: the runtime process and its Runtime API


def _error_response(request_id: str, error_type: str, message: str) -> Response:
    import json

    payload = {"errorMessage": message, "errorType": error_type}
    return Response(request_id, False, payload, json.dumps(payload).encode())


def _decode_json(raw: bytes) -> tuple[bool, Any]:
    import json

    try:
        return True, json.loads(raw)
    except ValueError:
        return False, raw.decode("utf-8", "replace")


def _exit_description(returncode: int) -> str:
    import signal

    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name.removeprefix("SIG").lower()
        except ValueError:
            name = str(-returncode)
        return f"signal: {name}"
    return f"exit status {returncode}"


class _Sandbox:
    """One execution environment: a Runtime API server and a runtime process."""

    def __init__(
        self,
        spec: _SandboxSpec,
        on_log: Callable[[str], None],
    ) -> None:
        import selectors
        import threading

        from ramparts_cli._runtime_api import RuntimeApiServer

        self._spec = spec
        self._on_log = on_log
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_lock = threading.Lock()
        self._wake_closed = False
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self.server = RuntimeApiServer(on_change=self._poke)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fd: int | None = None
        self._pidfd: int | None = None
        self._partial = b""
        self.returncode: int | None = None
        self.started_at = 0.0
        self.init_duration_ms: float | None = None
        self.invocations = 0
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------

    def _poke(self) -> None:
        with self._wake_lock:
            if not self._wake_closed:
                with contextlib.suppress(BlockingIOError):  # full: already awake
                    os.write(self._wake_w, b"x")

    def _emit(self, data: bytes) -> None:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self._on_log(line.decode("utf-8", "replace"))

    def _read_logs(self) -> bool:
        """Read what the runtime wrote so far. False at end of file."""
        if self._log_fd is None:
            return False
        while True:
            try:
                data = os.read(self._log_fd, 1 << 16)
            except BlockingIOError:
                return True
            if not data:
                self._selector.unregister(self._log_fd)
                os.close(self._log_fd)
                self._log_fd = None
                if self._partial:
                    self._on_log(self._partial.decode("utf-8", "replace"))
                    self._partial = b""
                return False
            self._emit(data)

    def _reap(self) -> bool:
        """True once the runtime process has exited."""
        if self.returncode is None and self._proc is not None:
            self.returncode = self._proc.poll()
        return self.returncode is not None

    @property
    def alive(self) -> bool:
        return self._proc is not None and not self._reap()

    def wait(self, until: Callable[[], bool], deadline: float) -> bool:
        """Forward logs until ``until()`` holds, the runtime exits, or ``deadline`` passes.

        Returns ``until()``. Whatever the runtime wrote before the state change is
        forwarded first: it wrote its logs before posting, so they are in the pipe.
        """
        import time

        while True:
            if until():
                self._read_logs()
                return True
            if self._reap():
                self._read_logs()
                return until()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._pidfd is None:
                remaining = min(remaining, 0.02)
            for key, _ in self._selector.select(remaining):
                if key.fd == self._wake_r:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                elif key.fd == self._log_fd:
                    self._read_logs()

    def wait_ready(self, deadline: float) -> bool:
        """Wait until the runtime (alive) asks for an event, or it has reported an init error."""
        server = self.server

        def ready() -> bool:
            if server.init_error is not None:
                return True
            return server.runtime_waiting and not self._reap()

        return self.wait(ready, deadline)

    def wait_outcome(self, request_id: str, deadline: float) -> bool:
        """Wait for the runtime to post the response or error of ``request_id``."""
        server = self.server
        return self.wait(lambda: server.outcome(request_id) is not None, deadline)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        import selectors
        import subprocess
        import time

        self.server.start()
        env = dict(self._spec.env)
        env["AWS_LAMBDA_RUNTIME_API"] = self.server.address
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            self._spec.argv,
            cwd=self._spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        self._log_fd = os.dup(self._proc.stdout.fileno())
        self._proc.stdout.close()
        os.set_blocking(self._log_fd, False)
        self._selector.register(self._log_fd, selectors.EVENT_READ)
        try:
            self._pidfd = os.pidfd_open(self._proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None
        else:
            self._selector.register(self._pidfd, selectors.EVENT_READ)

    def max_memory_mb(self) -> int | None:
        if self._proc is None:
            return None
        try:
            with open(f"/proc/{self._proc.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) // 1024
        except (OSError, ValueError):
            return None
        return None

    def kill(self) -> None:
        """SIGKILL the runtime's process group (the runtime and anything it started)."""
        import signal
        import subprocess

        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # not in its group any more: kill it alone
            self._proc.kill()
            self._proc.wait()
        self._reap()

    def close(self) -> None:
        """Kill the runtime, forward its last words, stop the server. Idempotent."""
        import time

        if self._closed:
            return
        self._closed = True
        try:
            self.kill()
            if self._pidfd is not None:  # readable from now on: select only on the logs
                self._selector.unregister(self._pidfd)
            deadline = time.monotonic() + 0.5
            while self._log_fd is not None and time.monotonic() < deadline:
                if not self._read_logs():
                    break
                self._selector.select(0.02)
        finally:
            self.server.close()
            with self._wake_lock:
                self._wake_closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)
            for fd in (self._log_fd, self._pidfd):
                if fd is not None:
                    os.close(fd)
            self._log_fd = self._pidfd = None
            self._selector.close()


# --------------------------------------------------------------------------------------
# The invoke loop


@dataclass
class _Callbacks:
    on_log: Callable[[str], None] | None = None
    on_platform: Callable[[str], None] | None = None
    on_response: Callable[[Response], None] | None = None


def _trace_id() -> str:
    import secrets
    import time

    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


def _exit_error(request_id: str, returncode: int) -> Response:
    return _error_response(
        request_id,
        "Runtime.ExitError",
        f"RequestId: {request_id} Error: Runtime exited with error: "
        f"{_exit_description(returncode)}",
    )


def _cold_start(
    spec: _SandboxSpec, on_log: Callable[[str], None], request_id: str
) -> tuple[_Sandbox | None, Response | None]:
    """A new sandbox through its init: (sandbox, None), or (None, the invocation's error)."""
    import json
    import time

    sandbox = _Sandbox(spec, on_log)
    ready = False
    try:
        try:
            sandbox.start()
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            return None, _error_response(
                request_id,
                "Runtime.InvalidEntrypoint",
                f"RequestId: {request_id} Error: fork/exec {spec.argv[0]}: {reason}",
            )
        if sandbox.wait_ready(time.monotonic() + INIT_TIMEOUT_S):
            posted = sandbox.server.init_error
            if posted is None:
                sandbox.init_duration_ms = round((time.monotonic() - sandbox.started_at) * 1000, 2)
                ready = True
                return sandbox, None
            # The runtime's own report, e.g. Runtime.ImportModuleError.
            decoded, payload = _decode_json(posted.body)
            if not decoded or not isinstance(payload, dict):
                payload = {"errorMessage": payload, "errorType": posted.error_type or "Unknown"}
            if not payload.get("requestId"):
                payload["requestId"] = request_id
            return None, Response(request_id, False, payload, json.dumps(payload).encode())
        if sandbox.returncode is not None:
            return None, _exit_error(request_id, sandbox.returncode)
        return None, _error_response(
            request_id,
            "Sandbox.Timedout",
            f"RequestId: {request_id} Error: Init timed out after {INIT_TIMEOUT_S:.2f} seconds",
        )
    finally:
        if not ready:
            sandbox.close()


def _invoke_once(
    sandbox: _Sandbox,
    spec: _SandboxSpec,
    request_id: str,
    payload: bytes,
    *,
    timeout: float,
    platform: Callable[[str], None],
) -> Response:
    """Hand one event to a ready runtime and wait for its answer, the runtime's exit or the
    deadline (then kill it). Emits Lambda's START / END / REPORT lines."""
    import time

    from ramparts_cli._runtime_api import PendingInvocation

    cold = sandbox.invocations == 0
    sandbox.invocations += 1
    platform(f"START RequestId: {request_id} Version: $LATEST")
    started = time.monotonic()
    sandbox.server.push(
        PendingInvocation(
            request_id=request_id,
            payload=payload,
            deadline_ms=int((time.time() + timeout) * 1000),
            function_arn=spec.function_arn,
            trace_id=_trace_id(),
        )
    )
    answered = sandbox.wait_outcome(request_id, started + timeout)
    duration = (time.monotonic() - started) * 1000
    outcome = sandbox.server.outcome(request_id)
    if answered and outcome is not None:
        decoded, body = _decode_json(outcome.body)
        ok = outcome.kind == "response"
        if not ok and (not decoded or not isinstance(body, dict)):
            body = {"errorMessage": body, "errorType": outcome.error_type or "Unknown"}
        response = Response(request_id, ok, body, outcome.body)
    elif sandbox.returncode is not None:
        response = _exit_error(request_id, sandbox.returncode)
    else:
        sandbox.kill()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        platform(f"{stamp}Z {request_id} Task timed out after {timeout:.2f} seconds")
        response = _error_response(
            request_id,
            "Sandbox.Timedout",
            f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
        )
    platform(f"END RequestId: {request_id}")
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {spec.memory_mb} MB"
    )
    memory = sandbox.max_memory_mb() if sandbox.alive else None
    if memory is not None:
        report += f"\tMax Memory Used: {memory} MB"
    init_duration_ms = sandbox.init_duration_ms if cold else None
    if init_duration_ms is not None:
        report += f"\tInit Duration: {init_duration_ms:.2f} ms"
    platform(report)
    return dataclasses.replace(
        response, duration_ms=round(duration, 2), init_duration_ms=init_duration_ms
    )


def _run_local(
    spec: _SandboxSpec,
    payloads: Sequence[bytes],
    timeout: float,
    callbacks: _Callbacks,
) -> InvokeResult:
    """The invoke loop, in this process: one warm sandbox, replaced when it dies."""
    import time
    import uuid

    result = InvokeResult()

    def on_log(line: str) -> None:
        result.log_lines.append(line)
        if callbacks.on_log is not None:
            callbacks.on_log(line)

    def platform(line: str) -> None:
        if callbacks.on_platform is not None:
            callbacks.on_platform(line)

    def record(response: Response) -> None:
        result.responses.append(response)
        if callbacks.on_response is not None:
            callbacks.on_response(response)

    sandbox: _Sandbox | None = None
    try:
        for payload in payloads:
            request_id = str(uuid.uuid4())
            # Lambda hands an invocation only to a runtime that asked for one; a runtime that
            # died after its last answer (or never asks again) is replaced by a cold sandbox.
            if sandbox is not None and not sandbox.wait_ready(time.monotonic() + INIT_TIMEOUT_S):
                sandbox.close()
                sandbox = None
            if sandbox is None:
                sandbox, failure = _cold_start(spec, on_log, request_id)
                if failure is not None:
                    if result.init_error is None:
                        result.init_error = dict(failure.payload)
                    record(failure)
                    continue
            assert sandbox is not None
            record(
                _invoke_once(sandbox, spec, request_id, payload, timeout=timeout, platform=platform)
            )
    finally:
        if sandbox is not None:
            sandbox.close()
    return result


# --------------------------------------------------------------------------------------
# Public API


def _event_payload(event: Any) -> bytes:
    import json

    if isinstance(event, bytes | bytearray):
        return bytes(event)
    return json.dumps(event).encode()


def run_invocations(
    handler: str,
    code_dir: str | os.PathLike[str],
    events: Sequence[Any] = (),
    *,
    env: Mapping[str, str] | None = None,
    layer: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    isolate_network: bool = False,
    memory_mb: int = DEFAULT_MEMORY_MB,
    on_log: Callable[[str], None] | None = None,
    on_platform: Callable[[str], None] | None = None,
    on_response: Callable[[Response], None] | None = None,
) -> InvokeResult:
    """Invoke ``handler`` once per event in one warm sandbox, the way Lambda does.

    ``events``: each is JSON-encoded, except ``bytes``, which are sent as they are (the
    Invoke API's payload); none means one invocation with ``{}``. ``env`` is applied last
    over Lambda's environment. ``layer``: a layer zip or a directory laid out like ``/opt``
    (default: the source tree's ``layer/``). ``timeout``: seconds per invocation.
    ``on_log`` gets each line of the function's log stream as it comes, ``on_platform``
    Lambda's START/END/REPORT lines, ``on_response`` each response as it comes.

    Raises CliError for what the caller must fix (no code dir, no handler module, bad
    layer, a wrapper that is missing or not executable, no network namespace).
    """
    import tempfile

    if timeout <= 0:
        raise CliError(f"--timeout must be positive, not {timeout}")
    code = Path(code_dir).expanduser().resolve()
    if not code.is_dir():
        raise CliError(
            f"--code {code_dir}: not a directory",
            hint="point --code at the directory that holds the handler's module",
        )
    payloads = [_event_payload(e) for e in events] or [b"{}"]
    callbacks = _Callbacks(on_log=on_log, on_platform=on_platform, on_response=on_response)
    user_env = dict(env or {})

    with tempfile.TemporaryDirectory(prefix="ramparts-layer-") as scratch:
        resolved = resolve_layer(layer, scratch) if layer is not None else default_layer()
        _check_handler(handler, code, resolved)
        # Built here even when isolated, so that a bad wrapper fails before any namespace.
        spec = _sandbox_spec(handler, code, resolved, user_env, memory_mb)
        if isolate_network:
            return _run_isolated(
                handler=handler,
                code=code,
                layer=resolved,
                user_env=user_env,
                memory_mb=memory_mb,
                payloads=payloads,
                timeout=timeout,
                callbacks=callbacks,
            )
        return _run_local(spec, payloads, timeout, callbacks)


# --------------------------------------------------------------------------------------
# --isolate-network: run the invoke loop itself in a loopback-only network namespace


def _run_isolated(
    *,
    handler: str,
    code: Path,
    layer: Layer | None,
    user_env: Mapping[str, str],
    memory_mb: int,
    payloads: Sequence[bytes],
    timeout: float,
    callbacks: _Callbacks,
) -> InvokeResult:
    import json
    import subprocess

    from ramparts_cli import _netns

    if not _netns.netns_available():
        raise CliError(
            f"--isolate-network: cannot create a network namespace here: "
            f"{_netns.unavailable_reason()}",
            hint="run as root, or enable unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)",
        )
    request = {
        "handler": handler,
        "code_dir": str(code),
        "layer": None if layer is None else [str(layer.root), str(layer.python_dir)],
        "env": dict(user_env),
        "memory_mb": memory_mb,
        "timeout": timeout,
        "payloads": [p.decode("latin-1") for p in payloads],
    }
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(_PACKAGE_DIR.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    argv = _netns.isolated_command(
        [
            sys.executable,
            "-c",
            "import sys; from ramparts_cli.invoke import _isolated_child; "
            "sys.exit(_isolated_child())",
        ]
    )
    result = InvokeResult()
    finished = False
    proc = subprocess.Popen(
        argv,
        env=child_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
        for raw_line in proc.stdout:
            try:
                message = json.loads(raw_line)
            except ValueError:  # not the protocol: something in the child printed
                sys.stderr.write(raw_line.decode("utf-8", "replace"))
                continue
            if "log" in message:
                result.log_lines.append(message["log"])
                if callbacks.on_log is not None:
                    callbacks.on_log(message["log"])
            elif "platform" in message:
                if callbacks.on_platform is not None:
                    callbacks.on_platform(message["platform"])
            elif "response" in message:
                response = Response.from_dict(message["response"])
                result.responses.append(response)
                if callbacks.on_response is not None:
                    callbacks.on_response(response)
            elif "result" in message:
                result.init_error = message["result"]["init_error"]
                finished = True
            elif "error" in message:
                raise CliError(message["error"]["message"], hint=message["error"]["hint"])
        returncode = proc.wait()
    finally:
        _stop_child(proc)
    if not finished:
        raise CliError(
            f"the isolated invoke exited with status {returncode} before it finished",
            exit_code=1,
        )
    return result


def _stop_child(proc: subprocess.Popen[bytes]) -> None:
    """Let the child clean its sandbox up (SIGTERM), then make sure it is gone."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _isolated_child() -> int:
    """Inside the namespace: run the invoke loop, report on stdout as JSON lines."""
    import json
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    out = sys.stdout

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    request = json.load(sys.stdin)
    try:
        layer = None
        if request["layer"] is not None:
            root, python_dir = request["layer"]
            layer = Layer(Path(root), Path(python_dir))
        spec = _sandbox_spec(
            request["handler"],
            Path(request["code_dir"]),
            layer,
            request["env"],
            int(request["memory_mb"]),
        )
        result = _run_local(
            spec,
            [p.encode("latin-1") for p in request["payloads"]],
            float(request["timeout"]),
            _Callbacks(
                on_log=lambda line: send({"log": line}),
                on_platform=lambda line: send({"platform": line}),
                on_response=lambda r: send({"response": r.to_dict()}),
            ),
        )
    except CliError as exc:
        send({"error": {"message": str(exc), "hint": exc.hint}})
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C reaches the whole foreground group; the parent reports
        return 130
    send({"result": {"init_error": result.init_error}})
    return 0


# --------------------------------------------------------------------------------------
# Command line


def _parse_env(text: str) -> tuple[str, str]:
    import argparse

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, value


def _positive_seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _read_event(spec: str) -> bytes:
    import json

    if spec.startswith("@"):
        name = spec[1:]
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise CliError(
                f"--event {spec}: cannot read {name}: {exc.strerror or exc}",
                hint="--event takes inline JSON, or @FILE for a file of JSON",
            ) from exc
    else:
        data = spec.encode()
    try:
        json.loads(data)
    except ValueError as exc:
        raise CliError(
            f"--event {spec if len(spec) < 60 else spec[:57] + '...'}: not valid JSON ({exc})",
            hint="quote the JSON for the shell, e.g. --event '{\"key\": 1}', or use @FILE",
        ) from exc
    return data


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run a Python Lambda handler locally, the way Lambda runs it",
        description=(
            "Run HANDLER in a fresh local sandbox: a Lambda Runtime API on 127.0.0.1 and the "
            "real runtime interface client (awslambdaric), with Lambda's environment. Each "
            "--event is one invocation of the same warm sandbox. Responses go to stdout, one "
            "JSON line each; the function's log stream goes to stderr. Exit status: 0 when "
            "every invocation succeeded, 1 when any failed or init failed, 2 on usage errors."
        ),
    )
    parser.add_argument("handler", metavar="HANDLER", help="MODULE.FUNCTION, e.g. app.handler")
    parser.add_argument(
        "--code", required=True, metavar="DIR", help="the function's code (LAMBDA_TASK_ROOT)"
    )
    parser.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="JSON|@FILE",
        help="an event: inline JSON, @FILE or @- for stdin (repeat for more; default {})",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        type=_parse_env,
        metavar="K=V",
        help="set an environment variable of the function (repeatable, applied last)",
    )
    parser.add_argument(
        "--layer",
        metavar="PATH",
        help="a layer zip, or a directory laid out like /opt (default: the source tree's layer/)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"per invocation (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help=f"AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default {DEFAULT_MEMORY_MB}; not enforced)",
    )
    parser.add_argument(
        "--isolate-network",
        action="store_true",
        help="run in a new network namespace that has only loopback (no packet can leave)",
    )
    parser.set_defaults(func=_cmd_invoke)


def _cmd_invoke(args: argparse.Namespace) -> int:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return _invoke_command(args)

    def on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwind, so that the sandbox is cleaned up

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return _invoke_command(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _invoke_command(args: argparse.Namespace) -> int:
    events = [_read_event(spec) for spec in args.event]
    err = sys.stderr
    out = sys.stdout

    def on_log(line: str) -> None:
        # The runtime joins the lines of one error report with "\r" (one log event in
        # CloudWatch); show them as lines.
        err.write(line.rstrip("\r").replace("\r", "\n") + "\n")
        err.flush()

    def on_response(response: Response) -> None:
        out.write(response.to_json_line() + "\n")
        out.flush()

    result = run_invocations(
        args.handler,
        args.code,
        events,
        env=dict(args.env),
        layer=args.layer,
        timeout=args.timeout,
        isolate_network=args.isolate_network,
        memory_mb=args.memory,
        on_log=on_log,
        on_platform=on_log,
        on_response=on_response,
    )
    if result.init_error is not None:
        err.write(
            f"ramparts: init failed: {result.init_error.get('errorType')}: "
            f"{result.init_error.get('errorMessage')}\n"
        )
    failed = sum(not r.ok for r in result.responses)
    if failed:
        err.write(f"ramparts: {failed} of {len(result.responses)} invocations failed\n")
    err.flush()
    return result.exit_code
