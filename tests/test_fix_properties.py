"""Property-based tests of the fix machinery: fixes never produce unparsable code (nor code
that does not compile when the original did), a second fix changes nothing, and the newline
style does not matter.

Programs come from hypothesmith (random valid Python) and from mutations of the fixture
programs in fixtures/. They are fixed twice: with two test-only rules that fix *every*
program (rename every name, wrap every call; overlapping fixes, several passes), and with
all the real rules (preview and unsafe fixes included). Kept small for CI (2 cores).
"""

from __future__ import annotations

from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfgradlint.context import FixSpec
from tfgradlint.engine import lint_source
from tfgradlint.fixes import MAX_PASSES, fix_source
from tfgradlint.rules.base import Rule

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FILES = sorted(p for p in (ROOT / "fixtures").rglob("*.py") if p.is_file())
FIXTURES = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in FIXTURE_FILES}

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")  # hypothesmith compiles its programs

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


class RenameAll(Rule):
    """Every name but ``list`` gets a ``_f`` suffix (string edits, many per pass)."""

    code = "TGL981"
    name = "prop-rename-all"
    triggers = ("",)

    def check(self, ctx):
        class V(cst.CSTVisitor):
            def visit_ImportFrom(self, node):
                if isinstance(node.module, cst.Name) and node.module.value == "__future__":
                    return False

            def visit_Name(self, node):
                if not node.value.endswith("_f") and node.value != "list":
                    ctx.report(node, "rename", fix=FixSpec("safe", "Rename", [(node, node.value + "_f")]))

        ctx.module.visit(V())


class WrapCalls(Rule):
    """``f(...)`` -> ``list(f(...))`` (node edits that enclose other fixes: several passes)."""

    code = "TGL982"
    name = "prop-wrap-calls"
    triggers = ("(",)

    def check(self, ctx):
        parent_of = ctx.index.parent

        def is_list(call):
            return isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value == "list"

        class V(cst.CSTVisitor):
            def visit_Call(self, node):
                if is_list(node):
                    return
                p = parent_of(node)
                if isinstance(p, cst.Arg) and is_list(parent_of(p)):
                    return
                new = cst.Call(cst.Name("list"), [cst.Arg(node.with_changes(lpar=[], rpar=[]))], lpar=node.lpar, rpar=node.rpar)
                ctx.report(node, "wrap", fix=FixSpec("unsafe", "Wrap", [(node, new)]))

        ctx.module.visit(V())


PROP_RULES = [RenameAll(), WrapCalls()]


def _real_rules():
    from tfgradlint.config import select_rules
    from tfgradlint.rules import all_rules

    codes = select_rules(None, (), (), True)
    return [cls() for cls in all_rules() if cls.code in codes], codes


def _lint_with(rules, enabled=None):
    enabled = enabled or frozenset(r.code for r in rules)

    def lint(text):
        res = lint_source(text, "prop.py", rules, enabled=enabled)
        assert not res.errors, res.errors
        return res

    return lint


def _compiles(text: str) -> bool:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "prop.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _parses(text: str) -> bool:
    try:
        cst.parse_module(text)
    except (cst.ParserSyntaxError, RecursionError):
        return False
    return True


def check_fix_properties(src: str, lint, *, unsafe: bool = True):
    """Fix ``src``; assert the fixed text is valid and that fixing again changes nothing."""
    try:
        first = lint(src)
    except RecursionError:
        return None
    out = fix_source(src, first.findings, lint, unsafe=unsafe, filename="prop.py")
    if out.error is not None:
        # Refusing is allowed (e.g. a rename that makes two parameters equal); damage is not.
        assert out.text == src and not out.fixed
        assert "not fixed" in out.error
        return out
    if out.changed:
        assert _parses(out.text), out.text
        if _compiles(src):
            assert _compiles(out.text), out.text
        assert out.passes <= MAX_PASSES
    again = fix_source(out.text, out.remaining, lint, unsafe=unsafe, filename="prop.py")
    assert again.error is None, again.error
    assert again.text == out.text and not again.fixed
    return out


# --------------------------------------------------------------------------------------
# Generated programs


@settings(SETTINGS, max_examples=6)  # generating from LibCST nodes is slow (~0.6 s each)
@given(hypothesmith.from_node())
def test_generated_programs_from_node(src):
    check_fix_properties(src, _lint_with(PROP_RULES))


@settings(SETTINGS, max_examples=50)
@given(hypothesmith.from_grammar())
def test_generated_programs_from_grammar(src):
    if not _parses(src):
        return  # the grammar strategy also yields code LibCST rejects: nothing to fix
    check_fix_properties(src, _lint_with(PROP_RULES))


# --------------------------------------------------------------------------------------
# Mutations of the fixtures


def _mutate(text: str, data) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        kind = data.draw(st.sampled_from(["delete", "duplicate", "swap", "blank", "comment", "indent"]), label="kind")
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif kind == "blank":
            lines.insert(i, "\n")
        elif kind == "comment":
            lines[i] = lines[i].rstrip("\r\n") + "  # é\n"
        elif kind == "indent":
            lines[i] = "    " + lines[i]
    return "".join(lines)


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


_FIXABLE: list[str] = []


def _fixable_fixtures() -> list[str]:
    """The fixtures on which some real rule offers a fix (computed once)."""
    if not _FIXABLE:
        rules, codes = _real_rules()
        lint = _lint_with(rules, codes)
        _FIXABLE.extend(n for n, text in sorted(FIXTURES.items()) if any(f.fix for f in lint(text).findings))
        _FIXABLE.extend([] if _FIXABLE else sorted(FIXTURES))
    return _FIXABLE


@pytest.mark.skipif(not FIXTURES, reason="no fixtures")
@SETTINGS
@given(st.data())
def test_mutated_fixtures_with_real_rules(data):
    rules, codes = _real_rules()
    name = data.draw(st.sampled_from(_fixable_fixtures()), label="fixture")
    src = _mutate(FIXTURES[name], data)
    lint = _lint_with(rules, codes)
    out = check_fix_properties(src, lint)
    if out is None or out.error is not None:
        return
    # The newline style does not matter: a \r\n file gets the same fixes, in \r\n.
    if "\r" not in src:
        out2 = check_fix_properties(_crlf(src), lint)
        assert out2 is not None and out2.error is None
        assert out2.text == _crlf(out.text)


@pytest.mark.skipif(not FIXTURES, reason="no fixtures")
@settings(SETTINGS, max_examples=8)  # ~100 fixes per fixture: slow-ish
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_mutated_fixtures_with_test_rules(name, data):
    src = _mutate(FIXTURES[name], data)
    lint = _lint_with(PROP_RULES)
    out = check_fix_properties(src, lint)
    if out is None or out.error is not None:
        return
    if "\r" not in src:
        out2 = check_fix_properties(_crlf(src), lint)
        assert out2 is not None and out2.error is None
        assert out2.text == _crlf(out.text)
