"""Harness of the vulnerability-scan tests: moto, a loopback HTTP server, built zips.

Nothing leaves the process but loopback traffic: deployment packages and the OSV database
are served by :class:`LocalServer` on 127.0.0.1. Two things moto 5.2.6 does not do are
filled in here, and only here:

* ``GetFunction`` returns a ``Code.Location`` on a made-up S3 host that cannot be fetched:
  :class:`Harness.fetch` maps each such URL (registered when the test uploads the code) to
  the loopback server and downloads it with the production :func:`download`;
* ``GetLayerVersionByArn`` is not implemented: :class:`LayerByArn` answers it from
  ``GetLayerVersion``, with a ``Content.Location`` mapped the same way;
* Inspector2 ``ListFindings`` exists in moto but only replays a queue of canned answers,
  whatever the filter: :class:`FakeInspector` checks each request against botocore's model of
  ``ListFindings`` and answers with the findings the filter selects.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from functions.osv_update import DownloadError, download
from functions.vulnscan import AccountSessions, AdvisoryCache, ScanConfig, Scanner
from tests.aws import create_table as _table
from tests.vulns.conftest import OSV_DIR, metadata

ACCOUNT = "123456789012"
MEMBER = "210987654321"
REGION = "eu-west-1"
BUCKET = "ramparts-advisories"
T0 = 1_796_417_910  # epoch seconds of the first scan


# -- a loopback HTTP server ------------------------------------------------------------------
@dataclass
class Served:
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    status: int = 200


class LocalServer:
    """Serves ``files`` (path -> Served) on 127.0.0.1; honours If-None-Match."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        files, requests = self.files, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append((self.path, dict(self.headers.items())))
                f = files.get(self.path)
                if f is None:
                    self.send_error(404)
                    return
                if f.status != 200:
                    self.send_error(f.status)
                    return
                if f.etag and self.headers.get("If-None-Match") == f.etag:
                    self.send_response(304)
                    self.send_header("ETag", f.etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(f.body)))
                if f.etag:
                    self.send_header("ETag", f.etag)
                if f.last_modified:
                    self.send_header("Last-Modified", f.last_modified)
                self.end_headers()
                self.wfile.write(f.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    s = LocalServer()
    yield s
    s.close()


# -- zips ----------------------------------------------------------------------------------------
def dist(name: str, version: str, top_level: str | None = None, root: str = "") -> dict[str, str]:
    d = f"{root}{name.replace('-', '_')}-{version}.dist-info"
    out = {f"{d}/METADATA": metadata(name, version), f"{d}/RECORD": ""}
    if top_level:
        out[f"{d}/top_level.txt"] = top_level + "\n"
    return out


def zip_bytes(members: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def osv_zip(names: list[str] | None = None) -> bytes:
    """A PyPI ``all.zip`` of the real advisories in tests/vulns/osv/."""
    files = sorted(OSV_DIR.glob("*.json"))
    return zip_bytes({p.name: p.read_bytes() for p in files if names is None or p.stem in names})


# -- Inspector ---------------------------------------------------------------------------------
_INSPECTOR_MODEL = botocore.session.get_session().get_service_model("inspector2")


def inspector_finding(  # noqa: PLR0917 (one row of test data)
    n: int,
    function_arn: str,
    vid: str,
    package: str,
    version: str,
    manager: str,
    score: float,
    severity: str,
    fixed: str,
) -> dict[str, Any]:
    """An ACTIVE package finding in the ListFindings response shape (epoch-second times)."""
    _, _, _, region, account, _, name = function_arn.split(":")[:7]
    return {
        "awsAccountId": account,
        "findingArn": f"arn:aws:inspector2:{region}:{account}:finding/{n:032x}",
        "type": "PACKAGE_VULNERABILITY",
        "severity": severity,
        "status": "ACTIVE",
        "title": f"{vid} - {package}",
        "description": f"{vid} in {package}.",
        "firstObservedAt": T0 - 3600,
        "lastObservedAt": T0 - 60,
        "updatedAt": T0 - 60,
        "inspectorScore": score,
        "fixAvailable": "YES",
        "exploitAvailable": "NO",
        "packageVulnerabilityDetails": {
            "vulnerabilityId": vid,
            "source": "NVD",
            "cvss": [
                {
                    "baseScore": score,
                    "scoringVector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N",
                    "source": "NVD",
                    "version": "3.1",
                }
            ],
            "vulnerablePackages": [
                {
                    "name": package,
                    "version": version,
                    "packageManager": manager,
                    "fixedInVersion": fixed,
                    "filePath": f"{package}/{version}",
                }
            ],
        },
        "resources": [
            {
                "id": f"{function_arn}:$LATEST",
                "type": "AWS_LAMBDA_FUNCTION",
                "partition": "aws",
                "region": region,
                "details": {"awsLambdaFunction": {"functionName": name, "version": "$LATEST"}},
            }
        ],
    }


class FakeInspector:
    """``list_findings`` over ``findings``, as the filter selects them (see the docstring)."""

    def __init__(self) -> None:
        self.findings: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.fail: Exception | None = None

    def list_findings(self, **params: Any) -> dict[str, Any]:
        shape = _INSPECTOR_MODEL.operation_model("ListFindings").input_shape
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise AssertionError(report.generate_report())
        self.calls.append(params)
        if self.fail is not None:
            raise self.fail
        criteria = params.get("filterCriteria", {})
        fields = {
            "resourceType": lambda f: f["resources"][0]["type"],
            "resourceId": lambda f: f["resources"][0]["id"],
            "findingType": lambda f: f["type"],
            "findingStatus": lambda f: f["status"],
        }
        assert set(criteria) <= set(fields), f"unexpected filter fields {set(criteria)}"

        def selected(f: dict[str, Any]) -> bool:
            for name, filters in criteria.items():
                value = fields[name](f)
                if not any(
                    (flt["comparison"] == "EQUALS" and value == flt["value"])
                    or (flt["comparison"] == "PREFIX" and value.startswith(flt["value"]))
                    for flt in filters
                ):
                    return False
            return True

        hits = [f for f in self.findings if selected(f)]
        start = int(params.get("nextToken") or 0)
        size = params.get("maxResults", 50)
        page = hits[start : start + size]
        out: dict[str, Any] = {"findings": page}
        if start + size < len(hits):
            out["nextToken"] = str(start + size)
        return out


class LayerByArn:
    """The moto Lambda client, plus ``get_layer_version_by_arn`` (not in moto 5.2.6)."""

    def __init__(self, client: Any, harness: Harness) -> None:
        self._client = client
        self._harness = harness

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_layer_version_by_arn(self, Arn: str) -> dict[str, Any]:
        layer_arn, _, version = Arn.rpartition(":")
        resp = self._client.get_layer_version(LayerName=layer_arn, VersionNumber=int(version))
        resp["Content"]["Location"] = self._harness.layer_location(Arn)
        return resp


class HarnessClients(AccountSessions):
    def __init__(self, harness: Harness, **kw: Any) -> None:
        super().__init__(ACCOUNT, session=harness.session, **kw)
        self.harness = harness

    def client(self, service: str, account: str, region: str) -> Any:
        if service == "inspector2":
            return self.harness.inspector
        c = super().client(service, account, region)
        return LayerByArn(c, self.harness) if service == "lambda" else c


# -- the harness ----------------------------------------------------------------------------------
@dataclass
class Harness:
    session: Any
    server: LocalServer
    published_url: str
    inspector: FakeInspector = field(default_factory=FakeInspector)
    locations: dict[str, str] = field(default_factory=dict)  # code URL -> loopback path
    fetched: list[str] = field(default_factory=list)
    now: float = T0

    def client(self, name: str, account: str = ACCOUNT) -> Any:
        if account == ACCOUNT:
            return self.session.client(name)
        return self.member_session(account).client(name)

    def member_session(self, account: str) -> Any:
        creds = self.session.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/ramparts-responder", RoleSessionName="test-setup"
        )["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=REGION,
        )

    # code and layers
    def serve(self, path: str, body: bytes) -> str:
        self.server.files[path] = Served(body)
        return path

    def register_code(self, function: str, body: bytes, account: str = ACCOUNT) -> None:
        lam = self.client("lambda", account)
        location = lam.get_function(FunctionName=function)["Code"]["Location"]
        digest = hashlib.sha256(body).hexdigest()[:16]
        self.locations[location] = self.serve(f"/code/{account}/{function}/{digest}.zip", body)

    def layer_location(self, arn: str) -> str:
        return f"https://layers.invalid/{arn}"

    def register_layer(self, arn: str, body: bytes) -> None:
        self.locations[self.layer_location(arn)] = self.serve(f"/layers/{arn}.zip", body)

    def fetch(self, url: str, dest: str) -> None:
        path = self.locations.get(url)
        if path is None:  # never let an unmapped URL reach the network
            raise DownloadError(f"{url}: not served by the test harness")
        self.fetched.append(url)
        download(self.server.url(path), dest, max_bytes=10_000_000, require_https=False)

    def role(self, name: str, statements: list[dict[str, Any]], *, managed: bool = False) -> str:
        iam = self.client("iam")
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(
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
            ),
        )["Role"]["Arn"]
        doc = json.dumps({"Version": "2012-10-17", "Statement": statements})
        if managed:
            policy = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=doc)
            iam.attach_role_policy(RoleName=name, PolicyArn=policy["Policy"]["Arn"])
        else:
            iam.put_role_policy(RoleName=name, PolicyName=f"{name}-inline", PolicyDocument=doc)
        return arn

    # the database
    def store_database(self, body: bytes | None = None) -> None:
        from functions.osv_update import UpdateConfig, Updater

        self.server.files["/osv/PyPI/all.zip"] = Served(body or osv_zip(), etag='"v1"')
        cfg = UpdateConfig(bucket=BUCKET, url=self.server.url("/osv/PyPI/all.zip"))
        result = Updater(cfg, s3=self.client("s3"), require_https=False).run()
        assert result.status == "updated", result.reason

    # the scanner
    def config(self, **changes: Any) -> ScanConfig:
        values: dict[str, Any] = {
            "findings_table": "ramparts-findings",
            "baseline_table": "ramparts-baseline",
            "bucket": BUCKET,
            "accounts": (ACCOUNT,),
            "regions": (REGION,),
            **changes,
        }
        return ScanConfig(**values)

    def scanner(self, advisories: AdvisoryCache | None = None, **changes: Any) -> Scanner:
        return Scanner(
            self.config(**changes),
            clients=HarnessClients(self),
            fetch=self.fetch,
            advisories=advisories or AdvisoryCache(self.client("s3"), BUCKET),
            dynamodb=self.client("dynamodb"),
            events=self.client("events"),
            clock=lambda: self.now,
        )

    def published(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.published_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.published_url, ReceiptHandle=m["ReceiptHandle"])

    def items(self) -> dict[str, dict[str, Any]]:
        from functions.store import deserialize

        ddb = self.client("dynamodb")
        raw = ddb.scan(TableName="ramparts-findings")["Items"]
        return {i["pk"]["S"]: deserialize(i) for i in raw if i["pk"]["S"].startswith("vuln#")}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for k in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECURITY_TOKEN",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.setenv(k, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Ramparts")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield session


@pytest.fixture
def harness(aws_env: Any, server: LocalServer) -> Harness:
    session = aws_env
    ddb = session.client("dynamodb")
    _table(ddb, "ramparts-findings")
    _table(ddb, "ramparts-baseline")
    sqs = session.client("sqs")
    published = sqs.create_queue(QueueName="published")["QueueUrl"]
    events = session.client("events")
    events.create_event_bus(Name="ramparts")
    events.put_rule(
        Name="vulns",
        EventBusName="ramparts",
        EventPattern=json.dumps(
            {"source": ["ramparts"], "detail-type": ["Ramparts Vulnerability Finding"]}
        ),
    )
    events.put_targets(
        Rule="vulns",
        EventBusName="ramparts",
        Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:published"}],
    )
    return Harness(session, server, published)
