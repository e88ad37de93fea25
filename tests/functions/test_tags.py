"""Tuning exceptions that name tags: the workload's tags are read through its account's
responder role; a workload without the tags, or whose tags cannot be read, is not excepted."""

from __future__ import annotations

import io
import json
import zipfile

from collectors.workload import Workload
from functions.tags import TagLookup
from tests.functions.conftest import (
    ACCOUNT,
    FUNCTION,
    REGION,
    T0,
    Aws,
    LambdaContext,
    blocked_connect,
    subscription_event,
)
from tests.functions.test_ingest import registry

TUNING = {
    "exceptions": [
        {
            "rule": "layer.blocked",
            "reason": "media team functions probe IMDS in their health check; blocked anyway",
            "expires": "2099-01-01",
            "tags": {"team": "media"},
        }
    ]
}


def _function(aws: Aws, name: str, tags: dict[str, str]) -> str:
    iam = aws.client("iam")
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(e, c):\n    return 1\n")
    return aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buf.getvalue()},
        Tags=tags,
    )["FunctionArn"]


def _responder_role(aws: Aws) -> None:
    aws.client("iam").create_role(
        RoleName="ramparts-responder",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )


def _tuned(aws: Aws):  # type: ignore[no-untyped-def]
    s3 = aws.client("s3")
    s3.create_bucket(
        Bucket="ramparts-config", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_object(Bucket="ramparts-config", Key="tuning.json", Body=json.dumps(TUNING).encode())
    return aws.build(registry(), tuning_uri="s3://ramparts-config/tuning.json")


def test_an_exception_by_tag_suppresses_only_the_tagged_function(aws: Aws) -> None:
    _responder_role(aws)
    _function(aws, FUNCTION, {"team": "media"})
    _function(aws, "billing", {"team": "payments"})
    app = _tuned(aws)
    out = app.handle(subscription_event([blocked_connect(8, T0)]), LambdaContext())
    assert out["suppressed"] == 1 and out["created"] == 0
    out = app.handle(
        subscription_event([blocked_connect(9, T0)], function="billing"), LambdaContext()
    )
    assert out["suppressed"] == 0 and out["created"] == 1
    assert [e["detail"]["resources"][0]["name"] for e in aws.published()] == ["billing"]


def test_unreadable_tags_do_not_suppress(aws: Aws) -> None:
    _responder_role(aws)  # but the function cannot be read (GetFunction fails: not found)
    app = _tuned(aws)
    out = app.handle(subscription_event([blocked_connect(8, T0)]), LambdaContext())
    assert out["suppressed"] == 0 and out["created"] == 1


def test_lookups_are_cached_and_cover_instances(aws: Aws) -> None:
    _responder_role(aws)
    ec2 = aws.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    iid = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "prod"}]}],
    )["Instances"][0]["InstanceId"]
    calls: list[str] = []
    clock = iter(range(0, 10_000, 100))
    lookup = TagLookup(own_account=ACCOUNT, session=aws.session, clock=lambda: float(next(clock)))
    original = lookup._read

    def counted(wl: Workload) -> dict[str, str]:
        calls.append(wl.key)
        return original(wl)

    lookup._read = counted  # type: ignore[method-assign]
    wl = Workload("ec2", iid, account=ACCOUNT, region=REGION)
    assert lookup(wl)["env"] == "prod"
    assert lookup(wl)["env"] == "prod"
    assert calls == [wl.key]  # the second read came from the cache
    assert lookup(Workload("k8s-pod", "ns/pod", account=ACCOUNT, region=REGION)) == {}
