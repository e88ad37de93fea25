"""``ramparts sbom``: CycloneDX SBOMs of function code, deterministic, read back by ``vulns``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from collectors.vulns.inventory import scan
from collectors.vulns.sbom import read_cyclonedx, to_cyclonedx
from tests.vulns.conftest import dist_info, metadata, run_cli, zip_members, zip_tree

# The part of the CycloneDX 1.5/1.6 JSON schema (cyclonedx.org/schema/bom-1.x.schema.json)
# that the documents written here use, with the specification's own constraints.
_CDX = {
    "type": "object",
    "required": ["bomFormat", "specVersion"],
    "properties": {
        "bomFormat": {"enum": ["CycloneDX"]},
        "specVersion": {"enum": ["1.5", "1.6"]},
        "serialNumber": {
            "type": "string",
            "pattern": "^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
            "[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        },
        "version": {"type": "integer", "minimum": 1},
        "metadata": {
            "type": "object",
            "properties": {
                "tools": {
                    "type": "object",
                    "properties": {"components": {"type": "array", "items": {"$ref": "#/$defs/c"}}},
                },
                "component": {"$ref": "#/$defs/c"},
            },
        },
        "components": {"type": "array", "items": {"$ref": "#/$defs/c"}},
    },
    "$defs": {
        "c": {
            "type": "object",
            "required": ["type", "name"],
            "properties": {
                "type": {
                    "enum": [
                        "application",
                        "framework",
                        "library",
                        "container",
                        "platform",
                        "operating-system",
                        "device",
                        "device-driver",
                        "firmware",
                        "file",
                        "machine-learning-model",
                        "data",
                        "cryptographic-asset",
                    ]
                },
                "bom-ref": {"type": "string", "minLength": 1},
                "name": {"type": "string"},
                "version": {"type": "string"},
                "purl": {"type": "string"},
                "licenses": {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["license"],
                                "additionalProperties": False,
                                "properties": {
                                    "license": {
                                        "type": "object",
                                        "oneOf": [{"required": ["id"]}, {"required": ["name"]}],
                                    }
                                },
                            },
                            {
                                "type": "object",
                                "required": ["expression"],
                                "additionalProperties": False,
                                "properties": {"expression": {"type": "string"}},
                            },
                        ]
                    },
                },
                "properties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
            },
        }
    },
}


def check_cyclonedx(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, _CDX)
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs)), "bom-ref values must be unique"


def make_function(root: Path) -> Path:
    dist_info(root, "requests", "2.31.0", extra="License: Apache 2.0\n", top_level="requests\n")
    dist_info(root, "PyYAML", "5.3.1", extra="License-Expression: MIT\n", top_level="yaml\n_yaml\n")
    dist_info(root / "python/lib/python3.12/site-packages", "requests", "2.31.0")
    dist_info(root / "python", "urllib3", "1.26.5")
    dist_info(root / "python", "urllib3", "2.0.7")
    return root


def test_components(tmp_path: Path) -> None:
    doc = to_cyclonedx(scan(str(make_function(tmp_path))), tool_version="0.1.0")
    check_cyclonedx(doc)
    assert doc["specVersion"] == "1.6"
    comps = [(c["name"], c["version"], c["purl"]) for c in doc["components"]]
    assert comps == [
        ("PyYAML", "5.3.1", "pkg:pypi/pyyaml@5.3.1"),
        ("requests", "2.31.0", "pkg:pypi/requests@2.31.0"),
        ("urllib3", "1.26.5", "pkg:pypi/urllib3@1.26.5"),
        ("urllib3", "2.0.7", "pkg:pypi/urllib3@2.0.7"),
    ]
    pyyaml, requests = doc["components"][0], doc["components"][1]
    assert pyyaml["licenses"] == [{"expression": "MIT"}]
    assert requests["licenses"] == [{"license": {"name": "Apache 2.0"}}]
    # one component for the same version found twice, with both places
    assert requests["properties"] == [
        {
            "name": "ramparts:location",
            "value": "python/lib/python3.12/site-packages/requests-2.31.0.dist-info",
        },
        {"name": "ramparts:location", "value": "requests-2.31.0.dist-info"},
        {"name": "ramparts:module", "value": "requests"},
    ]
    assert {"name": "ramparts:module", "value": "_yaml"} in pyyaml["properties"]


def test_deterministic_and_serial_follows_content(tmp_path: Path) -> None:
    root = make_function(tmp_path / "a")
    first = json.dumps(to_cyclonedx(scan(str(root))))
    # the same packages written in another order, elsewhere, give the same document
    other = tmp_path / "b" / "a"
    dist_info(other / "python", "urllib3", "2.0.7")
    dist_info(other / "python", "urllib3", "1.26.5")
    dist_info(other / "python/lib/python3.12/site-packages", "requests", "2.31.0")
    dist_info(
        other, "PyYAML", "5.3.1", extra="License-Expression: MIT\n", top_level="yaml\n_yaml\n"
    )
    dist_info(other, "requests", "2.31.0", extra="License: Apache 2.0\n", top_level="requests\n")
    assert json.dumps(to_cyclonedx(scan(str(other)))) == first
    serial = json.loads(first)["serialNumber"]
    dist_info(root, "six", "1.16.0")
    changed = to_cyclonedx(scan(str(root)))
    assert changed["serialNumber"] != serial
    assert "serialNumber" not in to_cyclonedx(scan(str(root)), serial=False)


def test_spec_versions(tmp_path: Path) -> None:
    inv = scan(str(make_function(tmp_path)))
    doc = to_cyclonedx(inv, spec_version="1.5")
    check_cyclonedx(doc)
    assert doc["specVersion"] == "1.5" and doc["$schema"].endswith("bom-1.5.schema.json")
    with pytest.raises(ValueError, match=r"1\.4"):
        to_cyclonedx(inv, spec_version="1.4")


def test_read_back(tmp_path: Path) -> None:
    doc = to_cyclonedx(scan(str(make_function(tmp_path))))
    doc["components"].append(
        {"type": "library", "name": "left-pad", "purl": "pkg:npm/left-pad@1.3.0"}
    )
    doc["components"][0]["components"] = [
        {"type": "library", "name": "six", "version": "1.16.0", "purl": "pkg:pypi/six@1.16.0"}
    ]
    doc["components"].append({"type": "library", "name": "bad", "purl": "pkg:pypi/bad"})
    inv = read_cyclonedx(doc, "sbom.json")
    got = [(d.name, d.version, d.path, d.modules) for d in inv.distributions]
    assert got == [
        ("PyYAML", "5.3.1", "PyYAML-5.3.1.dist-info", ("_yaml", "yaml")),
        (
            "requests",
            "2.31.0",
            "python/lib/python3.12/site-packages/requests-2.31.0.dist-info",
            ("requests",),
        ),
        ("requests", "2.31.0", "requests-2.31.0.dist-info", ("requests",)),
        ("six", "1.16.0", "", ()),
        ("urllib3", "1.26.5", "python/urllib3-1.26.5.dist-info", ()),
        ("urllib3", "2.0.7", "python/urllib3-2.0.7.dist-info", ()),
    ]
    assert inv.skipped == 1
    assert [str(p) for p in inv.problems] == [
        "components[5]: purl 'pkg:pypi/bad' has no name@version"
    ]


# -- the command --------------------------------------------------------------------------------
def test_cli_stdout_and_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_function(tmp_path / "fn")
    code, out, err = run_cli(["sbom", str(root)], capsys)
    assert code == 0
    doc = json.loads(out)
    check_cyclonedx(doc)
    assert len(doc["components"]) == 4
    assert "4 components; 0 unusable metadata" in err
    target = tmp_path / "sbom.json"
    code, out, _ = run_cli(
        ["sbom", str(root), "--out", str(target), "--spec-version", "1.5"], capsys
    )
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["specVersion"] == "1.5"


def test_cli_zip_equals_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_function(tmp_path / "fn")
    z = zip_tree(root, tmp_path / "fn.zip")
    _, from_dir, _ = run_cli(["sbom", str(root), "--no-serial"], capsys)
    _, from_zip, _ = run_cli(["sbom", str(z), "--no-serial"], capsys)
    a, b = json.loads(from_dir), json.loads(from_zip)
    assert a["components"] == b["components"]


def test_cli_reports_malformed_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = zip_members(
        tmp_path / "layer.zip",
        {
            "python/ok-1.0.dist-info/METADATA": metadata("ok", "1.0"),
            "python/bad-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: bad\n",
            "python/nometa-1.0.dist-info/RECORD": "",
        },
    )
    code, out, err = run_cli(["sbom", str(z)], capsys)
    assert code == 1
    assert [c["name"] for c in json.loads(out)["components"]] == ["ok"]
    assert f"{z}: python/bad-1.0.dist-info: metadata of 'bad' has no Version" in err
    assert f"{z}: python/nometa-1.0.dist-info: no METADATA in this metadata directory" in err
    assert "2 unusable metadata" in err


def test_cli_unreadable_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["sbom", str(tmp_path / "nope")], capsys)
    assert code == 2 and out == ""
    assert "No such file or directory" in err
