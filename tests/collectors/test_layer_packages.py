"""``sensor.packages`` lines become signals (for inventory and vulnerability priority)."""

from __future__ import annotations

import json

from collectors import adapter
from collectors.base import Context

CTX = Context(account="123456789012", region="eu-west-1", function="orders")


def _line(**kw: object) -> str:
    base = {
        "ramparts": 1,
        "kind": "sensor.packages",
        "update": False,
        "packages": [
            {"name": "requests", "version": "2.31.0", "path": "/var/task", "imported": True},
            {"name": "PyYAML", "version": "6.0.1", "path": "/opt/python", "imported": False},
        ],
        "truncated": False,
        "scan_ms": 3.2,
        "sandbox": "5490db832e04c471",
        "seq": 9,
        "time": 1796417909725,
        "request_id": "9aa6a865-e663-48bd-8194-7135eb38f119",
    }
    base.update(kw)
    return json.dumps(base)


def test_packages_line_is_a_signal_with_the_envelope_identity() -> None:
    batch = adapter("layer").normalize(_line(), CTX)
    assert batch.events == [] and batch.rejects == []
    (sig,) = batch.signals
    assert sig["kind"] == "sensor.packages"
    assert sig["workload"] == "lambda:arn:aws:lambda:eu-west-1:123456789012:function:orders"
    assert sig["packages"] == [
        {"name": "requests", "version": "2.31.0", "path": "/var/task", "imported": True},
        {"name": "PyYAML", "version": "6.0.1", "path": "/opt/python", "imported": False},
    ]
    assert sig["update"] is False


def test_malformed_packages_are_rejected_with_the_reason() -> None:
    for bad, why in (
        ({"packages": "requests"}, "packages"),
        (
            {"packages": [{"name": "x", "path": "/var/task", "imported": True}]},
            "packages[0].version",
        ),
        ({"packages": [{"name": "x"}] * 1001}, "1001 entries"),
    ):
        batch = adapter("layer").normalize(_line(**bad), CTX)
        assert batch.signals == []
        assert len(batch.rejects) == 1 and why in batch.rejects[0].reason, batch.rejects
