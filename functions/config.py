"""The ingest function's configuration, from its environment.

Every variable the ingest function (``functions/ingest.py``) reads:

``FINDINGS_TABLE`` (required)
    DynamoDB table of findings and their per-event markers (``pk``/``sk`` strings, TTL
    attribute ``expires_at``).
``BASELINE_TABLE`` (required)
    DynamoDB table of stateful rules' state and workload baselines (same key layout).
``EVENT_BUS_NAME`` (default ``ramparts``)
    EventBridge bus that receives one "Ramparts Finding" event per created or updated finding.
``DLQ_URL`` (required)
    SQS queue URL where records (or parts of records) that no adapter can use are sent, with
    the reason, the source and where in the record.
``ALERT_TOPIC_ARN`` (optional)
    SNS topic that receives a readable message per created finding at or above
    ``ALERT_MIN_SEVERITY``; unset: no SNS alerts.
``ALERT_MIN_SEVERITY`` (default ``high``)
    ``informational``, ``low``, ``medium``, ``high``, ``critical`` or 1-5.
``SECURITY_HUB_EXPORT`` (default ``false``)
    ``true``: findings are also imported into Security Hub (ASFF, ``BatchImportFindings``).
``MEMBER_ACCOUNTS`` (optional)
    Comma-separated account ids whose GuardDuty/Inspector findings (or forwarded events) this
    account may receive: a delegated administrator's members. Never inferred from records.
``TUNING_URI`` (optional)
    ``s3://bucket/key`` of a tuning file (YAML, or JSON when the key ends in ``.json``; see
    :mod:`collectors.rules.tuning`), read at cold start. A bad file does not stop ingest.
``RULES_DIR`` (optional)
    Folder bundled with the function holding user rules (``*.py``), added to the built-in pack.
``RESPONDER_ROLE_NAME`` (default ``ramparts-responder``)
    The role assumed in a workload's account to read its tags, for tuning exceptions that
    name tags (see :mod:`functions.tags`).
``BASELINE_LEARNING_DAYS`` (default 7)
    How long a workload's baseline learns before baseline rules judge it.
``AWS_REGION`` (set by Lambda)
    The function's own region: the region of CloudWatch Logs subscription deliveries.

Powertools reads its own: ``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``,
``POWERTOOLS_LOG_LEVEL``, ``POWERTOOLS_TRACE_DISABLED``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from collectors.rules.engine import HIGH, SEVERITIES

_ACCOUNT = re.compile(r"[0-9]{12}")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class ConfigError(ValueError):
    """A missing or invalid environment variable; the message names it."""


def parse_severity(text: str, name: str = "ALERT_MIN_SEVERITY") -> int:
    value = text.strip().lower()
    if value in SEVERITIES:
        return SEVERITIES[value]
    if value.isdigit() and 1 <= int(value) <= 5:
        return int(value)
    raise ConfigError(f"{name}: {text!r} is not one of {', '.join(SEVERITIES)} or 1-5")


def parse_s3_uri(uri: str, name: str = "TUNING_URI") -> tuple[str, str]:
    m = _S3_URI.fullmatch(uri.strip())
    if m is None:
        raise ConfigError(f"{name}: {uri!r} is not an s3://bucket/key URI")
    return m.group(1), m.group(2)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}: {raw!r} is not true or false")


def _required(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise ConfigError(f"{name} is required")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


@dataclass(frozen=True, slots=True)
class Config:
    findings_table: str
    baseline_table: str
    dlq_url: str
    event_bus_name: str = "ramparts"
    alert_topic_arn: str | None = None
    alert_min_severity: int = HIGH
    security_hub_export: bool = False
    member_accounts: frozenset[str] = frozenset()
    tuning_uri: str | None = None
    rules_dir: str | None = None
    baseline_learning_days: int = 7
    region: str | None = None
    responder_role_name: str = "ramparts-responder"

    @property
    def learning_s(self) -> int:
        return self.baseline_learning_days * 24 * 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """The configuration the environment describes; ConfigError names what is wrong."""
        members: set[str] = set()
        for part in (env.get("MEMBER_ACCOUNTS") or "").split(","):
            acct = part.strip()
            if not acct:
                continue
            if not _ACCOUNT.fullmatch(acct):
                raise ConfigError(f"MEMBER_ACCOUNTS: {acct!r} is not a 12-digit account id")
            members.add(acct)
        days_text = (env.get("BASELINE_LEARNING_DAYS") or "7").strip()
        if not days_text.isdigit():
            raise ConfigError(
                f"BASELINE_LEARNING_DAYS: {days_text!r} is not a whole number of days"
            )
        tuning = _optional(env, "TUNING_URI")
        if tuning is not None:
            parse_s3_uri(tuning)
        return cls(
            findings_table=_required(env, "FINDINGS_TABLE"),
            baseline_table=_required(env, "BASELINE_TABLE"),
            dlq_url=_required(env, "DLQ_URL"),
            event_bus_name=_optional(env, "EVENT_BUS_NAME") or "ramparts",
            alert_topic_arn=_optional(env, "ALERT_TOPIC_ARN"),
            alert_min_severity=parse_severity(env.get("ALERT_MIN_SEVERITY") or "high"),
            security_hub_export=_flag(env, "SECURITY_HUB_EXPORT", False),
            member_accounts=frozenset(members),
            tuning_uri=tuning,
            rules_dir=_optional(env, "RULES_DIR"),
            baseline_learning_days=int(days_text),
            region=_optional(env, "AWS_REGION") or _optional(env, "AWS_DEFAULT_REGION"),
            responder_role_name=_optional(env, "RESPONDER_ROLE_NAME") or "ramparts-responder",
        )
