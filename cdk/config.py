"""Deployment configuration: which accounts and regions, who may use the layer, what to alert.

Values come from, lowest precedence first:

1. the defaults below (a single-account deployment in ``111111111111``/``us-east-1``, enough
   for ``cdk synth`` with no configuration at all);
2. a JSON file, ``ramparts.config.json`` at the repository root or the path given in the CDK
   context key ``ramparts:config``;
3. CDK context keys ``ramparts:<key>`` (``cdk synth -c ramparts:core_account=123456789012``).
   List values are JSON arrays or comma-separated strings; booleans ``true``/``false``.

Synthesis never looks anything up in AWS: every account and region is explicit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# The role playbooks (and tag look-ups) assume in each protected account (Member stack).
RESPONDER_ROLE_NAME = "ramparts-responder"

__all__ = [
    "CONFIG_FILE_NAME",
    "PLAYBOOK_MODES",
    "SEVERITIES",
    "ConfigError",
    "RampartsConfig",
    "load_config",
]

CONFIG_FILE_NAME = "ramparts.config.json"
CONTEXT_PREFIX = "ramparts:"
REPO_ROOT = Path(__file__).resolve().parent.parent

SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
PLAYBOOK_MODES = ("dry-run", "approval", "automatic")  # as cdk/playbooks reads them
PYTHON_RUNTIMES = ("python3.11", "python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and what is expected."""


@dataclass(frozen=True)
class RampartsConfig:
    # The security (core) account and the accounts whose functions are protected. The core
    # account is always protected too (single-account deployments list no members).
    core_account: str = "111111111111"
    member_accounts: tuple[str, ...] = ()
    # The first region is the primary one: the Core stack and the global (IAM) resources of
    # every Member stack live there. Layers and log forwarding are deployed in every region.
    regions: tuple[str, ...] = ("us-east-1",)
    # Share the layer with the whole organisation (principal * + organization id) ...
    organization_id: str | None = None
    # ... or, without an organisation, with these accounts (members are always included).
    layer_share_accounts: tuple[str, ...] = ()
    layer_name: str = "ramparts-sensor"
    python_runtimes: tuple[str, ...] = PYTHON_RUNTIMES
    architectures: tuple[str, ...] = ARCHITECTURES
    # Playbook name -> dry-run | approval | automatic (default dry-run; cdk/playbooks).
    playbook_modes: Mapping[str, str] = field(default_factory=dict)
    # Deploy the response playbooks (cdk/playbooks) in the Core stack.
    playbooks: bool = True
    notification_email: str | None = None
    notification_endpoints: tuple[str, ...] = ()  # https:// endpoints subscribed to the topic
    alert_min_severity: str = "HIGH"
    # A local rule-tuning file (uploaded as an asset) or an s3:// URI the ingest reads.
    tuning_file: str | None = None
    tuning_uri: str | None = None
    rules_dir: str | None = None
    security_hub_export: bool = False
    baseline_learning_days: int = 14
    findings_ttl_days: int = 400
    log_retention_days: int = 30
    # Evidence bucket: S3 Object Lock (governance mode) for this many days; 0 = no lock.
    evidence_object_lock_days: int = 0
    # How often the Member stack's reconciler re-checks every function (minutes).
    reconcile_minutes: int = 360

    # -- derived -----------------------------------------------------------------------
    @property
    def primary_region(self) -> str:
        return self.regions[0]

    @property
    def protected_accounts(self) -> tuple[str, ...]:
        """Every account that gets a Member stack: the core account first, then members."""
        return (self.core_account, *(a for a in self.member_accounts if a != self.core_account))

    @property
    def layer_principals(self) -> tuple[str, ...]:
        """Accounts given the layer when no organisation is configured."""
        seen: dict[str, None] = {}
        for account in (*self.protected_accounts, *self.layer_share_accounts):
            seen.setdefault(account, None)
        return tuple(seen)

    def destination_name(self) -> str:
        """The CloudWatch Logs destination in the core account (one per region)."""
        return "ramparts-sensor-logs"

    def destination_arn(self, region: str) -> str:
        return f"arn:aws:logs:{region}:{self.core_account}:destination:{self.destination_name()}"

    def bus_arn(self) -> str:
        return f"arn:aws:events:{self.primary_region}:{self.core_account}:event-bus/ramparts"

    # -- validation ----------------------------------------------------------------------
    def validate(self) -> RampartsConfig:
        problems: list[str] = []
        for key, value in (("core_account", self.core_account),):
            if not _ACCOUNT.match(value):
                problems.append(f"{key}: {value!r} is not a 12-digit account id")
        for key in ("member_accounts", "layer_share_accounts"):
            for value in getattr(self, key):
                if not _ACCOUNT.match(value):
                    problems.append(f"{key}: {value!r} is not a 12-digit account id")
        if not self.regions:
            problems.append("regions: at least one region is needed")
        for value in self.regions:
            if not _REGION.match(value):
                problems.append(f"regions: {value!r} is not a region name (us-east-1)")
        if len(set(self.regions)) != len(self.regions):
            problems.append("regions: a region is listed twice")
        if self.organization_id is not None and not _ORG.match(self.organization_id):
            problems.append(f"organization_id: {self.organization_id!r} is not o-xxxxxxxxxx")
        for value in self.python_runtimes:
            if value not in PYTHON_RUNTIMES:
                problems.append(f"python_runtimes: {value!r} is not one of {PYTHON_RUNTIMES}")
        for value in self.architectures:
            if value not in ARCHITECTURES:
                problems.append(f"architectures: {value!r} is not one of {ARCHITECTURES}")
        for name, mode in self.playbook_modes.items():
            if mode not in PLAYBOOK_MODES:
                problems.append(f"playbook_modes.{name}: {mode!r} is not one of {PLAYBOOK_MODES}")
        if self.notification_email is not None and not _EMAIL.match(self.notification_email):
            problems.append(f"notification_email: {self.notification_email!r} is not an address")
        for value in self.notification_endpoints:
            if not value.startswith("https://"):
                problems.append(f"notification_endpoints: {value!r} is not an https:// URL")
        if self.alert_min_severity not in SEVERITIES:
            problems.append(f"alert_min_severity: {self.alert_min_severity!r} not in {SEVERITIES}")
        if self.tuning_file is not None and self.tuning_uri is not None:
            problems.append("tuning_file and tuning_uri: give one, not both")
        if self.tuning_file is not None and not self.tuning_path().is_file():
            problems.append(f"tuning_file: {self.tuning_file!r} is not a file")
        if self.tuning_uri is not None and not _S3_URI.match(self.tuning_uri):
            problems.append(f"tuning_uri: {self.tuning_uri!r} is not s3://bucket/key")
        for key in ("baseline_learning_days", "findings_ttl_days", "log_retention_days"):
            if getattr(self, key) < 1:
                problems.append(f"{key}: must be at least 1")
        if self.evidence_object_lock_days < 0:
            problems.append("evidence_object_lock_days: must be 0 (off) or more")
        if not 5 <= self.reconcile_minutes <= 1440:
            problems.append("reconcile_minutes: must be between 5 and 1440")
        if problems:
            raise ConfigError("invalid Ramparts configuration:\n  " + "\n  ".join(problems))
        return self

    def tuning_path(self) -> Path:
        assert self.tuning_file is not None
        path = Path(self.tuning_file)
        return path if path.is_absolute() else REPO_ROOT / path

    def tuning_object(self) -> tuple[str, str] | None:
        """(bucket, key) of ``tuning_uri``."""
        if self.tuning_uri is None:
            return None
        match = _S3_URI.match(self.tuning_uri)
        assert match is not None
        return match.group(1), match.group(2)


def _as_list(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            return tuple(v.strip() for v in text.split(",") if v.strip())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
    return tuple(value)


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ConfigError(f"{key}: expected a whole number, got {value!r}")


def _as_str(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an account id given as a JSON number
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value or None


def _as_mapping(key: str, value: Any) -> dict[str, str]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{key}: expected an object of strings, got {value!r}")
    return dict(value)


_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "core_account": lambda k, v: _as_str(k, v) or RampartsConfig.core_account,
    "member_accounts": _as_list,
    "regions": _as_list,
    "organization_id": _as_str,
    "layer_share_accounts": _as_list,
    "layer_name": lambda k, v: _as_str(k, v) or RampartsConfig.layer_name,
    "python_runtimes": _as_list,
    "architectures": _as_list,
    "playbook_modes": _as_mapping,
    "playbooks": _as_bool,
    "notification_email": _as_str,
    "notification_endpoints": _as_list,
    "alert_min_severity": lambda k, v: (_as_str(k, v) or "HIGH").upper(),
    "tuning_file": _as_str,
    "tuning_uri": _as_str,
    "rules_dir": _as_str,
    "security_hub_export": _as_bool,
    "baseline_learning_days": _as_int,
    "findings_ttl_days": _as_int,
    "log_retention_days": _as_int,
    "evidence_object_lock_days": _as_int,
    "reconcile_minutes": _as_int,
}
assert set(_CONVERTERS) == {f.name for f in fields(RampartsConfig)}


def config_from_mapping(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        converter = _CONVERTERS.get(key)
        if converter is None:
            known = ", ".join(sorted(_CONVERTERS))
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {known})")
        out[key] = converter(key, value)
    return out


def load_config(
    context: Callable[[str], Any], config_file: str | Path | None = None
) -> RampartsConfig:
    """The configuration from a file and CDK context (``context`` is ``node.try_get_context``)."""
    values: dict[str, Any] = {}
    file_value = context(CONTEXT_PREFIX + "config") if config_file is None else config_file
    path = Path(file_value) if file_value else REPO_ROOT / CONFIG_FILE_NAME
    if not path.is_absolute():
        path = REPO_ROOT / path
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object of settings")
        values.update(config_from_mapping(data, str(path)))
    elif file_value:
        raise ConfigError(f"ramparts:config: {path} does not exist")
    for key in _CONVERTERS:
        value = context(CONTEXT_PREFIX + key)
        if value is not None:
            values.update(config_from_mapping({key: value}, f"-c {CONTEXT_PREFIX}{key}"))
    return RampartsConfig(**values).validate()


def runtime_arch_pairs(config: RampartsConfig) -> Sequence[tuple[str, str]]:
    return [(r, a) for r in config.python_runtimes for a in config.architectures]
