"""The CDK app that ``cdk.json`` points at.

For now it synthesizes an empty app; the Layer, Core and Member stacks arrive with their
own issue. Synthesis works offline: no account lookups, no credentials.
"""

from __future__ import annotations

import aws_cdk as cdk


def build_app(outdir: str | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir) if outdir else cdk.App()
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
