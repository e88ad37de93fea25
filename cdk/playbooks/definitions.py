"""The playbooks' state machines, as Amazon States Language documents.

Built as plain dicts whose resource names may be CDK tokens; the construct serialises them
with ``Stack.to_json_string``. Every playbook has the same frame:

    Guardrails -> Decide -+- skip / done ---------------------------------> end
                          +- dry-run --> [evidence, read-only] -> Plan -> Notify -> status
                          +- approval -> RequestApproval (SNS, task token) -+
                          +- act ---------------------------------------------+-> Respond
    Respond (Parallel, one branch: the playbook's steps; any error -> Failed) -> Notify -> status

Simple, single-call actions are direct AWS SDK integrations (``arn:aws:states:::aws-sdk:*``),
each followed by a DynamoDB ``PutItem`` of its action item; a responder function runs where
logic is needed. SDK tasks on a member account's resource carry
``Credentials: {RoleArn: <member ramparts-responder role>}``, so the steps are generated twice
(same account / member account) and a Choice picks the variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

State = dict[str, Any]

REVOKE_POLICY_NAME = "ramparts-revoke-sessions"
# Where results that are not needed go: ``ResultPath: null`` would say it, but CDK's
# ``to_json_string`` drops nulls, so a scratch field is overwritten instead.
DISCARD = "$.last"
CONTAINED_TAG = "ramparts:contained"

LAMBDA_RETRY = [
    {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        ],
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2,
    }
]


@dataclass(frozen=True, slots=True)
class Context:
    """The deployment's names (tokens in CDK) a definition refers to."""

    partition: str
    responders: dict[str, str]  # responder name -> function ARN
    actions_table: str
    topic_arn: str
    approval_timeout_s: int = 86400


@dataclass(frozen=True, slots=True)
class Step:
    """One SDK action: the call, its action item, and an optional guard on the evidence."""

    state: str
    service: str
    api: str
    params: dict[str, Any]
    action: str
    before: str  # JSONPath to the before-state (a JSON string)
    after: dict[str, str]  # DynamoDB string value: {"S": ...} or {"S.$": ...}
    only_if: str | None = None  # JSONPath to a boolean in the state


def invoke(
    ctx: Context, responder: str, payload: dict[str, Any], result_path: str | None, nxt: str | None
) -> State:
    state: State = {
        "Type": "Task",
        "Resource": ctx.responders[responder],
        "Parameters": payload,
        "ResultPath": result_path,
        "Retry": LAMBDA_RETRY,
    }
    _link(state, nxt)
    return state


def _link(state: State, nxt: str | None) -> None:
    if nxt is None:
        state["End"] = True
    else:
        state["Next"] = nxt


def status(ctx: Context, value: str, nxt: str | None, with_error: bool = False) -> State:
    # "$.approval" always exists (the Start state sets it; an approval replaces it)
    payload: dict[str, Any] = {"guard.$": "$.guard", "status": value, "approval.$": "$.approval"}
    if with_error:
        payload["error.$"] = "$.error"
    return invoke(ctx, "status", payload, "$.status", nxt)


def notify(ctx: Context, what: str, nxt: str | None) -> State:
    state: State = {
        "Type": "Task",
        "Resource": f"arn:{ctx.partition}:states:::sns:publish",
        "Parameters": {
            "TopicArn": ctx.topic_arn,
            "Subject": f"Ramparts response: {what}",
            "Message.$": (
                f"States.Format('Ramparts playbook {{}} {what}: finding {{}} on {{}} "
                "(account {}, region {}, mode {}, {}). Details: {}', $.guard.playbook, "
                "$.guard.finding_id, $.guard.resource_uid, $.guard.account, $.guard.region, "
                "$.guard.mode, $.guard.reason, States.JsonToString($.guard))"
            ),
        },
        "ResultPath": DISCARD,
    }
    _link(state, nxt)
    return state


def record(ctx: Context, step: Step, nxt: str | None) -> State:
    """The action item of an SDK step (same layout as ``functions.respond.common``)."""
    state: State = {
        "Type": "Task",
        "Resource": f"arn:{ctx.partition}:states:::dynamodb:putItem",
        "Parameters": {
            "TableName": ctx.actions_table,
            "Item": {
                "pk": {"S.$": "States.Format('finding#{}', $.guard.finding_id)"},
                "sk": {"S.$": f"States.Format('action#{{}}#{step.action}', $.guard.playbook)"},
                "finding_id": {"S.$": "$.guard.finding_id"},
                "playbook": {"S.$": "$.guard.playbook"},
                "action": {"S": step.action},
                "status": {"S": "applied"},
                "resource": {"S.$": "$.guard.resource_uid"},
                "account": {"S.$": "$.guard.account"},
                "region": {"S.$": "$.guard.region"},
                "before": {"S.$": step.before},
                "after": step.after,
                "execution": {"S.$": "$.guard.execution"},
                "at": {"S.$": "$$.State.EnteredTime"},
                "expires_at": {"N.$": "$.guard.expires_at"},
            },
            "ConditionExpression": "attribute_not_exists(pk)",
        },
        "ResultPath": DISCARD,
        "Catch": [
            {
                "ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
                "ResultPath": DISCARD,
                "Next": nxt or "__end__",
            }
        ],
    }
    _link(state, nxt)
    return state


def sdk_chain(ctx: Context, steps: list[Step], member: bool, nxt: str | None) -> dict[str, State]:
    """SDK steps in order, each followed by its record; ``nxt`` after the last one."""
    suffix = " (member account)" if member else ""
    states: dict[str, State] = {}
    names = [s.state + suffix for s in steps]
    for i, step in enumerate(steps):
        after = names[i + 1] if i + 1 < len(steps) else nxt
        call_name, record_name = names[i], f"Record {step.state}{suffix}"
        call: State = {
            "Type": "Task",
            "Resource": f"arn:{ctx.partition}:states:::aws-sdk:{step.service}:{step.api}",
            "Parameters": step.params,
            "ResultPath": DISCARD,
        }
        if member:
            call["Credentials"] = {"RoleArn.$": "$.guard.role_arn"}
        _link(call, record_name)
        if step.only_if is not None:
            gate_name = f"{step.state}?{suffix}"
            states[call_name] = {
                "Type": "Choice",
                "Choices": [{"Variable": step.only_if, "BooleanEquals": True, "Next": gate_name}],
                "Default": after or "Branch done",
            }
            states[gate_name] = call
        else:
            states[call_name] = call
        states[record_name] = record(ctx, step, after)
    return states


def _fix_end(states: dict[str, State]) -> dict[str, State]:
    """Catches and Choices written before the branch's end existed point at it."""
    needs_end = False
    for state in states.values():
        for c in state.get("Catch", []):
            if c["Next"] == "__end__":
                c["Next"] = "Branch done"
                needs_end = True
        if state.get("Default") == "Branch done":
            needs_end = True
    if needs_end:
        states["Branch done"] = {"Type": "Pass", "End": True}
    return states


def frame(
    ctx: Context,
    playbook: str,
    *,
    branch: dict[str, Any],
    dry_run: dict[str, State],
    dry_run_start: str,
    comment: str,
) -> dict[str, Any]:
    """The common frame around a playbook's own steps (``branch``, a Parallel branch)."""
    final = "released" if playbook.startswith("release-") else "applied"
    states: dict[str, State] = {
        "Guardrails": invoke(
            ctx,
            "guardrails",
            {"playbook": playbook, "input.$": "$", "execution.$": "$$.Execution.Id"},
            "$.guard",
            "Decide",
        ),
        "Decide": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.guard.decision", "StringEquals": "skip", "Next": "Skipped"},
                {"Variable": "$.guard.decision", "StringEquals": "done", "Next": "Already done"},
                {"Variable": "$.guard.decision", "StringEquals": "dry-run", "Next": dry_run_start},
                {
                    "Variable": "$.guard.decision",
                    "StringEquals": "approval",
                    "Next": "Request approval",
                },
                {"Variable": "$.guard.decision", "StringEquals": "act", "Next": "Respond"},
            ],
            "Default": "Unknown decision",
        },
        "Skipped": {"Type": "Succeed"},
        "Already done": {"Type": "Succeed"},
        "Unknown decision": {"Type": "Fail", "Error": "Ramparts.UnknownDecision"},
        "Request approval": {
            "Type": "Task",
            "Resource": f"arn:{ctx.partition}:states:::sns:publish.waitForTaskToken",
            "Parameters": {
                "TopicArn": ctx.topic_arn,
                "Subject": "Ramparts response: approval needed",
                "Message.$": (
                    "States.Format('Ramparts playbook {} waits for approval: finding {} on {} "
                    "(account {}, region {}; {}). Approve: ramparts approve {} -- Deny: "
                    "ramparts deny {} --reason TEXT. Details: {}', $.guard.playbook, "
                    "$.guard.finding_id, $.guard.resource_uid, $.guard.account, $.guard.region, "
                    "$.guard.reason, $$.Task.Token, $$.Task.Token, States.JsonToString($.guard))"
                ),
                "MessageAttributes": {
                    "task_token": {"DataType": "String", "StringValue.$": "$$.Task.Token"},
                    "playbook": {"DataType": "String", "StringValue.$": "$.guard.playbook"},
                    "finding_id": {"DataType": "String", "StringValue.$": "$.guard.finding_id"},
                },
            },
            "TimeoutSeconds": ctx.approval_timeout_s,
            "ResultPath": "$.approval",
            "Catch": [
                {
                    "ErrorEquals": ["States.Timeout"],
                    "ResultPath": "$.error",
                    "Next": "Approval expired",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Denied"},
            ],
            "Next": "Respond",
        },
        "Approval expired": status(ctx, "expired", None, with_error=True),
        "Denied": status(ctx, "denied", "Notify denied", with_error=True),
        "Notify denied": notify(ctx, "denied", None),
        **dry_run,
        "Respond": {
            "Type": "Parallel",
            "Branches": [branch],
            "ResultSelector": {"steps.$": "$[0]"},
            "ResultPath": "$.respond",
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Record failure"}
            ],
            "Next": "Notify done",
        },
        "Record failure": status(ctx, "failed", "Notify failure", with_error=True),
        "Notify failure": notify(ctx, "failed", "Failed"),
        "Failed": {
            "Type": "Fail",
            "Error": "Ramparts.PlaybookFailed",
            "Cause": "a response step failed; see the execution history",
        },
        "Notify done": notify(ctx, final, "Record done"),
        "Record done": status(ctx, final, None),
    }
    start: State = {
        "Type": "Pass",
        "Comment": "no approval yet: 'ramparts approve' replaces it with who approved, and when",
        "Result": {},
        "ResultPath": "$.approval",
        "Next": "Guardrails",
    }
    return {"Comment": comment, "StartAt": "Start", "States": {"Start": start, **states}}


def _dry_run_containment(ctx: Context, evidence: str) -> dict[str, State]:
    return {
        "Dry run: read state": invoke(
            ctx, evidence, {"guard.$": "$.guard"}, "$.evidence", "Dry run: record plan"
        ),
        "Dry run: record plan": invoke(
            ctx,
            "plan",
            {"guard.$": "$.guard", "evidence.$": "$.evidence"},
            "$.plan",
            "Notify dry run",
        ),
        "Notify dry run": notify(ctx, "dry run recorded", "Record dry run"),
        "Record dry run": status(ctx, "dry-run", None),
    }


def _dry_run_release(ctx: Context) -> dict[str, State]:
    return {
        "Dry run: record plan": invoke(
            ctx, "plan", {"guard.$": "$.guard"}, "$.plan", "Notify dry run"
        ),
        "Notify dry run": notify(ctx, "dry run recorded", "Record dry run"),
        "Record dry run": status(ctx, "dry-run", None),
    }


def _member_switch(first_same: str, first_member: str) -> State:
    return {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.guard.cross_account", "BooleanEquals": True, "Next": first_member}
        ],
        "Default": first_same,
    }


def _revoke_step(only_if: str = "$.evidence.has_role") -> Step:
    return Step(
        state="Revoke role sessions",
        service="iam",
        api="putRolePolicy",
        params={
            "RoleName.$": "$.evidence.role_name",
            "PolicyName": REVOKE_POLICY_NAME,
            "PolicyDocument.$": "$.evidence.revoke_policy",
        },
        action="revoke",
        before="$.evidence.before.revoke",
        after={"S.$": "States.JsonToString($.evidence.revoke_policy)"},
        only_if=only_if,
    )


def contain_lambda(ctx: Context) -> dict[str, Any]:
    def steps_until_policy() -> list[Step]:
        return [
            Step(
                "Tag function",
                "lambda",
                "tagResource",
                {
                    "Resource.$": "$.guard.resource_uid",
                    "Tags": {f"{CONTAINED_TAG}.$": "$.guard.finding_id"},
                },
                "tag",
                "$.evidence.before.tag",
                {"S.$": "States.JsonToString($.guard.finding_id)"},
            ),
            Step(
                "Set reserved concurrency to 0",
                "lambda",
                "putFunctionConcurrency",
                {"FunctionName.$": "$.guard.resource_uid", "ReservedConcurrentExecutions": 0},
                "concurrency",
                "$.evidence.before.concurrency",
                {"S": "0"},
            ),
            Step(
                "Delete function URL",
                "lambda",
                "deleteFunctionUrlConfig",
                {"FunctionName.$": "$.guard.resource_uid"},
                "url",
                "$.evidence.before.url",
                {"S": "null"},
                only_if="$.evidence.has_url",
            ),
        ]

    states: dict[str, State] = {
        "Preserve evidence": invoke(
            ctx, "lambda-evidence", {"guard.$": "$.guard"}, "$.evidence", "Which account"
        ),
        "Which account": _member_switch("Tag function", "Tag function (member account)"),
    }
    for member in (False, True):
        suffix = " (member account)" if member else ""
        states.update(
            sdk_chain(ctx, steps_until_policy(), member, f"Remove public policy statements{suffix}")
        )
        states[f"Remove public policy statements{suffix}"] = invoke(
            ctx,
            "lambda-policy",
            {"guard.$": "$.guard"},
            "$.policy",
            f"Revoke role sessions{suffix}",
        )
        states.update(sdk_chain(ctx, [_revoke_step()], member, None))
    branch = {"StartAt": "Preserve evidence", "States": _fix_end(states)}
    return frame(
        ctx,
        "contain-lambda",
        branch=branch,
        dry_run=_dry_run_containment(ctx, "lambda-evidence"),
        dry_run_start="Dry run: read state",
        comment="Ramparts: contain a Lambda function",
    )


def release_lambda(ctx: Context) -> dict[str, Any]:
    branch = {
        "StartAt": "Restore function",
        "States": {
            "Restore function": invoke(
                ctx, "lambda-release", {"guard.$": "$.guard"}, "$.restored", None
            )
        },
    }
    return frame(
        ctx,
        "release-lambda",
        branch=branch,
        dry_run=_dry_run_release(ctx),
        dry_run_start="Dry run: record plan",
        comment="Ramparts: release a contained Lambda function",
    )


def isolate_ec2(ctx: Context) -> dict[str, Any]:
    def steps() -> list[Step]:
        return [
            Step(
                "Enable termination protection",
                "ec2",
                "modifyInstanceAttribute",
                {"InstanceId.$": "$.guard.resource_name", "DisableApiTermination": {"Value": True}},
                "termination-protection",
                "$.evidence.before.termination",
                {"S": "true"},
            ),
            Step(
                "Detach from Auto Scaling group",
                "autoscaling",
                "detachInstances",
                {
                    "InstanceIds.$": "States.Array($.guard.resource_name)",
                    "AutoScalingGroupName.$": "$.evidence.asg",
                    "ShouldDecrementDesiredCapacity": True,
                },
                "detach-asg",
                "$.evidence.before.asg",
                {"S": "null"},
                only_if="$.evidence.has_asg",
            ),
            _revoke_step(),
            Step(
                "Tag instance",
                "ec2",
                "createTags",
                {
                    "Resources.$": "States.Array($.guard.resource_name)",
                    "Tags": [{"Key": CONTAINED_TAG, "Value.$": "$.guard.finding_id"}],
                },
                "tag",
                "$.evidence.before.tag",
                {"S.$": "States.JsonToString($.guard.finding_id)"},
            ),
        ]

    states: dict[str, State] = {
        "Preserve evidence": invoke(
            ctx, "ec2-evidence", {"guard.$": "$.guard"}, "$.evidence", "Isolate network interfaces"
        ),
        "Isolate network interfaces": invoke(
            ctx,
            "ec2-isolate",
            {"guard.$": "$.guard", "evidence.$": "$.evidence"},
            "$.isolation",
            "Which account",
        ),
        "Which account": _member_switch(
            "Enable termination protection", "Enable termination protection (member account)"
        ),
    }
    for member in (False, True):
        states.update(sdk_chain(ctx, steps(), member, None))
    branch = {"StartAt": "Preserve evidence", "States": _fix_end(states)}
    return frame(
        ctx,
        "isolate-ec2",
        branch=branch,
        dry_run=_dry_run_containment(ctx, "ec2-evidence"),
        dry_run_start="Dry run: read state",
        comment="Ramparts: isolate an EC2 instance",
    )


def release_ec2(ctx: Context) -> dict[str, Any]:
    branch = {
        "StartAt": "Restore instance",
        "States": {
            "Restore instance": invoke(
                ctx, "ec2-release", {"guard.$": "$.guard"}, "$.restored", None
            )
        },
    }
    return frame(
        ctx,
        "release-ec2",
        branch=branch,
        dry_run=_dry_run_release(ctx),
        dry_run_start="Dry run: record plan",
        comment="Ramparts: release an isolated EC2 instance",
    )


def stop_ecs_task(ctx: Context) -> dict[str, Any]:
    states: dict[str, State] = {
        "Preserve evidence": invoke(
            ctx, "ecs-evidence", {"guard.$": "$.guard"}, "$.evidence", "Which account"
        ),
        "Which account": _member_switch(
            "Revoke role sessions", "Revoke role sessions (member account)"
        ),
    }
    # ECS's API is camelCase; the task is stopped by a responder (see functions/respond/ecs_stop)
    for member in (False, True):
        suffix = " (member account)" if member else ""
        states.update(sdk_chain(ctx, [_revoke_step()], member, f"Stop task{suffix}"))
        states[f"Stop task{suffix}"] = invoke(
            ctx, "ecs-stop", {"guard.$": "$.guard"}, "$.stopped", None
        )
    branch = {"StartAt": "Preserve evidence", "States": _fix_end(states)}
    return frame(
        ctx,
        "stop-ecs-task",
        branch=branch,
        dry_run=_dry_run_containment(ctx, "ecs-evidence"),
        dry_run_start="Dry run: read state",
        comment="Ramparts: stop an ECS task and revoke its role's sessions",
    )


DEFINITIONS = {
    "contain-lambda": contain_lambda,
    "release-lambda": release_lambda,
    "isolate-ec2": isolate_ec2,
    "release-ec2": release_ec2,
    "stop-ecs-task": stop_ecs_task,
}


def sdk_actions(definition: dict[str, Any]) -> set[tuple[str, str]]:
    """(service, IAM action) of every AWS SDK integration in a definition (branches too)."""
    out: set[tuple[str, str]] = set()

    def walk(states: dict[str, State]) -> None:
        for state in states.values():
            res = state.get("Resource")
            if isinstance(res, str) and ":states:::aws-sdk:" in res:
                service, api = res.split(":states:::aws-sdk:", 1)[1].split(":", 1)
                out.add((service, f"{service}:{api[0].upper()}{api[1:]}"))
            for b in state.get("Branches", []):
                walk(b["States"])

    walk(definition["States"])
    return out
