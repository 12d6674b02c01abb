"""TGL109, TGL117, TGL118: fixtures with exact codes and lines, messages, and the TGL109 fix."""

from __future__ import annotations

import textwrap

import pytest
from conftest import FIXTURES, lint_text

from tfgradlint.fixes import apply_edits

RULES = FIXTURES / "rules"


def _lint(name: str, code: str):
    text = (RULES / name).read_text()
    return [f for f in lint_text(text, select=[code], preview=True, filename=str(RULES / name)) if f.code == code]


@pytest.mark.parametrize(
    "name,code,expected",
    [
        ("TGL109_bad.py", "TGL109", [30, 34, 39]),
        ("TGL109_good.py", "TGL109", []),
        ("TGL117_bad.py", "TGL117", [18, 23]),
        ("TGL117_good.py", "TGL117", []),
        ("TGL118_bad.py", "TGL118", [18, 24]),
        ("TGL118_good.py", "TGL118", []),
    ],
)
def test_fixture_lines(name, code, expected):
    assert [f.start.row for f in _lint(name, code)] == expected


def test_tgl109_anchor_spans_the_keyword_arguments():
    f = _lint("TGL109_bad.py", "TGL109")[1]
    line = (RULES / "TGL109_bad.py").read_text().splitlines()[f.start.row - 1]
    assert line[f.start.column - 1 : f.end.column - 1] == "x=features, l=0.5"
    assert "silently ignores the custom gradient" in f.message
    assert "flip(features, 0.5)" in f.message


def test_tgl109_fix_on_the_fixture():
    text = (RULES / "TGL109_bad.py").read_text()
    findings = _lint("TGL109_bad.py", "TGL109")
    assert all(f.fix is not None and f.fix.applicability == "safe" for f in findings)
    fixed = text
    for f in sorted(findings, key=lambda f: f.start, reverse=True):
        fixed = apply_edits(fixed, f.fix.edits)
    lines = fixed.splitlines()
    assert lines[29] == "        return flip(inputs, self.strength)"
    assert lines[33] == "    reversed_features = flip(features, 0.5)"
    assert lines[38] == "    return clip(t, 0.0, 1.0)"
    assert [f for f in lint_text(fixed, select=["TGL109"]) if f.code == "TGL109"] == []


PRE = """\
import tensorflow as tf

@tf.custom_gradient
def f(x, y, z=1.0):
    def grad(dy):
        return dy, dy, None
    return x * y * z, grad
"""


def _fix(src: str):
    findings = [f for f in lint_text(PRE + src, select=["TGL109"]) if f.code == "TGL109"]
    assert len(findings) == 1
    fix = findings[0].fix
    if fix is None:
        return None, None
    return fix.applicability, apply_edits(PRE + src, fix.edits)[len(PRE):]


@pytest.mark.parametrize(
    "src,applicability,fixed",
    [
        ("a = f(x=t, y=u)\n", "safe", "a = f(t, u)\n"),
        ("a = f(t, y=u, z=2.0)\n", "safe", "a = f(t, u, z=2.0)\n"),
        # reordered plain names: still safe
        ("a = f(y=u, x=t)\n", "safe", "a = f(t, u)\n"),
        # reordered calls: side effects may change order
        ("a = f(y=g(), x=h())\n", "unsafe", "a = f(h(), g())\n"),
        # a keyword for a defaulted parameter before the inputs keeps its place after them
        ("a = f(z=2.0, y=u, x=t)\n", "safe", "a = f(t, u, z=2.0)\n"),
        # multi-line call keeps its layout
        ("a = f(\n    x=t,\n    y=u,\n)\n", "safe", "a = f(\n    t,\n    u,\n)\n"),
        # a gap (x missing): no fix
        ("a = f(y=u)\n", None, None),
    ],
)
def test_tgl109_fix_variants(src, applicability, fixed):
    assert _fix(src) == (applicability, fixed)


def test_tgl109_no_fix_with_star_args_in_the_signature():
    src = textwrap.dedent(
        """\
        import tensorflow as tf

        @tf.custom_gradient
        def f(x, *rest):
            def grad(dy):
                return dy
            return x, grad

        a = f(x=t)
        """
    )
    findings = [f for f in lint_text(src, select=["TGL109"]) if f.code == "TGL109"]
    assert [f.start.row for f in findings] == [9] and findings[0].fix is None


def test_tgl109_and_tgl117_on_the_same_call_name_different_keywords():
    findings = lint_text(PRE + "a = f(x=t, y=u, z=3.0)\n", select=["TGL109", "TGL117"], preview=True)
    by_code = {f.code: f.message for f in findings}
    assert "'x' and 'y'" in by_code["TGL109"] and "'z'" not in by_code["TGL109"]
    assert "'z'" in by_code["TGL117"]


def test_tgl117_is_preview():
    assert [f.code for f in lint_text(PRE + "a = f(t, u, z=3.0)\n")] == []


def test_tgl118_messages():
    f = _lint("TGL118_bad.py", "TGL118")[0]
    assert "'ste_sign'" in f.message and "'hidden'" in f.message and "KerasTensor" in f.message
