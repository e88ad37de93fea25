"""The inventory function: which workloads a Ramparts sensor covers, and which it does not.

Run on a schedule (``handler``) and by ``ramparts coverage`` (with the caller's credentials).
Three parts, kept apart so each can be tested on its own:

* **listing** (:class:`Lister`): every Lambda function (``lambda:ListFunctions``), EC2
  instance (``ec2:DescribeInstances``, running and stopped; EKS nodes are the instances
  tagged ``eks:cluster-name`` or ``kubernetes.io/cluster/<name>``) and ECS task
  (``ecs:ListClusters``, ``ListTasks``, ``DescribeTasks``, ``DescribeContainerInstances``) of
  each configured account and region, and, per function, its invocations over the silence
  period (``cloudwatch:GetMetricData``, ``AWS/Lambda`` ``Invocations``). The function's own
  account is listed with its own credentials, every other account through
  ``arn:<partition>:iam::<account>:role/<role name>`` (``ramparts-responder``). A listing
  that fails is an error of the snapshot (account, region, service, error), never an empty
  result;
* **seen items** (:func:`read_seen`): what :class:`functions.store.DynamoSeenStore` recorded,
  ``pk = "seen#<workload key>"``, ``sk = <source>``, read with ``BatchGetItem``;
* **coverage** (:func:`compute`, pure): per workload, covered or not and why not; the
  snapshot document (``docs/coverage.md`` gives its format).

Then the scheduled function writes the snapshot to the evidence bucket
(``coverage/YYYY/MM/DD/<ISO time>.json``) with a summary item in the baseline table
(``pk = "coverage"``, ``sk = <ISO time>``), and keeps one finding per uncovered workload in the
findings table (:class:`FindingSync`): created once, updated when its problems change,
resolved when the workload is covered or gone, published on the bus only on a change.

Environment (set by ``cdk/inventory.py``):

``BASELINE_TABLE`` (required)    seen items are read from it; coverage summaries go in it
``EVIDENCE_BUCKET`` (required)   snapshots go in it
``FINDINGS_TABLE`` (optional)    uncovered-workload findings; unset: no findings
``EVENT_BUS_NAME`` (``ramparts``) where findings are published
``ACCOUNTS``                     comma-separated account ids (default: the function's own)
``REGIONS``                      comma-separated regions (default: the function's own)
``ROLE_NAME`` (``ramparts-responder``), ``EXTERNAL_ID`` (optional): the member role
``LAYER_NAME`` (``ramparts-sensor``) the layer's name prefix, or a layer ARN prefix
``CURRENT_LAYERS``               comma-separated layer version ARNs (or ``name:version``) that
                                 are current; unset: the latest published version of each
                                 ``LAYER_NAME*`` layer in this account, per region
                                 (``lambda:ListLayers``; ``DISCOVER_CURRENT_LAYERS=false``
                                 turns that off, and versions are not judged)
``SUPPORTED_RUNTIMES``           (``python3.11,python3.12,python3.13``)
``SILENT_AFTER_HOURS`` (24)      a sensor silent for longer has stopped reporting
``CHECK_INVOCATIONS`` (true)     ask CloudWatch whether silent functions were invoked
``SNAPSHOT_RETENTION_DAYS`` (400) the summary items' ``expires_at``
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from collectors.findings import FindingRecord, Published, to_ocsf
from collectors.model import DetectionFinding, from_ocsf
from collectors.rules.engine import LOW, MEDIUM
from collectors.workload import Workload, WorkloadType, device_for
from functions.store import (
    SEEN_PREFIX,
    DynamoFindingStore,
    deserialize,
    key_text,
    serialize,
)

__all__ = [
    "RULE_ID",
    "VM_SOURCES",
    "FindingSync",
    "FunctionInfo",
    "InstanceInfo",
    "Inventory",
    "InventoryError",
    "Lister",
    "ListingError",
    "Settings",
    "TaskInfo",
    "compute",
    "finding_id",
    "handler",
    "read_seen",
    "run",
    "seen_keys",
    "snapshot_key",
    "write_snapshot",
]

RULE_ID = "coverage.uncovered-workload"
WRAPPER_PATH = "/opt/ramparts-wrapper"
HANDLER_REDIRECT = "ramparts.handler"
LAYER_SOURCE = "layer"
# Sensors that watch VMs and containers (Inspector scans; it does not watch anything run).
VM_SOURCES = ("falco", "osquery", "tetragon", "guardduty")
PYTHON_RUNTIMES = ("python3.11", "python3.12", "python3.13")
OPEN_INDEX = "coverage#open"  # findings table: pk of one item per open coverage finding
SUMMARY_PK = "coverage"
DAY_MS = 24 * 3600 * 1000
MAX_BATCH_GET = 100
MAX_METRIC_QUERIES = 500

WorkloadKind = Literal["lambda", "ec2", "ecs-task", "eks-node"]
KINDS: tuple[WorkloadKind, ...] = ("lambda", "ec2", "ecs-task", "eks-node")

# problem -> (severity of its finding, what it means)
PROBLEMS: dict[str, tuple[int, str]] = {
    "runtime-not-supported": (
        LOW,
        "the runtime cannot load the Ramparts layer (Python functions only): nothing watches "
        "what runs inside this function",
    ),
    "layer-not-attached": (MEDIUM, "no Ramparts sensor layer is attached"),
    "wrapper-not-set": (
        MEDIUM,
        "the layer is attached but never started: neither AWS_LAMBDA_EXEC_WRAPPER="
        f"{WRAPPER_PATH} nor the handler {HANDLER_REDIRECT} with RAMPARTS_HANDLER",
    ),
    "layer-version-not-current": (LOW, "the attached layer version is not the current one"),
    "sensor-mode-off": (MEDIUM, "RAMPARTS_MODE=off: the sensor watches and reports nothing"),
    "sensor-never-reported": (
        MEDIUM,
        "the function ran during the period but its sensor has never reported",
    ),
    "sensor-stopped-reporting": (
        MEDIUM,
        "a sensor reported before, but not within the period although the workload ran",
    ),
    "no-sensor": (
        MEDIUM,
        "no VM or container sensor (Falco, osquery, Tetragon, GuardDuty "
        "runtime monitoring) has ever reported for this workload",
    ),
}


class InventoryError(RuntimeError):
    """Bad configuration or input; the message says what and where."""


# -- configuration ---------------------------------------------------------------------------
_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]")
_LAYER_ARN = re.compile(
    r"arn:[a-z-]+:lambda:[a-z0-9-]+:[0-9]{12}:layer:([A-Za-z0-9_-]+)(?::([0-9]+))?"
)


def parse_layer(text: str) -> tuple[str, int | None]:
    """(name, version) of a layer version ARN, a layer ARN, or ``name:version``."""
    text = text.strip()
    m = _LAYER_ARN.fullmatch(text)
    if m:
        return m.group(1), int(m.group(2)) if m.group(2) else None
    name, sep, version = text.rpartition(":")
    if sep and re.fullmatch(r"[A-Za-z0-9_-]+", name) and version.isdigit():
        return name, int(version)
    raise InventoryError(f"{text!r} is not a layer version ARN or name:version")


def _csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def check_accounts(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if not _ACCOUNT.fullmatch(v):
            raise InventoryError(f"account {v!r} is not a 12-digit account id")
        if v not in out:
            out.append(v)
    return tuple(out)


def check_regions(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if not _REGION.fullmatch(v):
            raise InventoryError(f"region {v!r} is not a region name (us-east-1)")
        if v not in out:
            out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """What "covered" means. Defaults match the CDK app's defaults."""

    layer_name: str = "ramparts-sensor"  # a layer name prefix, or an ARN prefix (arn:...)
    current_layers: Mapping[str, int] = field(default_factory=dict)  # layer name -> version
    supported_runtimes: tuple[str, ...] = PYTHON_RUNTIMES
    silent_after_ms: int = DAY_MS
    role_name: str = "ramparts-responder"
    external_id: str | None = None
    check_invocations: bool = True

    def __post_init__(self) -> None:
        if not self.layer_name.strip():
            raise InventoryError("the layer name (prefix) must not be empty")
        if self.silent_after_ms < 60_000:
            raise InventoryError("the silence period must be at least a minute")

    @staticmethod
    def current_from(values: Iterable[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in values:
            name, version = parse_layer(v)
            if version is None:
                raise InventoryError(f"current layer {v!r} names no version")
            out[name] = max(version, out.get(name, 0))
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        hours = (env.get("SILENT_AFTER_HOURS") or "24").strip()
        try:
            silent_ms = int(float(hours) * 3600 * 1000)
        except ValueError:
            raise InventoryError(f"SILENT_AFTER_HOURS: {hours!r} is not a number") from None
        check = (env.get("CHECK_INVOCATIONS") or "true").strip().lower()
        if check not in ("true", "false"):
            raise InventoryError(f"CHECK_INVOCATIONS: {check!r} is not true or false")
        return cls(
            layer_name=(env.get("LAYER_NAME") or "ramparts-sensor").strip(),
            current_layers=cls.current_from(_csv(env.get("CURRENT_LAYERS"))),
            supported_runtimes=tuple(_csv(env.get("SUPPORTED_RUNTIMES"))) or PYTHON_RUNTIMES,
            silent_after_ms=silent_ms,
            role_name=(env.get("ROLE_NAME") or "ramparts-responder").strip(),
            external_id=(env.get("EXTERNAL_ID") or "").strip() or None,
            check_invocations=check == "true",
        )

    def is_sensor_layer(self, arn: str) -> bool:
        if self.layer_name.startswith("arn:"):
            return arn.startswith(self.layer_name)
        m = _LAYER_ARN.fullmatch(arn)
        return bool(m and m.group(1).startswith(self.layer_name))


# -- what was listed ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionInfo:
    arn: str  # unqualified
    name: str
    account: str
    region: str
    runtime: str | None  # None: a container image
    handler: str | None = None
    package_type: str = "Zip"
    layers: tuple[str, ...] = ()  # layer version ARNs
    environment: Mapping[str, str] = field(default_factory=dict)
    invocations: int | None = None  # in the silence period; None: not known

    @classmethod
    def from_api(cls, fn: Mapping[str, Any], account: str, region: str) -> FunctionInfo:
        """A function as ``ListFunctions`` describes it."""
        env = ((fn.get("Environment") or {}).get("Variables")) or {}
        return cls(
            arn=str(fn["FunctionArn"]),
            name=str(fn["FunctionName"]),
            account=account,
            region=region,
            runtime=fn.get("Runtime") or None,
            handler=fn.get("Handler") or None,
            package_type=str(fn.get("PackageType") or "Zip"),
            layers=tuple(str(x["Arn"]) for x in fn.get("Layers") or [] if x.get("Arn")),
            environment={str(k): str(v) for k, v in env.items()},
        )


@dataclass(frozen=True)
class InstanceInfo:
    id: str
    account: str
    region: str
    state: str
    name: str | None = None
    private_dns: str | None = None
    eks_cluster: str | None = None

    @property
    def kind(self) -> WorkloadKind:
        return "eks-node" if self.eks_cluster else "ec2"

    @classmethod
    def from_api(cls, inst: Mapping[str, Any], account: str, region: str) -> InstanceInfo:
        tags = {str(t.get("Key")): str(t.get("Value", "")) for t in inst.get("Tags") or []}
        cluster = tags.get("eks:cluster-name")
        if not cluster:
            for k in tags:
                if k.startswith("kubernetes.io/cluster/"):
                    cluster = k.removeprefix("kubernetes.io/cluster/")
                    break
        return cls(
            id=str(inst["InstanceId"]),
            account=account,
            region=region,
            state=str((inst.get("State") or {}).get("Name") or "unknown"),
            name=tags.get("Name") or None,
            private_dns=inst.get("PrivateDnsName") or None,
            eks_cluster=cluster or None,
        )


@dataclass(frozen=True)
class TaskInfo:
    arn: str
    account: str
    region: str
    cluster: str  # the cluster ARN
    launch_type: str | None = None
    status: str | None = None
    group: str | None = None
    container_ids: tuple[str, ...] = ()  # runtime (Docker) ids
    host_instance: str | None = None  # EC2 launch type: the container instance's EC2 id

    @property
    def name(self) -> str:
        cluster = self.cluster.rsplit("/", 1)[-1]
        return f"{cluster}/{self.arn.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class ListingError:
    account: str
    region: str
    service: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return {
            "account": self.account,
            "region": self.region,
            "service": self.service,
            "error": self.error,
        }


@dataclass
class Inventory:
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    functions: list[FunctionInfo] = field(default_factory=list)
    instances: list[InstanceInfo] = field(default_factory=list)
    tasks: list[TaskInfo] = field(default_factory=list)
    errors: list[ListingError] = field(default_factory=list)

    def failed(self, account: str | None, region: str | None) -> bool:
        """Whether listing anything failed in this account and region."""
        return any(e.account == account and e.region == region for e in self.errors)


# -- coverage (pure) ---------------------------------------------------------------------------
Seen = Mapping[str, Mapping[str, Mapping[str, Any]]]  # workload key -> source -> seen item


def _host_keys(inst: InstanceInfo) -> list[str]:
    """Every workload key a VM/container sensor may report this instance under."""
    keys = [f"ec2:{inst.id}"]
    if inst.private_dns:
        keys.append(f"host:{inst.private_dns}")
        short = inst.private_dns.split(".", 1)[0]
        if short != inst.private_dns:
            keys.append(f"host:{short}")
    return keys


def _task_keys(task: TaskInfo) -> list[str]:
    keys = [f"ecs-task:{task.arn}"]
    for cid in task.container_ids:
        keys.append(f"container:{cid}")
        if len(cid) > 12:
            keys.append(f"container:{cid[:12]}")  # Falco's short container id
    return keys


def seen_keys(inv: Inventory) -> list[tuple[str, str]]:
    """Every (workload key, source) whose seen item the coverage needs."""
    out: dict[tuple[str, str], None] = {}
    for fn in inv.functions:
        out[(f"lambda:{fn.arn}", LAYER_SOURCE)] = None
    hosts = [k for i in inv.instances for k in _host_keys(i)]
    by_id = {i.id: i for i in inv.instances}
    for t in inv.tasks:
        hosts += _task_keys(t)
        if t.host_instance:
            host = by_id.get(t.host_instance)
            hosts += _host_keys(host) if host else [f"ec2:{t.host_instance}"]
    for key in hosts:
        for src in VM_SOURCES:
            out[(key, src)] = None
    return list(out)


def _last(seen: Seen, keys: Iterable[str], source: str) -> int | None:
    times = [
        int(item["last_seen_ms"])
        for k in keys
        if (item := (seen.get(k) or {}).get(source)) and item.get("last_seen_ms") is not None
    ]
    return max(times) if times else None


def _explain(problems: list[str], extra: Mapping[str, str]) -> dict[str, str]:
    return {p: extra.get(p) or PROBLEMS[p][1] for p in problems}


def lambda_coverage(fn: FunctionInfo, seen: Seen, now_ms: int, s: Settings) -> dict[str, Any]:
    key = f"lambda:{fn.arn}"
    problems: list[str] = []
    extra: dict[str, str] = {}
    env = fn.environment
    item = dict((seen.get(key) or {}).get(LAYER_SOURCE) or {})
    last = int(item["last_seen_ms"]) if item.get("last_seen_ms") is not None else None
    recent = last is not None and now_ms - last <= s.silent_after_ms
    layers = [a for a in fn.layers if s.is_sensor_layer(a)]
    wrapper = env.get("AWS_LAMBDA_EXEC_WRAPPER") == WRAPPER_PATH
    redirect = fn.handler == HANDLER_REDIRECT
    real_handler = (env.get("RAMPARTS_HANDLER") or "").strip()
    mode_env = (env.get("RAMPARTS_MODE") or "").strip().lower() or None
    details: dict[str, Any] = {
        "package_type": fn.package_type,
        "handler": fn.handler,
        "layers": layers,
        "attach": "exec-wrapper" if wrapper else ("handler" if redirect else None),
        "mode": mode_env or item.get("mode") or ("monitor" if layers else None),
        "invocations": fn.invocations,
    }
    for k in ("sensor_version", "attach", "python"):
        if item.get(k) is not None:
            details["reported_" + k] = item[k]
    if item.get("mode") is not None:
        details["reported_mode"] = item["mode"]
    if fn.runtime is None or fn.runtime not in s.supported_runtimes:
        problems.append("runtime-not-supported")
        what = f"runtime {fn.runtime}" if fn.runtime else f"a {fn.package_type} package"
        extra["runtime-not-supported"] = (
            f"{what} cannot load the Ramparts layer (supported: "
            f"{', '.join(s.supported_runtimes)}): nothing watches what runs in this function"
        )
    else:
        if not layers:
            problems.append("layer-not-attached")
        else:
            for arn in layers:
                name, version = parse_layer(arn)
                if not s.current_layers:
                    continue
                current = s.current_layers.get(f"{fn.region}/{name}", s.current_layers.get(name))
                if current is None or version is None or version < current:
                    problems.append("layer-version-not-current")
                    extra["layer-version-not-current"] = (
                        f"layer {name} version {version} is attached; current: "
                        + (
                            f"{name}:{current}"
                            if current is not None
                            else ", ".join(f"{n}:{v}" for n, v in sorted(s.current_layers.items()))
                        )
                    )
                    break
        if not wrapper and not (redirect and real_handler and real_handler != HANDLER_REDIRECT):
            problems.append("wrapper-not-set")
            if redirect:
                extra["wrapper-not-set"] = (
                    f"the handler is {HANDLER_REDIRECT} but RAMPARTS_HANDLER does not name the "
                    "real handler: the function fails at start"
                )
        if mode_env == "off":
            problems.append("sensor-mode-off")
    configured = not problems or problems == ["layer-version-not-current"]
    ran = fn.invocations is None or fn.invocations > 0
    if configured and not recent:
        if ran and last is None:
            problems.append("sensor-never-reported")
        elif ran:
            problems.append("sensor-stopped-reporting")
            extra["sensor-stopped-reporting"] = (
                f"the sensor last reported {_ago(now_ms - int(last or 0))} ago and the "
                "function ran since"
                if fn.invocations
                else f"the sensor last reported {_ago(now_ms - int(last or 0))} ago "
                "(invocations unknown)"
            )
        else:
            details["idle"] = True  # not invoked in the period: nothing to report
    if (
        problems
        and fn.invocations is None
        and any(p in problems for p in ("sensor-never-reported", "sensor-stopped-reporting"))
    ):
        details["invocations_unknown"] = True
    return {
        "key": key,
        "type": "lambda",
        "name": fn.name,
        "account": fn.account,
        "region": fn.region,
        "runtime": fn.runtime,
        "covered": not problems,
        "sensors": [LAYER_SOURCE] if recent else [],
        "last_seen_ms": last,
        "problems": problems,
        "details": {**details, "explain": _explain(problems, extra)},
    }


def _ago(ms: int) -> str:
    hours = ms / 3_600_000
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def _vm_verdict(
    reports: Mapping[str, int], now_ms: int, s: Settings, running: bool
) -> tuple[list[str], list[str], dict[str, str]]:
    sensors = sorted(src for src, t in reports.items() if now_ms - t <= s.silent_after_ms)
    problems: list[str] = []
    extra: dict[str, str] = {}
    if not sensors:
        if not reports:
            problems.append("no-sensor")
        elif running:
            problems.append("sensor-stopped-reporting")
            last = max(reports.values())
            extra["sensor-stopped-reporting"] = (
                f"{', '.join(sorted(reports))} last reported {_ago(now_ms - last)} ago"
            )
    return sensors, problems, extra


def instance_coverage(inst: InstanceInfo, seen: Seen, now_ms: int, s: Settings) -> dict[str, Any]:
    keys = _host_keys(inst)
    reports = {src: t for src in VM_SOURCES if (t := _last(seen, keys, src)) is not None}
    # A stopped instance runs nothing: a sensor that reported before it stopped still counts.
    sensors, problems, extra = _vm_verdict(reports, now_ms, s, inst.state != "stopped")
    details: dict[str, Any] = {
        "state": inst.state,
        "reported": reports,
        "keys": keys,
    }
    if inst.eks_cluster:
        details["eks_cluster"] = inst.eks_cluster
    return {
        "key": f"ec2:{inst.id}",
        "type": inst.kind,
        "name": inst.name or inst.id,
        "account": inst.account,
        "region": inst.region,
        "covered": not problems,
        "sensors": sensors,
        "last_seen_ms": max(reports.values()) if reports else None,
        "problems": problems,
        "details": {**details, "explain": _explain(problems, extra)},
    }


def task_coverage(
    task: TaskInfo, seen: Seen, now_ms: int, s: Settings, hosts: Mapping[str, InstanceInfo]
) -> dict[str, Any]:
    keys = _task_keys(task)
    own = {src: t for src in VM_SOURCES if (t := _last(seen, keys, src)) is not None}
    host_keys: list[str] = []
    if task.host_instance:
        host = hosts.get(task.host_instance)
        host_keys = _host_keys(host) if host else [f"ec2:{task.host_instance}"]
    via_host = {src: t for src in VM_SOURCES if (t := _last(seen, host_keys, src)) is not None}
    reports = dict(own)
    for src, t in via_host.items():
        reports[src] = max(t, reports.get(src, 0))
    sensors, problems, extra = _vm_verdict(reports, now_ms, s, running=True)
    details: dict[str, Any] = {
        "cluster": task.cluster,
        "launch_type": task.launch_type,
        "status": task.status,
        "group": task.group,
        "reported": own,
        "keys": keys,
    }
    if task.host_instance:
        details["host_instance"] = task.host_instance
        details["reported_by_host"] = via_host
    return {
        "key": f"ecs-task:{task.arn}",
        "type": "ecs-task",
        "name": task.name,
        "account": task.account,
        "region": task.region,
        "covered": not problems,
        "sensors": sensors,
        "last_seen_ms": max(reports.values()) if reports else None,
        "problems": problems,
        "details": {**details, "explain": _explain(problems, extra)},
    }


def compute(inv: Inventory, seen: Seen, now_ms: int, s: Settings) -> dict[str, Any]:
    """The coverage snapshot (``docs/coverage.md``)."""
    workloads = [lambda_coverage(f, seen, now_ms, s) for f in inv.functions]
    workloads += [instance_coverage(i, seen, now_ms, s) for i in inv.instances]
    hosts = {i.id: i for i in inv.instances}
    workloads += [task_coverage(t, seen, now_ms, s, hosts) for t in inv.tasks]
    workloads.sort(key=lambda w: (KINDS.index(w["type"]), w["account"], w["region"], w["key"]))
    by_type = {
        k: {
            "total": sum(1 for w in workloads if w["type"] == k),
            "covered": sum(1 for w in workloads if w["type"] == k and w["covered"]),
        }
        for k in KINDS
    }
    return {
        "time": now_ms,
        "accounts": list(inv.accounts),
        "regions": list(inv.regions),
        "errors": [e.to_dict() for e in inv.errors],
        "workloads": workloads,
        "summary": {
            "total": len(workloads),
            "covered": sum(1 for w in workloads if w["covered"]),
            "by_type": by_type,
        },
    }


# -- listing -----------------------------------------------------------------------------------
def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


SessionFactory = Callable[[str, str], Any]  # (account, region) -> boto3 Session


class Lister:
    """Lists the workloads of accounts and regions; failures become :class:`ListingError`."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: Any = None,
        own_account: str | None = None,
        partition: str | None = None,
        page_size: int | None = None,
    ) -> None:
        self.settings = settings
        self.base = session if session is not None else boto3.session.Session()
        self._own = own_account
        self._partition = partition
        self.page_size = page_size  # for tests of pagination; None: the services' default
        self._credentials: dict[str, dict[str, str]] = {}

    def _identity(self) -> None:
        ident = self.base.client("sts").get_caller_identity()
        self._own = self._own or str(ident["Account"])
        self._partition = self._partition or str(ident["Arn"]).split(":")[1]

    @property
    def own_account(self) -> str:
        if self._own is None:
            self._identity()
        assert self._own is not None
        return self._own

    @property
    def partition(self) -> str:
        if self._partition is None:
            self._identity()
        assert self._partition is not None
        return self._partition

    def role_arn(self, account: str) -> str:
        return f"arn:{self.partition}:iam::{account}:role/{self.settings.role_name}"

    def session(self, account: str, region: str) -> Any:
        """A session in the account (own credentials, or the member role) and region."""
        if account == self.own_account:
            return self.base  # clients are made with an explicit region
        creds = self._credentials.get(account)
        if creds is None:
            kwargs: dict[str, Any] = {
                "RoleArn": self.role_arn(account),
                "RoleSessionName": "ramparts-inventory",
                "DurationSeconds": 3600,
            }
            if self.settings.external_id:
                kwargs["ExternalId"] = self.settings.external_id
            c = self.base.client("sts").assume_role(**kwargs)["Credentials"]
            creds = {
                "aws_access_key_id": c["AccessKeyId"],
                "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"],
            }
            self._credentials[account] = creds
        return boto3.session.Session(region_name=region, **creds)

    def list(self, accounts: Sequence[str], regions: Sequence[str]) -> Inventory:
        inv = Inventory(check_accounts(accounts), check_regions(regions))
        for account in inv.accounts:
            for region in inv.regions:
                try:
                    session = self.session(account, region)
                except (ClientError, BotoCoreError) as exc:
                    inv.errors.append(ListingError(account, region, "sts", _error_text(exc)))
                    continue
                self._region(inv, session, account, region)
        return inv

    def _region(self, inv: Inventory, session: Any, account: str, region: str) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("lambda", lambda: self._functions(inv, session, account, region)),
            ("ec2", lambda: self._instances(inv, session, account, region)),
            ("ecs", lambda: self._tasks(inv, session, account, region)),
        ]
        for service, step in steps:
            try:
                step()
            except (ClientError, BotoCoreError) as exc:
                inv.errors.append(ListingError(account, region, service, _error_text(exc)))

    def _functions(self, inv: Inventory, session: Any, account: str, region: str) -> None:
        client = session.client("lambda", region_name=region)
        found = [FunctionInfo.from_api(f, account, region) for f in list_functions(client)]
        if found and self.settings.check_invocations:
            try:
                counts = invocations(
                    session.client("cloudwatch", region_name=region),
                    [f.name for f in found],
                    self.settings.silent_after_ms,
                )
            except (ClientError, BotoCoreError) as exc:
                inv.errors.append(ListingError(account, region, "cloudwatch", _error_text(exc)))
            else:
                found = [
                    FunctionInfo(**{**f.__dict__, "invocations": counts.get(f.name, 0)})
                    for f in found
                ]
        inv.functions += found

    def _instances(self, inv: Inventory, session: Any, account: str, region: str) -> None:
        client = session.client("ec2", region_name=region)
        inv.instances += [
            InstanceInfo.from_api(i, account, region)
            for i in describe_instances(client, self.page_size)
        ]

    def _tasks(self, inv: Inventory, session: Any, account: str, region: str) -> None:
        client = session.client("ecs", region_name=region)
        inv.tasks += list(ecs_tasks(client, account, region))


def list_functions(client: Any) -> Iterator[Mapping[str, Any]]:
    """Every function (``ListFunctions``, following ``NextMarker``)."""
    marker: str | None = None
    while True:
        page = client.list_functions(**({"Marker": marker} if marker else {}))
        yield from page.get("Functions") or []
        marker = page.get("NextMarker")
        if not marker:
            return


def describe_instances(client: Any, page_size: int | None = None) -> Iterator[Mapping[str, Any]]:
    """Running and stopped instances (``DescribeInstances``, following ``NextToken``)."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "Filters": [{"Name": "instance-state-name", "Values": ["running", "stopped"]}]
        }
        if page_size:
            kwargs["MaxResults"] = page_size
        if token:
            kwargs["NextToken"] = token
        page = client.describe_instances(**kwargs)
        for reservation in page.get("Reservations") or []:
            yield from reservation.get("Instances") or []
        token = page.get("NextToken")
        if not token:
            return


def _pages(call: Callable[..., Mapping[str, Any]], key: str, **kwargs: Any) -> Iterator[str]:
    token: str | None = None
    while True:
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        yield from page.get(key) or []
        token = page.get("nextToken")
        if not token:
            return


def ecs_tasks(client: Any, account: str, region: str) -> Iterator[TaskInfo]:
    """Every running task of every cluster, with its containers and host instance."""
    for cluster in _pages(client.list_clusters, "clusterArns"):
        arns = list(_pages(client.list_tasks, "taskArns", cluster=cluster))
        tasks: list[Mapping[str, Any]] = []
        for i in range(0, len(arns), 100):
            resp = client.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])
            tasks += resp.get("tasks") or []
        ci_arns = sorted(
            {str(t["containerInstanceArn"]) for t in tasks if t.get("containerInstanceArn")}
        )
        hosts: dict[str, str] = {}
        for i in range(0, len(ci_arns), 100):
            resp = client.describe_container_instances(
                cluster=cluster, containerInstances=ci_arns[i : i + 100]
            )
            for ci in resp.get("containerInstances") or []:
                if ci.get("ec2InstanceId"):
                    hosts[str(ci["containerInstanceArn"])] = str(ci["ec2InstanceId"])
        for t in tasks:
            yield TaskInfo(
                arn=str(t["taskArn"]),
                account=account,
                region=region,
                cluster=str(t.get("clusterArn") or cluster),
                launch_type=t.get("launchType") or None,
                status=t.get("lastStatus") or None,
                group=t.get("group") or None,
                container_ids=tuple(
                    str(c["runtimeId"]) for c in t.get("containers") or [] if c.get("runtimeId")
                ),
                host_instance=hosts.get(str(t.get("containerInstanceArn") or "")),
            )


def invocations(client: Any, names: Sequence[str], period_ms: int) -> dict[str, int]:
    """Invocations of each function over the last ``period_ms`` (``AWS/Lambda``)."""
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    period_s = max(60, (period_ms // 1000) // 60 * 60)
    start = end - dt.timedelta(seconds=period_s)
    out: dict[str, int] = {}
    for i in range(0, len(names), MAX_METRIC_QUERIES):
        chunk = names[i : i + MAX_METRIC_QUERIES]
        queries = [
            {
                "Id": f"f{j}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Invocations",
                        "Dimensions": [{"Name": "FunctionName", "Value": name}],
                    },
                    "Period": period_s,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for j, name in enumerate(chunk)
        ]
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries,
                "StartTime": start,
                "EndTime": end,
            }
            if token:
                kwargs["NextToken"] = token
            resp = client.get_metric_data(**kwargs)
            for r in resp.get("MetricDataResults") or []:
                name = chunk[int(str(r["Id"])[1:])]
                out[name] = out.get(name, 0) + int(sum(r.get("Values") or []))
            token = resp.get("NextToken")
            if not token:
                break
    return out


# -- seen items ----------------------------------------------------------------------------------
def read_seen(
    client: Any,
    table: str,
    keys: Sequence[tuple[str, str]],
    *,
    max_attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The seen items of (workload key, source) pairs (``BatchGetItem``, retrying leftovers)."""
    wanted = {(SEEN_PREFIX + key_text(w), src): w for w, src in keys}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    items = list(wanted)
    for i in range(0, len(items), MAX_BATCH_GET):
        request: dict[str, Any] = {
            table: {
                "Keys": [
                    {"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in items[i : i + MAX_BATCH_GET]
                ]
            }
        }
        for attempt in range(max_attempts):
            resp = client.batch_get_item(RequestItems=request)
            for raw in (resp.get("Responses") or {}).get(table, []):
                item = deserialize(raw)
                w = wanted.get((item["pk"], item["sk"]))
                if w is not None:
                    out.setdefault(w, {})[item["sk"]] = item
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                break
            sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise InventoryError(
                f"{table}: seen items still unprocessed after {max_attempts} tries"
            )
    return out


def seen_from_json(doc: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Seen items given as ``{workload key: {source: item}}`` or a list of items (``pk``/``sk``
    as in the table, or ``workload``/``source``)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if isinstance(doc, dict):
        for key, sources in doc.items():
            if not isinstance(sources, dict):
                raise InventoryError(f"seen[{key!r}]: expected an object of sources")
            for src, item in sources.items():
                if not isinstance(item, dict) or not isinstance(item.get("last_seen_ms"), int):
                    raise InventoryError(f"seen[{key!r}][{src!r}]: needs an integer last_seen_ms")
                out.setdefault(str(key), {})[str(src)] = dict(item)
        return out
    if isinstance(doc, list):
        for n, item in enumerate(doc):
            if not isinstance(item, dict):
                raise InventoryError(f"seen[{n}]: expected an object")
            key = item.get("workload") or str(item.get("pk") or "").removeprefix(SEEN_PREFIX)
            src = item.get("source") or item.get("sk")
            if not key or not src:
                raise InventoryError(f"seen[{n}]: needs workload (or pk) and source (or sk)")
            if src == "packages":
                continue  # a package report, not a heartbeat
            if not isinstance(item.get("last_seen_ms"), int):
                raise InventoryError(f"seen[{n}]: needs an integer last_seen_ms")
            cur = out.setdefault(str(key), {}).get(str(src))
            if cur is None or item["last_seen_ms"] > cur["last_seen_ms"]:
                out[str(key)][str(src)] = dict(item)
        return out
    raise InventoryError("seen items: expected a JSON object or array")


# -- findings ------------------------------------------------------------------------------------
def finding_id(workload_key: str) -> str:
    """The stable id of a workload's coverage finding."""
    return hashlib.sha256(f"{RULE_ID}\x1f{workload_key}".encode()).hexdigest()[:32]


_TYPE_NAMES = {
    "lambda": "Lambda function",
    "ec2": "EC2 instance",
    "eks-node": "EKS node",
    "ecs-task": "ECS task",
}


def _workload_of(w: Mapping[str, Any]) -> Workload:
    uid = str(w["key"]).split(":", 1)[1]
    kinds: dict[str, WorkloadType] = {
        "lambda": "lambda",
        "ec2": "ec2",
        "eks-node": "ec2",
        "ecs-task": "ecs-task",
    }
    kind = kinds[w["type"]]
    details = w.get("details") or {}
    return Workload(
        kind,
        uid,
        name=w.get("name"),
        account=w.get("account"),
        region=w.get("region"),
        instance_id=uid if kind == "ec2" else details.get("host_instance"),
        cluster=details.get("eks_cluster") or details.get("cluster"),
    )


def new_record(w: Mapping[str, Any], now_ms: int) -> FindingRecord:
    """An (open) coverage finding for an uncovered workload of a snapshot."""
    wl = _workload_of(w)
    problems = list(w["problems"])
    severity = max(PROBLEMS[p][0] for p in problems)
    title = f"{_TYPE_NAMES[w['type']]} {w['name']} not covered: {', '.join(problems)}"
    explain = (w.get("details") or {}).get("explain") or {}
    description = "Ramparts coverage: " + "; ".join(
        f"{p}: {explain.get(p) or PROBLEMS[p][1]}" for p in problems
    )
    return FindingRecord(
        id=finding_id(w["key"]),
        rule_id=RULE_ID,
        title=title[:500],
        severity=severity,
        techniques=[],
        key=str(w["key"]),
        resource=wl.resource().model_dump(mode="json", exclude_none=True),
        device=device_for(wl).model_dump(mode="json", exclude_none=True),
        account=w.get("account"),
        region=w.get("region"),
        first_seen=now_ms,
        last_seen=now_ms,
        count=1,
        status="new",
        published_time=now_ms,
        published_count=1,
        window_s=0,
        description=description[:2000],
    )


def coverage_ocsf(
    record: FindingRecord, change: str | None, coverage: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The finding as OCSF: Create/Update while open, Close with status Resolved once covered."""
    data = to_ocsf(record, "updated" if change == "updated" else None)
    if record.status == "resolved":
        event = from_ocsf(data)
        assert isinstance(event, DetectionFinding)
        event.activity_id = DetectionFinding.CLOSE
        event.status_id = 4
        event.status = "Resolved"
        data = event.to_ocsf()
    extra = {"problems": [], **(coverage or {})}
    data.setdefault("unmapped", {}).setdefault("ramparts", {})["coverage"] = extra
    return data


class CoverageFinding(Published):
    """A coverage finding to publish: its OCSF says Resolved when the workload is covered."""

    def __init__(self, record: FindingRecord, change: Any, coverage: Mapping[str, Any]) -> None:
        super().__init__(record, change)
        self.coverage = dict(coverage)

    def detail(self) -> dict[str, Any]:
        return coverage_ocsf(self.record, self.change, self.coverage)


def _coverage_of(
    record: FindingRecord,
    problems: Sequence[str],
    explain: Mapping[str, str],
    note: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workload": record.key,
        "problems": list(problems),
        "explain": dict(explain),
    }
    if note:
        out["note"] = note
    return out


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "resolved": len(self.resolved),
        }


class FindingSync:
    """Coverage findings in the findings table, idempotent by workload.

    Items: the finding (``pk = "finding#<id>"``, ``sk = "finding"``, as the ingest writes
    them, plus ``coverage_problems``) and, while it is open, an index item
    ``pk = "coverage#open"``, ``sk = <finding id>`` (``workload``, ``account``, ``region``) so
    that a workload that disappeared gets its finding resolved too. Writes are conditioned
    on the finding's ``version``; a change is published with ``publish_change`` pending until
    every publisher succeeded (as the ingest does), so a failed publication is retried on the
    next run.
    """

    def __init__(self, table: str, *, client: Any = None) -> None:
        self.table = table
        self.client = client if client is not None else boto3.client("dynamodb")

    def _get(self, fid: str) -> dict[str, Any] | None:
        raw = self.client.get_item(
            TableName=self.table, Key=DynamoFindingStore.key(fid), ConsistentRead=True
        ).get("Item")
        return deserialize(raw) if raw else None

    def _open_index(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": OPEN_INDEX}},
        }
        while True:
            resp = self.client.query(**kwargs)
            for raw in resp.get("Items") or []:
                item = deserialize(raw)
                out[str(item["sk"])] = item
            last = resp.get("LastEvaluatedKey")
            if not last:
                return out
            kwargs["ExclusiveStartKey"] = last

    def _put(
        self,
        record: FindingRecord,
        old_version: int | None,
        change: str | None,
        problems: Sequence[str],
        now_ms: int,
    ) -> None:
        item = record.to_item()
        item["coverage_problems"] = list(problems)
        item.update({"pk": f"finding#{record.id}", "sk": "finding", "updated_at": now_ms // 1000})
        if change is not None:
            item["publish_change"] = change
            item["publish_token"] = uuid.uuid4().hex
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if old_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(old_version)}}
        self.client.put_item(**put)
        index_key = {"pk": {"S": OPEN_INDEX}, "sk": {"S": record.id}}
        if record.status == "resolved":
            self.client.delete_item(TableName=self.table, Key=index_key)
        else:
            entry = {"workload": record.key, "account": record.account, "region": record.region}
            self.client.put_item(TableName=self.table, Item={**index_key, **serialize(entry)})

    def sync(
        self,
        snapshot: Mapping[str, Any],
        inv_failed: Callable[[str | None, str | None], bool],
        now_ms: int,
    ) -> SyncResult:
        """Bring the findings in line with a snapshot; what to publish is in the result."""
        result = SyncResult()
        index = self._open_index()
        listed: set[str] = set()
        for w in snapshot["workloads"]:
            fid = finding_id(w["key"])
            listed.add(fid)
            if w["covered"]:
                if fid in index or self._pending(fid):
                    self._resolve(fid, now_ms, result, "the workload is covered")
                continue
            self._open(w, fid, now_ms, result)
        for fid, entry in index.items():
            if fid in listed:
                continue
            if inv_failed(entry.get("account"), entry.get("region")):
                continue  # not listed because listing failed: unknown, not gone
            self._resolve(fid, now_ms, result, "the workload no longer exists")
        return result

    def _pending(self, fid: str) -> bool:
        item = self._get(fid)
        return bool(item and item.get("publish_change"))

    def _open(self, w: Mapping[str, Any], fid: str, now_ms: int, result: SyncResult) -> None:
        item = self._get(fid)
        problems = list(w["problems"])
        fresh = new_record(w, now_ms)
        explain = (w.get("details") or {}).get("explain") or {}
        change: str | None
        if item is None:
            record, change, old_version = fresh, "created", None
            record.version = 1
            result.created.append(fid)
        else:
            record = FindingRecord.from_item(item)
            old_version = record.version
            change = None
            reopened = record.status == "resolved"
            if reopened or list(item.get("coverage_problems") or []) != problems:
                change = "updated"
                if reopened:
                    record.count += 1
                    record.status = "new"
                record.title, record.severity = fresh.title, fresh.severity
                record.description = fresh.description
                record.resource, record.device = fresh.resource, fresh.device
                record.published_time = now_ms
                record.published_count = record.count
                result.updated.append(fid)
            record.last_seen = now_ms
            record.version = old_version + 1
            pending = item.get("publish_change")
            if change is None and pending:
                change = str(pending)  # published before, not confirmed: publish again
        self._put(record, old_version, change, problems, now_ms)
        if change is not None:
            result.published.append(
                CoverageFinding(record, change, _coverage_of(record, problems, explain))
            )

    def _resolve(self, fid: str, now_ms: int, result: SyncResult, note: str) -> None:
        item = self._get(fid)
        if item is None:
            self.client.delete_item(
                TableName=self.table, Key={"pk": {"S": OPEN_INDEX}, "sk": {"S": fid}}
            )
            return
        record = FindingRecord.from_item(item)
        old_version = record.version
        change: str | None = None
        if record.status != "resolved":
            record.status = "resolved"
            record.last_seen = now_ms
            record.published_time = now_ms
            change = "updated"
            result.resolved.append(fid)
        elif item.get("publish_change"):
            change = str(item["publish_change"])
        else:
            return
        record.version = old_version + 1
        self._put(record, old_version, change, [], now_ms)
        result.published.append(CoverageFinding(record, change, _coverage_of(record, [], {}, note)))

    def confirm(self, published: Sequence[Published]) -> None:
        DynamoFindingStore(self.table, client=self.client).confirm(published)


# -- snapshots -----------------------------------------------------------------------------------
def iso_time(now_ms: int) -> str:
    return dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_key(now_ms: int) -> str:
    day = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    return f"coverage/{day:%Y/%m/%d}/{iso_time(now_ms)}.json"


def write_snapshot(
    snapshot: Mapping[str, Any],
    *,
    s3: Any,
    bucket: str,
    ddb: Any,
    table: str,
    retention_days: int = 400,
) -> str:
    """The snapshot in S3 and its summary item in the baseline table; the S3 key."""
    now_ms = int(snapshot["time"])
    key = snapshot_key(now_ms)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(snapshot, separators=(",", ":"), sort_keys=True).encode(),
        ContentType="application/json",
    )
    item = {
        "pk": SUMMARY_PK,
        "sk": iso_time(now_ms),
        "time": now_ms,
        "summary": snapshot["summary"],
        "s3_key": key,
        "errors": len(snapshot["errors"]),
        "expires_at": now_ms // 1000 + retention_days * 86400,
    }
    ddb.put_item(TableName=table, Item=serialize(item))
    return key


# -- the function --------------------------------------------------------------------------------
def discover_current_layers(
    session: Any, regions: Iterable[str], prefix: str, inv: Inventory
) -> dict[str, int]:
    """The latest published version of each sensor layer, per region (``region/name``),
    from this account's own layers: the Layer stacks publish them in the core account,
    where the inventory runs. A region whose layers cannot be listed is reported as an
    error of the inventory and gets no "current" version (no layer-version problem)."""
    out: dict[str, int] = {}
    if prefix.startswith("arn:"):
        return out
    for region in regions:
        try:
            client = session.client("lambda", region_name=region)
            marker: str | None = None
            while True:
                page = client.list_layers(**({"Marker": marker} if marker else {}))
                for layer in page.get("Layers", []):
                    name = str(layer.get("LayerName") or "")
                    latest = (layer.get("LatestMatchingVersion") or {}).get("Version")
                    if name.startswith(prefix) and isinstance(latest, int):
                        out[f"{region}/{name}"] = latest
                marker = page.get("NextMarker")
                if not marker:
                    break
        except Exception as exc:  # an unreadable region: say so, judge nothing there
            inv.errors.append(
                ListingError(
                    account="(own)",
                    region=region,
                    service="lambda:ListLayers",
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
            )
    return out


def run(
    env: Mapping[str, str],
    *,
    session: Any = None,
    now_ms: int | None = None,
    publisher: Any = None,
    page_size: int | None = None,
) -> dict[str, Any]:
    """One inventory: list, compute, store the snapshot, sync and publish findings."""
    settings = Settings.from_env(env)
    baseline = (env.get("BASELINE_TABLE") or "").strip()
    bucket = (env.get("EVIDENCE_BUCKET") or "").strip()
    if not baseline or not bucket:
        raise InventoryError("BASELINE_TABLE and EVIDENCE_BUCKET are required")
    base = session if session is not None else boto3.session.Session()
    lister = Lister(settings, session=base, page_size=page_size)
    accounts = _csv(env.get("ACCOUNTS")) or [lister.own_account]
    own_region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or base.region_name
    regions = _csv(env.get("REGIONS")) or [str(own_region)]
    inv = lister.list(accounts, regions)
    if not settings.current_layers and (env.get("DISCOVER_CURRENT_LAYERS") or "true") == "true":
        found = discover_current_layers(base, regions, settings.layer_name, inv)
        settings = dataclasses.replace(settings, current_layers=found)
    ddb = base.client("dynamodb")
    seen = read_seen(ddb, baseline, seen_keys(inv))
    now = int(time.time() * 1000) if now_ms is None else now_ms
    snapshot = compute(inv, seen, now, settings)
    retention = int((env.get("SNAPSHOT_RETENTION_DAYS") or "400").strip())
    key = write_snapshot(
        snapshot,
        s3=base.client("s3"),
        bucket=bucket,
        ddb=ddb,
        table=baseline,
        retention_days=retention,
    )
    out: dict[str, Any] = {
        "time": now,
        "s3_key": key,
        "summary": snapshot["summary"],
        "errors": snapshot["errors"],
    }
    findings_table = (env.get("FINDINGS_TABLE") or "").strip()
    if findings_table:
        from functions.publish import EventBridgePublisher

        sync = FindingSync(findings_table, client=ddb)
        result = sync.sync(snapshot, inv.failed, now)
        if result.published:
            pub = publisher or EventBridgePublisher(
                (env.get("EVENT_BUS_NAME") or "ramparts").strip(), client=base.client("events")
            )
            pub.publish(result.published)
            sync.confirm(result.published)
        out["findings"] = result.counts()
    return out


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled entry point (the event is EventBridge's schedule event, unused)."""
    result = run(os.environ)
    print(json.dumps({"message": "coverage", **result}, default=str))
    return result
