"""The AWS tags of a workload: one reader for the ingest (tuning exceptions by tag) and the
playbooks (the ``ramparts:exempt`` check). Only boto3 calls: the responders' package has no
other dependency."""

from __future__ import annotations

from typing import Any


def read_tags(session: Any, kind: str, resource: str, region: str | None = None) -> dict[str, str]:
    """The AWS tags of a Lambda function (``kind`` lambda, its ARN), an EC2 instance (ec2,
    its id) or an ECS task (ecs-task, its ARN). Shared by the ingest's tag look-ups and the
    playbooks' exempt check; the responder role allows these calls."""

    def client(service: str) -> Any:
        return session.client(service, region_name=region) if region else session.client(service)

    if kind == "lambda":
        got = client("lambda").list_tags(Resource=resource).get("Tags") or {}
        return {str(k): str(v) for k, v in got.items()}
    if kind == "ec2":
        resp = client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])
        return {str(t["Key"]): str(t.get("Value", "")) for t in resp.get("Tags", [])}
    if kind == "ecs-task":
        resp = client("ecs").list_tags_for_resource(resourceArn=resource)
        return {str(t["key"]): str(t.get("value", "")) for t in resp.get("tags", [])}
    raise ValueError(f"no AWS tags for a {kind!r}")
