"""Turn what learn mode recorded into a least-privilege policy a person can read and edit.

Three steps, each usable alone (the CLI and the tests use all three)::

    corpus = read_logs(["learn.log", "export.json"])   # every log shape, bad lines counted
    learned = learn(corpus)                             # entries with how often each was seen
    text = learned.render()                             # YAML that ramparts._yaml loads
    policy = build(parse_text(text, "x"), "x")          # what the sensor will load
    report = verify(policy, corpus, skip=learned.withheld)  # nothing learned is missed and
                                                            # no built-in alert silenced

What goes in, and what deliberately does not:

* every event the sensor allowed, and every event that only broke the policy in force while
  learning (rule ``policy.*``): that is the behaviour being learned;
* never an event that fired a built-in rule (``default.*``): it is written as a commented-out
  line with a warning. An allow entry that would silence such an alert (a program seen both
  running normally and with ``-c`` code, a fold that would cover an alerting path) is left
  out or folded tighter, so a learned policy can never allow an attack seen while learning;
* never what the sensor allows without a policy entry: loopback, ``localhost``, unix
  sockets, and connections and look-ups the AWS SDK makes to AWS endpoints inside an AWS call
  (the ``aws`` section covers those). An AWS endpoint reached *outside* an SDK call (a raw
  HTTPS request to an API Gateway URL) is learned as egress.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ramparts import _net
from ramparts._glob import PathGlobs, normalise_host
from ramparts._paths import SENSITIVE_WRITE, sensitive_write
from ramparts._policy import DEFAULT_RULES, Policy

from ramparts_cli.errors import CliError

SCHEMA_VERSION = 1
EVENT_KINDS = (
    "network.connect",
    "network.dns",
    "file.write",
    "file.read",
    "process.spawn",
    "process.env",
    "native.load",
    "aws.call",
)
LIFECYCLE_KINDS = (
    "sensor.start",
    "sensor.policy_error",
    "sensor.error",
    "sensor.tamper",
    "invocation.summary",
)
VERDICTS = ("allow", "alert", "block")
# How many distinct names or files under one parent make a wildcard.
FOLD_AT = 3
# Describe*/List* operations of one service folded into one wildcard from this many on.
AWS_FOLD_AT = 5
# Services whose operations are never folded: reading their metadata is reconnaissance.
AWS_NEVER_FOLD = frozenset(
    {
        "iam",
        "sts",
        "kms",
        "secretsmanager",
        "ssm",
        "organizations",
        "sso",
        "identitystore",
        "account",
        "cognito-idp",
        "cognito-identity",
    }
)
AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".on.aws")
_SDK_FRAMES = ("/botocore/", "/aiobotocore/", "/boto3/", "/s3transfer/")
# Domains where anyone can host a name: a wildcard over them would allow an attacker's.
SHARED_DOMAINS = frozenset(
    {
        "amazonaws.com",
        "amazonaws.com.cn",
        "api.aws",
        "on.aws",
        "cloudfront.net",
        "awsapprunner.com",
        "amplifyapp.com",
        "elasticbeanstalk.com",
        "appspot.com",
        "googleapis.com",
        "googleusercontent.com",
        "cloudfunctions.net",
        "run.app",
        "web.app",
        "firebaseapp.com",
        "firebaseio.com",
        "windows.net",
        "azurewebsites.net",
        "azureedge.net",
        "cloudapp.net",
        "azure-api.net",
        "herokuapp.com",
        "github.io",
        "githubusercontent.com",
        "gitlab.io",
        "netlify.app",
        "vercel.app",
        "pages.dev",
        "workers.dev",
        "r2.dev",
        "ngrok.io",
        "ngrok.app",
        "ngrok-free.app",
        "trycloudflare.com",
        "fly.dev",
        "onrender.com",
        "glitch.me",
        "surge.sh",
        "blogspot.com",
        "digitaloceanspaces.com",
        "ondigitalocean.app",
        "backblazeb2.com",
        "supabase.co",
        "pipedream.net",
        "webhook.site",
    }
)
# Second-level public suffixes common enough to matter (no public suffix list offline).
_TWO_LEVEL = frozenset(
    {
        "co.uk",
        "org.uk",
        "ac.uk",
        "gov.uk",
        "com.au",
        "net.au",
        "org.au",
        "co.jp",
        "ne.jp",
        "or.jp",
        "com.br",
        "com.cn",
        "net.cn",
        "org.cn",
        "co.nz",
        "co.in",
        "co.kr",
        "com.mx",
        "com.sg",
        "com.hk",
        "com.tw",
        "co.za",
        "com.tr",
        "com.ar",
    }
)
_MAX_MALFORMED_SHOWN = 20

# -- reading logs ------------------------------------------------------------------------------
_MARK = re.compile(r'\{\s*"ramparts"\s*:')
_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class Event:
    """One sensor line about an operation (not a lifecycle line)."""

    kind: str
    verdict: str
    rule: str | None
    fields: dict[str, Any]
    sandbox: str
    scope: str  # the request id, or "init"/"idle" outside an invocation
    mode: str | None
    where: str
    sdk: bool  # the stack shows the AWS SDK
    time_ms: int | None

    @property
    def builtin(self) -> bool:
        """Fired a built-in rule (never learned)."""
        return self.rule is not None and not self.rule.startswith("policy.")


@dataclass
class SourceStats:
    name: str
    lines: int = 0
    ramparts: int = 0
    other: int = 0
    malformed: int = 0


@dataclass
class Corpus:
    """Everything read from the logs."""

    events: list[Event] = field(default_factory=list)
    sources: list[SourceStats] = field(default_factory=list)
    malformed: list[tuple[str, str]] = field(default_factory=list)
    other_lines: int = 0
    ramparts_lines: int = 0
    duplicates: int = 0
    unknown_kinds: Counter[str] = field(default_factory=Counter)
    invocations: set[tuple[str, str]] = field(default_factory=set)
    sandboxes: set[str] = field(default_factory=set)
    tamper: list[dict[str, Any]] = field(default_factory=list)
    policy_errors: list[str] = field(default_factory=list)
    sensor_errors: int = 0
    learn_lines: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    # (sandbox, scope) -> endpoints of the AWS calls made there
    aws_endpoints: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _keys: set[tuple[Any, ...]] = field(default_factory=set, repr=False)

    # -- input shapes ------------------------------------------------------------------------
    def add_bytes(self, data: bytes, name: str) -> None:
        """Add one file's content: plain lines, CloudWatch exports, gzip of either."""
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise CliError(
                    f"{name}: not a readable gzip file: {exc}",
                    hint="pass the log file uncompressed",
                ) from None
        text = data.decode("utf-8", "replace")
        stats = SourceStats(name)
        self.sources.append(stats)
        if not self._whole_document(text, stats):
            for lineno, line in enumerate(text.split("\n"), 1):
                self._line(line.rstrip("\r"), f"{name}:{lineno}", stats)

    def _whole_document(self, text: str, stats: SourceStats) -> bool:
        """A pretty-printed export (``aws logs filter-log-events``, a subscription record)."""
        start = len(text) - len(text.lstrip())
        if start >= len(text) or text[start] not in "{[":
            return False
        first = text[start:].split("\n", 1)[0].strip()
        try:
            one = json.loads(first)
        except ValueError:
            one = None
        if isinstance(one, dict):
            return False  # one JSON object per line: the line reader handles it
        values: list[tuple[int, Any]] = []
        pos = start
        try:
            while pos < len(text):
                value, end = _DECODER.raw_decode(text, pos)
                values.append((pos, value))
                pos = end
                while pos < len(text) and text[pos] in " \t\r\n":
                    pos += 1
        except ValueError:
            return False
        if not values or any(_is_record(v) for _, v in values):
            return False
        for pos, value in values:
            lineno = text.count("\n", 0, pos) + 1
            self._envelope(value, f"{stats.name}:{lineno}", stats)
        return True

    def _line(self, line: str, where: str, stats: SourceStats) -> None:
        if not line.strip():
            return
        stats.lines += 1
        m = _MARK.search(line)
        if m is not None:
            try:
                obj, _end = _DECODER.raw_decode(line, m.start())
            except ValueError as exc:
                reason = str(getattr(exc, "msg", exc)).removesuffix(" at")
                col = getattr(exc, "colno", None)
                self._bad(
                    where, f"not valid JSON: {reason}" + (f" at column {col}" if col else ""), stats
                )
                return
            self._record(obj, where, stats)
            return
        stripped = line.strip()
        brace = stripped.find("{")
        if brace != -1 and stripped.endswith("}"):
            try:
                obj = json.loads(stripped[brace:])
            except ValueError:
                obj = None
            if isinstance(obj, (dict, list)) and self._envelope(obj, where, stats):
                return
        stats.other += 1
        self.other_lines += 1

    def _envelope(self, value: Any, where: str, stats: SourceStats) -> bool:
        """Unwrap the CloudWatch Logs shapes; False when ``value`` is none of them."""
        if isinstance(value, list):
            found = False
            for i, item in enumerate(value):
                found = self._envelope(item, f"{where} [{i}]", stats) or found
            return found
        if not isinstance(value, dict):
            return False
        if _is_record(value):
            self._record(value, where, stats)
            return True
        awslogs = value.get("awslogs")
        if isinstance(awslogs, dict) and isinstance(awslogs.get("data"), str):
            return self._packed(awslogs["data"], f"{where} (awslogs.data)", stats)
        records = value.get("Records")
        if isinstance(records, list):  # a Kinesis batch carrying subscription records
            found = False
            for i, rec in enumerate(records):
                data = rec.get("kinesis", {}).get("data") if isinstance(rec, dict) else None
                if isinstance(data, str):
                    found = self._packed(data, f"{where} (Records[{i}])", stats) or found
            return found
        for key in ("logEvents", "events"):
            items = value.get(key)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    if isinstance(item, dict) and isinstance(item.get("message"), str):
                        self._message(item["message"], f"{where} ({key}[{i}])", stats)
                return True
        if value.get("messageType") == "CONTROL_MESSAGE":
            return True
        message = value.get("message")
        if isinstance(message, str) and "ramparts" in message:
            self._message(message, f"{where} (message)", stats)
            return True
        return False

    def _packed(self, data: str, where: str, stats: SourceStats) -> bool:
        try:
            raw = base64.b64decode(data, validate=True)
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            doc = json.loads(raw.decode("utf-8", "replace"))
        except (binascii.Error, OSError, EOFError, ValueError) as exc:
            self._bad(where, f"cannot decode the packed log data ({exc})", stats)
            return True
        return self._envelope(doc, where, stats)

    def _message(self, message: str, where: str, stats: SourceStats) -> None:
        parts = message.split("\n")
        for i, part in enumerate(parts):
            self._line(
                part.rstrip("\r"),
                where if len(parts) == 1 or i == 0 else f"{where} line {i + 1}",
                stats,
            )

    def _bad(self, where: str, reason: str, stats: SourceStats) -> None:
        stats.malformed += 1
        self.malformed.append((where, reason))

    # -- one Ramparts line -----------------------------------------------------------------
    def _record(self, obj: Any, where: str, stats: SourceStats) -> None:
        if not isinstance(obj, dict):
            self._bad(where, "a Ramparts line must be a JSON object", stats)
            return
        why = _invalid(obj)
        if why:
            self._bad(where, why, stats)
            return
        stats.ramparts += 1
        self.ramparts_lines += 1
        sandbox = obj.get("sandbox")
        sandbox = sandbox if isinstance(sandbox, str) and sandbox else "?"
        seq, pid = obj.get("seq"), obj.get("pid")
        if isinstance(seq, int) and (pid is None or isinstance(pid, int)):
            key = (sandbox, pid, seq)
            if key in self._keys:
                self.duplicates += 1  # the same line in two files or exports
                return
            self._keys.add(key)
        self.sandboxes.add(sandbox)
        t = obj.get("time")
        if isinstance(t, int) and not isinstance(t, bool):
            self.first_ms = t if self.first_ms is None else min(self.first_ms, t)
            self.last_ms = t if self.last_ms is None else max(self.last_ms, t)
        else:
            t = None
        request_id = obj.get("request_id")
        scope = (
            request_id
            if isinstance(request_id, str) and request_id
            else str(obj.get("phase") or "init")
        )
        if isinstance(request_id, str) and request_id:
            self.invocations.add((sandbox, request_id))
        kind = obj["kind"]
        if kind == "invocation.summary":
            return
        if kind == "sensor.tamper":
            self.tamper.append(obj)
            return
        if kind == "sensor.policy_error":
            errs = obj.get("errors")
            if isinstance(errs, list):
                self.policy_errors.extend(str(e) for e in errs)
            return
        if kind == "sensor.error":
            self.sensor_errors += 1
            return
        if kind not in EVENT_KINDS:
            if kind not in LIFECYCLE_KINDS:
                self.unknown_kinds[kind] += 1
            return
        mode = obj.get("mode") if isinstance(obj.get("mode"), str) else None
        if mode == "learn":
            self.learn_lines += 1
        stack = obj.get("stack")
        sdk = False
        if kind in ("network.connect", "network.dns") and isinstance(stack, list):
            frames = "\n".join(s for s in stack if isinstance(s, str))
            sdk = any(f in frames for f in _SDK_FRAMES)
        ev = Event(
            kind=kind,
            verdict=obj["verdict"],
            rule=obj.get("rule"),
            fields=obj,
            sandbox=sandbox,
            scope=scope,
            mode=mode,
            where=where,
            sdk=sdk,
            time_ms=t,
        )
        self.events.append(ev)
        if kind == "aws.call":
            endpoint = obj.get("endpoint")
            if isinstance(endpoint, str) and endpoint:
                self.aws_endpoints.setdefault((sandbox, scope), set()).add(endpoint.lower())

    # -- questions the learner asks --------------------------------------------------------
    def aws_covered(self, ev: Event, host: str) -> bool:
        """A connection or look-up the AWS SDK made inside an AWS call (the sensor allows it
        as part of the call: the ``aws`` section covers it, egress need not)."""
        name = normalise_host(host)
        if not name.endswith(AWS_SUFFIXES):
            return False
        if ev.sdk:
            return True
        for endpoint in self.aws_endpoints.get((ev.sandbox, ev.scope), ()):
            if name == endpoint or name.endswith("." + endpoint.lstrip(".")):
                return True
        return False


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and "ramparts" in value


def _invalid(obj: dict[str, Any]) -> str | None:
    """Why a Ramparts line cannot be used, or None."""
    version = obj.get("ramparts")
    if isinstance(version, bool) or not isinstance(version, int):
        return "the 'ramparts' key must be the schema version number"
    if version > SCHEMA_VERSION:
        return (
            f"schema version {version} is newer than this command understands "
            f"({SCHEMA_VERSION}); upgrade ramparts"
        )
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        return "no 'kind'"
    if kind not in EVENT_KINDS:
        return None
    if obj.get("verdict") not in VERDICTS:
        return f"{kind}: 'verdict' must be one of {', '.join(VERDICTS)}"
    rule = obj.get("rule")
    if rule is not None and not isinstance(rule, str):
        return f"{kind}: 'rule' must be a string or null"
    if obj["verdict"] != "allow" and rule is None:
        return f"{kind}: an {obj['verdict']} without a 'rule'"

    def need(name: str, typ: type) -> str | None:
        value = obj.get(name)
        if isinstance(value, bool) or not isinstance(value, typ) or value == "":
            what = {"int": "a number", "str": "a string"}.get(typ.__name__, typ.__name__)
            return f"{kind}: '{name}' is missing or not {what}"
        return None

    if kind == "network.connect":
        if "path" in obj:
            return need("path", str)
        if obj.get("op") == "socket":
            return None
        why = need("ip", str) or need("port", int)
        if why is None and not 1 <= obj["port"] <= 65535:
            return f"{kind}: port {obj['port']} is out of range 1-65535"
        return why
    if kind == "network.dns":
        return need("host", str)
    if kind in ("file.write", "file.read"):
        why = need("path", str)
        if why is None and not str(obj["path"]).startswith("/"):
            return f"{kind}: 'path' is not an absolute path"
        return why
    if kind == "process.spawn":
        return need("executable", str)
    if kind == "process.env":
        return need("variable", str)
    if kind == "native.load":
        return need("op", str)
    # aws.call
    return need("operation", str) or (
        None if isinstance(obj.get("action"), str) else need("service", str)
    )


def read_logs(paths: Sequence[str], stdin: IO[bytes] | None = None) -> Corpus:
    """Read every file (``-`` is standard input). Raises CliError for an unreadable file."""
    corpus = Corpus()
    for path in paths:
        if path == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            corpus.add_bytes(stream.read(), "<stdin>")
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise CliError(
                f"cannot read {path}: {exc.strerror or exc}",
                hint="pass log files exported from CloudWatch Logs, e.g. "
                "aws logs tail /aws/lambda/NAME --since 1d > learn.log",
            ) from None
        corpus.add_bytes(data, path)
    return corpus


# -- how often something was seen ------------------------------------------------------------
@dataclass
class Seen:
    events: int = 0
    invocations: set[tuple[str, str]] = field(default_factory=set)
    sandboxes: set[str] = field(default_factory=set)
    init: bool = False
    outside_policy: set[str] = field(default_factory=set)  # policy.* rules it broke

    def add(self, ev: Event) -> None:
        self.events += 1
        self.sandboxes.add(ev.sandbox)
        if ev.scope in ("init", "idle"):
            self.init = self.init or ev.scope == "init"
        else:
            self.invocations.add((ev.sandbox, ev.scope))
        if ev.rule is not None and ev.rule.startswith("policy."):
            self.outside_policy.add(ev.rule)

    def merge(self, other: Seen) -> None:
        self.events += other.events
        self.invocations |= other.invocations
        self.sandboxes |= other.sandboxes
        self.init = self.init or other.init
        self.outside_policy |= other.outside_policy

    def text(self) -> str:
        parts = [plural(self.events, "event")]
        if self.invocations:
            parts.append(
                plural(len(self.invocations), "invocation") + (" and init" if self.init else "")
            )
        elif self.init:
            parts.append("at init")
        parts.append(plural(len(self.sandboxes), "sandbox"))
        if self.outside_policy:
            parts.append(
                "outside the policy in force (" + ", ".join(sorted(self.outside_policy)) + ")"
            )
        return ", ".join(parts)


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    if word.endswith("x"):
        word += "es"
    elif word.endswith("y"):
        word = word[:-1] + "ies"
    else:
        word += "s"
    return f"{n:,} {word}"


def _merged(seens: Iterable[Seen]) -> Seen:
    out = Seen()
    for s in seens:
        out.merge(s)
    return out


# -- the learned policy -----------------------------------------------------------------------
@dataclass
class Entry:
    """One allow entry: its YAML value, what it covers and how often that was seen."""

    value: Any  # str or dict (rendered as a YAML flow mapping)
    seen: Seen
    members: list[str] = field(default_factory=list)  # concrete targets, when folded
    fold: str = ""  # what was folded, plural ("names", "paths", "operations")
    fold_note: str = ""  # why, when it is not obvious ("random temporary names")
    notes: list[str] = field(default_factory=list)

    @property
    def folded(self) -> bool:
        return bool(self.fold)


@dataclass
class Left:
    """Something seen but deliberately not learned (written as a commented-out line)."""

    value: Any | None  # the entry it would have been, or None when no entry could allow it
    reason: str
    seen: Seen
    detail: str = ""
    attack: bool = True  # fired a built-in rule (as opposed to a deliberate omission)
    both: bool = False  # also seen allowed: left out because an entry would silence the rule


@dataclass
class Block:
    """One list of a section (``egress.allow``, ``files.write``, ...)."""

    key: str
    entries: list[Entry] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)
    empty_note: str = ""
    emit_empty: bool = True


@dataclass
class Section:
    name: str
    intro: list[str]
    blocks: list[Block]
    notes: list[str] = field(default_factory=list)


@dataclass
class Learned:
    sections: list[Section]
    corpus: Corpus
    warnings: list[str]
    excluded: Counter[str]  # built-in rule -> events left out
    withheld: set[int]  # id() of allowed events deliberately not learned (see Left)

    @property
    def entry_count(self) -> int:
        return sum(len(b.entries) for s in self.sections for b in s.blocks)

    def render(self) -> str:
        return _render(self)


# -- folding ---------------------------------------------------------------------------------
def registrable(host: str) -> str:
    """The registrable domain, approximately (``a.b.example.co.uk`` -> ``example.co.uk``)."""
    labels = host.split(".")
    n = 3 if len(labels) >= 3 and ".".join(labels[-2:]) in _TWO_LEVEL else 2
    return ".".join(labels[-n:])


def _shared(domain: str) -> bool:
    return any(domain == s or domain.endswith("." + s) for s in SHARED_DOMAINS)


def fold_hosts(hosts: dict[str, Seen], *, at: int = FOLD_AT) -> list[Entry]:
    """Fold ``at`` or more names under one parent into ``*.parent``, as deep as possible,
    never above the registrable domain, never under a shared hosting domain (where anyone
    can get a name). The entries' values are host patterns."""
    by_domain: dict[str, list[str]] = {}
    for h in hosts:
        single = _parse_ip(h) is not None or "." not in h
        by_domain.setdefault("" if single else registrable(h), []).append(h)
    out: list[Entry] = []
    for domain, names in sorted(by_domain.items()):
        if not domain or _shared(domain) or len(names) < at:
            out.extend(Entry(n, hosts[n]) for n in sorted(names))
        else:
            out.extend(_fold_host_tree(domain, names, hosts, at))
    return out


def _fold_host_tree(suffix: str, names: list[str], hosts: dict[str, Seen], at: int) -> list[Entry]:
    under: dict[str, list[str]] = {}
    apex: list[Entry] = []
    for n in names:
        if n == suffix:
            apex.append(Entry(n, hosts[n]))  # *.suffix does not match suffix itself
            continue
        label = n[: -len(suffix) - 1].rsplit(".", 1)[-1]
        under.setdefault(label + "." + suffix, []).append(n)
    items: list[Entry] = []
    for child, members in sorted(under.items()):
        items.extend(_fold_host_tree(child, members, hosts, at))
    if len(items) >= at:
        members = sorted(n for n in names if n != suffix)
        items = [Entry("*." + suffix, _merged(hosts[m] for m in members), members, "names")]
    return items + apex


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{16,}(?![0-9A-Za-z])")
_DIGITS = re.compile(r"\d{10,}")
# tempfile names: a prefix ("tmp" by default), 8 of [a-z0-9_], a suffix
_TMPNAME = re.compile(r"^(tmp)([a-z0-9_]{6,12})((?:\.[A-Za-z0-9]+)*)$")
_PREFIXED_TMP = re.compile(r"^(.*[-_.])([a-z0-9_]{8})((?:\.[A-Za-z0-9]+)*)$")
# s3transfer's temporary downloads: "data.csv.6fE1aB2c"
_RANDOM_EXT = re.compile(r"^(.+\.)([A-Za-z0-9]{8})$")


def _mixed(s: str) -> bool:
    return any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def random_segment(seg: str) -> str:
    """``seg`` with its random-looking parts replaced by ``*`` (else unchanged)."""
    m = _TMPNAME.match(seg)
    if m:
        return "tmp*" + m.group(3)
    m = _PREFIXED_TMP.match(seg)
    if m and _mixed(m.group(2)):
        return m.group(1) + "*" + m.group(3)
    m = _RANDOM_EXT.match(seg)
    if m and _mixed(m.group(2)) and any(c.isupper() for c in m.group(2)):
        return m.group(1) + "*"
    out = _UUID.sub("*", seg)
    out = _HEX.sub("*", out)
    return _DIGITS.sub("*", out)


def _safe_segment(seg: str) -> str:
    """A path segment made valid as a pattern segment (no [...] classes, no '**' inside)."""
    seg = seg.replace("[", "?").replace("]", "?")
    while "**" in seg:
        seg = seg.replace("**", "*")
    return seg


def _safe_path(p: str) -> str:
    return "/".join(_safe_segment(s) for s in p.split("/"))


def _ext(name: str) -> str:
    base = name.lstrip(".")
    dot = base.rfind(".")
    if dot <= 0:
        return ""
    ext = base[dot:]
    return "" if "*" in ext or "?" in ext else ext


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)  # concrete paths ending here


def fold_paths(
    paths: dict[str, Seen],
    *,
    at: int = FOLD_AT,
    fold: bool = True,
    allowed: Callable[[str], bool] = lambda pattern: True,
) -> list[Entry]:
    """Paths into globs: random names -> ``tmp*``; ``at``+ files in one directory -> ``dir/*``
    (``dir/*.ext`` when they share an extension); ``at``+ subdirectories -> ``dir/**``.
    ``allowed(pattern)`` vetoes a wildcard (it would cover something it must not): the
    paths under it are then folded tighter, or listed."""
    if not fold:
        return [Entry(_safe_path(p), s) for p, s in sorted(paths.items())]

    def ok(pattern: str) -> bool:  # a write entry beats default.sensitive-write
        return not covers_sensitive(pattern) and allowed(pattern)

    root = _Node()
    for p in paths:
        node = root
        for seg in p.split("/")[1:]:
            node = node.children.setdefault(_safe_segment(random_segment(seg)), _Node())
        node.members.append(p)

    def here(pattern: str, members: list[str]) -> list[Entry]:
        if not members:
            return []
        if members == [pattern]:
            return [Entry(pattern, paths[pattern])]
        if ok(pattern):
            return [
                Entry(
                    pattern,
                    _merged(paths[m] for m in members),
                    sorted(members),
                    "paths",
                    "random temporary names",
                )
            ]
        return [Entry(_safe_path(m), paths[m]) for m in sorted(members)]

    def walk(node: _Node, prefix: str, depth: int) -> list[Entry]:
        subdirs = {k: c for k, c in node.children.items() if c.children}
        leaves = {k: c for k, c in node.children.items() if not c.children}
        if depth >= 1 and len(subdirs) >= at and ok(prefix + "/**"):
            every = sorted(_all_members(node))
            return [Entry(prefix + "/**", _merged(paths[m] for m in every), every, "paths")]
        out = here(prefix, node.members) if depth >= 1 else []
        for k in sorted(subdirs):
            out.extend(walk(subdirs[k], prefix + "/" + k, depth + 1))
        if depth >= 1 and len(leaves) >= at:
            exts = {_ext(k) for k in leaves}
            pattern = prefix + "/*" + (exts.pop() if len(exts) == 1 else "")
            if ok(pattern):
                ms = sorted(m for c in leaves.values() for m in c.members)
                return [*out, Entry(pattern, _merged(paths[m] for m in ms), ms, "paths")]
        for k in sorted(leaves):
            out.extend(here(prefix + "/" + k, leaves[k].members))
        return out

    return walk(root, "", 0)


def _all_members(node: _Node) -> list[str]:
    out = list(node.members)
    for c in node.children.values():
        out.extend(_all_members(c))
    return out


def _sensitive_samples(pattern: str) -> list[str]:
    """Concrete sensitive paths shaped like ``pattern`` (does a wildcard cover one?)."""
    psegs = pattern.split("/")
    out: list[str] = []
    for s in SENSITIVE_WRITE:
        sample: list[str] = []
        for i, seg in enumerate(s.split("/")):
            if "*" in seg or "?" in seg:
                lit = psegs[i] if i < len(psegs) else ""
                sample.append(lit if lit and "*" not in lit and "?" not in lit else "x")
            else:
                sample.append(seg)
        out.append("/".join(sample))
    return out


def covers_sensitive(pattern: str) -> bool:
    """Would a write entry ``pattern`` also allow writing a sensitive file?"""
    globs = PathGlobs([pattern])
    return any(globs.match(s) for s in _sensitive_samples(pattern))


def fold_aws(actions: dict[str, Seen], *, at: int = AWS_FOLD_AT) -> list[Entry]:
    """List actions; fold Describe*/List* operations of one service only from ``at`` on,
    and never for identity and secret services. Get*, Put*, Delete*... are always listed."""
    by_service: dict[str, list[str]] = {}
    for a in actions:
        by_service.setdefault(a.partition(":")[0], []).append(a)
    out: list[Entry] = []
    for svc, acts in sorted(by_service.items()):
        rest = set(acts)
        if svc.lower() not in AWS_NEVER_FOLD:
            for verb in ("Describe", "List"):
                group = sorted(a for a in rest if _verb(a.partition(":")[2]) == verb)
                if len(group) >= at:
                    rest -= set(group)
                    out.append(
                        Entry(
                            f"{svc}:{verb}*",
                            _merged(actions[a] for a in group),
                            group,
                            "operations",
                            "read-only",
                        )
                    )
        out.extend(Entry(a, actions[a]) for a in sorted(rest))
    return out


def _verb(op: str) -> str:
    for i, c in enumerate(op[1:], 1):
        if c.isupper():
            return op[:i]
    return op


# -- learning ----------------------------------------------------------------------------------
def _both(rule_text: str) -> str:
    return (
        f"seen allowed, but also firing {rule_text}: an allow entry would switch that "
        "rule off for it"
    )


def _rule_text(rule: str | None) -> str:
    info = DEFAULT_RULES.get(rule or "")
    return f"{rule} ({info[1]})" if info else str(rule)


def _seen_of(events: Iterable[Event]) -> Seen:
    s = Seen()
    for e in events:
        s.add(e)
    return s


class _Learner:
    def __init__(self, corpus: Corpus, fold: bool) -> None:
        self.corpus = corpus
        self.fold = fold
        self.withheld: set[int] = set()
        self.allowed: dict[str, list[Event]] = {}
        self.alerts: dict[str, list[Event]] = {}
        for e in corpus.events:
            (self.alerts if e.builtin else self.allowed).setdefault(e.kind, []).append(e)

    def withhold(self, events: Iterable[Event]) -> Seen:
        evs = list(events)
        self.withheld.update(id(e) for e in evs)
        return _seen_of(evs)

    def run(self) -> Learned:
        corpus = self.corpus
        sections = [
            self.egress(),
            self.dns(),
            self.files(),
            self.process(),
            self.native(),
            self.aws(),
        ]
        warnings: list[str] = []
        if corpus.events and not corpus.learn_lines:
            warnings.append(
                "none of these lines was recorded in learn mode: outside learn mode the sensor "
                "logs only alerts, so what it allowed is missing here; run the function with "
                "RAMPARTS_MODE=learn and learn from those logs"
            )
        for obj in corpus.tamper:
            warnings.append(
                f"tampering seen while learning: {obj.get('rule')}: "
                f"{_c(str(obj.get('detail', '')), 120)}"
            )
        if corpus.policy_errors:
            warnings.append(
                "the sensor rejected the policy in force while learning: "
                + _c("; ".join(corpus.policy_errors[:3]), 200)
            )
        for section in sections:
            for block in section.blocks:
                for left in block.left:
                    if left.both:
                        warnings.append(
                            f"{section.name}: {_c(left.detail, 120)} not learned: " + left.reason
                        )
        excluded: Counter[str] = Counter(
            e.rule for evs in self.alerts.values() for e in evs if e.rule
        )
        return Learned(sections, corpus, warnings, excluded, self.withheld)

    # -- egress ------------------------------------------------------------------------------
    def egress(self) -> Section:
        hosts: dict[str, dict[int, Seen]] = {}
        ips: dict[str, dict[int, list[Event]]] = {}
        loopback: dict[str, Seen] = {}
        unix: dict[str, Seen] = {}
        sdk: dict[str, Seen] = {}
        block = Block(
            "allow",
            empty_note=(
                "nothing seen: every connection (other than loopback and the AWS SDK's) is "
                "reported; remove the egress section to have no egress allowlist"
            ),
        )
        for ev in self.allowed.get("network.connect", []):
            f = ev.fields
            if "path" in f:
                unix.setdefault(str(f["path"]), Seen()).add(ev)
                continue
            addr = _parse_ip(f.get("ip"))
            if addr is None or f.get("op") == "socket":
                continue
            port = int(f["port"])
            host = _host_field(f)
            if _net.is_loopback(addr):
                loopback.setdefault(f"{addr.text}:{port}", Seen()).add(ev)
            elif _net.credential_endpoint(addr) is not None:
                # allowed only because the policy in force listed it; an entry switches
                # default.credential-endpoint off: a person's decision to make again
                block.left.append(
                    Left(
                        _cidr_value(addr.text, [port]),
                        "a credential endpoint, allowed only by the "
                        "policy in force while learning; add it back by hand if it is needed",
                        self.withhold([ev]),
                        addr.text,
                        attack=False,
                    )
                )
            elif host is not None and self.corpus.aws_covered(ev, host):
                sdk.setdefault(host, Seen()).add(ev)
            elif host is not None:
                hosts.setdefault(host, {}).setdefault(port, Seen()).add(ev)
            else:
                ips.setdefault(addr.text, {}).setdefault(port, []).append(ev)
        by_ports: dict[tuple[int, ...], dict[str, Seen]] = {}
        for h, per_port in hosts.items():
            by_ports.setdefault(tuple(sorted(per_port)), {})[h] = _merged(per_port.values())
        entries: list[Entry] = []
        for ports, group in by_ports.items():
            folded = (
                fold_hosts(group) if self.fold else [Entry(h, s) for h, s in sorted(group.items())]
            )
            for e in folded:
                pattern = str(e.value)
                e.value = _host_value(pattern, list(ports))
                if any(m.endswith(AWS_SUFFIXES) for m in (e.members or [pattern])):
                    e.notes.append("an AWS endpoint reached outside an AWS SDK call")
                entries.append(e)
        # a CIDR entry switches default.credential-endpoint off for its addresses
        alerted = {
            (str(a.fields.get("ip")), a.fields.get("port")): a
            for a in self.alerts.get("network.connect", [])
            if "ip" in a.fields
        }
        for ip, by_port in ips.items():
            hit = next((alerted[(ip, p)] for p in by_port if (ip, p) in alerted), None)
            value = _cidr_value(ip, sorted(by_port))
            evs = [e for port_evs in by_port.values() for e in port_evs]
            if hit is not None:
                block.left.append(
                    Left(value, _both(_rule_text(hit.rule)), self.withhold(evs), ip, both=True)
                )
            else:
                entries.append(Entry(value, _seen_of(evs)))
        block.entries = sorted(entries, key=_sort_key)
        block.left.extend(_alert_lefts(self.alerts.get("network.connect", []), _connect_candidate))
        notes = []
        if loopback:
            notes.append("Not listed, always allowed: loopback, " + _examples(loopback))
        if sdk:
            notes.append(
                "Not listed, covered by the aws section: AWS endpoints the AWS SDK "
                "reached inside AWS calls: " + _examples(sdk)
            )
        if unix:
            notes.append("Not listed, not governed by egress: unix sockets, " + _examples(unix))
        return Section(
            "egress",
            ["Outbound connections: 'host:port', {host, ports} or {cidr, ports}."],
            [block],
            notes,
        )

    # -- dns ---------------------------------------------------------------------------------
    def dns(self) -> Section:
        names: dict[str, Seen] = {}
        sdk: dict[str, Seen] = {}
        local: dict[str, Seen] = {}
        for ev in self.allowed.get("network.dns", []):
            host = _safe_host(normalise_host(str(ev.fields["host"])))
            if not host:
                continue
            if host == "localhost" or host.endswith(".localhost"):
                local.setdefault(host, Seen()).add(ev)
            elif self.corpus.aws_covered(ev, host):
                sdk.setdefault(host, Seen()).add(ev)
            else:
                names.setdefault(host, Seen()).add(ev)
        entries = (
            fold_hosts(names) if self.fold else [Entry(h, s) for h, s in sorted(names.items())]
        )
        block = Block(
            "allow",
            sorted(entries, key=_sort_key),
            empty_note=(
                "nothing seen: every name look-up (other than localhost and the AWS SDK's) is "
                "reported"
            ),
        )
        block.left = _alert_lefts(
            self.alerts.get("network.dns", []), lambda ev: (str(ev.fields.get("host")), "")
        )
        notes = []
        if local:
            notes.append("Not listed, always allowed: " + _examples(local))
        if sdk:
            notes.append(
                "Not listed, covered by the aws section: look-ups the AWS SDK made "
                "inside AWS calls: " + _examples(sdk)
            )
        return Section("dns", ["Name look-ups: host patterns."], [block], notes)

    # -- files -------------------------------------------------------------------------------
    def files(self) -> Section:
        writes = self.allowed.get("file.write", [])
        write_alerts = self.alerts.get("file.write", [])
        paths: dict[str, Seen] = {}
        ops: dict[str, set[str]] = {}
        for ev in writes:
            p = str(ev.fields["path"])
            paths.setdefault(p, Seen()).add(ev)
            ops.setdefault(p, set()).add(str(ev.fields.get("op", "write")))
        # a write entry switches default.sensitive-write and default.write-outside-tmp off
        # for what it matches: no wildcard may cover a path that alerted, or a sensitive file
        # (a hard link to a sensitive file alerts whatever the policy says)
        overridable = [
            a
            for a in write_alerts
            if not (a.fields.get("op") == "link" and a.rule == "default.sensitive-write")
        ]

        def allowed(pattern: str) -> bool:
            globs = PathGlobs([pattern])
            return not any(globs.match(str(a.fields["path"])) for a in overridable)

        wblock = Block(
            "write",
            empty_note=(
                "nothing seen: every write is reported, /tmp included; remove 'write' to fall "
                "back to the built-in rule (writes only under /tmp)"
            ),
        )
        for e in fold_paths(paths, fold=self.fold, allowed=allowed):
            globs = PathGlobs([str(e.value)])
            hit = next((a for a in overridable if globs.match(str(a.fields["path"]))), None)
            if hit is not None:  # the same path seen allowed and alerting
                evs = [w for w in writes if globs.match(str(w.fields["path"]))]
                wblock.left.append(
                    Left(
                        e.value,
                        _both(_rule_text(hit.rule)),
                        self.withhold(evs),
                        str(e.value),
                        both=True,
                    )
                )
                continue
            if not e.members:
                e.notes.append("ops: " + ", ".join(sorted(ops.get(str(e.value), ()))))
                if sensitive_write(str(e.value)):
                    e.notes.append("a sensitive file, allowed by the policy in force")
            wblock.entries.append(e)
        wblock.entries.sort(key=_sort_key)
        wblock.left.extend(
            _alert_lefts(write_alerts, lambda ev: (_alert_path(ev), str(ev.fields.get("op", ""))))
        )
        read_alerts = self.alerts.get("file.read", [])
        alert_paths = {str(a.fields["path"]) for a in read_alerts}
        reads: dict[str, list[Event]] = {}
        for ev in self.allowed.get("file.read", []):
            reads.setdefault(str(ev.fields["path"]), []).append(ev)
        rblock = Block("read", emit_empty=False)
        for p, evs in sorted(reads.items()):
            if p in alert_paths:
                rblock.left.append(
                    Left(
                        _safe_path(p),
                        _both(_rule_text("default.sensitive-read")),
                        self.withhold(evs),
                        p,
                        both=True,
                    )
                )
            else:
                rblock.entries.append(Entry(_safe_path(p), _seen_of(evs)))
        rblock.left.extend(_alert_lefts(read_alerts, lambda ev: (_alert_path(ev), "")))
        return Section(
            "files",
            [
                "Writes (create, write, delete, rename, chmod, ...): once 'write' is set, only",
                "these paths may be written, /tmp included. Reads are checked only for sensitive",
                "files (credentials, secrets); 'read' exempts some of them.",
            ],
            [wblock, rblock],
        )

    # -- process -----------------------------------------------------------------------------
    def process(self) -> Section:
        events = self.allowed.get("process.spawn", [])
        alerts = self.alerts.get("process.spawn", [])
        exes: dict[str, list[Event]] = {}
        relative: dict[str, list[Event]] = {}
        for ev in events:
            for prog in _programs(ev):
                (exes if prog.startswith("/") else relative).setdefault(prog, []).append(ev)
        block = Block("allow", empty_note="nothing seen: every program run is reported")
        # an entry switches the built-in process rules off for its program: a program seen
        # alerting (python -c ..., a shell) is not allowed even if it also ran normally
        for ev in alerts:
            progs = _programs(ev)
            if ev.rule == "default.preload" or not progs or not all(p in exes for p in progs):
                continue  # no allow entry could silence it
            for p in progs:
                if p in exes:
                    block.left.append(
                        Left(
                            _safe_path(p),
                            _both(_rule_text(ev.rule)),
                            self.withhold(exes.pop(p)),
                            p,
                            both=True,
                        )
                    )
        for p, evs in sorted(exes.items()):
            block.entries.append(Entry(_safe_path(p), _seen_of(evs)))
        block.left.extend(
            _alert_lefts(
                alerts,
                lambda ev: (
                    _safe_path(str(ev.fields["executable"])),
                    "argv: " + " ".join(_strings(ev.fields.get("argv")))[:100],
                ),
            )
        )
        block.left.extend(
            _alert_lefts(
                self.alerts.get("process.env", []),
                lambda ev: (
                    None,
                    f"{ev.fields.get('variable')}={str(ev.fields.get('value', ''))[:60]}",
                ),
            )
        )
        for p, evs in sorted(relative.items()):
            block.left.append(
                Left(
                    None,
                    "not an absolute path: the sensor could not resolve the program",
                    self.withhold(evs),
                    p,
                    attack=False,
                )
            )
        return Section(
            "process",
            [
                "Programs run, by resolved path. An entry switches the built-in process rules",
                "(shell, network tool, inline code, writable directory) off for that program.",
            ],
            [block],
        )

    # -- native ------------------------------------------------------------------------------
    def native(self) -> Section:
        alerts = self.alerts.get("native.load", [])
        libs: dict[str, list[Event]] = {}
        imports: dict[str, Seen] = {}
        for ev in self.allowed.get("native.load", []):
            lib = ev.fields.get("library")
            if not isinstance(lib, str) or not lib:
                continue
            if ev.fields.get("op") == "dlopen":
                libs.setdefault(lib, []).append(ev)
            else:
                imports.setdefault(lib, Seen()).add(ev)
        block = Block("allow", empty_note="nothing seen: every ctypes library load is reported")
        for lib, evs in sorted(libs.items()):
            value = _safe_path(lib) if lib.startswith("/") else _safe_host(lib)
            hit = next(
                (
                    a
                    for a in alerts
                    if a.fields.get("op") == "dlopen"
                    and isinstance(a.fields.get("library"), str)
                    and _native_match(value, a.fields["library"])
                ),
                None,
            )
            if hit is not None:  # a name entry would also allow that library from /tmp
                block.left.append(
                    Left(value, _both(_rule_text(hit.rule)), self.withhold(evs), lib, both=True)
                )
            else:
                block.entries.append(Entry(value, _seen_of(evs)))
        block.left.extend(
            _alert_lefts(
                alerts,
                lambda ev: (
                    ev.fields.get("library") if ev.fields.get("op") == "dlopen" else None,
                    f"{ev.fields.get('op')} {ev.fields.get('library')}"
                    + (f" {ev.fields['symbol']}()" if ev.fields.get("symbol") else ""),
                ),
            )
        )
        notes = []
        if imports:
            dirs = Counter(lib.rsplit("/", 1)[0] for lib in imports)
            shown = ", ".join(_c(d, 100) for d, _ in dirs.most_common(3))
            more = f" and {len(dirs) - 3} more" if len(dirs) > 3 else ""
            notes.append(
                "Not listed, not governed by native.allow: "
                f"{plural(len(imports), 'extension module')} imported the usual way, "
                f"from {shown}{more}"
            )
        return Section(
            "native",
            [
                "Libraries loaded with ctypes: absolute path globs, or library-name patterns (a",
                "name matches a library of that name in any directory).",
            ],
            [block],
            notes,
        )

    # -- aws ---------------------------------------------------------------------------------
    def aws(self) -> Section:
        actions: dict[str, Seen] = {}
        regions: dict[str, set[str]] = {}
        for ev in self.allowed.get("aws.call", []):
            action = _action(ev.fields)
            actions.setdefault(action, Seen()).add(ev)
            region = ev.fields.get("region")
            if isinstance(region, str) and region:
                regions.setdefault(action, set()).add(region)
        entries = (
            fold_aws(actions) if self.fold else [Entry(a, s) for a, s in sorted(actions.items())]
        )
        for e in entries:
            rs: set[str] = set()
            for m in e.members or [str(e.value)]:
                rs |= regions.get(m, set())
            if rs:
                e.notes.append("regions: " + ", ".join(sorted(rs)))
        block = Block("allow", entries, empty_note="nothing seen: every AWS call is reported")
        return Section("aws", ["AWS API calls as IAM actions, service:Operation."], [block])


def learn(corpus: Corpus, *, fold: bool = True) -> Learned:
    """The least-privilege policy for what ``corpus`` recorded (``fold=False``: no wildcards)."""
    return _Learner(corpus, fold).run()


def _parse_ip(value: Any) -> _net.Address | None:
    """An IP literal from a log field (any junk: None)."""
    if not isinstance(value, str) or not value.strip("[] \t"):
        return None
    try:
        return _net.parse_ip(value)
    except (ValueError, IndexError):
        return None


def _host_field(f: dict[str, Any]) -> str | None:
    host = f.get("host")
    if not isinstance(host, str):
        return None
    return _safe_host(normalise_host(host)) or None


_PROC_PID = re.compile(r"^/proc/\d+/(task/\d+/)?")


def _alert_path(ev: Event) -> str:
    """The path of an alert, one line for every process (``/proc/*/environ``)."""
    path = _safe_path(str(ev.fields["path"]))
    return _PROC_PID.sub(lambda m: "/proc/*/" + ("task/*/" if m.group(1) else ""), path)


def _safe_host(h: str) -> str:
    return h.replace("[", "").replace("]", "")


def _action(f: dict[str, Any]) -> str:
    action = f.get("action")
    if isinstance(action, str) and ":" in action:
        return action
    return f"{f.get('service')}:{f['operation']}"


def _alert_lefts(
    alerts: list[Event], candidate: Callable[[Event], tuple[Any | None, str]]
) -> list[Left]:
    """Built-in alerts as commented-out lines, one per (rule, would-be entry, detail)."""
    groups: dict[tuple[str, str], tuple[Any | None, str, list[Event]]] = {}
    for ev in alerts:
        value, detail = candidate(ev)
        key = (ev.rule or "", json.dumps(value, sort_keys=True) + "\0" + detail)
        groups.setdefault(key, (value, detail, []))[2].append(ev)
    return [
        Left(value, _rule_text(rule), _seen_of(evs), detail)
        for (rule, _k), (value, detail, evs) in sorted(groups.items(), key=lambda kv: kv[0])
    ]


_PLAIN_HOST = re.compile(r"[A-Za-z0-9*?._-]+")


def _host_value(pattern: str, ports: list[int]) -> Any:
    """``host:port``, or ``{host, ports}`` for several ports or an unusual name (a name
    with ':' or '/' in the string form would be read as an address)."""
    if len(ports) == 1 and _PLAIN_HOST.fullmatch(pattern):
        return f"{pattern}:{ports[0]}"
    return {"host": pattern, "ports": ports}


def _cidr_value(ip: str, ports: list[int]) -> dict[str, Any]:
    addr = _parse_ip(ip)
    bits = 32 if addr is None or addr.family == _net.AF_INET else 128
    return {"cidr": f"{addr.text if addr else ip}/{bits}", "ports": ports}


def _connect_candidate(ev: Event) -> tuple[Any | None, str]:
    f = ev.fields
    if f.get("op") == "socket" or "ip" not in f:
        return None, f"raw socket (family {f.get('family')})"
    host = _host_field(f)
    if host is not None:
        return _host_value(host, [int(f["port"])]), f"{host} is {f['ip']}"
    return _cidr_value(str(f["ip"]), [int(f["port"])]), ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _programs(ev: Event) -> list[str]:
    progs = _strings(ev.fields.get("programs"))
    return progs or [str(ev.fields["executable"])]


def _native_match(entry: str, library: str) -> bool:
    if entry.startswith("/"):
        return library.startswith("/") and PathGlobs([entry]).match(library)
    return entry == library.rsplit("/", 1)[-1]


def _sort_key(e: Entry) -> tuple[int, str]:
    v = e.value
    if isinstance(v, dict):
        return (1 if "cidr" in v else 0, str(v.get("host") or v.get("cidr")).lstrip("*."))
    return (0, str(v).lstrip("*."))


def _examples(items: dict[str, Seen], n: int = 3) -> str:
    names = sorted(items)
    shown = ", ".join(_c(x, 80) for x in names[:n])
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return f"{shown}{more} ({_merged(items.values()).text()})"


# -- rendering ---------------------------------------------------------------------------------
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@+=*?-]*")
_RESERVED = frozenset({"true", "false", "null", "~", "yes", "no", "on", "off", "y", "n"})


def yaml_str(s: str) -> str:
    """``s`` as a YAML scalar that ramparts._yaml (and other YAML parsers) read back exactly:
    plain when that is unambiguous, else double-quoted with every risky character escaped
    (log content is untrusted: a newline must never start a new entry)."""
    if _PLAIN.fullmatch(s) and not s.endswith(":") and s.lower() not in _RESERVED:
        return s
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append("\\u0022")
        elif ch == "\\":
            out.append("\\u005c")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append("?")
    out.append('"')
    return "".join(out)


def yaml_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, bool) or v is None:
        return "true" if v is True else "false" if v is False else "null"
    if isinstance(v, int):
        return str(v)
    return yaml_str(str(v))


def _c(s: str, limit: int = 200) -> str:
    """Text safe inside a comment: one line, printable (log content is untrusted)."""
    out = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _wrap(text: str, prefix: str, cont: str | None = None, width: int = 96) -> list[str]:
    """Comment lines of at most ``width`` columns (long words are never broken)."""
    import textwrap

    return textwrap.wrap(
        text,
        width=width,
        initial_indent=prefix,
        subsequent_indent=cont if cont is not None else prefix,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [prefix.rstrip()]


def _when(ms: int | None) -> str:
    if ms is None:
        return "?"
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))
    except (OverflowError, OSError, ValueError):
        return "?"


def _render(learned: Learned) -> str:
    c = learned.corpus
    w: list[str] = []
    add = w.append
    add("# Ramparts policy learned by `ramparts policy learn` from what learn mode recorded.")
    add("#")
    srcs = ", ".join(f"{_c(s.name, 60)} ({plural(s.ramparts, 'line')})" for s in c.sources[:4])
    if len(c.sources) > 4:
        srcs += f" and {len(c.sources) - 4} more files"
    add(f"#   from:     {srcs}")
    add(
        f"#   recorded: {plural(len(c.events), 'event')} in "
        f"{plural(len(c.invocations), 'invocation')} across "
        f"{plural(len(c.sandboxes), 'sandbox')}, {_when(c.first_ms)} to {_when(c.last_ms)}"
    )
    skipped = [f"{plural(c.other_lines, 'other line')} ignored"]
    if c.malformed:
        skipped.append(f"{plural(len(c.malformed), 'malformed Ramparts line')} skipped")
    if c.duplicates:
        skipped.append(f"{plural(c.duplicates, 'duplicate line')} counted once")
    add("#   skipped:  " + "; ".join(skipped))
    add("#")
    add("# It allows what the function did while learning, and nothing more. To use it:")
    add("#   1. Review every entry; a wildcard says what it was folded from.")
    add("#   2. ramparts policy check THIS_FILE")
    add("#   3. Deploy it (RAMPARTS_POLICY=THIS_FILE) and remove RAMPARTS_MODE=learn, which")
    add("#      overrides the mode below. In monitor mode whatever the policy does not allow")
    add("#      is logged as an alert, and nothing is blocked.")
    add("#   4. When monitor logs show only alerts you expect, enforce: `mode: enforce` below,")
    add("#      or `mode: enforce` in one section at a time (egress first, say), or")
    add("#      RAMPARTS_MODE=enforce on the function. Enforce blocks only the offending")
    add("#      operation (it raises PermissionError), never the whole invocation.")
    if learned.excluded:
        add("#")
        add(
            f"# WARNING: {plural(sum(learned.excluded.values()), 'event')} fired built-in "
            "rules while learning and were NOT learned;"
        )
        add("# they are the commented-out lines marked NOT LEARNED. Investigate them first:")
        for rule, n in sorted(learned.excluded.items()):
            add(f"#   {_c(_rule_text(rule), 150)}: {plural(n, 'event')}")
    for warning in learned.warnings:
        add("#")
        w.extend(_wrap("WARNING: " + _c(warning, 600), "# "))
    add("version: 1")
    add("mode: monitor")
    for section in learned.sections:
        add("")
        add(f"{section.name}:")
        for line in section.intro:
            add(f"  # {line}")
        for note in section.notes:
            w.extend(_wrap(_c(note, 600), "  # "))
        for block in section.blocks:
            if not block.entries and not block.left and not block.emit_empty:
                continue
            if block.entries:
                add(f"  {block.key}:")
            else:
                add(f"  {block.key}: []")
                if block.empty_note and block.emit_empty:
                    w.extend(_wrap(block.empty_note, "  # "))
            for e in block.entries:
                if e.members:
                    shown = ", ".join(_c(m, 100) for m in e.members[:4])
                    more = f" and {len(e.members) - 4} more" if len(e.members) > 4 else ""
                    why = f" ({e.fold_note})" if e.fold_note else ""
                    add(f"    # folded from {len(e.members)} {e.fold}{why}: {shown}{more}")
                tail = "; ".join([e.seen.text(), *e.notes])
                add(f"    - {yaml_value(e.value)}  # {_c(tail, 300)}")
            for left in block.left:
                label = "NOT LEARNED" if left.attack else "not learned"
                detail = f": {_c(left.detail, 160)}" if left.detail else ""
                w.extend(_wrap(f"{label}, {_c(left.reason, 300)}{detail}", "    # ", "    #   "))
                if left.value is not None:
                    add(f"    # - {yaml_value(left.value)}  # {left.seen.text()}")
                else:
                    add(f"    #   {left.seen.text()}")
    return "\n".join(w) + "\n"


# -- checking a policy against what was recorded ----------------------------------------------
def expected_rule(policy: Policy, ev: Event, corpus: Corpus) -> str | None:
    """The rule the sensor would give ``ev`` under ``policy`` (None: allowed), as far as its
    log line tells: the sensor's own checks in its order (see ramparts/_sensor.py)."""
    f = ev.fields
    kind = ev.kind
    builtin = ev.rule if ev.builtin else None
    if kind == "network.connect":
        addr = _parse_ip(f.get("ip"))
        if "path" in f:
            return None
        if addr is None or f.get("op") == "socket" or builtin == "default.runtime-api":
            return builtin
        port = int(f["port"])
        if _net.credential_endpoint(addr) is not None:
            explicit = policy.egress is not None and any(
                e.cidr is not None
                and e.cidr.contains(addr)
                and (e.ports is None or port in e.ports)
                for e in policy.egress
            )
            return None if explicit else "default.credential-endpoint"
        if _net.is_loopback(addr):
            return None
        host = _host_field(f)
        if host is not None and corpus.aws_covered(ev, host):
            return None
        if policy.egress is not None and not policy.egress_allows(host, addr, port):
            return "policy.egress"
        return None
    if kind == "network.dns":
        name = normalise_host(str(f["host"]))
        if name == "localhost" or name.endswith(".localhost"):
            return None
        if name in _net.CREDENTIAL_NAMES:
            return "default.credential-endpoint"
        if corpus.aws_covered(ev, name):
            return None
        if policy.dns_restricted() and not policy.dns_allows(name):
            return "policy.dns"
        return None
    if kind == "file.write":
        path = str(f["path"])
        if f.get("op") == "link" and builtin == "default.sensitive-write":
            return builtin
        explicit = policy.write is not None and policy.write.match(path)
        if builtin == "default.sensitive-write" or sensitive_write(path):
            return None if explicit else "default.sensitive-write"
        if policy.write is not None:
            return None if explicit else "policy.files.write"
        in_tmp = path == "/tmp" or path.startswith("/tmp/")  # noqa: S108 (the sensor's rule)
        return None if in_tmp else "default.write-outside-tmp"
    if kind == "file.read":
        return None if policy.read.match(str(f["path"])) else "default.sensitive-read"
    if kind == "process.spawn":
        if builtin == "default.preload":
            return builtin
        procs = policy.process
        if procs is not None and all(procs.match(p) for p in _programs(ev)):
            return None
        return builtin or ("policy.process" if procs is not None else None)
    if kind == "process.env":
        return "default.preload"
    if kind == "native.load":
        lib = f.get("library")
        if f.get("op") != "dlopen" or not isinstance(lib, str):
            return builtin
        restricted = policy.native_paths is not None or bool(policy.native_names)
        if restricted and policy.native_allows(lib):
            return None
        return builtin or ("policy.native" if restricted else None)
    if kind == "aws.call":
        if policy.aws is None:
            return None
        action = _action(f)
        prefix = action.partition(":")[0]
        names = (str(f.get("service") or prefix).lower(), prefix.lower())
        return None if policy.aws_allows(names, str(f["operation"])) else "policy.aws"
    return builtin


@dataclass
class Verification:
    missing: list[tuple[Event, str]]  # learned events the policy would report, and the rule
    silenced: list[Event]  # built-in alerts the policy's allow entries would switch off

    @property
    def ok(self) -> bool:
        return not self.missing and not self.silenced


def verify(policy: Policy, corpus: Corpus, *, skip: set[int] | None = None) -> Verification:
    """Every allowed event (but those in ``skip``) allowed, and no built-in alert silenced."""
    missing: list[tuple[Event, str]] = []
    silenced: list[Event] = []
    for ev in corpus.events:
        rule = expected_rule(policy, ev, corpus)
        if ev.builtin:
            if rule is None:
                silenced.append(ev)
        elif rule is not None and (skip is None or id(ev) not in skip):
            missing.append((ev, rule))
    return Verification(missing, silenced)


def describe(ev: Event) -> str:
    """One line about an event, for messages."""
    f = ev.fields
    if ev.kind == "network.connect":
        target = f.get("path") or f"{f.get('host') or f.get('ip')}:{f.get('port')}"
    elif ev.kind in ("file.write", "native.load"):
        target = f"{f.get('op')} {f.get('path') or f.get('library')}"
    else:
        target = (
            f.get("host")
            or f.get("path")
            or f.get("executable")
            or f.get("variable")
            or f.get("action")
            or f.get("operation")
        )
    return f"{ev.kind} {_c(str(target), 160)} ({ev.where})"


def malformed_lines(corpus: Corpus, limit: int = _MAX_MALFORMED_SHOWN) -> Iterator[str]:
    for where, reason in corpus.malformed[:limit]:
        yield f"{where}: malformed Ramparts line skipped: {reason}"
    if len(corpus.malformed) > limit:
        yield f"... and {len(corpus.malformed) - limit} more malformed Ramparts lines"
