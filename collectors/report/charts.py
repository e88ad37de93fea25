"""Inline SVG charts, drawn here (no library, no script): every text node is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from collectors.report.period import iso

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#dc2626", "#4b5563")
SEVERITY_COLOURS = {
    5: "#7f1d1d",
    6: "#7f1d1d",
    4: "#dc2626",
    3: "#d97706",
    2: "#ca8a04",
    1: "#2563eb",
    0: "#6b7280",
    99: "#6b7280",
}


def esc(value: object) -> str:
    return escape(str(value), quote=True)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[int, float]]  # (epoch ms, fraction 0..1)
    colour: str
    area: bool = False


def line_chart(
    series: Sequence[Series],
    *,
    start_ms: int,
    end_ms: int,
    title: str,
    width: int = 760,
    height: int = 260,
) -> str:
    """Fractions over time (0-100 %), one line per series; the first may be an area."""
    left, right, top, bottom = 48, 150, 28, 34
    pw, ph = width - left - right, height - top - bottom
    span = max(end_ms - start_ms, 1)

    def x(ms: int) -> float:
        return left + pw * min(max((ms - start_ms) / span, 0.0), 1.0)

    def y(frac: float) -> float:
        return top + ph * (1 - min(max(frac, 0.0), 1.0))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
    ]
    for pct in (0, 25, 50, 75, 100):
        yy = y(pct / 100)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{pct}%</text>'
        )
    out.append(
        f'<text x="{left}" y="{height - 10}">{esc(iso(start_ms)[:10])}</text>'
        f'<text x="{left + pw}" y="{height - 10}" text-anchor="end">'
        f"{esc(iso(end_ms - 1)[:10])}</text>"
    )
    for i, s in enumerate(series):
        pts = sorted(s.points)
        if not pts:
            continue
        coords = " ".join(f"{x(ms):.1f},{y(v):.1f}" for ms, v in pts)
        if s.area:
            first, last = x(pts[0][0]), x(pts[-1][0])
            out.append(
                f'<polygon points="{first:.1f},{y(0):.1f} {coords} {last:.1f},{y(0):.1f}" '
                f'fill="{esc(s.colour)}" fill-opacity="0.18" stroke="none"/>'
            )
        out.append(
            f'<polyline points="{coords}" fill="none" stroke="{esc(s.colour)}" '
            f'stroke-width="{2.5 if s.area else 1.6}"/>'
        )
        for ms, v in pts:
            out.append(
                f'<circle cx="{x(ms):.1f}" cy="{y(v):.1f}" r="2.4" fill="{esc(s.colour)}">'
                f"<title>{esc(s.name)} {esc(iso(ms))}: {v * 100:.1f}%</title></circle>"
            )
        ly = top + 14 + i * 18
        out.append(
            f'<rect x="{left + pw + 12}" y="{ly - 9}" width="10" height="10" '
            f'fill="{esc(s.colour)}"/>'
            f'<text x="{left + pw + 27}" y="{ly}">{esc(s.name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def bar_chart(
    bars: Sequence[tuple[str, int, str]], *, title: str, width: int = 560, bar_h: int = 22
) -> str:
    """Horizontal bars: (label, value, colour)."""
    left, right, top = 120, 60, 8
    height = top * 2 + bar_h * max(len(bars), 1)
    top_value = max([v for _, v, _ in bars] + [1])
    pw = width - left - right
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
    ]
    for i, (label, value, colour) in enumerate(bars):
        yy = top + i * bar_h
        w = pw * value / top_value
        out.append(
            f'<text x="{left - 8}" y="{yy + bar_h * 0.68:.1f}" text-anchor="end">'
            f"{esc(label)}</text>"
            f'<rect x="{left}" y="{yy + 3}" width="{w:.1f}" height="{bar_h - 6}" '
            f'fill="{esc(colour)}"><title>{esc(label)}: {value}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{yy + bar_h * 0.68:.1f}">{value}</text>'
        )
    out.append("</svg>")
    return "".join(out)
