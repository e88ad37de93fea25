"""Built-in rules: AWS API calls made from inside a Lambda function (the layer's ``aws.call``
lines): sensitive actions, and discovery, judged against the function's policy and
baseline."""

from __future__ import annotations

from typing import Any

from collectors.model import DISPOSITION_ALERT, DISPOSITION_BLOCKED, ApiActivity
from collectors.rules.engine import CRITICAL, HIGH, MEDIUM, Hit, RuleContext, rule

# -- what an action can do ---------------------------------------------------------------------
# Exact actions first, then (service, verb prefix) pairs; the first match decides.
_SENSITIVE_EXACT: dict[str, tuple[int, str]] = {
    "iam:CreateAccessKey": (CRITICAL, "creates long-lived credentials"),
    "iam:CreateLoginProfile": (CRITICAL, "gives a user console access"),
    "iam:UpdateLoginProfile": (CRITICAL, "changes a user's console password"),
    "iam:UpdateAssumeRolePolicy": (CRITICAL, "changes who can assume a role"),
    "iam:AddUserToGroup": (CRITICAL, "grants a group's permissions"),
    "iam:PassRole": (HIGH, "hands a role to a service"),
    "iam:UpdateAccessKey": (HIGH, "re-enables or disables an access key"),
    "sts:AssumeRole": (HIGH, "takes another role's credentials"),
    "sts:AssumeRoleWithWebIdentity": (HIGH, "takes another role's credentials"),
    "sts:AssumeRoleWithSAML": (HIGH, "takes another role's credentials"),
    "sts:AssumeRoot": (CRITICAL, "takes root credentials of a member account"),
    "sts:GetSessionToken": (HIGH, "mints session credentials"),
    "sts:GetFederationToken": (HIGH, "mints federated credentials"),
    "kms:Decrypt": (MEDIUM, "decrypts data"),
    "kms:ReEncrypt": (MEDIUM, "re-encrypts data under another key"),
    "kms:CreateGrant": (HIGH, "grants use of a key"),
    "kms:PutKeyPolicy": (CRITICAL, "changes who can use a key"),
    "kms:ScheduleKeyDeletion": (CRITICAL, "destroys a key (and the data under it)"),
    "kms:DisableKey": (HIGH, "makes data under a key unreadable"),
    "kms:CreateKey": (MEDIUM, "creates a key"),
    "kms:ImportKeyMaterial": (HIGH, "imports key material"),
    "secretsmanager:GetSecretValue": (HIGH, "reads a secret"),
    "secretsmanager:BatchGetSecretValue": (HIGH, "reads secrets in bulk"),
    "secretsmanager:PutResourcePolicy": (CRITICAL, "changes who can read a secret"),
    "ssm:GetParameter": (MEDIUM, "reads a parameter (possibly a SecureString)"),
    "ssm:GetParameters": (MEDIUM, "reads parameters (possibly SecureStrings)"),
    "ssm:GetParametersByPath": (MEDIUM, "reads a tree of parameters"),
    "lambda:UpdateFunctionCode": (CRITICAL, "replaces a function's code"),
    "lambda:UpdateFunctionConfiguration": (HIGH, "changes a function's environment or layers"),
    "lambda:AddPermission": (HIGH, "lets another principal invoke a function"),
    "lambda:CreateFunctionUrlConfig": (HIGH, "exposes a function on the internet"),
    "lambda:CreateFunction": (HIGH, "creates a function"),
    "lambda:AddLayerVersionPermission": (HIGH, "shares a layer"),
}
_SENSITIVE_PREFIXES: tuple[tuple[str, str, int, str], ...] = (
    ("iam", "Create", CRITICAL, "creates an IAM principal or policy"),
    ("iam", "Attach", CRITICAL, "attaches a policy"),
    ("iam", "Put", CRITICAL, "writes an inline policy or boundary"),
    ("iam", "SetDefaultPolicyVersion", CRITICAL, "activates another policy version"),
    ("iam", "Update", HIGH, "changes IAM"),
    ("iam", "Delete", HIGH, "deletes IAM principals, policies or protections"),
    ("iam", "Detach", HIGH, "detaches a policy"),
    ("iam", "Remove", HIGH, "changes IAM membership"),
    ("iam", "Add", HIGH, "changes IAM membership"),
    ("iam", "Tag", MEDIUM, "tags IAM resources"),
    ("iam", "Untag", MEDIUM, "untags IAM resources"),
    ("kms", "GenerateDataKey", MEDIUM, "creates data keys"),
    ("kms", "ReEncrypt", MEDIUM, "re-encrypts data"),
    ("kms", "RetireGrant", MEDIUM, "changes key grants"),
    ("kms", "RevokeGrant", MEDIUM, "changes key grants"),
    ("secretsmanager", "Put", HIGH, "writes a secret"),
    ("secretsmanager", "Update", HIGH, "changes a secret"),
    ("secretsmanager", "Delete", HIGH, "deletes a secret or its policy"),
    ("secretsmanager", "Create", MEDIUM, "creates a secret"),
    ("secretsmanager", "Restore", MEDIUM, "restores a secret"),
    ("secretsmanager", "Rotate", MEDIUM, "rotates a secret"),
    ("secretsmanager", "Replicate", HIGH, "copies a secret to another region"),
    ("organizations", "", CRITICAL, "changes the organization"),  # reads: the recon rule
)
# Discovery: enumerating the account. Exact actions, then (service, verb prefix).
_RECON_EXACT: dict[str, tuple[int, str]] = {
    "sts:GetCallerIdentity": (MEDIUM, "asks who the function's credentials belong to"),
    "sts:GetAccessKeyInfo": (MEDIUM, "asks which account an access key belongs to"),
    "iam:GetAccountAuthorizationDetails": (HIGH, "dumps every IAM principal and policy"),
    "iam:SimulatePrincipalPolicy": (HIGH, "probes what a principal may do"),
    "iam:GetCredentialReport": (HIGH, "reads every user's credential status"),
    "iam:GenerateCredentialReport": (HIGH, "builds the credential report"),
    "s3:ListBuckets": (MEDIUM, "lists every bucket of the account"),
    "lambda:ListFunctions": (MEDIUM, "lists the account's functions"),
    "lambda:GetFunction": (HIGH, "reads a function's code location and settings"),
    "lambda:GetFunctionConfiguration": (MEDIUM, "reads a function's environment"),
    "lambda:ListLayers": (MEDIUM, "lists layers"),
    "lambda:GetAccountSettings": (MEDIUM, "reads the account's Lambda settings"),
    "secretsmanager:ListSecrets": (MEDIUM, "lists the account's secrets"),
    "secretsmanager:DescribeSecret": (MEDIUM, "describes a secret"),
    "ssm:DescribeParameters": (MEDIUM, "lists parameters"),
    "kms:ListKeys": (MEDIUM, "lists keys"),
    "kms:ListAliases": (MEDIUM, "lists key aliases"),
    "dynamodb:ListTables": (MEDIUM, "lists tables"),
    "sns:ListTopics": (MEDIUM, "lists topics"),
    "sqs:ListQueues": (MEDIUM, "lists queues"),
    "eks:ListClusters": (MEDIUM, "lists clusters"),
    "ecs:ListClusters": (MEDIUM, "lists clusters"),
    "cloudtrail:DescribeTrails": (MEDIUM, "looks at the audit trail"),
    "cloudtrail:GetTrailStatus": (MEDIUM, "looks at the audit trail"),
    "guardduty:ListDetectors": (MEDIUM, "looks for threat detection"),
    "route53:ListHostedZones": (MEDIUM, "lists DNS zones"),
    "logs:DescribeLogGroups": (MEDIUM, "lists log groups"),
    "cloudformation:ListStacks": (MEDIUM, "lists stacks"),
    "account:GetContactInformation": (MEDIUM, "reads the account's contact"),
}
_RECON_PREFIXES: tuple[tuple[str, str, int, str], ...] = (
    ("iam", "List", MEDIUM, "enumerates IAM"),
    ("iam", "Get", MEDIUM, "reads IAM"),
    ("organizations", "List", HIGH, "enumerates the organization"),
    ("organizations", "Describe", HIGH, "reads the organization"),
    ("ec2", "Describe", MEDIUM, "enumerates EC2"),
    ("rds", "Describe", MEDIUM, "enumerates databases"),
    ("ecs", "Describe", MEDIUM, "enumerates ECS"),
    ("eks", "Describe", MEDIUM, "reads a cluster"),
    ("lambda", "List", MEDIUM, "enumerates Lambda"),
    ("sso", "List", MEDIUM, "enumerates SSO"),
    ("identitystore", "List", MEDIUM, "enumerates identities"),
)


def _classify(
    action: str,
    exact: dict[str, tuple[int, str]],
    prefixes: tuple[tuple[str, str, int, str], ...],
) -> tuple[int, str] | None:
    found = exact.get(action)
    if found is not None:
        return found
    service, _, op = action.partition(":")
    for svc, verb, sev, what in prefixes:
        if service == svc and op.startswith(verb):
            return sev, what
    return None


def normalise_action(event: ApiActivity) -> str | None:
    """``service:Operation`` of an API call: the sensor's ``action``, else built from
    ``api.service.name`` and ``api.operation``; the service part lower case."""
    un = event.unmapped or {}
    action = un.get("action")
    if not isinstance(action, str) or ":" not in action:
        svc = event.api.service.name if event.api.service else None
        if not svc or not event.api.operation:
            return None
        action = f"{svc}:{event.api.operation}"
    service, _, op = action.partition(":")
    service = service.strip().lower()
    op = op.strip()
    if not service or not op:
        return None
    return f"{service}:{op[:1].upper()}{op[1:]}"


def sensitive_action(action: str) -> tuple[int, str] | None:
    """(severity, what it does) of an action rule ``aws.sensitive-call-from-function``
    owns; organizations reads and IAM reads belong to the discovery rule."""
    service, _, op = action.partition(":")
    if service in ("organizations", "iam") and op.startswith(("List", "Describe", "Get")):
        return None
    return _classify(action, _SENSITIVE_EXACT, _SENSITIVE_PREFIXES)


def recon_action(action: str) -> tuple[int, str] | None:
    """(severity, what it does) of an enumeration call (``aws.recon-from-function``)."""
    if sensitive_action(action) is not None:
        return None
    return _classify(action, _RECON_EXACT, _RECON_PREFIXES)


def _judge(event: ApiActivity, ctx: RuleContext, action: str) -> str | None:
    """Why the call is out of the ordinary for this function, or ``None``: outside its
    policy (the sensor alerted or blocked), or, when the policy allowed it or the function
    runs in learn mode, new against its baseline (kind ``aws``)."""
    un = event.unmapped or {}
    learn = un.get("mode") == "learn"
    if not learn and event.disposition_id in (DISPOSITION_ALERT, DISPOSITION_BLOCKED):
        rule_name = un.get("rule") or "the policy"
        verdict = "blocked" if event.disposition_id == DISPOSITION_BLOCKED else "alerted"
        return f"outside the function's policy ({verdict} by {rule_name})"
    wl = ctx.workload_key
    if not wl:
        return None
    known = ctx.baseline.known(wl, "aws", action, ctx.now_ms)
    if known is None:
        ctx.baseline.record(wl, "aws", action, ctx.now_ms)
        return None
    if known:
        return None
    return "never called by this function while its baseline was learnt"


def _hit(event: ApiActivity, action: str, sev: int, what: str, why: str) -> Hit:
    un = event.unmapped or {}
    evidence: dict[str, Any] = {"action": action, "does": what, "reason": why}
    for key in ("mode", "rule", "api_region"):
        if isinstance(un.get(key), str):
            evidence[key] = un[key]
    if event.disposition:
        evidence["verdict"] = event.disposition
    return Hit(key=action, severity=sev, summary=f"{action} ({what}): {why}", evidence=evidence)


@rule(
    id="aws.sensitive-call-from-function",
    title="Sensitive AWS call from a Lambda function outside its policy or baseline",
    severity=HIGH,
    techniques=["T1098.001", "T1098.003", "T1548.005", "T1555.006", "T1651"],
    sources=["layer"],
    classes=[ApiActivity],
)
def sensitive_call(event: ApiActivity, ctx: RuleContext) -> Hit | None:
    """AWS API calls made by a function's code that change who can do what or hand out
    secrets and credentials: IAM writes (``iam:Create*``, ``Attach*``, ``Put*Policy``,
    ``UpdateAssumeRolePolicy``... critical), STS ``AssumeRole*``/``GetSessionToken``/
    ``GetFederationToken``, KMS ``Decrypt``/``GenerateDataKey*``/``CreateGrant``/key
    policy changes, Secrets Manager reads and writes, SSM parameter reads, Organizations
    writes, Lambda code and permission changes. Fires when the sensor's verdict says the
    policy does not allow the call (alert or block), or — when the policy allowed it, or the
    function runs in learn mode — when the function's baseline has never seen the action
    (kind ``aws``; nothing fires while the baseline learns). IAM/Organizations reads and
    ``sts:GetCallerIdentity`` are discovery (``aws.recon-from-function``). Calls signed
    without botocore are only seen as egress. Severity by what the action can do; one
    finding per action."""
    action = normalise_action(event)
    if action is None:
        return None
    found = sensitive_action(action)
    if found is None:
        return None
    why = _judge(event, ctx, action)
    if why is None:
        return None
    return _hit(event, action, *found, why)


@rule(
    id="aws.recon-from-function",
    title="AWS discovery calls from a Lambda function outside its policy or baseline",
    severity=MEDIUM,
    techniques=["T1087.004", "T1580", "T1526", "T1619"],
    sources=["layer"],
    classes=[ApiActivity],
)
def recon_call(event: ApiActivity, ctx: RuleContext) -> Hit | None:
    """Enumeration of the account by a function's code — ``sts:GetCallerIdentity`` (the
    first thing stolen credentials are asked), ``iam:List*``/``Get*``
    (``GetAccountAuthorizationDetails`` high), ``organizations:List*``/``Describe*``,
    ``s3:ListBuckets``, ``ec2:Describe*``, ``lambda:ListFunctions``/``GetFunction``,
    ``secretsmanager:ListSecrets``, ``kms:ListKeys``... — when outside the function's policy
    (the sensor alerted or blocked it) or, when allowed or in learn mode, new against the
    function's baseline. Actions that change or reveal secrets belong to
    ``aws.sensitive-call-from-function`` (no action fires both). One finding per action."""
    action = normalise_action(event)
    if action is None:
        return None
    found = recon_action(action)
    if found is None:
        return None
    why = _judge(event, ctx, action)
    if why is None:
        return None
    return _hit(event, action, *found, why)
