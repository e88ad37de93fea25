"""``ramparts report``: compliance evidence for a period (``docs/report.md``).

Pure: the report reads its items through a :class:`~collectors.report.source.ReportSource`
(the live one, over DynamoDB and S3, is ``functions/report_source.py``; an offline export is
:class:`~collectors.report.source.DirectorySource`), and renders JSON, CSV and HTML.
"""

from __future__ import annotations

from collectors.report.build import SCHEMA, SCHEMA_VERSION, build_report, select_for_export
from collectors.report.controls import CONTROLS, EVIDENCE
from collectors.report.period import Period, PeriodError
from collectors.report.render import to_html, to_json, write_csv
from collectors.report.source import (
    DirectorySource,
    RawItem,
    ReportSource,
    SourceError,
    write_export,
)

__all__ = [
    "CONTROLS",
    "EVIDENCE",
    "SCHEMA",
    "SCHEMA_VERSION",
    "DirectorySource",
    "Period",
    "PeriodError",
    "RawItem",
    "ReportSource",
    "SourceError",
    "build_report",
    "select_for_export",
    "to_html",
    "to_json",
    "write_csv",
    "write_export",
]
