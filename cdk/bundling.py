"""Local bundling (no Docker) for the layer, the platform's function code and its dependencies.

Each bundler implements ``aws_cdk.ILocalBundling``: CDK calls ``try_bundle`` with an empty
output directory, and the bundler fills it with Python only. The Docker image CDK insists on
in ``BundlingOptions`` is a placeholder that is never pulled, because ``try_bundle`` always
succeeds or raises.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii

__all__ = [
    "FUNCTION_PACKAGES",
    "INGEST_REQUIREMENTS",
    "REPO_ROOT",
    "CodeBundler",
    "DependencyBundler",
    "LayerBundler",
    "bundling_options",
    "source_hash",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
# What the platform's functions import: (directory in the checkout, name in the asset).
FUNCTION_PACKAGES: tuple[tuple[str, str], ...] = (
    ("collectors", "collectors"),
    ("functions", "functions"),
    ("layer/ramparts", "ramparts"),
)
INGEST_REQUIREMENTS = REPO_ROOT / "cdk" / "requirements" / "ingest.txt"
_SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
# Never pulled: local bundling always handles the asset (see the module docstring).
_PLACEHOLDER_IMAGE = "public.ecr.aws/docker/library/busybox:stable"


def interpreter_runtime() -> str:
    """The Lambda runtime name of the interpreter running the synth (``python3.11``)."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(_SKIP_SUFFIXES):
                yield Path(dirpath) / name


def source_hash(paths: Sequence[Path], *extra: str) -> str:
    """A content hash of files and directories (names and bytes), plus ``extra`` strings."""
    digest = hashlib.sha256()
    for item in extra:
        digest.update(item.encode() + b"\0")
    for root in paths:
        files = _walk(root) if root.is_dir() else [root]
        for path in files:
            digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@jsii.implements(cdk.ILocalBundling)
class LayerBundler:
    """The sensor layer zip for one Python runtime, built by ``ramparts_cli.layer``.

    ``build_layer`` compiles bytecode for the interpreter that runs it. A layer for another
    Python version gets sources only (that runtime compiles them at cold start, as it would
    without a layer zip built by Ramparts); the pycs would only be dead weight there.
    """

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        del options  # the Docker options do not apply to local bundling
        from ramparts_cli.layer import LAYER_ZIP_NAME, build_layer

        keep_bytecode = self.runtime == interpreter_runtime()
        with tempfile.TemporaryDirectory(prefix="ramparts-layer-") as tmp:
            built = build_layer(tmp)
            target = Path(output_dir) / LAYER_ZIP_NAME
            if keep_bytecode:
                shutil.copyfile(built.path, target)
            else:
                _copy_zip_without_bytecode(built.path, target)
        return True


def _copy_zip_without_bytecode(source: Path, target: Path) -> None:
    """Copy a zip entry by entry (same names, dates, modes) leaving out ``__pycache__``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as out:
        for info in src.infolist():
            if "__pycache__/" in info.filename or info.filename.endswith(".pyc"):
                continue
            out.writestr(info, src.read(info), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


@jsii.implements(cdk.ILocalBundling)
class CodeBundler:
    """The platform's function code: ``collectors``, ``functions`` and the sensor package.

    ``packages`` are (path in the checkout, path in the asset) pairs, directories or files.
    """

    def __init__(self, packages: Sequence[tuple[str, str]] = FUNCTION_PACKAGES) -> None:
        self.packages = tuple(packages)

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        del options  # the Docker options do not apply to local bundling
        out = Path(output_dir)
        for source, name in self.packages:
            root = REPO_ROOT / source
            if root.is_file():
                pairs: Iterable[tuple[Path, Path]] = [(root, out / name)]
            else:
                pairs = ((path, out / name / path.relative_to(root)) for path in _walk(root))
            for path, target in pairs:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        return True


@jsii.implements(cdk.ILocalBundling)
class DependencyBundler:
    """Third-party wheels for a Lambda runtime and architecture, as a layer (``python/``).

    ``pip install --platform ... --only-binary=:all:`` picks the wheels built for Lambda's
    platform whatever machine runs the synth: no Docker, no compiler.
    """

    def __init__(self, requirements: Path, runtime: str, architecture: str) -> None:
        self.requirements = requirements
        self.python_version = runtime.removeprefix("python")
        self.platform = (
            "manylinux2014_aarch64" if architecture == "arm64" else "manylinux2014_x86_64"
        )

    def command(self, output_dir: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--platform",
            self.platform,
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
            "--target",
            str(Path(output_dir) / "python"),
            "--requirement",
            str(self.requirements),
        ]

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        del options  # the Docker options do not apply to local bundling
        result = subprocess.run(self.command(output_dir), check=False, capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not install {self.requirements.name} for {self.platform} "
                f"Python {self.python_version}:\n{result.stderr.decode(errors='replace')}"
            )
        return True


def bundling_options(local: Any, **kwargs: Any) -> cdk.BundlingOptions:
    return cdk.BundlingOptions(
        image=cdk.DockerImage.from_registry(_PLACEHOLDER_IMAGE), local=local, **kwargs
    )
