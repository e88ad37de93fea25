"""File writes, creates, renames, deletes, permission changes, and sensitive reads."""

from __future__ import annotations

import pytest

from tests.sensor.conftest import run_case

# Writes outside /tmp go to a tmpfs mounted over /srv inside a mount namespace.
OUTSIDE = "/srv"


def test_writes_in_tmp_are_normal_work():
    r = run_case(
        """
import os, tempfile, json, pathlib
d = tempfile.mkdtemp()
attempt("open", lambda: open(d + "/cache.json", "w").write(json.dumps({"a": 1})))
attempt("pathlib", lambda: pathlib.Path(d, "b.txt").write_text("x"))
attempt("rename", lambda: os.rename(d + "/b.txt", d + "/c.txt"))
attempt("remove", lambda: os.remove(d + "/c.txt"))
attempt("devnull", lambda: open("/dev/null", "w").write("x"))
attempt("read_self", lambda: open(__file__).read()[:10])
import email.mime.text  # imports read stdlib files
SENSOR.flush()
"""
    )
    assert all(v["ok"] for v in r.results.values()), r.results
    assert r.alerts() == []
    assert r.total("file.write", "allow") >= 4


@pytest.mark.parametrize(
    ("name", "code", "expected_path", "op"),
    [
        ("plain", "open('/srv/a', 'w').close()", "/srv/a", "create"),
        ("dotdot", "open('/tmp/../srv/b', 'w').close()", "/srv/b", "create"),
        ("slashes", "open('//srv///c', 'w').close()", "/srv/c", "create"),
        ("relative", "os.chdir('/srv'); open('d', 'w').close()", "/srv/d", "create"),
        (
            "symlink",
            "os.symlink('/srv/e', '/tmp/ramparts-link-e'); open('/tmp/ramparts-link-e', 'w').close()",
            "/srv/e",
            "create",
        ),
        (
            "dir_fd",
            "fd = os.open('/srv', os.O_RDONLY); os.close(os.open('f', os.O_WRONLY | os.O_CREAT, dir_fd=fd))",
            "/srv/f",
            "create",
        ),
        ("os_open", "os.close(os.open('/srv/g', os.O_RDWR | os.O_CREAT))", "/srv/g", "create"),
        ("pathlib", "pathlib.Path('/srv/h').write_bytes(b'x')", "/srv/h", "create"),
        (
            "append",
            "open('/srv/i', 'w').close(); open('/srv/i', 'a').write('x')",
            "/srv/i",
            "append",
        ),
        ("mkdir", "os.mkdir('/srv/j')", "/srv/j", "mkdir"),
        ("chmod", "open('/srv/k','w').close(); os.chmod('/srv/k', 0o755)", "/srv/k", "chmod"),
        ("remove", "open('/srv/l','w').close(); os.remove('/srv/l')", "/srv/l", "delete"),
        ("unlink", "open('/srv/m','w').close(); os.unlink('/srv/m')", "/srv/m", "delete"),
        ("rmtree", "os.mkdir('/srv/n'); shutil.rmtree('/srv/n')", "/srv/n", "delete"),
        (
            "rename",
            "open('/srv/o1','w').close(); os.replace('/srv/o1', '/srv/o')",
            "/srv/o",
            "rename",
        ),
        ("truncate", "open('/srv/p','w').close(); os.truncate('/srv/p', 0)", "/srv/p", "truncate"),
        ("utime", "open('/srv/q','w').close(); os.utime('/srv/q')", "/srv/q", "utime"),
        ("sqlite", "import sqlite3; sqlite3.connect('/srv/r.db').close()", "/srv/r.db", "write"),
        (
            "copy",
            "open('/tmp/ramparts-s','w').close(); shutil.copy('/tmp/ramparts-s', '/srv/s')",
            "/srv/s",
            "create",
        ),
    ],
)
def test_writes_outside_tmp_are_seen_however_spelled(name, code, expected_path, op):
    r = run_case(
        f"""
import os, shutil, pathlib
attempt("op", lambda: exec({code!r}))
""",
        tmpfs=(OUTSIDE,),
    )
    alerts = r.alerts("default.write-outside-tmp")
    assert alerts, (r.stdout, r.stderr)
    assert any(a["path"] == expected_path and a["op"] == op for a in alerts), alerts
    assert r.results["op"]["ok"] is True, r.results  # monitor mode never blocks


def test_enforce_blocks_the_write_and_nothing_is_written():
    r = run_case(
        """
import os
attempt("write", lambda: open("/srv/payload", "w").write("x"))
attempt("exists", lambda: os.path.exists("/srv/payload"))
attempt("tmp_ok", lambda: open("/tmp/ramparts-ok", "w").write("fine"))
""",
        env={"RAMPARTS_MODE": "enforce"},
        tmpfs=(OUTSIDE,),
    )
    assert r.results["write"]["ramparts"] is True
    assert "default.write-outside-tmp" in r.results["write"]["msg"]
    assert r.results["exists"] == {"ok": True, "value": False}
    assert r.results["tmp_ok"]["ok"] is True


def test_persistence_writes_are_flagged_as_sensitive():
    r = run_case(
        """
attempt("cron", lambda: open("/etc/cron.d/ramparts-test", "w").write("* * * * * root sh"))
attempt("keys", lambda: open("/root/.ssh/authorized_keys", "a").write("ssh-ed25519 AAA"))
""",
        env={"RAMPARTS_MODE": "enforce"},
        tmpfs=("/etc/cron.d", "/root/.ssh"),
    )
    paths = {a["path"] for a in r.alerts("default.sensitive-write")}
    assert paths == {"/etc/cron.d/ramparts-test", "/root/.ssh/authorized_keys"}
    assert r.results["cron"]["ramparts"] and r.results["keys"]["ramparts"]


@pytest.mark.parametrize(
    "spelling",
    [
        "'/proc/self/environ'",
        "f'/proc/{os.getpid()}/environ'",
        "'/proc/thread-self/environ'",
        "'//proc//self/./environ'",
        "'/proc/self/../self/environ'",
        "'/dev/fd/../environ'",
        "f'/proc/{os.getpid()}/task/{os.getpid()}/environ'",
        "link_to('/proc/self/environ')",
        "'/proc/1/environ'",
    ],
)
def test_reads_of_process_environment_are_seen_however_spelled(spelling):
    r = run_case(
        f"""
import os
def link_to(target):
    path = '/tmp/ramparts-innocent-' + str(os.getpid())
    os.symlink(target, path)
    return path
path = {spelling}
attempt("read", lambda: len(open(path, "rb").read()))
attempt("os_open", lambda: os.close(os.open(path, os.O_RDONLY)))
"""
    )
    alerts = r.alerts("default.sensitive-read")
    assert alerts, (r.stdout, r.stderr)
    assert all(a["path"].endswith("/environ") and a["path"].startswith("/proc/") for a in alerts)
    # monitor: seen, not blocked (pid 1's environment may still be off limits to the kernel)
    assert r.results["read"]["ok"] is True or r.results["read"]["ramparts"] is False


def test_enforce_blocks_environ_reads_before_any_byte_is_read():
    r = run_case(
        """
import pathlib
attempt("read", lambda: pathlib.Path("/proc/self/environ").read_bytes())
attempt("shadow", lambda: open("/etc/shadow").read())
""",
        env={"RAMPARTS_MODE": "enforce", "SECRET_TOKEN": "hunter2"},
    )
    assert r.results["read"]["ramparts"] is True
    assert r.results["shadow"]["ramparts"] is True
    assert "hunter2" not in r.stdout


def test_hard_link_to_a_sensitive_file_is_flagged():
    r = run_case(
        """
import os
attempt("link", lambda: os.link("/etc/shadow", "/tmp/ramparts-not-shadow"))
""",
        env={"RAMPARTS_MODE": "enforce"},
    )
    assert r.results["link"]["ramparts"] is True
    assert r.alerts("default.sensitive-write")[0]["op"] == "link"


def test_policy_write_allowlist_replaces_the_default():
    policy = '{"files": {"write": ["/tmp/cache/**", "/srv/data/*.json"]}}'
    r = run_case(
        """
import os
os.makedirs("/tmp/cache/x", exist_ok=True)
os.makedirs("/srv/data", exist_ok=True)
import ramparts
ramparts.install()
attempt("cache", lambda: open("/tmp/cache/x/1.bin", "w").close())
attempt("json", lambda: open("/srv/data/a.json", "w").close())
attempt("txt", lambda: open("/srv/data/a.txt", "w").close())
attempt("tmp_other", lambda: open("/tmp/other", "w").close())
""",
        env={"RAMPARTS_POLICY": policy, "RAMPARTS_MODE": "enforce"},
        tmpfs=(OUTSIDE,),
        install=False,
    )
    res = r.results
    assert res["cache"]["ok"] and res["json"]["ok"]
    assert res["txt"]["ramparts"] and res["tmp_other"]["ramparts"]
    assert {a["path"] for a in r.alerts("policy.files.write")} == {"/srv/data/a.txt", "/tmp/other"}


def test_bytecode_caching_by_the_interpreter_is_not_the_function_writing(tmp_path):
    r = run_case(
        """
import os, sys
os.makedirs("/srv/code", exist_ok=True)
open("/srv/code/mymod.py", "w").write("X = 1\\n")
import ramparts
SENSOR = ramparts.install()
sys.path.insert(0, "/srv/code")
sys.dont_write_bytecode = False
import mymod
attempt("pyc", lambda: sorted(os.listdir("/srv/code/__pycache__")))
SENSOR.flush()
""",
        tmpfs=(OUTSIDE,),
        install=False,
    )
    assert r.results["pyc"]["ok"] and r.results["pyc"]["value"], r.results
    assert r.alerts() == []


def test_a_directory_swapped_for_a_symlink_between_writes_is_seen():
    r = run_case(
        """
import os
os.makedirs("/tmp/work/out")
open("/tmp/work/out/1", "w").close()          # ordinary, and its directory is now cached
os.rename("/tmp/work/out", "/tmp/work/was")
os.symlink("/srv", "/tmp/work/out")            # the same spelling now points outside /tmp
attempt("second", lambda: open("/tmp/work/out/2", "w").close())
""",
        env={"RAMPARTS_MODE": "enforce"},
        tmpfs=(OUTSIDE,),
    )
    assert r.results["second"]["ramparts"] is True
    [alert] = r.alerts()
    assert alert["path"] == "/srv/2" and alert["requested"] == "/tmp/work/out/2"


def test_a_directory_swapped_by_a_child_process_is_seen():
    # GIVEN a directory the sensor has confirmed, swapped by a program it started
    r = run_case(
        """
import os, subprocess
os.makedirs("/tmp/work/out")
open("/tmp/work/out/1", "w").close()
subprocess.run(["sh", "-c", "mv /tmp/work/out /tmp/work/was && ln -s /srv /tmp/work/out"])
attempt("second", lambda: open("/tmp/work/out/2", "w").close())
""",
        env={
            "RAMPARTS_MODE": "enforce",
            "RAMPARTS_POLICY": '{"process": {"allow": ["/usr/bin/dash", "/bin/sh", "/usr/bin/mv", "/bin/mv", "/usr/bin/ln", "/bin/ln"]}}',
        },
        tmpfs=(OUTSIDE,),
    )
    assert r.results["second"]["ramparts"] is True
    assert [a["path"] for a in r.alerts()] == ["/srv/2"]


def test_a_symlink_or_hard_link_in_an_already_confirmed_directory_is_still_followed():
    r = run_case(
        """
import os, ramparts
os.makedirs("/tmp/d")
os.symlink("/srv/target", "/tmp/d/link")          # left by an earlier invocation
@ramparts.protect
def handler(event, context):
    open("/tmp/d/ok", "w").close()                # confirms /tmp/d for this invocation
    attempt("through_link", lambda: open("/tmp/d/link", "w").close())
    attempt("plain", lambda: open("/tmp/d/ok2", "w").close())
handler({}, None)
""",
        env={"RAMPARTS_MODE": "enforce"},
        tmpfs=(OUTSIDE,),
    )
    assert r.results["through_link"]["ramparts"] is True
    assert r.results["plain"] == {"ok": True, "value": None}
    [alert] = r.alerts()
    assert alert["path"] == "/srv/target" and alert["requested"] == "/tmp/d/link"
    [summary] = [s for s in r.summaries() if s["phase"] == "invoke"]
    assert summary["counts"]["file.write"] == {"allow": 2, "alert": 0, "block": 1}
