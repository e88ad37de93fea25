"""Write the JSON Schema of the common event model to ``docs/schema/common-event.schema.json``.

    python -m collectors.export_schema            # write it
    python -m collectors.export_schema --check    # exit 1 when the committed file is stale

The schema is :func:`collectors.model.json_schema` (every event class, as
:meth:`~collectors.model.OcsfEvent.to_ocsf` writes it). A test fails when the committed file
differs from the export, so a change to the model comes with its schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SCHEMA_PATH = "docs/schema/common-event.schema.json"
ROOT = Path(__file__).resolve().parent.parent


def render() -> str:
    """The schema file's text: sorted keys, two-space indents, a final newline."""
    from collectors.model import json_schema

    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.export_schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check the committed file")
    parser.add_argument("--out", default=str(ROOT / SCHEMA_PATH), help="where to write it")
    args = parser.parse_args(argv)
    out = Path(args.out)
    text = render()
    if args.check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            print(f"{out}: stale; run `python -m collectors.export_schema`", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
