"""Helpers of the package and vulnerability tests: small function trees and zips built here.

A "distribution" is written as pip writes it: ``NAME-VERSION.dist-info/METADATA`` (headers,
a blank line, the long description) plus ``top_level.txt``; or setuptools' ``.egg-info``
directory or file.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

OSV_DIR = Path(__file__).resolve().parent / "osv"


def metadata(name: str, version: str, *, extra: str = "", body: str = "A package.\n") -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra}\n{body}"


def dist_info(
    root: Path,
    name: str,
    version: str,
    *,
    extra: str = "",
    top_level: str | None = None,
    body: str = "A package.\n",
) -> Path:
    d = root / f"{name.replace('-', '_')}-{version}.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(metadata(name, version, extra=extra, body=body), encoding="utf-8")
    (d / "RECORD").write_text("", encoding="utf-8")
    if top_level is not None:
        (d / "top_level.txt").write_text(top_level, encoding="utf-8")
    return d


def zip_tree(root: Path, out: Path, *, with_dirs: bool = False) -> Path:
    """``root`` zipped as Lambda deployment packages are (paths relative to ``root``)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_dir():
                if with_dirs:
                    zf.writestr(rel + "/", b"")
                continue
            zf.write(p, rel)
    return out


def zip_members(out: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``ramparts sbom|vulns`` as the command line does (exit code, stdout, stderr)."""
    from ramparts_cli import sbom, vulns
    from ramparts_cli.errors import CliError

    parser = argparse.ArgumentParser(prog="ramparts")
    sub = parser.add_subparsers(dest="command", required=True)
    sbom.register(sub)
    vulns.register(sub)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
    except CliError as exc:
        print(f"ramparts: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in io.StringIO(text) if line.strip()]
