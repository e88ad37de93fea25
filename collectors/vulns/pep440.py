"""PEP 440 versions: parsing, normalisation and the ordering OSV's PyPI ecosystem uses.

Written from the specification (https://peps.python.org/pep-0440/) so that the platform
needs no third-party packaging library at run time. :func:`parse` accepts every spelling
PEP 440 lets a tool normalise (``1.0-RC.1``, ``v1.0``, ``1.0-1``, ``1.0.post.dev2``,
``1!2.0+Ubuntu-1``...) and raises :class:`InvalidVersion` on anything else.

Ordering (:attr:`Version.key`), as PEP 440 defines it:

* epochs first (``1!1.0 > 2.0``);
* the release, trailing zeros ignored (``1.0 == 1.0.0``);
* a developmental release of a plain release sorts before its pre-releases
  (``1.0.dev1 < 1.0a1``), pre-releases before the release (``1.0a1 < 1.0b1 < 1.0rc1 <
  1.0``), post-releases after it (``1.0 < 1.0.post1``), and a ``.devN`` before whatever it
  is attached to (``1.0a1.dev1 < 1.0a1``, ``1.0.post1.dev1 < 1.0.post1``);
* a local version sorts after the same public version (``1.0 < 1.0+local``); its segments
  compare numerically when both are numbers, case-insensitively as text otherwise, a number
  sorting after text, and a longer local version after its prefix.

:func:`canonical_name` is PEP 503's name normalisation (``Zope.Interface`` ->
``zope-interface``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["InvalidVersion", "Version", "canonical_name", "parse", "try_parse"]

_NAME_SEPARATORS = re.compile(r"[-_.]+")

# PEP 440's "permissive" grammar, written from the spec's description of what a tool may
# normalise: case, a leading "v", separators around pre/post/dev parts, alternative
# spellings, implicit numbers and implicit post-releases ("1.0-1").
_VERSION = re.compile(
    r"""
    \s*v?
    (?:(?P<epoch>\d+)!)?
    (?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>\d+)?)?
    (?:
        -(?P<post_implicit>\d+)
      | [-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n>\d+)?
    )?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE_KIND = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "rc": "rc"}
_PRE_KIND |= {"pre": "rc", "preview": "rc"}
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}
_INF = float("inf")


class InvalidVersion(ValueError):
    """Not a version PEP 440 can read."""


LocalPart = tuple[int, int | str]


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed PEP 440 version. Compare with ``==``/``<``: they use :attr:`key`."""

    epoch: int
    release: tuple[int, ...]
    pre: tuple[str, int] | None = None
    post: int | None = None
    dev: int | None = None
    local: tuple[int | str, ...] | None = None
    key: tuple[object, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _key(self))

    # Ordering and equality follow PEP 440, not the spelling.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __le__(self, other: Version) -> bool:
        return self.key <= other.key

    def __gt__(self, other: Version) -> bool:
        return self.key > other.key

    def __ge__(self, other: Version) -> bool:
        return self.key >= other.key

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None

    @property
    def public(self) -> str:
        """The normalised public version (no local part)."""
        out = f"{self.epoch}!" if self.epoch else ""
        out += ".".join(str(n) for n in self.release)
        if self.pre is not None:
            out += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            out += f".post{self.post}"
        if self.dev is not None:
            out += f".dev{self.dev}"
        return out

    def __str__(self) -> str:
        """The normalised form PEP 440 defines (``1.0-RC.1`` -> ``1.0rc1``)."""
        if self.local is None:
            return self.public
        return self.public + "+" + ".".join(str(p) for p in self.local)


def _key(v: Version) -> tuple[object, ...]:
    release = list(v.release)
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre: tuple[float, int]
    if v.pre is None and v.post is None and v.dev is not None:
        pre = (-_INF, 0)  # 1.0.dev1 sorts before 1.0a1
    elif v.pre is None:
        pre = (_INF, 0)  # a final (or post) release sorts after its pre-releases
    else:
        pre = (_PRE_RANK[v.pre[0]], v.pre[1])
    post = -_INF if v.post is None else v.post
    dev = _INF if v.dev is None else v.dev
    local: tuple[LocalPart, ...] = ()
    if v.local is not None:
        # numbers sort after text; text compares case-insensitively (already lower-cased)
        local = tuple((1, p) if isinstance(p, int) else (0, p) for p in v.local)
    return (v.epoch, tuple(release), pre, post, dev, local)


@lru_cache(maxsize=65536)
def parse(text: str) -> Version:
    """Parse ``text`` as a PEP 440 version; :class:`InvalidVersion` if it is not one."""
    if not isinstance(text, str):
        raise InvalidVersion(f"not a string: {text!r}")
    m = _VERSION.fullmatch(text)
    if m is None:
        raise InvalidVersion(f"not a PEP 440 version: {text!r}")
    pre = None
    if m["pre_l"]:
        pre = (_PRE_KIND[m["pre_l"].lower()], int(m["pre_n"] or 0))
    post = None
    if m["post_implicit"] is not None:
        post = int(m["post_implicit"])
    elif m["post_l"]:
        post = int(m["post_n"] or 0)
    dev = int(m["dev_n"] or 0) if m["dev_l"] else None
    local = None
    if m["local"]:
        local = tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"[-_.]", m["local"]))
    return Version(
        epoch=int(m["epoch"] or 0),
        release=tuple(int(p) for p in m["release"].split(".")),
        pre=pre,
        post=post,
        dev=dev,
        local=local,
    )


def try_parse(text: str) -> Version | None:
    try:
        return parse(text)
    except InvalidVersion:
        return None


def canonical_name(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become one ``-``, letters lower-case."""
    return _NAME_SEPARATORS.sub("-", name.strip()).lower()
