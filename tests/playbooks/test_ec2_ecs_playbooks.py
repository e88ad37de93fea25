"""Isolate / release an EC2 instance, stop an ECS task: synthesized state machines in moto."""

from __future__ import annotations

import json

from tests.playbooks.fixtures import finding
from tests.playbooks.harness import ACCOUNT, REGION

REVOKE = "ramparts-revoke-sessions"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def make_instance(h, name="web"):
    ec2, iam, asg = h.c["ec2"], h.c["iam"], h.c["autoscaling"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    sg = ec2.create_security_group(GroupName=f"{name}-sg", Description="app", VpcId=vpc)["GroupId"]
    iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)
    iam.create_instance_profile(InstanceProfileName=f"{name}-profile")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{name}-profile", RoleName=f"{name}-role")
    profile_arn = iam.get_instance_profile(InstanceProfileName=f"{name}-profile")[
        "InstanceProfile"
    ]["Arn"]
    ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={
            "ImageId": "ami-12c6146b",
            "InstanceType": "t3.micro",
            "SecurityGroupIds": [sg],
            "IamInstanceProfile": {"Arn": profile_arn},
        },
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=f"{name}-asg",
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
        VPCZoneIdentifier=subnet,
    )
    ids = [
        i["InstanceId"]
        for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{name}-asg"])[
            "AutoScalingGroups"
        ][0]["Instances"]
    ]
    for iid in ids:  # moto's ASG does not pass the profile on: associate it
        if not ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0].get(
            "IamInstanceProfile"
        ):
            ec2.associate_iam_instance_profile(
                IamInstanceProfile={"Name": f"{name}-profile"}, InstanceId=iid
            )
    ec2.create_tags(Resources=ids, Tags=[{"Key": "app", "Value": name}])
    return {"ids": ids, "sg": sg, "vpc": vpc, "role": f"{name}-role", "asg": f"{name}-asg"}


def eni_groups(eni_id):
    """The groups ModifyNetworkInterfaceAttribute set on an interface.

    moto's DescribeInstances/DescribeNetworkInterfaces add the instance's launch groups to
    whatever the interface has (AWS replaces them), so read the interface's own set.
    """
    from moto.ec2.models import ec2_backends

    eni = ec2_backends[ACCOUNT][REGION].get_network_interface(eni_id)
    return sorted(g.id for g in eni._group_set)


def instance_state(h, iid):
    ec2 = h.c["ec2"]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return {
        "groups": {
            n["NetworkInterfaceId"]: eni_groups(n["NetworkInterfaceId"])
            for n in inst["NetworkInterfaces"]
        },
        "termination": ec2.describe_instance_attribute(
            InstanceId=iid, Attribute="disableApiTermination"
        )["DisableApiTermination"]["Value"],
        "asg": [
            r["AutoScalingGroupName"]
            for r in h.c["autoscaling"].describe_auto_scaling_instances(InstanceIds=[iid])[
                "AutoScalingInstances"
            ]
        ],
        "tags": {t["Key"]: t["Value"] for t in inst.get("Tags", [])},
        "state": inst["State"]["Name"],
    }


def test_isolate_and_release_instance(h):
    env = make_instance(h)
    target, other = env["ids"]
    before, before_other = instance_state(h, target), instance_state(h, other)
    desired = h.c["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[env["asg"]])[
        "AutoScalingGroups"
    ][0]["DesiredCapacity"]
    event = finding(target, "AwsEc2Instance", fid="f-ec2")
    (arn,) = h.publish(event)
    assert h.wait(arn)["status"] == "SUCCEEDED", h.c["stepfunctions"].describe_execution(
        executionArn=arn
    )

    isolated = instance_state(h, target)
    (eni,) = isolated["groups"]
    (iso_group,) = isolated["groups"][eni]
    sg = h.c["ec2"].describe_security_groups(GroupIds=[iso_group])["SecurityGroups"][0]
    assert sg["GroupName"] == f"ramparts-isolation-{eni}"
    assert sg["IpPermissions"] == [] and sg["IpPermissionsEgress"] == []
    assert isolated["termination"] is True
    assert isolated["asg"] == []
    assert isolated["tags"]["ramparts:contained"] == "f-ec2"
    assert REVOKE in h.c["iam"].list_role_policies(RoleName=env["role"])["PolicyNames"]
    snaps = h.c["ec2"].describe_snapshots(
        Filters=[{"Name": "tag:ramparts:finding", "Values": ["f-ec2"]}]
    )["Snapshots"]
    assert len(snaps) >= 1
    items = h.items("f-ec2")
    acts = {k.split("#", 2)[2]: v for k, v in items.items() if k.startswith("action#isolate-ec2#")}
    assert set(acts) == {f"isolate#{eni}", "termination-protection", "detach-asg", "revoke", "tag"}
    assert json.loads(acts[f"isolate#{eni}"]["before"]) == before["groups"][eni]
    assert json.loads(acts["detach-asg"]["before"]) == env["asg"]
    assert json.loads(acts["termination-protection"]["before"]) is False
    evidence = json.loads(items["evidence#isolate-ec2"]["evidence"])
    assert evidence["instance"]["InstanceId"] == target
    assert {s["snapshot"] for s in evidence["snapshots"]} == {s["SnapshotId"] for s in snaps}
    assert instance_state(h, other) == before_other  # the other instance was not touched

    # twice: nothing changes
    snapshot = h.items("f-ec2")
    assert h.wait(h.publish(event)[0])["status"] == "SUCCEEDED"
    assert instance_state(h, target) == isolated
    assert h.items("f-ec2") == snapshot

    assert h.run("release-ec2", event)["status"] == "SUCCEEDED"
    released = instance_state(h, target)
    assert released == before
    assert (
        h.c["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[env["asg"]])[
            "AutoScalingGroups"
        ][0]["DesiredCapacity"]
        == desired
    )
    assert not h.c["ec2"].describe_security_groups(
        Filters=[{"Name": "group-id", "Values": [iso_group]}]
    )["SecurityGroups"]
    assert REVOKE in h.c["iam"].list_role_policies(RoleName=env["role"])["PolicyNames"]
    assert h.items("f-ec2")["response#isolate-ec2"]["status"] == "released"
    assert instance_state(h, other) == before_other


def test_ecs_stop_task(h):
    ecs, iam = h.c["ecs"], h.c["iam"]
    iam.create_role(
        RoleName="task-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="api",
        taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/task-role",
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {
                "name": "api",
                "image": "example/api:1.2",
                "essential": True,
                "memory": 256,
                "cpu": 128,
            }
        ],
    )
    ec2 = h.c["ec2"]
    host = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    ecs.register_container_instance(
        cluster="prod",
        instanceIdentityDocument=json.dumps(
            {"instanceId": host["InstanceId"], "region": REGION, "accountId": ACCOUNT}
        ),
    )
    tasks = ecs.run_task(cluster="prod", taskDefinition="api", launchType="EC2", count=2)["tasks"]
    target, other = tasks[0]["taskArn"], tasks[1]["taskArn"]
    event = finding(target, "AwsEcsTask", fid="f-ecs")
    (arn,) = h.publish(event)
    assert h.wait(arn)["status"] == "SUCCEEDED", h.c["stepfunctions"].describe_execution(
        executionArn=arn
    )
    got = {
        t["taskArn"]: t for t in ecs.describe_tasks(cluster="prod", tasks=[target, other])["tasks"]
    }
    assert got[target]["desiredStatus"] == "STOPPED" or got[target]["lastStatus"] == "STOPPED"
    assert "f-ecs" in got[target].get("stoppedReason", "")
    assert got[other]["desiredStatus"] == "RUNNING"
    assert REVOKE in iam.list_role_policies(RoleName="task-role")["PolicyNames"]
    items = h.items("f-ecs")
    assert {k for k in items if k.startswith("action#")} == {
        "action#stop-ecs-task#revoke",
        "action#stop-ecs-task#stop",
    }
    bucket = h.refs[next(k for k in h.refs if k.startswith("Evidence"))]
    keys = {o["Key"] for o in h.c["s3"].list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {
        "evidence/f-ecs/stop-ecs-task/task.json",
        "evidence/f-ecs/stop-ecs-task/task-definition.json",
    }
    taskdef = json.loads(
        h.c["s3"]
        .get_object(Bucket=bucket, Key="evidence/f-ecs/stop-ecs-task/task-definition.json")["Body"]
        .read()
    )
    assert taskdef["containerDefinitions"][0]["image"] == "example/api:1.2"
    assert items["response#stop-ecs-task"]["status"] == "applied"


def test_isolate_dry_run_and_exempt(h):
    h.set_config(modes={"isolate-ec2": "dry-run"})
    env = make_instance(h, "dry")
    target, exempt = env["ids"]
    h.c["ec2"].create_tags(Resources=[exempt], Tags=[{"Key": "ramparts:exempt", "Value": "1"}])
    before = {i: instance_state(h, i) for i in env["ids"]}
    assert (
        h.wait(h.publish(finding(target, "AwsEc2Instance", fid="f-dry-ec2"))[0])["status"]
        == "SUCCEEDED"
    )
    h.set_config(modes={"isolate-ec2": "automatic"})
    assert (
        h.wait(h.publish(finding(exempt, "AwsEc2Instance", fid="f-ex-ec2"))[0])["status"]
        == "SUCCEEDED"
    )
    assert {i: instance_state(h, i) for i in env["ids"]} == before
    assert not h.c["ec2"].describe_snapshots(OwnerIds=["self"])["Snapshots"] or not [
        s
        for s in h.c["ec2"].describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if any(t["Key"] == "ramparts:finding" for t in s.get("Tags", []))
    ]
    plan = {v["action"]: v for k, v in h.items("f-dry-ec2").items() if k.startswith("plan#")}
    assert set(plan) >= {"termination-protection", "detach-asg", "revoke", "tag"}
    assert any(a.startswith("isolate#eni-") for a in plan)
    assert all(v["status"] == "would-do" for v in plan.values())
    assert h.items("f-dry-ec2")["response#isolate-ec2"]["status"] == "dry-run"
    assert h.items("f-ex-ec2")["response#isolate-ec2"]["status"] == "skipped"
