"""Finding the Python distributions in a function's code: directories, deployment zips, layers."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from collectors.vulns.inventory import (
    MAX_HEADER_BYTES,
    InventoryError,
    parse_headers,
    purl_of,
    scan,
)
from tests.vulns.conftest import dist_info, metadata, zip_members, zip_tree


def function_tree(root: Path) -> Path:
    """A function's code directory as `pip install -t .` leaves it, with one of each form."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "handler.py").write_text("import requests\n", encoding="utf-8")
    dist_info(
        root,
        "requests",
        "2.28.0",
        extra="License: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\n",
        top_level="requests\n",
    )
    dist_info(root, "PyYAML", "5.3.1", top_level="_yaml\nyaml\n")
    egg_dir = root / "urllib3-1.26.5-py3.11.egg-info"
    egg_dir.mkdir()
    (egg_dir / "PKG-INFO").write_text(metadata("urllib3", "1.26.5", extra="License: MIT\n"))
    (egg_dir / "top_level.txt").write_text("urllib3\n")
    (root / "Jinja2-2.10-py3.11.egg-info").write_text(metadata("Jinja2", "2.10"))
    egg = root / "py-1.11.0-py3.11.egg" / "EGG-INFO"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text(metadata("py", "1.11.0"))
    return root


def test_directory_finds_every_form(tmp_path: Path) -> None:
    inv = scan(str(function_tree(tmp_path)))
    assert inv.kind == "directory"
    assert inv.problems == []
    got = [(d.name, d.version, d.path, d.kind) for d in inv.distributions]
    assert got == [
        ("Jinja2", "2.10", "Jinja2-2.10-py3.11.egg-info", "egg-info"),
        ("py", "1.11.0", "py-1.11.0-py3.11.egg/EGG-INFO", "egg"),
        ("PyYAML", "5.3.1", "PyYAML-5.3.1.dist-info", "dist-info"),
        ("requests", "2.28.0", "requests-2.28.0.dist-info", "dist-info"),
        ("urllib3", "1.26.5", "urllib3-1.26.5-py3.11.egg-info", "egg-info"),
    ]
    by_name = {d.canonical: d for d in inv.distributions}
    assert by_name["pyyaml"].modules == ("_yaml", "yaml")
    assert by_name["pyyaml"].purl == "pkg:pypi/pyyaml@5.3.1"
    assert by_name["requests"].licenses == ("Apache 2.0", "Apache Software License")
    assert by_name["urllib3"].licenses == ("MIT",)
    assert by_name["urllib3"].modules == ("urllib3",)


def test_zip_is_read_in_place_with_or_without_directory_entries(tmp_path: Path) -> None:
    tree = function_tree(tmp_path / "fn")
    expected = [(d.name, d.version, d.path) for d in scan(str(tree)).distributions]
    for with_dirs in (False, True):
        z = zip_tree(tree, tmp_path / f"fn-{with_dirs}.zip", with_dirs=with_dirs)
        inv = scan(str(z))
        assert inv.kind == "zip"
        assert [(d.name, d.version, d.path) for d in inv.distributions] == expected
        assert inv.problems == []


def test_layer_zip_both_layouts(tmp_path: Path) -> None:
    z = zip_members(
        tmp_path / "layer.zip",
        {
            "python/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA": metadata(
                "requests", "2.31.0"
            ),
            "python/lib/python3.12/site-packages/requests/__init__.py": "",
            "python/urllib3-2.0.7.dist-info/METADATA": metadata("urllib3", "2.0.7"),
            "python/urllib3/__init__.py": "",
        },
    )
    inv = scan(str(z))
    assert [(d.name, d.version, d.path) for d in inv.distributions] == [
        (
            "requests",
            "2.31.0",
            "python/lib/python3.12/site-packages/requests-2.31.0.dist-info",
        ),
        ("urllib3", "2.0.7", "python/urllib3-2.0.7.dist-info"),
    ]


def test_duplicates_in_several_paths_are_all_listed(tmp_path: Path) -> None:
    dist_info(tmp_path, "requests", "2.31.0")
    dist_info(tmp_path / "vendor", "Requests", "2.31.0")
    dist_info(tmp_path / "python", "requests", "2.28.0")
    inv = scan(str(tmp_path))
    assert [(d.canonical, d.version, d.path) for d in inv.distributions] == [
        ("requests", "2.28.0", "python/requests-2.28.0.dist-info"),
        ("requests", "2.31.0", "requests-2.31.0.dist-info"),
        ("requests", "2.31.0", "vendor/Requests-2.31.0.dist-info"),
    ]


def test_malformed_metadata_is_reported_and_counted_not_fatal(tmp_path: Path) -> None:
    dist_info(tmp_path, "good", "1.0")
    bad = tmp_path / "broken-1.0.dist-info"
    bad.mkdir()
    (bad / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\n\nVersion: 1.0\n")
    (tmp_path / "empty-1.0.dist-info").mkdir()
    nameless = tmp_path / "x-1.0.dist-info"
    nameless.mkdir()
    (nameless / "METADATA").write_text("Metadata-Version: 2.1\nName: -bad-\nVersion: 1.0\n")
    (tmp_path / "junk.egg-info").write_bytes(b"\x00\x01 not metadata at all")
    inv = scan(str(tmp_path))
    assert [d.name for d in inv.distributions] == ["good"]
    assert [(p.where, p.reason) for p in inv.problems] == [
        ("broken-1.0.dist-info", "metadata of 'broken' has no Version"),
        ("empty-1.0.dist-info", "no METADATA in this metadata directory"),
        ("junk.egg-info", "metadata has no Name"),
        ("x-1.0.dist-info", "Name '-bad-' is not a valid distribution name"),
    ]
    # the empty directory only exists in a zip that has directory entries
    z = zip_tree(tmp_path, tmp_path.parent / "bad.zip", with_dirs=True)
    assert [(p.where, p.reason) for p in scan(str(z)).problems] == [
        (p.where, p.reason) for p in inv.problems
    ]


def test_only_the_header_block_is_read(tmp_path: Path) -> None:
    body = "Version: 9.9.9\n" + "x" * (4 * MAX_HEADER_BYTES)
    dist_info(tmp_path, "big", "1.0", body=body)
    inv = scan(str(tmp_path))
    assert [(d.name, d.version) for d in inv.distributions] == [("big", "1.0")]


def test_headers_parse_continuations_case_and_encodings() -> None:
    h = parse_headers(
        b"name: a\nVERSION: 1\nLicense: first line\n        second line\nClassifier: x\n"
        b"Classifier: y\n\nName: ignored\n"
    )
    assert h == {
        "name": ["a"],
        "version": ["1"],
        "license": ["first line\nsecond line"],
        "classifier": ["x", "y"],
    }
    assert parse_headers("Name: caf\xe9\nVersion: 1\n".encode("latin-1"))["name"] == ["caf\xe9"]


def test_licences(tmp_path: Path) -> None:
    dist_info(tmp_path, "expr", "1.0", extra="License-Expression: MIT OR Apache-2.0\n")
    dist_info(tmp_path, "text", "1.0", extra="License: Copyright (c) someone\n   all of it\n")
    dist_info(tmp_path, "unknown", "1.0", extra="License: UNKNOWN\n")
    by = {d.name: d for d in scan(str(tmp_path)).distributions}
    assert by["expr"].license_expression == "MIT OR Apache-2.0"
    assert by["text"].licenses == ()  # the licence's full text is not a name
    assert by["unknown"].licenses == ()


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="No such file"):
        scan(str(tmp_path / "missing"))
    (tmp_path / "f.txt").write_text("hello")
    with pytest.raises(InventoryError, match="neither a directory nor a zip"):
        scan(str(tmp_path / "f.txt"))


def test_unreadable_zip_member_is_a_problem(tmp_path: Path) -> None:
    z = zip_members(tmp_path / "x.zip", {"a-1.0.dist-info/METADATA": metadata("a", "1.0")})
    data = bytearray(z.read_bytes())
    # corrupt the compressed data of the member (the local header stays intact)
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[0]
        start = info.header_offset + 30 + len(info.filename.encode())
    for i in range(start, start + info.compress_size):
        data[i] ^= 0xFF
    z.write_bytes(bytes(data))
    inv = scan(str(z))
    assert inv.distributions == []
    assert len(inv.problems) == 1 and inv.problems[0].where == "a-1.0.dist-info"
    assert "unreadable member" in inv.problems[0].reason


def test_purl() -> None:
    assert purl_of("Zope.Interface", "5.0") == "pkg:pypi/zope-interface@5.0"
    assert purl_of("typing_extensions", "4.0+local") == "pkg:pypi/typing-extensions@4.0+local"
