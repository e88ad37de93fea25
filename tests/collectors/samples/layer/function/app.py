"""A function that does a bit of everything the sensor watches, to record real sensor lines.

Run by ``record.py`` (next to this directory) under the real runtime client, in a network
namespace that has only loopback: no packet leaves the machine, connects to outside
addresses fail at once, and every file it touches is under /tmp/ramparts-sample (or in a
directory that does not exist, so that the write fails). Never deploy it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import socket
import subprocess
import sys
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)
WORK = "/tmp/ramparts-sample"


def _attempt(results: dict[str, str], name: str, fn: Any) -> None:
    try:
        fn()
        results[name] = "ok"
    except Exception as exc:  # every attempt may fail (no route, blocked): record it
        results[name] = type(exc).__name__


def _network(results: dict[str, str], stub: str) -> None:
    host, _, port = stub.rpartition("/")[2].partition(":")
    _attempt(results, "dns", lambda: socket.getaddrinfo("partner.example.com", 443))
    _attempt(results, "loopback", lambda: socket.create_connection((host, int(port)), 2).close())
    _attempt(results, "tcp", lambda: socket.create_connection(("203.0.113.7", 443), 1).close())
    _attempt(results, "tcp6", lambda: socket.create_connection(("2001:db8::7", 8443), 1).close())
    _attempt(results, "imds", lambda: socket.create_connection(("169.254.169.254", 80), 1).close())

    def udp() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\x00", ("198.51.100.53", 53))

    def unix() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(WORK + "/agent.sock")

    def raw() -> None:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()

    _attempt(results, "udp", udp)
    _attempt(results, "unix", unix)
    _attempt(results, "raw", raw)


def _files(results: dict[str, str]) -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    d = WORK + "/data"
    _attempt(results, "mkdir", lambda: os.makedirs(d))

    def writes() -> None:
        with open(d + "/a.txt", "w") as fh:  # create
            fh.write("x")
        with open(d + "/a.txt", "a") as fh:  # append
            fh.write("y")
        with open(d + "/a.txt", "r+") as fh:  # write
            fh.write("z")

    _attempt(results, "writes", writes)
    _attempt(results, "truncate", lambda: os.truncate(d + "/a.txt", 0))
    _attempt(results, "chmod", lambda: os.chmod(d + "/a.txt", 0o755))
    _attempt(results, "chown", lambda: os.chown(d + "/a.txt", os.getuid(), os.getgid()))
    _attempt(results, "utime", lambda: os.utime(d + "/a.txt"))
    _attempt(results, "xattr", lambda: os.setxattr(d + "/a.txt", "user.sample", b"1"))
    _attempt(results, "symlink", lambda: os.symlink(d + "/a.txt", d + "/soft"))
    _attempt(results, "link", lambda: os.link(d + "/a.txt", d + "/hard"))
    _attempt(results, "rename", lambda: os.rename(d + "/a.txt", d + "/b.txt"))
    _attempt(results, "delete", lambda: os.remove(d + "/b.txt"))
    # outside /tmp, in a directory that does not exist: the sensor sees it, the write fails
    _attempt(results, "outside", lambda: open("/var/ramparts-no-such-dir/cache.json", "w"))  # noqa: SIM115

    def sensitive() -> None:
        with open("/proc/self/environ", "rb") as fh:
            fh.read(1)

    _attempt(results, "environ", sensitive)
    shutil.rmtree(WORK, ignore_errors=True)


def _process(results: dict[str, str]) -> None:
    _attempt(results, "echo", lambda: subprocess.run(["/bin/echo", "hello"], check=True))
    _attempt(results, "pipe", lambda: subprocess.run("ls /tmp | wc -l", shell=True, check=True))
    _attempt(results, "inline", lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": "/tmp/libhook.so"}
    _attempt(results, "preload", lambda: subprocess.run(["true"], env=env, check=False))

    def putenv() -> None:
        os.putenv("LD_PRELOAD", "/tmp/libhook.so")
        os.unsetenv("LD_PRELOAD")

    _attempt(results, "putenv", putenv)

    def fork_exec() -> None:
        pid = os.fork()
        if pid == 0:  # the child: its line carries its own pid
            try:
                os.execv("/bin/true", ["true", "--from-child"])
            finally:
                os._exit(127)
        os.waitpid(pid, 0)

    _attempt(results, "fork_exec", fork_exec)


def _native(results: dict[str, str]) -> None:
    def libc() -> None:
        lib = ctypes.CDLL("libc.so.6")
        getattr(lib, "system")  # looked up, never called  # noqa: B009

    _attempt(results, "libc", libc)
    _attempt(results, "dlopen_null", lambda: ctypes.CDLL(None))
    _attempt(results, "extension", lambda: __import__("_bz2"))


def _aws(results: dict[str, str]) -> None:
    import boto3

    ddb = boto3.client("dynamodb")
    _attempt(results, "describe", lambda: ddb.describe_table(TableName="media"))
    _attempt(results, "put", lambda: ddb.put_item(TableName="media", Item={"k": {"S": "1"}}))
    _attempt(
        results,
        "update",
        lambda: ddb.update_item(TableName="media", Key={"k": {"S": "1"}}),
    )
    _attempt(results, "delete", lambda: ddb.delete_item(TableName="media", Key={"k": {"S": "1"}}))
    _attempt(results, "whoami", lambda: boto3.client("sts").get_caller_identity())
    _attempt(results, "users", lambda: boto3.client("iam").list_users())


def _tamper(results: dict[str, str]) -> None:
    _attempt(results, "audit_hook", lambda: sys.addaudithook(lambda *_: None))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = str(event.get("action"))
    print(f"media-worker: {action}")  # a plain line on stdout
    logger.info("handling %s", action)  # the runtime's logging format
    results: dict[str, str] = {}
    if action == "network":
        _network(results, os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:9"))
    elif action == "files":
        _files(results)
    elif action == "process":
        _process(results)
    elif action == "native":
        _native(results)
    elif action == "aws":
        _aws(results)
    elif action == "tamper":
        _tamper(results)
    return {"action": action, "results": results}
