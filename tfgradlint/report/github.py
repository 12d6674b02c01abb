"""``github``: GitHub Actions workflow commands, one annotation per finding.

    ::error file=pkg/ops.py,line=12,col=9,endLine=12,endColumn=27,title=TGL101::message

``::error`` for error-severity rules, ``::warning`` for warnings. Escaping follows GitHub's
toolkit: in the message ``%``, ``\\r`` and ``\\n`` become ``%25``, ``%0D`` and ``%0A``; in
property values ``:`` and ``,`` also become ``%3A`` and ``%2C``. A finding in a notebook cell
annotates the file without a line (its lines count within the cell) and says
``cell N, line L:`` in the message. Nothing else is printed.
"""

from __future__ import annotations

from typing import TextIO

from tfgradlint.findings import Finding


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    command = "error" if f.severity == "error" else "warning"
    props = [("file", f.filename)]
    message = f.message_with_confirmation()
    if f.cell is None:
        props += [
            ("line", str(f.start.row)),
            ("col", str(f.start.column)),
            ("endLine", str(f.end.row)),
            ("endColumn", str(f.end.column)),
        ]
    else:
        message = f"cell {f.cell}, line {f.start.row}: {message}"
    props.append(("title", f.code))
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{command} {rendered}::{escape_data(message)}"


def write(findings: list[Finding], out: TextIO, ctx) -> None:
    for f in findings:
        out.write(annotation(f) + "\n")
