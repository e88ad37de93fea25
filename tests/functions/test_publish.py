"""Publishers' retries of what AWS did not accept (failures injected in a recording client)."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.findings import Published
from functions.publish import EventBridgePublisher, PublishError, SecurityHubPublisher
from tests.functions.conftest import ACCOUNT, REGION
from tests.functions.test_store import alerts


class Flaky:
    """Records calls; the first ``fail_times`` calls report every entry/finding as failed."""

    def __init__(self, fail_times: int) -> None:
        self.fail_times = fail_times
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if len(self.calls) <= self.fail_times:
            bad = {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
            return {"FailedEntryCount": len(Entries), "Entries": [bad for _ in Entries]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}

    def batch_import_findings(self, Findings: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Findings)
        if len(self.calls) <= self.fail_times:
            failed = [
                {"Id": f["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "x"} for f in Findings
            ]
            return {"FailedCount": len(Findings), "SuccessCount": 0, "FailedFindings": failed}
        return {"FailedCount": 0, "SuccessCount": len(Findings), "FailedFindings": []}


def published(n: int) -> list[Published]:
    from collectors.findings import fold

    out = []
    for i in range(n):
        batch = alerts(range(1, 2))
        record, change = fold(None, batch)
        record.id = f"{i:032x}"
        assert change == "created"
        out.append(Published(record, change))
    return out


def test_eventbridge_retries_failed_entries_in_chunks_of_ten() -> None:
    client = Flaky(fail_times=1)
    EventBridgePublisher("ramparts", client=client, sleep=lambda s: None).publish(published(12))
    assert [len(c) for c in client.calls] == [10, 10, 2]  # the first chunk failed, then passed
    assert all(
        e["DetailType"] == "Ramparts Finding" and e["Source"] == "ramparts"
        for c in client.calls
        for e in c
    )


def test_eventbridge_raises_when_entries_keep_failing() -> None:
    client = Flaky(fail_times=99)
    with pytest.raises(PublishError, match="ThrottlingException"):
        EventBridgePublisher("ramparts", client=client, sleep=lambda s: None).publish(published(1))
    assert len(client.calls) == 3


def test_security_hub_raises_on_failed_findings() -> None:
    client = Flaky(fail_times=99)
    pub = SecurityHubPublisher(ACCOUNT, REGION, client=client, sleep=lambda s: None)
    with pytest.raises(PublishError, match="InvalidInput"):
        pub.publish(published(2))
    ok = Flaky(fail_times=1)
    SecurityHubPublisher(ACCOUNT, REGION, client=ok, sleep=lambda s: None).publish(published(2))
    assert [len(c) for c in ok.calls] == [2, 2]
