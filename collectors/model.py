"""The common event model: OCSF 1.8.0 classes as pydantic models.

One model for every source (the Ramparts layer, Falco, osquery, Tetragon, GuardDuty,
Inspector2), so that one set of detections and one response path serve every workload.
Only the attributes Ramparts fills are modelled, each with OCSF's own name and type; every
model forbids unknown attributes, and ``tests/ocsf.py`` checks the serialised events against
OCSF's schema. Serialise with :meth:`OcsfEvent.to_ocsf` (no ``None`` values: OCSF has no
nulls).

Where things live:

* the workload an event happened on is ``device`` (Lambda function, EC2 instance, ECS
  task, Kubernetes node) with ``device.container`` for a container and the pod in
  ``device.container.pod_uuid``/``labels``; :mod:`collectors.workload` turns that into a
  :class:`~collectors.workload.Workload` (type + uid) and back;
* the AWS account and region are ``cloud.account.uid`` and ``cloud.region``;
* findings name their resources in ``resources`` (``resource_details``);
* the original record is ``raw_data`` (bounded, see :mod:`collectors.base`);
* what a source says that OCSF has no place for goes to ``unmapped``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

OCSF_VERSION = "1.8.0"
PROFILES = ["cloud", "host", "container"]
# Activity seen by a sensor that decides (the Ramparts layer): allowed, alerted, blocked.
SECURITY_CONTROL = "security_control"
ACTION_ALLOWED, ACTION_DENIED, ACTION_OBSERVED = 1, 2, 3
DISPOSITION_ALLOWED, DISPOSITION_BLOCKED, DISPOSITION_ALERT = (
    1,
    2,
    19,
)  # OCSF: Allowed, Blocked, Alert


class Obj(BaseModel):
    """Base of every OCSF object: strict about names, quiet about absent values."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=False)


# -- objects ------------------------------------------------------------------------------------
class Product(Obj):
    name: str
    vendor_name: str
    version: str | None = None
    uid: str | None = None


class Metadata(Obj):
    version: str = OCSF_VERSION
    product: Product
    profiles: list[str] = Field(default_factory=lambda: list(PROFILES))
    uid: str | None = None
    log_name: str | None = None
    log_provider: str | None = None
    original_time: str | None = None
    logged_time: int | None = None
    processed_time: int | None = None
    event_code: str | None = None
    correlation_uid: str | None = None
    sequence: int | None = None
    labels: list[str] | None = None
    is_truncated: bool | None = None
    untruncated_size: int | None = None


class Account(Obj):
    uid: str
    type_id: int | None = 10  # AWS Account
    type: str | None = "AWS Account"
    name: str | None = None


class Cloud(Obj):
    provider: str = "AWS"
    region: str | None = None
    account: Account | None = None
    zone: str | None = None


class Image(Obj):
    name: str | None = None
    uid: str | None = None
    tag: str | None = None
    path: str | None = None


class Container(Obj):
    uid: str | None = None
    name: str | None = None
    image: Image | None = None
    runtime: str | None = None
    pod_uuid: str | None = None
    orchestrator: str | None = None
    labels: list[str] | None = None
    network_driver: str | None = None


class User(Obj):
    uid: str | None = None
    name: str | None = None
    type_id: int | None = None
    type: str | None = None


class Device(Obj):
    type_id: int
    type: str | None = None
    uid: str | None = None
    name: str | None = None
    hostname: str | None = None
    instance_uid: str | None = None
    region: str | None = None
    ip: str | None = None
    zone: str | None = None
    vpc_uid: str | None = None
    subnet_uid: str | None = None
    image: Image | None = None
    container: Container | None = None
    namespace_pid: int | None = None


class Fingerprint(Obj):
    algorithm_id: int
    algorithm: str | None = None
    value: str


class File(Obj):
    name: str
    type_id: int = 1  # Regular File
    type: str | None = None
    path: str | None = None
    parent_folder: str | None = None
    ext: str | None = None
    hashes: list[Fingerprint] | None = None
    mime_type: str | None = None
    size: int | None = None
    uid: str | None = None
    owner: User | None = None
    modified_time: int | None = None
    created_time: int | None = None
    attributes: int | None = None


class EnvironmentVariable(Obj):
    name: str
    value: str


class Process(Obj):
    pid: int | None = None
    uid: str | None = None
    name: str | None = None
    cmd_line: str | None = None
    file: File | None = None
    parent_process: Process | None = None
    user: User | None = None
    created_time: int | None = None
    terminated_time: int | None = None
    container: Container | None = None
    namespace_pid: int | None = None
    working_directory: str | None = None
    environment_variables: list[EnvironmentVariable] | None = None


class Actor(Obj):
    process: Process | None = None
    user: User | None = None
    app_name: str | None = None
    app_uid: str | None = None


class NetworkEndpoint(Obj):
    ip: str | None = None
    port: int | None = None
    hostname: str | None = None
    name: str | None = None
    uid: str | None = None
    domain: str | None = None
    instance_uid: str | None = None
    svc_name: str | None = None
    type_id: int | None = None
    type: str | None = None
    container: Container | None = None


class NetworkConnectionInfo(Obj):
    protocol_name: str | None = None
    protocol_num: int | None = None
    protocol_ver_id: int | None = None  # 4 IPv4, 6 IPv6
    protocol_ver: str | None = None
    direction_id: int | None = None  # 1 Inbound, 2 Outbound, 3 Lateral
    direction: str | None = None
    uid: str | None = None


class DnsQuery(Obj):
    hostname: str
    type: str | None = None
    class_: str | None = Field(default=None, alias="class")
    opcode_id: int | None = None


class DnsAnswer(Obj):
    rdata: str
    type: str | None = None
    ttl: int | None = None


class Service(Obj):
    name: str | None = None
    uid: str | None = None


class Request(Obj):
    uid: str


class Api(Obj):
    operation: str
    service: Service | None = None
    version: str | None = None
    request: Request | None = None


class ResourceDetails(Obj):
    uid: str | None = None
    name: str | None = None
    type: str | None = None
    region: str | None = None
    cloud_partition: str | None = None
    namespace: str | None = None
    labels: list[str] | None = None
    role_id: int | None = None
    hostname: str | None = None
    ip: str | None = None


class Analytic(Obj):
    type_id: int = 1  # Rule
    type: str | None = "Rule"
    name: str | None = None
    uid: str | None = None
    category: str | None = None
    desc: str | None = None


class Technique(Obj):
    uid: str
    name: str | None = None


class Tactic(Obj):
    uid: str | None = None
    name: str | None = None


class Attack(Obj):
    technique: Technique | None = None
    tactic: Tactic | None = None
    version: str | None = None
    sub_technique: Technique | None = None  # OCSF sub_technique: same shape (uid, name)


class RelatedEvent(Obj):
    uid: str
    type_uid: int | None = None
    type: str | None = None
    product_uid: str | None = None


class FindingInfo(Obj):
    uid: str
    title: str | None = None
    desc: str | None = None
    types: list[str] | None = None
    analytic: Analytic | None = None
    attacks: list[Attack] | None = None
    created_time: int | None = None
    modified_time: int | None = None
    first_seen_time: int | None = None
    last_seen_time: int | None = None
    src_url: str | None = None
    product_uid: str | None = None
    data_sources: list[str] | None = None
    related_events: list[RelatedEvent] | None = None
    related_events_count: int | None = None


class Cvss(Obj):
    base_score: float
    version: str
    severity: str | None = None
    vector_string: str | None = None
    vendor_name: str | None = None  # who scored it (NVD, a distribution...)


class Epss(Obj):
    """Exploit Prediction Scoring System (OCSF ``epss``); ``score`` is a string in OCSF."""

    score: str
    percentile: float | None = None
    version: str | None = None
    created_time: int | None = None


class Cve(Obj):
    uid: str
    title: str | None = None
    desc: str | None = None
    cvss: list[Cvss] | None = None
    references: list[str] | None = None
    created_time: int | None = None
    modified_time: int | None = None
    epss: Epss | None = None


class Advisory(Obj):
    uid: str
    title: str | None = None
    desc: str | None = None
    references: list[str] | None = None
    created_time: int | None = None
    modified_time: int | None = None
    src_url: str | None = None


class AffectedPackage(Obj):
    name: str
    version: str
    fixed_in_version: str | None = None
    purl: str | None = None
    package_manager: str | None = None
    path: str | None = None
    architecture: str | None = None
    epoch: int | None = None
    release: str | None = None


class Vulnerability(Obj):
    """OCSF allows exactly one of ``cve``, ``advisory``, ``cwe`` per vulnerability."""

    cve: Cve | None = None
    advisory: Advisory | None = None
    title: str | None = None
    desc: str | None = None
    severity: str | None = None
    affected_packages: list[AffectedPackage] | None = None
    fix_available: bool | None = None
    references: list[str] | None = None
    first_seen_time: int | None = None
    last_seen_time: int | None = None
    is_exploit_available: bool | None = None
    vendor_name: str | None = None
    is_fix_available: bool | None = None  # OCSF 1.8's name; fix_available is deprecated


# -- events -------------------------------------------------------------------------------------
SEVERITY_NAMES = {
    0: "Unknown",
    1: "Informational",
    2: "Low",
    3: "Medium",
    4: "High",
    5: "Critical",
    6: "Fatal",
    99: "Other",
}


class OcsfEvent(Obj):
    """Attributes shared by every class, and the derived ids OCSF requires."""

    CLASS_UID: ClassVar[int]
    CATEGORY_UID: ClassVar[int]
    CLASS_NAME: ClassVar[str]
    CATEGORY_NAME: ClassVar[str]
    ACTIVITIES: ClassVar[dict[int, str]]

    activity_id: int
    severity_id: int = 1
    time: int
    metadata: Metadata
    cloud: Cloud
    message: str | None = None
    status_id: int | None = None
    status: str | None = None
    status_detail: str | None = None
    raw_data: str | None = None
    unmapped: dict[str, Any] | None = None
    observables: list[dict[str, Any]] | None = None
    # security_control profile (declare it in metadata.profiles to use these)
    action_id: int | None = None
    action: str | None = None
    disposition_id: int | None = None
    disposition: str | None = None

    @property
    def class_uid(self) -> int:
        return self.CLASS_UID

    @property
    def type_uid(self) -> int:
        return self.CLASS_UID * 100 + self.activity_id

    def to_ocsf(self) -> dict[str, Any]:
        """The event as OCSF JSON: derived ids and captions added, ``None`` left out."""
        body = self.model_dump(mode="json", exclude_none=True, by_alias=True)
        activity = self.ACTIVITIES.get(self.activity_id, "Other")
        head = {
            "class_uid": self.CLASS_UID,
            "class_name": self.CLASS_NAME,
            "category_uid": self.CATEGORY_UID,
            "category_name": self.CATEGORY_NAME,
            "activity_id": self.activity_id,
            "activity_name": activity,
            "type_uid": self.type_uid,
            "type_name": f"{self.CLASS_NAME}: {activity}",
            "severity": SEVERITY_NAMES.get(self.severity_id, "Other"),
        }
        head.update(body)
        return head


class ProcessActivity(OcsfEvent):
    CLASS_UID = 1007
    CATEGORY_UID = 1
    CLASS_NAME = "Process Activity"
    CATEGORY_NAME = "System Activity"
    ACTIVITIES = {
        0: "Unknown",
        1: "Launch",
        2: "Terminate",
        3: "Open",
        4: "Inject",
        5: "Set User ID",
        99: "Other",
    }
    LAUNCH: ClassVar[int] = 1
    TERMINATE: ClassVar[int] = 2

    actor: Actor
    device: Device
    process: Process
    exit_code: int | None = None
    launch_type_id: int | None = None  # 1 Spawn, 2 Fork, 3 Exec


class FileActivity(OcsfEvent):
    CLASS_UID = 1001
    CATEGORY_UID = 1
    CLASS_NAME = "File System Activity"
    CATEGORY_NAME = "System Activity"
    ACTIVITIES = {
        0: "Unknown",
        1: "Create",
        2: "Read",
        3: "Update",
        4: "Delete",
        5: "Rename",
        6: "Set Attributes",
        7: "Set Security",
        8: "Get Attributes",
        9: "Get Security",
        10: "Encrypt",
        11: "Decrypt",
        12: "Mount",
        13: "Unmount",
        14: "Open",
        99: "Other",
    }
    CREATE: ClassVar[int] = 1
    READ: ClassVar[int] = 2
    UPDATE: ClassVar[int] = 3
    DELETE: ClassVar[int] = 4
    RENAME: ClassVar[int] = 5
    SET_ATTRIBUTES: ClassVar[int] = 6
    SET_SECURITY: ClassVar[int] = 7
    OPEN: ClassVar[int] = 14

    actor: Actor
    device: Device
    file: File
    file_result: File | None = None


class NetworkActivity(OcsfEvent):
    CLASS_UID = 4001
    CATEGORY_UID = 4
    CLASS_NAME = "Network Activity"
    CATEGORY_NAME = "Network Activity"
    ACTIVITIES = {
        0: "Unknown",
        1: "Open",
        2: "Close",
        3: "Reset",
        4: "Fail",
        5: "Refuse",
        6: "Traffic",
        7: "Listen",
        99: "Other",
    }
    OPEN: ClassVar[int] = 1
    REFUSE: ClassVar[int] = 5
    TRAFFIC: ClassVar[int] = 6
    LISTEN: ClassVar[int] = 7

    device: Device
    actor: Actor | None = None
    src_endpoint: NetworkEndpoint | None = None
    dst_endpoint: NetworkEndpoint | None = None
    connection_info: NetworkConnectionInfo | None = None


class DnsActivity(OcsfEvent):
    CLASS_UID = 4003
    CATEGORY_UID = 4
    CLASS_NAME = "DNS Activity"
    CATEGORY_NAME = "Network Activity"
    ACTIVITIES = {0: "Unknown", 1: "Query", 2: "Response", 6: "Traffic", 99: "Other"}
    QUERY: ClassVar[int] = 1
    RESPONSE: ClassVar[int] = 2

    device: Device
    actor: Actor | None = None
    query: DnsQuery | None = None
    answers: list[DnsAnswer] | None = None
    src_endpoint: NetworkEndpoint | None = None
    dst_endpoint: NetworkEndpoint | None = None
    rcode_id: int | None = None


class ApiActivity(OcsfEvent):
    CLASS_UID = 6003
    CATEGORY_UID = 6
    CLASS_NAME = "API Activity"
    CATEGORY_NAME = "Application Activity"
    ACTIVITIES = {0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}

    actor: Actor
    api: Api
    src_endpoint: NetworkEndpoint
    device: Device | None = None
    dst_endpoint: NetworkEndpoint | None = None
    resources: list[ResourceDetails] | None = None


class Module(Obj):
    """A module (shared library, extension module) loaded into a process (OCSF ``module``)."""

    file: File | None = None
    function_name: str | None = None
    load_type_id: int | None = None  # 1 Standard, 2 Non Standard, ...
    load_type: str | None = None
    type: str | None = None
    base_address: str | None = None


class ModuleActivity(OcsfEvent):
    CLASS_UID = 1005
    CATEGORY_UID = 1
    CLASS_NAME = "Module Activity"
    CATEGORY_NAME = "System Activity"
    ACTIVITIES = {0: "Unknown", 1: "Load", 2: "Unload", 3: "Invoke", 99: "Other"}
    LOAD: ClassVar[int] = 1

    actor: Actor
    device: Device
    module: Module


class _Finding(OcsfEvent):
    CATEGORY_UID = 2
    CATEGORY_NAME = "Findings"
    ACTIVITIES = {0: "Unknown", 1: "Create", 2: "Update", 3: "Close", 99: "Other"}
    CREATE: ClassVar[int] = 1
    UPDATE: ClassVar[int] = 2
    CLOSE: ClassVar[int] = 3

    finding_info: FindingInfo
    resources: list[ResourceDetails] | None = None
    device: Device | None = None
    actor: Actor | None = None
    confidence_id: int | None = None
    status_id: int | None = 1  # New
    count: int | None = None
    start_time: int | None = None
    end_time: int | None = None


class DetectionFinding(_Finding):
    CLASS_UID = 2004
    CLASS_NAME = "Detection Finding"

    is_alert: bool | None = True
    evidences: list[dict[str, Any]] | None = None


class VulnerabilityFinding(_Finding):
    CLASS_UID = 2002
    CLASS_NAME = "Vulnerability Finding"

    vulnerabilities: list[Vulnerability]


EVENT_CLASSES: dict[int, type[OcsfEvent]] = {
    cls.CLASS_UID: cls
    for cls in (
        ProcessActivity,
        FileActivity,
        NetworkActivity,
        DnsActivity,
        ApiActivity,
        ModuleActivity,
        DetectionFinding,
        VulnerabilityFinding,
    )
}
AnyEvent = (
    ProcessActivity
    | FileActivity
    | NetworkActivity
    | DnsActivity
    | ApiActivity
    | ModuleActivity
    | DetectionFinding
    | VulnerabilityFinding
)


def from_ocsf(data: dict[str, Any]) -> OcsfEvent:
    """Read an event back from its OCSF JSON (as :meth:`OcsfEvent.to_ocsf` wrote it)."""
    cls = EVENT_CLASSES[int(data["class_uid"])]
    derived = {
        "class_uid",
        "class_name",
        "category_uid",
        "category_name",
        "activity_name",
        "type_uid",
        "type_name",
        "severity",
    }
    return cls.model_validate({k: v for k, v in data.items() if k not in derived})


def json_schema() -> dict[str, Any]:
    """JSON Schema of the events as :meth:`OcsfEvent.to_ocsf` writes them (every class)."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(AnyEvent).json_schema(by_alias=True, mode="serialization")
    defs = schema.get("$defs", {})
    for cls in EVENT_CLASSES.values():
        d = defs[cls.__name__]
        props = d.setdefault("properties", {})
        props["class_uid"] = {"const": cls.CLASS_UID}
        props["category_uid"] = {"const": cls.CATEGORY_UID}
        props["class_name"] = {"const": cls.CLASS_NAME}
        props["category_name"] = {"const": cls.CATEGORY_NAME}
        props["activity_id"] = {"enum": sorted(cls.ACTIVITIES)}
        props["type_uid"] = {"enum": [cls.CLASS_UID * 100 + a for a in sorted(cls.ACTIVITIES)]}
        props["activity_name"] = {"type": "string"}
        props["type_name"] = {"type": "string"}
        props["severity"] = {"type": "string"}
        d["required"] = sorted({*d.get("required", []), "class_uid", "category_uid", "type_uid"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"Ramparts common event model (OCSF {OCSF_VERSION})"
    return schema
