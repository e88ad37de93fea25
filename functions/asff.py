"""Findings in the AWS Security Finding Format (ASFF), for Security Hub's BatchImportFindings.

One ASFF finding per Ramparts finding, ``Id`` = the finding id, so re-importing it updates
the same Security Hub finding. Imported through the account's default product
(``arn:<partition>:securityhub:<region>:<account>:product/<account>/default``), which
requires ``AwsAccountId`` to be the importing account: a finding about a member account's
workload names that account in its resource and in ``ProductFields``.

Types follow ASFF's ``namespace/category`` taxonomy, from the MITRE ATT&CK tactic of the
rule's techniques (TTPs/<tactic> where ASFF has the category, Effects/... for
Exfiltration and Impact), else ``Unusual Behaviors/Process``. ASFF has no count attribute: the
number of events is ``ProductFields["ramparts/count"]``, with the grouping key and the rule.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from collectors.findings import FindingRecord
from collectors.rules.mitre import tactic_of

SCHEMA_VERSION = "2018-10-08"
MAX_TITLE = 256
MAX_DESCRIPTION = 1024

# OCSF severity_id -> (ASFF label, normalized 0-100)
SEVERITY = {
    0: ("INFORMATIONAL", 0),
    1: ("INFORMATIONAL", 0),
    2: ("LOW", 30),
    3: ("MEDIUM", 50),
    4: ("HIGH", 70),
    5: ("CRITICAL", 90),
    6: ("CRITICAL", 100),
}

# MITRE tactic id -> ASFF finding type (namespace/category)
TACTIC_TYPES = {
    "TA0001": "TTPs/Initial Access",
    "TA0002": "TTPs/Execution",
    "TA0003": "TTPs/Persistence",
    "TA0004": "TTPs/Privilege Escalation",
    "TA0005": "TTPs/Defense Evasion",
    "TA0006": "TTPs/Credential Access",
    "TA0007": "TTPs/Discovery",
    "TA0008": "TTPs/Lateral Movement",
    "TA0009": "TTPs/Collection",
    "TA0010": "Effects/Data Exfiltration",
    "TA0011": "TTPs/Command and Control",
    "TA0040": "Effects/Resource Consumption",
}
DEFAULT_TYPE = "Unusual Behaviors/Process"

# OCSF resource type (collectors.workload) -> ASFF resource type
RESOURCE_TYPES = {
    "AwsLambdaFunction": "AwsLambdaFunction",
    "AwsEc2Instance": "AwsEc2Instance",
    "AwsEcsTask": "AwsEcsTask",
    "Container": "Container",
}


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def product_arn(account: str, region: str) -> str:
    part = partition_of(region)
    return f"arn:{part}:securityhub:{region}:{account}:product/{account}/default"


def iso(ms: int) -> str:
    """Epoch milliseconds as ASFF's ISO 8601 (UTC, milliseconds, Z)."""
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def finding_types(techniques: list[str]) -> list[str]:
    out: list[str] = []
    for t in techniques:
        tac = tactic_of(t)
        label = TACTIC_TYPES.get(tac[0]) if tac else None
        if label and label not in out:
            out.append(label)
    return out or [DEFAULT_TYPE]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resource_of(record: FindingRecord, region: str) -> dict[str, Any]:
    res = record.resource
    ocsf_type = str(res.get("type") or "")
    uid = str(res.get("uid") or record.id)
    rtype = RESOURCE_TYPES.get(ocsf_type, "Other")
    rregion = str(res.get("region") or record.region or region)
    out: dict[str, Any] = {
        "Type": rtype,
        "Id": uid,
        "Partition": partition_of(rregion),
        "Region": rregion,
    }
    if rtype == "AwsEc2Instance" and not uid.startswith("arn:") and record.account:
        part = partition_of(rregion)
        out["Id"] = f"arn:{part}:ec2:{rregion}:{record.account}:instance/{uid}"
    if rtype == "Other":
        out["Details"] = {"Other": {"ResourceType": _clip(ocsf_type or "unknown", 1024)}}
    if res.get("name"):
        out.setdefault("Tags", {})["Name"] = _clip(str(res["name"]), 256)
    return out


def to_asff(
    record: FindingRecord, account: str, region: str, now_ms: int | None = None
) -> dict[str, Any]:
    """The ASFF of a finding, imported by ``account`` in ``region``."""
    label, normalized = SEVERITY.get(record.severity, ("INFORMATIONAL", 0))
    types = finding_types(record.techniques)
    updated = max(record.last_seen, now_ms or 0)
    description = record.description or record.title
    summaries = [str(s.get("summary")) for s in record.samples[:3] if s.get("summary")]
    if summaries:
        description += "\n\nExamples: " + " | ".join(summaries)
    fields = {
        "ramparts/rule_id": record.rule_id,
        "ramparts/grouping_key": record.key or "-",
        "ramparts/resource_account": record.account or "unknown",
        "ramparts/count": str(record.count),
        "ramparts/suppressed": str(record.suppressed),
    }
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": record.id,
        "ProductArn": product_arn(account, region),
        "ProductName": "Ramparts",
        "CompanyName": "Ramparts",
        "GeneratorId": record.rule_id,
        "AwsAccountId": account,
        "Types": types,
        "CreatedAt": iso(record.first_seen),
        "UpdatedAt": iso(updated),
        "FirstObservedAt": iso(record.first_seen),
        "LastObservedAt": iso(record.last_seen),
        "Severity": {"Label": label, "Normalized": normalized, "Original": str(record.severity)},
        "FindingProviderFields": {
            "Severity": {"Label": label, "Original": str(record.severity)},
            "Types": types,
        },
        "Title": _clip(record.title, MAX_TITLE),
        "Description": _clip(description, MAX_DESCRIPTION),
        "Resources": [resource_of(record, region)],
        "Region": region,
        "ProductFields": {k: _clip(v, 2048) for k, v in fields.items()},
        "RecordState": "ACTIVE",
    }
