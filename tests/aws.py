"""What the moto-backed tests share: Ramparts' table layout, created as the CDK app does."""

from __future__ import annotations

from typing import Any


def create_table(ddb: Any, name: str) -> None:
    """A Ramparts table: ``pk``/``sk`` strings, on demand, TTL on ``expires_at``."""
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
