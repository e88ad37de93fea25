"""Inspector2 package-vulnerability findings -> OCSF Vulnerability Finding.

Every recorded sample under samples/inspector/ must become the finding it describes, valid
by OCSF's own schema; the account rule holds; and no input (arbitrary JSON, mutated samples)
makes the adapter raise or hang.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors import guardduty, inspector
from collectors.base import Context
from collectors.inspector import derive_purl
from collectors.workload import workload_of
from tests.collectors.test_guardduty import (
    ACCOUNT,
    FUZZ,
    OTHER_ACCOUNT,
    SAMPLES,
    check_batch,
    check_identity,
    json_values,
    load,
    mutated,
    other_sources_records,
)

INSPECTOR = SAMPLES / "inspector"
SAMPLE_FILES = sorted(p.name for p in INSPECTOR.glob("*.json"))

# name -> (workload type or None for an image, resource type, resource uid, severity_id,
#          activity_id, status_id, status, vulnerability id, cve?, (package, fixed in))
EXPECTED: dict[str, tuple[Any, ...]] = {
    "lambda-pip-requests.json": (
        "lambda",
        "AwsLambdaFunction",
        "arn:aws:lambda:us-east-1:111122223333:function:image-resizer",
        3,
        1,
        1,
        "New",
        "CVE-2024-35195",
        True,
        ("requests", "2.32.0"),
    ),
    "ecr-image-openssl.json": (
        None,
        "AwsEcrContainerImage",
        "arn:aws:ecr:us-east-1:111122223333:repository/payments-api/"
        "sha256:6c1d9e8f7a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5",
        4,
        1,
        1,
        "New",
        "CVE-2024-6119",
        True,
        ("openssl", "0:3.0.13-0ubuntu3.4"),
    ),
    "ec2-openssh-closed.json": (
        "ec2",
        "AwsEc2Instance",
        "i-0a1b2c3d4e5f60718",
        4,
        3,
        4,
        "Resolved",
        "CVE-2024-6387",
        True,
        ("openssh-server", "0:8.7p1-8.amzn2023.0.11"),
    ),
    "list-findings-lambda-npm.json": (
        "lambda",
        "AwsLambdaFunction",
        "arn:aws:lambda:us-east-1:111122223333:function:checkout-api",
        2,
        2,
        3,
        "Suppressed",
        "GHSA-pxg6-pf52-xh8x",
        False,
        ("cookie", "0.7.0"),
    ),
}


def normalize_one(record: Any, ctx: Context | None = None) -> dict[str, Any]:
    batch = inspector.normalize(record, ctx or Context(origin="test"))
    assert batch.rejects == [], [r.reason for r in batch.rejects]
    events = check_batch(batch)
    assert len(events) == 1
    return events[0]


def test_every_sample_has_expectations():
    assert set(SAMPLE_FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_normalises_to_its_finding(name):
    # GIVEN a recorded Inspector2 finding
    record = load(INSPECTOR / name)
    kind, rtype, uid, severity_id, activity_id, status_id, status, vid, is_cve, package = EXPECTED[
        name
    ]
    # WHEN it is normalised
    data = normalize_one(record)
    event = inspector.normalize(record, Context()).events[0]
    # THEN it is the Vulnerability Finding it describes, about its own resource
    assert data["class_uid"] == 2002
    assert (data["severity_id"], data["activity_id"]) == (severity_id, activity_id)
    assert (data["status_id"], data["status"]) == (status_id, status)
    assert data["metadata"]["product"] == {"name": "Inspector", "vendor_name": "AWS"}
    assert data["cloud"]["account"]["uid"] == ACCOUNT
    (resource,) = data["resources"]
    assert (resource["type"], resource["uid"], resource["role_id"]) == (rtype, uid, 3)
    if kind is None:
        assert "device" not in data  # an image at rest runs nowhere
    else:
        workload = workload_of(event.device, ACCOUNT)
        assert workload is not None
        assert (workload.type, workload.uid) == (kind, uid)
    (vulnerability,) = data["vulnerabilities"]
    assert ("cve" in vulnerability, "advisory" in vulnerability) == (is_cve, not is_cve)
    assert (vulnerability.get("cve") or vulnerability["advisory"])["uid"] == vid
    fixed = {p["name"]: p.get("fixed_in_version") for p in vulnerability["affected_packages"]}
    assert fixed[package[0]] == package[1]
    assert vulnerability["fix_available"] is True
    assert vulnerability["is_fix_available"] is True
    finding = record.get("detail") or record["findings"][0]
    assert data["finding_info"]["uid"] == finding["findingArn"]
    assert data["finding_info"]["title"] == finding["title"]
    assert data["finding_info"]["product_uid"].endswith("::product/aws/inspector")
    check_identity([data], ACCOUNT)


def test_lambda_finding_maps_cve_cvss_epss_and_package():
    envelope = load(INSPECTOR / "lambda-pip-requests.json")
    data = normalize_one(envelope)
    (vulnerability,) = data["vulnerabilities"]
    cve = vulnerability["cve"]
    assert cve["cvss"] == [
        {
            "base_score": 5.6,
            "version": "3.1",
            "vector_string": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N",
            "vendor_name": "NVD",
        }
    ]
    assert cve["epss"] == {"score": "0.00018"}
    assert cve["created_time"] == 1716239709000  # "Mon May 20 21:15:09.000 UTC 2024"
    assert len(cve["references"]) == 2
    (package,) = vulnerability["affected_packages"]
    assert package == {
        "name": "requests",
        "version": "2.31.0",
        "fixed_in_version": "2.32.0",
        "purl": "pkg:pypi/requests@2.31.0",
        "package_manager": "PYTHONPKG",
        "path": "requests-2.31.0.dist-info/METADATA",
        "epoch": 0,
    }
    assert vulnerability["severity"] == "Medium"
    assert vulnerability["is_exploit_available"] is False
    # the function ARN in the finding is qualified ($LATEST); the workload is the function
    assert "lambda.version=$LATEST" in data["resources"][0]["labels"]
    assert data["device"]["uid"] == "arn:aws:lambda:us-east-1:111122223333:function:image-resizer"
    assert data["metadata"]["uid"] == envelope["id"]
    assert data["time"] == 1742372091204  # "Wed Mar 19 08:14:51.204 UTC 2025"
    assert data["unmapped"]["inspector"]["inspector_score"] == 5.6


def test_ecr_image_is_a_resource_of_its_own():
    data = normalize_one(load(INSPECTOR / "ecr-image-openssl.json"))
    labels = data["resources"][0]["labels"]
    assert "ecr.repository=payments-api" in labels
    assert "image.tag=1.8.2" in labels
    assert data["resources"][0]["name"].startswith("payments-api@sha256:")
    packages = data["vulnerabilities"][0]["affected_packages"]
    assert [p["name"] for p in packages] == ["libssl3t64", "openssl"]
    assert all("purl" not in p for p in packages)  # OS packages: the distribution is not named
    assert packages[0]["architecture"] == "AMD64"
    assert packages[0]["release"] == "0ubuntu3.1"


def test_closed_finding_closes_and_is_resolved():
    data = normalize_one(load(INSPECTOR / "ec2-openssh-closed.json"))
    assert (data["activity_name"], data["status"], data["status_detail"]) == (
        "Close",
        "Resolved",
        "CLOSED",
    )
    vulnerability = data["vulnerabilities"][0]
    assert vulnerability["is_exploit_available"] is True
    assert len(vulnerability["cve"]["cvss"]) == 2
    # "Mar 20, 2025, 6:08:04 PM": the older EventBridge date format
    assert data["time"] == 1742494084000
    assert data["unmapped"]["inspector"]["exploit_last_seen_time"] == 1740629512000


def test_advisory_keeps_its_cvss_in_unmapped():
    data = normalize_one(load(INSPECTOR / "list-findings-lambda-npm.json"))
    advisory = data["vulnerabilities"][0]["advisory"]
    assert advisory["src_url"] == "https://github.com/advisories/GHSA-pxg6-pf52-xh8x"
    assert data["unmapped"]["inspector"]["cvss"][0]["base_score"] == 3.7
    purls = [p["purl"] for p in data["vulnerabilities"][0]["affected_packages"]]
    assert purls == ["pkg:npm/cookie@0.6.0", "pkg:npm/cookie@0.5.0"]
    assert "log_provider" not in data["metadata"]  # no envelope


def test_untriaged_severity_is_unknown():
    record = load(INSPECTOR / "lambda-pip-requests.json")
    record["detail"]["severity"] = "UNTRIAGED"
    assert normalize_one(record)["severity_id"] == 0


def test_active_finding_seen_again_is_an_update():
    record = load(INSPECTOR / "lambda-pip-requests.json")
    record["detail"]["updatedAt"] = "Thu Mar 20 08:14:51.204 UTC 2025"
    assert normalize_one(record)["activity_name"] == "Update"


def test_fixed_in_not_available():
    record = load(INSPECTOR / "lambda-pip-requests.json")
    record["detail"]["packageVulnerabilityDetails"]["vulnerablePackages"][0]["fixedInVersion"] = (
        "NotAvailable"
    )
    record["detail"]["fixAvailable"] = "NO"
    vulnerability = normalize_one(record)["vulnerabilities"][0]
    assert "fixed_in_version" not in vulnerability["affected_packages"][0]
    assert vulnerability["fix_available"] is False


@pytest.mark.parametrize(
    ("manager", "name", "version", "purl"),
    [
        ("PIP", "Flask_Cors", "3.0.9", "pkg:pypi/flask-cors@3.0.9"),
        ("NPM", "@aws-sdk/client-s3", "3.400.0", "pkg:npm/%40aws-sdk/client-s3@3.400.0"),
        ("GOBINARY", "golang.org/x/net", "v0.30.0", "pkg:golang/golang.org/x/net@v0.30.0"),
        (
            "JAR",
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        ),
        ("JAR", "log4j-core", "2.14.1", None),
        ("GEMSPEC", "rack", "2.2.3", "pkg:gem/rack@2.2.3"),
        ("CARGO", "hyper", "0.14.10", "pkg:cargo/hyper@0.14.10"),
        ("NUGET", "Newtonsoft.Json", "12.0.1", "pkg:nuget/Newtonsoft.Json@12.0.1"),
        ("OS", "openssl", "3.0.13", None),
        (None, "openssl", "3.0.13", None),
    ],
)
def test_purl_derivation(manager, name, version, purl):
    assert derive_purl(manager, name, version) == purl


# --------------------------------------------------------------------------------------------
# Identity


def _rejected(record: Any, ctx: Context | None = None) -> str:
    batch = inspector.normalize(record, ctx or Context())
    assert batch.events == [], "must be rejected"
    assert len(batch.rejects) == 1
    return batch.rejects[0].reason


def test_finding_account_that_disagrees_with_the_envelope_is_rejected():
    record = load(INSPECTOR / "lambda-pip-requests.json")
    record["detail"]["awsAccountId"] = OTHER_ACCOUNT
    reason = _rejected(record)
    assert "another account" in reason
    assert OTHER_ACCOUNT in reason


def test_envelope_account_that_disagrees_is_rejected():
    record = load(INSPECTOR / "ec2-openssh-closed.json")
    record["account"] = OTHER_ACCOUNT
    assert "another account" in _rejected(record)


@pytest.mark.parametrize(
    ("sample", "resource_id"),
    [
        (
            "lambda-pip-requests.json",
            f"arn:aws:lambda:us-east-1:{OTHER_ACCOUNT}:function:image-resizer:$LATEST",
        ),
        (
            "ecr-image-openssl.json",
            f"arn:aws:ecr:us-east-1:{OTHER_ACCOUNT}:repository/payments-api/sha256:"
            "6c1d9e8f7a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5",
        ),
    ],
)
def test_resource_in_another_account_is_rejected(sample, resource_id):
    record = load(INSPECTOR / sample)
    record["detail"]["resources"][0]["id"] = resource_id
    assert "another account" in _rejected(record)


def test_resource_in_another_region_is_rejected():
    record = load(INSPECTOR / "ec2-openssh-closed.json")
    record["detail"]["resources"][0]["region"] = "eu-west-1"
    assert "region" in _rejected(record)


def test_finding_arn_in_another_region_is_rejected():
    record = load(INSPECTOR / "ec2-openssh-closed.json")
    arn = record["detail"]["findingArn"].replace("us-east-1", "eu-west-1")
    record["detail"]["findingArn"] = arn
    assert "region" in _rejected(record)


def test_bare_finding_and_the_operator_context():
    listing = load(INSPECTOR / "list-findings-lambda-npm.json")
    normalize_one(listing, Context(account=ACCOUNT, region="us-east-1"))
    assert "another account" in _rejected(listing, Context(account=OTHER_ACCOUNT))
    assert "region" in _rejected(listing, Context(region="eu-west-1"))


def test_more_than_one_resource_is_rejected():
    record = load(INSPECTOR / "ec2-openssh-closed.json")
    resources = record["detail"]["resources"]
    resources.append(dict(resources[0], id="i-0fedcba9876543210"))
    assert "exactly one" in _rejected(record)


# --------------------------------------------------------------------------------------------
# What is not for us


@pytest.mark.parametrize("kind", ["NETWORK_REACHABILITY", "CODE_VULNERABILITY"])
def test_other_finding_types_are_skipped(kind):
    record = load(INSPECTOR / "ec2-openssh-closed.json")
    record["detail"]["type"] = kind
    batch = inspector.normalize(record, Context())
    assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


def test_other_resource_types_are_skipped():
    record = load(INSPECTOR / "ec2-openssh-closed.json")
    record["detail"]["resources"][0]["type"] = "AWS_ECR_REPOSITORY"
    batch = inspector.normalize(record, Context())
    assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


@pytest.mark.parametrize("detail_type", ["Inspector2 Scan", "Inspector2 Coverage"])
def test_other_inspector_events_are_skipped(detail_type):
    record = {
        "version": "0",
        "id": "28a46762-6ac8-6cc4-4f55-bc9ab99af928",
        "detail-type": detail_type,
        "source": "aws.inspector2",
        "account": ACCOUNT,
        "time": "2025-03-20T22:52:35Z",
        "region": "us-east-1",
        "resources": ["i-0a1b2c3d4e5f60718"],
        "detail": {"scan-status": "INITIAL_SCAN_COMPLETE"},
    }
    assert inspector.matches(record)
    batch = inspector.normalize(record, Context())
    assert (batch.events, batch.rejects, batch.skipped) == ([], [], 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [("severity", "SEVERE"), ("status", "OPEN"), ("type", "MALWARE"), ("findingArn", "x")],
)
def test_malformed_findings_are_rejected_with_a_reason(field, value):
    record = load(INSPECTOR / "lambda-pip-requests.json")
    record["detail"][field] = value
    assert field.lower()[:4] in _rejected(record).lower()


# --------------------------------------------------------------------------------------------
# Auto-detection and replay


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_matches_its_own_samples_and_guardduty_does_not(name):
    record = load(INSPECTOR / name)
    assert inspector.matches(record)
    assert not guardduty.matches(record)


def test_matches_no_other_sources_samples():
    claimed = [
        where for where, record in other_sources_records("inspector") if inspector.matches(record)
    ]
    assert claimed == []


def test_replay_auto_detects_and_normalises_every_sample():
    from ramparts_cli.replay import replay

    out, err = io.StringIO(), io.StringIO()
    files = [str(INSPECTOR / name) for name in SAMPLE_FILES]
    events, rejected, _skipped, per_source = replay(files, "auto", out=out, err=err)
    assert (events, rejected) == (len(SAMPLE_FILES), 0), err.getvalue()
    assert per_source == {"inspector": len(SAMPLE_FILES)}
    assert all(json.loads(line)["class_uid"] == 2002 for line in out.getvalue().splitlines())


# --------------------------------------------------------------------------------------------
# Fuzz


INSPECTOR_SAMPLES = [load(INSPECTOR / name) for name in SAMPLE_FILES]


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json(value):
    check_batch(inspector.normalize(value, Context()))


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "source": st.just("aws.inspector2"),
            "detail-type": st.sampled_from(["Inspector2 Finding", "Inspector2 Scan"]),
            "account": st.sampled_from([ACCOUNT, "x", 5]),
            "region": st.sampled_from(["us-east-1", ""]),
            "detail": json_values,
        }
    )
)
def test_fuzz_envelope_with_arbitrary_detail(record):
    check_batch(inspector.normalize(record, Context()))


@FUZZ
@given(mutated(INSPECTOR_SAMPLES))
def test_fuzz_mutated_samples(record):
    events = check_batch(inspector.normalize(record, Context()))
    trusted = record.get("account") if isinstance(record, dict) and "detail" in record else None
    check_identity(events, trusted)


@FUZZ
@given(mutated(INSPECTOR_SAMPLES))
def test_fuzz_mutated_samples_as_text(record):
    check_batch(inspector.normalize(json.dumps(record), Context()))
