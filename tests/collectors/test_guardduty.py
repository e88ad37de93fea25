"""GuardDuty findings (EventBridge events and bare findings) -> OCSF Detection Finding.

Every recorded sample under samples/guardduty/ must become the finding it describes, valid by
OCSF's own schema; the account rule holds; and no input (arbitrary JSON, mutated samples)
makes the adapter raise or hang. The fuzz helpers here are shared with test_inspector.py.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import guardduty
from collectors.base import MAX_RAW_DATA, Batch, Context
from collectors.guardduty import epoch_ms
from collectors.model import OcsfEvent, from_ocsf
from collectors.workload import workload_of
from tests.ocsf import validate_ocsf

SAMPLES = Path(__file__).resolve().parent / "samples"
GUARDDUTY = SAMPLES / "guardduty"
ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"


# --------------------------------------------------------------------------------------------
# Helpers (also imported by test_inspector.py)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def records_of(path: Path) -> list[Any]:
    """The records a sample file holds, however it is written (document, array or lines)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", "replace")
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
    return doc if isinstance(doc, list) else [doc]


def other_sources_records(own: str) -> list[tuple[str, Any]]:
    """Records of every other source's samples (tests/collectors/samples/<source>/...)."""
    found = []
    for path in sorted(SAMPLES.glob("*/*")):
        if path.parent.name == own or not path.is_file() or path.suffix.lower() == ".md":
            continue
        for i, record in enumerate(records_of(path)):
            found.append((f"{path.relative_to(SAMPLES)}[{i}]", record))
    return found


def check_batch(batch: Batch) -> list[dict[str, Any]]:
    """Every reject has a reason; every event is valid OCSF; the events as OCSF JSON."""
    assert isinstance(batch, Batch)
    for reject in batch.rejects:
        assert reject.reason.strip(), reject
        assert isinstance(reject.record, str)
    out = []
    for event in batch.events:
        assert isinstance(event, OcsfEvent)
        data = event.to_ocsf()
        assert validate_ocsf(data) == [], (validate_ocsf(data), data)
        assert from_ocsf(json.loads(json.dumps(data))) == event, "survives a round trip"
        assert data.get("raw_data"), "every event keeps its original record"
        assert len(data["raw_data"]) <= MAX_RAW_DATA
        out.append(data)
    return out


def arn_account(uid: str) -> str | None:
    parts = uid.split(":")
    return parts[4] if uid.startswith("arn:") and len(parts) > 5 else None


def check_identity(events: list[dict[str, Any]], trusted_account: str | None) -> None:
    """The account is the trusted one, and every ARN the event names is in it."""
    for data in events:
        account = data["cloud"]["account"]["uid"]
        if trusted_account is not None:
            assert account == trusted_account
        for resource in data.get("resources", []):
            owner = arn_account(resource.get("uid", ""))
            assert owner in (None, account), resource
        device_uid = data.get("device", {}).get("uid", "")
        assert arn_account(device_uid) in (None, account)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (dict keys, list indexes)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(paths(v, (*prefix, i)))
    return out


def _deep(n: int) -> Any:
    value: Any = "bottom"
    for i in range(n):
        value = [value] if i % 2 else {"k": value}
    return value


def _swap(value: Any) -> Any:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


MUTATIONS = ("delete", "replace", "swap", "huge", "deep", "giant", "blank")


def _new_value(draw: st.DrawFn, op: str, old: Any) -> Any:
    if op == "replace":
        return draw(json_values)
    if op == "swap":
        return _swap(old)
    if op == "huge":
        return "A" * draw(st.sampled_from([9_000, 70_000, 400_000]))
    if op == "deep":
        return _deep(draw(st.integers(20, 60)))
    if op == "giant":
        return [draw(json_scalars)] * draw(st.sampled_from([300, 5_000]))
    return draw(st.sampled_from(["", " ", None, [], {}, 0, -1]))  # blank


@st.composite
def mutated(draw: st.DrawFn, samples: list[Any]) -> Any:
    """A sample with up to three mutations (delete, swap types, huge, deep, giant...)."""
    record = copy.deepcopy(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 3))):
        targets = [p for p in paths(record) if p]
        if not targets:
            break
        where = draw(st.sampled_from(targets))
        parent = record
        for step in where[:-1]:
            parent = parent[step]
        key = where[-1]
        op = draw(st.sampled_from(MUTATIONS))
        if op == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
            continue
        parent[key] = _new_value(draw, op, parent[key])
    return record


FUZZ = settings(
    max_examples=100,
    deadline=timedelta(seconds=60),  # hang detection only
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------------------------
# The samples


def normalize_one(record: Any, ctx: Context | None = None) -> dict[str, Any]:
    batch = guardduty.normalize(record, ctx or Context(origin="test"))
    assert batch.rejects == [], [r.reason for r in batch.rejects]
    events = check_batch(batch)
    assert len(events) == 1
    return events[0]


SAMPLE_FILES = sorted(p.name for p in GUARDDUTY.glob("*.json"))

# name -> (workload type, workload uid, severity_id, activity_id, status_id, type, title start)
EXPECTED: dict[str, tuple[str, str, int, int, int, str, str]] = {
    "ec2-runtime-reverse-shell.json": (
        "ec2",
        "i-0a1b2c3d4e5f60718",
        4,
        1,
        1,
        "Execution:Runtime/ReverseShell",
        "A process on EC2 instance",
    ),
    "ecs-fargate-bitcoin-dns.json": (
        "ecs-task",
        "arn:aws:ecs:us-east-1:111122223333:task/payments/5f3c2a1b9d8e4f7a8b6c5d4e3f2a1b0c",
        4,
        2,
        1,
        "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
        "ECS Fargate task is querying",
    ),
    "eks-runtime-container-mounts-host.json": (
        "k8s-pod",
        "batch/report-worker-7d9f8b6c5d-x2lqp",
        3,
        1,
        1,
        "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        "A container in pod",
    ),
    "lambda-bitcoin-tool.json": (
        "lambda",
        "arn:aws:lambda:us-east-1:111122223333:function:thumbnailer",
        4,
        1,
        1,
        "CryptoCurrency:Lambda/BitcoinTool.B",
        "Lambda function thumbnailer",
    ),
    "lambda-cc-activity-get-findings.json": (
        "lambda",
        "arn:aws:lambda:us-east-1:111122223333:function:orders-webhook",
        4,
        1,
        1,
        "Backdoor:Lambda/C&CActivity.B",
        "Lambda function orders-webhook",
    ),
    "ec2-ssh-bruteforce-finding.json": (
        "ec2",
        "i-0e5f6a7b8c9d0e1f2",
        2,
        2,
        1,
        "UnauthorizedAccess:EC2/SSHBruteForce",
        "198.51.100.201 is performing SSH brute force",
    ),
    "ec2-ssh-bruteforce-archived.json": (
        "ec2",
        "i-0e5f6a7b8c9d0e1f2",
        2,
        3,
        5,
        "UnauthorizedAccess:EC2/SSHBruteForce",
        "198.51.100.201 is performing SSH brute force",
    ),
}


def test_every_sample_has_expectations():
    assert set(SAMPLE_FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_normalises_to_its_finding(name):
    # GIVEN a recorded GuardDuty finding
    record = load(GUARDDUTY / name)
    kind, uid, severity_id, activity_id, status_id, ftype, title = EXPECTED[name]
    # WHEN it is normalised
    data = normalize_one(record)
    event = guardduty.normalize(record, Context()).events[0]
    # THEN it is the Detection Finding it describes, about its own workload
    assert data["class_uid"] == 2004
    assert data["severity_id"] == severity_id
    assert data["activity_id"] == activity_id
    assert data["status_id"] == status_id
    assert data["finding_info"]["types"] == [ftype]
    assert data["finding_info"]["title"].startswith(title)
    assert data["metadata"]["product"] == {"name": "GuardDuty", "vendor_name": "AWS"}
    assert data["cloud"]["account"]["uid"] == ACCOUNT
    workload = workload_of(event.device, ACCOUNT)
    assert workload is not None
    assert (workload.type, workload.uid) == (kind, uid)
    assert data["resources"][0]["uid"] == uid
    check_identity([data], ACCOUNT)
    assert data["finding_info"]["product_uid"].endswith("::product/aws/guardduty")
    assert data["finding_info"]["src_url"].startswith("https://")


def test_reverse_shell_on_ec2_keeps_the_process_and_its_lineage():
    envelope = load(GUARDDUTY / "ec2-runtime-reverse-shell.json")
    data = normalize_one(envelope)
    process = data["actor"]["process"]
    assert (process["name"], process["pid"]) == ("bash", 21874)
    assert process["file"]["path"] == "/usr/bin/bash"
    assert process["file"]["hashes"][0]["algorithm_id"] == 3  # SHA-256
    assert process["user"] == {"name": "apache", "uid": "48"}
    assert process["working_directory"] == "/var/www/html/uploads"
    assert process["created_time"] == epoch_ms("2025-03-14T09:21:07.412Z")
    parent = process["parent_process"]
    assert (parent["name"], parent["pid"]) == ("php-fpm", 1432)
    assert parent["parent_process"]["name"] == "systemd"
    # the connection it made, as evidence: from the instance to the remote shell handler
    (evidence,) = data["evidences"]
    assert evidence["dst_endpoint"] == {"ip": "198.51.100.23", "port": 4444}
    assert evidence["src_endpoint"] == {"ip": "10.0.1.25", "port": 48312}
    assert evidence["connection_info"]["direction"] == "Outbound"
    (attack,) = data["finding_info"]["attacks"]
    assert attack["technique"]["uid"] == "T1059"
    assert attack["tactic"]["uid"] == "TA0002"
    # the envelope names the delivery; the finding keeps its own id and times
    assert data["metadata"]["uid"] == envelope["id"]
    assert data["metadata"]["correlation_uid"] == envelope["detail"]["id"]
    assert data["time"] == epoch_ms(envelope["detail"]["updatedAt"])
    assert data["metadata"]["logged_time"] == epoch_ms(envelope["time"])
    assert data["device"]["instance_uid"] == "i-0a1b2c3d4e5f60718"
    assert data["device"]["name"] == "web-1"
    assert data["resources"][0]["role_id"] == 1  # TARGET
    assert data["is_alert"] is True
    assert json.loads(data["raw_data"]) == envelope


def test_ecs_fargate_finding_names_the_task_and_its_container():
    data = normalize_one(load(GUARDDUTY / "ecs-fargate-bitcoin-dns.json"))
    assert data["resources"][0]["type"] == "AwsEcsTask"
    assert "ecs.cluster=payments" in data["resources"][0]["labels"]
    assert "ecs.launch_type=FARGATE" in data["resources"][0]["labels"]
    container = data["device"]["container"]
    assert container["uid"] == "5f3c2a1b9d8e4f7a8b6c5d4e3f2a1b0c-2471183021"
    assert container["image"]["name"].endswith("/payments-api:1.8.2")
    assert data["device"]["name"] == "payments-api:17"
    assert data["count"] == 14
    assert data["evidences"][0] == {"query": {"hostname": "pool.supportxmr.com"}}
    assert data["actor"]["process"]["namespace_pid"] == 47
    assert data["finding_info"]["attacks"][0]["technique"]["uid"] == "T1496"
    assert data["resources"][0]["role_id"] == 2  # ACTOR


def test_eks_finding_names_the_pod_its_node_and_the_runtime_context():
    data = normalize_one(load(GUARDDUTY / "eks-runtime-container-mounts-host.json"))
    assert data["resources"][0]["namespace"] == "batch"
    assert "eks.cluster=prod-eks" in data["resources"][0]["labels"]
    assert data["device"]["instance_uid"] == "i-0c3d5e7f9a1b2c4d6"  # the node
    assert data["device"]["container"]["name"] == "worker"
    context = data["evidences"][0]["data"]
    assert context["mountTarget"] == "/mnt/host"
    assert context["flags"] == ["MS_BIND", "MS_REC"]
    # the process start time was an epoch-seconds number, as the API writes it
    assert data["actor"]["process"]["created_time"] == 1742144320377
    assert data["finding_info"]["attacks"][0]["technique"]["uid"] == "T1611"


def test_lambda_findings_name_the_unqualified_function():
    data = normalize_one(load(GUARDDUTY / "lambda-bitcoin-tool.json"))
    assert data["device"]["type"] == "AWS Lambda function"
    assert "lambda.version=$LATEST" in data["resources"][0]["labels"]
    (evidence,) = data["evidences"]
    assert evidence["dst_endpoint"] == {"ip": "203.0.113.77", "port": 3333}
    assert "src_endpoint" not in evidence  # a port alone is not an OCSF endpoint
    assert "actor" not in data  # Lambda Protection sees network logs, not processes


def test_cli_get_findings_output_in_pascal_case_is_read():
    # GIVEN `aws guardduty get-findings` output: PascalCase, wrapped in "Findings"
    data = normalize_one(load(GUARDDUTY / "lambda-cc-activity-get-findings.json"))
    # THEN without an envelope the finding's own id names the event
    assert data["metadata"]["uid"] == "8c0e2a4c6e8a4c0e2a4c6e8a0c2e4a6c"
    assert "log_provider" not in data["metadata"]
    assert data["finding_info"]["attacks"][0]["technique"]["uid"] == "T1071"
    assert data["evidences"][0]["src_endpoint"]["ip"] == "10.0.12.87"


def test_classic_ec2_finding_inbound_connection():
    data = normalize_one(load(GUARDDUTY / "ec2-ssh-bruteforce-finding.json"))
    (evidence,) = data["evidences"]
    assert evidence["connection_info"]["direction_id"] == 1  # Inbound: the attacker is the source
    assert evidence["src_endpoint"]["ip"] == "198.51.100.201"
    assert evidence["dst_endpoint"] == {"ip": "10.0.0.14", "port": 22}
    assert data["finding_info"]["attacks"][0]["technique"]["uid"] == "T1110"
    assert data["count"] == 27


def test_archived_finding_closes_and_does_not_alert():
    data = normalize_one(load(GUARDDUTY / "ec2-ssh-bruteforce-archived.json"))
    assert (data["activity_name"], data["status"]) == ("Close", "Archived")
    assert data["is_alert"] is False


def test_sample_findings_are_labelled_and_not_alerts():
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["detail"]["service"]["additionalInfo"] = {"sample": True, "value": '{"sample":true}'}
    data = normalize_one(record)
    assert data["metadata"]["labels"] == ["sample"]
    assert data["is_alert"] is False


def test_json_text_is_accepted():
    text = (GUARDDUTY / "lambda-bitcoin-tool.json").read_text()
    assert normalize_one(text)["finding_info"]["uid"] == "5b7d9f1a3c5e4a6c8e0a2c4e6a8c0e2a"


def test_big_findings_keep_a_bounded_raw_data_flagged_as_truncated():
    record = load(GUARDDUTY / "ec2-runtime-reverse-shell.json")
    record["detail"]["description"] = "x" * 50_000
    data = normalize_one(record)
    assert len(data["raw_data"]) == MAX_RAW_DATA
    assert data["metadata"]["is_truncated"] is True
    assert data["metadata"]["untruncated_size"] > MAX_RAW_DATA
    assert len(data["finding_info"]["desc"]) < 9000  # fields are clipped too


# --------------------------------------------------------------------------------------------
# Severity


@pytest.mark.parametrize(
    ("value", "severity_id"),
    [
        (0.5, 1),
        (1.0, 2),
        (3.9, 2),
        (4.0, 3),
        (5, 3),
        (6.9, 3),
        (7.0, 4),
        (8.9, 4),
        (9.0, 5),
        (10.0, 5),
    ],
)
def test_severity_bands(value, severity_id):
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["detail"]["severity"] = value
    assert normalize_one(record)["severity_id"] == severity_id


@pytest.mark.parametrize("value", [0, -1, 10.5, "8", True, None, math.nan, math.inf, 10**400])
def test_unusable_severity_is_rejected(value):
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["detail"]["severity"] = value
    batch = guardduty.normalize(record, Context())
    assert batch.events == []
    assert "severity" in batch.rejects[0].reason


# --------------------------------------------------------------------------------------------
# Identity: the envelope's account and region, and nothing else


def _rejected(record: Any, ctx: Context | None = None) -> str:
    batch = guardduty.normalize(record, ctx or Context())
    assert batch.events == [], "must be rejected"
    assert len(batch.rejects) == 1
    return batch.rejects[0].reason


def test_finding_account_that_disagrees_with_the_envelope_is_rejected():
    # GIVEN an envelope from AWS for one account, and a finding that claims another
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["detail"]["accountId"] = OTHER_ACCOUNT
    # THEN it is rejected, saying why
    reason = _rejected(record)
    assert "another account" in reason
    assert OTHER_ACCOUNT in reason


def test_envelope_account_that_disagrees_with_the_finding_is_rejected():
    record = load(GUARDDUTY / "ec2-runtime-reverse-shell.json")
    record["account"] = OTHER_ACCOUNT
    assert "another account" in _rejected(record)


def test_finding_region_that_disagrees_with_the_envelope_is_rejected():
    record = load(GUARDDUTY / "ec2-runtime-reverse-shell.json")
    record["detail"]["region"] = "eu-west-1"
    assert "region" in _rejected(record)


@pytest.mark.parametrize(
    ("sample", "path", "value"),
    [
        (
            "lambda-bitcoin-tool.json",
            ("resource", "lambdaDetails", "functionArn"),
            f"arn:aws:lambda:us-east-1:{OTHER_ACCOUNT}:function:thumbnailer",
        ),
        (
            "ecs-fargate-bitcoin-dns.json",
            ("resource", "ecsClusterDetails", "taskDetails", "arn"),
            f"arn:aws:ecs:us-east-1:{OTHER_ACCOUNT}:task/payments/5f3c2a1b9d8e4f7a8b6c5d4e3f2a1b0c",
        ),
        (
            "ecs-fargate-bitcoin-dns.json",
            ("resource", "ecsClusterDetails", "arn"),
            f"arn:aws:ecs:us-east-1:{OTHER_ACCOUNT}:cluster/payments",
        ),
        (
            "eks-runtime-container-mounts-host.json",
            ("resource", "eksClusterDetails", "arn"),
            f"arn:aws:eks:eu-west-1:{OTHER_ACCOUNT}:cluster/prod-eks",
        ),
    ],
)
def test_resource_arn_in_another_account_is_rejected(sample, path, value):
    record = load(GUARDDUTY / sample)
    target = record["detail"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert "another account" in _rejected(record)


def test_resource_arn_in_another_region_is_rejected():
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    arn = "arn:aws:lambda:eu-west-1:111122223333:function:thumbnailer"
    record["detail"]["resource"]["lambdaDetails"]["functionArn"] = arn
    assert "region" in _rejected(record)


def test_operator_context_must_agree_with_the_envelope():
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    assert "operator-given" in _rejected(record, Context(account=OTHER_ACCOUNT))
    assert "operator-given" in _rejected(record, Context(region="eu-west-1"))
    normalize_one(record, Context(account=ACCOUNT, region="us-east-1"))


def test_bare_finding_uses_the_operator_context_when_given():
    finding = load(GUARDDUTY / "ec2-ssh-bruteforce-finding.json")
    assert normalize_one(finding)["cloud"]["account"]["uid"] == ACCOUNT  # nothing given
    normalize_one(finding, Context(account=ACCOUNT, region="us-east-1"))
    assert "another account" in _rejected(finding, Context(account=OTHER_ACCOUNT))


def test_envelope_with_malformed_account_is_rejected():
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["account"] = "1111-2222-3333"
    assert "account" in _rejected(record)


# --------------------------------------------------------------------------------------------
# What is not for us


@pytest.mark.parametrize("resource_type", ["AccessKey", "S3Bucket", "RDSDBInstance"])
def test_findings_about_non_workloads_are_skipped_and_counted(resource_type):
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["detail"]["resource"] = {"resourceType": resource_type}
    batch = guardduty.normalize(record, Context())
    assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


def test_eks_control_plane_finding_without_a_workload_is_skipped():
    record = load(GUARDDUTY / "eks-runtime-container-mounts-host.json")
    del record["detail"]["resource"]["kubernetesDetails"]
    batch = guardduty.normalize(record, Context())
    assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


def test_other_guardduty_event_types_are_skipped():
    record = {
        "version": "0",
        "id": "5d1c3a0e-2b4d-4f6a-8c0e-1a3b5c7d9e0f",
        "detail-type": "GuardDuty Runtime Protection Unhealthy",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": "2025-03-14T09:27:41Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"resourceType": "EC2"},
    }
    assert guardduty.matches(record)
    batch = guardduty.normalize(record, Context())
    assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


def test_another_services_event_is_rejected_with_a_reason():
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["source"] = "aws.securityhub"
    assert not guardduty.matches(record)
    assert "aws.securityhub" in _rejected(record)


def test_a_list_with_a_bad_item_rejects_only_that_item():
    listing = load(GUARDDUTY / "lambda-cc-activity-get-findings.json")
    listing["Findings"].append({"Id": "x"})
    batch = guardduty.normalize(listing, Context(origin="f.json"))
    assert len(batch.events) == 1
    (reject,) = batch.rejects
    assert reject.where == "findings[1]"  # where in the record; replay adds the file


# --------------------------------------------------------------------------------------------
# Time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-14T09:27:29.871Z", 1741944449871),
        ("2025-03-14T09:27:29Z", 1741944449000),
        ("2025-03-14T09:27:29.871234567Z", 1741944449871),
        ("2025-03-14T10:27:29.871+01:00", 1741944449871),
        ("2025-03-14T09:27:29.871000+00:00", 1741944449871),
        ("Fri Mar 14 09:27:29.871 UTC 2025", 1741944449871),
        ("Mar 14, 2025, 9:27:29 AM", 1741944449000),
        ("Mar 14, 2025, 9:27:29\u202fPM", 1741944449000 + 12 * 3600 * 1000),
        ("Dec 3, 2021, 12:02:30 AM", 1638489750000),
        (1741944449.871, 1741944449871),
        (1741944449871, 1741944449871),
        ("1.741944449871E9", 1741944449871),
    ],
)
def test_timestamps_in_every_form_aws_writes_them(text, expected):
    assert epoch_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "Foo 14, 2025, 9:27:29 AM",
        0,
        -5,
        True,
        1e300,
        "9" * 70,
    ],
)
def test_unusable_timestamps(text):
    assert epoch_ms(text) is None


# --------------------------------------------------------------------------------------------
# Auto-detection and replay


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_matches_its_own_samples(name):
    assert guardduty.matches(load(GUARDDUTY / name))


def test_matches_no_other_sources_samples():
    claimed = [
        where for where, record in other_sources_records("guardduty") if guardduty.matches(record)
    ]
    assert claimed == []


def test_replay_auto_detects_and_normalises_every_sample():
    from ramparts_cli.replay import replay

    out, err = io.StringIO(), io.StringIO()
    files = [str(GUARDDUTY / name) for name in SAMPLE_FILES]
    events, rejected, _skipped, per_source = replay(files, "auto", out=out, err=err)
    assert (events, rejected) == (len(SAMPLE_FILES), 0), err.getvalue()
    assert per_source == {"guardduty": len(SAMPLE_FILES)}
    assert all(json.loads(line)["class_uid"] == 2004 for line in out.getvalue().splitlines())


# --------------------------------------------------------------------------------------------
# Fuzz: nothing raises, nothing hangs, every reject says why, every event is valid OCSF


GUARDDUTY_SAMPLES = [load(GUARDDUTY / name) for name in SAMPLE_FILES]


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json(value):
    check_batch(guardduty.normalize(value, Context()))


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "source": st.just("aws.guardduty"),
            "detail-type": st.sampled_from(["GuardDuty Finding", "Other"]),
            "account": st.sampled_from([ACCOUNT, "x", 5]),
            "region": st.sampled_from(["us-east-1", ""]),
            "detail": json_values,
        }
    )
)
def test_fuzz_envelope_with_arbitrary_detail(record):
    check_batch(guardduty.normalize(record, Context()))


@FUZZ
@given(mutated(GUARDDUTY_SAMPLES))
def test_fuzz_mutated_samples(record):
    batch = guardduty.normalize(record, Context())
    events = check_batch(batch)
    trusted = record.get("account") if isinstance(record, dict) and "detail" in record else None
    check_identity(events, trusted)


@FUZZ
@given(mutated(GUARDDUTY_SAMPLES))
def test_fuzz_mutated_samples_as_text(record):
    check_batch(guardduty.normalize(json.dumps(record), Context()))


def test_numbers_too_big_to_print_are_rejected_not_raised():
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    record["detail"]["service"]["count"] = 10**5000
    assert "JSON" in _rejected(record)


def test_a_configured_member_accounts_finding_through_the_administrators_bus_is_kept():
    # GIVEN a delegated administrator's bus carrying a member account's finding
    record = load(GUARDDUTY / "lambda-bitcoin-tool.json")
    member = record["detail"]["accountId"]
    record["account"] = OTHER_ACCOUNT
    # WITHOUT configuration it is rejected; WITH the member configured it is kept, and the
    # workload stays in the member account (its resources must be there)
    assert "another account" in _rejected(record)
    batch = guardduty.normalize(record, Context(member_accounts=frozenset({member})))
    [event] = batch.events
    assert event.cloud.account is not None and event.cloud.account.uid == member
    assert event.resources and member in (event.resources[0].uid or "")
