"""The report document as JSON, CSV tables and a self-contained HTML page.

CSV: one file per table (``findings``, ``actions``, ``runs``, ``coverage``, ``gaps``,
``controls``, ``problems``), written to a directory or, when the output path ends in
``.zip``, into one zip. Cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'``: findings carry
attacker-controlled text.

HTML: one file, inline styles and inline SVG charts, no script and no external asset; a
Content-Security-Policy forbids both anyway. Every value is HTML-escaped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from collectors.report.charts import PALETTE, SEVERITY_COLOURS, Series, bar_chart, esc, line_chart
from collectors.report.period import parse_time

CSV_TABLES: dict[str, tuple[str, ...]] = {
    "findings": (
        "id", "kind", "rule_id", "category", "title", "severity_id", "severity",
        "resource_uid", "resource_type", "account", "region", "first_seen", "last_seen",
        "count", "suppressed", "status", "response_status", "ref",
    ),
    "actions": (
        "finding_id", "playbook", "action", "kind", "status", "at", "resource", "account",
        "region", "execution", "before_summary", "after_summary", "before", "after", "ref",
    ),
    "runs": (
        "finding_id", "playbook", "status", "mode", "reason", "at", "resource", "account",
        "execution", "approval_decision", "approval_by", "approval_at", "approval_reason",
        "approval_note", "actions", "evidence", "ref",
    ),
    "coverage": ("time", "covered", "total", "ratio", "by_type", "s3_key", "errors"),
    "gaps": ("key", "type", "name", "account", "region", "problems"),
    "controls": (
        "framework", "control", "title", "status", "evidence_id", "evidence_title", "count",
        "examples", "limits",
    ),
    "problems": ("table", "ref", "error"),
}  # fmt: skip
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_rows(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each CSV table's rows (dicts keyed by its columns)."""
    latest = report["coverage"]["latest"] or {}
    runs = []
    for r in report["response"]["runs"]:
        a = r["approval"]
        runs.append(
            {
                **r,
                "approval_decision": a["decision"],
                "approval_by": a["by"],
                "approval_at": a["at"],
                "approval_reason": a["reason"],
                "approval_note": a["note"],
            }
        )
    coverage = [
        {**p, "ratio": round(p["covered"] / p["total"], 4) if p["total"] else None}
        for p in report["coverage"]["points"]
    ]
    controls = []
    for c in report["controls"]:
        for e in c["evidence"]:
            controls.append(
                {
                    **c,
                    "evidence_id": e["id"],
                    "evidence_title": e["title"],
                    "count": e["count"],
                    "examples": " | ".join(e["examples"]),
                }
            )
    gaps = [{**g, "problems": " ".join(g["problems"])} for g in latest.get("gaps", [])]
    return {
        "findings": report["findings"]["items"],
        "actions": report["response"]["actions"],
        "runs": runs,
        "coverage": coverage,
        "gaps": gaps,
        "controls": controls,
        "problems": report["problems"],
    }


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def write_csv(report: dict[str, Any], out: str | os.PathLike[str]) -> list[str]:
    """The CSV tables in a directory, or in a zip when ``out`` ends in ``.zip``."""
    path = Path(out)
    tables = {
        f"{name}.csv": csv_text(CSV_TABLES[name], rows) for name, rows in csv_rows(report).items()
    }
    if path.suffix.lower() == ".zip":
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in tables.items():
                z.writestr(name, text.encode("utf-8"))
        return sorted(tables)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (path / name).write_text(text, encoding="utf-8", newline="")
    return sorted(tables)


# -- HTML ------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;
background:#f9fafb}main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid
#e5e7eb;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:12.5px;margin:6px 0}
th,td{border:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}th{background:#f3f4f6}td.n{text-align:right}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{background:#fff;border:1px
solid #e5e7eb;border-radius:6px;padding:8px 12px;min-width:130px}.card b{display:block;
font-size:20px}.muted{color:#6b7280}.nodata{background:#fef3c7;border:1px solid #f59e0b;
padding:10px 14px;border-radius:6px}.warn{background:#fee2e2;border:1px solid #ef4444;
padding:10px 14px;border-radius:6px}.ok{color:#166534}.no{color:#991b1b}
svg.chart{background:#fff;border:1px solid #e5e7eb;max-width:100%;height:auto}
svg.chart text{font:11px system-ui,sans-serif;fill:#374151}svg.chart .grid{stroke:#e5e7eb}
code{font-size:12px}details summary{cursor:pointer}
"""


def _table(columns: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]]) -> str:
    """columns: (key, header); numbers right-aligned; every cell escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for _, h in columns)
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            cls = (
                ' class="n"'
                if isinstance(value, int | float) and not isinstance(value, bool)
                else ""
            )
            cells.append(f"<td{cls}>{esc(_cell(value) if value is not None else '')}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return '<p class="muted">None in the period.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _coverage_section(report: dict[str, Any]) -> str:
    cov = report["coverage"]
    points = cov["points"]
    out = ["<h2>Coverage over time</h2>"]
    if not points:
        out.append(
            '<p class="nodata">No coverage snapshot was taken in the period: there is no '
            "evidence of which workloads were monitored.</p>"
        )
        return "".join(out)
    period = report["period"]
    start, end = parse_time(period["from"]), parse_time(period["to"])
    overall = [
        (parse_time(p["time"]), p["covered"] / p["total"] if p["total"] else 0.0) for p in points
    ]
    series = [Series("all workloads", overall, PALETTE[0], area=True)]
    kinds = sorted({k for p in points for k, c in p["by_type"].items() if c.get("total")})
    for i, kind in enumerate(kinds, 1):
        pts = [
            (parse_time(p["time"]), p["by_type"][kind]["covered"] / p["by_type"][kind]["total"])
            for p in points
            if p["by_type"].get(kind, {}).get("total")
        ]
        series.append(Series(kind, pts, PALETTE[i % len(PALETTE)]))
    out.append(
        line_chart(series, start_ms=start, end_ms=end, title="Covered workloads, % of total")
    )
    rows = []
    for p in points:
        row: dict[str, Any] = {"time": p["time"], "all": f"{p['covered']}/{p['total']}"}
        for kind in kinds:
            c = p["by_type"].get(kind) or {}
            row[kind] = f"{c.get('covered', 0)}/{c.get('total', 0)}"
        row["errors"] = p["errors"]
        rows.append(row)
    cols = [("time", "snapshot"), ("all", "covered/total")] + [(k, k) for k in kinds]
    out.append(
        f"<details><summary>{len(points)} snapshots (covered/total by workload type)"
        f"</summary>{_table([*cols, ('errors', 'listing errors')], rows)}</details>"
    )
    latest = cov["latest"]
    out.append(f"<h3>Gaps in the latest snapshot ({esc(latest['time'])})</h3>")
    if not latest["snapshot_read"]:
        out.append(
            '<p class="warn">The latest snapshot could not be read (see Problems): its gaps '
            "are unknown.</p>"
        )
    else:
        gaps = [{**g, "problems": ", ".join(g["problems"])} for g in latest["gaps"]]
        out.append(
            _table(
                [
                    ("name", "workload"),
                    ("type", "type"),
                    ("account", "account"),
                    ("region", "region"),
                    ("problems", "problems"),
                    ("key", "key"),
                ],
                gaps,
            )
        )
        if latest["listing_errors"]:
            out.append("<p>Accounts, regions or services that could not be listed:</p>")
            out.append(
                _table(
                    [
                        ("account", "account"),
                        ("region", "region"),
                        ("service", "service"),
                        ("error", "error"),
                    ],
                    latest["listing_errors"],
                )
            )
    return "".join(out)


def _findings_section(report: dict[str, Any]) -> str:
    f = report["findings"]
    out = ["<h2>Findings in the period</h2>"]
    if not f["items"]:
        out.append('<p class="nodata">No finding was active in the period.</p>')
        return "".join(out)
    bars = [
        (s["severity"], s["findings"], SEVERITY_COLOURS.get(s["severity_id"], "#6b7280"))
        for s in f["by_severity"]
    ]
    out.append("<h3>By severity</h3>" + bar_chart(bars, title="Findings by severity"))
    group_cols = [
        ("findings", "findings"), ("occurrences", "occurrences"),
        ("max_severity", "max severity"), ("open", "open"),
        ("first_seen", "first seen"), ("last_seen", "last seen"),
    ]  # fmt: skip
    out.append("<h3>By rule</h3>")
    out.append(_table([("rule_id", "rule"), ("category", "category"), *group_cols], f["by_rule"]))
    out.append("<h3>By resource</h3>")
    out.append(
        _table(
            [("resource_uid", "resource"), ("resource_type", "type"), *group_cols], f["by_resource"]
        )
    )
    out.append("<h3>Every finding</h3>")
    out.append(
        _table(
            [
                ("severity", "severity"),
                ("title", "title"),
                ("rule_id", "rule"),
                ("resource_uid", "resource"),
                ("account", "account"),
                ("region", "region"),
                ("first_seen", "first seen"),
                ("last_seen", "last seen"),
                ("count", "count"),
                ("status", "status"),
                ("response_status", "response"),
                ("id", "id"),
            ],
            f["items"],
        )
    )
    return "".join(out)


def _response_section(report: dict[str, Any]) -> str:
    resp = report["response"]
    out = ["<h2>Response actions</h2>"]
    if not resp["runs"] and not resp["actions"]:
        out.append('<p class="nodata">No playbook ran in the period.</p>')
        return "".join(out)
    runs = []
    for r in resp["runs"]:
        a = r["approval"]
        decided = a["decision"]
        if a["by"]:
            decided += f" by {a['by']}"
        if a["at"]:
            decided += f" at {a['at']}"
        if a["reason"]:
            decided += f": {a['reason']}"
        runs.append({**r, "decided": decided, "note": a["note"]})
    out.append("<h3>Playbook runs and approvals</h3>")
    out.append(
        _table(
            [
                ("at", "status at"),
                ("playbook", "playbook"),
                ("mode", "mode"),
                ("status", "status"),
                ("decided", "approval"),
                ("note", "note"),
                ("resource", "resource"),
                ("finding_id", "finding"),
                ("actions", "actions"),
            ],
            runs,
        )
    )
    out.append("<h3>Actions (before → after)</h3>")
    out.append(
        _table(
            [
                ("at", "at"),
                ("playbook", "playbook"),
                ("action", "action"),
                ("kind", "kind"),
                ("status", "status"),
                ("before_summary", "before"),
                ("after_summary", "after"),
                ("resource", "resource"),
                ("finding_id", "finding"),
            ],
            resp["actions"],
        )
    )
    return "".join(out)


def _controls_section(report: dict[str, Any]) -> str:
    out = [
        "<h2>Control mapping</h2>",
        '<p class="muted">Evidence Ramparts produced in the period for each control. This is '
        "evidence for an assessor to examine, not a statement that a control is met.</p>",
    ]
    rows = []
    for c in report["controls"]:
        ev = "; ".join(
            f"{e['title']}: {e['count']}"
            + (f" (e.g. {', '.join(e['examples'])})" if e["examples"] else "")
            for e in c["evidence"]
        )
        status = "evidence" if c["status"] == "evidence" else "no evidence in the period"
        rows.append(
            f"<tr><td>{esc(c['framework'])}</td><td>{esc(c['control'])}</td>"
            f"<td>{esc(c['title'])}</td>"
            f'<td class="{"ok" if c["status"] == "evidence" else "no"}">{esc(status)}</td>'
            f"<td>{esc(ev)}</td><td>{esc(c['limits'])}</td></tr>"
        )
    out.append(
        "<table><thead><tr><th>framework</th><th>control</th><th>title</th><th>status</th>"
        f"<th>evidence (count, examples)</th><th>limits</th></tr></thead><tbody>"
        f"{''.join(rows)}</tbody></table>"
    )
    return "".join(out)


def to_html(report: dict[str, Any]) -> str:
    s = report["summary"]
    period = report["period"]
    scope = report["scope"]
    src = report["source"]
    cards = [
        ("findings", s["findings"]),
        ("open findings", s["open_findings"]),
        ("playbook runs", s["runs"]),
        ("actions", s["actions"]),
        ("coverage snapshots", s["coverage_snapshots"]),
        (
            "latest coverage",
            "n/a" if s["latest_coverage_ratio"] is None
            else f"{s['latest_coverage_ratio'] * 100:.1f}%",
        ),
        ("controls with evidence", f"{s['controls_with_evidence']}/{s['controls']}"),
        ("unreadable items", s["unreadable"]),
    ]  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Ramparts compliance evidence {esc(period['from'])} to {esc(period['to'])}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>Ramparts compliance evidence report</h1>",
        f'<p class="muted">Period {esc(period["from"])} to {esc(period["to"])} (end '
        f"exclusive) · generated {esc(report['generated_at'])} · schema "
        f"{esc(report['schema'])} v{esc(report['schema_version'])}</p>",
        f"<p>Source: <code>{esc(json.dumps(src, sort_keys=True))}</code></p>",
        f"<p>Accounts: {esc(', '.join(scope['accounts']) or 'none seen')} · Regions: "
        f"{esc(', '.join(scope['regions']) or 'none seen')}"
        + (
            f" · inventoried in the latest snapshot: "
            f"{esc(', '.join(scope['inventoried_accounts']))} / "
            f"{esc(', '.join(scope['inventoried_regions']))}"
            if scope["inventoried_accounts"]
            else ""
        )
        + "</p>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in cards)
        + "</div>",
    ]
    if s["no_data"]:
        parts.append(
            '<p class="nodata"><b>No data for this period.</b> No finding, playbook run, '
            "action or coverage snapshot falls in it. Either nothing was recorded (Ramparts "
            "was not deployed or not running), or the data has expired from the tables. This "
            "report is not evidence that the controls operated in the period.</p>"
        )
    if s["unreadable"]:
        parts.append(
            f'<p class="warn">{esc(s["unreadable"])} stored item(s) could not be read and are '
            "not counted in the sections below; they are listed under Problems.</p>"
        )
    parts += [
        _coverage_section(report),
        _findings_section(report),
        _response_section(report),
        _controls_section(report),
        "<h2>Problems</h2>",
        _table(
            [("table", "table"), ("ref", "item"), ("error", "why it could not be read")],
            report["problems"],
        ),
        "<h2>Items read</h2>",
        _table(
            [("table", "table"), ("counts", "counts")],
            [
                {"table": t, "counts": ", ".join(f"{k}: {v}" for k, v in c.items())}
                for t, c in report["read"].items()
            ],
        ),
        '<p class="muted">This report collects evidence from Ramparts\' own records. It is '
        "not a certification or an attestation: an assessor decides whether a control is "
        "met, using this evidence with others.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"
