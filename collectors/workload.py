"""The workload an event happened on, and how it is written into OCSF's ``device``.

Every adapter describes its workload with a :class:`Workload` and writes it with
:func:`device_for`; detections and playbooks read it back with :func:`workload_of`. The two
are inverse, so a rule that groups events by workload, or a playbook that acts on one, never
depends on which sensor saw the event.

A workload's identity comes from trusted context only: the CloudWatch Logs envelope for the
layer (never a field inside a line), the finding's own resource for GuardDuty/Inspector, the
host/container metadata a VM/container sensor attaches about itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from collectors.model import Container, Device, Image, ResourceDetails

WorkloadType = Literal["lambda", "ec2", "ecs-task", "k8s-pod", "container", "host"]

# device.type labels (OCSF device type_id 99 "Other" takes the source's own label)
_DEVICE_TYPES: dict[WorkloadType, tuple[int, str]] = {
    "lambda": (99, "AWS Lambda function"),
    "ec2": (6, "Virtual"),
    "ecs-task": (99, "Amazon ECS task"),
    "k8s-pod": (99, "Kubernetes pod"),
    "container": (99, "Container"),
    "host": (1, "Server"),
}
_LABEL_TO_TYPE: dict[str, WorkloadType] = {
    label: t for t, (_, label) in _DEVICE_TYPES.items() if t != "ec2"
}
_RESOURCE_TYPES = {
    "lambda": "AwsLambdaFunction",
    "ec2": "AwsEc2Instance",
    "ecs-task": "AwsEcsTask",
    "k8s-pod": "KubernetesPod",
    "container": "Container",
    "host": "Host",
}


@dataclass(frozen=True, slots=True)
class Workload:
    """What ran the code: its type, a uid unique within the type, and where it lives.

    uids: Lambda, the function ARN (unqualified); EC2, the instance id; ECS, the task ARN;
    Kubernetes, ``namespace/pod``; a container, its id; a host, its hostname.
    """

    type: WorkloadType
    uid: str
    name: str | None = None
    account: str | None = None
    region: str | None = None
    hostname: str | None = None
    instance_id: str | None = None
    container_id: str | None = None
    container_name: str | None = None
    image: str | None = None
    cluster: str | None = None

    @property
    def key(self) -> str:
        """A stable key for grouping events by workload (``type:uid``)."""
        return f"{self.type}:{self.uid}"

    def resource(self) -> ResourceDetails:
        """The workload as an OCSF resource (for findings)."""
        return ResourceDetails(
            uid=self.uid,
            name=self.name,
            type=_RESOURCE_TYPES[self.type],
            region=self.region,
            cloud_partition="aws" if self.account else None,
            namespace=self.uid.split("/", 1)[0] if self.type == "k8s-pod" else None,
            hostname=self.hostname,
        )


def lambda_function(name: str, account: str, region: str, partition: str = "aws") -> Workload:
    """The Lambda function a log group belongs to, from the envelope's own fields."""
    arn = f"arn:{partition}:lambda:{region}:{account}:function:{name}"
    return Workload("lambda", arn, name=name, account=account, region=region)


def device_for(w: Workload) -> Device:
    type_id, label = _DEVICE_TYPES[w.type]
    container = None
    if w.type in ("k8s-pod", "container", "ecs-task") and (w.container_id or w.container_name):
        labels = None
        if w.type == "k8s-pod":
            ns, _, pod = w.uid.partition("/")
            labels = [f"k8s.ns.name={ns}", f"k8s.pod.name={pod}"]
        container = Container(
            uid=w.container_id,
            name=w.container_name,
            # OCSF requires an image uid: the reference itself when no digest is known
            image=Image(name=w.image, uid=w.image) if w.image else None,
            orchestrator="kubernetes"
            if w.type == "k8s-pod"
            else ("ecs" if w.type == "ecs-task" else None),
            labels=labels,
        )
    if w.type == "k8s-pod" and container is None:
        ns, _, pod = w.uid.partition("/")
        container = Container(
            name=pod, orchestrator="kubernetes", labels=[f"k8s.ns.name={ns}", f"k8s.pod.name={pod}"]
        )
    if w.type == "container" and container is None:
        container = Container(uid=w.uid)
    return Device(
        type_id=type_id,
        type=label,
        uid=w.uid,  # always set: OCSF needs one identifier, and it is the workload's key
        name=w.name,
        hostname=w.hostname,
        instance_uid=w.instance_id if w.type != "ec2" else w.uid,
        region=w.region,
        container=container,
    )


def workload_of(device: Device | None, account: str | None = None) -> Workload | None:
    """Read back the workload :func:`device_for` wrote (None for an event without one)."""
    if device is None:
        return None
    kind = _LABEL_TO_TYPE.get(device.type or "")
    c = device.container
    if kind is None and device.type_id == 6 and (device.instance_uid or device.uid):
        uid = device.instance_uid or device.uid or ""
        return Workload(
            "ec2",
            uid,
            name=device.name,
            account=account,
            region=device.region,
            hostname=device.hostname,
            instance_id=uid,
        )
    common = {
        "name": device.name,
        "account": account,
        "region": device.region,
        "hostname": device.hostname,
        "instance_id": device.instance_uid,
        "container_id": c.uid if c else None,
        "container_name": c.name if c else None,
        "image": c.image.name if c and c.image else None,
    }
    if (kind == "lambda" or kind == "ecs-task") and device.uid:  # noqa: PLR1714 (narrows)
        return Workload(kind, device.uid, **common)
    if kind == "k8s-pod" and c is not None:
        labels = dict(x.split("=", 1) for x in (c.labels or []) if "=" in x)
        uid = f"{labels.get('k8s.ns.name', '')}/{labels.get('k8s.pod.name', '')}"
        return Workload("k8s-pod", uid, **common)
    if kind == "container" and c is not None and c.uid:
        return Workload("container", c.uid, **common)
    if device.hostname:
        return Workload("host", device.hostname, **common)
    return None
