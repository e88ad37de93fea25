"""The OCSF validator in tests/ocsf.py, on hand-written events.

The valid events below are the smallest events OCSF accepts for each class Ramparts
emits: only required attributes (plus the odd recommended one where it makes the event
readable). They double as documentation of what each class requires; `python -m
tests.ocsf CLASS_UID` lists the rest.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ocsf import ALLOWED_PROFILES, OCSF_VERSION, ocsf_class, ocsf_object, validate_ocsf

ROOT = Path(__file__).resolve().parent.parent

T = 1_760_000_000_000  # epoch milliseconds (2025-10-09)

# metadata: `version` (the OCSF version) and `product` (at least one of name, uid).
METADATA = {
    "version": OCSF_VERSION,
    "product": {"name": "Ramparts", "vendor_name": "Ramparts", "version": "0.1.0"},
}

# device (required in System Activity classes): `type_id` and at least one of ip, uid, name,
# hostname, instance_uid, interface_uid, interface_name. A Lambda sandbox is a virtual device.
LAMBDA_DEVICE = {"type_id": 6, "name": "orders-api"}  # 6 Virtual

# actor: at least one of process, user, session, app_name, app_uid (invoked_by: deprecated).
# process: at least one of pid, uid, cpid.
HANDLER_ACTOR = {"process": {"pid": 8, "name": "python3.12"}}

# --- System Activity (category 1): actor and device are required --------------------

PROCESS_LAUNCH = {
    "class_uid": 1007,  # Process Activity
    "category_uid": 1,  # System Activity
    "activity_id": 1,  # Launch
    "type_uid": 100701,  # class_uid * 100 + activity_id
    "severity_id": 1,  # Informational
    "time": T,
    "metadata": METADATA,
    "actor": HANDLER_ACTOR,
    "device": LAMBDA_DEVICE,
    "process": {"pid": 42, "name": "sh", "cmd_line": "sh -c id"},
}

FILE_CREATE = {
    "class_uid": 1001,  # File System Activity
    "category_uid": 1,
    "activity_id": 1,  # Create
    "type_uid": 100101,
    "severity_id": 1,
    "time": T,
    "metadata": METADATA,
    "actor": HANDLER_ACTOR,
    "device": LAMBDA_DEVICE,
    # file: `name` and `type_id` are required; path is recommended.
    "file": {"name": "payload.so", "type_id": 1, "path": "/tmp/payload.so"},  # 1 Regular File
}

# --- Network Activity (category 4): at least one of src_endpoint, dst_endpoint --------
# network_endpoint: at least one of ip, uid, name, hostname, svc_name, instance_uid,
# interface_uid, interface_name, domain.

NETWORK_OPEN = {
    "class_uid": 4001,  # Network Activity
    "category_uid": 4,  # Network Activity
    "activity_id": 1,  # Open
    "type_uid": 400101,
    "severity_id": 1,
    "time": T,
    "metadata": METADATA,
    "dst_endpoint": {"ip": "203.0.113.10", "port": 443},
}

DNS_QUERY = {
    "class_uid": 4003,  # DNS Activity
    "category_uid": 4,
    "activity_id": 1,  # Query
    "type_uid": 400301,
    "severity_id": 1,
    "time": T,
    "metadata": METADATA,
    "dst_endpoint": {"ip": "169.254.78.1", "port": 53},
    "query": {"hostname": "example.com", "type": "A"},  # dns_query: `hostname` required
}

# --- Application Activity (category 6) -----------------------------------------------

API_READ = {
    "class_uid": 6003,  # API Activity
    "category_uid": 6,  # Application Activity
    "activity_id": 2,  # Read
    "type_uid": 600302,
    "severity_id": 1,
    "time": T,
    "metadata": METADATA,
    # actor, api (`operation` required) and src_endpoint are all required here.
    "actor": {"user": {"uid": "arn:aws:sts::123456789012:assumed-role/orders-api/orders-api"}},
    "api": {"operation": "GetObject", "service": {"name": "s3.amazonaws.com"}},
    "src_endpoint": {"name": "orders-api"},
}

# --- Findings (category 2): finding_info (`uid` required) -----------------------------

DETECTION = {
    "class_uid": 2004,  # Detection Finding
    "category_uid": 2,  # Findings
    "activity_id": 1,  # Create
    "type_uid": 200401,
    "severity_id": 4,  # High
    "time": T,
    "metadata": METADATA,
    "finding_info": {
        "uid": "rf-0001",
        "title": "Shell spawned by a Lambda handler",
        "analytic": {"type_id": 1, "name": "lambda-shell-spawn"},  # analytic: `type_id` req.
    },
}

VULNERABILITY = {
    "class_uid": 2002,  # Vulnerability Finding
    "category_uid": 2,
    "activity_id": 1,  # Create
    "type_uid": 200201,
    "severity_id": 3,  # Medium
    "time": T,
    "metadata": METADATA,
    "finding_info": {"uid": "rf-0002", "title": "CVE-2024-3651 in idna 3.6"},
    # vulnerabilities: each has exactly one of advisory, cve, cwe; cve needs `uid`;
    # an affected_package needs `name` and `version`.
    "vulnerabilities": [
        {
            "cve": {"uid": "CVE-2024-3651"},
            "affected_packages": [{"name": "idna", "version": "3.6", "fixed_in_version": "3.7"}],
        }
    ],
}

VALID = {
    "process_launch": PROCESS_LAUNCH,
    "file_create": FILE_CREATE,
    "network_open": NETWORK_OPEN,
    "dns_query": DNS_QUERY,
    "api_read": API_READ,
    "detection_finding": DETECTION,
    "vulnerability_finding": VULNERABILITY,
}


def changed(event: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    """A deep copy of `event` with top-level attributes replaced (None: removed)."""
    out = copy.deepcopy(event)
    for name, value in attrs.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def assert_rejected(event: dict[str, Any], *fragments: str) -> list[str]:
    errors = validate_ocsf(event)
    assert errors, "expected the event to be rejected"
    text = "\n".join(errors)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    return errors


# --- valid -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID)
def test_minimal_events_are_valid(name: str) -> None:
    assert validate_ocsf(VALID[name]) == []


def test_pinned_version() -> None:
    assert OCSF_VERSION == "1.8.0"
    assert PROCESS_LAUNCH["metadata"]["version"] == OCSF_VERSION  # type: ignore[index]


def test_other_99_is_a_valid_enum_value() -> None:
    # Every *_id enum the classes reach defines 99 Other, except tcp_state_id.
    assert validate_ocsf(changed(PROCESS_LAUNCH, activity_id=99, type_uid=100799)) == []


def test_enum_siblings_must_carry_the_caption() -> None:
    named = changed(
        PROCESS_LAUNCH,
        class_name="Process Activity",
        category_name="System Activity",
        activity_name="Launch",
        type_name="Process Activity: Launch",
        severity="Informational",
    )
    assert validate_ocsf(named) == []
    assert validate_ocsf(changed(named, activity_name="Spawn")) == [
        "activity_name: 'Spawn' does not match activity_id=1 ('Launch'); "
        "only activity_id=99 (Other) takes a free label"
    ]
    # With 99 Other the sibling is the source's own label.
    assert validate_ocsf(
        changed(named, activity_id=99, type_uid=100799, activity_name="Spawn")
    ) == [
        "type_name: 'Process Activity: Launch' does not match type_uid=100799 "
        "('Process Activity: Other')"
    ]


def test_unmapped_takes_anything() -> None:
    event = changed(NETWORK_OPEN, unmapped={"sensor": {"rule": "egress", "anything": [1, "x"]}})
    assert validate_ocsf(event) == []


# --- rejected -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "required"),
    [
        ("process_launch", "process"),
        ("process_launch", "actor"),
        ("process_launch", "device"),
        ("file_create", "file"),
        ("api_read", "src_endpoint"),
        ("detection_finding", "finding_info"),
        ("vulnerability_finding", "vulnerabilities"),
        ("dns_query", "metadata"),
        ("network_open", "time"),
        ("network_open", "severity_id"),
    ],
)
def test_missing_required_attribute(name: str, required: str) -> None:
    assert_rejected(
        changed(VALID[name], **{required: None}), f"event: missing required attribute {required!r}"
    )


def test_missing_required_nested_attribute() -> None:
    event = changed(FILE_CREATE, file={"name": "payload.so"})
    assert validate_ocsf(event) == ["file: missing required attribute 'type_id'"]
    event = changed(PROCESS_LAUNCH, metadata={"product": {"name": "Ramparts"}})
    assert validate_ocsf(event) == ["metadata: missing required attribute 'version'"]


def test_at_least_one_and_just_one_constraints() -> None:
    assert_rejected(changed(NETWORK_OPEN, dst_endpoint=None), "at least one of dst_endpoint")
    assert_rejected(changed(PROCESS_LAUNCH, actor={}), "actor: Actor needs at least one of")
    assert_rejected(
        changed(PROCESS_LAUNCH, process={"name": "sh"}), "needs at least one of pid, uid, cpid"
    )
    both = [{"cve": {"uid": "CVE-2024-3651"}, "cwe": {"uid": "CWE-400"}}]
    assert_rejected(
        changed(VULNERABILITY, vulnerabilities=both),
        "vulnerabilities[0]: Vulnerability Details needs exactly one of advisory, cve, cwe",
    )


def test_unknown_attribute() -> None:
    assert validate_ocsf(changed(PROCESS_LAUNCH, lambda_arn="arn:aws:lambda:...")) == [
        "lambda_arn: not an attribute of class 'process_activity' in OCSF 1.8.0"
    ]
    nested = changed(PROCESS_LAUNCH, process={"pid": 42, "argv": ["sh"]})
    assert validate_ocsf(nested) == [
        "process.argv: not an attribute of object 'process' in OCSF 1.8.0"
    ]
    in_array = copy.deepcopy(VULNERABILITY)
    in_array["vulnerabilities"][0]["cve"]["score"] = 9.8
    assert_rejected(in_array, "vulnerabilities[0].cve.score: not an attribute of object 'cve'")


def test_profile_attributes_need_the_profile() -> None:
    cloud = {"provider": "AWS", "region": "eu-west-1", "account": {"uid": "123456789012"}}
    # The cloud profile's attribute without the profile: unknown.
    assert_rejected(
        changed(PROCESS_LAUNCH, cloud=cloud),
        "cloud: attribute of class 'process_activity' only with profile cloud",
    )
    # Declared: valid; the profile makes `cloud` (with `provider`) required.
    profiled = changed(PROCESS_LAUNCH, cloud=cloud)
    profiled["metadata"] = {**METADATA, "profiles": ["cloud"]}
    assert validate_ocsf(profiled) == []
    assert_rejected(changed(profiled, cloud=None), "missing required attribute 'cloud'")
    assert_rejected(changed(profiled, cloud={"region": "eu-west-1"}), "'provider'")
    # Profiles reach into objects too: process.container comes with the container profile.
    boxed = changed(PROCESS_LAUNCH, process={"pid": 42, "container": {"uid": "c-1"}})
    assert_rejected(boxed, "process.container: attribute of object 'process' only with profile")
    boxed["metadata"] = {**METADATA, "profiles": ["container"]}
    assert validate_ocsf(boxed) == []


def test_network_events_carry_actor_and_device_only_with_the_host_profile() -> None:
    # Unlike System Activity, where both are plain required attributes.
    event = changed(NETWORK_OPEN, device=LAMBDA_DEVICE, actor=HANDLER_ACTOR)
    assert_rejected(event, "device: attribute of class 'network_activity' only with profile host")
    event["metadata"] = {**METADATA, "profiles": ["host"]}
    assert validate_ocsf(event) == []


def test_profiles_ramparts_does_not_enable_are_rejected() -> None:
    assert sorted(ALLOWED_PROFILES) == ["cloud", "container", "host", "security_control"]
    event = copy.deepcopy(PROCESS_LAUNCH)
    event["metadata"]["profiles"] = ["osint", "no_such_profile"]
    assert validate_ocsf(event) == [
        "metadata.profiles[0]: profile 'osint' is not enabled for Ramparts events "
        "(allowed: cloud, container, host, security_control)",
        "metadata.profiles[1]: process_activity has no profile 'no_such_profile'",
    ]


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        ({"time": "2025-10-09T00:00:00Z"}, "time: Event Time must be integer, got str"),
        ({"time": float(T)}, "time: Event Time must be integer, got float"),
        ({"severity_id": True}, "severity_id: Severity ID must be integer, got bool"),
        ({"process": {"pid": "42"}}, "process.pid: Process ID must be integer, got str"),
        ({"process": [{"pid": 42}]}, "process: Process must be object, got list"),
        ({"observables": {"type_id": 1}}, "observables: Observables must be array, got dict"),
        ({"device": {"type_id": 6, "ip": "not-an-ip"}}, "device.ip: 'not-an-ip' is not a valid"),
    ],
)
def test_wrong_type(attrs: dict[str, Any], fragment: str) -> None:
    assert_rejected(changed(PROCESS_LAUNCH, **attrs), fragment)


def test_null_is_not_a_value() -> None:
    event = copy.deepcopy(PROCESS_LAUNCH)
    event["severity_id"] = None  # serialise models without None values (exclude_none)
    assert validate_ocsf(event) == ["severity_id: Severity ID must be integer, got NoneType None"]


def test_timestamps_are_epoch_milliseconds() -> None:
    assert_rejected(
        changed(PROCESS_LAUNCH, time=T // 1000),
        "time: 1760000000 is not a plausible epoch-milliseconds",
    )
    assert_rejected(changed(DETECTION, time=T * 1_000_000), "not a plausible epoch-milliseconds")
    nested = copy.deepcopy(VULNERABILITY)
    nested["vulnerabilities"][0]["cve"]["created_time"] = 1_712_000_000
    assert_rejected(nested, "vulnerabilities[0].cve.created_time: 1712000000 is not a plausible")


@pytest.mark.parametrize(
    ("name", "attrs", "fragment"),
    [
        ("process_launch", {"severity_id": 7}, "severity_id: 7 is not a defined Severity ID value"),
        ("process_launch", {"activity_id": 42, "type_uid": 100742}, "activity_id: 42 is not"),
        ("file_create", {"file": {"name": "x", "type_id": 42}}, "file.type_id: 42 is not"),
        ("detection_finding", {"category_uid": 1}, "category_uid: Category ID must be 2, got 1"),
        ("dns_query", {"class_uid": 4001, "type_uid": 400101}, "query: not an attribute of"),
    ],
)
def test_wrong_enum_id(name: str, attrs: dict[str, Any], fragment: str) -> None:
    assert_rejected(changed(VALID[name], **attrs), fragment)


def test_wrong_type_uid() -> None:
    # A defined type_uid of the class, but for another activity.
    assert validate_ocsf(changed(PROCESS_LAUNCH, type_uid=100702)) == [
        "type_uid: 100702, but class_uid*100 + activity_id = 100701"
    ]
    # Another class's type_uid: not even defined for this class.
    assert_rejected(changed(PROCESS_LAUNCH, type_uid=100101), "type_uid: 100101 is not a defined")


def test_wrong_class_uid_and_version() -> None:
    assert validate_ocsf({"class_uid": 9999}) == ["class_uid: 9999 is not a class of OCSF 1.8.0"]
    assert validate_ocsf({}) == ["class_uid: missing or not an integer (None)"]
    old = copy.deepcopy(NETWORK_OPEN)
    old["metadata"]["version"] = "1.1.0"
    assert validate_ocsf(old) == ["metadata.version: '1.1.0', but the schema checked is 1.8.0"]


# --- lookups and CLI ------------------------------------------------------------------------


def test_ocsf_class_lookup() -> None:
    cls = ocsf_class(1007)
    assert (cls["name"], cls["category_uid"]) == ("process_activity", 1)
    attrs = cls["attributes"]
    required = {n for n, a in attrs.items() if a["requirement"] == "required" and not a["profiles"]}
    assert required == {
        "activity_id",
        "actor",
        "category_uid",
        "class_uid",
        "device",
        "metadata",
        "process",
        "severity_id",
        "time",
        "type_uid",
    }
    assert attrs["cloud"]["profiles"] == ["cloud"]
    assert attrs["activity_id"]["enum"][1] == "Launch"
    assert attrs["time"]["type"] == "timestamp_t"
    assert ocsf_object("file")["attributes"]["name"]["requirement"] == "required"
    with pytest.raises(KeyError):
        ocsf_class(9999)


def test_cli_prints_a_class() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.ocsf", "1007"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = result.stdout
    assert out.startswith("Process Activity (process_activity): class_uid 1007")
    required = out.split("\nrequired:\n", 1)[1].split("\n\n", 1)[0]
    assert "  process " in required
    assert "object:process" in required
    assert "timestamp_t" in required
