"""The Member stack's reconciler: subscribe protected functions' log groups to the core account.

A function is protected when it carries the tag ``ramparts:protected=true`` or has a Ramparts
sensor layer attached (a layer whose name starts with ``LAYER_NAME_PREFIX``). Its log group
(``LoggingConfig.LogGroup``, else ``/aws/lambda/<name>``) gets a subscription filter named
``FILTER_NAME`` with ``FILTER_PATTERN`` (the sensor's lines only) to ``DESTINATION_ARN``, the
CloudWatch Logs destination in the core account. A missing log group is created (with
``LOG_RETENTION_DAYS``), so a function that has not run yet is covered from its first line.

Two triggers: CloudTrail events for one function (``CreateFunction``, ``TagResource``,
``UpdateFunctionConfiguration``; ``CreateLogGroup`` for a log group) and a schedule that
reconciles every function of the account and region. Idempotent: a filter that is already in
place is left alone. Uses boto3 from the Lambda runtime only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Settings", "Subscriber", "handler"]

LOG = logging.getLogger("ramparts.subscriber")
LAMBDA_PREFIX = "/aws/lambda/"
PROTECT_TAG = "ramparts:protected"


@dataclass(frozen=True)
class Settings:
    destination_arn: str
    filter_pattern: str = "{ $.ramparts >= 1 }"
    filter_name: str = "ramparts-sensor"
    layer_name_prefix: str = "ramparts-sensor"
    log_retention_days: int = 30

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            destination_arn=environ["DESTINATION_ARN"],
            filter_pattern=environ.get("FILTER_PATTERN", cls.filter_pattern),
            filter_name=environ.get("FILTER_NAME", cls.filter_name),
            layer_name_prefix=environ.get("LAYER_NAME_PREFIX", cls.layer_name_prefix),
            log_retention_days=int(environ.get("LOG_RETENTION_DAYS", cls.log_retention_days)),
        )


@dataclass
class Report:
    subscribed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"subscribed": self.subscribed, "unchanged": self.unchanged, "failed": self.failed}


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class Subscriber:
    def __init__(self, settings: Settings, lambda_client: Any, logs_client: Any) -> None:
        self.settings = settings
        self.lambda_client = lambda_client
        self.logs = logs_client

    # -- which functions --------------------------------------------------------------------
    def _layer_protected(self, config: Mapping[str, Any]) -> bool:
        prefix = f":layer:{self.settings.layer_name_prefix}"
        return any(prefix in str(layer.get("Arn", "")) for layer in config.get("Layers") or [])

    def _tag_protected(self, arn: str) -> bool:
        tags = self.lambda_client.list_tags(Resource=arn).get("Tags") or {}
        return str(tags.get(PROTECT_TAG, "")).lower() == "true"

    def is_protected(self, config: Mapping[str, Any]) -> bool:
        return self._layer_protected(config) or self._tag_protected(str(config["FunctionArn"]))

    @staticmethod
    def log_group_of(config: Mapping[str, Any]) -> str:
        group = (config.get("LoggingConfig") or {}).get("LogGroup")
        return str(group) if group else LAMBDA_PREFIX + str(config["FunctionName"])

    def functions(self) -> Iterator[Mapping[str, Any]]:
        marker: str | None = None
        while True:
            page = self.lambda_client.list_functions(**({"Marker": marker} if marker else {}))
            yield from page.get("Functions") or []
            marker = page.get("NextMarker")
            if not marker:
                return

    # -- subscribing ------------------------------------------------------------------------
    def ensure(self, log_group: str, report: Report) -> None:
        s = self.settings
        try:
            filters = (
                self.logs.describe_subscription_filters(logGroupName=log_group).get(
                    "subscriptionFilters"
                )
                or []
            )
        except Exception as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            self.logs.create_log_group(logGroupName=log_group)
            self.logs.put_retention_policy(
                logGroupName=log_group, retentionInDays=s.log_retention_days
            )
            filters = []
        for existing in filters:
            if (
                existing.get("filterName") == s.filter_name
                and existing.get("destinationArn") == s.destination_arn
                and existing.get("filterPattern") == s.filter_pattern
            ):
                report.unchanged.append(log_group)
                return
        self.logs.put_subscription_filter(
            logGroupName=log_group,
            filterName=s.filter_name,
            filterPattern=s.filter_pattern,
            destinationArn=s.destination_arn,
        )
        report.subscribed.append(log_group)

    def _try(self, log_group: str, report: Report) -> None:
        try:
            self.ensure(log_group, report)
        except Exception as exc:  # one log group (2-filter limit, a race) must not stop the rest
            report.failed[log_group] = f"{type(exc).__name__}: {exc}"
            LOG.warning("cannot subscribe %s: %s", log_group, exc)

    def reconcile_all(self) -> Report:
        report = Report()
        for config in self.functions():
            if self.is_protected(config):
                self._try(self.log_group_of(config), report)
        return report

    def reconcile_function(self, name: str) -> Report:
        report = Report()
        config = self.lambda_client.get_function_configuration(FunctionName=name)
        if self.is_protected(config):
            self._try(self.log_group_of(config), report)
        return report

    def reconcile_log_group(self, log_group: str) -> Report:
        if not log_group.startswith(LAMBDA_PREFIX):
            return Report()  # a custom log group is handled through its function's events
        return self.reconcile_function(log_group[len(LAMBDA_PREFIX) :])


def _cloudtrail_target(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """("function", name) or ("log_group", name) from a CloudTrail event, else None."""
    if event.get("detail-type") != "AWS API Call via CloudTrail":
        return None
    detail = event.get("detail") or {}
    params = detail.get("requestParameters") or {}
    if detail.get("eventSource") == "logs.amazonaws.com":
        group = params.get("logGroupName")
        return ("log_group", str(group)) if group else None
    response = detail.get("responseElements") or {}
    name = response.get("functionName") or params.get("functionName") or params.get("resource")
    if not name:
        return None
    name = str(name)
    if name.startswith("arn:"):  # TagResource names the function by ARN
        name = name.split(":")[6]
    return ("function", name)


def handler(
    event: Mapping[str, Any], context: Any = None, subscriber: Subscriber | None = None
) -> dict[str, Any]:
    del context
    if subscriber is None:
        import boto3

        subscriber = Subscriber(
            Settings.from_environ(os.environ), boto3.client("lambda"), boto3.client("logs")
        )
    target = _cloudtrail_target(event)
    if target is None:
        report = subscriber.reconcile_all()
    elif target[0] == "function":
        report = subscriber.reconcile_function(target[1])
    else:
        report = subscriber.reconcile_log_group(target[1])
    result = report.as_dict()
    LOG.info(json.dumps(result))
    return result
