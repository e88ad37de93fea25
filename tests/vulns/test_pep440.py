"""PEP 440 parsing and ordering, as OSV's PyPI ecosystem compares versions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.vulns.pep440 import InvalidVersion, canonical_name, parse, try_parse

# The ordering example PEP 440 itself gives ("Summary of permitted suffixes and relative
# ordering"), plus epochs.
SPEC_ORDER = [
    "1.0.dev456",
    "1.0a1",
    "1.0a2.dev456",
    "1.0a12.dev456",
    "1.0a12",
    "1.0b1.dev456",
    "1.0b2",
    "1.0b2.post345.dev456",
    "1.0b2.post345",
    "1.0rc1.dev456",
    "1.0rc1",
    "1.0",
    "1.0+abc.5",
    "1.0+abc.7",
    "1.0+5",
    "1.0.post456.dev34",
    "1.0.post456",
    "1.0.15",
    "1.1.dev1",
    "1!0.1",
    "2!0.0.1.dev0",
]


def test_spec_ordering() -> None:
    parsed = [parse(v) for v in SPEC_ORDER]
    for a, b in itertools.pairwise(parsed):
        assert a < b, (str(a), str(b))
    assert sorted(reversed(parsed)) == parsed


@pytest.mark.parametrize(
    ("spelling", "normal"),
    [
        ("1.0", "1.0"),
        ("v1.0", "1.0"),
        ("  1.0\n", "1.0"),
        ("1.0-RC.1", "1.0rc1"),
        ("1.0c1", "1.0rc1"),
        ("1.0pre2", "1.0rc2"),
        ("1.0preview2", "1.0rc2"),
        ("1.0alpha", "1.0a0"),
        ("1.0-beta.3", "1.0b3"),
        ("1.0-1", "1.0.post1"),
        ("1.0.rev3", "1.0.post3"),
        ("1.0r", "1.0.post0"),
        ("1.0-post_2", "1.0.post2"),
        ("1.0.post.dev2", "1.0.post0.dev2"),
        ("1.0-dev", "1.0.dev0"),
        ("1!2.0", "1!2.0"),
        ("0!2.0", "2.0"),
        ("1.0+Ubuntu-1", "1.0+ubuntu.1"),
        ("1.0+abc_DEF.007", "1.0+abc.def.7"),
        ("0.8.0-alpha2", "0.8.0a2"),
        ("3.7.4.post0", "3.7.4.post0"),
        ("01.02", "1.2"),
    ],
)
def test_normalisation(spelling: str, normal: str) -> None:
    assert str(parse(spelling)) == normal
    assert parse(spelling) == parse(normal)


@pytest.mark.parametrize(
    "bad", ["", "abc", "1.0.x", "1.0-", "1..0", "1.0+", "1.0+a..b", "*", "1.0 2.0", "==1.0", "1_0"]
)
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        parse(bad)
    assert try_parse(bad) is None


def test_equalities() -> None:
    assert parse("1.0") == parse("1.0.0") == parse("1")
    assert hash(parse("1.0")) == hash(parse("1.0.0.0"))
    assert parse("1.0a") == parse("1.0a0")
    assert parse("1.0") != parse("1.0+0")
    assert parse("1.0+AbC") == parse("1.0+abc")


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.dev1", "1.0a1"),  # a dev release of the release sorts before its pre-releases
        ("1.0a1.dev1", "1.0a1"),
        ("1.0a1", "1.0a1.post1"),
        ("1.0rc1", "1.0"),
        ("1.0", "1.0.post1.dev1"),
        ("1.0.post1.dev1", "1.0.post1"),
        ("2.0", "1!1.0"),  # epochs first
        ("1.0+local", "1.0.post1"),
        ("1.0+abc", "1.0+1"),  # numbers after text
        ("1.0+1", "1.0+1.0"),  # a longer local version after its prefix
        ("1.0+abc", "1.0+abd"),
        ("5.4b2", "5.4"),
        ("5.4rc1", "5.4"),
        ("3.4.8", "35.0.0"),
        ("1.9", "1.10"),
    ],
)
def test_pairs(lower: str, higher: str) -> None:
    assert parse(lower) < parse(higher)
    assert parse(higher) > parse(lower)
    assert not parse(higher) <= parse(lower)


def test_properties() -> None:
    assert parse("1.0rc1").is_prerelease and parse("1.0.dev0").is_prerelease
    assert not parse("1.0.post1").is_prerelease
    assert parse("1!1.0+abc").public == "1!1.0"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Zope.Interface", "zope-interface"),
        ("PyYAML", "pyyaml"),
        ("typing_extensions", "typing-extensions"),
        ("a-_.b", "a-b"),
        ("Django", "django"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


# -- generated versions -------------------------------------------------------------------------
_num = st.integers(min_value=0, max_value=30)
_sep = st.sampled_from(["", ".", "-", "_"])


@st.composite
def versions(draw: st.DrawFn) -> str:
    """Version strings in the spellings PEP 440 allows, normalised or not."""
    out = ""
    if draw(st.booleans()) and draw(st.booleans()):
        out += f"{draw(st.integers(0, 3))}!"
    out += ".".join(str(draw(_num)) for _ in range(draw(st.integers(1, 4))))
    if draw(st.booleans()):
        label = draw(st.sampled_from(["a", "b", "rc", "c", "alpha", "beta", "pre", "preview"]))
        n = draw(st.one_of(st.none(), _num))
        out += draw(_sep) + label + ("" if n is None else draw(_sep) + str(n))
    if draw(st.booleans()):
        if draw(st.booleans()):
            out += f"-{draw(_num)}"
        else:
            out += draw(_sep) + draw(st.sampled_from(["post", "rev", "r"])) + str(draw(_num))
    if draw(st.booleans()):
        out += draw(_sep) + "dev" + str(draw(_num))
    if draw(st.booleans()) and draw(st.booleans()):
        parts = draw(
            st.lists(
                st.one_of(st.integers(0, 20).map(str), st.sampled_from(["abc", "Ubuntu", "x"])),
                min_size=1,
                max_size=3,
            )
        )
        out += "+" + draw(_sep.filter(bool)).join(parts)
    return out


@settings(max_examples=300, deadline=None)
@given(versions(), versions(), versions())
def test_total_order(a: str, b: str, c: str) -> None:
    va, vb, vc = parse(a), parse(b), parse(c)
    # exactly one of <, ==, >
    assert [va < vb, va == vb, va > vb].count(True) == 1
    # antisymmetry and consistency of the operators
    assert (va <= vb <= va) == (va == vb)
    assert (va < vb) == (vb > va)
    # transitivity
    if va <= vb <= vc:
        assert va <= vc
    if va < vb < vc:
        assert va < vc
    # equal versions hash alike (they share one index entry)
    if va == vb:
        assert hash(va) == hash(vb)


@settings(max_examples=300, deadline=None)
@given(versions())
def test_normal_form_round_trips(a: str) -> None:
    v = parse(a)
    assert parse(str(v)) == v
    assert str(parse(str(v))) == str(v)


@settings(max_examples=400, deadline=None)
@given(versions(), versions())
def test_agrees_with_pypa_packaging(a: str, b: str) -> None:
    """The order agrees with pypa's ``packaging`` (present in the test environment only)."""
    packaging_version = pytest.importorskip("packaging.version")
    pa, pb = packaging_version.Version(a), packaging_version.Version(b)
    va, vb = parse(a), parse(b)
    assert str(va) == str(pa)
    assert (va < vb) == (pa < pb)
    assert (va == vb) == (pa == pb)
