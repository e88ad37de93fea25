"""CycloneDX (1.5 / 1.6 JSON) SBOMs of an :class:`~collectors.vulns.inventory.Inventory`.

One component (``type`` library) per distribution name and PEP 440 version, however many
places it was found in: its ``bom-ref`` is its purl (``pkg:pypi/<PEP 503 name>@<version>``),
each place is a ``ramparts:location`` property (the ``.dist-info``/``.egg-info`` path),
each top-level import name a ``ramparts:module`` property, and the licences are
``licenses`` entries (an SPDX ``expression`` from ``License-Expression``, otherwise
``license.name`` from ``License`` and the licence classifiers). Two versions of one
package (the function bundles one, a layer another) are two components.

The document is deterministic: components sorted by name and version, no timestamp, and
a ``serialNumber`` that is a UUID derived from the content (a name-based UUID of the
document without it), or no serial number at all (``serial=False``). The same tree gives
the same bytes, so SBOMs diff well.

:func:`read_cyclonedx` reads an SBOM back (any CycloneDX JSON: only ``pkg:pypi`` purls
are used, nested components included).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from collectors.vulns.inventory import Distribution, Inventory, Problem
from collectors.vulns.pep440 import canonical_name, try_parse

__all__ = ["SPEC_VERSIONS", "dumps", "read_cyclonedx", "to_cyclonedx"]

SPEC_VERSIONS = ("1.5", "1.6")
LOCATION = "ramparts:location"
MODULE = "ramparts:module"
_NAMESPACE = uuid.UUID("9d3c6f0e-5a0b-4f7e-9a43-52616d706172")  # Ramparts SBOM serials


def _groups(inv: Inventory) -> list[list[Distribution]]:
    """Distributions grouped by (PEP 503 name, PEP 440 version), in inventory order."""
    groups: dict[tuple[str, object], list[Distribution]] = {}
    for d in inv.distributions:
        v = try_parse(d.version)
        groups.setdefault((d.canonical, v.key if v is not None else d.version), []).append(d)
    return list(groups.values())


def _component(dists: list[Distribution]) -> dict[str, Any]:
    first = dists[0]
    purl = first.purl
    comp: dict[str, Any] = {
        "type": "library",
        "bom-ref": purl,
        "name": first.name,
        "version": first.version,
        "purl": purl,
    }
    licenses: list[dict[str, Any]] = []
    expression = next((d.license_expression for d in dists if d.license_expression), None)
    if expression:
        licenses.append({"expression": expression})
    else:
        names: dict[str, None] = {}
        for d in dists:
            for n in d.licenses:
                names.setdefault(n, None)
        licenses.extend({"license": {"name": n}} for n in names)
    if licenses:
        comp["licenses"] = licenses
    props = [{"name": LOCATION, "value": d.path} for d in dists]
    modules = sorted({m for d in dists for m in d.modules})
    props += [{"name": MODULE, "value": m} for m in modules]
    comp["properties"] = props
    return comp


def to_cyclonedx(
    inv: Inventory, *, spec_version: str = "1.6", serial: bool = True, tool_version: str = ""
) -> dict[str, Any]:
    """The SBOM of ``inv`` as a CycloneDX JSON document (a dict, ready for :func:`dumps`)."""
    if spec_version not in SPEC_VERSIONS:
        raise ValueError(f"CycloneDX spec version {spec_version!r}: one of {SPEC_VERSIONS}")
    inv.sort()
    name = inv.source.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or inv.source
    tool: dict[str, Any] = {"type": "application", "name": "ramparts"}
    if tool_version:
        tool["version"] = tool_version
    doc: dict[str, Any] = {
        "$schema": f"http://cyclonedx.org/schema/bom-{spec_version}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": spec_version,
        "version": 1,
        "metadata": {
            "tools": {"components": [tool]},
            "component": {"type": "application", "bom-ref": "scanned-code", "name": name},
        },
        "components": [_component(g) for g in _groups(inv)],
    }
    if serial:
        digest = uuid.uuid5(_NAMESPACE, dumps(doc))
        doc = {"serialNumber": f"urn:uuid:{digest}", **doc}
        # keep CycloneDX's usual key order: $schema, bomFormat, specVersion, serialNumber...
        order = ["$schema", "bomFormat", "specVersion", "serialNumber", "version"]
        doc = {k: doc[k] for k in order} | {k: v for k, v in doc.items() if k not in order}
    return doc


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# -- reading an SBOM back -----------------------------------------------------------------------
def is_cyclonedx(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX"


def _walk(components: Any, where: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(components, list):
        return
    for i, c in enumerate(components):
        here = f"{where}[{i}]"
        yield here, c
        if isinstance(c, dict):
            yield from _walk(c.get("components"), f"{here}.components")


def parse_pypi_purl(purl: str) -> tuple[str, str] | None:
    """(name, version) of a ``pkg:pypi/name@version`` purl; None for another type."""
    if not purl.startswith("pkg:pypi/"):
        return None
    rest = purl[len("pkg:pypi/") :].split("#", 1)[0].split("?", 1)[0]
    name, sep, version = rest.partition("@")
    if not sep or not name or not version:
        raise ValueError(f"purl {purl!r} has no name@version")
    return unquote(name), unquote(version)


def read_cyclonedx(doc: dict[str, Any], source: str) -> Inventory:
    """The PyPI packages an SBOM lists, one distribution per location property."""
    inv = Inventory(source=source, kind="sbom")
    for where, comp in _walk(doc.get("components"), "components"):
        if not isinstance(comp, dict):
            inv.problems.append(Problem(where, "a component is not an object"))
            continue
        purl = comp.get("purl")
        if not isinstance(purl, str):
            inv.skipped += 1
            continue
        try:
            parsed = parse_pypi_purl(purl)
        except ValueError as exc:
            inv.problems.append(Problem(where, str(exc)))
            continue
        if parsed is None:
            inv.skipped += 1
            continue
        name, version = parsed
        if isinstance(comp.get("version"), str) and comp["version"]:
            version = comp["version"]
        shown = comp.get("name")
        if not isinstance(shown, str) or canonical_name(shown) != canonical_name(name):
            shown = name
        locations: list[str] = []
        modules: list[str] = []
        for p in comp.get("properties") or []:
            if isinstance(p, dict) and isinstance(p.get("value"), str):
                if p.get("name") == LOCATION:
                    locations.append(p["value"])
                elif p.get("name") == MODULE:
                    modules.append(p["value"])
        for loc in locations or [""]:
            inv.distributions.append(
                Distribution(name=shown, version=version, path=loc, modules=tuple(modules))
            )
    inv.sort()
    return inv
