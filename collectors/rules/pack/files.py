"""Built-in rules: files — integrity of the system files attackers persist through, and
reads of credential material."""

from __future__ import annotations

import re
from typing import Any

from collectors.model import FileActivity, Process
from collectors.rules.engine import HIGH, Hit, RuleContext, rule
from collectors.rules.pack._net import (
    NETWORK_TOOLS,
    SHELLS,
    inline_interpreter,
    lineage_names,
    normalise_path,
    program_names,
)

_HOME = r"(?:/root|/home/[^/]+|/var/lib/[^/]+|/Users/[^/]+)"

# -- system files: path pattern -> (what, ATT&CK technique) ------------------------------------
_SYSTEM_FILES: tuple[tuple[str, str, str], ...] = (
    (r"/etc/(?:passwd|shadow|group|gshadow)", "local accounts", "T1136.001"),
    (r"/etc/sudoers|/etc/sudoers\.d/[^/]+", "sudo rules", "T1548.003"),
    (_HOME + r"/\.ssh/authorized_keys2?", "SSH authorized keys", "T1098.004"),
    (r"/etc/ssh/(?:sshd_config|sshd_config\.d/[^/]+)", "SSH server configuration", "T1098.004"),
    (
        r"/etc/(?:crontab|anacrontab|cron\.d/[^/]+|cron\.(?:hourly|daily|weekly|monthly)/[^/]+)"
        r"|/var/spool/cron/.+",
        "cron jobs",
        "T1053.003",
    ),
    (
        r"/etc/systemd/(?:system|user)/.+|/(?:usr/)?lib/systemd/(?:system|user)/.+"
        r"|" + _HOME + r"/\.config/systemd/user/.+",
        "systemd units",
        "T1543.002",
    ),
    (r"/etc/rc\.local|/etc/init\.d/[^/]+|/etc/rc\d\.d/[^/]+", "init scripts", "T1037.004"),
    (
        r"/etc/(?:profile|bash\.bashrc|bashrc|zshrc|zsh/zshrc|environment)|/etc/profile\.d/[^/]+"
        r"|/root/\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile"
        r"|zshenv|cshrc|tcshrc|kshrc)",
        "shell start-up files",
        "T1546.004",
    ),
    (r"/etc/pam\.d/[^/]+|/etc/pam\.conf", "PAM configuration", "T1556.003"),
)
_SYSTEM_RE = re.compile("|".join(f"(?P<s{i}>{p})" for i, (p, _, _) in enumerate(_SYSTEM_FILES)))

# Programs whose job is to change these files: package managers and instance agents.
MAINTENANCE_PROGRAMS = frozenset(
    {
        "dpkg",
        "apt",
        "apt-get",
        "aptitude",
        "unattended-upgrade",
        "unattended-upgr",
        "yum",
        "dnf",
        "rpm",
        "microdnf",
        "apk",
        "zypper",
        "pacman",
        "packagekitd",
        "snapd",
        "cloud-init",
        "amazon-ssm-agent",
        "ssm-agent-worker",
        "google_guest_agent",
        "waagent",
        "ec2-instance-connect",
    }
)
_WRITES = frozenset(
    {
        FileActivity.CREATE,
        FileActivity.UPDATE,
        FileActivity.DELETE,
        FileActivity.RENAME,
        FileActivity.SET_ATTRIBUTES,
        FileActivity.SET_SECURITY,
    }
)


def system_file(path: str) -> tuple[str, str] | None:
    """(what, technique) when ``path`` (normalised) is a file attackers persist through."""
    m = _SYSTEM_RE.fullmatch(path)
    if m is None or m.lastgroup is None:
        return None
    _, what, tech = _SYSTEM_FILES[int(m.lastgroup[1:])]
    return what, tech


def _cwd(event: FileActivity) -> str | None:
    proc = event.actor.process
    return proc.working_directory if proc is not None else None


def _program(proc: Process | None) -> str | None:
    if proc is None:
        return None
    return proc.name or (proc.file.name if proc.file else None)


_ACTIONS = {
    FileActivity.CREATE: "created",
    FileActivity.UPDATE: "modified",
    FileActivity.DELETE: "deleted",
    FileActivity.RENAME: "renamed",
    FileActivity.SET_ATTRIBUTES: "attributes changed",
    FileActivity.SET_SECURITY: "permissions changed",
}


@rule(
    id="file.system-file-write",
    title="System file that controls access or start-up was changed",
    severity=HIGH,
    techniques=["T1098.004", "T1053.003", "T1136.001", "T1543.002", "T1546.004", "T1548.003"],
    sources=["layer", "falco", "osquery", "tetragon"],
    classes=[FileActivity],
)
def system_file_write(event: FileActivity, ctx: RuleContext) -> Hit | None:
    """File integrity monitoring of what attackers persist through: creation, change,
    deletion, rename (either end) or permission change of ``/etc/passwd``, ``shadow``,
    ``group``, ``gshadow``, sudoers (and ``sudoers.d``), any ``.ssh/authorized_keys`` or
    ``authorized_keys2``, ``sshd_config``, cron (``/etc/crontab``, ``cron.d``,
    ``cron.{hourly,daily,weekly,monthly}``, ``/var/spool/cron``), systemd units, init
    scripts, ``/etc/profile(.d)`` and root's shell start-up files, PAM. Paths are compared
    after normalisation (relative to the process's directory, ``..`` resolved, a container
    root seen from the host — ``/proc/<pid>/root``, overlay ``merged`` — stripped). Changes
    made by package managers and instance agents (dpkg, yum, cloud-init, the SSM agent...,
    as the writer or its ancestor) are left out; writes whose source names no writer
    (osquery FIM) always count. ``/etc/ld.so.preload`` and kernel modules are the process
    rules'. One finding per file."""
    if event.activity_id not in _WRITES:
        return None
    cwd = _cwd(event)
    paths = [event.file.path or event.file.name]
    if event.file_result is not None:
        paths.append(event.file_result.path or event.file_result.name)
    for raw in paths:
        path = normalise_path(raw, cwd)
        if path is None:
            continue
        found = system_file(path)
        if found is None:
            continue
        proc = event.actor.process
        if proc is not None and lineage_names(proc) & MAINTENANCE_PROGRAMS:
            return None
        what, tech = found
        action = _ACTIONS.get(event.activity_id, "changed")
        evidence: dict[str, Any] = {"path": path, "category": what, "technique": tech}
        prog = _program(proc)
        if prog:
            evidence["process"] = prog
        return Hit(key=path, title=f"{what.capitalize()} {action}: {path}", evidence=evidence)
    return None


# -- credential material: path pattern -> (what, programs that read it for a living) -----------
_READERS_AUTH = frozenset(
    {
        "sshd",
        "login",
        "su",
        "sudo",
        "passwd",
        "unix_chkpwd",
        "chage",
        "chpasswd",
        "useradd",
        "usermod",
        "userdel",
        "groupadd",
        "pwck",
        "grpck",
        "vipw",
        "shadowconfig",
        "systemd",
        "cron",
        "crond",
        "polkitd",
        "gdm-session-worker",
        "sssd",
        "nscd",
    }
)
_READERS_SSH = frozenset(
    {
        "ssh",
        "ssh-add",
        "ssh-agent",
        "ssh-keygen",
        "scp",
        "sftp",
        "sshd",
        "ssh-keysign",
        "git",
        "rsync",
        "cloud-init",
    }
)
_READERS_DOCKER = frozenset(
    {
        "docker",
        "dockerd",
        "containerd",
        "buildkitd",
        "crane",
        "skopeo",
        "kaniko",
        "executor",
        "podman",
        "buildah",
        "nerdctl",
    }
)
_READERS_GIT = frozenset({"git", "git-credential-store", "git-remote-https", "git-remote-http"})
_READERS_NETRC = frozenset(
    {"git", "git-remote-https", "git-remote-http", "ftp", "lftp", "curl", "wget"}
)
_READERS_KUBE = frozenset(
    {"kubectl", "helm", "k9s", "kubelet", "kube-proxy", "aws-iam-authenticator"}
)

# (pattern, what, technique, legitimate readers; None: the application's own runtime too)
_CREDENTIAL_FILES: tuple[tuple[str, str, str, frozenset[str] | None], ...] = (
    (
        r"/etc/(?:shadow|gshadow|shadow-|gshadow-)|/etc/security/opasswd",
        "password hashes",
        "T1003.008",
        _READERS_AUTH,
    ),
    (r"/etc/ssh/ssh_host_[^/]*_key", "SSH host private key", "T1552.004", _READERS_SSH),
    (
        _HOME + r"/\.ssh/(?:id_[^/]*|identity|[^/]*\.pem|[^/]*\.key)(?<!\.pub)",
        "SSH private key",
        "T1552.004",
        _READERS_SSH,
    ),
    (
        _HOME + r"/\.aws/(?:credentials|config|sso/cache/[^/]+|cli/cache/[^/]+)",
        "AWS credentials",
        "T1552.001",
        None,
    ),
    (
        r"/(?:var/)?run/secrets/(?:kubernetes\.io|eks\.amazonaws\.com|pods\.eks\.amazonaws\.com)"
        r"/serviceaccount/(?:[^/]*token[^/]*|\.\.data/[^/]*token[^/]*|\.\.[^/]+/[^/]*token[^/]*)",
        "Kubernetes service-account token",
        "T1528",
        None,
    ),
    (
        _HOME + r"/\.docker/config\.json|/etc/docker/config\.json",
        "container registry credentials",
        "T1552.001",
        _READERS_DOCKER,
    ),
    (
        _HOME + r"/\.git-credentials|" + _HOME + r"/\.config/git/credentials",
        "Git credentials",
        "T1552.001",
        _READERS_GIT,
    ),
    (_HOME + r"/\.netrc|" + _HOME + r"/_netrc", "netrc passwords", "T1552.001", _READERS_NETRC),
    (
        _HOME + r"/\.kube/config|/etc/kubernetes/(?:admin|super-admin|kubelet|controller-manager"
        r"|scheduler)\.conf",
        "Kubernetes credentials",
        "T1552.001",
        _READERS_KUBE,
    ),
    (
        _HOME + r"/\.config/gcloud/(?:credentials\.db|access_tokens\.db"
        r"|application_default_credentials\.json|legacy_credentials/.+)"
        r"|" + _HOME + r"/\.azure/(?:accessTokens\.json|msal_token_cache\.(?:json|bin))",
        "cloud CLI credentials",
        "T1552.001",
        None,
    ),
    (
        _HOME + r"/\.(?:pgpass|my\.cnf|npmrc|pypirc|vault-token)"
        r"|" + _HOME + r"/\.terraform\.d/credentials\.tfrc\.json",
        "stored service credentials",
        "T1552.001",
        None,
    ),
    (
        r"/proc/(?:\d+|self|thread-self)(?:/task/\d+)?/mem|/proc/kcore",
        "process memory",
        "T1003.007",
        frozenset({"gdb", "lldb", "strace", "perf", "py-spy", "rbspy"}),
    ),
)
_CRED_RE = re.compile("|".join(f"(?P<c{i}>{p})" for i, (p, *_) in enumerate(_CREDENTIAL_FILES)))
_READS = frozenset({FileActivity.READ, FileActivity.OPEN})
# Who has no business reading credential files: shells, tools that copy or ship bytes.
_LOOTERS = (
    SHELLS
    | NETWORK_TOOLS
    | frozenset(
        {
            "cat",
            "tac",
            "head",
            "tail",
            "less",
            "more",
            "strings",
            "xxd",
            "od",
            "hexdump",
            "base64",
            "base32",
            "grep",
            "egrep",
            "rg",
            "awk",
            "sed",
            "cp",
            "mv",
            "tar",
            "zip",
            "gzip",
            "dd",
            "find",
            "vi",
            "vim",
            "nano",
            "scp",
            "rsync",
            "sftp",
            "ssh",
            "jq",
            "openssl",
            "gpg",
            "truffle",
            "trufflehog",
            "gitleaks",
            "linpeas",
            "sqlite3",
        }
    )
)


def credential_file(path: str) -> tuple[str, str, frozenset[str] | None] | None:
    """(what, technique, legitimate readers) when ``path`` (normalised) holds credentials."""
    m = _CRED_RE.fullmatch(path)
    if m is None or m.lastgroup is None:
        return None
    _, what, tech, readers = _CREDENTIAL_FILES[int(m.lastgroup[1:])]
    return what, tech, readers


def _looter(proc: Process) -> bool:
    return bool(program_names(proc) & _LOOTERS) or inline_interpreter(proc)


@rule(
    id="file.sensitive-read",
    title="Credential material read",
    severity=HIGH,
    techniques=["T1552.001", "T1552.004", "T1003.008", "T1528"],
    sources=["layer", "falco", "osquery", "tetragon"],
    classes=[FileActivity],
)
def sensitive_read(event: FileActivity, ctx: RuleContext) -> Hit | None:
    """Reads (and opens) of credential material: ``/etc/shadow``/``gshadow``, SSH private
    keys (user ``~/.ssh/id_*``, host ``/etc/ssh/ssh_host_*_key``; not ``.pub``), AWS
    credentials and config (``~/.aws``, SSO and CLI caches), Kubernetes and EKS
    service-account tokens, registry credentials (``~/.docker/config.json``),
    ``.git-credentials``, ``.netrc``, kubeconfigs, gcloud/Azure CLI tokens, ``.pgpass``,
    ``.npmrc``, ``/proc/<pid>/mem``. In a Lambda function every such read fires. Elsewhere
    the programs whose job it is stay quiet (sshd reading shadow, ssh reading its key, the
    docker CLI its config, git its credentials); files an application's SDK reads for a
    living (AWS config, service-account tokens, cloud CLI tokens) fire only when a shell,
    a copying/shipping tool (cat, base64, curl, tar...) or inline code reads them.
    Reads whose source names no reader (osquery FIM) always count. Environment reads
    (``/proc/*/environ``) are the process rules'. One finding per file."""
    if event.activity_id not in _READS:
        return None
    path = normalise_path(event.file.path or event.file.name, _cwd(event))
    if path is None:
        return None
    found = credential_file(path)
    if found is None:
        return None
    what, tech, readers = found
    proc = event.actor.process
    lam = ctx.workload.type == "lambda" if ctx.workload else ctx.source == "layer"
    if not lam and proc is not None:
        if readers is None:
            if not _looter(proc):
                return None  # the application's SDK or runtime reading its own credentials
        elif program_names(proc) & readers:
            return None
    evidence: dict[str, Any] = {"path": path, "category": what, "technique": tech}
    prog = _program(proc)
    if prog:
        evidence["process"] = prog
    return Hit(key=path, title=f"{what.capitalize()} read: {path}", evidence=evidence)
