"""The fix machinery (tfgradlint/fixes.py): edits, passes, validation, writing, the CLI.

Test-only rules (codes TGL99x, never registered) emit FixSpecs so the machinery is tested
independently of the real rules; the real rules' fixes are tested at the end of this file.
"""

from __future__ import annotations

import os
import stat

import libcst as cst
import pytest

from tfgradlint.context import FixSpec
from tfgradlint.engine import lint_source
from tfgradlint.findings import Edit, Position
from tfgradlint.fixes import (
    FixError,
    apply_edits,
    fix_run,
    fix_source,
    line_starts,
    text_edit,
    to_offset,
    to_position,
    unified_diff,
)
from tfgradlint.rules.base import Rule

# --------------------------------------------------------------------------------------
# Test-only rules


class _NameRule(Rule):
    """Reports every Name ``target``; fixes by replacing it (string or node)."""

    target = ""
    replacement = ""
    applicability = "safe"
    as_node = False

    def check(self, ctx):
        rule = self

        class V(cst.CSTVisitor):
            def visit_Name(self, node):
                if node.value == rule.target:
                    repl = cst.Name(rule.replacement) if rule.as_node else rule.replacement
                    ctx.report(
                        node,
                        f"{rule.target} should be {rule.replacement}",
                        fix=FixSpec(rule.applicability, f"Use {rule.replacement}", [(node, repl)]),
                    )

        ctx.module.visit(V())


class RenameOld(_NameRule):
    code = "TGL991"
    name = "test-rename-old"
    triggers = ("old_name",)
    target, replacement = "old_name", "new_name"


class WrapFoo(Rule):
    """``foo(...)`` -> ``list(foo(...))`` (a node replacement that encloses other fixes)."""

    code = "TGL992"
    name = "test-wrap-foo"
    triggers = ("foo",)

    def check(self, ctx):
        parent_of = ctx.index.parent

        class V(cst.CSTVisitor):
            def visit_Call(self, node):
                if isinstance(node.func, cst.Name) and node.func.value == "foo":
                    p = parent_of(node)
                    p2 = parent_of(p) if p is not None else None
                    if (
                        isinstance(p, cst.Arg)
                        and isinstance(p2, cst.Call)
                        and isinstance(p2.func, cst.Name)
                        and p2.func.value == "list"
                    ):
                        return
                    inner = cst.Arg(node.with_changes(lpar=[], rpar=[]))
                    new = cst.Call(func=cst.Name("list"), args=[inner], lpar=node.lpar, rpar=node.rpar)
                    ctx.report(node, "wrap foo in list", fix=FixSpec("safe", "Wrap in list(...)", [(node, new)]))

        ctx.module.visit(V())


class BreakIt(_NameRule):
    code = "TGL993"
    name = "test-break-syntax"
    triggers = ("BREAK_ME",)
    target, replacement = "BREAK_ME", "("


class DuplicateParam(Rule):
    """Renames parameter ``b`` of ``dup_fn`` to ``a``: parses, does not compile."""

    code = "TGL994"
    name = "test-duplicate-param"
    triggers = ("dup_fn",)

    def check(self, ctx):
        for stmt in ctx.module.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "dup_fn":
                for p in stmt.params.params:
                    if p.name.value == "b":
                        ctx.report(p.name, "b", fix=FixSpec("safe", "rename", [(p.name, "a")]))


class Ping(_NameRule):
    code = "TGL995"
    name = "test-ping"
    triggers = ("ping",)
    target, replacement = "ping", "pong"


class Pong(_NameRule):
    code = "TGL996"
    name = "test-pong"
    triggers = ("pong",)
    target, replacement = "pong", "ping"


class Risky(_NameRule):
    code = "TGL997"
    name = "test-unsafe"
    triggers = ("risky",)
    target, replacement = "risky", "checked"
    applicability = "unsafe"
    as_node = True


class SwapDecorators(Rule):
    """``@inner`` above ``@outer`` -> swapped (node replacements owning newlines)."""

    code = "TGL998"
    name = "test-swap-decorators"
    triggers = ("@inner",)

    def check(self, ctx):
        class V(cst.CSTVisitor):
            def visit_FunctionDef(self, node):
                decs = node.decorators
                for d1, d2 in zip(decs, decs[1:]):
                    if (
                        isinstance(d1.decorator, cst.Name)
                        and d1.decorator.value == "inner"
                        and isinstance(d2.decorator, cst.Name)
                        and d2.decorator.value == "outer"
                    ):
                        ctx.report(d1, "swap", fix=FixSpec("safe", "Swap the decorators", [(d1, d2), (d2, d1)]))

        ctx.module.visit(V())


class KeywordToPositional(Rule):
    """``kw_fn(x, y=1)`` -> ``kw_fn(x, 1)``: Arg node replacement (commas owned by Args)."""

    code = "TGL999"
    name = "test-keyword-to-positional"
    triggers = ("kw_fn",)

    def check(self, ctx):
        class V(cst.CSTVisitor):
            def visit_Call(self, node):
                if isinstance(node.func, cst.Name) and node.func.value == "kw_fn":
                    repl = [
                        (a, a.with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT))
                        for a in node.args
                        if a.keyword is not None
                    ]
                    if repl:
                        ctx.report(node, "positional", fix=FixSpec("safe", "Pass positionally", repl))

        ctx.module.visit(V())


class DefaultNone(Rule):
    """``def g(x, variables)`` -> ``def g(x, variables=None)`` (Param node; its position is the name only)."""

    code = "TGL990"
    name = "test-default-none"
    triggers = ("variables",)

    def check(self, ctx):
        class V(cst.CSTVisitor):
            def visit_Param(self, node):
                if node.name.value == "variables" and node.default is None:
                    new = node.with_changes(
                        default=cst.Name("None"),
                        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
                    )
                    ctx.report(node, "default", fix=FixSpec("safe", "Add =None", [(node, new)]))

        ctx.module.visit(V())


class RemoveDecorator(Rule):
    code = "TGL989"
    name = "test-remove-decorator"
    triggers = ("@useless",)

    def check(self, ctx):
        class V(cst.CSTVisitor):
            def visit_Decorator(self, node):
                if isinstance(node.decorator, cst.Name) and node.decorator.value == "useless":
                    ctx.report(node, "remove", fix=FixSpec("safe", "Remove it", [(node, cst.RemovalSentinel.REMOVE)]))

        ctx.module.visit(V())


ALL_TEST_RULES = [
    RenameOld(),
    WrapFoo(),
    BreakIt(),
    DuplicateParam(),
    Ping(),
    Pong(),
    Risky(),
    SwapDecorators(),
    KeywordToPositional(),
    DefaultNone(),
    RemoveDecorator(),
]
SAFE_GOOD_RULES = [RenameOld(), WrapFoo(), SwapDecorators(), KeywordToPositional(), DefaultNone(), RemoveDecorator(), Risky()]


def make_lint(rules, filename="t.py"):
    enabled = frozenset(r.code for r in rules)

    def lint(text):
        res = lint_source(text, filename, rules, enabled=enabled)
        assert not res.errors, res.errors
        return res

    return lint


def fix(text, rules, unsafe=False, filename="t.py"):
    lint = make_lint(rules, filename)
    return fix_source(text, lint(text).findings, lint, unsafe=unsafe, filename=filename)


# --------------------------------------------------------------------------------------
# Positions and edits


def test_positions_count_code_points_and_all_newline_styles():
    text = "é😀 = 1\r\nb = 2\rc = 3\nd"
    starts = line_starts(text)
    assert starts == [0, 8, 14, 20]
    assert to_offset(starts, len(text), Position(1, 3)) == 2  # after two code points
    assert text[to_offset(starts, len(text), Position(2, 1))] == "b"
    assert text[to_offset(starts, len(text), Position(3, 1))] == "c"
    assert text[to_offset(starts, len(text), Position(4, 1))] == "d"
    for off in range(len(text) + 1):
        assert to_offset(starts, len(text), to_position(starts, off)) == off
    with pytest.raises(FixError):
        to_offset(starts, len(text), Position(9, 1))
    with pytest.raises(FixError):
        to_offset(starts, len(text), Position(1, 40))


def test_apply_edits_crlf_and_non_ascii():
    text = "x = 'é'\r\ny = f(a)\r\n"
    new = apply_edits(text, [Edit("g", Position(2, 5), Position(2, 6)), Edit("1, ", Position(2, 7), Position(2, 7))])
    assert new == "x = 'é'\r\ny = g(1, a)\r\n"
    # newlines in inserted content follow the file's style
    new = apply_edits(text, [Edit("z = 0\n", Position(2, 1), Position(2, 1))])
    assert new == "x = 'é'\r\nz = 0\r\ny = f(a)\r\n"


def test_text_edit_is_minimal_and_never_splits_crlf():
    e = text_edit("a = 1\r\nb = 2\r\n", "a = 1\r\nb = 3\r\n")
    assert e == Edit("3", Position(2, 5), Position(2, 6))
    old = "a\r\nb\r\n"
    new = "a\r\nx\r\nb\r\n"
    e = text_edit(old, new)
    assert apply_edits(old, [e]) == new
    for p in (e.start, e.end):
        off = to_offset(line_starts(old), len(old), p)
        assert not (0 < off < len(old) and old[off - 1] == "\r" and old[off] == "\n")


# --------------------------------------------------------------------------------------
# From FixSpec to edits (the engine)


def _fixed_by(rule, text, unsafe=True):
    out = fix(text, [rule], unsafe=unsafe)
    assert out.error is None, out.error
    return out.text


def test_node_replacement_keeps_commas_and_parentheses():
    assert _fixed_by(KeywordToPositional(), "kw_fn(x, y=1, z=(2), )\n") == "kw_fn(x, 1, (2), )\n"
    assert _fixed_by(WrapFoo(), "v = (foo(1)).x\n") == "v = (list(foo(1))).x\n"


def test_param_default_node_replacement():
    assert _fixed_by(DefaultNone(), "def g(x, variables, *, k=1):\n    pass\n") == (
        "def g(x, variables=None, *, k=1):\n    pass\n"
    )


def test_swap_decorators_keeps_newlines_crlf_and_comments():
    # a decorator's trailing comment belongs to it (LibCST): it moves with it
    src = "# c\r\n@inner  # one\r\n@outer\r\ndef f():\r\n    pass\r\n"
    assert _fixed_by(SwapDecorators(), src) == "# c\r\n@outer\r\n@inner  # one\r\ndef f():\r\n    pass\r\n"


def test_removal_sentinel_removes_the_line():
    src = "x = 1\n@useless\n@keep\ndef f():\n    pass\n"
    assert _fixed_by(RemoveDecorator(), src) == "x = 1\n@keep\ndef f():\n    pass\n"


def test_string_replacement_replaces_the_syntactic_range():
    assert _fixed_by(RenameOld(), "y = (old_name)  # old_name\n") == "y = (new_name)  # old_name\n"


def test_string_replacement_stays_inside_the_nodes_parentheses():
    class ReplaceSum(Rule):
        code = "TGL987"
        name = "test-replace-sum"
        triggers = ("+",)

        def check(self, ctx):
            class V(cst.CSTVisitor):
                def visit_BinaryOperation(self, node):
                    if isinstance(node.operator, cst.Add):
                        ctx.report(node, "sum", fix=FixSpec("safe", "c", [(node, "c")]))

            ctx.module.visit(V())

    assert _fixed_by(ReplaceSum(), "y = x * (a + b)\n") == "y = x * (c)\n"


def test_finding_fix_is_json_with_edits():
    findings = make_lint([KeywordToPositional()])("kw_fn(x, y=1)\n").findings
    data = findings[0].to_json()["fix"]
    assert data["applicability"] == "safe"
    assert data["edits"] == [
        {"content": "", "location": {"row": 1, "column": 10}, "end_location": {"row": 1, "column": 12}}
    ]


# --------------------------------------------------------------------------------------
# Passes, conflicts, validation


def test_overlapping_fixes_wait_for_the_next_pass():
    out = fix("a = foo(old_name)\n", [RenameOld(), WrapFoo()])
    assert out.error is None
    assert out.text == "a = list(foo(new_name))\n"
    assert out.passes == 2
    assert sorted(f.code for f in out.fixed) == ["TGL991", "TGL992"]
    assert out.remaining == []


def test_several_fixes_in_one_pass():
    src = "old_name(1)\nz = old_name + foo(2)\n"
    out = fix(src, [RenameOld(), WrapFoo()])
    assert out.text == "new_name(1)\nz = new_name + list(foo(2))\n"
    assert out.passes == 1 and len(out.fixed) == 3


def test_second_fix_changes_nothing():
    src = "@inner\n@outer\ndef f(variables):\n    return kw_fn(old_name, y=foo(1))\n"
    first = fix(src, SAFE_GOOD_RULES)
    assert first.error is None and first.changed
    second = fix(first.text, SAFE_GOOD_RULES)
    assert second.text == first.text and not second.fixed


def test_unparsable_result_is_an_error_and_text_unchanged():
    src = "old_name = BREAK_ME\n"
    out = fix(src, [RenameOld(), BreakIt()])
    assert out.error and "would not parse" in out.error and "TGL993" in out.error
    assert out.text == src and not out.fixed


def test_uncompilable_result_is_an_error():
    out = fix("def dup_fn(a, b):\n    return a\n", [DuplicateParam()])
    assert out.error and "would not compile (duplicate argument" in out.error


def test_uncompilable_original_only_needs_to_parse():
    # `return` outside a function parses but does not compile: fixing still works.
    out = fix("return old_name\n", [RenameOld()])
    assert out.error is None and out.text == "return new_name\n"


def test_fixes_that_undo_each_other_are_an_error():
    out = fix("ping\n", [Ping(), Pong()])
    assert out.error and "undo each other" in out.error
    assert out.text == "ping\n"


def test_unsafe_fixes_only_with_the_flag():
    assert not fix("risky()\n", [Risky()]).changed
    out = fix("risky()\n", [Risky()], unsafe=True)
    assert out.text == "checked()\n"


def test_noqa_suppressed_findings_are_not_fixed():
    src = "a = old_name  # noqa: TGL991\nb = old_name\n"
    out = fix(src, [RenameOld()])
    assert out.text == "a = old_name  # noqa: TGL991\nb = new_name\n"


def test_findings_in_notebook_cells_are_not_fixed():
    lint = make_lint([RenameOld()])
    findings = lint("x = old_name\n").findings
    for f in findings:
        f.cell = 1
    assert not fix_source("x = old_name\n", findings, lint).changed


# --------------------------------------------------------------------------------------
# Writing files (fix_run)


def _run_result(paths, rules, root):
    """A RunResult as runner.run would build it, linted with test rules."""
    from tfgradlint.config import Settings
    from tfgradlint.discovery import SourceFile
    from tfgradlint.engine import decode_source
    from tfgradlint.runner import FileOutcome, RunResult

    result = RunResult()
    for p in paths:
        display = p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
        text = decode_source(p.read_bytes()).text
        findings = lint_source(text, display, rules, enabled=frozenset(r.code for r in rules)).findings
        result.outcomes.append(FileOutcome(SourceFile(p, display), Settings(root=root), text, findings))
        result.findings.extend(findings)
        result.sources[display] = text
    return result, (lambda outcome: make_lint(rules, outcome.source_file.display))


def _fix_files(tmp_path, files: dict[str, bytes], rules=SAFE_GOOD_RULES, **kw):
    paths = []
    for name, data in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    result, factory = _run_result(paths, rules, tmp_path)
    return fix_run(result, lint_factory=factory, **kw), paths


def test_fix_run_writes_and_reports(tmp_path):
    out, (p, q) = _fix_files(tmp_path, {"a.py": b"x = old_name\n", "b.py": b"y = 1\n"})
    assert p.read_bytes() == b"x = new_name\n"
    assert q.read_bytes() == b"y = 1\n"
    assert [f.code for f in out.fixed] == ["TGL991"]
    assert out.remaining == [] and out.errors == []
    assert out.diff == "--- a.py\n+++ a.py\n@@ -1 +1 @@\n-x = old_name\n+x = new_name\n"
    assert not list(tmp_path.glob(".*tfgradlint*"))


def test_diff_mode_writes_nothing(tmp_path):
    out, (p,) = _fix_files(tmp_path, {"a.py": b"x = old_name\ny = 2"}, write=False)
    assert p.read_bytes() == b"x = old_name\ny = 2"
    assert out.diff == "--- a.py\n+++ a.py\n@@ -1,2 +1,2 @@\n-x = old_name\n+x = new_name\n y = 2\n\\ No newline at end of file\n"
    assert len(out.fixed) == 1


def test_encoding_cookie_bom_and_crlf_preserved(tmp_path):
    latin = "# -*- coding: latin-1 -*-\r\ns = 'café'\r\nx = old_name\r\n".encode("latin-1")
    bom = b"\xef\xbb\xbfs = '\xc3\xa9'\nx = old_name\n"
    cr = b"s = 1\rx = old_name\r"
    out, (p1, p2, p3) = _fix_files(tmp_path, {"l.py": latin, "b.py": bom, "c.py": cr})
    assert out.errors == []
    assert p1.read_bytes() == latin.replace(b"old_name", b"new_name")
    assert p2.read_bytes() == bom.replace(b"old_name", b"new_name")
    assert p3.read_bytes() == cr.replace(b"old_name", b"new_name")


def test_unencodable_fix_writes_nothing(tmp_path):
    class ToGreek(_NameRule):
        code = "TGL988"
        name = "test-greek"
        triggers = ("alpha",)
        target, replacement = "alpha", "α"

    data = "# coding: latin-1\nx = alpha\n".encode("latin-1")
    out, (p,) = _fix_files(tmp_path, {"g.py": data}, rules=[ToGreek()])
    assert p.read_bytes() == data
    assert out.errors and "cannot be encoded" in out.errors[0]
    assert out.fixed == [] and [f.code for f in out.remaining] == ["TGL988"]


def test_mode_and_symlink_preserved(tmp_path):
    real = tmp_path / "real.py"
    real.write_bytes(b"x = old_name\n")
    real.chmod(0o751)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    result, factory = _run_result([link], SAFE_GOOD_RULES, tmp_path)
    out = fix_run(result, lint_factory=factory)
    assert out.errors == []
    assert link.is_symlink()
    assert real.read_bytes() == b"x = new_name\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o751


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write read-only files")
def test_read_only_file_is_not_written(tmp_path):
    p = tmp_path / "ro.py"
    p.write_bytes(b"x = old_name\n")
    p.chmod(0o444)
    result, factory = _run_result([p], SAFE_GOOD_RULES, tmp_path)
    out = fix_run(result, lint_factory=factory)
    assert p.read_bytes() == b"x = old_name\n"
    assert out.errors and "read-only" in out.errors[0]


def test_read_only_file_is_not_written_even_as_root(tmp_path, monkeypatch):
    import tfgradlint.fixes as fx

    p = tmp_path / "ro.py"
    p.write_bytes(b"x = old_name\n")
    monkeypatch.setattr(fx.os, "access", lambda *a, **k: False)
    result, factory = _run_result([p], SAFE_GOOD_RULES, tmp_path)
    out = fix_run(result, lint_factory=factory)
    assert p.read_bytes() == b"x = old_name\n" and "read-only" in out.errors[0]


def test_file_changed_since_read_is_left_alone(tmp_path):
    p = tmp_path / "a.py"
    p.write_bytes(b"x = old_name\n")
    result, factory = _run_result([p], SAFE_GOOD_RULES, tmp_path)
    p.write_bytes(b"x = old_name  # edited meanwhile\n")
    out = fix_run(result, lint_factory=factory)
    assert p.read_bytes() == b"x = old_name  # edited meanwhile\n"
    assert "changed since" in out.errors[0]


def test_crash_during_write_leaves_the_old_file(tmp_path, monkeypatch):
    import tfgradlint.fixes as fx

    p = tmp_path / "a.py"
    p.write_bytes(b"x = old_name\n")
    result, factory = _run_result([p], SAFE_GOOD_RULES, tmp_path)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fx.os, "replace", boom)
    out = fix_run(result, lint_factory=factory)
    assert p.read_bytes() == b"x = old_name\n"
    assert "No space left" in out.errors[0]
    assert [x.name for x in tmp_path.iterdir()] == ["a.py"]  # no temporary file left
    assert [f.code for f in out.remaining] == ["TGL991"]


def test_broken_fix_writes_nothing_for_that_file_only(tmp_path):
    out, (p, q) = _fix_files(
        tmp_path,
        {"bad.py": b"x = old_name\ny = BREAK_ME\n", "good.py": b"x = old_name\n"},
        rules=[RenameOld(), BreakIt()],
    )
    assert p.read_bytes() == b"x = old_name\ny = BREAK_ME\n"
    assert q.read_bytes() == b"x = new_name\n"
    assert len(out.errors) == 1 and out.errors[0].startswith("bad.py: not fixed")
    assert sorted((f.filename, f.code) for f in out.remaining) == [
        ("bad.py", "TGL991"),
        ("bad.py", "TGL993"),
    ]


def test_unified_diff_headers_and_lines_that_look_like_headers():
    d = unified_diff("-- x.py\nb\n", "c\n", "x.py")
    assert d == "--- x.py\n+++ x.py\n@@ -1,2 +1 @@\n--- x.py\n-b\n+c\n"


def test_unified_diff_keeps_crlf():
    d = unified_diff("a\r\nb\r\n", "a\r\nc\r\n", "x.py")
    assert d == "--- x.py\n+++ x.py\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n"


# --------------------------------------------------------------------------------------
# The command line, in process, with the test rules registered


@pytest.fixture
def cli_with_test_rules(monkeypatch):
    import tfgradlint.rules as rules_pkg
    from click.testing import CliRunner

    from tfgradlint.cli import main

    real = rules_pkg.all_rules()
    extra = tuple(type(r) for r in [RenameOld(), Risky(), BreakIt(), RemoveDecorator()])
    for r in extra:
        monkeypatch.setattr(r, "default", "on")
    monkeypatch.setattr(rules_pkg, "all_rules", lambda: tuple(sorted(real + extra, key=lambda c: c.code)))

    def run(*args, input=None):
        try:
            runner = CliRunner(mix_stderr=False)  # click < 8.2
        except TypeError:
            runner = CliRunner()
        return runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


def test_cli_fix_show_fixes_and_exit_codes(tmp_path, monkeypatch, cli_with_test_rules):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("x = old_name\ny = risky\n")
    r = cli_with_test_rules("check", "--no-cache", "--output-format", "concise", "a.py")
    assert r.exit_code == 1
    assert "a.py:1:5: TGL991 [*] old_name should be new_name" in r.output
    assert "a.py:2:5: TGL997 risky" in r.output  # unsafe: no [*]
    assert "[*] 1 fixable with the `--fix` option (1 hidden fix can be enabled with the `--unsafe-fixes` option)." in r.output

    r = cli_with_test_rules("check", "--no-cache", "--output-format", "concise", "--unsafe-fixes", "a.py")
    assert "a.py:2:5: TGL997 [*] risky" in r.output
    assert "[*] 2 fixable with the `--fix` option." in r.output

    r = cli_with_test_rules("check", "--no-cache", "--diff", "a.py")
    assert r.exit_code == 1
    assert r.output == "--- a.py\n+++ a.py\n@@ -1,2 +1,2 @@\n-x = old_name\n+x = new_name\n y = risky\n"
    assert (tmp_path / "a.py").read_text() == "x = old_name\ny = risky\n"

    r = cli_with_test_rules("check", "--no-cache", "--fix", "--show-fixes", "--output-format", "concise", "a.py")
    assert r.exit_code == 1  # the unsafe one remains
    assert (tmp_path / "a.py").read_text() == "x = new_name\ny = risky\n"
    assert "Fixed 1 finding:\n- a.py:\n    1 × TGL991 (test-rename-old)\n" in r.output
    assert "Found 2 findings (1 fixed, 1 remaining)" in r.output
    assert "No fixes available (1 hidden fix can be enabled with the `--unsafe-fixes` option)." in r.output

    r = cli_with_test_rules("check", "--no-cache", "--diff", "a.py")
    assert r.exit_code == 0 and r.output == ""  # nothing safe left to fix

    r = cli_with_test_rules("check", "--no-cache", "--fix", "--unsafe-fixes", "a.py")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.py").read_text() == "x = new_name\ny = checked\n"
    r = cli_with_test_rules("check", "--no-cache", "--fix", "--unsafe-fixes", "a.py")
    assert r.exit_code == 0 and (tmp_path / "a.py").read_text() == "x = new_name\ny = checked\n"


def test_cli_full_output_after_fix_shows_the_fixed_text(tmp_path, monkeypatch, cli_with_test_rules):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("@useless\ndef f():\n    return risky\n")
    r = cli_with_test_rules("check", "--no-cache", "--fix", "a.py")
    assert r.exit_code == 1
    assert (tmp_path / "a.py").read_text() == "def f():\n    return risky\n"
    assert "a.py:2:12: TGL997 risky should be checked\n" in r.output
    assert "  2 |     return risky\n" in r.output
    assert "  = unsafe fix: Use checked\n" in r.output


def test_cli_fix_from_configuration(tmp_path, monkeypatch, cli_with_test_rules):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.tfgradlint]\nfix = true\nunsafe-fixes = true\n")
    (tmp_path / "a.py").write_text("x = old_name\ny = risky\n")
    r = cli_with_test_rules("check", "--no-cache", "a.py")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.py").read_text() == "x = new_name\ny = checked\n"


def test_cli_fix_error_exits_2_and_writes_nothing(tmp_path, monkeypatch, cli_with_test_rules):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("x = old_name\ny = BREAK_ME\n")
    r = cli_with_test_rules("check", "--no-cache", "--fix", "a.py")
    assert r.exit_code == 2
    assert "a.py: not fixed: the fixed code would not parse" in r.stderr
    assert (tmp_path / "a.py").read_text() == "x = old_name\ny = BREAK_ME\n"


def test_cli_fix_stdin_prints_the_fixed_text(tmp_path, monkeypatch, cli_with_test_rules):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("untouched\n")
    r = cli_with_test_rules("check", "--no-cache", "--fix", "--stdin-filename", "a.py", "-", input=b"x = old_name\n")
    assert r.exit_code == 0
    assert r.stdout == "x = new_name\n"
    assert (tmp_path / "a.py").read_text() == "untouched\n"


def test_cli_json_carries_fix(tmp_path, monkeypatch, cli_with_test_rules):
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text("y = risky\n")
    r = cli_with_test_rules("check", "--no-cache", "--output-format", "json", "a.py")
    data = json.loads(r.stdout)
    assert data[0]["fix"] == {
        "applicability": "unsafe",
        "message": "Use checked",
        "edits": [{"content": "checked", "location": {"row": 1, "column": 5}, "end_location": {"row": 1, "column": 10}}],
    }


# --------------------------------------------------------------------------------------
# The real rules' fixes

from conftest import FIXTURES  # noqa: E402
from tfgradlint.rules import all_rules  # noqa: E402

# The rules the issue asks fixes for (TGL103: case (c) only; TGL101: unsafe).
FIX_CODES = ("TGL101", "TGL103", "TGL109", "TGL112", "TGL119", "TGL301", "TGL402", "TGL405")
NO_FIX_TEXT = "no automatic fix"


def _rule_lint(code, project=True):
    rules = [cls() for cls in all_rules() if cls.code == code]
    enabled = frozenset({code})

    def lint(text):
        res = lint_source(text, f"{code}.py", rules, enabled=enabled, whole_project=project)
        assert not res.errors, res.errors
        return res

    return lint


def _samples(rule):
    """(label, source, project) for the rule's invalid examples and its bad fixtures."""
    for i, example in enumerate(rule.invalid):
        yield f"{rule.code}-invalid-{i}", example.code, example.project, example.fixed
    for p in sorted((FIXTURES / "rules").glob(f"{rule.code}_bad*.py")):
        yield p.name, p.read_text(encoding="utf-8"), True, None


def _fix_cases():
    for rule in all_rules():
        for label, src, project, expected in _samples(rule):
            yield pytest.param(rule.code, src, project, expected, id=label)


@pytest.mark.parametrize("code,src,project,expected", list(_fix_cases()))
def test_real_fix(code, src, project, expected):
    """Each fix: valid code, the fixed findings are gone, a second fix changes nothing."""
    lint = _rule_lint(code, project)
    before = lint(src).findings
    fixable = [f for f in before if f.code == code and f.fix is not None]
    out = fix_source(src, before, lint, unsafe=True, filename=f"{code}.py")
    assert out.error is None, out.error
    if expected is not None:
        assert out.text == expected
    if not fixable:
        assert not out.changed
        return
    assert out.changed and len(out.fixed) >= len(fixable)
    compile(out.text, "fixed.py", "exec", dont_inherit=True)
    # What remains of this rule has no fix (e.g. TGL103 (a)/(b), an ambiguous TGL402 key).
    left = [f for f in out.remaining if f.code == code]
    assert all(f.fix is None for f in left), [(f.start.row, f.message) for f in left]
    assert len(left) == len([f for f in before if f.code == code]) - len(fixable)
    again = fix_source(out.text, out.remaining, lint, unsafe=True)
    assert again.error is None and again.text == out.text and not again.fixed


def _offers_fix(rule) -> bool:
    for _, src, project, _ in _samples(rule):
        if any(f.fix is not None for f in _rule_lint(rule.code, project)(src).findings):
            return True
    return False


@pytest.mark.parametrize("rule", list(all_rules()), ids=lambda r: r.code)
def test_fix_safety_documents_the_fix(rule):
    """Rules with a fix say so under "Fix safety"; the others say they have none."""
    offers = _offers_fix(rule)
    if rule.code in FIX_CODES:
        assert offers, f"{rule.code} offers no fix on its examples and fixtures"
    if offers:
        assert not rule.fix_safety.startswith("This rule has no automatic fix"), rule.fix_safety
        assert "## Fix safety" in rule.documentation()
    else:
        assert NO_FIX_TEXT in rule.fix_safety, f"{rule.code}: {rule.fix_safety}"


def test_cli_fix_twice_on_the_fixtures(tmp_path, run_cli):
    """--fix --unsafe-fixes on copies of the fixtures; the second run changes nothing."""
    import shutil

    proj = tmp_path / "proj"
    (proj / "rules").mkdir(parents=True)
    shutil.copytree(FIXTURES / "seed", proj / "seed")
    for code in FIX_CODES:  # the fixable fixtures, and the same with \r\n newlines
        for p in sorted((FIXTURES / "rules").glob(f"{code}_bad*.py")):
            (proj / "rules" / p.name).write_bytes(p.read_bytes())
            (proj / "rules" / (p.stem + "_crlf.py")).write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    before = {p: p.read_bytes() for p in proj.rglob("*.py")}
    args = ("check", "--no-cache", "--preview", "--output-format", "concise", proj)
    r = run_cli(*args, "--diff")
    assert r.returncode == 1, r.stderr
    assert "+++ " in r.stdout and r.stderr == ""
    assert {p: p.read_bytes() for p in proj.rglob("*.py")} == before  # --diff wrote nothing

    r1 = run_cli(*args, "--fix", "--unsafe-fixes", "--show-fixes")
    assert r1.returncode in (0, 1), r1.stderr
    assert r1.stderr == ""
    assert "Fixed " in r1.stdout and " fixed, " in r1.stdout
    after = {p: p.read_bytes() for p in proj.rglob("*.py")}
    changed = [p for p in before if after[p] != before[p]]
    assert changed
    for p in changed:
        if p.stem.endswith("_crlf"):
            assert b"\n" not in after[p].replace(b"\r\n", b"")  # still \r\n only
            twin = p.with_name(p.stem[: -len("_crlf")] + ".py")
            assert after[p] == after[twin].replace(b"\n", b"\r\n")
        compile(after[p], str(p), "exec", dont_inherit=True)

    r2 = run_cli(*args, "--fix", "--unsafe-fixes")
    assert r2.returncode == r1.returncode and r2.stderr == ""
    assert {p: p.read_bytes() for p in proj.rglob("*.py")} == after
    assert " fixed, " not in r2.stdout
    r3 = run_cli(*args, "--diff", "--unsafe-fixes")
    assert r3.returncode == 0 and r3.stdout == ""


def _doc_sample(path):
    """(source, diff) of the fixing section's example in a Markdown file, or None."""
    import re

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    m = re.search(r"`train\.py`:\n\n```python\n(.*?)```.*?```diff\n(.*?)```", text, re.S)
    return (m.group(1), m.group(2)) if m else None


@pytest.mark.parametrize("doc", ["README.md"])
def test_documented_diff_is_real(doc, tmp_path, run_cli):
    """The --diff sample in the documentation is what the command prints today."""
    from conftest import ROOT

    sample = _doc_sample(ROOT / doc)
    if sample is None:
        pytest.fail(f"{doc} has no --diff sample")
    source, expected = sample
    (tmp_path / "train.py").write_text(source)
    r = run_cli("check", "--no-cache", "--diff", "train.py", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stdout == expected
    assert (tmp_path / "train.py").read_text() == source
