"""The sensor reports installed distributions once per sandbox, then what was imported since."""

from __future__ import annotations

from tests.sensor.conftest import run_case

TREE = """
import os, sys, tempfile
SITE = tempfile.mkdtemp(prefix="fnsite-")
def dist(name, version, module, how):
    meta = os.path.join(SITE, f"{name}-{version}.dist-info")
    os.makedirs(meta)
    if how == "top_level":
        open(os.path.join(meta, "top_level.txt"), "w").write(module + "\\n")
    elif how == "record":
        open(os.path.join(meta, "RECORD"), "w").write(
            f"{module}/__init__.py,sha256=x,1\\n{name}-{version}.dist-info/METADATA,,\\n")
    elif how == "single":
        open(os.path.join(meta, "RECORD"), "w").write(f"{module}.py,sha256=x,1\\n")
    if how == "single":
        open(os.path.join(SITE, module + ".py"), "w").write("X = 1\\n")
    else:
        os.makedirs(os.path.join(SITE, module))
        open(os.path.join(SITE, module, "__init__.py"), "w").write("X = 1\\n")
dist("requests", "2.31.0", "requests", "top_level")
dist("PyYAML", "6.0.1", "yaml", "record")
dist("six", "1.16.0", "six", "single")
dist("never_used", "1.0", "never_used", "none")
os.makedirs(os.path.join(SITE, "legacy-0.9-py3.11.egg-info"))
sys.path.insert(0, SITE)
"""


def _mine(line: dict) -> dict[str, dict]:
    return {
        p["name"]: p for p in line["packages"] if p["path"].split("/")[-1].startswith("fnsite-")
    }


def test_packages_reported_once_then_only_new_imports() -> None:
    r = run_case(
        TREE
        + """
import ramparts
@ramparts.protect
def handler(event, context):
    if event == 1:
        import requests, six
    if event == 2:
        import yaml
    return event
for e in (1, 0, 2, 0):
    attempt(f"call{e}", lambda: handler(e, None))
"""
    )
    lines = r.kinds("sensor.packages")
    assert [x["update"] for x in lines] == [False, True], lines
    first = _mine(lines[0])
    assert {n: (p["version"], p["imported"]) for n, p in first.items()} == {
        "requests": ("2.31.0", True),
        "PyYAML": ("6.0.1", False),
        "six": ("1.16.0", True),
        "never_used": ("1.0", False),
        "legacy": ("0.9", False),
    }
    assert [(p["name"], p["imported"]) for p in lines[1]["packages"]] == [("PyYAML", True)]
    # the scan's own reads are not reported as the function's activity
    assert not [e for e in r.events if e["kind"] == "file.read"], r.events
    assert r.total("file.read", "allow") == 0


def test_packages_can_be_turned_off() -> None:
    r = run_case(
        TREE
        + """
import ramparts
@ramparts.protect
def handler(event, context):
    return 1
attempt("call", lambda: handler({}, None))
""",
        env={"RAMPARTS_PACKAGES": "off"},
    )
    assert r.kinds("sensor.packages") == []
    assert r.summaries()
