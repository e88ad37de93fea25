"""The layer adapter: real sensor lines in, OCSF events (and heartbeats) out.

The lines are the ones the sensor printed while ``samples/layer/record.py`` ran real
functions (learn and enforce modes) under the real runtime client. GIVEN a line and a
trusted context, WHEN it is normalised, THEN the event says what the line says, in OCSF,
with the identity of the context only.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors import ADAPTERS, adapter, detect, layer
from collectors.base import Batch, Context
from collectors.model import (
    ApiActivity,
    DetectionFinding,
    DnsActivity,
    FileActivity,
    ModuleActivity,
    NetworkActivity,
    OcsfEvent,
    ProcessActivity,
    json_schema,
)
from collectors.workload import workload_of
from tests.collectors.conftest import (
    ACCOUNT,
    FUZZ,
    JSON,
    REGION,
    assert_rejects_explained,
    assert_valid,
    event_problems,
)

ROOT = Path(__file__).resolve().parents[2]
CTX = Context(account=ACCOUNT, region=REGION, function="media-worker")
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:media-worker"


def one(line: str | dict[str, Any], ctx: Context = CTX) -> OcsfEvent:
    batch = layer.normalize(line, ctx)
    assert not batch.rejects, [r.reason for r in batch.rejects]
    assert len(batch.events) == 1, batch
    assert_valid(batch)
    return batch.events[0]


def pick(objects: list[dict[str, Any]], kind: str, **fields: Any) -> dict[str, Any]:
    """The first recorded line of ``kind`` whose fields have the given values."""
    for obj in objects:
        if obj["kind"] == kind and all(obj.get(k) == v for k, v in fields.items()):
            return obj
    raise LookupError(f"no recorded {kind} line with {fields}")


def rejected(line: str | dict[str, Any], ctx: Context = CTX) -> str:
    batch = layer.normalize(line, ctx)
    assert not batch.events and not batch.signals, batch
    assert len(batch.rejects) == 1, batch
    assert_rejects_explained(batch)
    return batch.rejects[0].reason


# -- every recorded line --------------------------------------------------------------------------
def test_every_recorded_line_becomes_valid_events_or_signals(sensor_lines):
    batch = Batch()
    for line in sensor_lines:
        batch.extend(layer.normalize(line, CTX))
    assert not batch.rejects, [r.reason for r in batch.rejects]
    assert batch.skipped == 0
    assert len(batch.events) + len(batch.signals) == len(sensor_lines)
    assert_valid(batch)
    classes = {type(e) for e in batch.events}
    assert classes == {
        ProcessActivity,
        FileActivity,
        NetworkActivity,
        DnsActivity,
        ApiActivity,
        ModuleActivity,
        DetectionFinding,
    }
    assert {s["kind"] for s in batch.signals} == {"sensor.start", "invocation.summary"}
    for event in batch.events:
        assert event.device.uid == ARN  # type: ignore[attr-defined]
        assert event.cloud.account is not None and event.cloud.account.uid == ACCOUNT
        assert event.cloud.region == REGION
        assert event.metadata.product.name == "Ramparts"
        assert event.raw_data and event.raw_data.startswith('{"ramparts":1')


def test_the_parsed_object_and_the_text_give_the_same_event(sensor_lines):
    for line in sensor_lines[:40]:
        from_text = layer.normalize(line, CTX)
        from_object = layer.normalize(json.loads(line), CTX)
        assert from_text.events == from_object.events
        assert from_text.signals == from_object.signals


# -- the mapping, kind by kind --------------------------------------------------------------------
def test_process_spawn_alert_is_a_launch_with_the_command_line(sensor_objects):
    line = pick(
        sensor_objects, "process.spawn", verdict="alert", rule="default.network-tool", mode="learn"
    )
    e = one(line)
    assert isinstance(e, ProcessActivity)
    assert e.activity_id == ProcessActivity.LAUNCH and e.launch_type_id == 1  # Spawn
    assert e.process.name == "dash"
    assert e.process.file is not None and e.process.file.path == "/usr/bin/dash"
    assert e.process.cmd_line is not None and "/dev/tcp/203.0.113.7/4444" in e.process.cmd_line
    assert e.process.uid == f"{line['sandbox']}:{line['seq']}"
    assert e.process.parent_process == e.actor.process
    assert e.severity_id == 4
    assert (e.action_id, e.action, e.disposition_id, e.disposition) == (3, "Observed", 19, "Alert")
    assert "security_control" in e.metadata.profiles
    assert e.unmapped is not None
    assert e.unmapped["rule"] == "default.network-tool"
    assert e.unmapped["matched"] == ["default.shell"]
    assert e.unmapped["argv"] == line["argv"]
    assert e.unmapped["programs"] == line["programs"]
    assert e.unmapped["location"]["file"].endswith("examples/functions/vulnerable/app.py")
    assert e.unmapped["request_id"] == line["request_id"] == e.metadata.correlation_uid
    assert e.status_id is None


def test_a_block_is_denied_blocked_and_failed(sensor_objects):
    e = one(pick(sensor_objects, "process.spawn", verdict="block", rule="policy.process"))
    assert (e.action_id, e.action, e.disposition_id, e.disposition) == (2, "Denied", 2, "Blocked")
    assert (e.status_id, e.status) == (2, "Failure")
    assert e.severity_id == 4
    assert e.unmapped is not None and e.unmapped["mode"] == "enforce"


def test_an_allowed_event_is_informational(sensor_objects):
    e = one(pick(sensor_objects, "process.spawn", verdict="allow", op="popen"))
    assert e.severity_id == 1
    assert (e.action_id, e.disposition_id) == (1, 1)
    assert e.unmapped is not None and "rule" not in e.unmapped  # null: left out


def test_exec_from_a_forked_child_is_an_exec_launch_with_the_child_pid(sensor_objects):
    line = pick(sensor_objects, "process.spawn", op="exec")
    assert "pid" in line  # recorded from the forked child
    e = one(line)
    assert isinstance(e, ProcessActivity)
    assert e.launch_type_id == 3  # Exec
    assert e.actor.process is not None and e.actor.process.pid == line["pid"]
    assert e.metadata.uid == f"{line['sandbox']}:{line['pid']}:{line['seq']}"
    assert e.unmapped is not None and e.unmapped["pid"] == line["pid"]


@pytest.mark.parametrize(
    ("op", "activity", "file_type"),
    [
        ("create", FileActivity.CREATE, 1),
        ("write", FileActivity.UPDATE, 1),
        ("append", FileActivity.UPDATE, 1),
        ("truncate", FileActivity.UPDATE, 1),
        ("delete", FileActivity.DELETE, 1),
        ("chmod", FileActivity.SET_SECURITY, 1),
        ("chown", FileActivity.SET_SECURITY, 1),
        ("utime", FileActivity.SET_ATTRIBUTES, 1),
        ("xattr", FileActivity.SET_ATTRIBUTES, 1),
        ("mkdir", FileActivity.CREATE, 2),
        ("symlink", FileActivity.CREATE, 7),
        ("link", FileActivity.CREATE, 1),
    ],
)
def test_file_write_ops_map_to_file_activities(sensor_objects, op, activity, file_type):
    line = pick(sensor_objects, "file.write", op=op)
    e = one(line)
    assert isinstance(e, FileActivity)
    assert e.activity_id == activity
    assert e.file.path == line["path"]
    assert e.file.type_id == file_type
    assert e.file.name == line["path"].rsplit("/", 1)[1]
    assert e.file.parent_folder == line["path"].rsplit("/", 1)[0]
    assert e.unmapped is not None and e.unmapped["op"] == op
    if op == "chmod":
        assert e.unmapped["file_mode"] == "0o755"
    if op == "chown":
        assert (e.unmapped["uid"], e.unmapped["gid"]) == (line["uid"], line["gid"])
    if op == "symlink":
        assert e.unmapped["link_target"] == line["link_target"]
    if op == "link":
        assert e.unmapped["link_source"] == line["source"]


def test_rename_has_the_old_name_as_file_and_the_new_one_as_result(sensor_objects):
    line = pick(sensor_objects, "file.write", op="rename")
    e = one(line)
    assert isinstance(e, FileActivity)
    assert e.activity_id == FileActivity.RENAME
    assert e.file.path == line["source"]
    assert e.file_result is not None and e.file_result.path == line["path"]


def test_rename_from_and_a_hard_link_to_a_sensitive_file(sensor_objects):
    base = pick(sensor_objects, "file.write", op="rename")
    moved = {**base, "op": "rename-from", "path": "/etc/passwd", "destination": "/tmp/x"}
    moved.pop("source")
    e = one(moved)
    assert isinstance(e, FileActivity)
    assert e.file.path == "/etc/passwd"
    assert e.file_result is not None and e.file_result.path == "/tmp/x"
    # the sensor reports a hard link to a sensitive file with the file as path
    linked = {**base, "op": "link", "path": "/etc/shadow", "destination": "cache/s"}
    linked.pop("source")
    e = one(linked)
    assert isinstance(e, FileActivity)
    assert e.activity_id == FileActivity.CREATE
    assert e.file.path == "cache/s" and e.file.name == "s"
    assert e.unmapped is not None and e.unmapped["link_source"] == "/etc/shadow"


def test_sensitive_read_is_a_high_severity_read(sensor_objects):
    line = pick(sensor_objects, "file.read", rule="default.sensitive-read")
    e = one(line)
    assert isinstance(e, FileActivity)
    assert e.activity_id == FileActivity.READ
    assert e.file.path == line["path"] and e.file.path.endswith("/environ")
    assert e.severity_id == 4
    assert e.unmapped is not None and e.unmapped["requested"] == "/proc/self/environ"


def test_tcp_connect_is_an_outbound_open(sensor_objects):
    line = pick(sensor_objects, "network.connect", rule="default.credential-endpoint")
    e = one(line)
    assert isinstance(e, NetworkActivity)
    assert e.activity_id == NetworkActivity.OPEN
    assert e.dst_endpoint is not None
    assert (e.dst_endpoint.ip, e.dst_endpoint.port) == ("169.254.169.254", 80)
    assert e.connection_info is not None
    ci = e.connection_info
    assert (ci.protocol_name, ci.protocol_num, ci.protocol_ver_id) == ("tcp", 6, 4)
    assert (ci.direction_id, ci.direction) == (2, "Outbound")
    assert e.src_endpoint is not None and e.src_endpoint.uid == ARN
    assert e.unmapped is not None
    assert e.unmapped["endpoint"] == "EC2 instance metadata (IMDS)"
    assert e.severity_id == 3


def test_ipv6_udp_unix_and_raw_sockets(sensor_objects):
    v6 = one(pick(sensor_objects, "network.connect", ip="2001:db8::7"))
    assert isinstance(v6, NetworkActivity) and v6.connection_info is not None
    assert v6.connection_info.protocol_ver_id == 6
    udp = one(pick(sensor_objects, "network.connect", op="sendto"))
    assert isinstance(udp, NetworkActivity) and udp.connection_info is not None
    assert udp.activity_id == NetworkActivity.TRAFFIC
    assert (udp.connection_info.protocol_name, udp.connection_info.protocol_num) == ("udp", 17)
    assert udp.dst_endpoint is not None and udp.dst_endpoint.port == 53
    unix_line = next(o for o in sensor_objects if o["kind"] == "network.connect" and o.get("path"))
    unix = one(unix_line)
    assert isinstance(unix, NetworkActivity) and unix.connection_info is not None
    assert unix.dst_endpoint is not None and unix.dst_endpoint.name == unix_line["path"]
    assert unix.connection_info.protocol_name == "unix"
    raw = one(pick(sensor_objects, "network.connect", op="socket"))
    assert isinstance(raw, NetworkActivity)
    assert raw.activity_id == 99 and raw.dst_endpoint is None
    assert raw.unmapped is not None
    assert (raw.unmapped["family"], raw.unmapped["socket_type"]) == (2, 3)
    assert raw.unmapped["rule"] == "default.raw-socket"


def test_dns_lookup_is_a_query(sensor_objects):
    line = pick(sensor_objects, "network.dns")
    e = one(line)
    assert isinstance(e, DnsActivity)
    assert e.activity_id == DnsActivity.QUERY
    assert e.query is not None and e.query.hostname == "partner.example.com"
    assert e.src_endpoint is not None and e.src_endpoint.name == "media-worker"
    assert e.unmapped is not None and e.unmapped["op"] == "getaddrinfo"


@pytest.mark.parametrize(
    ("operation", "activity"),
    [
        ("DescribeTable", 2),
        ("PutItem", 1),
        ("UpdateItem", 3),
        ("DeleteItem", 4),
        ("GetCallerIdentity", 2),
        ("ListUsers", 2),
    ],
)
def test_aws_calls_are_api_activity_by_verb(sensor_objects, operation, activity):
    line = pick(sensor_objects, "aws.call", operation=operation)
    e = one(line)
    assert isinstance(e, ApiActivity)
    assert e.activity_id == activity
    assert e.api.operation == operation
    assert e.api.service is not None and e.api.service.name == line["service"]
    assert e.src_endpoint.uid == ARN and e.src_endpoint.name == "media-worker"
    assert e.dst_endpoint is not None and e.dst_endpoint.ip == "127.0.0.1"
    assert e.unmapped is not None
    assert e.unmapped["action"] == line["action"]
    assert e.unmapped["api_region"] == REGION


@pytest.mark.parametrize(
    ("operation", "activity"),
    [
        ("GetObject", 2),
        ("List", 2),
        ("Listen", 99),
        ("CreateFunction", 1),
        ("PutObject", 1),
        ("ModifyDBInstance", 3),
        ("RemovePermission", 4),
        ("Delete", 4),
        ("AssumeRole", 99),
        ("Invoke", 99),
        ("Getaway", 99),
        ("", 99),
    ],
)
def test_api_activity_from_the_verb(operation, activity):
    assert layer.api_activity(operation) == activity


def test_native_loads_are_module_activity(sensor_objects):
    imp = pick(sensor_objects, "native.load", op="import", verdict="allow")
    e = one(imp)
    assert isinstance(e, ModuleActivity)
    assert e.activity_id == ModuleActivity.LOAD
    assert e.module.file is not None and e.module.file.path == imp["library"]
    assert e.module.type == "Extension module" and e.module.load_type_id == 1
    assert e.unmapped is not None and e.unmapped["module"] == imp["module"]
    libc = one(pick(sensor_objects, "native.load", op="dlopen", library="libc.so.6"))
    assert isinstance(libc, ModuleActivity) and libc.module.file is not None
    assert libc.module.file.name == "libc.so.6" and libc.module.file.path is None
    assert libc.severity_id == 3 and libc.unmapped is not None
    assert libc.unmapped["rule"] == "default.native-libc"
    sym = one(pick(sensor_objects, "native.load", op="dlsym"))
    assert isinstance(sym, ModuleActivity)
    assert sym.activity_id == 99 and sym.module.function_name == "system"
    null = one(pick(sensor_objects, "native.load", op="dlopen", library=None))
    assert isinstance(null, ModuleActivity)
    assert null.module.file is None and null.unmapped is not None
    assert "main program" in null.unmapped["detail"]


def test_process_env_sets_an_environment_variable_of_the_function_process(sensor_objects):
    line = pick(sensor_objects, "process.env")
    e = one(line)
    assert isinstance(e, ProcessActivity)
    assert e.activity_id == 99
    assert e.process.uid == line["sandbox"]
    assert e.process.environment_variables is not None
    env = e.process.environment_variables
    assert [(v.name, v.value) for v in env] == [("LD_PRELOAD", "/tmp/libhook.so")]
    assert e.severity_id == 4


def test_tamper_is_a_high_detection_finding_on_the_function(sensor_objects):
    line = pick(sensor_objects, "sensor.tamper")
    e = one(line)
    assert isinstance(e, DetectionFinding)
    assert e.severity_id == 4 and e.activity_id == DetectionFinding.CREATE
    info = e.finding_info
    assert info.analytic is not None and info.analytic.name == "tamper.audit-hook"
    assert info.uid == f"{ARN}/{line['sandbox']}:{line['seq']}"
    assert info.attacks is not None and info.attacks[0].technique is not None
    assert info.attacks[0].technique.uid == "T1562"
    assert info.attacks[0].sub_technique is not None
    assert info.attacks[0].sub_technique.uid == "T1562.001"
    assert info.title is not None and "another audit hook" in info.title
    assert e.resources is not None and e.resources[0].uid == ARN
    assert (e.action_id, e.disposition_id) == (3, 19)


def test_policy_error_is_a_medium_finding_with_the_errors(sensor_objects):
    line = pick(sensor_objects, "sensor.policy_error")
    e = one(line)
    assert isinstance(e, DetectionFinding)
    assert e.severity_id == 3
    assert e.finding_info.desc is not None and "invalid YAML" in e.finding_info.desc
    assert e.unmapped is not None
    assert e.unmapped["errors"] == line["errors"]
    assert e.unmapped["fallback"] == "monitor with built-in defaults"
    assert "security_control" not in e.metadata.profiles and e.action_id is None


def test_heartbeats_are_signals_with_the_workload(sensor_objects):
    start = pick(sensor_objects, "sensor.start", mode="enforce")
    batch = layer.normalize(start, CTX)
    assert not batch.events and not batch.rejects
    [sig] = batch.signals
    assert sig["kind"] == "sensor.start"
    assert sig["workload"] == f"lambda:{ARN}"
    assert (sig["function"], sig["account"], sig["region"]) == ("media-worker", ACCOUNT, REGION)
    assert sig["time"] == start["time"] and sig["sandbox"] == start["sandbox"]
    assert sig["mode"] == "enforce" and sig["modes"]["egress"] == "enforce"
    assert sig["attach"] == "exec-wrapper" and sig["policy_rules"] == start["policy_rules"]
    summary = next(o for o in sensor_objects if o["kind"] == "invocation.summary" and o["blocks"])
    [sig] = layer.normalize(summary, CTX).signals
    assert sig["counts"] == summary["counts"]
    assert sig["blocks"] == summary["blocks"] and sig["request_id"] == summary["request_id"]


def test_sensor_error_is_a_signal(sensor_objects):
    # The sensor reports its own contained failures; none happened while recording.
    line = {
        **pick(sensor_objects, "sensor.start"),
        "kind": "sensor.error",
        "where": "summary",
        "error": "KeyError: 'x'",
    }
    [sig] = layer.normalize(line, CTX).signals
    assert (sig["kind"], sig["where"], sig["error"]) == ("sensor.error", "summary", "KeyError: 'x'")


# -- log text forms --------------------------------------------------------------------------------
def test_log_prefixes_are_read(sensor_lines):
    line = next(x for x in sensor_lines if '"verdict":"alert"' in x)
    plain = one(line)
    for text in (
        line + "\n",
        f"2026-12-04T20:58:29.450Z\t87aeed1b-d6a0-4200-8279-9cca0c3d655b\t{line}",
        f"[INFO]\t2026-12-04T20:58:29.450Z\t87aeed1b-d6a0-4200-8279-9cca0c3d655b\t{line}\n",
        f"2026-12-04T20:58:29.450000+00:00 2026/12/04/[$LATEST]0123abcd {line}",
    ):
        assert one(text) == plain


@pytest.mark.parametrize(
    "text",
    [
        "START RequestId: 87aeed1b-d6a0-4200-8279-9cca0c3d655b Version: $LATEST",
        "END RequestId: 87aeed1b-d6a0-4200-8279-9cca0c3d655b",
        "REPORT RequestId: 87aeed1b\tDuration: 4.28 ms\tBilled Duration: 5 ms",
        "media-worker: network",
        "[INFO]\t2026-12-04T20:58:29.450Z\t87aeed1b\thandling network",
        '{"time":"2026-12-04T20:58:29Z","type":"platform.start","record":{"requestId":"x"}}',
        '{"level":"INFO","message":"the ramparts are up","ramparts_version":1}',
        '{"app": {"ramparts": 1, "kind": "process.spawn"}}',  # not at the top level
        '["ramparts", 1]',
        "",
        "{",
        "x{" + '"ramparts":1}',  # no separator before the object: not a log prefix
    ],
)
def test_other_lines_are_skipped(text):
    batch = layer.normalize(text, CTX)
    assert (batch.events, batch.rejects, batch.signals, batch.skipped) == ([], [], [], 1)


# -- identity comes from the context only ----------------------------------------------------------
FAKE_IDENTITY = {
    "function": "payments",
    "function_name": "payments",
    "account": "999999999999",
    "account_id": "999999999999",
    "region": "us-west-2",
    "arn": "arn:aws:lambda:us-west-2:999999999999:function:payments",
    "device": {"uid": "arn:aws:lambda:us-west-2:999999999999:function:payments"},
    "cloud": {"account": {"uid": "999999999999"}},
    "workload": "lambda:arn:aws:lambda:us-west-2:999999999999:function:payments",
    "log_group": "/aws/lambda/payments",
}


def test_identity_fields_in_a_line_are_ignored(sensor_objects):
    line = {**pick(sensor_objects, "process.spawn", verdict="alert"), **FAKE_IDENTITY}
    e = one(line)
    assert e.device.uid == ARN  # type: ignore[attr-defined]
    assert e.cloud.account is not None and e.cloud.account.uid == ACCOUNT
    assert e.cloud.region == REGION
    w = workload_of(e.device, ACCOUNT)  # type: ignore[attr-defined]
    assert w is not None and w.uid == ARN
    dumped = json.dumps({k: v for k, v in e.to_ocsf().items() if k != "raw_data"})
    assert "payments" not in dumped and "999999999999" not in dumped
    start = {**pick(sensor_objects, "sensor.start"), **FAKE_IDENTITY}
    [sig] = layer.normalize(start, CTX).signals
    assert sig["workload"] == f"lambda:{ARN}" and sig["account"] == ACCOUNT


def test_without_a_trusted_identity_the_function_is_unknown(sensor_objects):
    line = pick(sensor_objects, "process.spawn", verdict="alert")
    e = one({**line, **FAKE_IDENTITY}, Context())
    device = e.device  # type: ignore[attr-defined]
    assert device.name == layer.UNKNOWN_FUNCTION and device.uid is None
    assert workload_of(device) is None  # nothing downstream can act on it
    assert e.cloud.account is None
    partial = one(line, Context(function="media-worker"))
    assert partial.device.name == "media-worker"  # type: ignore[attr-defined]
    assert partial.device.uid is None  # type: ignore[attr-defined]
    [sig] = layer.normalize(pick(sensor_objects, "sensor.start"), Context()).signals
    assert sig["workload"] is None and sig["function"] is None
    finding = one(pick(sensor_objects, "sensor.tamper"), Context())
    assert isinstance(finding, DetectionFinding) and finding.resources is None
    assert finding.finding_info.uid.startswith("unknown/")


# -- rejects, with reasons ------------------------------------------------------------------------
def _base(sensor_objects: list[dict[str, Any]]) -> dict[str, Any]:
    return pick(sensor_objects, "network.connect", rule="default.credential-endpoint")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ramparts": 2}, "unsupported sensor schema version 2"),
        ({"ramparts": True}, "unsupported sensor schema version True"),
        ({"ramparts": "1"}, "unsupported sensor schema version '1'"),
        ({"kind": "network.teleport"}, "unknown kind 'network.teleport'"),
        ({"kind": None}, "unknown kind None"),
        ({"sandbox": "XYZ"}, "sandbox: expected 16 lowercase hex digits"),
        ({"seq": 0}, "seq: 0 is out of range"),
        ({"seq": 1.5}, "seq: expected an integer"),
        ({"seq": 10**30}, "seq: "),
        ({"time": 1796417909}, "time: expected epoch milliseconds"),
        ({"time": "now"}, "time: expected epoch milliseconds"),
        ({"request_id": 7}, "request_id: expected a string"),
        ({"pid": -1}, "pid: -1 is out of range"),
        ({"verdict": "maybe"}, "verdict: expected allow, alert or block"),
        ({"mode": "yolo"}, "mode: expected one of"),
        ({"matched": "default.shell"}, "matched: expected a list of strings"),
        ({"matched": [1]}, "matched: items must be strings"),
        ({"location": "app.py:3"}, "location: expected an object or null"),
        ({"location": {"file": "a.py", "line": "3", "function": "f"}}, "line: expected an integer"),
        ({"stack": ["a"] * 9}, "stack: 9 items, over the 8 limit"),
        ({"phase": "dream"}, "phase: expected one of"),
        ({"op": "teleport"}, "op: expected one of connect, sendto, socket"),
        ({"ip": "999.1.1.1"}, "ip: '999.1.1.1' is not an IP address"),
        ({"ip": "fe80::1%eth0"}, "is not an IP address"),
        ({"ip": None}, "ip: missing"),
        ({"port": 70000}, "port: 70000 is out of range"),
        ({"port": "80"}, "port: expected an integer"),
        ({"proto": "sctp"}, "proto: expected one of tcp, udp"),
        ({"host": ["a"]}, "host: expected a string"),
        ({"family": "ipx"}, "family: expected ipv4, ipv6"),
    ],
)
def test_malformed_lines_are_rejected_with_the_reason(sensor_objects, change, reason):
    line = {**_base(sensor_objects), **change}
    assert reason in rejected(line)


@pytest.mark.parametrize(
    ("kind", "change", "reason"),
    [
        ("process.spawn", {"argv": "sh -c x"}, "argv: expected a list of strings"),
        ("process.spawn", {"argv": ["x"] * 33}, "argv: 33 items, over the 32 limit"),
        ("process.spawn", {"executable": ""}, "executable: expected a non-empty string"),
        ("process.spawn", {"op": "teleport"}, "op: expected one of"),
        ("file.write", {"path": "/" + "a" * 9000}, "path: 9001 characters, over the 8192 limit"),
        ("file.write", {"op": "read"}, "op: expected one of"),
        ("file.write", {"uid": "root"}, "uid: expected an integer"),
        ("file.read", {"op": "write"}, "op: expected read"),
        ("aws.call", {"operation": None}, "operation: missing"),
        ("aws.call", {"action": 5}, "action: expected a non-empty string"),
        ("native.load", {"library": 5}, "library: expected a string"),
        ("sensor.tamper", {"detail": None}, "detail: missing"),
        ("sensor.policy_error", {"errors": "bad"}, "errors: expected a list of strings"),
        ("sensor.start", {"modes": []}, "modes: expected an object"),
        ("invocation.summary", {"counts": {"x": {"allow": "1"}}}, "allow: expected an integer"),
        ("invocation.summary", {"blocks": None}, "blocks: missing"),
    ],
)
def test_malformed_targets_are_rejected(sensor_objects, kind, change, reason):
    line = {**pick(sensor_objects, kind), **change}
    assert reason in rejected(line)


def test_missing_required_fields_are_rejected(sensor_objects):
    line = dict(_base(sensor_objects))
    for key in ("kind", "sandbox", "seq", "time", "verdict", "rule", "mode"):
        broken = {k: v for k, v in line.items() if k != key}
        reason = rejected(broken)
        assert key in reason, (key, reason)
    # without its marker a line is not a Ramparts line at all: skipped, not rejected
    unmarked = layer.normalize({k: v for k, v in line.items() if k != "ramparts"}, CTX)
    assert (unmarked.events, unmarked.rejects, unmarked.skipped) == ([], [], 1)


def test_bad_text_is_rejected_with_the_reason(sensor_lines):
    line = sensor_lines[5]
    assert "not JSON" in rejected(line[:-20])  # cut short: still looks like ours
    assert "over the 262144 limit" in rejected(line[:-1] + ', "pad": "' + "x" * 300_000 + '"}')
    surrogate = line[:-1] + ', "x": "\\ud800"}'
    assert "unpaired UTF-16 surrogate" in rejected(surrogate)
    deep = line[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert "not JSON" in rejected(deep)
    for value in (42, None, [1], "ramparts"):  # other JSON values on a log stream
        assert layer.normalize(value, CTX).skipped == 1


def test_a_paired_surrogate_escape_is_fine(sensor_objects):
    line = pick(sensor_objects, "process.spawn", verdict="alert")
    text = json.dumps({**line, "argv": ["echo", "\U0001f600"]})  # ensure_ascii: \ud83d\ude00
    assert "\\ud83d" in text
    e = one(text)
    assert isinstance(e, ProcessActivity) and e.process.cmd_line == "echo \U0001f600"


def test_detection_and_registry():
    line = '{"ramparts":1,"kind":"sensor.start"}'
    assert detect(json.loads(line)) == "layer"
    assert detect(line) == "layer"
    assert detect("START RequestId: x Version: $LATEST") == "layer"
    assert not layer.matches({"awslogs": {}}) and not layer.matches(3)
    assert ADAPTERS["layer"] == "collectors.layer" and adapter("layer") is layer


# -- fast construction is validation ------------------------------------------------------------------
def test_constructed_events_equal_validated_ones(sensor_lines):
    """Events are built without pydantic's validators: prove they equal validated models."""
    batch = Batch()
    for line in sensor_lines:
        batch.extend(layer.normalize(line, CTX))
    for event in batch.events:
        validated = type(event).model_validate(event.model_dump(by_alias=True))
        assert validated == event
        assert validated.to_ocsf() == event.to_ocsf()
        assert validated.model_dump() == event.model_dump()


def test_shared_defaults_are_not_shared_state(sensor_lines):
    a = layer.normalize(sensor_lines[3], CTX).events[0]
    b = layer.normalize(sensor_lines[4], CTX).events[0]
    assert a.metadata.profiles is not b.metadata.profiles
    a.metadata.profiles.append("x")
    assert "x" not in b.metadata.profiles


# -- fuzzing ---------------------------------------------------------------------------------------


def check_batch(batch: Batch) -> None:
    assert_rejects_explained(batch)
    for event in batch.events:
        assert event_problems(event) == [], event


@FUZZ
@given(st.one_of(JSON, st.text(max_size=300)))
def test_fuzz_arbitrary_values_never_crash(value):
    check_batch(layer.normalize(value, CTX))


@FUZZ
@given(st.dictionaries(st.sampled_from(["ramparts", "kind", *string.ascii_lowercase]), JSON))
def test_fuzz_arbitrary_objects_marked_as_ours(value):
    value["ramparts"] = 1
    check_batch(layer.normalize(value, CTX))
    check_batch(layer.normalize(json.dumps(value), CTX))


MUTATIONS = st.sampled_from(["delete", "replace", "huge", "deep", "giant", "swap"])


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_real_lines(sensor_objects, data):
    line = dict(data.draw(st.sampled_from(sensor_objects)))
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(line)))
        how = data.draw(MUTATIONS)
        if how == "delete":
            line.pop(key, None)
        elif how == "replace":
            line[key] = data.draw(JSON)
        elif how == "huge":
            line[key] = "x" * data.draw(st.sampled_from([8192, 8193, 70_000, 300_000]))
        elif how == "deep":
            line[key] = json.loads("[" * 60 + "]" * 60)
        elif how == "giant":
            line[key] = data.draw(st.sampled_from([2**63, -(2**63) - 1, 10**100, 1e308]))
        else:
            line[key] = [line.get(key)] if not isinstance(line.get(key), list) else "x"
    check_batch(layer.normalize(line, CTX))
    try:
        text = json.dumps(line)
    except ValueError:
        return
    check_batch(layer.normalize(text, CTX))
    check_batch(layer.normalize("2026-12-04T20:58:29.450Z\tabc\t" + text, Context()))


@FUZZ
@given(data=st.data())
def test_fuzz_real_lines_with_arbitrary_text_and_numbers(sensor_objects, data):
    """Whatever text or numbers a function puts in the fields: a valid event, or a reject."""
    line = dict(data.draw(st.sampled_from(sensor_objects)))
    for key, value in list(line.items()):
        if key in ("ramparts", "kind") or not data.draw(st.booleans()):
            continue
        if isinstance(value, str):
            line[key] = data.draw(st.text(max_size=60))
        elif isinstance(value, int) and not isinstance(value, bool):
            line[key] = data.draw(st.integers(min_value=-(2**64), max_value=2**64))
        elif isinstance(value, list):
            line[key] = data.draw(st.lists(st.text(max_size=20), max_size=10))
    check_batch(layer.normalize(line, CTX))


@FUZZ
@given(st.ip_addresses())
def test_fuzz_every_address_the_model_accepts_is_valid_ocsf(sensor_objects, address):
    line = {**_base(sensor_objects), "ip": str(address), "host": None}
    batch = layer.normalize(line, CTX)
    check_batch(batch)
    assert len(batch.events) == 1, batch.rejects


# -- the exported JSON Schema ---------------------------------------------------------------------
def test_common_event_schema_is_exported():
    """docs/schema/common-event.schema.json is what `python -m collectors.export_schema` writes."""
    from collectors.export_schema import SCHEMA_PATH, render

    committed = (ROOT / SCHEMA_PATH).read_text()
    assert committed == render(), (
        "the common event schema is stale: run `python -m collectors.export_schema`"
    )
    assert json.loads(committed)["title"] == json_schema()["title"]
