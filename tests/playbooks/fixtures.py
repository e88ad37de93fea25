"""Moto resources the playbooks act on, and findings about them."""

from __future__ import annotations

import json
from typing import Any

from collectors.findings import FindingRecord, to_ocsf
from tests.playbooks.harness import ACCOUNT, REGION, Harness, zip_of

CODE = zip_of({"app.py": "def handler(event, context):\n    return 'victim'\n"})


def finding(
    uid: str,
    rtype: str,
    *,
    fid: str,
    severity: int = 5,
    account: str = ACCOUNT,
    region: str = REGION,
    rule: str = "layer.exec-shell",
) -> dict[str, Any]:
    record = FindingRecord(
        id=fid,
        rule_id=rule,
        title="Shell spawned in function",
        severity=severity,
        techniques=[],
        key="k",
        resource={"uid": uid, "type": rtype, "region": region},
        device=None,
        account=account,
        region=region,
        first_seen=1,
        last_seen=2,
        count=1,
    )
    return to_ocsf(record, "created")


def make_function(
    h: Harness,
    name: str,
    *,
    url: bool = True,
    concurrency: int | None = 7,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    iam = h.c["iam"]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=trust)["Role"]
    lam = h.c["lambda"]
    fn = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": CODE},
        Tags=tags or {"team": "payments"},
    )
    if concurrency is not None:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=concurrency)
    if url:
        lam.create_function_url_config(
            FunctionName=name, AuthType="NONE", Cors={"AllowOrigins": ["https://example.com"]}
        )
        lam.add_permission(
            FunctionName=name,
            StatementId="FunctionURLAllowPublicAccess",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
        )
    # a narrowed statement: not public, must stay
    lam.add_permission(
        FunctionName=name,
        StatementId="FromS3",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::uploads-bucket",
        SourceAccount=ACCOUNT,
    )
    # a public statement unrelated to the URL
    lam.add_permission(
        FunctionName=name, StatementId="AnyoneInvoke", Action="lambda:InvokeFunction", Principal="*"
    )
    return {"arn": fn["FunctionArn"], "role": role["RoleName"]}


def lambda_state(h: Harness, name: str) -> dict[str, Any]:
    """Everything the Lambda playbooks may change, read back from moto."""
    from botocore.exceptions import ClientError

    lam = h.c["lambda"]
    conf = lam.get_function(FunctionName=name)["Configuration"]
    try:
        policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
    except ClientError:
        policy = []
    try:
        u = lam.get_function_url_config(FunctionName=name)
        url = {k: u.get(k) for k in ("AuthType", "Cors", "InvokeMode")}
    except ClientError:
        url = None
    role = conf["Role"].rsplit("/", 1)[-1]
    return {
        "concurrency": lam.get_function_concurrency(FunctionName=name).get(
            "ReservedConcurrentExecutions"
        ),
        "url": url,
        "statements": sorted(policy, key=lambda s: s["Sid"]),
        "tags": lam.list_tags(Resource=conf["FunctionArn"])["Tags"],
        "role_policies": sorted(h.c["iam"].list_role_policies(RoleName=role)["PolicyNames"]),
        "code_sha": conf["CodeSha256"],
        "revision": conf.get("RevisionId"),
    }
