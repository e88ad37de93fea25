"""What a process spawn really runs: resolve the executable, see through launchers.

``env sh -c ...``, ``timeout 5 nc ...``, ``busybox sh`` and a copy of ``/bin/sh`` in ``/tmp``
are all a shell; the judgement is made on every program the command line runs.
"""

from __future__ import annotations

import os
import sys

from ramparts._paths import in_writable_dir, resolve

SHELLS = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "mksh",
        "csh",
        "tcsh",
        "fish",
        "ash",
        "rbash",
        "busybox",
        "pwsh",
        "yash",
        "elvish",
    }
)
NETWORK_TOOLS = frozenset(
    {
        "curl",
        "wget",
        "nc",
        "ncat",
        "netcat",
        "nc.openbsd",
        "nc.traditional",
        "socat",
        "telnet",
        "ssh",
        "scp",
        "sftp",
        "ftp",
        "tftp",
        "nmap",
        "dig",
        "nslookup",
        "host",
        "openssl",
        "rsync",
        "aria2c",
        "lynx",
        "w3m",
        "ping",
        "tcpdump",
        "sshpass",
        "proxychains",
        "chisel",
        "ngrok",
    }
)
# Interpreters and the flags with which they run code given on the command line.
INTERPRETERS = {
    "python": ("-c",),
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "php": ("-r",),
    "node": ("-e", "--eval", "-p", "--print"),
    "nodejs": ("-e", "--eval", "-p", "--print"),
    "lua": ("-e",),
    "tclsh": (),
    "awk": (),
    "gawk": (),
    "mawk": (),
}
# Programs that run another program named by a later argument.
LAUNCHERS = frozenset(
    {
        "env",
        "nohup",
        "timeout",
        "nice",
        "ionice",
        "stdbuf",
        "setsid",
        "sudo",
        "doas",
        "xargs",
        "chroot",
        "unbuffer",
        "time",
        "strace",
        "ltrace",
        "flock",
        "chrt",
        "taskset",
        "unshare",
        "nsenter",
        "script",
        "exec",
        "command",
        "builtin",
    }
)

# multiprocessing starts helpers with "python -c" in these exact shapes.
_MP_PREFIXES = (
    "from multiprocessing.resource_tracker import main;main(",
    "from multiprocessing.spawn import spawn_main; spawn_main(",
    "from multiprocessing.forkserver import main; main(",
)
_MP_TAIL_OK = frozenset("0123456789, =_abcdefghijklmnopqrstuvwxyz()[]{}'\"")


def base_name(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    # python3.12 -> python, python3 -> python
    if name.startswith("python"):
        return "python"
    return name


def which(name: str, env_path: str | None) -> str | None:
    if "/" in name:
        return name
    for d in (env_path if env_path is not None else os.environ.get("PATH", "")).split(":"):
        cand = (d or ".") + "/" + name
        if os.access(cand, os.X_OK) and not os.path.isdir(cand):
            return cand
    return None


def _is_multiprocessing(code: str) -> bool:
    for prefix in _MP_PREFIXES:
        if code.startswith(prefix) and code.endswith(")"):
            tail = code[len(prefix) : -1]
            return set(tail) <= _MP_TAIL_OK and "import" not in tail and ";" not in tail
    return False


class Program:
    """One program in a command line, with what makes it notable.

    ``nested`` is true for a program found inside a shell's ``-c`` command string.
    """

    __slots__ = ("argv", "name", "nested", "path", "real")

    def __init__(self, path: str, argv: list[str], nested: bool = False) -> None:
        self.path = path
        self.real = resolve(path) if path.startswith("/") else path
        self.argv = argv
        self.name = base_name(self.real)
        self.nested = nested

    @property
    def names(self) -> set[str]:
        """The resolved name and the name it was called by (``/tmp/x -> busybox``)."""
        names = {self.name}
        if self.argv:
            names.add(base_name(self.argv[0]))
        names.add(base_name(self.path))
        return names

    def is_shell(self) -> bool:
        return bool(self.names & SHELLS)

    def is_network_tool(self) -> bool:
        return bool(self.names & NETWORK_TOOLS)

    def inline_code(self) -> str | None:
        """The code given with ``-c``/``-e`` to an interpreter, if any."""
        for n in self.names:
            flags = INTERPRETERS.get(n)
            if flags is None:
                continue
            args = self.argv[1:]
            if not flags and args:  # awk/tclsh: the program text is an argument
                return next((a for a in args if not a.startswith("-")), None)
            for i, a in enumerate(args):
                for f in flags:
                    if a == f and i + 1 < len(args):
                        code = args[i + 1]
                        if n == "python" and _is_multiprocessing(code):
                            return None
                        return code
                    if a.startswith(f) and len(a) > len(f) and not a.startswith("--"):
                        return a[len(f) :]  # python -cCODE
        return None

    def shell_script(self) -> str | None:
        """The command string of ``sh -c STRING``, if this is a shell given one."""
        if not self.is_shell():
            return None
        args = self.argv[1:]
        if args and self.name == "busybox" and args[0] in SHELLS:
            args = args[1:]
        for i, a in enumerate(args):
            if a == "--":
                return None
            if a.startswith("-") and "c" in a[1:] and not a.startswith("--"):
                return args[i + 1] if i + 1 < len(args) else None
            if not a.startswith("-"):
                return None
        return None

    def writable(self) -> bool:
        """Runs from a writable staging directory, or interprets a script that lives there."""
        if in_writable_dir(self.real):
            return True
        if self.names & set(INTERPRETERS) or self.is_shell():
            for a in self.argv[1:]:
                if a.startswith("/") and in_writable_dir(resolve(a)):
                    return True
        return False


def _launched(argv: list[str]) -> int | None:
    """Index in ``argv`` of the program a launcher at argv[0] runs, if any."""
    name = base_name(argv[0])
    i = 1
    if name == "busybox":
        return 1 if len(argv) > 1 else None
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a.startswith("-"):
            # options that take a value
            if a in {
                "-u",
                "-n",
                "-c",
                "-k",
                "-s",
                "-C",
                "-g",
                "-p",
                "-t",
                "-S",
                "-o",
                "-e",
                "-i",
                "--signal",
                "--kill-after",
                "--user",
                "--chdir",
                "-I",
                "-L",
                "-P",
                "-d",
            }:
                i += 1
            i += 1
            continue
        if name == "env" and "=" in a:
            i += 1
            continue
        if name == "timeout" and (a[:1].isdigit()):
            i += 1
            continue
        if name in {"nice", "ionice", "chrt", "taskset", "flock"} and (
            a[:1].isdigit() or ("/" in a and name == "flock")
        ):
            i += 1
            continue
        if name == "chroot" and i == 1:
            i += 1
            continue
        break
    return i if i < len(argv) else None


def programs(
    executable: str | None, argv: list[str], env_path: str | None, depth: int = 0
) -> list[Program]:
    """Every program a spawn would run: the executable, through launchers, and the commands
    of a shell's ``-c`` string (``sh -c "wc x; curl evil | sh"`` runs wc, curl and sh)."""
    if not argv and executable:
        argv = [executable]
    if not argv:
        return []
    first = executable or argv[0]
    path = which(first, env_path) or first
    if not path.startswith("/") and "/" in path:
        try:
            path = os.getcwd() + "/" + path
        except OSError:
            pass
    out = [Program(path, argv, nested=depth > 0)]
    seen = 0
    while seen < 4:
        prog = out[-1]
        if not (prog.names & LAUNCHERS):
            break
        idx = _launched(prog.argv)
        if idx is None:
            break
        sub = prog.argv[idx:]
        sub_path = which(sub[0], env_path) or sub[0]
        out.append(Program(sub_path, sub, nested=depth > 0))
        seen += 1
    if depth < 3:
        for prog in list(out):
            script = prog.shell_script()
            if script is None:
                continue
            for words in shell_commands(script)[:64]:
                out.extend(programs(None, words, env_path, depth + 1))
    return out


_SEPARATORS = ";&|\n()"
_KEYWORDS = frozenset(
    {
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "while",
        "until",
        "{",
        "}",
        "!",
        "time",
        "in",
        "esac",
    }
)
_BUILTINS = frozenset(
    {
        "cd",
        "echo",
        "export",
        "read",
        "test",
        "[",
        "[[",
        "true",
        "false",
        ":",
        "set",
        "unset",
        "exit",
        "return",
        "printf",
        "wait",
        "trap",
        "ulimit",
        "umask",
        "shift",
        "local",
        "readonly",
        "alias",
        "type",
        "hash",
        "pwd",
        "let",
        "declare",
        "break",
        "continue",
    }
)


def _substitution(cmd: str, i: int) -> tuple[str, int]:
    """The text of ``$( ... )`` starting after the '(' at ``i``, and the index after ')'."""
    depth = 1
    j = i
    while j < len(cmd) and depth:
        if cmd[j] == "(":
            depth += 1
        elif cmd[j] == ")":
            depth -= 1
        j += 1
    return cmd[i : j - 1 if depth == 0 else j], j


def shell_commands(cmd: str, depth: int = 0) -> list[list[str]]:
    """Split a POSIX shell command string into the argv of each simple command.

    Quotes, escapes, separators (; & | && || newline), subshells, ``$( )`` and backticks are
    understood; redirection targets are kept apart (a ``>/dev/tcp/host/port`` target is
    reported as the pseudo-command ``/dev/tcp``). ``eval`` and ``exec`` are seen through.
    This is a tokenizer for judging, not an interpreter: variables are not expanded.
    """
    commands: list[list[str]] = []
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    redirect = False
    i = 0
    n = len(cmd)

    def end_word() -> None:
        nonlocal redirect
        if cur:
            word = "".join(cur)
            cur.clear()
            if redirect:
                redirect = False
                if word.startswith(("/dev/tcp/", "/dev/udp/")):
                    commands.append(["/dev/tcp", word])
            else:
                words.append(word)

    def end_command() -> None:
        end_word()
        if words:
            commands.append(list(words))
            words.clear()

    while i < n and len(commands) < 256:
        c = cmd[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                cur.append(c)
        elif c == "\\" and i + 1 < n:
            cur.append(cmd[i + 1])
            i += 1
        elif (c == "$" and cmd[i + 1 : i + 2] == "(") or c == "`":
            if c == "`":
                j = cmd.find("`", i + 1)
                j = n if j == -1 else j
                inner, i = cmd[i + 1 : j], j
            else:
                inner, i = _substitution(cmd, i + 2)
                i -= 1
            if depth < 3:
                commands.extend(shell_commands(inner, depth + 1))
        elif quote == '"':
            if c == '"':
                quote = ""
            else:
                cur.append(c)
        elif c in "'\"":
            quote = c
        elif c in " \t":
            end_word()
        elif c == "#" and not cur:
            while i + 1 < n and cmd[i + 1] != "\n":
                i += 1  # a comment runs to the end of the line
        elif c in _SEPARATORS:
            end_command()
        elif c in "<>":
            if cur and "".join(cur).isdigit():
                cur.clear()  # 2>file: the 2 is a descriptor, not a word
            else:
                end_word()
            while i + 1 < n and cmd[i + 1] in "<>&":
                i += 1
            redirect = True
        else:
            cur.append(c)
        i += 1
    end_command()
    out: list[list[str]] = []
    for words_ in commands:
        k = 0
        while k < len(words_) and "=" in words_[k] and not words_[k].startswith(("=", "/")):
            k += 1  # VAR=value prefixes
        rest = words_[k:]
        while rest and rest[0] in _KEYWORDS:
            rest = rest[1:]
        if not rest or rest[0] in ("for", "case", "select", "function"):
            continue
        if rest[0] in ("eval",) and depth < 3:
            out.extend(shell_commands(" ".join(rest[1:]), depth + 1))
            continue
        if rest[0] in ("exec", "command", "builtin", "nohup") and len(rest) > 1:
            rest = rest[1:]
        if rest[0] in (".", "source") and len(rest) > 1:
            out.append([rest[1]])  # the sourced script runs in the shell
            continue
        if rest[0] in _BUILTINS:
            continue
        out.append(rest)
    return out


def as_text_list(value: object, limit: int = 64) -> list[str]:
    """argv as a list of str, whatever the caller passed (str, bytes, PathLike, list)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, os.PathLike)):
        return [as_text(value)]
    out: list[str] = []
    try:
        for item in value:  # type: ignore[attr-defined]
            out.append(as_text(item))
            if len(out) >= limit:
                break
    except TypeError:
        return [as_text(value)]
    return out


def as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode(sys.getfilesystemencoding(), "surrogateescape")
    if isinstance(value, os.PathLike):
        return as_text(os.fspath(value))
    return str(value)
