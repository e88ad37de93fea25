"""The demo's report: a summary for the terminal and a self-contained HTML page.

The page has no external assets: its styles are inline and its chart is an inline SVG
(sensor verdicts per phase, and when each finding and action happened on the timeline).
"""

from __future__ import annotations

import html
import json
from typing import Any

_COLOURS = {"alert": "#d97706", "block": "#dc2626", "ok": "#16a34a", "action": "#2563eb"}


def render(report: dict[str, Any]) -> str:
    """The closing summary printed after the timeline."""
    lines = ["", "What happened"]
    for mode in ("monitor", "enforce"):
        lines.append(f"  {mode.upper()} mode")
        for o in report["outcomes"]:
            if o["mode"] != mode:
                continue
            if o["rules"]:
                found = ("BLOCKED " if "block" in o["verdicts"] else "ALERT ") + ", ".join(
                    o["rules"]
                )
            else:
                found = "no alert"
            mark = "ok" if o["passed"] else "!!"
            lines.append(f"    {mark} {o['function']:<16} {o['kind']:<6} {o['title']:<42} {found}")
    findings = report["findings"]
    lines.append(f"  {len(findings)} findings stored and published:")
    for f in findings:
        key = f" [{f['key']}]" if f.get("key") else ""
        lines.append(
            f"    sev {f['severity']} {f['rule_id'] + key:<58} {f['resource'].rsplit(':', 1)[-1]}"
            f" (x{f['count']})"
        )
    runs = report["playbook_runs"]
    lines.append(f"  {len(runs)} playbook runs:")
    for r in runs:
        acts = ", ".join(sorted({a["action"] for a in r["actions"] if a["status"] == "applied"}))
        outcome = (
            f"approved with ramparts approve; actions: {acts}"
            if r["approved_with_ramparts_approve"] and acts
            else f"{r['response_status']}: {r['response_reason'] or '-'}"
        )
        lines.append(
            f"    {r['playbook']:<15} {r['status']:<10} finding {r['finding'][:12]} {outcome}"
        )
    lines.append("  Final state:")
    for name, s in report["functions"]["after"].items():
        tags = ", ".join(f"{k}={v}" for k, v in sorted(s["tags"].items()))
        lines.append(
            f"    {name:<16} reserved concurrency {s['reserved_concurrency']}, "
            f"url {'yes' if s['function_url'] else 'none'}, tags {tags}"
        )
    lines.append("")
    for check, ok in report["checks"].items():
        lines.append(f"  {'ok' if ok else '!!'} {check}")
    if report["skipped"]:
        lines.append(
            "  Skipped (they would send packets off this machine without a network "
            "namespace): " + "; ".join(report["skipped"])
        )
    if report.get("html_report"):
        lines.append(f"\nHTML report: {report['html_report']}")
    lines.append("`ramparts demo --json` prints all of this, every sensor line included.")
    return "\n".join(lines)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def chart(report: dict[str, Any]) -> str:
    """Inline SVG: alerts and blocks per function and phase, then the response timeline."""
    groups: list[tuple[str, dict[str, int]]] = []
    for mode in ("monitor", "enforce"):
        for fn in sorted({o["function"] for o in report["outcomes"]}):
            counts = {"alert": 0, "block": 0, "ok": 0}
            for o in report["outcomes"]:
                if o["mode"] == mode and o["function"] == fn:
                    if "block" in o["verdicts"]:
                        counts["block"] += 1
                    elif "alert" in o["verdicts"]:
                        counts["alert"] += 1
                    else:
                        counts["ok"] += 1
            groups.append((f"{mode}: {fn}", counts))
    width, bar_h, gap, left = 720, 22, 10, 200
    most = max((sum(c.values()) for _, c in groups), default=1) or 1
    unit = (width - left - 40) / most
    parts = []
    y = 30
    for label, counts in groups:
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{_e(label)}</text>')
        x = float(left)
        for kind in ("ok", "alert", "block"):
            w = counts[kind] * unit
            if w:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                    f'fill="{_COLOURS[kind]}"><title>{counts[kind]} {kind}</title></rect>'
                )
                parts.append(
                    f'<text x="{x + 4:.1f}" y="{y + 15}" font-size="11" fill="#fff">'
                    f"{counts[kind]}</text>"
                )
                x += w
        y += bar_h + gap
    legend = " ".join(
        f'<rect x="{left + i * 120}" y="4" width="12" height="12" fill="{_COLOURS[k]}"/>'
        f'<text x="{left + i * 120 + 16}" y="14" font-size="12">{t}</text>'
        for i, (k, t) in enumerate(
            (("ok", "no alert"), ("alert", "alert (seen)"), ("block", "blocked"))
        )
    )
    # the timeline strip: phases as bands, findings and actions as ticks
    entries = report.get("timeline") or []
    end = max((e["t"] for e in entries), default=1.0) or 1.0
    strip_y = y + 20
    scale = (width - left - 40) / end
    ticks = []
    for e in entries:
        colour = {
            "monitor": _COLOURS["alert"],
            "enforce": _COLOURS["block"],
            "respond": _COLOURS["action"],
            "approve": _COLOURS["action"],
            "after": _COLOURS["ok"],
        }.get(e["phase"])
        if colour is None:
            continue
        x = left + e["t"] * scale
        ticks.append(
            f'<line x1="{x:.1f}" y1="{strip_y}" x2="{x:.1f}" y2="{strip_y + 24}" '
            f'stroke="{colour}" stroke-width="2"><title>{_e(e["t"])} s: {_e(e["text"])}'
            "</title></line>"
        )
    axis = (
        f'<text x="0" y="{strip_y + 16}" font-size="12">timeline (0-{end:.0f} s)</text>'
        f'<line x1="{left}" y1="{strip_y + 24}" x2="{width - 40}" y2="{strip_y + 24}" '
        'stroke="#999"/>'
    )
    height = strip_y + 40
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="requests by verdict, and the timeline">{legend}'
        + "".join(parts)
        + axis
        + "".join(ticks)
        + "</svg>"
    )


def html_report(report: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{e['t']:.1f}s</td><td>{_e(e['phase'])}</td><td>{_e(e['text'])}</td></tr>"
        for e in report.get("timeline") or []
    )
    findings = "".join(
        f"<tr><td>{f['severity']}</td><td>{_e(f['rule_id'])}</td><td>{_e(f['title'])}</td>"
        f"<td>{_e(f['resource'])}</td><td>{f['count']}</td></tr>"
        for f in report["findings"]
    )
    runs = []
    for r in report["playbook_runs"]:
        acts = "".join(
            f"<li><b>{_e(a['action'])}</b> ({_e(a['status'])}) before <code>{_e(a['before'])}"
            f"</code> after <code>{_e(a['after'])}</code></li>"
            for a in r["actions"]
        )
        runs.append(
            f"<h3>{_e(r['playbook'])}: {_e(r['status'])} (response "
            f"{_e(r['response_status'])})</h3><p>finding {_e(r['finding'])}; approved with "
            f"<code>ramparts approve</code>: {_e(r['approved_with_ramparts_approve'])}</p>"
            f"<ul>{acts or '<li>no action</li>'}</ul>"
        )
    states = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(s['reserved_concurrency'])}</td>"
        f"<td>{_e(', '.join(f'{k}={v}' for k, v in sorted(s['tags'].items())))}</td>"
        f"<td>{_e(s['function_url'] or 'none')}</td>"
        f"<td>{_e(', '.join(s['role_inline_policies']) or '-')}</td></tr>"
        for name, s in report["functions"]["after"].items()
    )
    checks = "".join(
        f"<li>{'&#10004;' if ok else '&#10008;'} {_e(c)}</li>" for c, ok in report["checks"].items()
    )
    platform = _e(json.dumps(report["platform"], indent=1))
    skipped = (
        f"<p><b>Skipped</b> (no network namespace here): {_e('; '.join(report['skipped']))}</p>"
        if report["skipped"]
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ramparts demo report</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px;
       color: #111; }}
table {{ border-collapse: collapse; width: 100%; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left;
         vertical-align: top; }}
code, pre {{ font: 12px ui-monospace, monospace; background: #f5f5f5; }}
pre {{ padding: 8px; overflow: auto; }}
h1 {{ margin-bottom: 0; }}
</style></head><body>
<h1>Ramparts demo</h1>
<p>Local AWS account {_e(report["account"]["id"])} ({_e(report["account"]["region"])}),
network {"isolated (loopback only)" if report["isolated_network"] else "not isolated"};
overall: <b>{"passed" if report["passed"] else "FAILED"}</b>.</p>
{skipped}
<h2>Checks</h2><ul>{checks}</ul>
<h2>Requests and the response, at a glance</h2>
{chart(report)}
<h2>Findings</h2>
<table><tr><th>sev</th><th>rule</th><th>title</th><th>resource</th><th>count</th></tr>
{findings}</table>
<h2>Playbook runs and actions</h2>{"".join(runs)}
<h2>Final state of the functions</h2>
<table><tr><th>function</th><th>reserved concurrency</th><th>tags</th><th>function URL</th>
<th>role inline policies</th></tr>{states}</table>
<h2>Timeline</h2>
<table><tr><th>t</th><th>phase</th><th>what happened</th></tr>{rows}</table>
<h2>The platform in the local account</h2><pre>{platform}</pre>
</body></html>
"""
