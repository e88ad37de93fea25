"""The workload written into OCSF's device reads back as the same workload, for every type."""

from __future__ import annotations

import pytest

from collectors.base import cloud, metadata
from collectors.model import Actor, Process, ProcessActivity
from collectors.workload import Workload, device_for, lambda_function, workload_of
from tests.ocsf import validate_ocsf

WORKLOADS = [
    lambda_function("orders", "123456789012", "eu-west-1"),
    Workload("ec2", "i-0abc1234def567890", region="eu-west-1", hostname="ip-10-0-1-5"),
    Workload(
        "ecs-task",
        "arn:aws:ecs:eu-west-1:123456789012:task/prod/0f9e",
        container_id="c1",
        container_name="web",
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1",
    ),
    Workload("k8s-pod", "payments/api-7d9f", container_id="abc", image="api:2"),
    Workload("k8s-pod", "payments/api-7d9f"),
    Workload("container", "3f2a9c1b77aa", image="nginx:1.25"),
    Workload("host", "build-runner-3", hostname="build-runner-3"),
]


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: w.type)
def test_device_round_trip_and_ocsf(w):
    device = device_for(w)
    back = workload_of(device, w.account)
    assert back is not None and (back.type, back.uid, back.key) == (w.type, w.uid, w.key)
    event = ProcessActivity(
        activity_id=1,
        time=1733300000000,
        metadata=metadata("Test", "Ramparts"),
        cloud=cloud(w.account, w.region),
        actor=Actor(process=Process(pid=1)),
        device=device,
        process=Process(pid=2),
    )
    assert validate_ocsf(event.to_ocsf()) == []
    resource = w.resource()
    assert resource.uid == w.uid and resource.type


def test_lambda_identity_is_the_unqualified_function_arn():
    w = lambda_function("orders", "123456789012", "eu-west-1")
    assert w.uid == "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    assert w.key == "lambda:arn:aws:lambda:eu-west-1:123456789012:function:orders"


def test_numbers_as_strings_take_only_ascii_digits():
    from collectors.base import RecordError, as_int

    assert as_int(" 42 ", "pid") == 42 and as_int("-7", "n") == -7
    for bad in ("¹", "٣", "4²", ""):
        with pytest.raises(RecordError):
            as_int(bad, "pid")
