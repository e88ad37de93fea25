"""What a process event runs: program names, a shell tokeniser and path predicates.

Shared by the process rules (:mod:`collectors.rules.pack.process`). Sources describe a launch
differently: the Ramparts layer gives the exact ``argv`` and every program a shell string
runs (``unmapped.programs``); Falco, osquery and Tetragon give one command line whose
arguments were joined by spaces (quotes lost). :func:`view` turns any of them into a
:class:`ProcView`: the simple commands the launch runs (through ``sh -c`` strings, launchers
such as ``env``/``nohup``/``timeout``/``sudo`` and ``busybox`` applets), their redirections
and pipelines, the code given to interpreters, and the parent process.

Everything here is computed once per event (the rules of this pack share the last view) and
costs no regex compilation per call.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ramparts import _procs

from collectors.model import OcsfEvent, Process

# -- program names -----------------------------------------------------------------------------
# The sensor's shells (but busybox, whose applet is judged instead: busybox_applet), and
# more that VM and container command lines show.
SHELLS = (_procs.SHELLS - {"busybox"}) | frozenset(
    {
        "es",
        "hush",
        "ksh93",
        "lksh",
        "nu",
        "oksh",
        "pdksh",
        "posh",
        "powershell",
        "rc",
        "xonsh",
    }
)
# Programs that talk to the network by themselves (downloaders, raw clients, remote shells,
# tunnels, scanners). ``openssl`` only with a client/server subcommand (see network_tool).
# The sensor's (but openssl, judged by its subcommand), and more.
NETWORK_TOOLS = (_procs.NETWORK_TOOLS - {"openssl"}) | frozenset(
    {
        "axel",
        "cryptcat",
        "dbclient",
        "dnscat",
        "dnscat2",
        "drill",
        "elinks",
        "fetch",
        "frpc",
        "ftpget",
        "ftpput",
        "gost",
        "gs-netcat",
        "hping3",
        "http",
        "https",
        "iodine",
        "lftp",
        "ligolo",
        "links",
        "lwp-download",
        "lwp-mirror",
        "lwp-request",
        "masscan",
        "naabu",
        "plink",
        "pnc",
        "proxychains4",
        "rclone",
        "rustscan",
        "sbd",
        "smbclient",
        "ssl_client",
        "tor",
        "torsocks",
        "wget2",
        "whois",
        "xh",
        "zmap",
    }
)
# lwp-request installs GET/HEAD/POST as program names: only the exact upper-case names count.
_LWP_ALIASES = frozenset({"GET", "HEAD", "POST"})
_AMBIGUOUS_NET = frozenset({"host", "http", "https"})
# Downloaders whose output can be piped into an interpreter or saved and run.
FETCHERS = frozenset(
    {
        "curl",
        "wget",
        "wget2",
        "fetch",
        "aria2c",
        "axel",
        "lwp-download",
        "lwp-request",
        "GET",
        "http",
        "https",
        "xh",
        "tftp",
        "ftp",
        "ftpget",
        "lftp",
        "scp",
        "sftp",
        "rsync",
        "nc",
        "ncat",
        "netcat",
        "nc.openbsd",
        "nc.traditional",
        "socat",
        "ssl_client",
    }
)
# Raw two-way clients: with a shell in the same pipeline they make a reverse shell.
RAW_CLIENTS = frozenset(
    {
        "nc",
        "ncat",
        "netcat",
        "nc.openbsd",
        "nc.traditional",
        "pnc",
        "cryptcat",
        "sbd",
        "socat",
        "telnet",
        "openssl",
        "ssl_client",
        "gs-netcat",
    }
)
# Interpreters -> the flags that take code on the command line (() : the first operand).
INLINE_FLAGS: dict[str, tuple[str, ...]] = {
    "python": ("-c",),
    "pypy": ("-c",),
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "php": ("-r",),
    "node": ("-e", "--eval", "-p", "--print"),
    "deno": ("eval",),
    "bun": ("-e", "--eval"),
    "lua": ("-e",),
    "luajit": ("-e",),
    "tclsh": (),
    "awk": (),
    "gawk": (),
    "mawk": (),
    "nawk": (),
    "busybox-awk": (),
    "pwsh": ("-c", "-command", "-encodedcommand", "-e", "-ec"),
    "powershell": ("-c", "-command", "-encodedcommand", "-e", "-ec"),
    "jrunscript": ("-e",),
    "osascript": ("-e",),
}
INTERPRETERS = frozenset(INLINE_FLAGS) | frozenset({"java", "jshell", "expect", "R", "rscript"})
# Programs that run the program named by a later argument.
# The sensor's launchers, and more that VM and container command lines show.
LAUNCHERS = _procs.LAUNCHERS | frozenset(
    {
        "capsh",
        "catchsegv",
        "chpst",
        "cpulimit",
        "daemonize",
        "dumb-init",
        "faketime",
        "gosu",
        "numactl",
        "proot",
        "runuser",
        "setpriv",
        "start-stop-daemon",
        "su",
        "su-exec",
        "tini",
        "watch",
    }
)
# Options of launchers that take a value (skipped with the value).
_LAUNCHER_VALUED = frozenset(
    {
        "-u",
        "-g",
        "-n",
        "-k",
        "-s",
        "-C",
        "-p",
        "-t",
        "-S",
        "-o",
        "-e",
        "-i",
        "-I",
        "-L",
        "-P",
        "-d",
        "-c",
        "-l",
        "-m",
        "-r",
        "-w",
        "-a",
        "-E",
        "--signal",
        "--kill-after",
        "--user",
        "--group",
        "--chdir",
        "--target",
        "--adjustment",
        "--limit",
        "--interval",
    }
)
_KEYWORDS = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "in"}
)
# Web servers and application runtimes that face the network (process names as sources
# report them; Falco's proc.name is the kernel's 15-character comm).
WEB_SERVERS = frozenset(
    {
        "nginx",
        "openresty",
        "tengine",
        "httpd",
        "apache",
        "apache2",
        "lighttpd",
        "caddy",
        "hiawatha",
        "cherokee",
        "php-fpm",
        "php-cgi",
        "php-cgi-fcgi",
        "lsphp",
        "uwsgi",
        "gunicorn",
        "uvicorn",
        "hypercorn",
        "daphne",
        "granian",
        "waitress-serve",
        "puma",
        "unicorn",
        "passenger",
        "passengeragent",
        "thin",
        "falcon",
        "starman",
        "plackup",
        "hypnotoad",
        "morbo",
        "tomcat",
        "catalina",
        "jetty",
        "jboss",
        "wildfly",
        "standalone.sh",
        "weblogic",
        "websphere",
        "glassfish",
        "resin",
        "iis",
        "w3wp",
        "kestrel",
        "traefik",
        "envoy",
        "haproxy",
        "varnishd",
        "squid",
        "node",
        "bun",
        "deno",
    }
)
_WEB_PREFIXES = (
    "php-fpm",
    "httpd",
    "apache2",
    "php-cgi",
    "uwsgi",
    "gunicorn",
    "puma",
    "unicorn",
    "nginx",
    "lsphp",
)
# Runtimes that are web-facing only when their command line says they serve.
_SERVING_MARKERS: dict[str, tuple[str, ...]] = {
    "python": (
        "gunicorn",
        "uvicorn",
        "uwsgi",
        "hypercorn",
        "daphne",
        "waitress",
        "granian",
        "flask run",
        "-m flask",
        "runserver",
        "http.server",
        "simplehttpserver",
        "tornado",
        "sanic",
        "aiohttp.web",
        "streamlit",
        "jupyter",
        "wsgi",
        "asgi",
    ),
    "ruby": ("puma", "unicorn", "rails s", "rails server", "rackup", "thin", "passenger", "falcon"),
    "php": (" -s ", "artisan serve", "php-fpm", "php-cgi"),
    "perl": ("starman", "plackup", "hypnotoad", "morbo", "mojolicious", "twiggy"),
    "dotnet": (".dll", "aspnet", "kestrel"),
}
# A JVM or a node process running a build, a test runner or CI: shells are its job.
_BUILD_MARKERS: dict[str, tuple[str, ...]] = {
    "java": (
        "org.codehaus.plexus.classworlds",
        "maven",
        "gradle",
        "sbt-launch",
        "org.jetbrains.kotlin",
        "kotlin-compiler",
        "remoting.jar",
        "agent.jar",
        "jenkins.war",
        "hudson.remoting",
        "surefire",
        "bazel",
        "ant-launcher",
        "org.apache.tools.ant",
        "teamcity",
        "buildagent",
        "intellij",
        "jetbrains",
    ),
    "node": (
        "npm",
        "npx",
        "yarn",
        "pnpm",
        "corepack",
        "webpack",
        "jest",
        "mocha",
        "vitest",
        "tsc",
        "typescript",
        "eslint",
        "prettier",
        "vite",
        "next build",
        "gulp",
        "grunt",
        "turbo",
        "nx ",
        "lerna",
        "node-gyp",
        "electron-builder",
        "playwright",
        "cypress",
        "serverless",
        "cdk",
        "husky",
        "lint-staged",
        "vscode",
        "code-server",
        "bun install",
        "bun run build",
    ),
}
# Writers whose file changes are installs and upgrades, not drops.
PACKAGE_TOOLS = frozenset(
    {
        "dpkg",
        "apt",
        "apt-get",
        "aptitude",
        "unattended-upgr",
        "unattended-upgrade",
        "rpm",
        "yum",
        "dnf",
        "microdnf",
        "zypper",
        "apk",
        "pacman",
        "snapd",
        "snap",
        "dkms",
        "depmod",
        "kernel-install",
        "update-initramfs",
        "mkinitramfs",
        "mkinitrd",
        "dracut",
        "ldconfig",
        "ldconfig.real",
        "packagekitd",
        "flatpak",
        "systemd-sysext",
        "rpm-ostree",
    }
)
# Text tools: a miner's name or pool in their arguments is being looked for, not run.
TEXT_TOOLS = frozenset(
    {
        "grep",
        "egrep",
        "fgrep",
        "rg",
        "ag",
        "ack",
        "pgrep",
        "pkill",
        "killall",
        "kill",
        "pidof",
        "find",
        "locate",
        "which",
        "whereis",
        "type",
        "echo",
        "printf",
        "man",
        "less",
        "more",
        "cat",
        "tail",
        "head",
        "sed",
        "awk",
        "journalctl",
        "ps",
        "top",
        "htop",
        "ls",
        "stat",
        "file",
        "sha256sum",
        "md5sum",
        "strings",
        "rm",
        "chattr",
        "lsattr",
        "systemctl",
        "crontab",
    }
)

_VERSIONED = re.compile(
    r"^(python|pypy|perl|ruby|php|php-fpm|php-cgi|node|nodejs|lua|luajit|pwsh|tclsh|java)"
    r"(?:[0-9][0-9.]*(?:[a-z]{0,2})?|-[0-9][0-9.]*)$"
)
_ALIASES = {"nodejs": "node", "pypy3": "pypy", "python3": "python", "perl5": "perl"}


def base(path: str) -> str:
    """The last component of a path, without a ``(deleted)`` suffix."""
    p = path.strip()
    if p.endswith(" (deleted)"):
        p = p[: -len(" (deleted)")]
    p = p.rstrip("/")
    return p.rsplit("/", 1)[-1] if p else ""


@lru_cache(maxsize=4096)
def prog_name(word: str) -> str:
    """A program's name as the rules compare it: basename, lower case, versions dropped
    (``/usr/bin/python3.11`` -> ``python``, ``php-fpm8.2`` -> ``php-fpm``, ``-bash`` -> ``bash``).
    The upper-case lwp-request aliases (``GET``) are kept as they are."""
    name = base(word)
    if name in _LWP_ALIASES:
        return name
    name = name.lower().lstrip("-")
    m = _VERSIONED.match(name)
    if m is not None:
        name = m.group(1)
    return _ALIASES.get(name, name)


# -- paths ----------------------------------------------------------------------------------
# Directories anyone (or the function) can write and execute from; with trailing slashes.
WRITABLE_DIRS = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/", "/dev/mqueue/")  # noqa: S108
_RUN_USER = "/run/user/"
_VAR_RUN_USER = "/var/run/user/"
# Build tools' scratch directories under /tmp on VMs and CI runners.
_BUILD_SCRATCH = (
    "/tmp/go-build",  # noqa: S108
    "/tmp/bazel",  # noqa: S108
    "/tmp/cargo-install",  # noqa: S108
    "/tmp/rustc",  # noqa: S108
    "/tmp/ccache",  # noqa: S108
)


def norm_path(path: str) -> str:
    """An absolute path cleaned of ``//``, ``.`` and ``..`` (symlinks are the source's job)."""
    p = path.strip()
    if p.endswith(" (deleted)"):
        p = p[: -len(" (deleted)")]
    if not p.startswith("/"):
        return p
    out = posixpath.normpath(p)
    return "/" + out.lstrip("/")  # normpath keeps a leading "//"


def is_memfd(path: str) -> bool:
    """A program or library mapped from an anonymous memory file (fileless)."""
    p = path.strip()
    return p.startswith(("memfd:", "/memfd:")) or "/memfd:" in p


def writable_dir(path: str) -> str | None:
    """The writable staging directory an absolute path lies in (``/tmp``...), else None."""
    p = norm_path(path)
    if is_memfd(path):
        return "memfd"
    for d in WRITABLE_DIRS:
        if p.startswith(d):
            return d.rstrip("/")
    for d in (_RUN_USER, _VAR_RUN_USER):
        if p.startswith(d):
            rest = p[len(d) :]
            uid, _, tail = rest.partition("/")
            if uid.isdigit() and tail:
                return d + uid
    return None


def build_scratch(path: str) -> bool:
    return norm_path(path).startswith(_BUILD_SCRATCH)


def hidden(path: str) -> bool:
    """A path with a component that starts with a dot (``/tmp/.x``, ``/dev/shm/.a/b``)."""
    return any(part.startswith(".") and part not in (".", "..") for part in path.split("/"))


def staging_root(path: str) -> str:
    """The writable directory and the first name under it: what groups repeats
    (``/tmp/sls-py-req/numpy/core/x.so`` -> ``/tmp/sls-py-req``)."""
    p = norm_path(path)
    d = writable_dir(p)
    if d is None or d == "memfd":
        return p
    rest = p[len(d) + 1 :]
    first = rest.split("/", 1)[0]
    return f"{d}/{first}" if first else d


# -- shell command lines --------------------------------------------------------------------
@dataclass(slots=True)
class Command:
    """One simple command of a command line."""

    argv: list[str]
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (operator, target)
    assigns: dict[str, str] = field(default_factory=dict)  # VAR=value prefixes
    pipeline: int = 0  # commands joined by | share it
    seq: int = 0  # order in the line
    substituted: bool = False  # inside $( ), ` ` or <( )
    shell_arg: bool = False  # its output feeds a shell or eval (sh -c "$(...)", bash <(...))
    depth: int = 0  # 0: the launch itself; 1+: inside a shell string it runs

    @property
    def name(self) -> str:
        return prog_name(self.argv[0]) if self.argv else ""


_SEPARATORS = frozenset(";&|\n")
_MAX_COMMANDS = 128
_MAX_DEPTH = 4


class _Tokens:
    """A POSIX-ish shell tokeniser: quotes, escapes, separators, pipelines, subshells,
    substitutions (``$( )``, backticks, ``<( )``), redirections. It judges, it does not
    interpret: variables are not expanded."""

    def __init__(self, text: str, depth: int, counter: list[int]) -> None:
        self.text = text
        self.depth = depth
        self.counter = counter  # [next pipeline id, next seq] shared with nested parses
        self.out: list[Command] = []
        self.words: list[str] = []
        self.redirects: list[tuple[str, str]] = []
        self.cur: list[str] = []
        self.has_word = False
        self.pending: str | None = None  # a redirection operator waiting for its target
        self.pipeline = self._next_pipeline()
        self.subs: list[tuple[str, str]] = []  # (kind, text) substitutions of this command

    def _next_pipeline(self) -> int:
        self.counter[0] += 1
        return self.counter[0]

    def end_word(self) -> None:
        if not self.has_word:
            return
        word = "".join(self.cur)
        self.cur.clear()
        self.has_word = False
        if self.pending is not None:
            self.redirects.append((self.pending, word))
            self.pending = None
        else:
            self.words.append(word)

    def end_command(self) -> None:
        self.end_word()
        if self.pending is not None:
            self.redirects.append((self.pending, ""))
            self.pending = None
        words = self.words
        assigns: dict[str, str] = {}
        k = 0
        while k < len(words) and _is_assignment(words[k]):
            key, _, value = words[k].partition("=")
            assigns[key] = value
            k += 1
        rest = words[k:]
        while rest and rest[0] in _KEYWORDS:
            rest = rest[1:]
        if rest or assigns or self.redirects:
            self.counter[1] += 1
            cmd = Command(
                argv=rest,
                redirects=list(self.redirects),
                assigns=assigns,
                pipeline=self.pipeline,
                seq=self.counter[1],
            )
            self.out.append(cmd)
            feeds_shell = bool(rest) and (
                prog_name(rest[0]) in SHELLS
                or prog_name(rest[0]) in INTERPRETERS
                or rest[0] in ("eval", "source", ".", "exec")
            )
            for _kind, inner in self.subs:
                if self.depth < _MAX_DEPTH and len(self.out) < _MAX_COMMANDS:
                    nested = _Tokens(inner, self.depth + 1, self.counter).parse()
                    for c in nested:
                        c.substituted = True
                        c.shell_arg = c.shell_arg or feeds_shell
                    self.out.extend(nested)
        self.words = []
        self.redirects = []
        self.subs = []

    def parse(self) -> list[Command]:
        text, n = self.text, len(self.text)
        i = 0
        quote = ""
        while i < n and len(self.out) < _MAX_COMMANDS:
            c = text[i]
            if quote == "'":
                if c == "'":
                    quote = ""
                else:
                    self.cur.append(c)
            elif c == "\\" and i + 1 < n:
                if text[i + 1] != "\n":
                    self.cur.append(text[i + 1])
                    self.has_word = True
                i += 1
            elif (
                (c == "$" and text[i + 1 : i + 2] == "(")
                or c == "`"
                or (c in "<>" and text[i + 1 : i + 2] == "(" and not quote and not self.has_word)
            ):
                kind = "`" if c == "`" else "$(" if c == "$" else "<("
                if c == "`":
                    j = text.find("`", i + 1)
                    j = n if j == -1 else j
                    inner, end = text[i + 1 : j], j
                else:
                    inner, end = _balanced(text, i + 2)
                self.subs.append((kind, inner))
                # the substitution is also part of the word (sh -c "$(curl x)")
                self.cur.append(text[i : end + 1])
                self.has_word = True
                i = end
            elif quote == '"':
                if c == '"':
                    quote = ""
                else:
                    self.cur.append(c)
            elif c in "'\"":
                quote = c
                self.has_word = True
            elif c in " \t\r":
                self.end_word()
            elif c == "#" and not self.has_word:
                while i + 1 < n and text[i + 1] != "\n":
                    i += 1
            elif c == "&" and text[i + 1 : i + 2] == ">":  # &> and &>>: both streams
                self.end_word()
                j = i + 1
                while j < n and text[j] in ">":
                    j += 1
                self.pending = text[i:j]
                i = j - 1
            elif c in _SEPARATORS:
                self.end_command()
                if c == "|" and text[i + 1 : i + 2] != "|":
                    if text[i + 1 : i + 2] == "&":  # |& pipes stderr too
                        i += 1
                else:
                    if text[i + 1 : i + 2] in ("&", "|") and c in "&|":
                        i += 1
                    self.pipeline = self._next_pipeline()
            elif c in "()":
                self.end_command()
            elif c in "<>":
                fd = ""
                if self.has_word and "".join(self.cur).isdigit():
                    fd = "".join(self.cur)
                    self.cur.clear()
                    self.has_word = False
                else:
                    self.end_word()
                j = i
                while j < n and text[j] in "<>&|":
                    j += 1
                op = fd + text[i:j]
                i = j - 1
                self.pending = op
            else:
                self.cur.append(c)
                self.has_word = True
            i += 1
        self.end_command()
        return self.out


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return (
        bool(eq)
        and bool(name)
        and (name[0].isalpha() or name[0] == "_")
        and (name.replace("_", "a").isalnum())
    )


def _balanced(text: str, start: int) -> tuple[str, int]:
    """The text of ``( ... )`` from just after '(' at ``start``; and the index of ')'."""
    depth = 1
    j = start
    quote = ""
    while j < len(text):
        c = text[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[start:j], j
        j += 1
    return text[start:], len(text) - 1


def tokenize(text: str, counter: list[int] | None = None) -> list[Command]:
    """The simple commands of a shell command line, in order (see :class:`Command`).
    ``counter`` ([pipeline, seq]) numbers them on from an earlier parse."""
    return _Tokens(text, 0, counter if counter is not None else [0, 0]).parse()


def _launched(argv: list[str]) -> int | None:
    """Index in ``argv`` of the program that the launcher at ``argv[0]`` runs."""
    name = prog_name(argv[0])
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a.startswith("-") and len(a) > 1:
            if name in ("su", "runuser") and a in ("-c", "--command"):
                return None  # su -c STRING: a shell string, see script_of()
            if a in _LAUNCHER_VALUED or (name == "xargs" and a in ("-n", "-P", "-I", "-L")):
                i += 1
            i += 1
            continue
        if _is_assignment(a) and name in ("env", "sudo", "doas"):
            i += 1
            continue
        if name in ("timeout", "nice", "chrt", "taskset", "cpulimit", "numactl", "ionice") and (
            a[:1].isdigit() or a[:1] == "+"
        ):
            i += 1
            continue
        if name in ("flock", "chroot", "chpst", "gosu", "su-exec") and i == 1:
            i += 1  # the lock file, the new root, the user
            continue
        if name in ("su", "runuser") and i == 1:
            i += 1  # the user
            continue
        break
    return i if i < len(argv) else None


def shell_script(argv: list[str], lossy: bool) -> str | None:
    """The command string a shell (or ``su -c``) runs: ``sh -c STRING``. With a lossy
    command line (quotes lost when joined) every word after ``-c`` belongs to it."""
    if not argv:
        return None
    name = prog_name(argv[0])
    if name not in SHELLS and name not in ("su", "runuser"):
        return None
    args = argv[1:]
    for i, a in enumerate(args):
        if a == "--":
            return None
        is_c = a in ("-c", "--command") or (
            a.startswith("-") and not a.startswith("--") and "c" in a[1:] and name in SHELLS
        )
        if name in ("pwsh", "powershell") and a.lower() in ("-c", "-command"):
            is_c = True
        if is_c:
            rest = args[i + 1 :]
            if not rest:
                return None
            return " ".join(rest) if lossy else rest[0]
        if not a.startswith("-") and name in SHELLS:
            return None  # sh SCRIPT: a file, not a string
    return None


def inline_code(argv: list[str], lossy: bool) -> str | None:
    """The code an interpreter is given on its command line (``python -c CODE``)."""
    if not argv:
        return None
    name = prog_name(argv[0])
    flags = INLINE_FLAGS.get(name)
    if flags is None:
        return None
    args = argv[1:]
    if not flags:  # awk/tclsh: the program text is the first operand
        for i, a in enumerate(args):
            if a in ("-f", "--file"):
                return None
            if a.startswith("-") and a not in ("-F", "-v"):
                continue
            if i > 0 and args[i - 1] in ("-F", "-v"):
                continue
            return " ".join(args[i:]) if lossy else a
        return None
    for i, a in enumerate(args):
        low = a.lower() if name in ("pwsh", "powershell") else a
        for f in flags:
            if low == f and i + 1 < len(args):
                return " ".join(args[i + 1 :]) if lossy else args[i + 1]
            if len(f) == 2 and low.startswith(f) and len(low) > 2 and not low.startswith("--"):
                return (" ".join([a[2:], *args[i + 1 :]]) if lossy else a[2:]) or None
        # ruby -rsocket -e / perl -MIO -e: options before the code flag are fine
        if not a.startswith("-") and name not in ("deno",):
            return None  # a script file comes first: its arguments are not code
    return None


def busybox_applet(argv: list[str]) -> list[str] | None:
    """``busybox wget URL`` -> ``["wget", "URL"]``; None if not busybox with an applet."""
    if not argv or prog_name(argv[0]) != "busybox" or len(argv) < 2:
        return None
    rest = argv[1:]
    if rest[0].startswith("-"):
        return None  # busybox --list, --install
    return rest


def expand(
    cmds: list[Command], lossy: bool, depth: int = 0, counter: list[int] | None = None
) -> list[Command]:
    """The commands a command line runs, through launchers, ``busybox`` applets and the
    strings given to shells with ``-c`` (each appended after the command that runs it)."""
    if counter is None:
        counter = [
            max((c.pipeline for c in cmds), default=0),
            max((c.seq for c in cmds), default=0),
        ]
    out: list[Command] = []
    for cmd in cmds:
        if len(out) >= _MAX_COMMANDS:
            break
        out.append(cmd)
        argv = cmd.argv
        hops = 0
        while argv and hops < 6:
            hops += 1
            applet = busybox_applet(argv)
            if applet is not None:
                argv = applet
            elif prog_name(argv[0]) in LAUNCHERS or argv[0] in ("eval", "exec"):
                if argv[0] == "eval":
                    argv = []
                    evaled = " ".join(cmd.argv[1:])
                    if depth < _MAX_DEPTH:
                        inner = tokenize(evaled, counter)
                        for c in inner:
                            c.depth = depth + 1
                        out.extend(expand(inner, lossy, depth + 1, counter))
                    break
                idx = _launched(argv)
                if idx is None:
                    break
                argv = argv[idx:]
            else:
                break
            sub = Command(
                argv=list(argv),
                redirects=cmd.redirects,
                assigns=cmd.assigns,
                pipeline=cmd.pipeline,
                seq=cmd.seq,
                substituted=cmd.substituted,
                shell_arg=cmd.shell_arg,
                depth=cmd.depth,
            )
            out.append(sub)
        script = shell_script(argv, lossy) if argv else None
        if script is not None and depth < _MAX_DEPTH:
            inner = tokenize(script, counter)
            for c in inner:
                c.depth = depth + 1
                c.substituted = c.substituted or cmd.substituted
            out.extend(expand(inner, lossy, depth + 1, counter))
    return out


# -- the view of one process event ----------------------------------------------------------
@dataclass(slots=True)
class Parent:
    name: str = ""
    path: str = ""
    cmdline: str = ""


@dataclass(slots=True)
class ProcView:
    """What a process launch runs, the way every process rule reads it."""

    source: str
    exe: str  # the executable's path (resolved by the source), or ""
    name: str  # its program name
    cmdline: str
    commands: list[Command]  # every simple command, expanded
    names: set[str]  # program names of every command, the executable and the layer's programs
    exec_paths: list[str]  # absolute paths the launch executes (programs and scripts)
    codes: list[tuple[str, str]]  # (interpreter, inline code)
    parent: Parent
    ancestors: list[str]  # names above the parent (Falco's proc.aname[2..])
    lossy: bool

    def text(self) -> str:
        """Every command line and inline code, for pattern checks."""
        parts = [self.cmdline, *(c for _, c in self.codes)]
        return "\n".join(p for p in parts if p)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


_FIELDS: list[Any] = [None, None]  # [event, output fields]: parsed once per event


def falco_fields(event: OcsfEvent) -> dict[str, Any]:
    """Falco's output fields for an event: the finding keeps them in ``unmapped``; the
    activity events beside it only in ``raw_data`` (the alert as received)."""
    if _FIELDS[0] is event:
        cached: dict[str, Any] = _FIELDS[1]
        return cached
    out: dict[str, Any] = {}
    un = event.unmapped or {}
    fields = un.get("output_fields")
    if isinstance(fields, dict):
        out = fields
    elif event.raw_data and not event.metadata.is_truncated:
        out = _fields_of(_json(event.raw_data), 0)
    _FIELDS[0], _FIELDS[1] = event, out
    return out


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _fields_of(doc: Any, depth: int) -> dict[str, Any]:
    """Output fields from a Falco alert in any of its delivery forms (JSON, falcosidekick's
    SNS notification with message attributes, SNS/SQS Lambda records, SQS bodies)."""
    if not isinstance(doc, dict) or depth > 3:
        return {}
    if isinstance(doc.get("output_fields"), dict):
        fields: dict[str, Any] = doc["output_fields"]
        return fields
    if isinstance(doc.get("Sns"), dict):
        return _fields_of(doc["Sns"], depth + 1)
    for key in ("Message", "body", "Body"):
        inner = _json(doc.get(key))
        if isinstance(inner, dict):
            found = _fields_of(inner, depth + 1)
            if found:
                return found
    attrs = doc.get("MessageAttributes", doc.get("messageAttributes"))
    if isinstance(attrs, dict):  # falcosidekick's text form: fields as message attributes
        out: dict[str, Any] = {}
        for name, attr in attrs.items():
            if isinstance(attr, dict):
                value = attr.get("Value", attr.get("StringValue", attr.get("stringValue")))
                if isinstance(value, str):
                    out[name] = value
        return out
    return {}


def _parent_of(event: Any, source: str) -> tuple[Parent, list[str]]:
    proc: Process | None = getattr(event, "process", None)
    pp = proc.parent_process if proc is not None else None
    parent = Parent()
    ancestors: list[str] = []
    if pp is not None:
        path = pp.file.path if pp.file is not None and pp.file.path else ""
        pname = pp.name or ""
        if pname and not pname.startswith("/") and "/" in pname:
            pname = pname.split("/", 1)[0]  # kernel threads: kworker/u16:3, ksoftirqd/0
        parent = Parent(
            name=prog_name(pname or path or ""),
            path=path or "",
            cmdline=pp.cmd_line or "",
        )
    un = event.unmapped or {}
    if source == "falco":
        fields = falco_fields(event)
        if fields:
            if not parent.cmdline:
                parent.cmdline = _str(fields.get("proc.pcmdline"))
            for k in range(2, 8):
                v = fields.get(f"proc.aname[{k}]", fields.get(f"proc.aname.{k}"))
                if isinstance(v, str) and v and v not in ("<NA>", "N/A"):
                    ancestors.append(prog_name(v))
    elif source == "osquery":
        cols = un.get("columns")
        if isinstance(cols, dict):  # a query that joins the parent's row (see the rule docs)
            pname = _str(cols.get("parent_name")) or _str(cols.get("parent_path"))
            if pname and not parent.name:
                parent.name = prog_name(pname)
                parent.path = _str(cols.get("parent_path"))
            if not parent.cmdline:
                parent.cmdline = _str(cols.get("parent_cmdline"))
    return parent, ancestors


def _lossy_commands(cmdline: str) -> list[Command]:
    """Commands of a command line whose arguments were joined by spaces. When it starts a
    shell with ``-c``, everything after ``-c`` was the shell's string (``bash -c curl x | sh``
    is one argument that pipes, not a bash piped into sh)."""
    words = cmdline.split(" ")
    i = 0
    if words and prog_name(words[0]) == "busybox" and len(words) > 1:
        i = 1
    if words and prog_name(words[i]) in SHELLS:
        for j in range(i + 1, min(len(words), i + 6)):
            w = words[j]
            if not w.startswith("-") or w.startswith("--"):
                break
            if "c" in w[1:]:
                rest = " ".join(words[j + 1 :])
                if rest.strip() and rest.lstrip()[:1] not in ("'", '"'):  # quotes kept: exact
                    return [Command(argv=[*words[: j + 1], rest], seq=1, pipeline=1)]
                break
    return tokenize(cmdline)


def build_view(event: OcsfEvent, source: str) -> ProcView | None:
    proc: Process | None = getattr(event, "process", None)
    if proc is None:
        return None
    un = event.unmapped or {}
    exe = proc.file.path if proc.file is not None and proc.file.path else ""
    argv = _str_list(un.get("argv")) if source == "layer" else []
    lossy = not argv
    cmdline = proc.cmd_line or ""
    if argv:
        top = [Command(argv=argv, seq=1, pipeline=1)]
    elif cmdline:
        top = _lossy_commands(cmdline)
    elif exe or proc.name:
        top = [Command(argv=[exe or proc.name or ""], seq=1, pipeline=1)]
    else:
        top = []
    if top and exe and top[0].argv:  # the source's resolved executable names the first
        first = top[0]
        if prog_name(first.argv[0]) != prog_name(exe) and not first.assigns:
            top.append(Command(argv=[exe], seq=0, pipeline=first.pipeline))
    commands = expand(top, lossy)
    names = {c.name for c in commands if c.argv}
    exec_paths: list[str] = []
    if exe.startswith("/") or is_memfd(exe):
        exec_paths.append(exe)
    name = prog_name(
        exe or proc.name or (commands[0].argv[0] if commands and commands[0].argv else "")
    )
    if name:
        names.add(name)
    for p in _str_list(un.get("programs")) if source == "layer" else []:
        if p == "/dev/tcp":
            continue
        names.add(prog_name(p))
        if p.startswith("/") and p not in exec_paths:
            exec_paths.append(p)
    requested = _str(un.get("requested")) if source == "layer" else ""
    if requested:
        names.add(prog_name(requested))
    codes: list[tuple[str, str]] = []
    for c in commands:
        if not c.argv:
            continue
        head = c.argv[0]
        if head.startswith("/") and head not in exec_paths and not c.substituted:
            exec_paths.append(head)
        cname = c.name
        if cname in SHELLS or cname in INTERPRETERS:
            # a script file given to a shell or an interpreter runs like a program
            for a in c.argv[1:]:
                if a.startswith("-"):
                    if cname in SHELLS and a in ("-c",):
                        break
                    continue
                if a.startswith("/") and a not in exec_paths:
                    exec_paths.append(a)
                break
        code = inline_code(c.argv, lossy)
        if code:
            codes.append((cname, code))
            if lossy and cmdline and cmdline != code:
                # quotes were lost: the code may have been cut at its ; | ( ) by the parse
                codes.append((cname, cmdline))
    for _, code in list(codes):  # os.system('...'), exec("..."), child_process.exec('...')
        if len(commands) >= _MAX_COMMANDS or not _RUNS_COMMANDS.search(code):
            continue
        for m in _LITERAL.finditer(code[:4096]):
            inner = expand(tokenize(m.group(2)), lossy=False, depth=1)
            for c in inner:
                c.depth = max(c.depth, 1)
                if c.argv:
                    names.add(c.name)
            commands.extend(inner[: _MAX_COMMANDS - len(commands)])
    parent, ancestors = _parent_of(event, source)
    return ProcView(
        source=source,
        exe=exe,
        name=name,
        cmdline=cmdline,
        commands=commands,
        names=names,
        exec_paths=exec_paths,
        codes=codes,
        parent=parent,
        ancestors=ancestors,
        lossy=lossy,
    )


# Interpreter code that runs shell commands, and the string literals it would run.
_RUNS_COMMANDS = re.compile(
    r"\bsystem\b|popen|\bexec\b|execSync|\bspawn|subprocess|child_process|passthru|shell_exec"
    r"|proc_open|os\.execute|%x|Runtime\.getRuntime|Start-Process|check_output|\bcall\s*\("
)
_LITERAL = re.compile(r"([\"'`])((?:(?!\1).){4,2048}?\s(?:(?!\1).)*?)\1")

_LAST: list[Any] = [None, None, None]  # [event, source, view]: the rules of one event share it


def view(event: OcsfEvent, source: str) -> ProcView | None:
    """The :class:`ProcView` of a process event (computed once per event)."""
    if _LAST[0] is event and _LAST[1] == source:
        cached: ProcView | None = _LAST[2]
        return cached
    v = build_view(event, source)
    _LAST[0], _LAST[1], _LAST[2] = event, source, v
    return v


# -- judgements -----------------------------------------------------------------------------
def network_tool(cmd: Command) -> str | None:
    """The network tool a command runs, if any."""
    if not cmd.argv:
        return None
    raw = base(cmd.argv[0])
    name = cmd.name
    if raw in _LWP_ALIASES:
        return raw
    if name == "openssl":
        sub = cmd.argv[1].lower() if len(cmd.argv) > 1 else ""
        return "openssl" if sub in ("s_client", "s_server", "s_time") else None
    if name in _AMBIGUOUS_NET:
        # `host`, `http`: only with a network-looking operand
        ops = [a for a in cmd.argv[1:] if not a.startswith("-")]
        if not ops:
            return None
        return name
    return name if name in NETWORK_TOOLS else None


def web_parent(parent: Parent) -> str | None:
    """The web server or web-facing runtime a parent process is, if it is one."""
    name = parent.name
    if not name:
        return None
    cmd = parent.cmdline.lower()
    if name in ("java", "node", "bun", "deno"):
        markers = _BUILD_MARKERS.get("node" if name != "java" else "java", ())
        if any(m in cmd for m in markers):
            return None
        if name == "java" and not cmd:
            return "java"
        return name
    if name in WEB_SERVERS or name.startswith(_WEB_PREFIXES):
        return name
    serving = _SERVING_MARKERS.get(name)
    if serving and cmd:
        padded = f" {cmd} "
        for m in serving:
            if m in padded:
                return f"{name} ({m.strip()})"
    return None


def launched_shell(v: ProcView) -> str | None:
    """The shell the launch itself starts (not one inside its ``-c`` string), if any: by the
    name it was started as (``sh``), else by the executable's (``dash``)."""
    for c in v.commands:
        if c.depth == 0 and not c.substituted and c.name in SHELLS:
            return c.name
    return v.name if v.name in SHELLS else None


def shells_run(v: ProcView) -> list[str]:
    """Every shell the launch runs, its ``-c`` strings included."""
    found = [c.name for c in v.commands if c.name in SHELLS]
    found.extend(sorted(n for n in v.names & SHELLS if n not in found))
    return list(dict.fromkeys(found))


def network_tools_run(v: ProcView) -> list[str]:
    """Every network tool the launch runs, its ``-c`` strings included."""
    out: list[str] = []
    for c in v.commands:
        tool = network_tool(c)
        if tool is not None:
            out.append(tool)
    if v.source == "layer":  # programs the sensor resolved (a copy of curl under /tmp...)
        out.extend(n for n in sorted(v.names & NETWORK_TOOLS) if n not in _AMBIGUOUS_NET)
    return list(dict.fromkeys(out))


def in_web_context(v: ProcView) -> str | None:
    """The web server or runtime that started this launch: its parent, or the parent of the
    shell that is its parent (Falco's ancestors). None when the parent is unknown."""
    found = web_parent(v.parent)
    if found is not None:
        return found
    if v.parent.name in SHELLS or v.parent.name in LAUNCHERS:
        for name in v.ancestors[:3]:
            w = web_parent(Parent(name=name))
            if w is not None:
                return w
            if name not in SHELLS and name not in LAUNCHERS:
                break
    return None


# -- reverse shells -------------------------------------------------------------------------
DEV_NET = re.compile(r"/dev/(?:tcp|udp)/([^/\s]+)/(\d+)")
_NC_NAMES = frozenset(
    {"nc", "ncat", "netcat", "nc.openbsd", "nc.traditional", "pnc", "cryptcat", "sbd"}
)
_NC_EXEC_LONG = frozenset({"--exec", "--sh-exec", "--lua-exec", "-e", "-c"})
_SOCAT_EXEC = ("exec:", "exec,", "system:", "system,")
_SOCAT_NET = re.compile(
    r"^(?:tcp|tcp4|tcp6|udp|udp4|udp6|sctp|ssl|openssl|tcp-connect|tcp4-connect|tcp6-connect|"
    r"udp-connect|openssl-connect|ssl-connect|tcp-listen|tcp-l|tcp4-listen|tcp6-listen|"
    r"udp-listen|udp-l|openssl-listen|ssl-l|sctp-connect|sctp-listen)[:,]",
    re.IGNORECASE,
)
_HOST_PORT = re.compile(
    r"((?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-fA-F:]+\]|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7})"
    r"[\"'\s,:/]{1,6}(\d{2,5})\b"
)
_CODE_SOCKET: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "python": (
        re.compile(r"\bsocket\b|\bcreate_connection\b"),
        re.compile(
            r"subprocess|pty\.spawn|os\.dup2|/bin/(?:ba|z|k|da)?sh\b|os\.system|popen|os\.exec"
            r"|['\"](?:ba|z|k|da)?sh['\"]"
        ),
    ),
    "perl": (
        re.compile(r"\bSocket\b|IO::Socket|\bsocket\s*\("),
        re.compile(r"\bexec\b|\bsystem\b|/bin/(?:ba|z|k|da)?sh\b|fdopen|open\s*\(\s*STD(?:IN|OUT)"),
    ),
    "ruby": (
        re.compile(r"TCPSocket|UDPSocket|Socket\.new|Socket\.tcp"),
        re.compile(r"\bexec\b|\bspawn\b|popen|\bsystem\b|/bin/(?:ba|z|k|da)?sh\b|%x|`"),
    ),
    "php": (
        re.compile(r"fsockopen|pfsockopen|socket_create|stream_socket_client"),
        re.compile(
            r"\bexec\b|shell_exec|\bsystem\b|passthru|popen|proc_open|/bin/(?:ba|z|k|da)?sh\b|`"
        ),
    ),
    "node": (
        re.compile(
            r"require\(\s*['\"](?:node:)?net['\"]\s*\)|net\.Socket|net\.connect|createConnection"
        ),
        re.compile(r"child_process|\bspawn\b|\bexec\b|/bin/(?:ba|z|k|da)?sh\b"),
    ),
    "lua": (
        re.compile(r"socket"),
        re.compile(r"popen|os\.execute|/bin/(?:ba|z|k|da)?sh\b"),
    ),
    "tclsh": (re.compile(r"\bsocket\b"), re.compile(r"\bexec\b|/bin/(?:ba|z|k|da)?sh\b")),
    "pwsh": (
        re.compile(r"TCPClient|Net\.Sockets", re.IGNORECASE),
        re.compile(r"\biex\b|Invoke-Expression|GetStream|ExecutionContext", re.IGNORECASE),
    ),
}
_CODE_ALIASES = {
    "pypy": "python",
    "bun": "node",
    "deno": "node",
    "luajit": "lua",
    "powershell": "pwsh",
}
_AWK_NET = re.compile(r"/inet[46]?/(?:tcp|udp)/")
_PTY_SPAWN = re.compile(r"pty\.spawn\s*\(\s*['\"]?(?:/bin/|/usr/bin/)?(?:ba|z|k|da)?sh")
_ZSH_TCP = re.compile(r"zmodload\s+zsh/net/(?:tcp|socket)")


def _dest(text: str) -> str:
    m = _HOST_PORT.search(text)
    return f"{m.group(1)}:{m.group(2)}" if m else ""


def _nc_exec(argv: list[str]) -> bool:
    for a in argv[1:]:
        if a in _NC_EXEC_LONG or a.startswith(("--exec=", "--sh-exec=", "--lua-exec=")):
            return True
        if a.startswith("-") and not a.startswith("--") and len(a) > 2:
            letters = a[1:]
            if letters[0] in "ec" and "/" in letters:  # -e/bin/sh
                return True
            if letters.isalpha() and letters[-1] in "ec":  # -nve /bin/sh
                return True
    return False


def reverse_shell(v: ProcView) -> tuple[str, str] | None:
    """(kind, destination or "") when the launch is a reverse (or bind) shell."""
    cmds = v.commands
    by_pipeline: dict[int, list[Command]] = {}
    for c in cmds:
        by_pipeline.setdefault(c.pipeline, []).append(c)
    for c in cmds:
        for op, target in c.redirects:
            m = DEV_NET.search(target)
            if m is None:
                continue
            dest = f"{m.group(1)}:{m.group(2)}"
            shell_like = c.name in SHELLS or c.name in INTERPRETERS or c.name == "exec"
            piped_shell = any(
                o.name in SHELLS for o in by_pipeline.get(c.pipeline, ()) if o is not c
            )
            if (
                shell_like
                or "<>" in op
                or (op.lstrip("0123456789").startswith("<") and piped_shell)
            ):
                return "dev-tcp", dest
    for c in cmds:
        name = c.name
        if name in _NC_NAMES and _nc_exec(c.argv):
            return "netcat-exec", _dest(" ".join(c.argv[1:]))
        if name == "gs-netcat" and "-i" in c.argv[1:]:
            return "gs-netcat", ""
        if name == "socat":
            args = [a.lower() for a in c.argv[1:]]
            if any(a.startswith(_SOCAT_EXEC) for a in args) and any(
                _SOCAT_NET.match(a) for a in args
            ):
                net = next((a for a in c.argv[1:] if _SOCAT_NET.match(a)), "")
                parts = net.split(":")
                dest = f"{parts[1]}:{parts[2].split(',')[0]}" if len(parts) >= 3 else ""
                return "socat-exec", dest
        if name == "xterm" and "-display" in c.argv[1:]:
            return "xterm-display", ""
    for group in by_pipeline.values():
        names = {c.name for c in group}
        if names & SHELLS and any(
            c.name in RAW_CLIENTS and (c.name != "openssl" or network_tool(c)) for c in group
        ):
            client = next(c for c in group if c.name in RAW_CLIENTS)
            return "pipe-to-shell", _dest(" ".join(client.argv[1:]))
    names = {c.name for c in cmds}
    if names & {"mkfifo", "mknod"} and names & SHELLS and names & RAW_CLIENTS:
        client = next(c for c in cmds if c.name in RAW_CLIENTS)
        return "fifo", _dest(" ".join(client.argv[1:]))
    for interp, code in v.codes:
        lang = _CODE_ALIASES.get(interp, interp)
        if lang in ("awk", "gawk", "mawk", "nawk", "busybox-awk"):
            if _AWK_NET.search(code):
                return "awk-inet", _dest(code.replace("/", " "))
            continue
        pats = _CODE_SOCKET.get(lang)
        if pats is not None and pats[0].search(code) and pats[1].search(code):
            return f"{lang}-socket", _dest(code)
        if lang == "python" and _PTY_SPAWN.search(code):
            return "python-pty", ""
    if v.lossy or any(c.name == "zsh" for c in cmds):
        text = v.text()
        if _ZSH_TCP.search(text) and "ztcp" in text:
            return "zsh-ztcp", _dest(text)
    return None


# -- download and execute -------------------------------------------------------------------
_URL = re.compile(r"\b(?:https?|ftps?|tftp)://([^\s/'\"`|;&)<>:]+)", re.IGNORECASE)
_CODE_FETCH: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "python": (
        re.compile(r"urllib|urlopen|urlretrieve|requests\.(?:get|post)|http\.client|httpx|wget\."),
        re.compile(r"\bexec\s*\(|\beval\s*\(|os\.system|subprocess|os\.chmod|os\.exec|popen"),
    ),
    "perl": (
        re.compile(r"LWP|HTTP::Tiny|getstore|\bget\s*\(|IO::Socket"),
        re.compile(r"\beval\b|\bsystem\b|\bexec\b|`|chmod"),
    ),
    "ruby": (
        re.compile(r"open-uri|Net::HTTP|URI\.open|URI\.parse|HTTParty|Faraday"),
        re.compile(r"\beval\b|\bsystem\b|\bexec\b|%x|`|\bspawn\b|chmod"),
    ),
    "php": (
        re.compile(
            r"file_get_contents\s*\(\s*['\"](?:https?|ftp)|fopen\s*\(\s*['\"](?:https?|ftp)"
            r"|curl_exec|copy\s*\(\s*['\"](?:https?|ftp)|readfile\s*\(\s*['\"]https?"
        ),
        re.compile(
            r"\beval\b|\bsystem\b|\bexec\b|shell_exec|passthru|include|require|popen|proc_open"
            r"|chmod|`"
        ),
    ),
    "node": (
        re.compile(
            r"https?\.get|https?\.request|\bfetch\s*\(|axios|require\(\s*['\"]request"
            r"|require\(\s*['\"](?:node:)?https?['\"]\s*\)"
        ),
        re.compile(r"\beval\s*\(|child_process|new\s+Function|vm\.run|execSync|\bspawn\b|chmod"),
    ),
    "lua": (
        re.compile(r"socket\.http|http\.request"),
        re.compile(r"loadstring|\bload\s*\(|os\.execute|popen"),
    ),
    "pwsh": (
        re.compile(
            r"DownloadString|DownloadFile|DownloadData|Invoke-WebRequest|\biwr\b|Invoke-RestMethod"
            r"|\birm\b|Net\.WebClient|\bwget\b|\bcurl\b",
            re.IGNORECASE,
        ),
        re.compile(r"\biex\b|Invoke-Expression|Start-Process|&\s*\(|\.Invoke\(", re.IGNORECASE),
    ),
}
_STDIN_ARGS = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
_DATA_SUFFIXES = (
    ".tar",
    ".tgz",
    ".gz",
    ".zip",
    ".xz",
    ".bz2",
    ".zst",
    ".json",
    ".txt",
    ".csv",
    ".xml",
    ".yaml",
    ".yml",
    ".deb",
    ".rpm",
    ".apk",
    ".whl",
    ".jar",
    ".asc",
    ".sig",
    ".sha256",
    ".md5",
    ".pem",
    ".crt",
    ".key",
    ".png",
    ".jpg",
    ".pdf",
    ".html",
    ".log",
)


def _is_fetcher(c: Command) -> bool:
    if not c.argv:
        return False
    raw = base(c.argv[0])
    if raw in _LWP_ALIASES:
        return True
    name = c.name
    if name in ("http", "https"):
        return len(c.argv) > 1
    if name == "openssl":
        return network_tool(c) is not None
    return name in FETCHERS


def _reads_stdin(c: Command) -> bool:
    """A shell or interpreter that runs what it reads on standard input."""
    name = c.name
    if name not in SHELLS and name not in INLINE_FLAGS and name not in ("source", "."):
        return False
    args = c.argv[1:]
    for i, a in enumerate(args):
        if a in _STDIN_ARGS:
            return True
        if a == "-s" and name in SHELLS:
            return True
        if a.startswith("-") and len(a) > 1 and not a.startswith("--"):
            flags = INLINE_FLAGS.get(name, ())
            if a in flags or (name in SHELLS and "c" in a[1:]):
                return False  # code on the command line: stdin is data
            continue
        if a.startswith("--"):
            continue
        if i == 0 or not args[i - 1].startswith("-"):
            return False  # a script file: stdin is its data
    return True


def _fetch_outputs(c: Command) -> set[str]:
    """Names a fetcher writes its download to (explicit output, else the URL's last part)."""
    out: set[str] = set()
    args = c.argv[1:]
    name = c.name
    urls: list[str] = []
    remote_name = name in ("wget", "wget2", "tftp", "ftp", "aria2c", "axel", "lwp-download")
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a.startswith("--output-document=") or a.startswith("--output="):
            out.add(a.split("=", 1)[1])
        elif a in ("-o", "--output", "-O", "--output-document", "-l", "-r") and nxt:
            if name in ("curl",) and a == "-O":
                remote_name = True
            elif not (name in ("wget", "wget2") and a == "-O" and nxt == "-"):
                out.add(nxt)
        elif a.startswith("-") and not a.startswith("--") and len(a) > 2 and a[1:].isalpha():
            if a.endswith("o") and nxt:
                out.add(nxt)
            if "O" in a:
                if name == "curl":
                    remote_name = True
                elif a.endswith("O") and nxt and nxt != "-":
                    out.add(nxt)
        elif a in ("--remote-name", "--remote-name-all"):
            remote_name = True
        elif not a.startswith("-"):
            urls.append(a)
    if name == "lwp-download" and len(urls) > 1:
        out.add(urls[-1])
    if name in ("scp", "rsync", "ftpget") and len(urls) > 1:
        out.add(urls[-1] if name != "ftpget" else urls[1])
    if remote_name:
        for u in urls:
            last = u.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if last and "." not in last.split(":")[0][:0] and "://" not in last:
                out.add(last)
    return {o for o in out if o and o != "-" and not o.lower().endswith(_DATA_SUFFIXES)}


def _url_key(v: ProcView, fetcher: Command | None) -> str:
    m = _URL.search(v.text())
    if m is not None:
        return m.group(1).lower()
    if fetcher is not None:
        for a in fetcher.argv[1:]:
            if not a.startswith("-") and ("." in a or ":" in a):
                return a.split("/", 1)[0].lower()
        return fetcher.name
    return ""


def download_execute(v: ProcView) -> tuple[str, str] | None:
    """(kind, where from) when one command line fetches code and runs it."""
    cmds = v.commands
    for c in cmds:  # sh -c "$(curl ...)", bash <(wget -O- ...), eval "$(curl ...)"
        if c.substituted and c.shell_arg and _is_fetcher(c):
            return "substitution", _url_key(v, c)
    by_pipeline: dict[int, list[Command]] = {}
    for c in cmds:
        by_pipeline.setdefault(c.pipeline, []).append(c)
    for group in by_pipeline.values():
        fetcher = next((c for c in group if _is_fetcher(c)), None)
        if fetcher is None:
            continue
        after = [c for c in group if c.seq >= fetcher.seq and c is not fetcher]
        if any(_reads_stdin(c) for c in after if c.name != fetcher.name):
            return "pipe", _url_key(v, fetcher)
    outputs: dict[str, Command] = {}
    for c in cmds:
        if _is_fetcher(c):
            for o in _fetch_outputs(c):
                outputs[base(o)] = c
            continue
        if not outputs or not c.argv:
            continue
        runs = base(c.argv[0]) if c.name not in SHELLS | INTERPRETERS else ""
        if c.name in SHELLS or c.name in INTERPRETERS:
            operand = next((a for a in c.argv[1:] if not a.startswith("-")), "")
            if shell_script(c.argv, v.lossy) is None and inline_code(c.argv, v.lossy) is None:
                runs = base(operand)
        if runs and runs in outputs and c.name not in ("chmod", "chown", "mv", "cp", "rm", "ls"):
            return "fetch-then-run", _url_key(v, outputs[runs])
    for interp, code in v.codes:
        lang = _CODE_ALIASES.get(interp, interp)
        pats = _CODE_FETCH.get(lang)
        if pats is not None and pats[0].search(code) and pats[1].search(code):
            return f"{lang}-fetch-exec", _url_key(v, None) or lang
    return None


# -- crypto miners --------------------------------------------------------------------------
_MINER_NAME = re.compile(
    r"^(?:xmrig|xmr-stak|xmr-proxy|xmr-node-proxy|cpuminer|ccminer|srbminer|teamredminer|lolminer|"
    r"nbminer|t-rex|trex|phoenixminer|nanominer|ethminer|nsfminer|bzminer|wildrig|minerd|cgminer|"
    r"bfgminer|sgminer|nheqminer|ethdcrminer|kawpowminer|progpowminer|hellminer|cryptodredge|"
    r"gminer|miniz|onezerominer|xlarig|bminer|z-enemy|rigel|claymore|xmrminer|moneroocean|"
    r"excavator|verus-solver|ccminer-verus|nicehashminer|cudominer|minergate)"
)
_MINER_ARG = re.compile(
    r"stratum\d?\+(?:tcp|ssl|tls|udp|ws|wss)\d?://|--donate-level\b|--randomx-\w+|--rig-id\b"
    r"|--cpu-max-threads-hint\b|--nicehash\b|--coin[= ](?:xmr|monero|etc|rvn|erg|zeph|kas)\b"
    r"|(?:\s|^)(?:-a|--algo|--algorithm)[= ]\s*(?:rx/\w+|randomx|cryptonight\S*|cn/\w+|cn-\w+"
    r"|kawpow|ethash|etchash|autolykos2?|argon2/\w+|ghostrider|kheavyhash|verushash|equihash\S*)\b",
    re.IGNORECASE,
)
_POOL = re.compile(
    r"(?:^|[\s/@=.:])((?:[a-z0-9-]+\.)*(?:supportxmr\.com|moneroocean\.stream|nanopool\.org"
    r"|minexmr\.com|c3pool\.(?:com|org)|hashvault\.pro|2miners\.com|f2pool\.com|herominers\.com"
    r"|unmineable\.com|nicehash\.com|ethermine\.org|minergate\.com|xmrpool\.(?:eu|net)"
    r"|p2pool\.io|kryptex\.network|viabtc\.(?:com|net)|antpool\.com|woolypooly\.com"
    r"|zergpool\.com|zpool\.ca|prohashing\.com|miningpoolhub\.com|hiveon\.(?:net|com)"
    r"|flexpool\.io|xmrfast\.com|monerohash\.com|dwarfpool\.com|minerrocket\.com))",
    re.IGNORECASE,
)
_POOL_OPT = re.compile(
    r"(?:\s|^)(?:-o|--url|--pool|-P)[= ]\s*(?:[a-z0-9+]+://)?([^\s:/]*pool[^\s:/]*):\d{2,5}\b",
    re.IGNORECASE,
)
_WALLET = re.compile(r"(?:\s|^|[=.])(4[0-9AB][1-9A-HJ-NP-Za-km-z]{93})(?:\s|$|[.,])")


def crypto_miner(v: ProcView) -> tuple[str, str] | None:
    """(what gave it away, the miner or pool) when the launch runs a cryptocurrency miner."""
    for c in v.commands:
        if c.argv and c.name not in TEXT_TOOLS and _MINER_NAME.match(c.name):
            return "program", c.name
    if v.name and _MINER_NAME.match(v.name) and v.name not in TEXT_TOOLS:
        return "program", v.name
    for c in v.commands:
        if not c.argv or c.name in TEXT_TOOLS:
            continue
        args = " " + " ".join(c.argv[1:])
        pool = _POOL.search(args) or _POOL_OPT.search(args)
        m = _MINER_ARG.search(args)
        if m is not None:
            return "arguments", pool.group(1).lower() if pool else c.name
        if pool is not None:
            return "pool", pool.group(1).lower()
        if _WALLET.search(args) and any(a in ("-u", "--user", "-w", "--wallet") for a in c.argv):
            return "wallet", c.name
    return None


# -- environment reads, loader variables, kernel modules -------------------------------------
_ENVIRON = re.compile(
    r"/proc/(?:self|thread-self|\d+|\*|\$\$|\$\w+|\[0-9\]\*)(?:/task/\d+)?/environ\b"
)
ENVIRON_PATH = re.compile(r"^/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/environ$")
_ENV_OPTS = frozenset({"-0", "--null", "--help", "--version"})


def environment_dump(v: ProcView) -> str | None:
    """``env``/``printenv`` listing the environment, or a command reading
    ``/proc/*/environ``: what it is, else None. ``env`` running a program is not a dump."""
    for c in v.commands:
        if c.name == "printenv":
            return "printenv"
        if c.name == "env":
            args = c.argv[1:]
            if all(a in _ENV_OPTS or a.startswith(("-u", "--unset")) for a in args) and not any(
                a.startswith("-u") and len(a) == 2 for a in args[-1:]
            ):
                return "env"
            continue
        for op, target in c.redirects:
            if op.lstrip("0123456789").startswith("<") and _ENVIRON.search(target):
                return "/proc/*/environ"
        if c.name not in SHELLS and any(_ENVIRON.search(a) for a in c.argv[1:]):
            return "/proc/*/environ"
    for _, code in v.codes:
        if _ENVIRON.search(code):
            return "/proc/*/environ"
    return None


HIJACK_VARS = frozenset({"LD_PRELOAD", "LD_AUDIT"})
_SYSTEM_LIBS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib/")
_BENIGN_PRELOADS = (
    "libjemalloc",
    "libtcmalloc",
    "libmimalloc",
    "libeatmydata",
    "libfaketime",
    "libnss_wrapper",
    "libuid_wrapper",
    "libsocket_wrapper",
    "libstdbuf",
    "libsandbox",
    "libasan",
    "libtsan",
    "libvgl",
    "libgtk3-nocsd",
    "libcudart",
)


def loader_value_suspicious(var: str, value: str) -> bool:
    """Whether a loader variable's value points where an attacker puts a library."""
    value = value.strip().strip("'\"")
    if not value:
        return False
    parts = [p for p in re.split(r"[:\s]", value) if p]
    if var == "LD_LIBRARY_PATH":
        return any(writable_dir(p) is not None or hidden(p) for p in parts if p.startswith("/"))
    for p in parts:
        name = base(p)
        system = p.startswith(_SYSTEM_LIBS) and not hidden(p)
        benign = name.startswith(_BENIGN_PRELOADS)
        if not (benign and (system or "/" not in p)):
            return True
    return False


def loader_assignments(v: ProcView) -> list[tuple[str, str]]:
    """(variable, value) of LD_PRELOAD/LD_AUDIT/LD_LIBRARY_PATH set on the command line."""
    out: list[tuple[str, str]] = []
    for c in v.commands:
        for k, val in c.assigns.items():
            if k in HIJACK_VARS or k == "LD_LIBRARY_PATH":
                out.append((k, val))
        if c.argv and c.name in ("export", "env", "declare", "typeset", "setenv", "sudo", "doas"):
            for a in c.argv[1:]:
                k, eq, val = a.partition("=")
                if eq and (k in HIJACK_VARS or k == "LD_LIBRARY_PATH"):
                    out.append((k, val))
            if c.name == "setenv" and len(c.argv) > 2 and c.argv[1] in HIJACK_VARS:
                out.append((c.argv[1], c.argv[2]))
    return out


def preload_file_write(v: ProcView) -> bool:
    """A command line that writes /etc/ld.so.preload (``echo x.so > /etc/ld.so.preload``)."""
    for c in v.commands:
        for op, target in c.redirects:
            if ">" in op and norm_path(target) == "/etc/ld.so.preload":
                return True
        if c.name in ("tee", "cp", "mv", "install", "dd", "ln") and any(
            norm_path(a.removeprefix("of=")) == "/etc/ld.so.preload" for a in c.argv[1:]
        ):
            return True
    return False


MODULE_TOOLS = frozenset({"insmod", "rmmod", "modprobe", "kmod"})
_MODPROBE_QUERY = frozenset(
    {
        "-n",
        "--dry-run",
        "-c",
        "--showconfig",
        "--show-config",
        "-D",
        "--show-depends",
        "-R",
        "--resolve-alias",
        "--dump-modversions",
        "--show-modversions",
        "--show-exports",
        "-V",
        "--version",
        "-h",
        "--help",
    }
)
_KMOD_QUERY = frozenset({"list", "static-nodes", "help", "--version", "-V", "--help", "-h"})
# Daemons that load kernel modules by running modprobe as part of their normal work.
MODULE_LOADER_PARENTS = frozenset(
    {
        "kthreadd",
        "kube-proxy",
        "kubelet",
        "dockerd",
        "containerd",
        "iptables",
        "iptables-legacy",
        "iptables-nft",
        "ip6tables",
        "ip6tables-legacy",
        "ip6tables-nft",
        "xtables-legacy-multi",
        "xtables-nft-multi",
        "nft",
        "firewalld",
        "ufw",
        "systemd-modules-load",
        "systemd-udevd",
        "udevadm",
        "cilium-agent",
        "calico-node",
        "flanneld",
        "aws-k8s-agent",
        "wg-quick",
        "ipvsadm",
        "multipathd",
        "cryptsetup",
        "dracut",
        "mkinitramfs",
        "update-initramfs",
        "dkms",
        "rpm",
        "dpkg",
        "lvm",
        "nvidia-modprobe",
        "nvidia-smi",
    }
)


def module_operation(v: ProcView) -> tuple[str, str] | None:
    """("load"/"unload", the module) when the launch loads or unloads a kernel module."""
    for c in v.commands:
        name = c.name
        if name not in MODULE_TOOLS or not c.argv:
            continue
        args = c.argv[1:]
        if name == "kmod":
            if not args or args[0] in _KMOD_QUERY:
                continue
            if args[0] in ("insmod", "rmmod", "modprobe"):  # kmod as a multi-call name
                name, args = args[0], args[1:]
        if any(a in _MODPROBE_QUERY for a in args) or any(
            a.startswith("-") and not a.startswith("--") and len(a) > 2 and set(a[1:]) & set("nDR")
            for a in args
        ):
            continue
        operands = [a for a in args if not a.startswith("-") and "=" not in a]
        if not operands:
            continue
        unload = name == "rmmod" or any(
            a in ("-r", "--remove", "--remove-dependencies")
            or (a.startswith("-") and not a.startswith("--") and "r" in a[1:])
            for a in args
        )
        return ("unload" if unload else "load"), operands[0]
    return None


MODULE_DIRS = (
    "/lib/modules/",
    "/usr/lib/modules/",
    "/etc/modules-load.d/",
    "/usr/lib/modules-load.d/",
    "/run/modules-load.d/",
    "/etc/modprobe.d/",
    "/usr/lib/modprobe.d/",
    "/run/modprobe.d/",
    "/lib/modprobe.d/",
)
MODULE_FILES = frozenset({"/etc/modules", "/etc/modprobe.conf", "/etc/conf.modules"})
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst", ".ko.bz2")
