"""``ramparts layer build``: the Lambda layer zip, reproducibly.

The zip is laid out the way Lambda extracts it at ``/opt``::

    python/ramparts/...      the sensor package (no __pycache__, no .pyc)
    ramparts-wrapper         the exec wrapper, mode 0755

Entries are sorted, timestamps fixed and modes normalised, so two builds of the same tree
are byte-identical (and the layer's CodeSha256 changes only when its content does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ramparts_cli.errors import CliError

if TYPE_CHECKING:
    import argparse

__all__ = ["LAYER_ZIP_NAME", "LayerBuild", "build_layer"]

LAYER_ZIP_NAME = "ramparts-layer.zip"
WRAPPER_NAME = "ramparts-wrapper"
PACKAGE_NAME = "ramparts"

_REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_LAYER_DIR = _REPO_ROOT / "layer"
DEFAULT_OUT_DIR = _REPO_ROOT / "dist"

# The earliest time a zip can record; any fixed value makes builds reproducible.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644
_EXEC_MODE = 0o755
_SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
_SKIP_NAMES = frozenset({".DS_Store"})
# Lambda refuses a layer zip over 50 MB (direct upload).
_MAX_ZIP_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class LayerBuild:
    path: Path
    size: int
    sha256: str
    entries: tuple[str, ...]


def _package_files(package_dir: Path) -> list[tuple[str, Path]]:
    """(archive name, source path) for every file of the package, sorted by name."""
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in filenames:
            if name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIXES):
                continue
            source = Path(dirpath) / name
            relative = source.relative_to(package_dir.parent).as_posix()
            files.append((f"python/{relative}", source))
    return sorted(files)


def _bytecode(package_dir: Path) -> list[tuple[str, bytes]]:
    """Compiled modules for this interpreter, so the sensor is not compiled at cold start.

    /opt is read-only on Lambda, so without bytecode in the zip every cold start compiles the
    sensor from source (~25 ms). Hash-based, unchecked pycs are byte-identical from build to
    build (no timestamps) and are used as they are; the tag (``cpython-311``) says which
    runtime they serve: other Python versions compile from source as before.
    """
    import importlib.util
    import py_compile
    import tempfile

    out: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory(prefix="ramparts-pyc-") as tmp:
        for name, source in _package_files(package_dir):
            if not name.endswith(".py"):
                continue
            target = Path(tmp) / "out.pyc"
            py_compile.compile(
                str(source),
                cfile=str(target),
                dfile="/opt/" + name,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            cached = importlib.util.cache_from_source(name)
            out.append((cached, target.read_bytes()))
    return out


def build_layer(
    out_dir: str | os.PathLike[str] | None = None, source: str | os.PathLike[str] | None = None
) -> LayerBuild:
    """Write ``ramparts-layer.zip`` into ``out_dir`` (default: the checkout's ``dist/``).

    ``source`` is a directory holding ``ramparts/`` and ``ramparts-wrapper`` (default: the
    checkout's ``layer/``).
    """
    import hashlib
    import tempfile
    import zipfile

    src = Path(source) if source is not None else SOURCE_LAYER_DIR
    package_dir = src / PACKAGE_NAME
    wrapper = src / WRAPPER_NAME
    if not (package_dir / "__init__.py").is_file() or not wrapper.is_file():
        raise CliError(
            f"no layer source in {src}: expected {PACKAGE_NAME}/__init__.py and {WRAPPER_NAME}",
            hint="run from a source checkout of Ramparts (the layer is built from layer/)",
        )
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--out {out}: cannot create it: {exc.strerror or exc}") from exc

    entries: list[tuple[str, Path | bytes]] = [
        *_package_files(package_dir),
        (WRAPPER_NAME, wrapper),
    ]
    entries.extend(_bytecode(package_dir))
    entries.sort(key=lambda e: e[0])
    target = out / LAYER_ZIP_NAME
    fd, tmp_name = tempfile.mkstemp(prefix=".ramparts-layer-", suffix=".zip", dir=out)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as zf:
            for name, path in entries:
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.create_system = 3  # Unix: the external attributes carry the mode
                mode = _EXEC_MODE if name == WRAPPER_NAME else _FILE_MODE
                info.external_attr = (0o100000 | mode) << 16  # S_IFREG | mode
                info.compress_type = zipfile.ZIP_DEFLATED
                data = path if isinstance(path, bytes) else path.read_bytes()
                zf.writestr(info, data, compresslevel=9)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise

    data = target.read_bytes()
    if len(data) > _MAX_ZIP_BYTES:
        raise CliError(
            f"{target} is {len(data)} bytes, over Lambda's 50 MB limit for a layer zip",
            exit_code=1,
        )
    return LayerBuild(
        path=target,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        entries=tuple(name for name, _ in entries),
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "layer",
        help="build the Lambda layer zip",
        description="Package the sensor as a Lambda layer.",
    )
    actions = parser.add_subparsers(dest="layer_command", metavar="ACTION")
    actions.required = True
    build = actions.add_parser(
        "build",
        help=f"build dist/{LAYER_ZIP_NAME} (reproducible: same tree, same bytes)",
        description=(
            f"Build {LAYER_ZIP_NAME}: python/ramparts/** and the exec wrapper "
            f"{WRAPPER_NAME} (mode 0755), with sorted entries and fixed timestamps."
        ),
    )
    build.add_argument(
        "--out",
        metavar="DIR",
        help=f"where to write {LAYER_ZIP_NAME} (default: the checkout's dist/)",
    )
    build.set_defaults(func=_cmd_build)


def _cmd_build(args: argparse.Namespace) -> int:
    result = build_layer(args.out)
    try:
        shown = result.path.relative_to(Path.cwd())
    except ValueError:
        shown = result.path
    print(f"{shown}  {result.size} bytes  sha256 {result.sha256}")
    return 0
