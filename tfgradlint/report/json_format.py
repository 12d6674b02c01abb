"""``json`` (one array) and ``json-lines`` (one object a line)."""

from __future__ import annotations

import json
from typing import TextIO

from tfgradlint.findings import Finding


def write(findings: list[Finding], out: TextIO, ctx) -> None:
    if ctx.format == "json-lines":
        for f in findings:
            out.write(json.dumps(f.to_json(), ensure_ascii=False) + "\n")
        return
    json.dump([f.to_json() for f in findings], out, indent=2, ensure_ascii=False)
    out.write("\n")
