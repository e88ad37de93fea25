"""The vulnerability scan end to end against moto: functions, layers, roles, Inspector, bus."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from functions.store import DynamoSeenStore
from functions.vulnscan import AdvisoryCache, ScanError, stable_uid
from tests.ocsf import validate_ocsf
from tests.vulnscan.conftest import (
    ACCOUNT,
    BUCKET,
    MEMBER,
    REGION,
    Harness,
    dist,
    inspector_finding,
    zip_bytes,
)

LOGS = {
    "Effect": "Allow",
    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": "*",
}


def arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{REGION}:{account}:function:{name}"


ORDERS_CODE = {
    "app.py": "import urllib3\n",
    **dist("urllib3", "1.26.5", "urllib3"),
    **dist("requests", "2.31.0", "requests"),
    **dist("PyYAML", "5.3.1", "yaml"),
}
DEPS_LAYER = {
    **dist("requests", "2.30.0", "requests", root="python/"),
    **dist("aiohttp", "3.9.1", "aiohttp", root="python/lib/python3.12/site-packages/"),
}


def create(h: Harness, name: str, role: str, files: dict[str, Any], **kw: Any) -> None:
    lam = h.client("lambda")
    body = zip_bytes(files)
    lam.create_function(FunctionName=name, Role=role, Code={"ZipFile": body}, Timeout=30, **kw)
    h.register_code(name, body)


def seen_packages(h: Harness, function_arn: str, imported: list[str]) -> None:
    """What the sensor reports, written by the ingest's own store."""
    signal = {
        "kind": "sensor.packages",
        "source": "layer",
        "workload": f"lambda:{function_arn}",
        "function": function_arn.rsplit(":", 1)[-1],
        "account": ACCOUNT,
        "region": REGION,
        "time": 1_796_417_000_000,
        "update": False,
        "truncated": False,
        "packages": [
            {"name": n, "version": "?", "path": "/var/task", "imported": True} for n in imported
        ],
    }
    DynamoSeenStore("ramparts-baseline", client=h.client("dynamodb")).observe(
        SimpleNamespace(events=[], signals=[signal])
    )


@pytest.fixture
def world(harness: Harness) -> Harness:
    h = harness
    h.store_database()
    lam = h.client("lambda")
    writer = h.role(
        "orders-role",
        [LOGS, {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::orders/*"}],
    )
    admin = h.role(
        "admin-role", [{"Effect": "Allow", "Action": "*", "Resource": "*"}], managed=True
    )
    reader = h.role(
        "web-role",
        [
            LOGS,
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"], "Resource": "*"},
        ],
    )
    layer = lam.publish_layer_version(
        LayerName="deps",
        Content={"ZipFile": zip_bytes(DEPS_LAYER)},
        CompatibleRuntimes=["python3.12"],
    )["LayerVersionArn"]
    h.register_layer(layer, zip_bytes(DEPS_LAYER))
    create(h, "orders", writer, ORDERS_CODE, Runtime="python3.12", Handler="app.h", Layers=[layer])
    lam.create_function_url_config(FunctionName="orders", AuthType="NONE")
    seen_packages(h, arn("orders"), ["urllib3", "requests"])
    create(
        h,
        "admin-tool",
        admin,
        {"tool.py": "", **dist("cryptography", "41.0.5", "cryptography")},
        Runtime="python3.12",
        Handler="tool.h",
    )
    create(h, "web-node", reader, {"index.js": ""}, Runtime="nodejs20.x", Handler="index.h")
    lam.add_permission(
        FunctionName="web-node",
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/*",
    )
    lam.create_function(
        FunctionName="image-fn",
        Role=reader,
        PackageType="Image",
        Code={"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app:1"},
    )
    h.inspector.findings = [
        # the same flaw OSV's PYSEC-2023-254 describes (alias CVE-2023-49083)
        inspector_finding(
            1,
            arn("admin-tool"),
            "CVE-2023-49083",
            "cryptography",
            "41.0.5",
            "PYTHONPKG",
            7.5,
            "HIGH",
            "41.0.6",
        ),
        # one the OSV copy here does not have: joins the same package's finding
        inspector_finding(
            2,
            arn("admin-tool"),
            "CVE-2024-26130",
            "cryptography",
            "41.0.5",
            "PIP",
            7.5,
            "HIGH",
            "42.0.4",
        ),
        # an npm package: Inspector only
        inspector_finding(
            3,
            arn("web-node"),
            "GHSA-pxg6-pf52-xh8x",
            "cookie",
            "0.6.0",
            "NODEPKG",
            3.7,
            "LOW",
            "0.7.0",
        ),
        # another function whose name starts the same: must not be joined
        inspector_finding(
            4,
            arn("web-node-2"),
            "CVE-2024-0001",
            "cookie",
            "0.6.0",
            "NODEPKG",
            9.8,
            "CRITICAL",
            "0.7.0",
        ),
    ]
    return h


def by_package(findings: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for f in findings:
        pkg = f["unmapped"]["ramparts"]["package"]
        out[(f["resources"][0]["name"], pkg["name"])] = f
    return out


def test_first_scan_finds_prioritises_joins_and_publishes(world: Harness) -> None:
    report = world.scanner().run()
    assert report.errors == []
    assert (report.functions, report.scanned) == (4, 2)
    assert report.not_scanned == {
        arn("image-fn"): "container image: not scanned (Inspector scans images)",
        arn("web-node"): "runtime nodejs20.x: only Python packages are inventoried",
    }
    found = by_package(report.findings)
    summary = {
        k: (
            f["severity_id"],
            f["unmapped"]["ramparts"]["prioritisation"].get("score"),
            f["unmapped"]["ramparts"]["sources"],
            sorted((v.get("cve") or v.get("advisory"))["uid"] for v in f["vulnerabilities"]),
        )
        for k, f in found.items()
    }
    assert summary == {
        ("orders", "urllib3"): (5, 10.0, ["osv"], ["CVE-2023-43804"]),
        ("orders", "PyYAML"): (0, None, ["osv"], ["CVE-2020-14343"]),
        ("orders", "requests"): (4, 8.1, ["osv"], ["CVE-2023-32681", "CVE-2023-32681"]),
        ("orders", "aiohttp"): (3, 6.0, ["osv"], ["CVE-2024-23334"]),
        ("admin-tool", "cryptography"): (
            4,
            8.0,
            ["osv", "inspector"],
            ["CVE-2023-49083", "CVE-2024-26130"],
        ),
        ("web-node", "cookie"): (3, 4.7, ["inspector"], ["GHSA-pxg6-pf52-xh8x"]),
    }
    # the explanations name the inputs and their evidence
    assert found[("orders", "urllib3")]["finding_info"]["desc"] == (
        "Score 8.1 from the advisories, 10.0 for this function: imported at run time (+0.5); "
        "reachable from the internet (+1.0); execution role can write (+0.5). "
        "Reachable: function URL with AuthType NONE. Role: orders-role-inline (inline) allows s3:PutObject."
    )
    assert found[("orders", "aiohttp")]["unmapped"]["ramparts"]["prioritisation"]["reasons"] == [
        "installed but not imported at run time (-3.0)",
        "reachable from the internet (+1.0)",
        "execution role can write (+0.5)",
    ]
    assert found[("orders", "aiohttp")]["unmapped"]["ramparts"]["package"]["locations"] == [
        "/opt/python/lib/python3.12/site-packages/aiohttp-3.9.1.dist-info"
    ]
    assert found[("orders", "requests")]["unmapped"]["ramparts"]["package"]["layers"] == [
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:deps:1"
    ]
    crypto = found[("admin-tool", "cryptography")]
    assert crypto["finding_info"]["desc"] == (
        "Score 7.5 from the advisories, 8.0 for this function: not reachable from the internet "
        "(-1.0); execution role can admin (+1.5). Reachable: no public function URL; no "
        "resource policy for *, API Gateway or ALB. Role: admin-role-policy allows * on *."
    )
    assert crypto["unmapped"]["ramparts"]["context"]["imported"] == {"value": None, "why": []}
    assert [
        (i["vulnerability_id"], i["osv_ids"]) for i in crypto["unmapped"]["ramparts"]["inspector"]
    ] == [
        ("CVE-2023-49083", ["PYSEC-2023-254"]),
        ("CVE-2024-26130", []),
    ]
    assert [v["vendor_name"] for v in crypto["vulnerabilities"]] == ["OSV", "Amazon Inspector"]
    cookie = found[("web-node", "cookie")]
    assert cookie["finding_info"]["uid"] == stable_uid(arn("web-node"), "nodepkg:cookie", "0.6.0")
    assert cookie["unmapped"]["ramparts"]["prioritisation"]["reasons"] == [
        "reachable from the internet (+1.0)",
        "execution role can read (+0.0)",
    ]
    assert "API Gateway may" not in cookie["finding_info"]["desc"]
    assert (
        "resource policy lets API Gateway invoke it (statement apigw)"
        in cookie["finding_info"]["desc"]
    )
    # Inspector was asked for each function, filtered on its ARN
    ids = [c["filterCriteria"]["resourceId"] for c in world.inspector.calls]
    assert [
        {"comparison": "EQUALS", "value": arn("orders")},
        {"comparison": "PREFIX", "value": arn("orders") + ":"},
    ] in ids
    # valid OCSF; stored once per finding; published once per finding
    for f in report.findings:
        assert validate_ocsf(f) == [], f["finding_info"]["title"]
        assert f["activity_id"] == 1 and f["class_uid"] == 2002
    items = world.items()
    assert set(items) == {f"vuln#{f['finding_info']['uid']}" for f in report.findings}
    assert all(i["status"] == "open" and "publish_pending" not in i for i in items.values())
    events = world.published()
    assert sorted(e["detail"]["finding_info"]["uid"] for e in events) == sorted(
        f["finding_info"]["uid"] for f in report.findings
    )
    assert {(e["detail-type"], e["source"]) for e in events} == {
        ("Ramparts Vulnerability Finding", "ramparts")
    }
    assert {e["resources"][0] for e in events} == {
        arn("orders"),
        arn("admin-tool"),
        arn("web-node"),
    }
    # the layer was downloaded once although listed by one function (and cached per run)
    assert sum("layers.invalid" in u for u in world.fetched) == 1


def test_second_run_publishes_nothing(world: Harness) -> None:
    scanner = world.scanner()
    first = scanner.run()
    world.published()
    world.now += 3600
    second = scanner.run()
    assert (second.created, second.updated, second.closed, second.published) == (0, 0, 0, 0)
    assert second.unchanged == len(first.findings) == 6
    assert world.published() == []
    # the stored finding says when it was seen last
    item = world.items()[f"vuln#{stable_uid(arn('orders'), 'urllib3', '1.26.5')}"]
    assert (
        item["last_seen_ms"] == int(world.now * 1000)
        and item["first_seen_ms"] < item["last_seen_ms"]
    )
    assert scanner.advisories.loads == 1  # the database was loaded once for both runs


def test_upgrade_closes_and_severity_change_updates(world: Harness) -> None:
    world.scanner().run()
    world.published()
    world.now += 3600
    lam = world.client("lambda")
    upgraded = {**ORDERS_CODE, **dist("urllib3", "1.26.17", "urllib3")}
    for k in [k for k in upgraded if k.startswith("urllib3-1.26.5")]:
        del upgraded[k]
    body = zip_bytes(upgraded)
    lam.update_function_code(FunctionName="orders", ZipFile=body)
    world.register_code("orders", body)
    lam.delete_function_url_config(FunctionName="orders")  # no longer internet-facing
    report = world.scanner().run()
    assert report.errors == []
    events = world.published()
    got = sorted(
        (
            e["detail"]["unmapped"]["ramparts"]["package"]["name"],
            e["detail"]["activity_id"],
            e["detail"]["severity_id"],
            e["detail"].get("status_detail"),
        )
        for e in events
    )
    assert got == [
        ("requests", 2, 3, None),  # 6.1 + 0.5 - 1.0 + 0.5 = 6.1: High -> Medium
        ("urllib3", 3, 5, "urllib3 upgraded from 1.26.5 to 1.26.17"),
    ]  # aiohttp 6.0 -> 4.0 stays Medium: not published
    closed = next(e["detail"] for e in events if e["detail"]["activity_id"] == 3)
    assert (closed["status_id"], closed["status"]) == (4, "Resolved")
    assert validate_ocsf(closed) == []
    item = world.items()[f"vuln#{stable_uid(arn('orders'), 'urllib3', '1.26.5')}"]
    assert item["status"] == "closed" and item["expires_at"] > world.now
    assert (report.closed, report.updated) == (1, 1)
    # nothing more on the next run
    world.now += 3600
    again = world.scanner().run()
    assert (again.published, again.closed) == (0, 0)


def test_inspector_only_and_deleted_function_findings_close(world: Harness) -> None:
    world.scanner().run()
    world.published()
    world.inspector.findings = [f for f in world.inspector.findings if "cookie" not in f["title"]]
    world.client("lambda").delete_function(FunctionName="admin-tool")
    report = world.scanner().run()
    reasons = sorted(e["detail"]["status_detail"] for e in world.published())
    assert reasons == [
        "Amazon Inspector no longer reports cookie 0.6.0",
        "the function no longer exists",
    ]
    assert report.closed == 2


def test_failed_sources_never_close_findings(world: Harness) -> None:
    world.scanner().run()
    world.published()
    world.server.files.clear()  # code and layers can no longer be downloaded
    from botocore.exceptions import ClientError

    world.inspector.fail = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListFindings"
    )
    report = world.scanner().run()
    assert any("code not scanned" in e for e in report.errors)
    assert any("Inspector findings unknown" in p for p in report.problems)
    assert report.closed == 0 and world.published() == []
    assert all(i["status"] == "open" for i in world.items().values())


def test_publication_is_retried_until_accepted(world: Harness) -> None:
    scanner = world.scanner()
    real = scanner.publisher.client

    class Down:
        def put_events(self, **kw: Any) -> dict[str, Any]:
            return {
                "FailedEntryCount": len(kw["Entries"]),
                "Entries": [{"ErrorCode": "InternalFailure"} for _ in kw["Entries"]],
            }

    scanner.publisher.client = Down()
    scanner.publisher.sleep = lambda s: None
    report = scanner.run()
    assert report.published == 0 and any("not accepted" in e for e in report.errors)
    assert any(i.get("publish_pending") for i in world.items().values())
    scanner.publisher.client = real
    world.now += 60
    report = scanner.run()
    assert report.errors == [] and report.created == 0
    assert len(world.published()) == len([i for i in world.items().values()])


def test_member_account_through_the_responder_role(harness: Harness) -> None:
    h = harness
    h.store_database()
    member = h.member_session(MEMBER)
    role = member.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    body = zip_bytes(dist("cryptography", "41.0.5", "cryptography"))
    member.client("lambda").create_function(
        FunctionName="shop", Runtime="python3.12", Role=role, Handler="a.h", Code={"ZipFile": body}
    )
    h.register_code("shop", body, account=MEMBER)
    report = h.scanner(accounts=(ACCOUNT, MEMBER)).run()
    assert report.errors == []
    (f,) = report.findings
    assert f["resources"][0]["uid"] == arn("shop", MEMBER)
    assert f["cloud"]["account"]["uid"] == MEMBER
    assert f["unmapped"]["ramparts"]["prioritisation"]["reasons"] == [
        "not reachable from the internet (-1.0)",
        "execution role can none (-0.5)",
    ]
    assert f["severity_id"] == 3  # 7.5 - 1.0 - 0.5 = 6.0


def test_no_database_is_a_clear_error(harness: Harness) -> None:
    with pytest.raises(ScanError, match="the advisory updater has not stored one yet"):
        harness.scanner().run()


def test_database_reloaded_when_the_manifest_changes(world: Harness) -> None:
    cache = AdvisoryCache(world.client("s3"), BUCKET)
    db1, _ = cache.database()
    assert cache.database()[0] is db1
    s3 = world.client("s3")
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="advisories/pypi/manifest.json")["Body"].read()
    )
    s3.put_object(
        Bucket=BUCKET,
        Key="advisories/pypi/manifest.json",
        Body=json.dumps({**manifest, "sha256": "0" * 64}),
    )
    with pytest.raises(ScanError, match="is not the manifest's"):
        cache.database()
