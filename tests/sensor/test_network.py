"""Outbound connections and DNS: real sockets, attack traffic only inside a network namespace."""

from __future__ import annotations

import pytest

from tests.sensor.conftest import run_case

SERVER = """
import socket, threading
def serve_tcp(family=socket.AF_INET, host="127.0.0.1"):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.bind((host, 0)); srv.listen(16)
    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.close()
    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]
"""

IMDS_SPELLINGS = [
    ("169.254.169.254", "AF_INET"),
    ("2852039166", "AF_INET"),
    ("0xa9fea9fe", "AF_INET"),
    ("0251.0376.0251.0376", "AF_INET"),
    ("169.254.43518", "AF_INET"),
    ("::ffff:169.254.169.254", "AF_INET6"),
    ("::ffff:a9fe:a9fe", "AF_INET6"),
    ("64:ff9b::a9fe:a9fe", "AF_INET6"),
    ("fd00:ec2::254", "AF_INET6"),
]


def test_loopback_connections_are_counted_not_reported():
    # GIVEN a function that talks to a loopback server over IPv4, IPv6 and asyncio
    r = run_case(
        SERVER
        + """
import socket, asyncio
p4 = serve_tcp()
attempt("v4", lambda: socket.create_connection(("127.0.0.1", p4)).close())
p6 = serve_tcp(socket.AF_INET6, "::1")
attempt("v6", lambda: socket.create_connection(("::1", p6)).close())
async def main():
    reader, writer = await asyncio.open_connection("127.0.0.1", p4)
    writer.close()
attempt("asyncio", lambda: asyncio.run(main()))
SENSOR.flush()
""",
        isolate=True,
    )
    # THEN everything worked, nothing was reported, and the summary counted the connections
    assert all(v["ok"] for v in r.results.values()), r.results
    assert r.alerts() == []
    assert r.total("network.connect", "allow") >= 3


@pytest.mark.parametrize(("spelling", "family"), IMDS_SPELLINGS)
def test_credential_endpoint_is_seen_however_spelled(spelling, family):
    # GIVEN monitor mode and IMDS written another way
    r = run_case(
        f"""
import socket
s = socket.socket(socket.{family}, socket.SOCK_STREAM)
s.settimeout(2)
attempt("connect", lambda: s.connect(({spelling!r}, 80)))
""",
        isolate=True,
    )
    # THEN the connection is reported as the credential endpoint with the canonical address
    [alert] = r.alerts("default.credential-endpoint")
    assert alert["verdict"] == "alert"
    assert alert["port"] == 80
    assert alert["ip"] in (
        "169.254.169.254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "fd00:ec2::254",
    )
    assert alert["location"]["file"].endswith("case.py")
    # AND monitor mode did not block it: the namespace had no route
    assert r.results["connect"]["ok"] is False
    assert r.results["connect"]["ramparts"] is False


@pytest.mark.parametrize("spelling", ["169.254.169.254", "0xa9fea9fe", "::ffff:169.254.169.254"])
def test_enforce_blocks_credential_endpoint_with_a_clear_error(spelling):
    family = "AF_INET6" if ":" in spelling else "AF_INET"
    r = run_case(
        f"""
import socket
s = socket.socket(socket.{family}, socket.SOCK_STREAM)
attempt("connect", lambda: s.connect(({spelling!r}, 80)))
attempt("still_running", lambda: 1 + 1)
""",
        env={"RAMPARTS_MODE": "enforce"},
        isolate=True,
    )
    res = r.results["connect"]
    assert res["ramparts"] is True and res["type"] == "RampartsBlocked"
    assert "Ramparts" in res["msg"] and "default.credential-endpoint" in res["msg"]
    assert r.results["still_running"] == {"ok": True, "value": 2}
    [block] = r.alerts("default.credential-endpoint")
    assert block["verdict"] == "block"


def test_names_that_resolve_to_the_credential_endpoint_are_caught():
    # GIVEN a name that resolves to IMDS (DNS rebinding, a hosts entry, an attacker's domain)
    r = run_case(
        """
import socket, urllib.request
attempt("create_connection", lambda: socket.create_connection(("innocent.test", 80), timeout=2))
s = socket.socket()
attempt("connect_by_name", lambda: s.connect(("innocent.test", 80)))
attempt("urllib", lambda: urllib.request.urlopen("http://innocent.test/latest/meta-data/", timeout=2))
""",
        hosts={"innocent.test": "169.254.169.254"},
    )
    alerts = r.alerts("default.credential-endpoint")
    assert alerts, r.stdout
    assert {a["host"] for a in alerts} == {"innocent.test"}
    assert {a["ip"] for a in alerts} == {"169.254.169.254"}


def test_ecs_and_eks_credential_endpoints_and_udp():
    r = run_case(
        """
import socket
for ip in ("169.254.170.2", "169.254.170.23"):
    s = socket.socket(); attempt(ip, lambda: s.connect((ip, 80)))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("udp", lambda: u.sendto(b"x", ("169.254.169.254", 53)))
""",
        isolate=True,
    )
    ips = {(a["ip"], a["proto"]) for a in r.alerts("default.credential-endpoint")}
    assert ips == {("169.254.170.2", "tcp"), ("169.254.170.23", "tcp"), ("169.254.169.254", "udp")}


def test_asyncio_connection_to_credential_endpoint_is_blocked_in_enforce():
    r = run_case(
        """
import asyncio
async def main():
    await asyncio.open_connection("169.254.169.254", 80)
attempt("asyncio", lambda: asyncio.run(main()))
""",
        env={"RAMPARTS_MODE": "enforce"},
        isolate=True,
    )
    assert r.results["asyncio"]["ramparts"] is True
    assert r.alerts("default.credential-endpoint")[0]["verdict"] == "block"


def test_egress_policy_allows_listed_destinations_and_reports_others():
    policy = (
        '{"egress": {"allow": ["10.0.0.0/8:443", "api.partner.test:443"]},'
        ' "dns": {"allow": ["api.partner.test"]}}'
    )
    r = run_case(
        """
import socket
def go(addr):
    s = socket.socket(); s.settimeout(1)
    return s.connect(addr)
attempt("allowed_cidr", lambda: go(("10.1.2.3", 443)))
attempt("wrong_port", lambda: go(("10.1.2.3", 22)))
attempt("allowed_name", lambda: socket.create_connection(("api.partner.test", 443), timeout=1))
attempt("other", lambda: go(("192.0.2.10", 443)))
attempt("dns_other", lambda: socket.getaddrinfo("exfil.evil.test", 443))
SENSOR.flush()
""",
        env={"RAMPARTS_POLICY": policy, "RAMPARTS_MODE": "enforce"},
        hosts={"api.partner.test": "203.0.113.5", "exfil.evil.test": "203.0.113.66"},
    )
    res = r.results
    # allowed ones were attempted (and failed for lack of a route), the rest were blocked
    assert res["allowed_cidr"]["ramparts"] is False
    assert res["allowed_name"]["ramparts"] is False
    assert res["wrong_port"]["ramparts"] is True
    assert res["other"]["ramparts"] is True
    assert res["dns_other"]["ramparts"] is True
    blocked = {(a["rule"], a.get("ip") or a.get("host")) for a in r.alerts()}
    assert blocked == {
        ("policy.egress", "10.1.2.3"),
        ("policy.egress", "192.0.2.10"),
        ("policy.dns", "exfil.evil.test"),
    }


def test_dns_lookups_of_metadata_names_are_flagged():
    r = run_case(
        """
import socket
attempt("dns", lambda: socket.getaddrinfo("instance-data.ec2.internal", 80))
attempt("byname", lambda: socket.gethostbyname("instance-data"))
""",
        isolate=True,
    )
    hosts = {a["host"] for a in r.alerts("default.credential-endpoint")}
    assert hosts == {"instance-data.ec2.internal", "instance-data"}
    assert all(a["kind"] == "network.dns" for a in r.alerts())


def test_user_code_calling_the_runtime_api_is_reported():
    # GIVEN the Lambda Runtime API on loopback (as in a sandbox)
    r = run_case(
        SERVER
        + """
import socket, os
port = serve_tcp()
os.environ["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
import ramparts
ramparts.uninstall()
SENSOR = ramparts.install()
attempt("steal_next_event", lambda: socket.create_connection(("127.0.0.1", port)).close())
""",
        isolate=True,
    )
    [alert] = r.alerts("default.runtime-api")
    assert alert["port"] > 0 and alert["ip"] == "127.0.0.1"


def test_raw_sockets_are_reported():
    r = run_case(
        """
import socket
attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
""",
        isolate=True,
    )
    assert r.alerts("default.raw-socket")
