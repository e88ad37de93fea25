"""CVSS v3.0/v3.1 base scores, computed from the vector string.

Written from FIRST's specifications (https://www.first.org/cvss/v3.1/specification-document,
section 7, and the v3.0 document). Only the base metric group is scored; temporal and
environmental metrics in a vector are checked for form and otherwise ignored, as OSV's
``severity`` entries are base vectors. CVSS v4 vectors are not scored here (their scoring
uses a table of macro-vectors): callers keep the vector as it is.

    >>> base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    9.8
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["CvssError", "V3Score", "base_score", "rating", "roundup", "score_v3"]

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}
_BASE: dict[str, frozenset[str]] = {
    "AV": frozenset(_AV),
    "AC": frozenset(_AC),
    "PR": frozenset(_PR_UNCHANGED),
    "UI": frozenset(_UI),
    "S": frozenset("UC"),
    "C": frozenset(_CIA),
    "I": frozenset(_CIA),
    "A": frozenset(_CIA),
}
# Temporal and environmental metrics: allowed in a vector, not part of the base score.
_OTHER: dict[str, frozenset[str]] = {
    "E": frozenset("XUPFH"),
    "RL": frozenset("XOTWU"),
    "RC": frozenset("XURC"),
    "CR": frozenset("XLMH"),
    "IR": frozenset("XLMH"),
    "AR": frozenset("XLMH"),
    "MAV": frozenset("XNALP"),
    "MAC": frozenset("XLH"),
    "MPR": frozenset("XNLH"),
    "MUI": frozenset("XNR"),
    "MS": frozenset("XUC"),
    "MC": frozenset("XNLH"),
    "MI": frozenset("XNLH"),
    "MA": frozenset("XNLH"),
}
_PREFIX = re.compile(r"CVSS:(3\.[01])/")


class CvssError(ValueError):
    """A vector that is not a CVSS v3 vector."""


@dataclass(frozen=True, slots=True)
class V3Score:
    version: str  # "3.0" or "3.1"
    base_score: float
    severity: str  # None, Low, Medium, High, Critical (FIRST's qualitative rating)
    vector: str


def roundup(value: float, version: str = "3.1") -> float:
    """The specification's Roundup: the smallest one-decimal number >= ``value``.

    v3.1 works on integers first so that floating-point noise (``4.000000000000001``)
    does not round up a whole tenth; v3.0 is the plain ceiling the 3.0 document gives.
    """
    if version == "3.0":
        return math.ceil(value * 10) / 10
    as_int = round(value * 100_000)
    if as_int % 10_000 == 0:
        return as_int / 100_000.0
    return (math.floor(as_int / 10_000) + 1) / 10.0


def rating(score: float) -> str:
    """FIRST's qualitative severity rating of a score."""
    if score == 0:
        return "None"
    if score < 4.0:
        return "Low"
    if score < 7.0:
        return "Medium"
    if score < 9.0:
        return "High"
    return "Critical"


def score_v3(vector: str) -> V3Score:
    """Parse ``vector`` and compute its base score; :class:`CvssError` if it is malformed."""
    if not isinstance(vector, str):
        raise CvssError(f"not a string: {vector!r}")
    text = vector.strip()
    m = _PREFIX.match(text)
    if m is None:
        raise CvssError(f"not a CVSS v3 vector (no CVSS:3.0/ or CVSS:3.1/ prefix): {vector!r}")
    version = m.group(1)
    metrics: dict[str, str] = {}
    for part in text[m.end() :].split("/"):
        name, sep, value = part.partition(":")
        if not sep:
            raise CvssError(f"{vector!r}: {part!r} is not METRIC:VALUE")
        allowed = _BASE.get(name) or _OTHER.get(name)
        if allowed is None:
            raise CvssError(f"{vector!r}: unknown metric {name!r}")
        if value not in allowed:
            raise CvssError(f"{vector!r}: {name} cannot be {value!r}")
        if name in metrics:
            raise CvssError(f"{vector!r}: {name} given twice")
        metrics[name] = value
    missing = [n for n in _BASE if n not in metrics]
    if missing:
        raise CvssError(f"{vector!r}: base metric(s) {', '.join(missing)} missing")

    changed = metrics["S"] == "C"
    iss = 1 - ((1 - _CIA[metrics["C"]]) * (1 - _CIA[metrics["I"]]) * (1 - _CIA[metrics["A"]]))
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    pr = (_PR_CHANGED if changed else _PR_UNCHANGED)[metrics["PR"]]
    exploitability = 8.22 * _AV[metrics["AV"]] * _AC[metrics["AC"]] * pr * _UI[metrics["UI"]]
    if impact <= 0:
        score = 0.0
    elif changed:
        score = roundup(min(1.08 * (impact + exploitability), 10), version)
    else:
        score = roundup(min(impact + exploitability, 10), version)
    return V3Score(version=version, base_score=score, severity=rating(score), vector=text)


def base_score(vector: str) -> float:
    return score_v3(vector).base_score
