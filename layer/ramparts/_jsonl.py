"""JSON in and out without importing ``json`` (which imports ``re``: ~5 ms of cold start).

The encoder handles what the sensor emits (dict, list, tuple, str, int, float, bool, None);
strings go through the C accelerator ``_json.encode_basestring_ascii``. The decoder drives
the C scanner ``_json.make_scanner`` that ``json`` itself uses. Both fall back to the
``json`` module when the accelerator is missing.
"""

from __future__ import annotations

# typing is not imported at run time: it pulls in re, functools, contextlib (~6 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_enc_str: Any
_make_scanner: Any
try:
    import _json

    _enc_str = _json.encode_basestring_ascii
    _make_scanner = _json.make_scanner
except ImportError:  # pragma: no cover - every CPython build has _json
    _enc_str = None
    _make_scanner = None


def _py_enc_str(s: str) -> str:
    import json

    return json.dumps(s)


def _encode(obj: Any, out: list[str]) -> None:
    t = type(obj)
    if t is str:
        out.append(_enc_str(obj) if _enc_str is not None else _py_enc_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif t is int:
        out.append(int.__repr__(obj))
    elif t is float:
        out.append(float.__repr__(obj) if obj - obj == 0.0 else "null")  # finite (no math)
    elif t is dict:
        out.append("{")
        first = True
        for k, v in obj.items():
            if not first:
                out.append(",")
            first = False
            _encode(k if type(k) is str else str(k), out)
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif t is list or t is tuple:
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    elif isinstance(obj, bytes):
        _encode(obj.decode("utf-8", "backslashreplace"), out)
    elif isinstance(obj, (set, frozenset)):
        _encode(sorted(obj, key=str), out)
    elif isinstance(obj, int):
        _encode(int(obj), out)
    elif isinstance(obj, float):
        _encode(float(obj), out)
    else:
        _encode(str(obj), out)


def _default(obj: Any) -> Any:
    """What the C encoder cannot take: bytes, sets, other objects (as the Python path does)."""
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    return str(obj)


_c_encoder: Any = None
try:
    _c_encoder = _json.make_encoder(
        None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, False
    )
except (AttributeError, NameError, TypeError):  # pragma: no cover
    _c_encoder = None


def dumps(obj: Any) -> str:
    """Compact ASCII JSON; the C encoder when it can, the Python one when it cannot."""
    if _c_encoder is not None:
        try:
            return "".join(_c_encoder(obj, 0))
        except (ValueError, TypeError, RecursionError):
            pass  # non-finite floats, odd keys: the Python encoder handles them
    out: list[str] = []
    _encode(obj, out)
    return "".join(out)


class _Ctx:
    """The attributes ``_json.make_scanner`` reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str]

    def __init__(self) -> None:
        self.memo = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        raise ValueError(f"{name} is not valid JSON")


class JSONError(ValueError):
    def __init__(self, msg: str, pos: int, doc: str) -> None:
        line = doc.count("\n", 0, pos) + 1
        col = pos - doc.rfind("\n", 0, pos)
        super().__init__(f"{msg} at line {line}, column {col}")
        self.lineno = line


def loads(text: str) -> Any:
    """Parse a JSON document; errors carry the line and column."""
    if _make_scanner is None:  # pragma: no cover
        import json

        return json.loads(text)
    scan = _make_scanner(_Ctx())
    n = len(text)
    i = 0
    while i < n and text[i] in " \t\r\n":
        i += 1
    try:
        obj, end = scan(text, i)
    except StopIteration as exc:
        raise JSONError("expected a JSON value", exc.value, text) from None
    except (ValueError, SystemError):
        # Some errors leave the bare C scanner without a message (SystemError); the json
        # module (imported only on this error path) says what and where.
        import json

        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise JSONError(err.msg, err.pos, text) from None
        raise JSONError("invalid JSON", i, text) from None
    while end < n and text[end] in " \t\r\n":
        end += 1
    if end != n:
        raise JSONError("extra data after the JSON value", end, text)
    return obj
