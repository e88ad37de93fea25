"""The subset of YAML that Ramparts policy files use, parsed without dependencies.

Supported: block mappings and sequences by indentation, ``- key: value`` items, comments,
plain / single-quoted / double-quoted scalars, flow sequences ``[a, b]`` and flow mappings
``{host: x, ports: [443]}``, ``true``/``false``/``null``/integers, a leading ``---``.
Not supported (a clear error names the line): anchors and aliases, tags, block scalars
(``|`` and ``>``), multi-document files, multi-line flow collections, complex keys.
The Lambda runtime ships no YAML library, and the sensor adds none.
"""

from __future__ import annotations

# typing is not imported at run time: it pulls in re, functools, contextlib (~6 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class YAMLError(ValueError):
    def __init__(self, msg: str, lineno: int) -> None:
        super().__init__(f"line {lineno}: {msg}")
        self.lineno = lineno


def _strip_comment(text: str) -> str:
    """Drop a trailing ``# comment`` that is outside quotes."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "/": "/", "0": "\0", " ": " "}


def _scalar(tok: str, lineno: int) -> Any:
    tok = tok.strip()
    if not tok:
        return None
    c = tok[0]
    if c == '"':
        if len(tok) < 2 or not tok.endswith('"'):
            raise YAMLError("unterminated double-quoted string", lineno)
        body = tok[1:-1]
        out: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                if nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                    i += 2
                    continue
                if nxt == "u" and i + 6 <= len(body):
                    digits = body[i + 2 : i + 6]
                    if not all(c in "0123456789abcdefABCDEF" for c in digits):
                        raise YAMLError(f"bad \\u escape {digits!r}", lineno)
                    out.append(chr(int(digits, 16)))
                    i += 6
                    continue
                raise YAMLError(f"unknown escape \\{nxt}", lineno)
            out.append(ch)
            i += 1
        return "".join(out)
    if c == "'":
        if len(tok) < 2 or not tok.endswith("'"):
            raise YAMLError("unterminated single-quoted string", lineno)
        return tok[1:-1].replace("''", "'")
    if c in "&*!|>%@`":
        raise YAMLError(
            f"{tok[:20]!r}: anchors, aliases, tags and block scalars are not supported in "
            "Ramparts policies; quote the value if it is a string",
            lineno,
        )
    low = tok.lower()
    # YAML 1.2 core schema: only true/false are booleans; "off" and "on" stay strings
    # (``off`` is a mode name).
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("null", "~"):
        return None
    body = tok[1:] if tok[0] in "+-" else tok
    if body.isascii() and body.isdigit():
        return int(tok)
    return tok


def _split_flow(body: str, lineno: int) -> list[str]:
    parts: list[str] = []
    depth = 0
    quote = ""
    cur: list[str] = []
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise YAMLError("unbalanced brackets", lineno)
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if quote or depth:
        raise YAMLError(
            "unterminated flow collection (keep [ ... ] and { ... } on one line)", lineno
        )
    tail = "".join(cur)
    if tail.strip():
        parts.append(tail)
    return parts


def _split_key(text: str) -> tuple[str, str] | None:
    """Split ``key: value`` at the first ': ' (or a trailing ':') outside quotes/brackets."""
    quote = ""
    depth = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == ":" and depth == 0 and (i + 1 == len(text) or text[i + 1] in " \t"):
            return text[:i].strip(), text[i + 1 :].strip()
    return None


def _value(tok: str, lineno: int) -> Any:
    tok = tok.strip()
    if tok.startswith("["):
        if not tok.endswith("]"):
            raise YAMLError("unterminated flow sequence (keep [ ... ] on one line)", lineno)
        return [_value(p, lineno) for p in _split_flow(tok[1:-1], lineno)]
    if tok.startswith("{"):
        if not tok.endswith("}"):
            raise YAMLError("unterminated flow mapping (keep { ... } on one line)", lineno)
        out: dict[str, Any] = {}
        for p in _split_flow(tok[1:-1], lineno):
            kv = _split_key(p.strip())
            if kv is None:
                raise YAMLError(f"expected 'key: value' in flow mapping, got {p.strip()!r}", lineno)
            k = _scalar(kv[0], lineno)
            out[str(k)] = _value(kv[1], lineno)
        return out
    return _scalar(tok, lineno)


class _Line:
    __slots__ = ("indent", "lineno", "text")

    def __init__(self, indent: int, text: str, lineno: int) -> None:
        self.indent = indent
        self.text = text
        self.lineno = lineno


def loads(text: str) -> Any:
    lines: list[_Line] = []
    for n, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YAMLError("tabs are not allowed for indentation", n)
        body = _strip_comment(raw)
        if not body.strip():
            continue
        if body.strip() == "---":
            if lines:
                raise YAMLError("only one YAML document is allowed", n)
            continue
        if body.strip() == "...":
            break
        indent = len(body) - len(body.lstrip(" "))
        lines.append(_Line(indent, body.strip(), n))
    if not lines:
        return None
    value, pos = _block(lines, 0, lines[0].indent)
    if pos != len(lines):
        raise YAMLError("unexpected indentation", lines[pos].lineno)
    return value


def _block(lines: list[_Line], pos: int, indent: int) -> tuple[Any, int]:
    first = lines[pos]
    if first.text.startswith("- ") or first.text == "-":
        return _sequence(lines, pos, indent)
    if _split_key(first.text) is not None:
        return _mapping(lines, pos, indent)
    if pos + 1 < len(lines) and lines[pos + 1].indent >= indent:
        raise YAMLError("expected 'key: value' or '- item'", lines[pos + 1].lineno)
    return _value(first.text, first.lineno), pos + 1


def _child(lines: list[_Line], pos: int, parent_indent: int, lineno: int) -> tuple[Any, int]:
    """The nested block after ``key:`` or ``-`` with nothing on its line."""
    if pos < len(lines) and lines[pos].indent > parent_indent:
        return _block(lines, pos, lines[pos].indent)
    if pos < len(lines) and lines[pos].indent == parent_indent and lines[pos].text.startswith("-"):
        # "key:\n- a\n- b" (sequence at the key's own indentation) is valid YAML
        return _sequence(lines, pos, parent_indent)
    return None, pos


def _mapping(lines: list[_Line], pos: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while pos < len(lines):
        line = lines[pos]
        if line.indent < indent:
            break
        if line.indent > indent:
            raise YAMLError("unexpected indentation", line.lineno)
        if line.text.startswith("- "):
            break
        kv = _split_key(line.text)
        if kv is None:
            raise YAMLError(f"expected 'key: value', got {line.text!r}", line.lineno)
        key = str(_scalar(kv[0], line.lineno))
        if key in out:
            raise YAMLError(f"duplicate key {key!r}", line.lineno)
        pos += 1
        if kv[1]:
            out[key] = _value(kv[1], line.lineno)
        else:
            out[key], pos = _child(lines, pos, indent, line.lineno)
    return out, pos


def _sequence(lines: list[_Line], pos: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while pos < len(lines):
        line = lines[pos]
        if line.indent < indent:
            break
        if line.indent > indent:
            raise YAMLError("unexpected indentation", line.lineno)
        if not (line.text.startswith("- ") or line.text == "-"):
            break
        rest = line.text[1:].strip()
        pos += 1
        if not rest:
            item, pos = _child(lines, pos, indent, line.lineno)
            out.append(item)
            continue
        kv = _split_key(rest) if not rest.startswith(("[", "{", '"', "'")) else None
        if kv is None:
            out.append(_value(rest, line.lineno))
            continue
        # "- key: value" opens a mapping whose further keys sit at the item's text column
        item_indent = indent + (len(line.text) - len(rest))
        lines[pos - 1] = _Line(item_indent, rest, line.lineno)
        item_map, pos = _mapping(lines, pos - 1, item_indent)
        out.append(item_map)
    return out, pos
