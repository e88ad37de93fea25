"""The report's live data source: the findings, actions and baseline tables and the bucket.

Reads, paginated and with the caller's credentials (``ramparts report``):

* findings table: ``Scan`` of the items with ``sk = "finding"`` whose ``pk`` starts with
  ``finding#`` (detections and coverage findings) or ``vuln#`` (vulnerability findings);
* actions table: ``Scan`` of the items whose ``pk`` starts with ``finding#`` (response
  status, actions, plans, evidence; not the circuit breaker's counters);
* baseline table: ``Query`` of ``pk = "coverage"`` (every summary: a few per day);
* evidence bucket: ``GetObject`` of the snapshot the report reads.

The filters are on the keys only, never on attributes: an item with a missing or broken
attribute is still read, and the report lists it as unreadable. Permissions:
``dynamodb:Scan`` on the findings and actions tables, ``dynamodb:Query`` on the baseline
table, ``s3:GetObject`` on ``coverage/*`` of the evidence bucket, and ``kms:Decrypt`` on the
Ramparts key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from collectors.report.source import TABLES, RawItem, SourceError
from functions.store import deserialize

MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoReportSource:
    """:class:`~collectors.report.source.ReportSource` over DynamoDB and S3."""

    def __init__(
        self,
        *,
        findings_table: str,
        actions_table: str,
        baseline_table: str,
        bucket: str,
        dynamodb: Any,
        s3: Any,
        region: str | None = None,
        page_size: int | None = None,
    ) -> None:
        self.tables = {
            "findings": findings_table,
            "actions": actions_table,
            "coverage": baseline_table,
        }
        self.bucket = bucket
        self.ddb = dynamodb
        self.s3 = s3
        self.region = region
        self.page_size = page_size

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "aws",
            "findings_table": self.tables["findings"],
            "actions_table": self.tables["actions"],
            "baseline_table": self.tables["coverage"],
            "bucket": self.bucket,
            "region": self.region or "",
        }

    def _request(self, table: str) -> tuple[str, dict[str, Any]]:
        name = self.tables[table]
        if table == "findings":
            return "scan", {
                "TableName": name,
                "FilterExpression": "sk = :f AND (begins_with(pk, :d) OR begins_with(pk, :v))",
                "ExpressionAttributeValues": {
                    ":f": {"S": "finding"},
                    ":d": {"S": "finding#"},
                    ":v": {"S": "vuln#"},
                },
            }
        if table == "actions":
            return "scan", {
                "TableName": name,
                "FilterExpression": "begins_with(pk, :p)",
                "ExpressionAttributeValues": {":p": {"S": "finding#"}},
            }
        return "query", {
            "TableName": name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "coverage"}},
        }

    def items(self, table: str) -> Iterator[RawItem]:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        op, kwargs = self._request(table)
        if self.page_size:
            kwargs["Limit"] = self.page_size
        call = getattr(self.ddb, op)
        name = self.tables[table]
        while True:
            try:
                page = call(**kwargs)
            except ClientError as exc:
                raise SourceError(f"{table} table {name}: {_code(exc)}: {exc}") from None
            except BotoCoreError as exc:
                raise SourceError(f"{table} table {name}: {exc}") from None
            for raw in page.get("Items") or []:
                pk = raw.get("pk", {}).get("S", "?")
                sk = raw.get("sk", {}).get("S", "?")
                ref = f"{name} pk={pk} sk={sk}"
                try:
                    yield RawItem(ref, deserialize(raw))
                except (TypeError, ValueError, ArithmeticError) as exc:
                    yield RawItem(ref, error=f"cannot be deserialised: {exc}")
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def snapshot(self, s3_key: str) -> Any:
        where = f"s3://{self.bucket}/{s3_key}"
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=s3_key)
            size = int(obj.get("ContentLength") or 0)
            if size > MAX_SNAPSHOT_BYTES:
                raise SourceError(f"{where}: {size} bytes, more than {MAX_SNAPSHOT_BYTES}")
            body = obj["Body"].read(MAX_SNAPSHOT_BYTES + 1)
        except ClientError as exc:
            raise SourceError(f"{where}: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise SourceError(f"{where}: {exc}") from None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SourceError(f"{where}: not JSON: {exc}") from None
