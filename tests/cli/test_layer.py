"""`ramparts layer build`: the layer zip's contents, modes, reproducibility, and that it runs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from ramparts_cli.layer import LAYER_ZIP_NAME, SOURCE_LAYER_DIR, build_layer


def _expected_entries(source: Path) -> set[str]:
    import importlib.util

    names = {"ramparts-wrapper"}
    for path in (source / "ramparts").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            name = "python/" + path.relative_to(source).as_posix()
            names.add(name)
            if name.endswith(".py"):  # and its bytecode for this interpreter
                names.add(importlib.util.cache_from_source(name))
    return names


@pytest.fixture
def source_copy(tmp_path) -> Path:
    """A copy of the layer source with the litter a working tree has: bytecode caches."""
    source = tmp_path / "src"
    shutil.copytree(SOURCE_LAYER_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cache = source / "ramparts" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "__init__.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (source / "ramparts" / "stray.pyc").write_bytes(b"\x00bytecode")
    return source


def test_the_zip_holds_the_package_under_python_and_the_wrapper_at_the_root(source_copy, tmp_path):
    build = build_layer(tmp_path / "out", source=source_copy)

    with zipfile.ZipFile(build.path) as zf:
        names = zf.namelist()
        assert set(names) == _expected_entries(source_copy)
        assert "python/ramparts/__init__.py" in names
        # the working tree's litter is not shipped; the build's own bytecode is, and it is
        # unchecked-hash bytecode of the shipped source (no timestamps: reproducible)
        assert "python/ramparts/stray.pyc" not in names
        pyc = zf.read(importlib.util.cache_from_source("python/ramparts/__init__.py"))
        assert pyc[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked
        assert pyc[8:16] == importlib.util.source_hash(
            (source_copy / "ramparts" / "__init__.py").read_bytes()
        )
        assert names == sorted(names)
        assert zf.testzip() is None
        assert zf.read("ramparts-wrapper") == (source_copy / "ramparts-wrapper").read_bytes()


def test_the_wrapper_is_executable_and_the_rest_is_not(tmp_path):
    build = build_layer(tmp_path)

    with zipfile.ZipFile(build.path) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            assert info.create_system == 3, info.filename  # Unix, so the mode is honoured
            assert stat.S_ISREG(mode), info.filename
            expected = 0o755 if info.filename == "ramparts-wrapper" else 0o644
            assert stat.S_IMODE(mode) == expected, info.filename


def test_two_builds_are_byte_identical(source_copy, tmp_path):
    first = build_layer(tmp_path / "a", source=source_copy)
    # touching every source file (a fresh checkout, a CI runner) changes nothing
    for path in source_copy.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    second = build_layer(tmp_path / "b", source=source_copy)

    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256
    with zipfile.ZipFile(first.path) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_command_prints_path_size_and_sha256(ramparts, tmp_path):
    run = ramparts("layer", "build", "--out", tmp_path)

    assert run.exit_code == 0, run.stderr
    data = (tmp_path / LAYER_ZIP_NAME).read_bytes()
    assert str(tmp_path / LAYER_ZIP_NAME) in run.stdout
    assert f"{len(data)} bytes" in run.stdout
    assert hashlib.sha256(data).hexdigest() in run.stdout


def test_a_tree_without_the_layer_source_is_a_clear_error(tmp_path):
    from ramparts_cli.errors import CliError

    with pytest.raises(CliError, match="no layer source"):
        build_layer(tmp_path / "out", source=tmp_path)


def test_layer_needs_an_action(ramparts):
    run = ramparts("layer")

    assert run.exit_code == 2
    assert "usage:" in run.stderr


# ---------------------------------------------------------------------------------------
# The built zip, attached to a function


def test_invoke_runs_with_the_built_zip_and_its_wrapper(ramparts, functions, tmp_path):
    # GIVEN the built layer zip, attached as Lambda attaches it, with the sensor switched off
    build = build_layer(tmp_path)
    event = json.dumps({"env": ["AWS_LAMBDA_EXEC_WRAPPER", "_HANDLER"], "import": ["ramparts"]})

    run = ramparts(
        "invoke", "app.handler", "--code", functions / "echo", "--layer", build.path,
        "--env", "AWS_LAMBDA_EXEC_WRAPPER=/opt/ramparts-wrapper", "--env", "RAMPARTS_MODE=off",
        "--event", event,
    )  # fmt: skip

    # THEN the wrapper came out of the zip executable and ran, and `ramparts` is the zip's
    assert run.exit_code == 0, run.stderr
    body = run.responses[0]
    wrapper = body["env"]["AWS_LAMBDA_EXEC_WRAPPER"]
    assert wrapper.endswith("/ramparts-wrapper") and not wrapper.startswith("/opt/")
    assert body["env"]["_HANDLER"] == "app.handler"  # RAMPARTS_MODE=off leaves it alone
    layer_python = body["sys_path"][1]
    assert layer_python.endswith("/python")
    assert body["modules"]["ramparts"] == f"{layer_python}/ramparts/__init__.py"
    # and the extracted layer is removed afterwards
    assert not Path(layer_python).exists()


def test_the_sensor_in_the_built_zip_reports_on_the_log_stream(functions, tmp_path):
    # GIVEN the built zip's wrapper attached with the sensor on
    from ramparts_cli.invoke import run_invocations

    build = build_layer(tmp_path)

    result = run_invocations(
        "app.handler",
        functions / "echo",
        [{"n": 1}],
        layer=build.path,
        env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper"},
    )

    # THEN the function still answers, and the sensor's lines (JSON with the "ramparts" key)
    # are on its log stream
    assert result.exit_code == 0, result.log_lines
    assert result.payloads[0]["event"] == {"n": 1}
    sensor_lines = []
    for line in result.log_lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "ramparts" in record:
            sensor_lines.append(record)
    assert sensor_lines, result.log_lines
