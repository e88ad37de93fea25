"""Who approved or denied a run: recorded on the response status from the decision."""

from __future__ import annotations

import json

from functions.respond.status import approval_of


def test_an_approval_records_who_and_when() -> None:
    event = {
        "approval": {"approved": True, "by": "alice@example.com", "at": "2026-12-04T23:00:00Z"}
    }
    assert approval_of(event, "applied") == {
        "decision": "approved",
        "by": "alice@example.com",
        "at": "2026-12-04T23:00:00Z",
    }


def test_a_denial_records_who_when_and_why_from_the_task_failure() -> None:
    cause = {
        "denied": True,
        "reason": "known deploy script",
        "by": "bob",
        "at": "2026-12-04T23:01:00Z",
    }
    event = {"error": {"Error": "Ramparts.Denied", "Cause": json.dumps(cause)}}
    assert approval_of(event, "denied") == {
        "decision": "denied",
        "by": "bob",
        "at": "2026-12-04T23:01:00Z",
        "reason": "known deploy script",
    }


def test_no_decision_no_record() -> None:
    assert approval_of({"approval": {}}, "applied") is None  # automatic mode: nobody decided
    assert approval_of({"error": {"Error": "States.Timeout", "Cause": None}}, "expired") is None
    assert (
        approval_of({"error": {"Error": "Ramparts.Denied", "Cause": "not json"}}, "denied") is None
    )
