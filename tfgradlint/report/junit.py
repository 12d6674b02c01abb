"""``junit``: JUnit XML for CI test reports (GitLab, Jenkins, Azure, ...).

One ``<testsuite>`` per file (named by the file) inside ``<testsuites name="tfgradlint">``.
A file with findings has one failing ``<testcase>`` per finding (``classname`` = the file,
``name`` = ``CODE (rule-name) at line:column``; for a notebook cell ``at cell N, line:column``)
with a ``<failure type="CODE" message="...">`` whose text is the finding's line and the rule's
link. A file checked without findings has one passing ``<testcase name="tfgradlint">``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TextIO

from tfgradlint.findings import Finding

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _where(f: Finding) -> str:
    pos = f"{f.start.row}:{f.start.column}"
    return pos if f.cell is None else f"cell {f.cell}, {pos}"


def junit_tree(findings: list[Finding], ctx) -> ET.Element:
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        by_file.setdefault(f.filename, []).append(f)
    clean = sorted(
        name for name in (ctx.sources if ctx is not None else {}) if "#cell" not in name and name not in by_file
    )
    root = ET.Element("testsuites", name="tfgradlint")
    total = failures = 0
    for filename in sorted(set(by_file) | set(clean)):
        items = by_file.get(filename, [])
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_clean(filename),
            tests=str(max(len(items), 1)),
            failures=str(len(items)),
            errors="0",
            skipped="0",
            time="0",
        )
        if not items:
            ET.SubElement(suite, "testcase", name="tfgradlint", classname=_clean(filename), file=_clean(filename), time="0")
            total += 1
            continue
        for f in items:
            case = ET.SubElement(
                suite,
                "testcase",
                name=f"{f.code} ({f.name}) at {_where(f)}",
                classname=_clean(filename),
                file=_clean(filename),
                line=str(f.start.row),
                time="0",
            )
            failure = ET.SubElement(case, "failure", message=_clean(f.message_with_confirmation()), type=f.code)
            location = filename if f.cell is None else f"{filename}:cell {f.cell}"
            failure.text = _clean(f"{location}:{f.start.row}:{f.start.column}: {f.code} {f.message_with_confirmation()}\n{f.url}")
        total += len(items)
        failures += len(items)
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", "0")
    root.set("time", "0")
    return root


def write(findings: list[Finding], out: TextIO, ctx) -> None:
    root = junit_tree(findings, ctx)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")
