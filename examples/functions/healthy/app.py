"""A well-behaved Lambda function for the Ramparts demo: it reads orders, nothing else.

``{"order_id": "1001"}`` -> the order from the ``orders`` DynamoDB table (``ORDERS_TABLE``).
It spawns no process, writes no file and calls no other AWS API: its policy
(``ramparts.yaml``) says so, and enforce mode never gets in its way.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

_TABLE = boto3.resource("dynamodb").Table(os.environ.get("ORDERS_TABLE", "orders"))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    order_id = str(event.get("order_id", ""))
    if not order_id:
        return {"ok": False, "error": "order_id is required"}
    item = _TABLE.get_item(Key={"order_id": order_id}).get("Item")
    if item is None:
        return {"ok": False, "error": f"no order {order_id}"}
    return {"ok": True, "order": {k: str(v) for k, v in item.items()}}
