"""Check events against OCSF's own schema, offline.

The schema data is the compiled schema that OCSF's schema server exports (classes with
their attributes, requirement levels, types, enums, objects, profiles), as shipped for
several OCSF versions by the pinned ``ocsf-json-schema`` package. That package also turns
a class (with a set of profiles) into a JSON Schema (draft 2020-12) with every referenced
object embedded; ``validate_ocsf`` runs that JSON Schema and then adds what a JSON Schema
of one class cannot say:

- ``type_uid`` must be ``class_uid * 100 + activity_id``;
- ``metadata.version`` must be the OCSF version we validate against;
- profiles: an event may use a profile's attributes only if it lists the profile in
  ``metadata.profiles`` (OCSF's rule; a listed profile's *required* attributes become
  required too, e.g. ``cloud`` for the ``cloud`` profile). Ramparts allows only the
  profiles in ``ALLOWED_PROFILES``;
- an enum's sibling string (``activity_name``, ``severity``, ``type_name``...) must be the
  caption of its ``*_id`` value, unless the id is 99 (Other), where it carries the source's
  own label;
- integers are JSON integers (``5.0`` is not an ``integer_t``), and a ``timestamp_t`` is a
  plausible count of epoch *milliseconds* (catches seconds and nanoseconds).

Being the JSON Schema of the export, it is strict: an attribute not defined for the class
(or its enabled profiles) or for the object it sits in is an error; ``unmapped`` (a free
``object``) takes anything. ``null`` is never a value: leave the attribute out.

For model authors::

    python -m tests.ocsf 1007            # a class: attributes, requirement levels, types
    python -m tests.ocsf process         # an object
    python -m tests.ocsf 1007 --all-profiles
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeGuard

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

OCSF_VERSION: Final[str] = "1.8.0"

# Profiles a Ramparts event may declare in metadata.profiles (where its class supports them).
ALLOWED_PROFILES: Final[frozenset[str]] = frozenset(
    {"cloud", "container", "host", "security_control"}
)

OTHER_ID: Final[int] = 99  # "Other": the sibling string then holds the source's own label

# timestamp_t is epoch milliseconds: 1980-01-01 <= t < 2100-01-01. Seconds since the epoch
# fall below (1.7e9 ms is January 1970), micro- and nanoseconds above.
_MIN_TIMESTAMP_MS: Final[int] = 315_532_800_000
_MAX_TIMESTAMP_MS: Final[int] = 4_102_444_800_000


# --------------------------------------------------------------------------------------
# Schema data


@functools.cache
def _raw() -> dict[str, Any]:
    schema: dict[str, Any] = get_ocsf_schema(version=OCSF_VERSION)
    if schema.get("version") != OCSF_VERSION:
        raise RuntimeError(f"packaged OCSF schema is {schema.get('version')!r}, not {OCSF_VERSION}")
    return schema


def _types() -> Mapping[str, Any]:
    raw = _raw()
    if "dictionary" in raw:  # the v2 export (OCSF 1.8.0 on)
        types: Mapping[str, Any] = raw["dictionary"]["types"]["attributes"]
    else:
        types = raw["types"]
    return types


@functools.cache
def _classes_by_uid() -> dict[int, dict[str, Any]]:
    return {int(cls["uid"]): cls for cls in _raw()["classes"].values()}


def _raw_class(class_uid: int) -> dict[str, Any]:
    try:
        return _classes_by_uid()[class_uid]
    except KeyError:
        raise KeyError(f"no class with class_uid {class_uid} in OCSF {OCSF_VERSION}") from None


def _raw_object(name: str) -> dict[str, Any]:
    try:
        obj: dict[str, Any] = _raw()["objects"][name]
    except KeyError:
        raise KeyError(f"no object {name!r} in OCSF {OCSF_VERSION}") from None
    return obj


def _attr_profiles(attr: Mapping[str, Any]) -> tuple[str, ...]:
    """The profiles an attribute belongs to (none: always available)."""
    if "profiles" in attr:  # v2 export: a list or null
        return tuple(attr["profiles"] or ())
    profile = attr.get("profile")  # v1 export: one name or null
    return (profile,) if profile else ()


def _base_type(type_name: str) -> str:
    """The primitive under an OCSF type: timestamp_t -> long_t, ip_t -> string_t."""
    seen = set()
    while type_name not in seen:
        seen.add(type_name)
        parent = _types().get(type_name, {}).get("type")
        if not parent:
            return type_name
        type_name = parent
    return type_name


def _enum_of(attr: Mapping[str, Any]) -> dict[int | str, str] | None:
    enum = attr.get("enum")
    if not enum:
        return None
    integral = _base_type(attr["type"]) in {"integer_t", "long_t"}
    values = {(int(k) if integral else k): v.get("caption", "") for k, v in enum.items()}
    return dict(sorted(values.items(), key=lambda kv: (isinstance(kv[0], str), kv[0])))


def _describe(attr: Mapping[str, Any]) -> dict[str, Any]:
    deprecated = attr.get("@deprecated")
    return {
        "caption": attr.get("caption", ""),
        "requirement": attr.get("requirement", "optional"),
        "type": attr["type"],
        "object_type": attr.get("object_type"),
        "is_array": bool(attr.get("is_array", False)),
        "profiles": list(_attr_profiles(attr)),
        "enum": _enum_of(attr),
        "sibling": attr.get("sibling"),
        "deprecated": (deprecated or {}).get("message") if deprecated is not None else None,
    }


def ocsf_class(class_uid: int) -> dict[str, Any]:
    """A class as the schema defines it, for lookups by model authors.

    ``attributes`` maps every attribute name (base event ones included) to ``requirement``
    (required | recommended | optional), ``type`` (OCSF type, ``object_t`` with
    ``object_type``), ``is_array``, ``profiles`` (non-empty: only with that profile),
    ``enum`` (value -> caption), ``sibling`` and ``deprecated`` (a message, or None).
    """
    cls = _raw_class(class_uid)
    return {
        "uid": int(cls["uid"]),
        "name": cls["name"],
        "caption": cls.get("caption", ""),
        "category_uid": cls.get("category_uid"),
        "category_name": cls.get("category_name"),
        "profiles": list(cls.get("profiles") or ()),
        "constraints": dict(cls.get("constraints") or {}),
        "attributes": {name: _describe(attr) for name, attr in sorted(cls["attributes"].items())},
    }


def ocsf_object(name: str) -> dict[str, Any]:
    """An object (``process``, ``metadata``, ``network_endpoint``...), shaped like ``ocsf_class``."""
    obj = _raw_object(name)
    return {
        "name": obj["name"],
        "caption": obj.get("caption", ""),
        "constraints": dict(obj.get("constraints") or {}),
        "attributes": {n: _describe(attr) for n, attr in sorted(obj["attributes"].items())},
    }


# --------------------------------------------------------------------------------------
# Validation


def _is_int(value: object) -> TypeGuard[int]:
    # JSON Schema counts 5.0 as an integer; an OCSF integer_t/long_t/timestamp_t is not a float.
    return isinstance(value, int) and not isinstance(value, bool)


_StrictValidator = jsonschema.validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: _is_int(value)
    ),
)


@functools.cache
def _embedded() -> OcsfJsonSchemaEmbedded:
    return OcsfJsonSchemaEmbedded(_raw())


# Where a JSON Schema (sub)schema came from: ("class" | "object", OCSF name).
_Owner = tuple[str, str]


@functools.cache
def _validator(class_name: str, profiles: tuple[str, ...]) -> tuple[Any, dict[int, _Owner]]:
    """A JSON Schema validator for a class with profiles, and id(subschema) -> its owner."""
    schema: dict[str, Any] = _embedded().get_class_schema(class_name, list(profiles))
    _StrictValidator.check_schema(schema)
    by_slug = {name.replace("/", "_"): name for name in _raw()["objects"]}  # $defs keys
    owners: dict[int, _Owner] = {
        id(sub): ("object", by_slug.get(slug, slug))
        for slug, sub in schema.get("$defs", {}).items()
    }
    owners[id(schema)] = ("class", class_name)
    return _StrictValidator(schema), owners


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "event"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _owner_attrs(owner: _Owner) -> Mapping[str, Any]:
    kind, name = owner
    if kind == "class":
        cls: Mapping[str, Any] = _raw()["classes"].get(name, {})
        return cls.get("attributes", {})  # type: ignore[no-any-return]
    obj: Mapping[str, Any] = _raw()["objects"].get(name, {})
    return obj.get("attributes", {})  # type: ignore[no-any-return]


def _unknown_attribute(where: str, name: str, owner: _Owner | None) -> str:
    at = f"{where}.{name}" if where != "event" else name
    attr = _owner_attrs(owner).get(name) if owner else None
    whose = f"{owner[0]} {owner[1]!r}" if owner else "this object"
    profiles = _attr_profiles(attr) if attr else ()
    if not profiles:
        return f"{at}: not an attribute of {whose} in OCSF {OCSF_VERSION}"
    enabled = [p for p in profiles if p in ALLOWED_PROFILES]
    if enabled:
        hint = f"list profile {' or '.join(map(repr, enabled))} in metadata.profiles to use it"
    else:
        hint = f"Ramparts does not enable its profile(s) {', '.join(profiles)}"
    return f"{at}: attribute of {whose} only with profile {'/'.join(profiles)}: {hint}"


def _enum_order(value: Any) -> tuple[bool, Any]:
    return (not _is_int(value), value if _is_int(value) else str(value))


def _schema_errors(error: ValidationError, owners: Mapping[int, _Owner]) -> list[str]:
    where = _where(error.absolute_path)
    keyword = error.validator
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    title = schema.get("title") or "value"
    if keyword == "required":
        return [
            f"{where}: missing required attribute {name!r}"
            for name in error.validator_value
            if isinstance(instance, dict) and name not in instance
        ]
    if keyword == "additionalProperties":
        owner = owners.get(id(error.schema))
        known = schema.get("properties", {})
        return [_unknown_attribute(where, n, owner) for n in instance if n not in known]
    if keyword == "type":
        return [
            f"{where}: {title} must be {error.validator_value}, "
            f"got {type(instance).__name__} {_short(instance)}"
        ]
    if keyword == "enum":
        return [
            f"{where}: {_short(instance)} is not a defined {title} value "
            f"(defined: {', '.join(map(str, sorted(error.validator_value, key=_enum_order)))})"
        ]
    if keyword == "const":
        return [f"{where}: {title} must be {error.validator_value!r}, got {_short(instance)}"]
    if keyword in {"anyOf", "oneOf"}:
        fields = [name for option in error.validator_value for name in option.get("required", [])]
        if keyword == "anyOf":
            return [f"{where}: {title} needs at least one of {', '.join(fields)}"]
        present = [f for f in fields if isinstance(instance, dict) and f in instance]
        return [
            f"{where}: {title} needs exactly one of {', '.join(fields)} "
            f"(has {', '.join(present) or 'none'})"
        ]
    if keyword == "pattern":
        return [f"{where}: {_short(instance)} is not a valid {title} (OCSF type pattern)"]
    return [f"{where}: {error.message}"]


def _walk(value: Any, attrs: Mapping[str, Any], where: str, errors: list[str]) -> None:
    """Checks a JSON Schema cannot express: enum siblings, epoch-ms timestamps."""
    if not isinstance(value, dict):
        return
    objects = _raw()["objects"]
    for name, item in value.items():
        attr = attrs.get(name)
        if attr is None:
            continue  # unknown: the JSON Schema reports it
        at = f"{where}.{name}" if where else name
        elements: list[tuple[int | None, Any]] = [(None, item)]
        if attr.get("is_array"):
            elements = list(enumerate(item)) if isinstance(item, list) else []
        for index, element in elements:
            here = at if index is None else f"{at}[{index}]"
            if attr["type"] == "object_t":
                obj = objects.get(attr.get("object_type"), {})
                _walk(element, obj.get("attributes", {}), here, errors)
            elif (
                attr["type"] == "timestamp_t"
                and _is_int(element)
                and not _MIN_TIMESTAMP_MS <= element < _MAX_TIMESTAMP_MS
            ):
                errors.append(
                    f"{here}: {element} is not a plausible epoch-milliseconds timestamp "
                    "(seconds? nanoseconds?)"
                )
        sibling = attr.get("sibling")
        enum = attr.get("enum") or {}
        label = value.get(sibling) if sibling else None
        if isinstance(label, str) and _is_int(item) and item != OTHER_ID and str(item) in enum:
            caption = enum[str(item)].get("caption")
            if label != caption:
                free = f"; only {name}={OTHER_ID} (Other) takes a free label"
                errors.append(
                    f"{where + '.' if where else ''}{sibling}: {label!r} does not match "
                    f"{name}={item} ({caption!r}){free if name.endswith('_id') else ''}"
                )


def validate_ocsf(event: Mapping[str, Any]) -> list[str]:
    """Errors that make ``event`` invalid OCSF for the class named by its ``class_uid``.

    An empty list means valid. Messages start with the attribute's path
    (``process.file.name``, ``observables[0].type_id``).
    """
    if not isinstance(event, Mapping):  # callers may hand us anything parsed from JSON
        return [f"event: must be a JSON object, got {type(event).__name__}"]  # type: ignore[unreachable]
    class_uid = event.get("class_uid")
    if not _is_int(class_uid):
        return [f"class_uid: missing or not an integer ({_short(class_uid)})"]
    cls = _classes_by_uid().get(class_uid)
    if cls is None:
        return [f"class_uid: {class_uid} is not a class of OCSF {OCSF_VERSION}"]

    errors: list[str] = []
    metadata = event.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}

    version = metadata.get("version")
    if isinstance(version, str) and version != OCSF_VERSION:
        errors.append(f"metadata.version: {version!r}, but the schema checked is {OCSF_VERSION}")

    declared = metadata.get("profiles")
    profiles: set[str] = set()
    if isinstance(declared, list):
        supported = set(cls.get("profiles") or ())
        for i, profile in enumerate(declared):
            if not isinstance(profile, str):
                continue  # the JSON Schema reports the type
            if profile not in supported:
                errors.append(f"metadata.profiles[{i}]: {cls['name']} has no profile {profile!r}")
            elif profile not in ALLOWED_PROFILES:
                errors.append(
                    f"metadata.profiles[{i}]: profile {profile!r} is not enabled for Ramparts "
                    f"events (allowed: {', '.join(sorted(ALLOWED_PROFILES))})"
                )
            else:
                profiles.add(profile)

    validator, owners = _validator(cls["name"], tuple(sorted(profiles)))
    found = sorted(validator.iter_errors(dict(event)), key=lambda e: [str(p) for p in e.path])
    mistyped = {tuple(e.absolute_path) for e in found if e.validator == "type"}
    for error in found:
        if error.validator != "type" and tuple(error.absolute_path) in mistyped:
            continue  # "must be integer" says it all; skip "not a defined value" for it
        errors.extend(_schema_errors(error, owners))

    activity_id, type_uid = event.get("activity_id"), event.get("type_uid")
    if _is_int(activity_id) and _is_int(type_uid):
        expected = class_uid * 100 + activity_id
        if type_uid != expected:
            errors.append(f"type_uid: {type_uid}, but class_uid*100 + activity_id = {expected}")

    _walk(dict(event), cls["attributes"], "", errors)
    return list(dict.fromkeys(errors))  # same message once, in order


# --------------------------------------------------------------------------------------
# CLI


def _type_label(attr: Mapping[str, Any]) -> str:
    label = f"object:{attr['object_type']}" if attr["type"] == "object_t" else attr["type"]
    return label + ("[]" if attr["is_array"] else "")


def _enum_label(enum: Mapping[int | str, str] | None, limit: int = 12) -> str:
    if not enum:
        return ""
    items = [f"{k} {v}" for k, v in enum.items()]
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return "enum: " + ", ".join(items[:limit]) + more


def _constraint_lines(constraints: Mapping[str, Any]) -> list[str]:
    words = {"at_least_one": "at least one of", "just_one": "exactly one of"}
    return [f"  {words.get(k, k)}: {', '.join(v)}" for k, v in constraints.items()]


def _print_attributes(
    attributes: Mapping[str, Mapping[str, Any]], all_profiles: bool, out: list[str]
) -> None:
    def visible(attr: Mapping[str, Any]) -> bool:
        return (
            all_profiles or not attr["profiles"] or bool(set(attr["profiles"]) & ALLOWED_PROFILES)
        )

    width = max((len(n) for n in attributes), default=10) + 2
    for level in ("required", "recommended", "optional"):
        for with_profile in (False, True):
            rows = [
                (n, a)
                for n, a in attributes.items()
                if a["requirement"] == level and bool(a["profiles"]) == with_profile and visible(a)
            ]
            if not rows:
                continue
            suffix = " (only with the profile in metadata.profiles)" if with_profile else ""
            out.append(f"\n{level}{suffix}:")
            for name, attr in rows:
                notes = [_enum_label(attr["enum"])]
                if attr["profiles"]:
                    notes.insert(0, "profile " + "/".join(attr["profiles"]))
                if attr["deprecated"] is not None:
                    notes.append("DEPRECATED: " + re.sub(r"<[^>]+>", "", attr["deprecated"]))
                note = "  ".join(n for n in notes if n)
                out.append(f"  {name:<{width}}{_type_label(attr):<28}{note}".rstrip())


def describe(target: str, all_profiles: bool = False) -> str:
    """The text ``python -m tests.ocsf TARGET`` prints."""
    out: list[str] = []
    if target.isdigit():
        cls = ocsf_class(int(target))
        out.append(
            f"{cls['caption']} ({cls['name']}): class_uid {cls['uid']}, category_uid "
            f"{cls['category_uid']} ({cls['category_name']}); OCSF {OCSF_VERSION}"
        )
        activities = cls["attributes"]["activity_id"]["enum"] or {}
        out.append("activity_id: " + ", ".join(f"{k} {v}" for k, v in activities.items()))
        out.append(f"type_uid = {cls['uid']} * 100 + activity_id")
        enabled = sorted(set(cls["profiles"]) & ALLOWED_PROFILES)
        others = sorted(set(cls["profiles"]) - ALLOWED_PROFILES)
        out.append(
            f"profiles Ramparts may declare: {', '.join(enabled) or 'none'}"
            + (f" (not enabled: {', '.join(others)})" if others else "")
        )
        if cls["constraints"]:
            out.append("constraints:")
            out.extend(_constraint_lines(cls["constraints"]))
        _print_attributes(cls["attributes"], all_profiles, out)
    else:
        obj = ocsf_object(target)
        out.append(f"{obj['caption']} (object {obj['name']}); OCSF {OCSF_VERSION}")
        if obj["constraints"]:
            out.append("constraints:")
            out.extend(_constraint_lines(obj["constraints"]))
        _print_attributes(obj["attributes"], all_profiles, out)
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.ocsf",
        description=f"Show an OCSF {OCSF_VERSION} class (by class_uid) or object (by name).",
    )
    parser.add_argument("target", nargs="+", help="class_uid (1007) or object name (process)")
    parser.add_argument(
        "--all-profiles",
        action="store_true",
        help="also list attributes of profiles Ramparts does not enable",
    )
    args = parser.parse_args(argv)
    status = 0
    for target in args.target:
        try:
            sys.stdout.write(describe(target, args.all_profiles) + "\n\n")
        except KeyError as exc:
            sys.stderr.write(f"{exc.args[0]}\n")
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
