"""``ramparts sbom PATH``: a CycloneDX SBOM of the Python distributions in a function's code.

PATH is a function's code directory, its deployment zip, or a layer zip (layers put packages
under ``python/`` or ``python/lib/python3.x/site-packages/``); distributions are found by
their ``.dist-info``/``.egg-info`` metadata wherever they are, and zips are read in place.
Each component has its name, version, purl (``pkg:pypi/<PEP 503 name>@<version>``),
licences when the metadata names them, and one ``ramparts:location`` property per place it
was found. The output is deterministic (sorted, no timestamp, a serial number derived from
the content, or none with ``--no-serial``), so two SBOMs of the same code are identical.

Metadata that cannot be used is reported on stderr with its path and reason, and counted;
the rest is still listed. Exit status: 0 when every metadata was usable, 1 when some was
not, 2 for an unreadable PATH or bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import TYPE_CHECKING

from ramparts_cli.errors import CliError

if TYPE_CHECKING:
    from collectors.vulns.inventory import Inventory


def scan_path(path: str) -> Inventory:
    """The inventory of a directory or zip, as a CliError when PATH cannot be read."""
    from collectors.vulns.inventory import InventoryError, scan

    try:
        return scan(path)
    except InventoryError as exc:
        raise CliError(
            str(exc), hint="PATH is a code directory, a deployment zip or a layer zip"
        ) from None


def write_output(text: str, out: str | None) -> None:
    """``text`` to stdout, or atomically to ``out``."""
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    directory = os.path.dirname(os.path.abspath(out))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ramparts-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        raise CliError(f"{out}: {exc.strerror or exc}") from None


def _cmd_sbom(args: argparse.Namespace) -> int:
    from ramparts import __version__

    from collectors.vulns.sbom import dumps, to_cyclonedx

    inv = scan_path(args.path)
    doc = to_cyclonedx(
        inv, spec_version=args.spec_version, serial=not args.no_serial, tool_version=__version__
    )
    write_output(dumps(doc), args.out)
    for p in inv.problems:
        print(f"{args.path}: {p}", file=sys.stderr)
    print(
        f"ramparts sbom: {len(inv.distributions)} distributions, "
        f"{len(doc['components'])} components; {len(inv.problems)} unusable metadata",
        file=sys.stderr,
    )
    return 1 if inv.problems else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "sbom",
        help="write a CycloneDX SBOM of the Python packages in a function's code or a layer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="a code directory, deployment zip or layer zip")
    p.add_argument("--out", metavar="FILE", help="write the SBOM to FILE (default: stdout)")
    p.add_argument(
        "--spec-version",
        choices=("1.5", "1.6"),
        default="1.6",
        help="CycloneDX specification version (default: 1.6)",
    )
    p.add_argument(
        "--no-serial",
        action="store_true",
        help="leave out the serial number (by default it is derived from the content)",
    )
    p.set_defaults(func=_cmd_sbom)
