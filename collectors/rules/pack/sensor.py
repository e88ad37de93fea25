"""Rules over what the Ramparts layer itself decided: blocks and the sensor's own findings."""

from __future__ import annotations

from collectors.model import (
    DISPOSITION_BLOCKED,
    ApiActivity,
    DetectionFinding,
    DnsActivity,
    FileActivity,
    ModuleActivity,
    NetworkActivity,
    OcsfEvent,
    ProcessActivity,
)
from collectors.rules.engine import HIGH, Hit, RuleContext, rule


@rule(
    id="layer.blocked",
    title="Ramparts blocked an operation in a Lambda function",
    severity=HIGH,
    techniques=["T1190"],
    sources=["layer"],
    classes=[
        ProcessActivity,
        FileActivity,
        NetworkActivity,
        DnsActivity,
        ApiActivity,
        ModuleActivity,
    ],
)
def blocked(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """Every operation the sensor blocked in enforce mode: something in the function tried
    what its policy forbids. One finding per function and sensor rule."""
    if event.disposition_id != DISPOSITION_BLOCKED:
        return None
    un = event.unmapped or {}
    rule_name = str(un.get("rule") or "policy")
    return Hit(key=f"{event.metadata.event_code}:{rule_name}", evidence={"sensor_rule": rule_name})


@rule(
    id="layer.sensor-finding",
    title="Ramparts sensor reported tampering or a broken policy",
    severity=HIGH,
    techniques=["T1562.001"],
    sources=["layer"],
    classes=[DetectionFinding],
)
def sensor_finding(event: DetectionFinding, ctx: RuleContext) -> Hit:
    """The sensor's own findings (tampering with the sensor, a policy it could not load),
    with the sensor's title and severity."""
    return Hit(
        key=event.metadata.event_code or "sensor",
        title=event.finding_info.title,
        severity=event.severity_id,
    )
