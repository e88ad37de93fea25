"""Helper logic of the network, DNS, AWS and file rules, checked directly over many real
spellings; and the rules' behaviour on odd events and on long runs (bounded state)."""

from __future__ import annotations

import hashlib

import pytest

from collectors.model import (
    Account,
    Actor,
    Api,
    ApiActivity,
    Cloud,
    Device,
    DnsActivity,
    DnsQuery,
    File,
    FileActivity,
    Metadata,
    NetworkActivity,
    NetworkEndpoint,
    Process,
    Product,
    Service,
)
from collectors.rules.engine import Engine, MemoryState, builtin
from collectors.rules.pack import _net
from collectors.rules.pack.aws import recon_action, sensitive_action
from collectors.rules.pack.files import credential_file, system_file
from collectors.rules.pack.network import MAX_DOMAINS
from collectors.workload import device_for, lambda_function

IMDS = "169.254.169.254"


@pytest.mark.parametrize(
    "spelling",
    [
        "169.254.169.254",
        "2852039166",
        "0xa9fea9fe",
        "0xA9FEA9FE",
        "0251.0376.0251.0376",
        "0xa9.0xfe.0xa9.0xfe",
        "169.254.43518",
        "169.16689662",
        "::ffff:169.254.169.254",
        "::FFFF:A9FE:A9FE",
        "0:0:0:0:0:ffff:a9fe:a9fe",
        "[::ffff:169.254.169.254]",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::169.254.169.254",
        "::169.254.169.254",
        " 169.254.169.254 ",
    ],
)
def test_every_spelling_of_imds_is_imds(spelling: str) -> None:
    assert _net.canonical_ip(spelling) == IMDS
    assert _net.credential_endpoint(spelling) == (IMDS, "EC2 instance metadata (IMDS)")


@pytest.mark.parametrize(
    ("spelling", "endpoint"),
    [
        ("fd00:ec2::254", "fd00:ec2::254"),
        ("FD00:EC2:0:0:0:0:0:254", "fd00:ec2::254"),
        ("[fd00:ec2::254]", "fd00:ec2::254"),
        ("fd00:ec2::254%eth0", "fd00:ec2::254"),
        ("169.254.170.2", "169.254.170.2"),
        ("::ffff:169.254.170.2", "169.254.170.2"),
        ("169.254.170.23", "169.254.170.23"),
        ("fd00:ec2::23", "fd00:ec2::23"),
        ("instance-data", "instance-data"),
        ("INSTANCE-DATA.ec2.internal.", "instance-data.ec2.internal"),
        ("instance-data.eu-west-1.compute.internal", "instance-data.eu-west-1.compute.internal"),
        ("metadata.google.internal", "metadata.google.internal"),
        ("169.254.169.254.nip.io", IMDS),
        ("app.169.254.169.254.nip.io", IMDS),
        ("169-254-169-254.sslip.io", IMDS),
        ("www-169-254-169-254.sslip.io", IMDS),
        ("a9fea9fe.nip.io", IMDS),
        ("169.254.170.2.xip.io", "169.254.170.2"),
    ],
)
def test_credential_endpoints_in_other_spellings(spelling: str, endpoint: str) -> None:
    found = _net.credential_endpoint(spelling)
    assert found is not None and found[0] == endpoint


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.253",
        "169.254.170.3",
        "10.0.0.1",
        "fd00:ec2::255",
        "instance-data.example.com",
        "my-instance-data",
        "metadata.example.com",
        "example.com",
        "10.0.0.1.nip.io",
        "",
        "::",
        "1.2.3.4.5",
        "0x1g",
    ],
)
def test_not_credential_endpoints(host: str) -> None:
    assert _net.credential_endpoint(host) is None


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("010.0.0.1", "8.0.0.1"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("example.com", None),
        ("256.1.1.1", None),
        ("1.2.3.4.5", None),
        ("0xfffffffff", None),
        ("08.0.0.1", None),  # not octal, not decimal: inet_aton refuses it
    ],
)
def test_canonical_ip(text: str, canonical: str | None) -> None:
    assert _net.canonical_ip(text) == canonical


@pytest.mark.parametrize(
    ("cmd", "host"),
    [
        ("curl -s http://169.254.169.254/latest/meta-data/", IMDS),
        ("wget -qO- http://[fd00:ec2::254]/latest/api/token", "fd00:ec2::254"),
        ("curl http://user:pw@2852039166:80/latest", IMDS),
        ("curl 169.254.169.254/latest/meta-data", IMDS),
        ("nc 169.254.170.2 80", "169.254.170.2"),
        (
            "curl -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' -X PUT http://instance-data/latest/api/token",
            "instance-data",
        ),
        (
            "python3 -c \"import urllib.request as u;u.urlopen('http://169.254.170.23/v1/credentials')\"",
            None,
        ),
    ],
)
def test_hosts_in_command(cmd: str, host: str | None) -> None:
    found = {e[0] for h in _net.hosts_in_command(cmd) if (e := _net.credential_endpoint(h))}
    if host is None:
        # inside Python source the URL is quoted: the word is still found
        assert "169.254.170.23" in found
    else:
        assert host in found


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("nanopool.org", "nanopool.org"),
        ("xmr-eu1.nanopool.org", "nanopool.org"),
        ("a.b.c.supportxmr.com", "supportxmr.com"),
        ("evilnanopool.org", None),
        ("nanopool.org.evil.example", None),
        ("org", None),
        ("xmrpool.eu", "xmrpool.eu"),
        ("fr.xmrpool.eu", "xmrpool.eu"),
    ],
)
def test_suffix_match_on_label_boundaries(name: str, match: str | None) -> None:
    suffixes = frozenset({"nanopool.org", "supportxmr.com", "xmrpool.eu"})
    assert _net.suffix_match(name, suffixes) == match


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("a.b.example.com", "example.com"),
        ("example.com", "example.com"),
        ("x.y.exfil.co.uk", "exfil.co.uk"),
        ("foo.bar.com.au", "bar.com.au"),
        ("localhost", "localhost"),
        ("abc.s3.amazonaws.com", "s3.amazonaws.com"),
    ],
)
def test_registrable_domain(name: str, domain: str) -> None:
    assert _net.registrable_domain(name) == domain


def test_entropy_values() -> None:
    assert _net.shannon_entropy("") == 0
    assert _net.shannon_entropy("aaaa") == 0
    assert _net.shannon_entropy("ab") == pytest.approx(1.0)
    assert _net.shannon_entropy("0123456789abcdef") == pytest.approx(4.0)


@pytest.mark.parametrize(
    "label",
    [
        hashlib.sha256(b"x").hexdigest()[:40],  # dnscat2: hex
        "mzxw6ytboi2dsmrtgq3dinbsgq3tmnzqgiztcnbv",  # base32 (iodine, DNSExfiltrator)
        "agvsbg8gd29ybgqgdghpcybpcybhihrlc3q",  # base64 lower-cased
        "3b1e9f0c7d8a4e2b9c6d5f4a3b2c1d0e",
        "0x7f4k2m9q8w1z5r6t3y7u0p2s4d6f8h1j",
    ],
)
def test_encoded_labels(label: str) -> None:
    assert _net.looks_encoded(label)


@pytest.mark.parametrize(
    "label",
    [
        "this-is-a-very-long-subdomain-name",
        "thisisaverylongsubdomainnameformyservice",
        "kubernetes-dashboard-metrics",
        "xn--bcher-kva1234567890123456",
        "ip-10-0-1-23",
        "00000000000000000000000",
        "1234567890123456789",
        "d111111abcdef8",
        "customerinvoicereminderservice",
    ],
)
def test_words_and_numbers_are_not_encoded(label: str) -> None:
    assert not _net.looks_encoded(label)


@pytest.mark.parametrize(
    ("path", "cwd", "normal"),
    [
        ("/etc//passwd", None, "/etc/passwd"),
        ("/etc/./cron.d/../passwd", None, "/etc/passwd"),
        ("../../etc/shadow", None, "/etc/shadow"),
        ("passwd", "/etc", "/etc/passwd"),
        ("./profile.d/x.sh", "/etc", "/etc/profile.d/x.sh"),
        ("/proc/4242/root/etc/passwd", None, "/etc/passwd"),
        ("/host/etc/shadow", None, "/etc/shadow"),
        (
            "/var/lib/docker/overlay2/abc123/merged/root/.ssh/authorized_keys",
            None,
            "/root/.ssh/authorized_keys",
        ),
        ("//etc/passwd", None, "/etc/passwd"),
    ],
)
def test_normalise_path(path: str, cwd: str | None, normal: str) -> None:
    assert _net.normalise_path(path, cwd) == normal


@pytest.mark.parametrize(
    ("path", "tech"),
    [
        ("/etc/passwd", "T1136.001"),
        ("/etc/gshadow", "T1136.001"),
        ("/etc/sudoers", "T1548.003"),
        ("/etc/sudoers.d/90-cloud-init-users", "T1548.003"),
        ("/root/.ssh/authorized_keys", "T1098.004"),
        ("/home/ubuntu/.ssh/authorized_keys2", "T1098.004"),
        ("/etc/crontab", "T1053.003"),
        ("/etc/cron.hourly/x", "T1053.003"),
        ("/var/spool/cron/crontabs/root", "T1053.003"),
        ("/etc/systemd/system/multi-user.target.wants/x.service", "T1543.002"),
        ("/etc/profile.d/evil.sh", "T1546.004"),
        ("/root/.bashrc", "T1546.004"),
    ],
)
def test_system_files(path: str, tech: str) -> None:
    found = system_file(path)
    assert found is not None and found[1] == tech


@pytest.mark.parametrize(
    "path",
    [
        "/etc/ld.so.preload",
        "/lib/modules/6.1/x.ko",
        "/etc/passwd.bak",
        "/home/u/.bashrc",
        "/root/.ssh/known_hosts",
        "/etc/cron.d",
        "/tmp/etc/passwd",
    ],
)
def test_not_system_files(path: str) -> None:
    assert system_file(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "/etc/shadow",
        "/root/.ssh/id_rsa",
        "/home/u/.ssh/id_ed25519",
        "/etc/ssh/ssh_host_rsa_key",
        "/root/.aws/credentials",
        "/home/app/.aws/config",
        "/root/.aws/sso/cache/abc.json",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "/run/secrets/kubernetes.io/serviceaccount/..2025_11_03_09_14_07.1/token",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        "/root/.docker/config.json",
        "/home/ci/.git-credentials",
        "/root/.netrc",
        "/root/.kube/config",
        "/proc/1/mem",
    ],
)
def test_credential_files(path: str) -> None:
    assert credential_file(path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "/root/.ssh/id_rsa.pub",
        "/etc/ssh/ssh_host_rsa_key.pub",
        "/root/.ssh/known_hosts",
        "/proc/self/environ",
        "/var/task/aws/credentials",
        "/etc/passwd",
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    ],
)
def test_not_credential_files(path: str) -> None:
    assert credential_file(path) is None


@pytest.mark.parametrize(
    ("action", "sensitive", "recon"),
    [
        ("iam:CreateAccessKey", 5, None),
        ("iam:PutUserPolicy", 5, None),
        ("iam:UpdateAssumeRolePolicy", 5, None),
        ("iam:ListRoles", None, 3),
        ("iam:GetAccountAuthorizationDetails", None, 4),
        ("sts:GetCallerIdentity", None, 3),
        ("sts:AssumeRole", 4, None),
        ("kms:Decrypt", 3, None),
        ("secretsmanager:GetSecretValue", 4, None),
        ("secretsmanager:ListSecrets", None, 3),
        ("organizations:CreateAccount", 5, None),
        ("organizations:ListAccounts", None, 4),
        ("ec2:DescribeInstances", None, 3),
        ("s3:GetObject", None, None),
        ("dynamodb:PutItem", None, None),
    ],
)
def test_aws_action_owners(action: str, sensitive: int | None, recon: int | None) -> None:
    s = sensitive_action(action)
    r = recon_action(action)
    assert (s[0] if s else None) == sensitive
    assert (r[0] if r else None) == recon
    assert not (s and r), "one action, one rule"


# -- rules on odd events, and bounded state -----------------------------------------------------
_META = Metadata(product=Product(name="Ramparts", vendor_name="Ramparts"))
_CLOUD = Cloud(region="eu-west-1", account=Account(uid="111122223333"))
_DEVICE = device_for(lambda_function("orders-api", "111122223333", "eu-west-1"))
_MINE = {
    r.id
    for r in builtin()
    if r.id.split(".")[0] in ("network", "dns", "aws", "file", "falco", "guardduty")
}


def _dns(name: str, t: int) -> DnsActivity:
    return DnsActivity(
        activity_id=1,
        time=t,
        metadata=_META,
        cloud=_CLOUD,
        device=_DEVICE,
        query=DnsQuery(hostname=name),
    )


def test_rules_never_raise_on_sparse_events() -> None:
    odd = [
        NetworkActivity(activity_id=1, time=1, metadata=_META, cloud=_CLOUD, device=_DEVICE),
        NetworkActivity(
            activity_id=1,
            time=1,
            metadata=_META,
            cloud=_CLOUD,
            device=_DEVICE,
            dst_endpoint=NetworkEndpoint(hostname="..."),
            actor=Actor(process=Process()),
        ),
        NetworkActivity(
            activity_id=6,
            time=1,
            metadata=_META,
            cloud=_CLOUD,
            device=Device(type_id=0),
            dst_endpoint=NetworkEndpoint(ip="::", port=0),
        ),
        DnsActivity(activity_id=1, time=1, metadata=_META, cloud=_CLOUD, device=_DEVICE),
        _dns(".", 1),
        _dns("a" * 63 + "." + "b" * 63 + ".x", 1),
        FileActivity(
            activity_id=1,
            time=1,
            metadata=_META,
            cloud=_CLOUD,
            device=_DEVICE,
            actor=Actor(),
            file=File(name=""),
        ),
        FileActivity(
            activity_id=2,
            time=1,
            metadata=_META,
            cloud=_CLOUD,
            device=_DEVICE,
            actor=Actor(process=Process(working_directory="relative")),
            file=File(name="x", path="../.." * 400),
        ),
        ApiActivity(
            activity_id=2,
            time=1,
            metadata=_META,
            cloud=_CLOUD,
            device=_DEVICE,
            actor=Actor(),
            api=Api(operation=""),
            src_endpoint=NetworkEndpoint(),
        ),
        ApiActivity(
            activity_id=2,
            time=1,
            metadata=_META,
            cloud=_CLOUD,
            device=_DEVICE,
            actor=Actor(),
            api=Api(operation="GetThing", service=Service(name="IAM")),
            src_endpoint=NetworkEndpoint(),
            unmapped={"action": 42, "mode": None},
        ),
    ]
    engine = Engine(builtin().only(_MINE))
    engine.run(odd)
    assert engine.failures == []


def test_dns_tunnelling_state_stays_bounded() -> None:
    state = MemoryState()
    engine = Engine(builtin().only(["dns.tunnelling"]), state=state)
    events = []
    for i in range(400):  # 400 domains, 3 encoded names each, all within the window
        for j in range(3):
            h = hashlib.sha256(f"{i}-{j}".encode()).hexdigest()
            events.append(_dns(f"{h[:40]}.d{i}.example{i}.net", 1_800_000_000_000 + i * 10 + j))
    alerts = engine.run(events)
    assert alerts == []  # 3 names a domain is no burst
    (stored,) = state.items.values()
    assert len(stored["d"]) <= MAX_DOMAINS
    assert all(len(v) <= 3 for v in stored["d"].values())


def test_dns_tunnelling_burst_crossing_batches() -> None:
    """State persists between batches: a burst delivered in two batches still fires."""
    state = MemoryState()
    rules = builtin().only(["dns.tunnelling"])
    names = [hashlib.sha256(str(i).encode()).hexdigest()[:40] + ".t.example.net" for i in range(10)]
    first = Engine(rules, state=state).run(
        [_dns(n, 1_800_000_000_000 + i) for i, n in enumerate(names[:6])]
    )
    second = Engine(rules, state=state).run(
        [_dns(n, 1_800_000_001_000 + i) for i, n in enumerate(names[6:])]
    )
    assert first == [] and len(second) == 1 and second[0].key == "example.net"
