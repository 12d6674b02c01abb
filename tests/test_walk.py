"""The fast walker sees the same code nodes, in the same order, as LibCST's own children."""

from __future__ import annotations

import libcst as cst
import pytest

from conftest import FIXTURES, ROOT
from tfgradlint.walk import iter_children, walk

_PUNCTUATION = (
    cst.BaseParenthesizableWhitespace,
    cst.Comma,
    cst.Semicolon,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.EmptyLine,
    cst.Newline,
    cst.TrailingWhitespace,
    cst.Colon,
    cst.Dot,
    cst.AssignEqual,
    cst.Asynchronous,
    cst.BaseBinaryOp,
    cst.BaseUnaryOp,
    cst.BaseBooleanOp,
    cst.BaseCompOp,
    cst.BaseAugOp,
    cst.ImportStar,
    cst.ParamStar,
    cst.ParamSlash,
)

SOURCES = sorted(FIXTURES.rglob("*.py")) + sorted((ROOT / "tfgradlint").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_children_as_libcst(path):
    try:
        module = cst.parse_module(path.read_text())
    except cst.ParserSyntaxError:
        pytest.skip("fixture does not parse on purpose")
    for node in walk(module):
        expected = [c for c in node.children if not isinstance(c, _PUNCTUATION)]
        got = [c for c in iter_children(node) if not isinstance(c, _PUNCTUATION)]
        assert [id(c) for c in got] == [id(c) for c in expected], type(node).__name__


def test_walk_can_stay_out_of_nested_scopes():
    module = cst.parse_module("def f():\n    g = lambda: h()\n    def k():\n        m()\n    n()\n")
    fn = module.body[0]
    calls = [n.func.value for n in walk(fn, into_lambdas=False, into_defs=False) if isinstance(n, cst.Call)]
    assert calls == ["n"]
    calls = [n.func.value for n in walk(fn) if isinstance(n, cst.Call)]
    assert calls == ["h", "m", "n"]
