"""``pylint``: pylint's parseable format, one line per finding.

    pkg/ops.py:12: [TGL101(grad-arity-mismatch), ] message

(``path:line: [msg_id(symbol), obj] message`` with the object left empty.) A finding in a
notebook cell is ``nb.ipynb:cell 3:12: [...]``, as in the other text formats.
"""

from __future__ import annotations

from typing import TextIO

from tfgradlint.findings import Finding


def line(f: Finding) -> str:
    where = f.filename if f.cell is None else f"{f.filename}:cell {f.cell}"
    message = " ".join(f.message_with_confirmation().split())
    return f"{where}:{f.start.row}: [{f.code}({f.name}), ] {message}"


def write(findings: list[Finding], out: TextIO, ctx) -> None:
    for f in findings:
        out.write(line(f) + "\n")
