"""Paths judged after normalisation: ``..``, duplicate slashes, symlinks, file descriptors.

Sensitive files are recognised two ways, so that a symlink, a hard link or a ``/proc``
alias cannot hide them:

* by pattern on the resolved path (``/proc/*/environ``, ``/etc/shadow``, ...);
* by identity: the (device, inode) of every sensitive file that exists when the sensor
  starts, and "any file of procfs" as a trigger for the pattern check.
"""

from __future__ import annotations

import os

from ramparts._glob import PathGlobs

# Reading any of these is how credentials and secrets are stolen from a workload.
SENSITIVE_READ = (
    "/proc/*/environ",
    "/proc/*/task/*/environ",
    "/proc/*/mem",
    "/proc/*/task/*/mem",
    "/proc/kcore",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/sudoers",
    "/etc/sudoers.d/**",
    "/etc/ssh/ssh_host_*_key",
    "/root/.ssh/**",
    "/home/*/.ssh/**",
    "/root/.aws/**",
    "/home/*/.aws/**",
    "/root/.docker/config.json",
    "/home/*/.docker/config.json",
    "/root/.kube/config",
    "/home/*/.kube/config",
    "/var/run/secrets/**",
    "/run/secrets/**",
)

# Writing these persists access or subverts the system (FIM territory).
SENSITIVE_WRITE = (
    *SENSITIVE_READ,
    "/etc/passwd",
    "/etc/group",
    "/etc/crontab",
    "/etc/cron.d/**",
    "/etc/cron.hourly/**",
    "/etc/cron.daily/**",
    "/var/spool/cron/**",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d/**",
    "/etc/profile",
    "/etc/profile.d/**",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/root/.bashrc",
    "/home/*/.bashrc",
    "/proc/sys/**",
    "/sys/**",
)

# Where a function can write and from where an attacker stages binaries.
WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/shm", "/run/user")
_WRITABLE_PREFIXES = tuple(d + "/" for d in WRITABLE_DIRS)

# Writes that are always fine: the null device and the standard streams.
HARMLESS_WRITES = frozenset(
    {
        "/dev/null",
        "/dev/zero",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/tty",
        "/dev/full",
        "/dev/urandom",
    }
)

DEFAULT_WRITE_ALLOW = ("/tmp/**",)

_sensitive_read = PathGlobs(SENSITIVE_READ)
_sensitive_write = PathGlobs(SENSITIVE_WRITE)


def _stat_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


class Identities:
    """(device, inode) of sensitive files present at start, and procfs's device."""

    __slots__ = ("inodes", "proc_dev")

    def __init__(self) -> None:
        self.proc_dev: int | None = None
        ident = _stat_id("/proc/self/environ")
        if ident is not None:
            self.proc_dev = ident[0]
        self.inodes: frozenset[tuple[int, int]] = frozenset()

    def scan(self) -> None:
        """Collect inode identities of existing sensitive files (a few dozen stat calls)."""
        found: set[tuple[int, int]] = set()
        candidates = ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/sudoers"]
        homes = ["/root"]
        home = os.environ.get("HOME")
        if home and home not in homes:
            homes.append(home)
        for h in homes:
            for sub in (".ssh", ".aws", ".kube", ".docker"):
                candidates.extend(_list(h + "/" + sub))
        candidates.extend("/etc/ssh/" + n for n in _names("/etc/ssh") if n.endswith("_key"))
        for root in ("/var/run/secrets", "/run/secrets"):
            candidates.extend(_walk(root, depth=4))
        for c in candidates:
            ident = _stat_id(c)
            if ident is not None:
                found.add(ident)
        self.inodes = frozenset(found)


def _names(d: str) -> list[str]:
    try:
        return os.listdir(d)
    except OSError:
        return []


def _list(d: str) -> list[str]:
    return [d + "/" + n for n in _names(d)]


def _walk(root: str, depth: int) -> list[str]:
    out: list[str] = []
    stack = [(root, 0)]
    while stack and len(out) < 256:
        d, lvl = stack.pop()
        for n in _names(d):
            p = d + "/" + n
            out.append(p)
            if lvl < depth and os.path.isdir(p) and not os.path.islink(p):
                stack.append((p, lvl + 1))
    return out


class Resolver:
    """``realpath`` for the common case in two ``lstat`` calls instead of one per component.

    The real path of a directory is cached with the directory's (device, inode) as seen by
    ``lstat`` through its ancestors: if any ancestor is later swapped for a symlink, the
    inode seen differs and the path is resolved again. A final component that is a
    symlink, and any path with ``.``/``..``/``//`` in it, takes the full ``realpath``.
    """

    __slots__ = ("_dirs", "_settled", "safe", "trusting")

    def __init__(self) -> None:
        self._dirs: dict[str, tuple[int, int, str]] = {}
        # Directories confirmed since the last change this process could have made to the
        # file system. Only the process itself (audited renames, links, deletes) or a
        # process it started can swap a directory under /tmp; until either happens, a
        # directory confirmed once needs no second lstat. ``distrust`` (a process was
        # started, ever) turns that off for good. (Lambda extensions, which the function's
        # owner deploys, share /tmp too: they are trusted like the function's own code.)
        self._settled: set[str] = set()
        # Files (by the path as spelled) found to be plain files, or absent, in a settled
        # directory: until a change is seen, nothing can turn them into links.
        self.safe: set[str] = set()
        self.trusting = True

    def settled(self, d: str) -> str | None:
        """The real path of a directory confirmed since the last change, else None."""
        if d in self._settled:
            cached = self._dirs.get(d)
            if cached is not None:
                return cached[2]
        return None

    def changed(self) -> None:
        """The file system may have changed under us (a rename, link or delete was seen)."""
        self._settled.clear()
        self.safe.clear()

    def distrust(self) -> None:
        """Another process may change the file system at any time from now on."""
        self.trusting = False
        self._settled.clear()
        self.safe.clear()

    def resolve(self, ap: str) -> tuple[str, os.stat_result | None]:
        """(resolved path, lstat of it when it exists) for an absolute path."""
        if "/." in ap or "//" in ap or not ap.startswith("/") or ap.endswith("/"):
            return self._slow(ap)
        parent, _, name = ap.rpartition("/")
        try:
            st: os.stat_result | None = os.lstat(ap)
        except FileNotFoundError:
            st = None
        except (OSError, ValueError):
            return self._slow(ap)
        if st is not None and _S_ISLNK(st.st_mode):
            return self._slow(ap)
        real_parent = self._dir(parent or "/")
        if real_parent is None:
            return self._slow(ap)
        return (real_parent + "/" + name if real_parent != "/" else "/" + name), st

    def _dir(self, d: str) -> str | None:
        if d in self._settled:
            cached = self._dirs.get(d)
            if cached is not None:
                return cached[2]
        try:
            st = os.lstat(d)
        except (OSError, ValueError):
            return None
        if not _S_ISDIR(st.st_mode):
            return None  # a symlink (or not a directory): the slow path decides
        cached = self._dirs.get(d)
        if cached is not None and cached[0] == st.st_dev and cached[1] == st.st_ino:
            if self.trusting:
                self._settled.add(d)
            return cached[2]
        real = resolve(d)
        if len(self._dirs) > 512:
            self._dirs.clear()
            self._settled.clear()
        self._dirs[d] = (st.st_dev, st.st_ino, real)
        if self.trusting:
            self._settled.add(d)
        return real

    @staticmethod
    def _slow(ap: str) -> tuple[str, os.stat_result | None]:
        real = resolve(ap)
        try:
            return real, os.stat(real)
        except (OSError, ValueError):
            return real, None


def _S_ISLNK(mode: int) -> bool:
    return (mode & 0o170000) == 0o120000


def _S_ISDIR(mode: int) -> bool:
    return (mode & 0o170000) == 0o040000


def fd_path(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def absolute(path: str, dir_fd: int | None = None) -> str:
    """Make ``path`` absolute the way the kernel would (cwd, or the directory of ``dir_fd``)."""
    if path.startswith("/"):
        return path
    base = fd_path(dir_fd) if dir_fd is not None else None
    if base is None or not base.startswith("/"):
        try:
            base = os.getcwd()
        except OSError:
            base = "/"
    return base.rstrip("/") + "/" + path


def resolve(path: str) -> str:
    """Normalise and resolve symlinks (the target need not exist)."""
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return os.path.normpath(path)


def is_pseudo(real: str) -> bool:
    """A descriptor of a pipe or socket resolves to e.g. ``/proc/1/fd/pipe:[123]``."""
    tail = real.rsplit("/", 1)[-1]
    return tail.startswith(("pipe:[", "socket:[", "anon_inode:"))


def sensitive_read(real: str, ident: tuple[int, int] | None, ids: Identities) -> bool:
    if ident is not None and ident in ids.inodes:
        return True
    return _sensitive_read.match(real)


def sensitive_write(real: str) -> bool:
    return _sensitive_write.match(real)


def in_writable_dir(real: str) -> bool:
    return real.startswith(_WRITABLE_PREFIXES)


def stat_id(path: str) -> tuple[int, int] | None:
    return _stat_id(path)
