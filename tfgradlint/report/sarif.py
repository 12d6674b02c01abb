"""``sarif``: SARIF 2.1.0 (GitHub code scanning and other SARIF viewers).

One run, with every rule's metadata (id, name, short and full description, the rule's own
documentation as help text and Markdown, its link, its default level and whether it is on by
default), and one result per finding: 1-based regions (columns count code points, as the run's
``columnKind`` says; the end column is exclusive, as in SARIF), the rule's fix as
``fixes[].artifactChanges[].replacements``, and a ``partialFingerprints`` entry that survives
unrelated line shifts (the baseline fingerprint). Paths relative to the current folder are
relative URIs against ``%SRCROOT%``.

A finding in a notebook cell has no region (its lines count within the cell, not within the
``.ipynb`` file): the cell and line are in the message and in ``properties``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePath
from typing import Any, TextIO
from urllib.parse import quote

from tfgradlint import DOCS_URL, __version__
from tfgradlint.findings import Finding

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/tfgradlint/tfgradlint"
FINGERPRINT_KEY = "tfgradlint/v1"


def _uri(filename: str) -> tuple[str, bool]:
    """(uri, relative) for a reported file name."""
    path = PurePath(filename)
    if path.is_absolute():
        return Path(filename).as_uri(), False
    return quote(path.as_posix()), True


def _rule_descriptor(rule) -> dict[str, Any]:
    doc = rule.documentation()
    descriptor: dict[str, Any] = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary or rule.name},
        "fullDescription": {"text": (rule.what or rule.summary or rule.name).strip()},
        "help": {"text": doc, "markdown": doc},
        "helpUri": DOCS_URL.format(code=rule.code),
        "defaultConfiguration": {
            "level": "error" if rule.severity == "error" else "warning",
            "enabled": rule.default == "on",
        },
        "properties": {
            "tags": ["tensorflow", "gradients"] + (["preview"] if rule.default == "preview" else []),
            "precision": "high",
            "problem.severity": "error" if rule.severity == "error" else "warning",
        },
    }
    return descriptor


def _region(f: Finding) -> dict[str, int]:
    region = {"startLine": f.start.row, "startColumn": f.start.column}
    if f.end > f.start:
        region["endLine"] = f.end.row
        region["endColumn"] = f.end.column
    return region


def _result(f: Finding, rule_index: dict[str, int], fingerprint: str) -> dict[str, Any]:
    uri, relative = _uri(f.filename)
    artifact: dict[str, Any] = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = "%SRCROOT%"
    physical: dict[str, Any] = {"artifactLocation": artifact}
    message = f.message
    properties: dict[str, Any] = {"name": f.name}
    if f.cell is not None:
        message = f"cell {f.cell}, line {f.start.row}: {f.message}"
        properties.update(cell=f.cell, cellLine=f.start.row, cellColumn=f.start.column)
    else:
        physical["region"] = _region(f)
    result: dict[str, Any] = {
        "ruleId": f.code,
        "level": "error" if f.severity == "error" else "warning",
        "message": {"text": message},
        "locations": [{"physicalLocation": physical}],
    }
    if f.code in rule_index:
        result["ruleIndex"] = rule_index[f.code]
    if fingerprint:
        result["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint}
    if f.fix is not None and f.fix.edits and f.cell is None:
        description = f.fix.message if f.fix.applicability == "safe" else f"Unsafe fix: {f.fix.message}"
        replacements = []
        for edit in f.fix.edits:
            deleted = {"startLine": edit.start.row, "startColumn": edit.start.column}
            deleted["endLine"] = edit.end.row
            deleted["endColumn"] = edit.end.column
            replacements.append({"deletedRegion": deleted, "insertedContent": {"text": edit.content}})
        result["fixes"] = [
            {
                "description": {"text": description},
                "artifactChanges": [{"artifactLocation": dict(artifact), "replacements": replacements}],
                "properties": {"applicability": f.fix.applicability},
            }
        ]
    if f.confirmation is not None:
        properties["confirmation"] = f.confirmation.to_json()
    result["properties"] = properties
    return result


def sarif_log(findings: list[Finding], ctx) -> dict[str, Any]:
    from tfgradlint.baseline import fingerprints
    from tfgradlint.rules import all_rules

    rules = list(all_rules())
    rule_index = {r.code: i for i, r in enumerate(rules)}
    prints = fingerprints(findings, ctx.sources if ctx is not None else {})
    cwd = Path(os.getcwd()).as_uri().rstrip("/") + "/"
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "tfgradlint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule_descriptor(r) for r in rules],
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": cwd}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(f, rule_index, fp) for f, fp in zip(findings, prints)],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def write(findings: list[Finding], out: TextIO, ctx) -> None:
    json.dump(sarif_log(findings, ctx), out, indent=2, ensure_ascii=False)
    out.write("\n")
