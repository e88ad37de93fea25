"""Falco alerts (Falco JSON, falcosidekick JSON and SNS/SQS forms) -> Detection Finding + activity.

Every recorded sample under samples/falco/ must become the finding (and activity) it
describes, valid by OCSF's own schema; no other source's sample is claimed; and no input
(arbitrary JSON, mutated samples) makes the adapter raise, hang or emit invalid OCSF.
The sample and fuzz helpers here are shared with test_osquery.py and test_tetragon.py.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors import falco
from collectors.base import MAX_RECORD_BYTES, Batch, Context
from collectors.model import (
    DetectionFinding,
    FileActivity,
    NetworkActivity,
    OcsfEvent,
    ProcessActivity,
)
from collectors.workload import workload_of
from ramparts_cli.replay import replay
from tests.collectors.conftest import (
    ACCOUNT,
    FUZZ,
    JSON,
    REGION,
    SAMPLES,
    assert_rejects_explained,
    assert_valid,
)
from tests.ocsf import validate_ocsf

CTX = Context(account=ACCOUNT, region=REGION)

# --------------------------------------------------------------------------------------------
# Helpers (also imported by test_osquery.py and test_tetragon.py)


def records_of(path: Path) -> list[Any]:
    """The records of a sample file: a JSON document, or one per line (text lines kept)."""
    text = path.read_text(errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        out: list[Any] = []
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append(line)
        return out
    return doc if isinstance(doc, list) and path.suffix != ".jsonl" else [doc]


def own_samples(source: str) -> list[tuple[str, Any]]:
    """(id, record) for every record of samples/<source>/ (README excluded)."""
    out = []
    for path in sorted((SAMPLES / source).glob("*.json*")):
        for i, record in enumerate(records_of(path)):
            out.append((f"{path.name}[{i}]", record))
    assert out, f"no samples for {source}"
    return out


def other_samples(source: str) -> list[tuple[str, Any]]:
    """Every record of every other source's samples (whatever is there when tests run)."""
    out = []
    for directory in sorted(p for p in SAMPLES.iterdir() if p.is_dir() and p.name != source):
        for path in sorted(directory.rglob("*")):
            if path.is_dir() or path.suffix in (".py", ".pyc", ".md") or "__pycache__" in str(path):
                continue
            for i, record in enumerate(records_of(path)):
                out.append((f"{directory.name}/{path.name}[{i}]", record))
    return out


def normalize_file(mod: Any, name: str, ctx: Context = CTX) -> Batch:
    """Every record of a sample file, normalised; the events checked valid."""
    batch = Batch()
    for record in records_of(SAMPLES / mod.SOURCE / name):
        batch.extend(mod.normalize(record, ctx))
    return check(batch)


def check(batch: Batch) -> Batch:
    """What must hold for any input: explained rejects and valid events."""
    assert_rejects_explained(batch)
    for event in batch.events:
        errors = validate_ocsf(event.to_ocsf())
        assert not errors, errors
    return batch


def comparable(event: OcsfEvent, *drop: str) -> dict[str, Any]:
    """The event as OCSF without raw_data (and other named top-level attributes)."""
    data = event.to_ocsf()
    for key in ("raw_data", *drop):
        data.pop(key, None)
    return data


def map_leaves(value: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: map_leaves(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_leaves(v, fn) for v in value]
    return fn(value)


def numbers_to_strings(value: Any) -> Any:
    def fn(v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    return map_leaves(value, fn)


def strings_to_numbers(value: Any) -> Any:
    def fn(v: Any) -> Any:
        if isinstance(v, str) and v.lstrip("-").isdigit() and len(v) < 19 and v[:1] != "0":
            return int(v)
        return v

    return map_leaves(value, fn)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:20]):
            yield from _paths(v, (*prefix, i))


def _set(root: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    if not path:
        return new
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    elif delete and isinstance(parent, list):
        parent.pop(path[-1])
    else:
        parent[path[-1]] = new
    return root


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


MUTATIONS = ("delete", "swap", "huge", "deep", "giant", "null", "number_string")


def mutate(data: st.DataObject, record: Any) -> Any:
    """The record with 1-3 hostile edits somewhere inside it."""
    record = copy.deepcopy(record)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(record))
        path = data.draw(st.sampled_from(paths))
        kind = data.draw(st.sampled_from(MUTATIONS))
        if kind == "delete" and path:
            record = _set(record, path, None, delete=True)
        elif kind == "swap":
            record = _set(record, path, data.draw(JSON))
        elif kind == "huge":
            record = _set(record, path, "A" * data.draw(st.sampled_from([9000, 70_000, 300_000])))
        elif kind == "deep":
            record = _set(record, path, deep(data.draw(st.sampled_from([23, 30, 200]))))
        elif kind == "giant":
            record = _set(record, path, ["/etc/shadow"] * data.draw(st.sampled_from([300, 25_000])))
        elif kind == "null":
            record = _set(record, path, None)
        elif kind == "number_string":
            record = _set(
                record,
                path,
                data.draw(st.sampled_from(["-1", "1e9", "99999999999999999999", "", " 7 "])),
            )
    return record


# --------------------------------------------------------------------------------------------
# Samples

SAMPLES_FALCO = own_samples("falco")


@pytest.mark.parametrize(("name", "record"), SAMPLES_FALCO, ids=[n for n, _ in SAMPLES_FALCO])
def test_every_sample_is_recognised_and_normalises_to_valid_ocsf(name: str, record: Any) -> None:
    assert falco.matches(record)
    assert falco.matches(json.dumps(record))
    batch = falco.normalize(record, CTX)
    assert not batch.rejects, batch.rejects
    assert batch.events
    assert_valid(batch)
    for event in batch.events:
        assert event.raw_data
        assert event.metadata.product.name == "Falco"
        assert event.metadata.uid
        assert event.cloud.account is not None and event.cloud.account.uid == ACCOUNT
        assert event.cloud.region == REGION


OTHERS = other_samples("falco")


@pytest.mark.parametrize(("name", "record"), OTHERS, ids=[n for n, _ in OTHERS])
def test_other_sources_samples_are_not_claimed(name: str, record: Any) -> None:
    assert not falco.matches(record)


def findings(batch: Batch) -> list[DetectionFinding]:
    return [e for e in batch.events if isinstance(e, DetectionFinding)]


def by_rule(batch: Batch) -> dict[str, list[OcsfEvent]]:
    """Rule -> [finding, *activities], in output order."""
    out: dict[str, list[OcsfEvent]] = {}
    current = ""
    for event in batch.events:
        if isinstance(event, DetectionFinding):
            current = event.finding_info.title or ""
            out[current] = [event]
        else:
            out[current].append(event)
    return out


def key_of(event: OcsfEvent) -> str | None:
    w = workload_of(getattr(event, "device", None), ACCOUNT)
    return w.key if w else None


POD = "k8s-pod:payments/payments-api-7d9f8c6b5-x2x7q"


def test_falco_json_output_becomes_findings_and_the_activity_they_describe() -> None:
    rules = by_rule(normalize_file(falco, "falco-0.39-json-output.jsonl"))

    # kubectl exec: a shell launched in the pod
    finding, launch = rules["Terminal shell in container"]
    assert isinstance(finding, DetectionFinding) and isinstance(launch, ProcessActivity)
    assert finding.severity_id == 2  # Notice -> Low
    assert finding.finding_info.analytic is not None
    assert finding.finding_info.analytic.name == "Terminal shell in container"
    attacks = finding.finding_info.attacks or []
    assert [
        (a.technique.uid if a.technique else None, a.tactic.uid if a.tactic else None)
        for a in attacks
    ] == [("T1059", "TA0002")]
    assert key_of(finding) == key_of(launch) == POD
    assert launch.activity_id == ProcessActivity.LAUNCH
    assert launch.process.cmd_line == "bash"
    assert launch.process.file is not None and launch.process.file.path == "/usr/bin/bash"
    assert launch.actor.process is not None and launch.actor.process.name == "runc"
    assert launch.device.container is not None
    assert launch.device.container.uid == "8f2c5e7a1b3d"
    assert launch.device.container.image is not None
    assert launch.device.container.image.name == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-api:1.42.0"
    )
    assert launch.time == 1762161247512  # the alert's nanosecond time, in ms

    # /etc/shadow read (this deployment appends proc.pid/proc.ppid)
    finding, read = rules["Read sensitive file untrusted"]
    assert finding.severity_id == 3  # Warning -> Medium
    assert isinstance(read, FileActivity)
    assert read.activity_id == FileActivity.READ
    assert read.file.path == "/etc/shadow"
    assert read.actor.process is not None and read.actor.process.pid == 48213
    assert read.actor.process.parent_process is not None
    assert read.actor.process.parent_process.pid == 48177
    assert [a.tactic.uid for a in finding.finding_info.attacks or [] if a.tactic] == ["TA0006"]

    # the instance metadata service
    finding, conn = rules["Contact EC2 Instance Metadata Service From Container"]
    assert isinstance(conn, NetworkActivity) and conn.activity_id == NetworkActivity.OPEN
    assert conn.dst_endpoint is not None
    assert (conn.dst_endpoint.ip, conn.dst_endpoint.port) == ("169.254.169.254", 80)
    assert conn.src_endpoint is not None and conn.src_endpoint.ip == "10.0.1.57"
    assert conn.connection_info is not None and conn.connection_info.direction_id == 2
    attack = (finding.finding_info.attacks or [])[0]
    assert attack.technique is not None and attack.technique.uid == "T1552"
    assert attack.sub_technique is not None and attack.sub_technique.uid == "T1552.005"

    # a reverse shell: stdin/stdout of bash duped onto a TCP connection
    finding, shell = rules["Redirect STDOUT/STDIN to Network Connection in Container"]
    assert isinstance(shell, NetworkActivity)
    assert shell.dst_endpoint is not None
    assert (shell.dst_endpoint.ip, shell.dst_endpoint.port) == ("198.51.100.23", 4444)
    assert shell.actor is not None and shell.actor.process is not None
    assert shell.actor.process.cmd_line == "bash -i"

    # a miner in a plain container
    finding, pool = rules["Detect outbound connections to common miner pool ports"]
    assert finding.severity_id == 5  # Critical
    assert key_of(finding) == "container:3b1d0c9e44a2"
    assert isinstance(pool, NetworkActivity)
    assert pool.dst_endpoint is not None and pool.dst_endpoint.port == 3333
    assert pool.connection_info is not None and pool.connection_info.protocol_name == "tcp"

    # persistence on a VM: a cron file created (container.id=host -> the host)
    finding, cron = rules["Schedule Cron Jobs"]
    assert key_of(finding) == key_of(cron) == "host:bastion-1.internal.example.com"
    assert isinstance(cron, FileActivity) and cron.activity_id == FileActivity.CREATE
    assert cron.file.path == "/etc/cron.d/0anacron-sync"
    assert cron.file.parent_folder == "/etc/cron.d"

    finding, pkg = rules["Launch Package Management Process in Container"]
    assert finding.severity_id == 4  # Error -> High
    assert isinstance(pkg, ProcessActivity)
    assert key_of(pkg) == "k8s-pod:analytics/reports-worker-5c7d9-kq2lp"

    # Kubernetes audit: a finding about the control plane, no host activity, no device
    (audit,) = rules["Attach/Exec Pod"]
    assert isinstance(audit, DetectionFinding)
    assert audit.device is None and audit.resources is None
    assert audit.unmapped is not None and audit.unmapped["source"] == "k8s_audit"


def test_a_finding_lists_the_activity_it_describes() -> None:
    batch = normalize_file(falco, "falco-0.39-json-output.jsonl")
    for finding, *activities in by_rule(batch).values():
        assert isinstance(finding, DetectionFinding)
        related = finding.finding_info.related_events or []
        assert [r.uid for r in related] == [a.metadata.uid for a in activities]
        assert {a.metadata.correlation_uid for a in activities} <= {finding.finding_info.uid}
        assert finding.metadata.uid == finding.finding_info.uid
        for activity in activities:
            assert activity.severity_id == 1
            assert activity.time == finding.time


def test_legacy_alerts_without_evt_type_or_hostname_are_findings_only() -> None:
    batch = normalize_file(falco, "falco-0.2x-legacy-json-output.jsonl")
    assert [type(e) for e in batch.events] == [DetectionFinding, DetectionFinding]
    shell, root = findings(batch)
    assert key_of(shell) == "container:bb1a36fcb1d5"
    assert root.device is None  # container.id=host and no hostname: no workload to name
    assert root.severity_id == 4
    assert shell.time == 1547024316335


def test_falcosidekick_json_keeps_its_uuid_as_the_finding_uid() -> None:
    batch = normalize_file(falco, "falcosidekick-2.29-json.jsonl")
    assert_valid(batch)
    uids = [f.finding_info.uid for f in findings(batch)]
    assert uids == ["5c7f3a6e-9d2b-4f1e-8a3c-0b6d7e9f1a24", "e0b8d4c2-1f3a-4b5c-9d6e-7f8a9b0c1d2e"]
    assert all(e.metadata.log_provider == "falcosidekick" for e in batch.events)
    plain = by_rule(normalize_file(falco, "falco-0.39-json-output.jsonl"))
    for finding, *activities in by_rule(batch).values():
        same = plain[finding.finding_info.title or ""]
        assert [
            comparable(e, "metadata", "finding_info", "evidences", "actor") for e in activities
        ] == [comparable(e, "metadata", "finding_info", "evidences", "actor") for e in same[1:]]


def core(events: list[OcsfEvent]) -> list[tuple[Any, ...]]:
    """What must not depend on how an alert was delivered."""
    out = []
    for e in events:
        d = e.to_ocsf()
        dst = d.get("dst_endpoint") or {}
        proc = d.get("process") or (d.get("actor") or {}).get("process") or {}
        out.append(
            (
                d["type_uid"],
                d["severity_id"],
                d["time"],
                key_of(e),
                (d.get("finding_info") or {}).get("title"),
                proc.get("cmd_line"),
                (d.get("file") or {}).get("path"),
                dst.get("ip"),
                dst.get("port"),
            )
        )
    return out


def test_sns_forms_give_the_same_findings_as_falco_json() -> None:
    plain = by_rule(normalize_file(falco, "falco-0.39-json-output.jsonl"))
    delivered = Batch()
    for name in (
        "falcosidekick-sns-notification.json",
        "falcosidekick-sns-lambda-event.json",
        "falcosidekick-sns-to-sqs-lambda-event.json",
    ):
        batch = normalize_file(falco, name)
        assert not batch.rejects
        assert_valid(batch)
        delivered.extend(batch)
    got = by_rule(delivered)
    assert sorted(got) == sorted(
        [
            "Contact EC2 Instance Metadata Service From Container",
            "Terminal shell in container",
            "Redirect STDOUT/STDIN to Network Connection in Container",
            "Schedule Cron Jobs",
            "Launch Package Management Process in Container",
        ]
    )
    for rule, events in got.items():
        assert core(events) == core(plain[rule]), rule
        finding = events[0]
        assert finding.metadata.log_provider == "falcosidekick"
        assert finding.unmapped is not None and finding.unmapped["delivery"] in ("sns", "sqs")
    imds = got["Contact EC2 Instance Metadata Service From Container"][0]
    assert imds.unmapped is not None
    assert imds.unmapped["sns_message_id"] == "0a3f6d1e-2b4c-5d6e-8f70-91a2b3c4d5e6"
    assert imds.unmapped["output_fields"]["fd.lport"] == 39812  # a Number attribute


def test_sns_text_without_any_time_falls_back_to_the_delivery_timestamp() -> None:
    note = json.loads((SAMPLES / "falco" / "falcosidekick-sns-notification.json").read_text())
    del note["MessageAttributes"]["evt.time"]
    (finding, *_) = check(falco.normalize(note, CTX)).events
    assert finding.time == 1762161302918  # the SNS Timestamp


def test_numbers_as_strings_give_equal_events() -> None:
    # In the SNS forms every attribute value is a string by protocol (typed String/Number),
    # so the question is the JSON forms' output_fields.
    payloads = [(n, r) for n, r in SAMPLES_FALCO if isinstance(r, dict) and "output_fields" in r]
    assert len(payloads) > 8
    for name, record in payloads:
        fields = record["output_fields"]
        numbers = {**record, "output_fields": strings_to_numbers(fields)}
        strings = {**record, "output_fields": numbers_to_strings(fields)}
        as_numbers = falco.normalize(numbers, CTX).events
        as_strings = falco.normalize(strings, CTX).events
        assert len(as_numbers) > 0
        assert [comparable(e, "unmapped") for e in as_numbers] == [
            comparable(e, "unmapped") for e in as_strings
        ], name


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        ("Emergency", 5),
        ("ALERT", 5),
        ("Critical", 5),
        ("Error", 4),
        ("Warning", 3),
        ("Notice", 2),
        ("Informational", 1),
        ("Info", 1),
        ("Debug", 1),
    ],
)
def test_priority_to_severity(priority: str, severity: int) -> None:
    record = json.loads(
        (SAMPLES / "falco" / "falco-0.39-json-output.jsonl").read_text().splitlines()[0]
    )
    record["priority"] = priority
    (finding, *_) = check(falco.normalize(record, CTX)).events
    assert finding.severity_id == severity


def test_mitre_tags_without_a_single_tactic_stay_apart() -> None:
    attacks = falco._attacks(["mitre_persistence", "mitre_privilege_escalation", "T1098", "x"])
    assert attacks is not None
    pairs = [
        (a.technique.uid if a.technique else None, a.tactic.uid if a.tactic else None)
        for a in attacks
    ]
    assert pairs == [("T1098", None), (None, "TA0003"), (None, "TA0004")]
    assert falco._attacks(["container", "maturity_stable"]) is None


# --------------------------------------------------------------------------------------------
# Rejects: every one with a reason


def first_line() -> dict[str, Any]:
    text = (SAMPLES / "falco" / "falco-0.39-json-output.jsonl").read_text()
    parsed: dict[str, Any] = json.loads(text.splitlines()[0])
    return parsed


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"hello": "world"}, "not a Falco alert"),
        ({**first_line(), "rule": ""}, "no rule name"),
        ({**first_line(), "output_fields": ["a"]}, "output_fields: expected an object"),
        ({**first_line(), "priority": 3}, "priority: expected a string"),
        ({**first_line(), "tags": "a,b"}, "tags: expected a list"),
        ({**first_line(), "output_fields": {str(i): i for i in range(300)}}, "over the 256 limit"),
        ({"Records": []}, "empty Records"),
        ({"Records": [{"eventSource": "aws:kinesis"}]}, "neither an SNS nor an SQS record"),
        ({"Type": "Notification", "Message": "text only"}, "without MessageAttributes"),
        ("x" * (MAX_RECORD_BYTES + 1), "over the"),
    ],
)
def test_unusable_records_are_rejected_with_a_reason(record: Any, reason: str) -> None:
    batch = check(falco.normalize(record, CTX))
    assert not batch.events
    assert len(batch.rejects) == 1
    assert reason in batch.rejects[0].reason


def test_an_alert_without_any_time_is_rejected_unless_the_context_has_one() -> None:
    record = first_line()
    del record["time"]
    del record["output_fields"]["evt.time"]
    batch = check(falco.normalize(record, CTX))
    assert "no usable time" in batch.rejects[0].reason
    received = Context(account=ACCOUNT, region=REGION, received_ms=1762161300000)
    batch = check(falco.normalize(record, received))
    assert batch.events and batch.events[0].time == 1762161300000


def test_one_bad_record_in_a_lambda_event_does_not_lose_the_others() -> None:
    event = json.loads((SAMPLES / "falco" / "falcosidekick-sns-lambda-event.json").read_text())
    event["Records"].insert(1, {"EventSource": "aws:sns", "Sns": {"Message": 42}})
    batch = check(falco.normalize(event, CTX))
    assert len(findings(batch)) == 2
    assert [r.where for r in batch.rejects] == ["Records[1]"]


def test_replay_detects_falco_files() -> None:
    out, err = io.StringIO(), io.StringIO()
    paths = [str(p) for p in sorted((SAMPLES / "falco").glob("*.json*"))]
    events, rejected, _skipped, per_source = replay(
        paths, "auto", account=ACCOUNT, region=REGION, out=out, err=err
    )
    assert rejected == 0, err.getvalue()
    assert events == per_source["falco"] == len(out.getvalue().splitlines()) > 20
    for line in out.getvalue().splitlines():
        assert validate_ocsf(json.loads(line)) == []


# --------------------------------------------------------------------------------------------
# Fuzz: no input raises, hangs, or yields an unexplained reject or an invalid event


@FUZZ
@given(st.one_of(JSON, st.text(max_size=300)))
def test_fuzz_arbitrary_json(value: Any) -> None:
    check(falco.normalize(value, CTX))
    falco.matches(value)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_samples(data: st.DataObject) -> None:
    _, record = data.draw(st.sampled_from(SAMPLES_FALCO))
    mutated = mutate(data, record)
    falco.matches(mutated)
    check(falco.normalize(mutated, CTX))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                *sorted(falco.SEVERITY),
                "rule",
                "priority",
                "output",
                "output_fields",
                "time",
                "tags",
                "source",
                "hostname",
                "uuid",
            ]
        ),
        JSON,
    )
)
def test_fuzz_alert_shaped_objects(value: dict[str, Any]) -> None:
    check(falco.normalize({"rule": "r", "priority": "Notice", **value}, CTX))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "proc.pid",
                "proc.cmdline",
                "fd.name",
                "fd.rip",
                "fd.rport",
                "fd.lip",
                "fd.sip",
                "fd.cip",
                "fd.type",
                "evt.type",
                "evt.arg.flags",
                "container.id",
                "k8s.ns.name",
                "k8s.pod.name",
                "evt.time",
                "proc.ppid",
                "user.uid",
                "fd.l4proto",
                "evt.arg.oldpath",
                "evt.arg.newpath",
            ]
        ),
        JSON
        | st.sampled_from(
            [
                "connect",
                "openat",
                "execve",
                "rename",
                "host",
                "/etc/x",
                "1.2.3.4",
                "1.2.3.4:1->5.6.7.8:2",
                "O_WRONLY",
            ]
        ),
    )
)
def test_fuzz_output_fields(fields: dict[str, Any]) -> None:
    record = first_line()
    record["output_fields"] = fields
    check(falco.normalize(record, CTX))
