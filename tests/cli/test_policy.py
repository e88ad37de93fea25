"""``ramparts policy learn`` and ``ramparts policy check``, the docs and the example policies.

Sample logs live in tests/fixtures/learn/ (written by make_samples.py there); the end-to-end
tests run tests/fixtures/learn/workload.py under the real sensor in a subprocess, learn a
policy from what it logged, and run it again under that policy.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from ramparts import _net
from ramparts._policy import Policy, build, parse_text

from ramparts_cli import _learn, policy
from ramparts_cli.errors import CliError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "learn"
EXAMPLES = ROOT / "examples" / "policies"
DOCS = ROOT / "docs" / "policy.md"


# -- helpers -------------------------------------------------------------------------------------
def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``ramparts ARGV`` through the policy module's own registration."""
    parser = argparse.ArgumentParser(prog="ramparts")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    policy.register(sub)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
    except CliError as exc:
        print(f"ramparts: error: {exc}", file=sys.stderr)
        print(exc.diagnostics(), file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def corpus_of(*names: str) -> _learn.Corpus:
    corpus = _learn.Corpus()
    for name in names:
        corpus.add_bytes((FIXTURES / name).read_bytes(), name)
    return corpus


def learned(corpus: _learn.Corpus, **kw: Any) -> tuple[_learn.Learned, str, Policy]:
    result = _learn.learn(corpus, **kw)
    text = result.render()
    return result, text, build(parse_text(text, "learned"), "learned")


def active_lines(text: str) -> str:
    """The policy without its comments (what the sensor acts on)."""
    return "\n".join(
        line.split("  #")[0] for line in text.splitlines() if not line.lstrip().startswith("#")
    )


def body(text: str) -> str:
    return text[text.index("version: 1") :]


def addr(ip: str) -> _net.Address:
    a = _net.parse_ip(ip)
    assert a is not None
    return a


@pytest.fixture(scope="module")
def orders() -> tuple[_learn.Corpus, _learn.Learned, str, Policy]:
    corpus = corpus_of("orders-raw.jsonl")
    return (corpus, *learned(corpus))


# -- learning from the sample logs --------------------------------------------------------------
def test_learned_policy_validates_and_allows_every_learned_event(orders) -> None:
    corpus, result, _text, pol = orders
    # THEN it loads with the sensor's own YAML parser and validator (done in the fixture),
    assert pol.mode == "monitor"
    # every event the sensor allowed is allowed (but those deliberately withheld)...
    report = _learn.verify(pol, corpus, skip=result.withheld)
    assert report.missing == []
    # ...and no built-in alert is silenced
    assert report.silenced == []
    assert len(corpus.events) == 182
    assert len(corpus.invocations) == 9
    assert len(corpus.sandboxes) == 3


def test_learned_policy_matches_what_was_seen_and_nothing_else(orders) -> None:
    _corpus, _result, _text, pol = orders
    assert pol.egress is not None and pol.dns is not None and pol.write is not None
    assert pol.process is not None and pol.aws is not None
    # seen
    assert pol.egress_allows("c.api.example.com", addr("203.0.113.12"), 443)
    assert pol.egress_allows(None, addr("10.0.3.7"), 5432)
    assert pol.egress_allows("k2x9q1.execute-api.us-east-1.amazonaws.com", addr("54.239.0.4"), 443)
    assert pol.dns_allows("hooks.slack.com")
    assert pol.write.match("/tmp/tmpzz99yy88")  # another random temporary name
    assert pol.write.match("/tmp/jobs/epsilon/result.csv")
    assert pol.process.match("/usr/bin/git")
    assert pol.native_allows("/opt/lib/libvips.so.42")
    assert pol.aws_allows(("ec2", "ec2"), "DescribeKeyPairs")  # folded Describe*
    assert pol.aws_allows(("stepfunctions", "states"), "StartExecution")
    # not seen
    assert not pol.egress_allows("evil.example.net", addr("192.0.2.66"), 443)
    assert not pol.egress_allows("a.api.example.com", addr("203.0.113.10"), 8443)  # port
    assert not pol.egress_allows(None, addr("10.0.3.8"), 5432)  # /32, not the subnet
    assert not pol.egress_allows(None, addr("10.0.3.7"), 22)
    assert not pol.dns_allows("api.example.com")  # *.api.example.com is not the apex
    assert not pol.dns_allows("example.com")
    assert not pol.write.match("/tmp/other/file.txt")
    assert not pol.write.match("/tmp/cache/sessions.json")
    assert not pol.process.match("/usr/bin/curl")
    assert not pol.native_allows("/tmp/.x/libhook.so")
    assert not pol.aws_allows(("dynamodb", "dynamodb"), "DeleteItem")
    assert not pol.aws_allows(("ec2", "ec2"), "TerminateInstances")
    assert not pol.aws_allows(("s3", "s3"), "PutObject")


def test_each_entry_says_how_often_it_was_seen(orders) -> None:
    text = orders[2]
    assert '- "*.api.example.com:443"  # 18 events, 6 invocations, 3 sandboxes' in text
    assert "# folded from 3 names: a.api.example.com, b.api.example.com, c.api.example.com" in text
    assert "- /opt/lib/libvips.so.42  # 3 events, at init, 3 sandboxes" in text
    assert "- ec2:Describe*  # 12 events, 2 invocations, 2 sandboxes; regions: us-east-1" in text
    assert "mode: monitor" in text and "mode: enforce" in text  # how to switch, in comments


def test_events_that_fired_built_in_rules_are_never_learned(orders) -> None:
    corpus, result, text, pol = orders
    attacks = [e for e in corpus.events if e.builtin]
    assert {e.rule for e in attacks} == {
        "default.credential-endpoint",
        "default.inline-code",
        "default.network-tool",
        "default.native-writable",
        "default.sensitive-read",
        "default.sensitive-write",
    }
    for ev in attacks:  # each still fires under the learned policy
        assert _learn.expected_rule(pol, ev, corpus) is not None, _learn.describe(ev)
    active = active_lines(text)
    for target in (
        "169.254.169.254",
        "/etc/cron.d",
        "/usr/bin/curl",
        "libhook",
        "/proc/",
        "sessions.json",
        "python3.12",
    ):
        assert target not in active
    # they are there as commented-out lines, with a warning naming the rule
    assert "# NOT LEARNED, default.credential-endpoint" in text
    assert '# - {cidr: "169.254.169.254/32", ports: [80]}' in text
    assert "# - /usr/bin/curl  # 1 event, 1 invocation, 1 sandbox" in text
    assert (
        "#   default.sensitive-write (a write to a system, credential or persistence "
        "file): 2 events" in text
    )
    assert sum(result.excluded.values()) == 7


def test_a_program_seen_allowed_and_alerting_is_left_out(orders) -> None:
    corpus, result, text, pol = orders
    # GIVEN python3.12 ran a script normally (allowed) and with -c CODE (default.inline-code):
    # an allow entry would switch the rule off, so it is withheld, with a warning
    assert pol.process is not None and not pol.process.match("/var/lang/bin/python3.12")
    assert any(
        "/var/lang/bin/python3.12 not learned" in w and "default.inline-code" in w
        for w in result.warnings
    )
    withheld = [e for e in corpus.events if id(e) in result.withheld]
    assert {e.fields["executable"] for e in withheld} == {"/var/lang/bin/python3.12"}
    assert len(withheld) == 6
    assert "# NOT LEARNED, seen allowed, but also firing default.inline-code" in text


def test_no_wildcard_covers_a_path_that_alerted(orders) -> None:
    text, pol = orders[2], orders[3]
    # /tmp/cache has 4 .json files (a /tmp/cache/*.json candidate), but a write through a hard
    # link to /etc/shadow alerted at /tmp/cache/sessions.json: list the files instead
    assert "/tmp/cache/*" not in active_lines(text)
    assert pol.write is not None
    assert set(pol.write.patterns) >= {"/tmp/cache/items.json", "/tmp/cache/users.json"}
    assert not pol.write.match("/tmp/cache/sessions.json")


def test_aws_sdk_connections_are_covered_by_the_aws_section(orders) -> None:
    text = orders[2]
    active = active_lines(text)
    # the SDK's own connections and look-ups to AWS endpoints are not egress entries
    assert "dynamodb.us-east-1.amazonaws.com" not in active
    assert "orders-data.s3" not in active
    assert "covered by the aws section" in text
    # an AWS endpoint reached without the SDK is
    assert "k2x9q1.execute-api.us-east-1.amazonaws.com:443  # " in text
    assert "an AWS endpoint reached outside an AWS SDK call" in text
    # loopback is always allowed: listed in a comment only
    assert "127.0.0.1" not in active and "loopback, 127.0.0.1:6379" in text


def test_the_sample_learned_example_is_what_learn_writes() -> None:
    _result, text, _pol = learned(corpus_of("orders-raw.jsonl"))
    assert text == (EXAMPLES / "learned-orders-api.yaml").read_text(), (
        "regenerate: cd tests/fixtures/learn && ramparts policy learn orders-raw.jsonl "
        "-o ../../../examples/policies/learned-orders-api.yaml"
    )


def test_the_sample_logs_are_what_make_samples_writes(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_samples  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(FIXTURES))
    monkeypatch.setattr(make_samples, "HERE", tmp_path)
    make_samples.main()
    for f in tmp_path.iterdir():
        assert f.read_bytes() == (FIXTURES / f.name).read_bytes(), f"regenerate {f.name}"


# -- log shapes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["orders-cloudwatch.log", "orders-tail.log"])
def test_prefixed_lines_learn_the_same_policy_as_raw_lines(orders, name: str) -> None:
    corpus = corpus_of(name)
    _r, text, _p = learned(corpus)
    assert body(text) == body(orders[2])
    assert corpus.ramparts_lines == orders[0].ramparts_lines
    assert corpus.malformed == []


def test_console_lines_of_the_runtime_and_the_function_are_ignored_and_counted() -> None:
    corpus = corpus_of("orders-cloudwatch.log")
    # START, END, REPORT, a print and an [INFO] line per invocation (the init has none)
    assert corpus.other_lines == 9 * 5


def test_subscription_records_and_filter_exports(orders) -> None:
    raw = orders[0]
    sub = corpus_of("orders-subscription.json")
    first = sorted(raw.sandboxes)[0]
    assert sub.sandboxes == {"3f9a1c2e5b7d4f60"} and first
    assert len(sub.events) == sum(1 for e in raw.events if e.sandbox == "3f9a1c2e5b7d4f60")
    export = corpus_of("orders-filter-events.json")  # pretty-printed, several lines per event
    assert export.sandboxes == {"a0b1c2d3e4f50617"}
    assert export.other_lines == 1  # INIT_START
    assert len(export.events) == sum(1 for e in raw.events if e.sandbox == "a0b1c2d3e4f50617")


def test_packed_subscription_data_kinesis_batches_and_gzip() -> None:
    record = (FIXTURES / "orders-subscription.json").read_bytes()
    packed = base64.b64encode(gzip.compress(record, mtime=0)).decode()
    expected = len(corpus_of("orders-subscription.json").events)
    # as a subscription delivers it to a Lambda function
    awslogs = _learn.Corpus()
    awslogs.add_bytes(json.dumps({"awslogs": {"data": packed}}).encode(), "event.json")
    assert len(awslogs.events) == expected
    # as a Kinesis stream delivers it
    kinesis = _learn.Corpus()
    kinesis.add_bytes(json.dumps({"Records": [{"kinesis": {"data": packed}}]}).encode(), "k")
    assert len(kinesis.events) == expected
    # a gzipped log file
    gz = _learn.Corpus()
    gz.add_bytes(gzip.compress((FIXTURES / "orders-tail.log").read_bytes(), mtime=0), "tail.log.gz")
    assert len(gz.events) == 182


def test_the_same_lines_from_two_exports_count_once() -> None:
    corpus = corpus_of("orders-raw.jsonl", "orders-tail.log")
    assert corpus.duplicates == corpus_of("orders-raw.jsonl").ramparts_lines
    assert len(corpus.events) == 182


def test_malformed_lines_are_reported_counted_and_skipped(capsys) -> None:
    code, out, err = run_cli(["policy", "learn", str(FIXTURES / "malformed.log")], capsys)
    assert code == 0
    build(parse_text(out, "out"), "out")
    name = str(FIXTURES / "malformed.log")
    for lineno, reason in [
        (4, "not valid JSON: Unterminated string starting at column"),
        (6, "the 'ramparts' key must be the schema version number"),
        (8, "no 'kind'"),
        (10, "network.connect: 'port' is missing or not a number"),
        (11, "schema version 7 is newer than this command understands"),
        (12, "process.spawn: an alert without a 'rule'"),
    ]:
        assert f"{name}:{lineno}: malformed Ramparts line skipped: {reason}" in err
    assert "6 malformed Ramparts lines skipped" in err
    assert "3 other lines ignored" in err
    assert "# - 6 malformed Ramparts lines skipped" not in out
    assert "skipped:  3 other lines ignored; 6 malformed Ramparts lines skipped" in out


def test_logs_without_ramparts_events_are_an_error(tmp_path: Path, capsys) -> None:
    log = tmp_path / "plain.log"
    log.write_text("START RequestId: 1 Version: $LATEST\nhello\nEND RequestId: 1\n")
    code, _out, err = run_cli(["policy", "learn", str(log)], capsys)
    assert code == 1
    assert "no Ramparts events" in err and "2 other lines" not in err
    assert "hint: run the function with RAMPARTS_MODE=learn" in err


def test_an_unreadable_log_file_exits_2(tmp_path: Path, capsys) -> None:
    code, _out, err = run_cli(["policy", "learn", str(tmp_path / "missing.log")], capsys)
    assert code == 2
    assert "cannot read" in err and "No such file" in err


def test_learn_writes_out_and_reads_stdin(tmp_path: Path, capsys, monkeypatch) -> None:
    data = (FIXTURES / "orders-tail.log").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out_file = tmp_path / "policy.yaml"
    code, out, err = run_cli(["policy", "learn", "-", "-o", str(out_file)], capsys)
    assert code == 0 and out == ""
    assert f"-> {out_file}" in err
    assert "learned 21 entries from 182 events (9 invocations, 3 sandboxes)" in err
    assert "<stdin>" in out_file.read_text()
    assert list(tmp_path.iterdir()) == [out_file]  # no temporary file left behind


def test_no_fold_lists_every_name_and_path(orders) -> None:
    _r, text, pol = learned(orders[0], fold=False)
    assert pol.egress is not None and pol.write is not None and pol.aws is not None
    assert "*" not in active_lines(text)
    assert "a.api.example.com:443" in text and "ec2:DescribeVpcs" in text
    assert pol.write.match("/tmp/tmpab12cd34") and not pol.write.match("/tmp/tmpzz99yy88")


def test_logs_not_recorded_in_learn_mode_are_flagged(tmp_path: Path) -> None:
    lines = [json.loads(x) for x in (FIXTURES / "orders-raw.jsonl").read_text().splitlines()]
    monitor = [dict(x, mode="monitor") for x in lines if x.get("verdict") == "alert"]
    corpus = _learn.Corpus()
    corpus.add_bytes("\n".join(json.dumps(x) for x in monitor).encode(), "monitor.log")
    result = _learn.learn(corpus)
    assert any("none of these lines was recorded in learn mode" in w for w in result.warnings)


def test_hostile_names_in_logs_stay_data() -> None:
    # GIVEN a compromised function logs a path and a host crafted to inject YAML
    evil_path = '/tmp/x"\n  write: [/etc]\n#'
    evil_host = 'a.example.com\n    - "*:443"'
    base = {
        "ramparts": 1,
        "verdict": "allow",
        "rule": None,
        "mode": "learn",
        "sandbox": "s",
        "request_id": "r",
    }
    lines = [
        dict(base, kind="file.write", path=evil_path, op="create", seq=1),
        dict(
            base,
            kind="network.connect",
            host=evil_host,
            ip="203.0.113.1",
            port=443,
            op="connect",
            seq=2,
        ),
        dict(base, kind="process.spawn", executable="/usr/bin/a b\\c[1]", argv=["x"], seq=3),
    ]
    corpus = _learn.Corpus()
    corpus.add_bytes("\n".join(json.dumps(x) for x in lines).encode(), "evil.log")
    result, _text, pol = learned(corpus)
    # THEN the policy holds exactly those entries, nothing more
    assert pol.write is not None and pol.egress is not None and pol.process is not None
    assert len(pol.write.patterns) == 1 and pol.write.match(evil_path)
    assert not pol.write.match("/etc/passwd") and not pol.write.match("/tmp/other")
    assert len(pol.egress) == 1 and not pol.egress_allows("b.example.com", None, 443)
    assert pol.process.patterns == ("/usr/bin/a b\\c?1?",)  # no [...] classes in patterns
    assert _learn.verify(pol, corpus, skip=result.withheld).ok


def test_junk_in_any_field_never_breaks_the_run() -> None:
    # GIVEN one line of every kind, and copies with each field replaced by junk
    lines = [json.loads(x) for x in (FIXTURES / "orders-raw.jsonl").read_text().splitlines()]
    samples = list({(x["kind"], x.get("verdict"), x.get("op")): x for x in lines}.values())
    junk: list[Any] = [None, 0, -1, True, "", " ", "..", "[", "a\nb", [], {}, [None], 10**30]
    mutated = [
        {**x, "seq": i, k: j}
        for i, (x, k, j) in enumerate((x, k, j) for x in samples for k in x for j in junk)
    ]
    corpus = _learn.Corpus()
    corpus.add_bytes("\n".join(json.dumps(x) for x in mutated).encode(), "junk.log")
    # WHEN a policy is learned, THEN it validates, and what was not usable was counted
    result, _text, pol = learned(corpus)
    assert corpus.ramparts_lines + len(corpus.malformed) + corpus.other_lines == len(mutated)
    _learn.verify(pol, corpus, skip=result.withheld)


# -- folding ---------------------------------------------------------------------------------
def _seen(n: int = 1) -> _learn.Seen:
    s = _learn.Seen()
    s.events = n
    return s


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["a.example.com", "b.example.com", "c.example.com"], ["*.example.com"]),
        (["a.example.com", "b.example.com"], ["a.example.com", "b.example.com"]),
        (
            ["a.api.example.com", "b.api.example.com", "c.api.example.com", "www.example.com"],
            ["*.api.example.com", "www.example.com"],
        ),
        (
            ["example.com", "a.example.com", "b.example.com", "c.example.com"],
            ["*.example.com", "example.com"],
        ),
        (["a.shop.co.uk", "b.shop.co.uk", "c.shop.co.uk"], ["*.shop.co.uk"]),
        (["x.co.uk", "y.co.uk", "z.co.uk"], ["x.co.uk", "y.co.uk", "z.co.uk"]),
        (
            [
                "a1.execute-api.us-east-1.amazonaws.com",
                "b2.execute-api.us-east-1.amazonaws.com",
                "c3.execute-api.us-east-1.amazonaws.com",
            ],
            [
                "a1.execute-api.us-east-1.amazonaws.com",
                "b2.execute-api.us-east-1.amazonaws.com",
                "c3.execute-api.us-east-1.amazonaws.com",
            ],
        ),
        (
            ["x.github.io", "y.github.io", "z.github.io"],
            ["x.github.io", "y.github.io", "z.github.io"],
        ),
        (["db", "cache", "queue"], ["cache", "db", "queue"]),
    ],
)
def test_fold_hosts(hosts: list[str], expected: list[str]) -> None:
    entries = _learn.fold_hosts({h: _seen() for h in hosts})
    assert sorted(str(e.value) for e in entries) == sorted(expected)


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("tmpab12cd", "tmp*"),
        ("tmpk9x2_p1q.json", "tmp*.json"),
        ("tmpqwertyui", "tmp*"),
        ("upload_k3j2h1x9.csv", "upload_*.csv"),
        ("data.csv.6fE1aB2c", "data.csv.*"),
        ("job-3f2b1c9e-5a4d-4e7f-9b8a-0c1d2e3f4a5b.log", "job-*.log"),
        ("cache-0123456789abcdef0123.bin", "cache-*.bin"),
        ("export-1714554721000.ndjson", "export-*.ndjson"),
        ("report.csv", "report.csv"),
        ("settings.json", "settings.json"),
        ("tmp", "tmp"),
        ("report_2024.csv", "report_2024.csv"),
    ],
)
def test_random_names(segment: str, expected: str) -> None:
    assert _learn.random_segment(segment) == expected


def _fold(paths: list[str], **kw: Any) -> list[str]:
    return sorted(str(e.value) for e in _learn.fold_paths({p: _seen() for p in paths}, **kw))


def test_fold_paths() -> None:
    # several files in one directory
    assert _fold(["/tmp/a.json", "/tmp/b.json", "/tmp/c.json"]) == ["/tmp/*.json"]
    assert _fold(["/tmp/a.json", "/tmp/b.csv", "/tmp/c"]) == ["/tmp/*"]
    assert _fold(["/tmp/a.json", "/tmp/b.json"]) == ["/tmp/a.json", "/tmp/b.json"]
    # many subdirectories
    assert _fold(["/tmp/w/a/x", "/tmp/w/b/y", "/tmp/w/c/z/q", "/tmp/other"]) == [
        "/tmp/other",
        "/tmp/w/**",
    ]
    # random temporary names, files and directories
    assert _fold(["/tmp/tmpab12cd34", "/tmp/tmpxy98zw76"]) == ["/tmp/tmp*"]
    assert _fold(["/tmp/tmpab12cd34/out.txt", "/tmp/tmpxy98zw76/out.txt"]) == ["/tmp/tmp*/out.txt"]
    # never at the root
    assert _fold(["/a", "/b", "/c"]) == ["/a", "/b", "/c"]
    assert _fold(["/a/x", "/b/x", "/c/x"]) == ["/a/x", "/b/x", "/c/x"]


def test_fold_paths_never_covers_a_sensitive_file_or_a_vetoed_path() -> None:
    # /etc/*.conf would cover /etc/ld.so.conf; /home/app/* would cover /home/app/.bashrc
    assert _fold(["/etc/a.conf", "/etc/b.conf", "/etc/c.conf"]) == [
        "/etc/a.conf",
        "/etc/b.conf",
        "/etc/c.conf",
    ]
    assert "/home/app/*" not in _fold(["/home/app/a", "/home/app/b", "/home/app/c"])
    assert _learn.covers_sensitive("/etc/**")
    assert _learn.covers_sensitive("/root/*")  # /root/.bashrc
    assert not _learn.covers_sensitive("/tmp/**")
    # a veto folds tighter rather than not at all
    veto = lambda p: p != "/tmp/**"  # noqa: E731
    assert _fold(
        ["/tmp/a/x.csv", "/tmp/a/y.csv", "/tmp/a/z.csv", "/tmp/b/1", "/tmp/c/2"], allowed=veto
    ) == ["/tmp/a/*.csv", "/tmp/b/1", "/tmp/c/2"]


def test_fold_aws_only_when_clearly_safe() -> None:
    def fold(actions: list[str]) -> list[str]:
        return sorted(str(e.value) for e in _learn.fold_aws({a: _seen() for a in actions}))

    describes = [f"ec2:Describe{x}" for x in ("Instances", "Volumes", "Vpcs", "Subnets", "Images")]
    assert fold(describes) == ["ec2:Describe*"]
    assert fold(describes[:4]) == sorted(describes[:4])
    gets = [
        f"s3:Get{x}" for x in ("Object", "ObjectAcl", "ObjectTagging", "BucketPolicy", "BucketAcl")
    ]
    assert fold(gets) == sorted(gets)  # Get* reads data: always listed
    lists = [f"iam:List{x}" for x in ("Roles", "Users", "Policies", "Groups", "AccessKeys")]
    assert fold(lists) == sorted(lists)  # identity services never fold


def test_yaml_values_round_trip_through_the_sensor_parser() -> None:
    from ramparts._yaml import loads

    for s in [
        "*.example.com:443",
        "/tmp/a b",
        "null",
        "true",
        "off",
        "443",
        "a: b",
        "x #y",
        'q"uote',
        "back\\slash",
        "tab\there",
        "line\u2028sep",
        "- dash",
        "[x]",
        "{y}",
        "s3:GetObject",
        "/tmp/**",
        "caf\u00e9",
    ]:
        assert loads(f"k: {_learn.yaml_str(s)}\n") == {"k": s}, s
        assert loads(f"- {{host: {_learn.yaml_str(s)}, ports: [443]}}\n") == [
            {"host": s, "ports": [443]}
        ], s


# -- the real sensor: learn, then run under the learned policy ----------------------------------
def run_workload(
    base: str,
    mode: str | None,
    *,
    policy_file: str | None = None,
    attack: bool = True,
    extra: bool = False,
) -> list[dict[str, Any]]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(
        PYTHONPATH=str(ROOT / "layer"),
        WORKLOAD_BASE=base,
        WORKLOAD_ATTACK="1" if attack else "0",
        WORKLOAD_EXTRA="1" if extra else "0",
    )
    if mode:
        env["RAMPARTS_MODE"] = mode
    if policy_file:
        env["RAMPARTS_POLICY"] = policy_file
    proc = subprocess.run(
        [sys.executable, str(FIXTURES / "workload.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(x) for x in proc.stdout.splitlines() if x.startswith('{"ramparts"')]


@pytest.fixture(scope="module")
def sensor_learned() -> Any:
    # mkdtemp's suffix is 8 characters of [a-z0-9_]; one with no digit (8% of draws) reads as
    # a word to the folding heuristic, which keeps it: draw until it looks random.
    while True:
        base = tempfile.mkdtemp(prefix="ramparts-learn-", dir="/tmp")
        if _learn._mixed(base.rsplit("-", 1)[-1]):
            break
        os.rmdir(base)
    try:
        log = "".join(
            json.dumps(x) + "\n"
            for _ in range(2)  # two sandboxes
            for x in run_workload(base, "learn")
        )
        corpus = _learn.Corpus()
        corpus.add_bytes(log.encode(), "learn.log")
        result, text, pol = learned(corpus)
        policy_file = os.path.join(base, "policy.yaml")
        Path(policy_file).write_text(text)
        yield base, corpus, result, text, pol, policy_file
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _alerts(lines: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    out = set()
    for x in lines:
        if x.get("verdict") in ("alert", "block"):
            target = (
                x.get("path")
                or x.get("executable")
                or x.get("library")
                or x.get("host")
                or x.get("ip")
                or x.get("action")
                or ""
            )
            target = re.sub(r"^/proc/\d+/", "/proc/N/", str(target))
            out.add((x["kind"], x["rule"], target))
    return out


def test_sensor_logs_learn_a_policy_that_allows_them(sensor_learned) -> None:
    base, corpus, result, text, pol, _f = sensor_learned
    assert len(corpus.sandboxes) == 2 and len(corpus.invocations) == 4
    assert corpus.malformed == [] and corpus.learn_lines == len(corpus.events)
    assert _learn.verify(pol, corpus, skip=result.withheld).ok
    assert '- "*.api.example.com:443"' in text
    # the mkdtemp directory's random name is folded too
    assert base.startswith("/tmp/ramparts-learn-")
    folded = "/tmp/ramparts-learn-*"
    assert f"- {folded}/tmp*  # " in text
    assert f"- {folded}/jobs/**  # " in text and f"- {folded}/cache/*.json  # " in text
    assert "- dynamodb:GetItem  # 4 events, 4 invocations, 2 sandboxes" in text
    assert "dynamodb.us-east-1.amazonaws.com" not in active_lines(text)


def test_running_under_the_learned_policy_reports_only_the_attacks(sensor_learned) -> None:
    base, corpus, result, _text, _pol, policy_file = sensor_learned
    # WHEN the same function runs again, under the learned policy (its mode: monitor)
    replay = run_workload(base, None, policy_file=policy_file)
    start = next(x for x in replay if x["kind"] == "sensor.start")
    assert start["policy"] == policy_file and start["modes"]["egress"] == "monitor"
    got = _alerts(replay)
    attacks = {a for a in _alerts([e.fields for e in corpus.events]) if a[1].startswith("default.")}
    # THEN every attack still alerts (the write outside /tmp is now policy.files.write)...
    assert {a for a in got if a[1].startswith("default.")} == {
        a for a in attacks if a[1] != "default.write-outside-tmp"
    }
    assert ("file.write", "policy.files.write", "/var/ramparts-test-missing/x") in got
    # ...and the only other alert is the interpreter withheld because it also ran -c CODE
    withheld = {e.fields["executable"] for e in corpus.events if id(e) in result.withheld}
    others = {a for a in got if not a[1].startswith("default.")} - {
        ("file.write", "policy.files.write", "/var/ramparts-test-missing/x")
    }
    assert others == {("process.spawn", "policy.process", exe) for exe in withheld}


def test_what_was_not_learned_alerts_under_the_learned_policy(sensor_learned) -> None:
    base, _corpus, _result, _text, _pol, policy_file = sensor_learned
    replay = run_workload(base, None, policy_file=policy_file, attack=False, extra=True)
    got = {(k, r) for k, r, _t in _alerts(replay)}
    assert {
        ("network.connect", "policy.egress"),
        ("network.dns", "policy.dns"),
        ("file.write", "policy.files.write"),
        ("process.spawn", "policy.process"),
        ("aws.call", "policy.aws"),
    } <= got
    targets = {t for _k, _r, t in _alerts(replay)}
    assert {"evil.example.net", f"{base}/other/new.bin", "dynamodb:DeleteItem"} <= targets


# -- check -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "broken.yaml")
)
def test_example_policies_are_valid(name: str, capsys) -> None:
    code, out, _err = run_cli(["policy", "check", str(EXAMPLES / name)], capsys)
    assert code == 0, out
    assert f"{EXAMPLES / name}: valid, " in out
    for section in ("egress", "dns", "files", "process", "native", "aws"):
        assert re.search(rf"^    {section} ", out, re.M), out


def test_check_summarises_entries_and_modes(capsys) -> None:
    code, out, _ = run_cli(["policy", "check", str(EXAMPLES / "gradual-enforce.yaml")], capsys)
    assert code == 0
    assert "valid, 7 entries" in out
    assert re.search(r"^    egress +2 entries +enforce \(section mode\)$", out, re.M)
    assert re.search(r"^    files +1 entry write, 0 read exemptions +monitor$", out, re.M)
    assert re.search(
        r"^    process +not restricted \(built-in rules only\) +off \(section "
        r"mode\)$",
        out,
        re.M,
    )
    # RAMPARTS_MODE=enforce enforces sections without their own mode; off stays off
    code, out, _ = run_cli(
        ["policy", "check", str(EXAMPLES / "gradual-enforce.yaml"), "--env-mode", "enforce"], capsys
    )
    assert re.search(r"^    files .* enforce$", out, re.M)
    assert re.search(r"^    process .* off \(section mode\)$", out, re.M)
    # RAMPARTS_MODE=monitor caps everything
    code, out, _ = run_cli(
        ["policy", "check", str(EXAMPLES / "gradual-enforce.yaml"), "--env-mode", "monitor"], capsys
    )
    assert re.search(
        r"^    egress .* monitor \(RAMPARTS_MODE overrides the section's "
        r"enforce\)$",
        out,
        re.M,
    )


def test_check_warns_about_entries_that_switch_built_in_rules_off(tmp_path: Path, capsys) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "egress:\n  allow: [169.254.0.0/16]\nprocess:\n  allow: [/bin/bash]\n"
        "files:\n  write: [/etc/**]\nnative:\n  allow: [libfoo.so]\n"
    )
    code, out, _ = run_cli(["policy", "check", str(f)], capsys)
    assert code == 0
    assert "includes 169.254.169.254" in out
    assert "process allows /bin/bash" in out
    assert "files.write /etc/** also allows writing sensitive files" in out
    assert "native libfoo.so matches a library of that name in any directory" in out


BROKEN = [
    (
        "version: 1\negres:\n  allow: []\n",
        ["egres: unknown key (did you mean 'egress'?)", "hint: keys are lower case"],
    ),
    ("dns:\n  alow: [a.example.com]\n", ["dns.alow: unknown key (did you mean 'allow'?)"]),
    (
        "egress:\n  allow:\n    - api.example.com:https\n",
        ["egress.allow[0].ports: 'https' is not a port", "hint: ports are numbers 1-65535"],
    ),
    (
        "egress:\n  allow:\n    - {host: db.internal, ports: [5432, 70000]}\n",
        ["egress.allow[0].ports[1]: port 70000 is out of range 1-65535"],
    ),
    (
        "egress:\n  allow:\n    - 10.0.0.1/8\n",
        [
            "egress.allow[0]: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?",
            "hint: a network is written with its host bits zero",
        ],
    ),
    (
        "egress:\n  allow:\n    - {cidr: 10.0.0.0/33}\n",
        ["egress.allow[0]: prefix length /33 is out of range 0-32", "hint: the prefix length"],
    ),
    (
        "egress:\n  allow:\n    - {cidr: 999.1.2.3/32}\n",
        ["'999.1.2.3' is not an IP address", "hint: a CIDR is ADDRESS/PREFIX"],
    ),
    (
        "process:\n  allow: [git]\n",
        ["process.allow[0]: 'git': paths must be absolute", "hint: find it with: readlink -f"],
    ),
    (
        "files:\n  write: ['/tmp/[ab]*']\n",
        ["files.write[0]: '/tmp/[ab]*': character classes", "hint: use * (any run"],
    ),
    (
        "aws:\n  allow: [s3GetObject]\n",
        ["aws.allow[0]: 's3GetObject': expected 'service:Operation'", "hint: IAM style"],
    ),
    ("mode: enforced\n", ["mode: 'enforced' is not one of", "hint: modes: off, monitor"]),
    (
        "defaults:\n  disable: [default.shel]\n",
        ["'default.shel' is not a built-in rule (did you mean 'default.shell'?)"],
    ),
    (
        "egress:\n\tallow: []\n",
        ["line 2: invalid YAML: tabs are not allowed", "  2 | allow: []", "hint: indent with"],
    ),
    (
        "egress:\n  allow:\n    - *.example.com:443\n",
        ["line 3: invalid YAML:", "  3 | - *.example.com:443", "hint: quote values"],
    ),
    (
        "egress:\n  allow: [a.example.com:443,\n    b.example.com:443]\n",
        ["line 2: invalid YAML: unterminated flow sequence", "hint: keep each [ ... ]"],
    ),
    (
        '{"egress": {"allow": ["a.example.com:443",]}}',
        ["invalid JSON", "hint: check the commas and quotes"],
    ),
    ("- just\n- a list\n", ["the policy must be a mapping"]),
    ("{a", ["invalid JSON: Expecting property name enclosed in double quotes at line 1"]),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_check_explains_each_error(tmp_path: Path, capsys, text: str, expected: list[str]) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    code, out, _ = run_cli(["policy", "check", str(f)], capsys)
    assert code == 1
    for e in expected:
        assert e in out, out
    assert f"{f}: invalid (" in out


def test_check_reports_every_error_at_once(capsys) -> None:
    code, out, _ = run_cli(["policy", "check", str(EXAMPLES / "broken.yaml")], capsys)
    assert code == 1
    assert "invalid (7 errors)" in out
    assert out.count("\n  hint: ") == 7


def test_check_never_crashes_on_garbage() -> None:
    import random

    rng = random.Random(7)
    for _ in range(500):
        text = "".join(rng.choice("ab:-[]{}#'\" \n\t*/,01") for _ in range(rng.randint(0, 40)))
        assert policy.check_text(text, "p", io.StringIO()) in (0, 1), repr(text)


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_check_an_unreadable_file_exits_2(tmp_path: Path, capsys, kind: str) -> None:
    target = {
        "missing": tmp_path / "nope.yaml",
        "directory": tmp_path,
        "binary": tmp_path / "p.yaml",
    }[kind]
    if kind == "binary":
        target.write_bytes(b"\xff\xfe\x00mode")
    code, out, err = run_cli(["policy", "check", str(target)], capsys)
    assert code == 2 and out == ""
    assert "ramparts: error: cannot read" in err and "hint: " in err


def test_check_reads_stdin_and_json(capsys, monkeypatch) -> None:
    monkeypatch.setattr(
        sys,
        "stdin",
        io.TextIOWrapper(io.BytesIO(b'{"mode": "enforce", "aws": {"allow": ["s3:GetObject"]}}')),
    )
    code, out, _ = run_cli(["policy", "check", "-"], capsys)
    assert code == 0 and "<stdin>: valid, 1 entry" in out


def test_check_refuses_a_policy_the_sensor_would_truncate() -> None:
    out = io.StringIO()
    assert policy.check_text("version: 1\n", "big.yaml", out, too_big=True) == 1
    assert "larger than 1024 KiB" in out.getvalue()


def test_the_policy_command_is_registered() -> None:
    parser = argparse.ArgumentParser(prog="ramparts")
    policy.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["policy", "learn", "a.log", "b.log", "-o", "p.yaml"])
    assert args.func is policy.run_learn and args.logs == ["a.log", "b.log"] and args.fold
    args = parser.parse_args(["policy", "check", "p.yaml"])
    assert args.func is policy.run_check
    with pytest.raises(SystemExit):
        parser.parse_args(["policy"])


# -- the docs ----------------------------------------------------------------------------------
def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", DOCS.read_text(), re.M | re.S)


def test_every_policy_in_the_docs_is_an_example_file() -> None:
    blocks = _blocks("yaml")
    assert blocks
    named = set()
    for block in blocks:
        first = block.splitlines()[0]
        m = re.fullmatch(r"# (examples/policies/[\w.-]+\.yaml)( \(excerpt\))?", first)
        assert m, f"a yaml block in docs/policy.md must name its file: {first!r}"
        path = ROOT / m.group(1)
        named.add(path.name)
        content = path.read_text()
        if m.group(2):  # an excerpt: its lines appear in the file, in order
            lines = iter(content.splitlines())
            assert all(any(x == y for y in lines) for x in block.splitlines()[1:]), path
        else:
            assert block == content, f"{path} differs from its copy in docs/policy.md"
    assert named == {p.name for p in EXAMPLES.glob("*.yaml")}, "every example is in the docs"


def test_inline_json_in_the_docs_is_valid() -> None:
    found = re.findall(r"RAMPARTS_POLICY='(\{.*?\})'", DOCS.read_text())
    assert found
    for text in found:
        build(parse_text(text, "docs"), "docs")


def test_check_output_in_the_docs_is_what_check_prints(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run_cli(["policy", "check", "examples/policies/broken.yaml"], capsys)
    assert code == 1
    shown = next(b for b in _blocks("text") if b.startswith("examples/policies/broken.yaml"))
    assert shown == out


def test_the_docs_list_every_built_in_rule() -> None:
    from ramparts._policy import DEFAULT_RULES

    text = DOCS.read_text()
    for rule, (section, _what) in DEFAULT_RULES.items():
        assert re.search(rf"^\| `{re.escape(rule)}` \| {section} \|", text, re.M), rule


def test_the_ramparts_command_runs_policy(capsys) -> None:
    from ramparts_cli.main import main

    assert main(["policy", "check", str(EXAMPLES / "minimal.yaml")]) == 0
    assert "valid, 2 entries" in capsys.readouterr().out
    assert main(["policy", "check", str(EXAMPLES / "missing.yaml")]) == 2
    assert "hint: give the path of a policy file" in capsys.readouterr().err
