"""Native library loads: ctypes and extension modules, the usual way around an audit hook."""

from __future__ import annotations

from tests.sensor.conftest import run_case


def test_importing_ctypes_and_extension_modules_is_normal_work():
    r = run_case(
        """
import ctypes, _decimal, array, zlib
SENSOR.flush()
"""
    )
    assert r.alerts() == []


def test_ctypes_load_of_libc_and_its_dangerous_symbols():
    r = run_case(
        """
import ctypes, ctypes.util
libc = ctypes.CDLL("libc.so.6")
attempt("getpid", lambda: libc.getpid())
attempt("system_sym", lambda: libc.system)
main = ctypes.CDLL(None)
attempt("execve_sym", lambda: main.execve)
"""
    )
    by_op = {(a["op"], a.get("symbol")) for a in r.alerts("default.native-libc")}
    assert ("dlopen", None) in by_op
    assert ("dlsym", "system") in by_op
    assert ("dlsym", "execve") in by_op
    assert ("dlsym", "getpid") not in by_op  # harmless symbols are not noise
    assert any(a["library"] is None for a in r.alerts("default.native-libc"))  # dlopen(NULL)


def test_enforce_blocks_libc_through_ctypes():
    r = run_case(
        """
import ctypes
attempt("cdll", lambda: ctypes.CDLL("libc.so.6"))
attempt("loadlibrary", lambda: ctypes.cdll.LoadLibrary("libc.so.6"))
attempt("null", lambda: ctypes.CDLL(None))
""",
        env={"RAMPARTS_MODE": "enforce"},
    )
    assert all(r.results[k]["ramparts"] for k in ("cdll", "loadlibrary", "null")), r.results


def test_native_code_from_writable_directories():
    r = run_case(
        """
import shutil, sys, importlib.util, importlib.machinery, ctypes
# an extension module this process has not loaded yet, dropped into /tmp
spec0 = importlib.util.find_spec("_csv")
assert "_csv" not in sys.modules
dst = "/tmp/" + spec0.origin.rsplit("/", 1)[-1]
shutil.copy(spec0.origin, dst)
attempt("ctypes", lambda: ctypes.CDLL(dst))
sys.path.insert(0, "/tmp")
attempt("import", lambda: importlib.import_module("_csv").__file__)
"""
    )
    ops = {a["op"] for a in r.alerts("default.native-writable")}
    assert ops == {"dlopen", "import"}, r.stdout
    assert all(a["library"].startswith("/tmp/") for a in r.alerts("default.native-writable"))
