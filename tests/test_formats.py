"""Output formats: sarif (validated against the official SARIF 2.1.0 schema), github, junit, pylint."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from tfgradlint.findings import Edit, Finding, Fix, Position
from tfgradlint.report import ReportContext, writer

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
URL = "https://github.com/tfgradlint/tfgradlint/blob/main/docs/rules/{}.md"

SOURCE = "import tensorflow as tf\nx = 1\ny = old(x)\n"
FIXED = Finding(
    code="TGL201",
    name="custom-gradient-output-to-weight",
    severity="error",
    message="output of 'f' is stored in 'kernel', 100% lost: fix it,\nnow",
    filename="pkg/ops.py",
    start=Position(3, 5),
    end=Position(3, 11),
    url=URL.format("TGL201"),
    fix=Fix("safe", "rename 'old' to 'new'", (Edit("new", Position(3, 5), Position(3, 8)),)),
)
WARNING = Finding(
    code="TGL003",
    name="unused-suppression",
    severity="warning",
    message="unused suppression: TGL101 suppresses nothing here; remove it",
    filename="pkg/a,b:c.py",
    start=Position(2, 8),
    end=Position(2, 22),
    url=URL.format("TGL003"),
)
CELL = Finding(
    code="TGL202",
    name="variable-severs-gradient",
    severity="error",
    message="tf.Variable(f(w)) severs the gradient",
    filename="nb.ipynb",
    start=Position(2, 1),
    end=Position(2, 20),
    url=URL.format("TGL202"),
    cell=3,
)


def _render(fmt: str, findings, sources=None, **ctx_args) -> str:
    out = io.StringIO()
    ctx = ReportContext(format=fmt, sources=dict(sources or {}), **ctx_args)
    writer(fmt)(list(findings), out, ctx)
    return out.getvalue()


# -- sarif ------------------------------------------------------------------------------------


def _validate_sarif(text: str) -> dict:
    data = json.loads(text)
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(data)
    return data


def test_sarif_is_valid_and_complete():
    sources = {"pkg/ops.py": SOURCE, "pkg/a,b:c.py": "x\ny = 1  # noqa: TGL101\n", "nb.ipynb#cell3": "a\nv = tf.Variable(f(w))\n"}
    data = _validate_sarif(_render("sarif", [FIXED, WARNING, CELL], sources))
    assert data["version"] == "2.1.0"
    (run,) = data["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "tfgradlint"
    assert run["columnKind"] == "unicodeCodePoints"
    rules = {r["id"]: r for r in driver["rules"]}
    from tfgradlint.rules import all_rules

    assert list(rules) == [r.code for r in all_rules()]
    rule = rules["TGL201"]
    assert rule["name"] == "custom-gradient-output-to-weight"
    assert rule["helpUri"] == URL.format("TGL201")
    assert rule["help"]["markdown"].startswith("# TGL201 custom-gradient-output-to-weight")
    assert rule["help"]["text"] == rule["help"]["markdown"]
    assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    assert rule["defaultConfiguration"] == {"level": "error", "enabled": True}
    assert rules["TGL003"]["defaultConfiguration"] == {"level": "warning", "enabled": False}

    fixed, warning, cell = run["results"]
    assert fixed["ruleId"] == "TGL201" and fixed["level"] == "error"
    assert driver["rules"][fixed["ruleIndex"]]["id"] == "TGL201"
    assert fixed["message"]["text"] == FIXED.message
    loc = fixed["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "pkg/ops.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 11}
    (fix,) = fixed["fixes"]
    assert fix["description"]["text"] == "rename 'old' to 'new'"
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "pkg/ops.py"
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 8},
            "insertedContent": {"text": "new"},
        }
    ]
    assert len(fixed["partialFingerprints"]["tfgradlint/v1"]) == 32

    assert warning["level"] == "warning"
    assert warning["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pkg/a%2Cb%3Ac.py"
    assert "fixes" not in warning

    assert cell["message"]["text"] == "cell 3, line 2: tf.Variable(f(w)) severs the gradient"
    assert "region" not in cell["locations"][0]["physicalLocation"]
    assert cell["properties"]["cell"] == 3 and cell["properties"]["cellLine"] == 2


def test_sarif_from_the_command_line_is_valid(run_cli, tmp_path):
    (tmp_path / "train.py").write_text((ROOT / "fixtures" / "seed" / "example3_weight_constraint.py").read_text())
    (tmp_path / "nb.ipynb").write_text((ROOT / "fixtures" / "notebooks" / "bad.ipynb").read_text())
    (tmp_path / "broken.ipynb").write_text("{")
    res = run_cli("check", "--output-format", "sarif", ".", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    data = _validate_sarif(res.stdout)
    results = data["runs"][0]["results"]
    assert sorted((r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results) == [
        ("TGL002", "broken.ipynb"),
        ("TGL201", "nb.ipynb"),
        ("TGL201", "train.py"),
    ]
    assert data["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"


def test_sarif_without_findings_is_valid():
    data = _validate_sarif(_render("sarif", []))
    assert data["runs"][0]["results"] == []


# -- github -----------------------------------------------------------------------------------


def test_github_annotations_exact():
    out = _render("github", [FIXED, WARNING, CELL])
    assert out.splitlines() == [
        "::error file=pkg/ops.py,line=3,col=5,endLine=3,endColumn=11,title=TGL201::"
        "output of 'f' is stored in 'kernel', 100%25 lost: fix it,%0Anow",
        "::warning file=pkg/a%2Cb%3Ac.py,line=2,col=8,endLine=2,endColumn=22,title=TGL003::"
        "unused suppression: TGL101 suppresses nothing here; remove it",
        "::error file=nb.ipynb,title=TGL202::cell 3, line 2: tf.Variable(f(w)) severs the gradient",
    ]


def test_github_prints_nothing_without_findings():
    assert _render("github", [], files_checked=3) == ""


# -- junit ------------------------------------------------------------------------------------


def test_junit_is_valid_xml_with_a_suite_per_file():
    sources = {"pkg/ops.py": SOURCE, "pkg/clean.py": "x = 1\n", "nb.ipynb": "{}", "nb.ipynb#cell3": "..."}
    out = _render("junit", [FIXED, CELL], sources)
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(out.split("\n", 1)[1])
    assert root.tag == "testsuites"
    assert root.attrib["name"] == "tfgradlint"
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["errors"]) == ("3", "2", "0")
    suites = {s.attrib["name"]: s for s in root.findall("testsuite")}
    assert list(suites) == ["nb.ipynb", "pkg/clean.py", "pkg/ops.py"]

    (case,) = suites["pkg/ops.py"].findall("testcase")
    assert case.attrib["name"] == "TGL201 (custom-gradient-output-to-weight) at 3:5"
    assert case.attrib["classname"] == "pkg/ops.py"
    assert case.attrib["line"] == "3"
    failure = case.find("failure")
    assert failure.attrib["type"] == "TGL201"
    assert failure.attrib["message"] == FIXED.message
    assert failure.text == f"pkg/ops.py:3:5: TGL201 {FIXED.message}\n{URL.format('TGL201')}"
    assert suites["pkg/ops.py"].attrib["failures"] == "1"

    (case,) = suites["nb.ipynb"].findall("testcase")
    assert case.attrib["name"] == "TGL202 (variable-severs-gradient) at cell 3, 2:1"
    assert case.find("failure").text.startswith("nb.ipynb:cell 3:2:1: TGL202 ")

    (case,) = suites["pkg/clean.py"].findall("testcase")
    assert case.attrib["name"] == "tfgradlint" and case.find("failure") is None
    assert suites["pkg/clean.py"].attrib["failures"] == "0"


def test_junit_replaces_characters_xml_cannot_hold():
    odd = Finding(**{**FIXED.__dict__, "message": "bad \x01 char", "fix": None})
    root = ET.fromstring(_render("junit", [odd]).split("\n", 1)[1])
    assert root.find("testsuite/testcase/failure").attrib["message"] == "bad \ufffd char"


# -- pylint -----------------------------------------------------------------------------------


def test_pylint_lines_exact():
    assert _render("pylint", [FIXED, WARNING, CELL]).splitlines() == [
        "pkg/ops.py:3: [TGL201(custom-gradient-output-to-weight), ] output of 'f' is stored in 'kernel', 100% lost: fix it, now",
        "pkg/a,b:c.py:2: [TGL003(unused-suppression), ] unused suppression: TGL101 suppresses nothing here; remove it",
        "nb.ipynb:cell 3:2: [TGL202(variable-severs-gradient), ] tf.Variable(f(w)) severs the gradient",
    ]


@pytest.mark.parametrize("fmt", ["github", "pylint", "junit", "sarif"])
def test_formats_from_the_command_line(run_cli, fmt):
    res = run_cli("check", "--output-format", fmt, "fixtures/seed", cwd=ROOT)
    assert res.returncode == 1, res.stderr
    assert "TGL201" in res.stdout
    if fmt == "github":
        assert res.stdout.startswith(
            "::error file=fixtures/seed/example3_weight_constraint.py,line=15,col=1,endLine=15,endColumn=84,title=TGL201::"
        )
    if fmt == "pylint":
        assert res.stdout.startswith(
            "fixtures/seed/example3_weight_constraint.py:15: [TGL201(custom-gradient-output-to-weight), ] "
        )


def test_confirmation_shown_in_github_pylint_junit():
    import io
    import xml.etree.ElementTree as ET

    from tfgradlint.findings import Confirmation, Finding, Position
    from tfgradlint.report import ReportContext, writer

    f = Finding("TGL201", "custom-gradient-output-to-weight", "error", "stored in kernel", "m.py",
                Position(3, 1), Position(3, 9), url="u",
                confirmation=Confirmation("confirmed", "tape.gradient(loss, w) is None"))
    for fmt in ("github", "pylint", "junit"):
        out = io.StringIO()
        writer(fmt)([f], out, ReportContext(format=fmt, files_checked=1))
        assert "[confirmed: tape.gradient(loss, w) is None]" in out.getvalue(), fmt
        if fmt == "junit":
            ET.fromstring(out.getvalue())
