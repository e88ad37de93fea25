"""Wildcard matching for policy entries, without ``re`` (its import costs ~5 ms of cold start).

Two pattern families:

* paths (``/tmp/**``, ``/opt/bin/*``, ``/var/task/data/??.json``): ``*`` and ``?`` stay
  inside one path segment, a whole segment ``**`` matches zero or more segments;
* hosts (``*.amazonaws.com``, ``api-*.example.com``): case-insensitive, ``*`` matches any
  run of characters including dots, a trailing dot is ignored. ``*.example.com`` does
  not match ``example.com`` itself.

Character classes (``[abc]``) are not supported; ``validate`` says so.
"""

from __future__ import annotations

# typing is not imported at run time: it pulls in re, functools, contextlib (~6 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def _wild(pattern: str, text: str) -> bool:
    """Match ``*`` (any run) and ``?`` (one character); iterative, linear-ish, never recursive."""
    p = t = 0
    star = -1
    mark = 0
    plen, tlen = len(pattern), len(text)
    while t < tlen:
        if p < plen and pattern[p] == "*":
            star = p
            mark = t
            p += 1
        elif p < plen and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif star != -1:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < plen and pattern[p] == "*":
        p += 1
    return p == plen


def _has_wild(s: str) -> bool:
    return "*" in s or "?" in s


def validate(pattern: str, kind: str) -> str | None:
    """Return why ``pattern`` is not usable, or None."""
    if not pattern:
        return "empty pattern"
    if "[" in pattern or "]" in pattern:
        if kind == "host" and pattern.startswith("[") and pattern.endswith("]"):
            return None  # bracketed IPv6 literal
        return "character classes ([...]) are not supported; use * and ?"
    if kind == "path":
        if not pattern.startswith("/"):
            return "paths must be absolute (start with /)"
        for seg in pattern.split("/"):
            if "**" in seg and seg != "**":
                return "'**' must be a whole path segment, as in /tmp/**"
    return None


class PathGlobs:
    """A set of path patterns compiled for quick matching of normalised absolute paths."""

    __slots__ = ("_any_first", "_by_first", "_exact", "_prefixes", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        exact: set[str] = set()
        prefixes: list[str] = []
        general: list[list[str]] = []
        for raw in self.patterns:
            pat = raw.rstrip("/") if raw != "/" else raw
            if not _has_wild(pat):
                exact.add(pat)
            elif pat.endswith("/**") and not _has_wild(pat[:-3]):
                base = pat[:-3]
                exact.add(base or "/")
                prefixes.append(base + "/")
            else:
                general.append(pat.split("/"))
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        # general patterns indexed by their first segment, so that a path only meets the
        # patterns that could match it (/tmp/x never meets /proc/*/environ)
        by_first: dict[str, list[list[str]]] = {}
        any_first: list[list[str]] = []
        for segs in general:
            first = segs[1] if len(segs) > 1 else ""
            if _has_wild(first):
                any_first.append(segs)
            else:
                by_first.setdefault(first, []).append(segs)
        self._by_first = {k: tuple(v) for k, v in by_first.items()}
        self._any_first = tuple(any_first)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def prefixes(self) -> tuple[str, ...]:
        """The ``dir/`` of every ``dir/**`` entry: everything under them matches."""
        return self._prefixes

    def match(self, path: str) -> bool:
        if path in self._exact or path.startswith(self._prefixes):
            return True
        if not self._by_first and not self._any_first:
            return False
        segs = path.split("/")
        first = segs[1] if len(segs) > 1 else ""
        for p in self._by_first.get(first, ()):
            if _match_segments(p, 0, segs, 0):
                return True
        return any(_match_segments(p, 0, segs, 0) for p in self._any_first)


def _match_segments(pat: list[str], pi: int, segs: list[str], si: int) -> bool:
    while pi < len(pat):
        seg = pat[pi]
        if seg == "**":
            if pi == len(pat) - 1:
                return True
            return any(_match_segments(pat, pi + 1, segs, k) for k in range(si, len(segs) + 1))
        if si >= len(segs):
            return False
        if not (seg == segs[si] if not _has_wild(seg) else _wild(seg, segs[si])):
            return False
        pi += 1
        si += 1
    return si == len(segs)


def normalise_host(host: str) -> str:
    host = host.strip().lower()
    if host.endswith("."):
        host = host[:-1]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


class HostGlobs:
    """A set of host-name patterns; matching costs one set look-up per label."""

    __slots__ = ("_exact", "_general", "_suffixes", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        exact: set[str] = set()
        suffixes: set[str] = set()
        general: list[str] = []
        for raw in self.patterns:
            pat = normalise_host(raw)
            if pat == "*":
                general.append(pat)
            elif pat.startswith("*.") and not _has_wild(pat[2:]):
                suffixes.add(pat[1:])  # ".example.com"
            elif _has_wild(pat):
                general.append(pat)
            else:
                exact.add(pat)
        self._exact = frozenset(exact)
        self._suffixes = frozenset(suffixes)
        self._general = tuple(general)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, host: str) -> bool:
        host = normalise_host(host)
        if host in self._exact:
            return True
        if self._suffixes:
            i = host.find(".")
            while i != -1:
                if host[i:] in self._suffixes:
                    return True
                i = host.find(".", i + 1)
        return any(_wild(p, host) for p in self._general)
