"""``ramparts policy``: learn a policy from learn-mode logs, check a policy file.

``ramparts policy learn LOGFILE... [-o OUT]`` reads what the sensor logged in learn mode
(raw lines, CloudWatch console/``aws logs tail`` lines, subscription or ``filter-log-events``
exports, gzipped or not) and writes a least-privilege policy in the YAML subset the sensor
reads, starting in monitor mode. ``ramparts policy check FILE`` validates a policy, explains
each error with where it is and what to do, and summarises what the policy allows.

The format and the workflow are in ``docs/policy.md``; the work is in :mod:`._learn`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, TextIO

from ramparts_cli.errors import CliError

if TYPE_CHECKING:
    import argparse

    from ramparts._policy import Policy

__all__ = ["check_text", "explain", "register"]

MAX_POLICY_BYTES = 1 << 20  # the sensor reads no more of a policy file than this

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="learn a least-privilege policy from learn-mode logs; check a policy file",
        description="Learn a policy from what the sensor recorded in learn mode, and check "
        "policy files. See docs/policy.md for the format and the learn -> check -> enforce "
        "workflow.",
    )
    sub = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    sub.required = True

    learn = sub.add_parser(
        "learn",
        help="turn learn-mode logs into a least-privilege policy",
        description=(
            "Read the sensor's learn-mode logs (from one or many sandboxes and invocations) "
            "and write a least-privilege policy in monitor mode, each entry with how often it "
            "was seen. Accepts raw sensor lines, CloudWatch lines with timestamp/request-id "
            "prefixes, `aws logs tail` output, CloudWatch Logs subscription records and "
            "`aws logs filter-log-events` exports, gzipped or not; other lines are ignored "
            "and counted. Events that fired a built-in rule are never learned: they appear as "
            "commented-out lines with a warning. Exit status: 0 on success, 1 when the logs "
            "hold no Ramparts events, 2 when a file cannot be read."
        ),
    )
    learn.add_argument("logs", nargs="+", metavar="LOGFILE", help="a log file; - for stdin")
    learn.add_argument(
        "-o", "--output", metavar="OUT", help="write the policy here (default: stdout)"
    )
    learn.add_argument(
        "--no-fold",
        dest="fold",
        action="store_false",
        help="list every host, path and action exactly: no wildcards",
    )
    learn.set_defaults(func=run_learn)

    check = sub.add_parser(
        "check",
        help="validate a policy file and explain every error",
        description=(
            "Validate a policy (YAML or JSON) the way the sensor does. Every error is printed "
            "with its location (e.g. egress.allow[2].ports[0]) and a hint; a valid policy is "
            "summarised (entries and mode per section). Exit status: 0 valid, 1 invalid, "
            "2 unreadable."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the policy file; - for stdin")
    check.add_argument(
        "--env-mode",
        choices=("off", "monitor", "enforce", "learn"),
        metavar="MODE",
        help="show the modes in effect when the function sets RAMPARTS_MODE=MODE "
        "(off, monitor, enforce, learn)",
    )
    check.set_defaults(func=run_check)


# -- learn ---------------------------------------------------------------------------------------
def run_learn(args: argparse.Namespace) -> int:
    from ramparts._policy import PolicyError, build, parse_text

    from ramparts_cli import _learn

    corpus = _learn.read_logs(args.logs)
    for line in _learn.malformed_lines(corpus):
        print(f"ramparts: {line}", file=sys.stderr)
    if not corpus.events:
        raise CliError(
            f"no Ramparts events in {', '.join(args.logs)} ({corpus.ramparts_lines} Ramparts "
            f"lines, {corpus.other_lines} other lines, {len(corpus.malformed)} malformed)",
            hint="run the function with RAMPARTS_MODE=learn for a while, then export its log "
            "group, e.g. aws logs tail /aws/lambda/NAME --since 1d > learn.log",
            exit_code=1,
        )
    learned = _learn.learn(corpus, fold=args.fold)
    text = learned.render()
    # The output must be a policy the sensor accepts and that allows what was learned.
    try:
        policy = build(parse_text(text, "learned policy"), "learned policy")
    except PolicyError as exc:  # a bug here, never the user's doing
        raise CliError(
            f"the learned policy does not validate: {exc}",
            hint="please report this with the log lines that produced it",
        ) from None
    report = _learn.verify(policy, corpus, skip=learned.withheld)
    for ev, rule in report.missing[:10]:
        print(
            f"ramparts: warning: the learned policy would report {_learn.describe(ev)} ({rule})",
            file=sys.stderr,
        )
    for ev in report.silenced[:10]:
        print(
            f"ramparts: warning: the learned policy would silence {ev.rule} for "
            f"{_learn.describe(ev)}",
            file=sys.stderr,
        )
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    for warning in learned.warnings:
        print(f"ramparts: warning: {warning}", file=sys.stderr)
    c = corpus
    excluded = sum(learned.excluded.values())
    plural = _learn.plural
    parts = [
        f"learned {plural(learned.entry_count, 'entry')} from {plural(len(c.events), 'event')} "
        f"({plural(len(c.invocations), 'invocation')}, {plural(len(c.sandboxes), 'sandbox')})",
    ]
    if excluded:
        parts.append(
            f"{plural(excluded, 'event')} that fired built-in rules left out (see NOT LEARNED)"
        )
    parts.append(f"{plural(c.other_lines, 'other line')} ignored")
    if c.malformed:
        parts.append(f"{plural(len(c.malformed), 'malformed Ramparts line')} skipped")
    if c.duplicates:
        parts.append(f"{plural(c.duplicates, 'duplicate line')} counted once")
    if c.unknown_kinds:
        parts.append(
            "unknown kinds ignored: "
            + ", ".join(f"{k} ({n})" for k, n in sorted(c.unknown_kinds.items()))
        )
    where = f" -> {args.output}" if args.output else ""
    print(f"ramparts: {'; '.join(parts)}{where}", file=sys.stderr)
    return 0


def _write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CliError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="choose a writable path with -o, or leave -o out for stdout",
            exit_code=2,
        ) from None


# -- check ---------------------------------------------------------------------------------------
def run_check(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.file == "-" else args.file
    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read(MAX_POLICY_BYTES + 1)
        else:
            with open(args.file, "rb") as fh:
                raw = fh.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise CliError(
            f"cannot read {name}: {exc.strerror or exc}",
            hint="give the path of a policy file (YAML or JSON)",
            exit_code=EXIT_UNREADABLE,
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"cannot read {name}: not UTF-8 text (byte {exc.start})",
            hint="save the policy as UTF-8 YAML or JSON",
            exit_code=EXIT_UNREADABLE,
        ) from None
    return check_text(
        text, name, sys.stdout, env_mode=args.env_mode, too_big=len(raw) > MAX_POLICY_BYTES
    )


def check_text(
    text: str, name: str, out: TextIO, *, env_mode: str | None = None, too_big: bool = False
) -> int:
    """Validate ``text``, print each error with a hint (or a summary); return the exit code."""
    from ramparts._policy import PolicyError, build

    if too_big:
        print(
            f"{name}: the policy is larger than {MAX_POLICY_BYTES // 1024} KiB; the sensor "
            "reads only that much of it",
            file=out,
        )
        print("  hint: fold entries into wildcards, or split the function", file=out)
        return EXIT_INVALID
    try:
        policy = build(_parse(text, name), name)
    except PolicyError as exc:
        for error in exc.errors:
            message, hint = explain(error, text)
            print(f"{name}: {message}", file=out)
            if hint:
                print(f"  hint: {hint}", file=out)
        n = len(exc.errors)
        print(
            f"{name}: invalid ({n} error{'s' if n != 1 else ''}); the sensor would refuse "
            "it and run in monitor mode with the built-in rules only",
            file=out,
        )
        return EXIT_INVALID
    _summary(policy, name, out, env_mode)
    return EXIT_VALID


def _parse(text: str, name: str) -> object:
    """The document, parsed as the sensor parses it; PolicyError when it cannot be."""
    from ramparts._policy import PolicyError, parse_text

    try:
        return parse_text(text, name)
    except PolicyError:
        raise
    except Exception as exc:  # the sensor's JSON reader can fail oddly on broken JSON
        import json

        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise PolicyError(
                [f"invalid JSON: {err.msg} at line {err.lineno}, column {err.colno}"], name
            ) from None
        except ValueError as err:
            raise PolicyError([f"invalid JSON: {err}"], name) from None
        raise PolicyError(
            [f"invalid JSON: the sensor cannot read it ({type(exc).__name__}: {exc})"], name
        ) from None


# Hints by what an error says (the validator's messages, in ramparts/_policy.py).
_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("tabs are not allowed",), "indent with spaces only"),
    (
        ("anchors, aliases",),
        'quote values that start with * & ! | > % @ or `, e.g. "*.example.com:443"',
    ),
    (
        ("unterminated flow", "keep [ ... ]"),
        "keep each [ ... ] and { ... } on one line, or use one '- item' per line",
    ),
    (("unterminated double", "unterminated single"), "close the quote on the same line"),
    (("duplicate key",), "each key once per mapping: merge the two lists"),
    (("only one YAML document",), "remove the second '---'"),
    (
        ("unexpected indentation", "expected 'key: value'", "expected 'key: value' or"),
        "nest with consistent spaces: section keys at 2, list items ('- ') under them",
    ),
    (("invalid JSON",), "check the commas and quotes; YAML is accepted too"),
    (("unknown key",), "keys are lower case; see docs/policy.md for every key"),
    (
        ("is not a port", "port range", "out of range 1-65535", "a port is a number"),
        "ports are numbers 1-65535 (443), quoted ranges ('8000-8100'), or '*' for any port",
    ),
    (
        ("host bits set",),
        "a network is written with its host bits zero, e.g. 10.0.0.0/8; "
        "for one address use /32 (IPv6: /128)",
    ),
    (("prefix length",), "the prefix length is 0-32 for IPv4, 0-128 for IPv6"),
    (
        ("is not an IP address", "must be a string like 10.0.0.0/8"),
        "a CIDR is ADDRESS/PREFIX, e.g. 10.0.0.0/8 or 2001:db8::/32; a host name goes in 'host'",
    ),
    (
        ("give exactly one of 'host' or 'cidr'",),
        "an entry names a host pattern or a network, not both: split it in two",
    ),
    (
        ("name the program by its absolute path",),
        'find it with: readlink -f "$(command -v PROGRAM)" (the sensor matches resolved paths)',
    ),
    (
        ("paths must be absolute",),
        "path patterns start with /, e.g. /tmp/** or /var/task/data/*.json",
    ),
    (("character classes",), "use * (any run within a segment) and ? (one character)"),
    (
        ("'**' must be a whole path segment",),
        "write /dir/** for any depth, /dir/*.ext for one level",
    ),
    (("expected 'service:Operation'",), "IAM style, e.g. s3:GetObject, dynamodb:Query, sqs:*"),
    (("is not a built-in rule",), "the built-in rules are listed in docs/policy.md"),
    (("expected {disable:",), "write defaults: {disable: [default.shell]}"),
    (("is not supported; this sensor reads version 1",), "set version: 1 (or leave it out)"),
    (("expected a list",), "write a list: one '- item' per line, or [a, b]"),
    (("expected a mapping",), "a section is a mapping, e.g. egress: {allow: [...]}"),
    (("must be a mapping",), "a policy is a mapping of sections; see examples/policies/"),
    (
        ("expected 'host[:port]'",),
        "an egress entry is 'host:port', a CIDR, or "
        "{host: ..., ports: [...]} / {cidr: ..., ports: [...]}",
    ),
    (("expected a non-empty string", "must be a string"), "quote the value if it is a pattern"),
)
_MODE_HINT = "modes: off, monitor, enforce (the top-level mode may also be learn)"


def explain(error: str, text: str = "") -> tuple[str, str]:
    """An error of the validator as (message, hint). YAML errors name the line and show it."""
    message = error
    hint = ""
    for needles, h in _HINTS:
        if any(n in error for n in needles):
            hint = h
            break
    if not hint and (".mode:" in error or error.startswith("mode:")):
        hint = _MODE_HINT
    if error.startswith("invalid YAML: line "):
        head, _, rest = error[len("invalid YAML: line ") :].partition(":")
        if head.isdigit():
            lineno = int(head)
            lines = text.splitlines()
            source = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
            message = f"line {lineno}: invalid YAML:{rest}"
            if source:
                message += f"\n  {lineno} | {source[:120]}"
    return message, hint


def _summary(policy: Policy, name: str, out: TextIO, env_mode: str | None) -> None:
    from ramparts._policy import DEFAULT_RULES, SECTIONS
    from ramparts._sensor import Sensor

    # the sensor's own mode logic, with this policy and this RAMPARTS_MODE (nothing installed)
    modes: dict[str, str] = Sensor(
        policy=policy, mode=env_mode, environ={}, policy_source=name
    ).modes
    n = policy.rule_count
    print(f"{name}: valid, {n} entr{'y' if n == 1 else 'ies'}", file=out)
    if env_mode:
        print(f"  modes with RAMPARTS_MODE={env_mode} on the function:", file=out)
    else:
        print(
            f"  policy mode: {policy.mode or 'monitor (the default)'}; modes with RAMPARTS_MODE "
            "unset on the function:",
            file=out,
        )
    rows = [
        (
            section,
            _entries(policy, section),
            _mode_text(modes[section], policy.section_modes.get(section)),
        )
        for section in SECTIONS
    ]
    width = max(len(r[1]) for r in rows)
    for section, count, mode in rows:
        print(f"    {section:<8} {count:<{width}}  {mode}", file=out)
    if policy.disabled:
        print("  built-in rules disabled: " + ", ".join(sorted(policy.disabled)), file=out)
    else:
        print(f"  built-in rules: all {len(DEFAULT_RULES)} on", file=out)
    for warning in _warnings(policy):
        print(f"  warning: {warning}", file=out)


def _mode_text(mode: str, own: str | None) -> str:
    if own is None:
        return mode
    if own == mode:
        return f"{mode} (section mode)"
    return f"{mode} (RAMPARTS_MODE overrides the section's {own})"


def _entries(policy: Policy, section: str) -> str:
    unrestricted = "not restricted (built-in rules only)"
    if section == "egress":
        return unrestricted if policy.egress is None else _n(len(policy.egress))
    if section == "dns":
        if policy.dns is not None:
            return _n(len(policy.dns.patterns))
        return "follows egress hosts" if policy.egress is not None else unrestricted
    if section == "files":
        write = (
            "write not restricted (built-in: /tmp only)"
            if policy.write is None
            else (f"{_n(len(policy.write.patterns))} write")
        )
        return f"{write}, {len(policy.read.patterns)} read exemptions"
    if section == "process":
        return unrestricted if policy.process is None else _n(len(policy.process.patterns))
    if section == "native":
        if policy.native_paths is None and not policy.native_names:
            return unrestricted
        paths = len(policy.native_paths.patterns) if policy.native_paths is not None else 0
        return _n(paths + len(policy.native_names))
    return unrestricted if policy.aws is None else _n(len(policy.aws))


def _n(k: int) -> str:
    return f"{k} entr{'y' if k == 1 else 'ies'}"


def _warnings(policy: Policy) -> list[str]:
    """Valid but worth a second look: entries that switch built-in rules off, or allow all."""
    from ramparts import _net
    from ramparts._procs import INTERPRETERS, NETWORK_TOOLS, SHELLS, base_name

    from ramparts_cli._learn import covers_sensitive

    out: list[str] = []
    for e in policy.egress or []:
        if e.hosts is not None and "*" in e.hosts.patterns:
            out.append("egress allows every host ('*')")
        if e.cidr is not None:
            for ip, what in {**_net.CREDENTIAL_V4, **_net.CREDENTIAL_V6}.items():
                addr = _net.parse_ip(ip)
                if addr is not None and e.cidr.contains(addr) and e.cidr.bits > 0:
                    out.append(
                        f"egress {e.cidr.text} includes {ip} ({what}): it switches "
                        "default.credential-endpoint off for it"
                    )
            if e.cidr.bits == 0:
                out.append(
                    f"egress {e.cidr.text} allows every address, credential endpoints included"
                )
    if policy.process is not None:
        risky = SHELLS | NETWORK_TOOLS | set(INTERPRETERS)
        for p in policy.process.patterns:
            if base_name(p) in risky or p.endswith(("/*", "/**")):
                out.append(
                    f"process allows {p}: an entry switches the built-in process rules "
                    "(shell, network tool, inline code) off for what it matches"
                )
    for p in policy.write.patterns if policy.write is not None else ():
        if covers_sensitive(p):
            out.append(
                f"files.write {p} also allows writing sensitive files (an entry "
                "switches default.sensitive-write off)"
            )
    for name in policy.native_names:
        out.append(
            f"native {name} matches a library of that name in any directory, /tmp "
            "included (an entry switches default.native-writable off); prefer an "
            "absolute path"
        )
    if policy.aws is not None and ("*", "*") in policy.aws:
        out.append("aws allows every call ('*:*')")
    if policy.mode == "learn":
        out.append("mode learn records what runs and enforces nothing")
    return out
