"""The scheduled inventory end to end against moto: a fleet of 120+ functions, instances and
tasks in two accounts and two regions; snapshots, summaries, findings, errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.inventory import Lister, Settings, finding_id, list_functions, run
from functions.store import deserialize
from tests.inventory.conftest import BUCKET, CORE, HOUR, MEMBER, NOW, REGIONS, Aws
from tests.ocsf import validate_ocsf

RECENT = NOW - 2 * HOUR
OLD = NOW - 72 * HOUR

# name prefix -> (how many per region, expected problems)
FLEET: dict[str, tuple[int, list[str]]] = {
    "ok": (20, []),
    "redirect": (8, []),
    "oldlayer": (6, ["layer-version-not-current"]),
    "nolayer": (8, ["layer-not-attached", "wrapper-not-set"]),
    "nowrapper": (6, ["wrapper-not-set"]),
    "node": (6, ["runtime-not-supported"]),
    "silent": (2, ["sensor-never-reported"]),
    "stopped": (2, ["sensor-stopped-reporting"]),
    "off": (1, ["sensor-mode-off"]),
    "badredirect": (1, ["wrapper-not-set"]),
}


def build_fleet(aws: Aws) -> dict[str, list[str]]:
    """120 functions in the core account (60 per region); the expected problems by key."""
    expected: dict[str, list[str]] = {}
    c = aws.core
    for region in REGIONS:
        for prefix, (n, problems) in FLEET.items():
            for i in range(n):
                name = f"{prefix}-{i:02d}"
                if prefix in ("ok", "silent", "stopped"):
                    arn = c.protected(name, region)
                elif prefix == "redirect":
                    arn = c.function(
                        name,
                        region,
                        layer_version=2,
                        handler="ramparts.handler",
                        env={"RAMPARTS_HANDLER": "app.handler"},
                    )
                elif prefix == "badredirect":
                    arn = c.function(name, region, layer_version=2, handler="ramparts.handler")
                elif prefix == "oldlayer":
                    arn = c.protected(name, region, layer_version=1)
                elif prefix == "nolayer":
                    arn = c.function(name, region)
                elif prefix == "nowrapper":
                    arn = c.function(name, region, layer_version=2)
                elif prefix == "node":
                    arn = c.function(name, region, runtime="nodejs20.x", handler="index.handler")
                else:  # off
                    arn = c.protected(name, region, env={"RAMPARTS_MODE": "off"})
                key = f"lambda:{arn}"
                expected[key] = problems
                if prefix in ("ok", "redirect", "oldlayer"):
                    aws.seen(key, "layer", RECENT, mode="enforce", sensor_version="0.1.0")
                elif prefix == "stopped":
                    aws.seen(key, "layer", OLD, mode="monitor")
    return expected


def build_hosts(aws: Aws) -> dict[str, tuple[str, list[str]]]:
    """Instances and tasks; the expected (type, problems) by key."""
    expected: dict[str, tuple[str, list[str]]] = {}
    region = REGIONS[0]
    plain = aws.core.instances(region, 7, {"Name": "web"})
    for i, inst in enumerate(plain):
        key = f"ec2:{inst['InstanceId']}"
        if i < 4:
            aws.seen(key, "falco", RECENT)
            expected[key] = ("ec2", [])
        elif i < 6:
            aws.seen(key, "osquery", OLD)
            aws.seen(key, "inspector", RECENT)  # scans are not a runtime sensor
            expected[key] = ("ec2", ["sensor-stopped-reporting"])
        else:
            expected[key] = ("ec2", ["no-sensor"])
    nodes = aws.core.instances(region, 3, {"eks:cluster-name": "prod"})
    for i, inst in enumerate(nodes):
        key = f"ec2:{inst['InstanceId']}"
        if i < 2:  # Tetragon reports nodes by their name: the private DNS name
            aws.seen(f"host:{inst['PrivateDnsName']}", "tetragon", RECENT)
            expected[key] = ("eks-node", [])
        else:
            expected[key] = ("eks-node", ["no-sensor"])
    member_nodes = aws.member.instances(REGIONS[1], 2, {"kubernetes.io/cluster/batch": "owned"})
    aws.seen(f"ec2:{member_nodes[0]['InstanceId']}", "guardduty", RECENT)
    expected[f"ec2:{member_nodes[0]['InstanceId']}"] = ("eks-node", [])
    expected[f"ec2:{member_nodes[1]['InstanceId']}"] = ("eks-node", ["no-sensor"])
    tasks = aws.core.fargate_tasks(region, "web", 3)
    aws.seen(f"ecs-task:{tasks[0]}", "falco", RECENT)
    expected[f"ecs-task:{tasks[0]}"] = ("ecs-task", [])
    for t in tasks[1:]:
        expected[f"ecs-task:{t}"] = ("ecs-task", ["no-sensor"])
    return expected


def member_functions(aws: Aws) -> dict[str, list[str]]:
    m = aws.member
    ok = m.protected("billing", REGIONS[0])
    aws.seen(f"lambda:{ok}", "layer", RECENT)
    bare = m.function("reports", REGIONS[1])
    return {f"lambda:{ok}": [], f"lambda:{bare}": ["layer-not-attached", "wrapper-not-set"]}


def env_with_current(aws: Aws) -> dict[str, str]:
    current = [aws.core.layers[r][2] for r in REGIONS]
    return {**aws.env, "CURRENT_LAYERS": ",".join(current)}


def finding_items(aws: Aws) -> dict[str, dict[str, Any]]:
    items = aws.ddb.scan(TableName="ramparts-findings")["Items"]
    return {
        i["pk"]["S"].removeprefix("finding#"): deserialize(i)
        for i in items
        if i["sk"]["S"] == "finding"
    }


@pytest.fixture
def fleet(aws: Aws) -> tuple[dict[str, list[str]], dict[str, tuple[str, list[str]]]]:
    functions = build_fleet(aws)
    functions.update(member_functions(aws))
    return functions, build_hosts(aws)


def test_every_workload_and_every_reason(aws: Aws, fleet: Any) -> None:
    functions, hosts = fleet
    assert len([k for k in functions if f":{CORE}:" in k]) == 120
    result = run(env_with_current(aws), session=aws.session, now_ms=NOW, page_size=4)
    assert result["errors"] == []
    obj = aws.s3.get_object(Bucket=BUCKET, Key=result["s3_key"])
    snapshot = json.loads(obj["Body"].read())
    assert snapshot["accounts"] == [CORE, MEMBER] and snapshot["regions"] == list(REGIONS)
    got = {w["key"]: w for w in snapshot["workloads"]}
    assert {k: got[k]["problems"] for k in functions} == functions
    assert {k: (got[k]["type"], got[k]["problems"]) for k in hosts} == hosts
    assert set(got) == set(functions) | set(hosts)  # nothing else, nothing missing
    for key, w in got.items():
        assert w["covered"] is (not w["problems"]), key
        assert set(w["details"]["explain"]) == set(w["problems"])
    # sensors and last seen
    ok = next(w for w in got.values() if w["name"] == "ok-00")
    assert ok["sensors"] == ["layer"] and ok["last_seen_ms"] == RECENT
    assert ok["details"]["reported_mode"] == "enforce" and ok["runtime"] == "python3.12"
    stopped = next(w for w in got.values() if w["name"] == "stopped-00")
    assert stopped["sensors"] == [] and stopped["last_seen_ms"] == OLD
    node = next(w for w in got.values() if w["name"] == "node-00")
    assert "nodejs20.x" in node["details"]["explain"]["runtime-not-supported"]
    old = next(w for w in got.values() if w["name"] == "oldlayer-00")
    assert ":1 is attached" not in old["details"]["explain"]["layer-version-not-current"]
    assert "version 1 is attached" in old["details"]["explain"]["layer-version-not-current"]
    eks = [w for w in got.values() if w["type"] == "eks-node" and not w["problems"]]
    assert {tuple(w["sensors"]) for w in eks} == {("tetragon",), ("guardduty",)}
    osq = [w for w in got.values() if w["problems"] == ["sensor-stopped-reporting"]]
    assert any(w["type"] == "ec2" and w["sensors"] == [] for w in osq)
    # summary, in the snapshot and in the baseline table
    s = snapshot["summary"]
    covered_fn = sum(1 for p in functions.values() if not p)
    assert s["by_type"]["lambda"] == {"total": len(functions), "covered": covered_fn}
    assert s["by_type"]["eks-node"] == {"total": 5, "covered": 3}
    assert s["by_type"]["ec2"] == {"total": 7, "covered": 4}
    assert s["by_type"]["ecs-task"] == {"total": 3, "covered": 1}
    assert s["total"] == len(got) and s["covered"] == sum(1 for w in got.values() if w["covered"])
    iso = dt.datetime.fromtimestamp(NOW / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result["s3_key"] == f"coverage/{iso[:4]}/{iso[5:7]}/{iso[8:10]}/{iso}.json"
    item = deserialize(
        aws.ddb.get_item(
            TableName="ramparts-baseline", Key={"pk": {"S": "coverage"}, "sk": {"S": iso}}
        )["Item"]
    )
    assert item["summary"] == s and item["s3_key"] == result["s3_key"]


def test_findings_created_once_then_resolved_and_published_on_change(aws: Aws, fleet: Any) -> None:
    functions, hosts = fleet
    uncovered = {k for k, p in functions.items() if p} | {k for k, (_, p) in hosts.items() if p}
    env = env_with_current(aws)
    first = run(env, session=aws.session, now_ms=NOW)
    assert first["findings"] == {"created": len(uncovered), "updated": 0, "resolved": 0}
    events = aws.published()
    assert len(events) == len(uncovered)
    by_uid = {e["detail"]["finding_info"]["uid"]: e["detail"] for e in events}
    assert set(by_uid) == {finding_id(k) for k in uncovered}
    for detail in list(by_uid.values())[:25]:
        assert validate_ocsf(detail) == []
    nolayer = next(k for k in uncovered if ":function:nolayer-00" in k)
    d = by_uid[finding_id(nolayer)]
    assert d["finding_info"]["analytic"]["uid"] == "coverage.uncovered-workload"
    assert d["severity_id"] == 3 and d["status_id"] == 1
    assert d["resources"][0]["uid"] == nolayer.removeprefix("lambda:")
    assert d["unmapped"]["ramparts"]["coverage"]["problems"] == [
        "layer-not-attached",
        "wrapper-not-set",
    ]
    node_key = next(k for k in uncovered if ":function:node-00" in k)
    assert by_uid[finding_id(node_key)]["severity_id"] == 2  # low: not coverable by the layer

    # the same state again: nothing new stored, nothing published
    second = run(env, session=aws.session, now_ms=NOW + HOUR)
    assert second["findings"] == {"created": 0, "updated": 0, "resolved": 0}
    assert aws.published() == []
    items = finding_items(aws)
    assert len(items) == len(uncovered)
    assert all("publish_change" not in i for i in items.values())

    # fix one function (the sensor reports now), break another's problems
    aws.seen(nolayer, "layer", NOW + HOUR)
    aws.core.client("lambda", nolayer.split(":")[4]).update_function_configuration(
        FunctionName=nolayer.removeprefix("lambda:"),
        Layers=[aws.core.layers[nolayer.split(":")[4]][2]],
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper"}},
    )
    third = run(env, session=aws.session, now_ms=NOW + 2 * HOUR)
    assert third["findings"] == {"created": 0, "updated": 0, "resolved": 1}
    events = aws.published()
    assert len(events) == 1
    closed = events[0]["detail"]
    assert closed["finding_info"]["uid"] == finding_id(nolayer)
    assert (closed["activity_id"], closed["status_id"], closed["status"]) == (3, 4, "Resolved")
    assert validate_ocsf(closed) == []
    assert finding_items(aws)[finding_id(nolayer)]["status"] == "resolved"

    # it breaks again: the same finding reopens (updated, not a duplicate)
    aws.core.client("lambda", nolayer.split(":")[4]).update_function_configuration(
        FunctionName=nolayer.removeprefix("lambda:"), Environment={"Variables": {}}
    )
    fourth = run(env, session=aws.session, now_ms=NOW + 3 * HOUR)
    assert fourth["findings"] == {"created": 0, "updated": 1, "resolved": 0}
    reopened = aws.published()[0]["detail"]
    assert reopened["status_id"] == 1 and reopened["activity_id"] == 2
    item = finding_items(aws)[finding_id(nolayer)]
    assert item["status"] == "new" and item["count"] == 2
    assert item["coverage_problems"] == ["wrapper-not-set"]
    assert len(finding_items(aws)) == len(uncovered)


def test_a_deleted_workload_resolves_its_finding(aws: Aws) -> None:
    arn = aws.core.function("gone", REGIONS[0])
    env = {**aws.env, "ACCOUNTS": CORE, "REGIONS": REGIONS[0]}
    run(env, session=aws.session, now_ms=NOW)
    assert len(aws.published()) == 1
    aws.core.client("lambda", REGIONS[0]).delete_function(FunctionName="gone")
    result = run(env, session=aws.session, now_ms=NOW + HOUR)
    assert result["findings"]["resolved"] == 1
    assert finding_items(aws)[finding_id(f"lambda:{arn}")]["status"] == "resolved"
    assert aws.published()[0]["detail"]["status"] == "Resolved"


def _deny(name: str, when: Any) -> Any:
    def handler(**kwargs: Any) -> None:
        if when(kwargs):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, name)

    return handler


def test_unreachable_account_and_region_are_errors_not_empty(aws: Aws) -> None:
    arn = aws.core.function("bare", REGIONS[1])
    aws.member.function("m", REGIONS[0])
    env = {**aws.env}
    # the member role cannot be assumed; EC2 in the second region denies
    aws.session.events.register(
        "provide-client-params.sts.AssumeRole",
        _deny("AssumeRole", lambda kw: MEMBER in kw["params"]["RoleArn"]),
    )
    aws.session.events.register(
        "before-call.ec2.DescribeInstances",
        _deny("DescribeInstances", lambda kw: kw["request_signer"].region_name == REGIONS[1]),
    )
    run({**env, "REGIONS": REGIONS[1], "ACCOUNTS": CORE}, session=aws.session, now_ms=NOW)
    aws.published()
    aws.core.client("lambda", REGIONS[1]).delete_function(FunctionName="bare")
    result = run(env, session=aws.session, now_ms=NOW + HOUR)
    errors = {(e["account"], e["region"], e["service"]) for e in result["errors"]}
    assert errors == {
        (MEMBER, REGIONS[0], "sts"),
        (MEMBER, REGIONS[1], "sts"),
        (CORE, REGIONS[1], "ec2"),
    }
    assert all("AccessDenied" in e["error"] for e in result["errors"])
    # the function deleted where EC2 failed: listing there is incomplete, nothing is closed
    assert finding_items(aws)[finding_id(f"lambda:{arn}")]["status"] == "new"
    assert result["findings"]["resolved"] == 0
    item = aws.ddb.query(
        TableName="ramparts-baseline",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "coverage"}},
    )["Items"][-1]
    assert deserialize(item)["errors"] == 3


def test_failed_publication_is_retried_on_the_next_run(aws: Aws) -> None:
    aws.core.function("bare", REGIONS[0])
    env = {**aws.env, "ACCOUNTS": CORE, "REGIONS": REGIONS[0]}

    class Down:
        def publish(self, items: Any) -> None:
            raise RuntimeError("bus down")

    with pytest.raises(RuntimeError, match="bus down"):
        run(env, session=aws.session, now_ms=NOW, publisher=Down())
    assert aws.published() == []
    item = next(iter(finding_items(aws).values()))
    assert item["publish_change"] == "created"
    result = run(env, session=aws.session, now_ms=NOW + HOUR)
    assert result["findings"]["created"] == 0
    events = aws.published()
    assert len(events) == 1 and events[0]["detail"]["activity_id"] == 1
    assert "publish_change" not in next(iter(finding_items(aws).values()))


def test_invocations_tell_idle_from_broken(aws: Aws) -> None:
    idle = aws.core.protected("idle", REGIONS[0])
    busy = aws.core.protected("busy", REGIONS[0])
    aws.core.client("cloudwatch", REGIONS[0]).put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "FunctionName", "Value": "busy"}],
                "Value": 5,
                "Unit": "Count",
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
            }
        ],
    )
    env = {
        **aws.env,
        "ACCOUNTS": CORE,
        "REGIONS": REGIONS[0],
        "CHECK_INVOCATIONS": "true",
        "FINDINGS_TABLE": "",
    }
    result = run(env, session=aws.session, now_ms=NOW)
    snapshot = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=result["s3_key"])["Body"].read())
    got = {w["key"]: w for w in snapshot["workloads"]}
    assert got[f"lambda:{busy}"]["problems"] == ["sensor-never-reported"]
    assert got[f"lambda:{busy}"]["details"]["invocations"] == 5
    assert got[f"lambda:{idle}"]["covered"] is True
    assert got[f"lambda:{idle}"]["details"]["idle"] is True
    assert "findings" not in result


class _Pages:
    """A Lambda client serving ListFunctions in pages of two, as AWS does with NextMarker."""

    def __init__(self, n: int) -> None:
        self.fns = [{"FunctionName": f"f{i}", "FunctionArn": f"arn:f{i}"} for i in range(n)]
        self.calls: list[dict[str, Any]] = []

    def list_functions(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        start = int(kw.get("Marker", "0"))
        page: dict[str, Any] = {"Functions": self.fns[start : start + 2]}
        if start + 2 < len(self.fns):
            page["NextMarker"] = str(start + 2)
        return page


def test_list_functions_follows_every_page() -> None:
    client = _Pages(7)
    names = [f["FunctionName"] for f in list_functions(client)]
    assert names == [f"f{i}" for i in range(7)]
    assert client.calls == [{}, {"Marker": "2"}, {"Marker": "4"}, {"Marker": "6"}]


def test_member_role_and_external_id(aws: Aws) -> None:
    calls: list[dict[str, Any]] = []
    aws.session.events.register(
        "provide-client-params.sts.AssumeRole", lambda **kw: calls.append(kw["params"])
    )
    aws.member.function("m", REGIONS[0])
    lister = Lister(Settings(external_id="ext-123", check_invocations=False), session=aws.session)
    inv = lister.list([CORE, MEMBER], REGIONS)
    assert inv.errors == []
    assert [f.name for f in inv.functions if f.account == MEMBER] == ["m"]
    assert len(calls) == 1  # once per account, reused across regions
    assert calls[0]["RoleArn"] == f"arn:aws:iam::{MEMBER}:role/ramparts-responder"
    assert calls[0]["ExternalId"] == "ext-123"


def test_current_layer_versions_are_discovered_per_region(aws: Aws) -> None:
    """Without CURRENT_LAYERS, the current version is the latest one the core account
    publishes in the function's own region."""
    region_a, region_b = REGIONS
    old_a = aws.core.protected("old-in-a", region_a, layer_version=1)
    new_a = aws.core.protected("new-in-a", region_a, layer_version=2)
    aws.core.layer(region_b, 1)  # region b has only version 1 published: it is current there
    only_b = aws.core.protected("v1-in-b", region_b, layer_version=1)
    for arn in (old_a, new_a, only_b):
        aws.seen(f"lambda:{arn}", "layer", RECENT)
    env = {**aws.env, "ACCOUNTS": CORE}
    env.pop("CURRENT_LAYERS", None)
    result = run(env, session=aws.session, now_ms=NOW)
    snapshot = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=result["s3_key"])["Body"].read())
    problems = {w["key"]: w["problems"] for w in snapshot["workloads"]}
    assert problems[f"lambda:{old_a}"] == ["layer-version-not-current"]
    assert problems[f"lambda:{new_a}"] == []
    assert problems[f"lambda:{only_b}"] == []
    off = {**env, "DISCOVER_CURRENT_LAYERS": "false"}
    result = run(off, session=aws.session, now_ms=NOW + HOUR)
    snapshot = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=result["s3_key"])["Body"].read())
    assert {w["key"]: w["problems"] for w in snapshot["workloads"]}[f"lambda:{old_a}"] == []
