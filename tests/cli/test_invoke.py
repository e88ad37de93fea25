"""`ramparts invoke`: a handler run the way Lambda runs it, checked from the outside.

Real processes throughout: the local Runtime API, the real awslambdaric runtime, real
wrappers and, for network isolation, a real network namespace.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from ramparts_cli import _netns
from ramparts_cli._runtime_api import PendingInvocation, RuntimeApiServer
from ramparts_cli.invoke import FAKE_CREDENTIALS, SOURCE_LAYER_DIR, run_invocations

requires_netns = pytest.mark.skipif(
    not _netns.netns_available(),
    reason=f"no network namespace can be created here: {_netns.unavailable_reason()}",
)


def pid_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie still answers kill(0), but it has exited
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


# ---------------------------------------------------------------------------------------
# Responses and the warm sandbox


def test_each_event_is_one_invocation_of_the_same_warm_sandbox(ramparts, functions):
    # GIVEN three events for a handler that echoes its event and its pid
    # WHEN they are invoked
    started = time.monotonic()
    run = ramparts(
        "invoke", "app.handler", "--code", functions / "echo",
        "--event", '{"n": 1}', "--event", '{"n": 2}', "--event", '{"n": 3}',
    )  # fmt: skip
    elapsed = time.monotonic() - started

    # THEN stdout holds the three responses, in order, one JSON line each
    assert run.exit_code == 0, run.stderr
    responses = run.responses
    assert [r["event"] for r in responses] == [{"n": 1}, {"n": 2}, {"n": 3}]
    # AND one process served them all (warm), each with its own request id
    assert len({r["pid"] for r in responses}) == 1
    assert len({r["request_id"] for r in responses}) == 3
    # AND the log stream (stderr) has Lambda's platform lines, not the responses
    assert run.stderr.count("START RequestId:") == 3
    assert run.stderr.count("REPORT RequestId:") == 3
    assert "Init Duration" in run.stderr
    # AND the sandbox is gone afterwards
    assert pid_is_gone(responses[0]["pid"])
    assert elapsed < 5, f"three invocations took {elapsed:.2f}s"


def test_no_event_means_one_invocation_with_an_empty_object(ramparts, functions):
    run = ramparts("invoke", "app.handler", "--code", functions / "echo")

    assert run.exit_code == 0, run.stderr
    assert [r["event"] for r in run.responses] == [{}]


def test_events_can_come_from_files(ramparts, functions, tmp_path):
    event_file = tmp_path / "order.json"
    event_file.write_text('{"order": 42,\n "items": ["a"]}\n')

    run = ramparts(
        "invoke", "app.handler", "--code", functions / "echo", "--event", f"@{event_file}"
    )

    assert run.exit_code == 0, run.stderr
    assert run.responses[0]["event"] == {"order": 42, "items": ["a"]}


def test_the_context_is_lambdas(functions):
    result = run_invocations("app.handler", functions / "echo", [{}], timeout=7)

    response = result.responses[0]
    body = response.payload
    code_dir = str(functions / "echo")
    assert body["request_id"] == response.request_id
    assert body["function_name"] == "echo"
    assert body["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:echo"
    assert 0 < body["remaining_ms"] <= 7000
    assert body["cwd"] == code_dir
    # Lambda's order: the function's code first, then the layer's python directory
    assert body["sys_path"][:2] == [code_dir, str(SOURCE_LAYER_DIR)]


def test_the_environment_is_lambdas_and_the_callers_credentials_stay_out(functions, monkeypatch):
    # GIVEN a caller whose shell holds real-looking AWS credentials and a profile
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACALLERSOWNKEY000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "callers-secret")
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("SOME_CALLER_VARIABLE", "x")
    names = [
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "SOME_CALLER_VARIABLE", "AWS_LAMBDA_RUNTIME_API", "_HANDLER", "LAMBDA_TASK_ROOT",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_EXECUTION_ENV", "TZ",
        "PYTHONUNBUFFERED", "LAMBDA_RUNTIME_DIR", "PATH",
    ]  # fmt: skip

    # WHEN the function reads its environment
    body = run_invocations("app.handler", functions / "echo", [{"env": names}]).payloads[0]
    env = body["env"]

    # THEN it sees Lambda's variables and fake credentials, none of the caller's
    for name, value in FAKE_CREDENTIALS.items():
        assert env[name] == value
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert env["AWS_PROFILE"] is None
    assert env["SOME_CALLER_VARIABLE"] is None
    assert env["PATH"] == os.environ["PATH"]
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["_HANDLER"] == "app.handler"
    assert env["LAMBDA_TASK_ROOT"] == str(functions / "echo")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/echo"
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_python3.{sys.version_info.minor}"
    assert env["TZ"] == ":UTC"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LAMBDA_RUNTIME_DIR"]


def test_env_options_are_applied_last(ramparts, functions):
    event = json.dumps({"env": ["GREETING", "AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "EMPTY"]})

    run = ramparts(
        "invoke", "app.handler", "--code", functions / "echo", "--event", event,
        "--env", "GREETING=hello=world", "--env", "AWS_REGION=eu-west-1",
        "--env", "AWS_LAMBDA_FUNCTION_NAME=orders", "--env", "EMPTY=",
    )  # fmt: skip

    assert run.exit_code == 0, run.stderr
    body = run.responses[0]
    assert body["env"] == {
        "GREETING": "hello=world",
        "AWS_REGION": "eu-west-1",
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "EMPTY": "",
    }
    # the function's identity follows the overrides
    assert body["function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:orders"


# ---------------------------------------------------------------------------------------
# Errors, as Lambda reports them


def test_a_handler_error_is_returned_in_lambdas_shape(ramparts, functions):
    run = ramparts(
        "invoke", "app.handler", "--code", functions / "raises", "--event", '{"order": 7}'
    )

    assert run.exit_code == 1
    [error] = run.responses
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert error["errorType"] == "OrderRejectedError"
    assert error["errorMessage"] == "order 7 rejected"
    assert error["requestId"]
    assert any("app.py" in frame for frame in error["stackTrace"])
    # the runtime also logs it, and the CLI says what happened
    assert "[ERROR] OrderRejectedError: order 7 rejected" in run.stderr
    assert "1 of 1 invocations failed" in run.stderr


def test_one_failed_invocation_fails_the_run_but_the_others_still_answer(functions):
    result = run_invocations(
        "app.handler", functions / "sleepy", [{"seconds": 0}, {"exit": 3}, {"seconds": 0}]
    )

    first, crashed, last = result.responses
    assert first.ok and last.ok
    assert crashed.payload["errorType"] == "Runtime.ExitError"
    assert crashed.payload["errorMessage"].endswith("Runtime exited with error: exit status 3")
    # the crashed sandbox is replaced by a cold one, as Lambda does
    assert first.payload["pid"] != last.payload["pid"]
    assert last.init_duration_ms is not None
    assert result.exit_code == 1


def test_an_import_error_is_an_init_error(ramparts, functions):
    run = ramparts("invoke", "app.handler", "--code", functions / "import_error", "--event", "{}")

    assert run.exit_code == 1
    [error] = run.responses
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "ramparts_fixture_missing_dependency" in error["errorMessage"]
    assert error["requestId"]
    assert "init failed: Runtime.ImportModuleError" in run.stderr


def test_every_invocation_retries_a_failed_init(functions):
    result = run_invocations("app.handler", functions / "import_error", [{}, {}])

    assert [r.error_type for r in result.responses] == ["Runtime.ImportModuleError"] * 2
    assert result.init_error is not None
    assert result.init_error["errorType"] == "Runtime.ImportModuleError"
    assert result.exit_code == 1


def test_a_missing_handler_function_is_lambdas_handler_not_found(functions):
    result = run_invocations("app.no_such_function", functions / "echo")

    assert result.responses[0].error_type == "Runtime.HandlerNotFound"
    assert result.init_error is not None


def test_an_invocation_past_its_timeout_is_killed(functions):
    # GIVEN a sandbox warmed by one quick event, then an event that sleeps past the timeout
    started = time.monotonic()
    result = run_invocations(
        "app.handler",
        functions / "sleepy",
        [{"seconds": 0}, {"seconds": 30}, {"seconds": 0}],
        timeout=0.5,
    )
    elapsed = time.monotonic() - started

    warm, timed_out, after = result.responses
    # THEN the slow one fails the way Lambda says it
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.50 seconds" in timed_out.payload["errorMessage"]
    assert 500 <= timed_out.duration_ms < 2000
    # AND its sandbox was killed: the next event gets a cold one
    assert pid_is_gone(warm.payload["pid"])
    assert after.ok and after.payload["pid"] != warm.payload["pid"]
    assert result.exit_code == 1
    assert elapsed < 3


def test_timeout_from_the_command_line(ramparts, functions):
    run = ramparts(
        "invoke", "app.handler", "--code", functions / "sleepy",
        "--event", '{"seconds": 30}', "--timeout", "0.3",
    )  # fmt: skip

    assert run.exit_code == 1
    [error] = run.responses
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.30 seconds" in run.stderr


# ---------------------------------------------------------------------------------------
# The log stream


def test_the_log_stream_is_the_runtimes_stdout_and_stderr_line_by_line(ramparts, functions):
    result = run_invocations("app.handler", functions / "logs", [{}])

    lines = result.log_lines
    assert lines[0] == "cold start: module imported"
    expected_order = ["line one on stdout", "line two on stderr", "logged at info", '"ramparts"']
    positions = [next(i for i, line in enumerate(lines) if s in line) for s in expected_order]
    assert positions == sorted(positions)
    assert any(line.startswith("[INFO]") and response_id_in(line, result) for line in lines)

    # and from the command line: the logs on stderr, only the response on stdout
    run = ramparts("invoke", "app.handler", "--code", functions / "logs")
    assert run.stdout == '"done"\n'
    assert "line two on stderr" in run.stderr
    start = run.stderr.index("START RequestId")
    assert start < run.stderr.index("line one on stdout") < run.stderr.index("END RequestId")


def response_id_in(line: str, result) -> bool:
    return result.responses[0].request_id in line


# ---------------------------------------------------------------------------------------
# Mistakes a user makes


def test_a_missing_handler_file_is_a_clear_usage_error(ramparts, functions):
    run = ramparts("invoke", "lambda_function.handler", "--code", functions / "echo")

    assert run.exit_code == 2
    assert run.stdout == ""
    assert "handler module 'lambda_function' not found" in run.stderr
    assert "lambda_function.py" in run.stderr
    assert "hint:" in run.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["app.handler", "--code", "/no/such/dir"], "not a directory"),
        (["handler", "--code", "{echo}"], "expected MODULE.FUNCTION"),
        (["app.handler", "--code", "{echo}", "--event", "{not json"], "not valid JSON"),
        (["app.handler", "--code", "{echo}", "--event", "@/no/such/event.json"], "cannot read"),
        (["app.handler", "--code", "{echo}", "--layer", "/no/such/layer.zip"], "--layer"),
        (
            ["app.handler", "--code", "{echo}", "--env", "AWS_LAMBDA_EXEC_WRAPPER=/opt/nope"],
            "does not exist",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_message(ramparts, functions, argv, message):
    argv = [a.replace("{echo}", str(functions / "echo")) for a in argv]

    run = ramparts("invoke", *argv)

    assert run.exit_code == 2
    assert message in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("bad", [["--timeout", "0"], ["--timeout", "soon"], ["--env", "NOEQUALS"]])
def test_malformed_options_are_argparse_usage_errors(ramparts, functions, bad):
    run = ramparts("invoke", "app.handler", "--code", functions / "echo", *bad)

    assert run.exit_code == 2
    assert "usage:" in run.stderr


# ---------------------------------------------------------------------------------------
# AWS_LAMBDA_EXEC_WRAPPER


def test_the_exec_wrapper_runs_the_runtime(ramparts, functions, write_script):
    # GIVEN a wrapper that marks the environment and then runs the runtime's command
    wrapper = write_script(
        "wrapper", 'export WRAPPED_BY=test-wrapper\nexport WRAPPED_ARGS="$*"\nexec "$@"\n'
    )

    run = ramparts(
        "invoke", "app.handler", "--code", functions / "echo",
        "--env", f"AWS_LAMBDA_EXEC_WRAPPER={wrapper}",
        "--event", '{"env": ["WRAPPED_BY", "WRAPPED_ARGS"]}',
    )  # fmt: skip

    # THEN the handler ran under it, with Lambda's arguments: the interpreter, the bootstrap
    assert run.exit_code == 0, run.stderr
    env = run.responses[0]["env"]
    assert env["WRAPPED_BY"] == "test-wrapper"
    interpreter, bootstrap = env["WRAPPED_ARGS"].split()
    assert os.path.basename(interpreter).startswith("python")
    assert bootstrap.endswith("_bootstrap.py")


def test_a_wrapper_under_opt_is_taken_from_the_layer(functions, tmp_path, write_script):
    # GIVEN a layer directory laid out like /opt, holding a wrapper
    (tmp_path / "layer" / "python").mkdir(parents=True)
    write_script("layer/bin-wrapper", 'export WRAPPED_BY=layer-wrapper\nexec "$@"\n')

    result = run_invocations(
        "app.handler",
        functions / "echo",
        [{"env": ["WRAPPED_BY", "AWS_LAMBDA_EXEC_WRAPPER"]}],
        env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin-wrapper"},
        layer=tmp_path / "layer",
    )

    body = result.payloads[0]
    assert body["env"]["WRAPPED_BY"] == "layer-wrapper"
    assert body["env"]["AWS_LAMBDA_EXEC_WRAPPER"] == str(tmp_path / "layer" / "bin-wrapper")
    assert body["sys_path"][1] == str(tmp_path / "layer" / "python")


def test_a_wrapper_without_the_exec_bit_is_refused(ramparts, functions, write_script):
    wrapper = write_script("wrapper", 'exec "$@"\n', executable=False)

    run = ramparts(
        "invoke", "app.handler", "--code", functions / "echo",
        "--env", f"AWS_LAMBDA_EXEC_WRAPPER={wrapper}",
    )  # fmt: skip

    assert run.exit_code == 2
    assert "not executable" in run.stderr
    assert "chmod +x" in run.stderr


def test_a_wrapper_that_fails_is_an_init_error(functions, write_script):
    wrapper = write_script("wrapper", "echo 'wrapper: cannot start' >&2\nexit 7\n")

    result = run_invocations(
        "app.handler", functions / "echo", env={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)}
    )

    assert result.init_error is not None
    assert result.init_error["errorType"] == "Runtime.ExitError"
    assert "exit status 7" in result.init_error["errorMessage"]
    assert "wrapper: cannot start" in result.log_lines
    assert result.exit_code == 1


# ---------------------------------------------------------------------------------------
# --isolate-network


@requires_netns
@pytest.mark.netns
def test_isolated_invocations_cannot_reach_the_metadata_address(ramparts, functions):
    # GIVEN a handler that connects to 169.254.169.254 and to a loopback listener of its own
    run = ramparts("invoke", "app.handler", "--code", functions / "netprobe", "--isolate-network")

    # THEN the metadata address is unreachable at once, and loopback still works
    assert run.exit_code == 0, run.stderr
    assert run.responses == [{"metadata": "ENETUNREACH", "loopback": "connected"}]
    assert "START RequestId" in run.stderr


@requires_netns
@pytest.mark.netns
def test_isolated_invocations_behave_like_local_ones(functions):
    result = run_invocations(
        "app.handler",
        functions / "sleepy",
        [{"seconds": 0}, {"seconds": 0}, {"seconds": 30}],
        timeout=0.5,
        isolate_network=True,
    )

    first, second, timed_out = result.responses
    assert first.payload["pid"] == second.payload["pid"]
    assert timed_out.error_type == "Sandbox.Timedout"
    assert pid_is_gone(first.payload["pid"])
    assert result.exit_code == 1


@requires_netns
@pytest.mark.netns
def test_isolated_command_has_only_loopback():
    probe = (
        "import errno, socket\n"
        "s = socket.socket()\n"
        "try:\n"
        "    s.connect(('169.254.169.254', 80)); print('connected')\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno])\n"
        "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n"
        "socket.create_connection(l.getsockname()); print('loopback ok')\n"
    )
    started = time.monotonic()
    out = subprocess.run(
        _netns.isolated_command([sys.executable, "-c", probe]),
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout  # fmt: skip

    assert out.split() == ["ENETUNREACH", "loopback", "ok"]
    assert time.monotonic() - started < 5  # fails at once, no connect timeout


# ---------------------------------------------------------------------------------------
# The Runtime API itself, spoken to over HTTP as the runtime speaks to it


def test_runtime_api_holds_next_until_there_is_an_invocation():
    server = RuntimeApiServer()
    server.start()
    try:
        host, port = server.address.split(":")
        got: dict = {}

        def runtime() -> None:
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", "/2018-06-01/runtime/invocation/next")
            resp = conn.getresponse()
            got["status"], got["headers"], got["body"] = resp.status, resp.headers, resp.read()
            # the same keep-alive connection posts the response
            conn.request("POST", "/2018-06-01/runtime/invocation/req-1/response", b'{"ok":1}')
            reply = conn.getresponse()
            got["post"] = reply.status
            reply.read()
            conn.request("POST", "/2018-06-01/runtime/invocation/unknown/response", b"{}")
            got["unknown"] = conn.getresponse().status
            conn.close()

        thread = threading.Thread(target=runtime)
        thread.start()
        deadline = time.monotonic() + 5
        while not server.runtime_waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.runtime_waiting  # held open: nothing to hand out yet
        assert "status" not in got

        server.push(PendingInvocation("req-1", b'{"a":1}', 1_700_000_000_000, "arn:x", "Root=1"))
        thread.join(timeout=5)

        assert got["status"] == 200
        assert got["body"] == b'{"a":1}'
        assert got["headers"]["Lambda-Runtime-Aws-Request-Id"] == "req-1"
        assert got["headers"]["Lambda-Runtime-Deadline-Ms"] == "1700000000000"
        assert got["headers"]["Lambda-Runtime-Invoked-Function-Arn"] == "arn:x"
        assert got["headers"]["Lambda-Runtime-Trace-Id"] == "Root=1"
        assert got["post"] == 202
        assert got["unknown"] == 400
        outcome = server.outcome("req-1")
        assert outcome is not None and outcome.kind == "response" and outcome.body == b'{"ok":1}'
    finally:
        server.close()
