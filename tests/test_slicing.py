"""The pieces of the per-file fast path: top-level statements found without a parse tree,
positions per statement, the fast exclude globs, the project index's word searches."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from libcst.metadata import PositionProvider

from tfgradlint import slicing
from tfgradlint.config import path_matches
from tfgradlint.discovery import _Excludes
from tfgradlint.engine import NodePositions
from tfgradlint.project import _has_star_import, _mentions

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FILES = sorted((ROOT / "fixtures").rglob("*.py"))

TRICKY = [
    "x = 1; y = 2\nz = 3\n",
    "s = 'it''s # not a comment'\nt = \"a \\\" quote\"\n# comment\nu = 1\n",
    'doc = """\ndef not_code():\n    pass\n"""\nv = 2\n',
    "r = r'\\\\'\nq = 1\n",
    "f = f\"{'a'} {x!r:>{width}}\"\ng = f'''{1}\n'''\n",
    "a = (1,\n# inside\n     2)\nb = [\n1]\n",
    "c = 1 + \\\n    2\nd = 3\n",
    "@dec\n# between\n@other(\n    1)\ndef f():\n    pass\n\n\n@d\nclass C(B):\n    x = 1\n",
    "if a:\n    pass\nelif b:\n    pass\n# c\nelse:\n    pass\ntry:\n    pass\nexcept E:\n    pass\nfinally:\n    pass\n",
    "class A: pass\ndef g(): return 1\nasync def h():\n    await x\n",
    "x = 1\r\ny = '''a\r\nb'''\r\nz = 2",
    "def f():\n    x = 1\n    # trailing indented comment\n# top comment\n\ny = 2\n",
    "for i in range(3):\n    pass\nelse:\n    pass\nwhile False:\n    pass\nwith a as b, c:\n    pass\n",
    "match x:\n    case 1:\n        pass\n    case _:\n        pass\n",
    "名前 = 1\nprint(名前)\n",
    "x = [i for i in range(3)]\nif (n := 10) > 5:\n    pass\n",
    (
        "class K:\n    '''doc'''\n\n    @property\n    def a(self):\n        return 1\n\n    b = 2\n\n"
        "    if X:\n        def c(self):\n            pass\n    else:\n        c = None\n\n"
        "    class Inner:\n        pass\n"
    ),
]


def _ast_spans(text: str) -> list[tuple[int, int]]:
    """(first line, last line) of each top-level statement, ``;``-joined ones merged."""
    out: list[tuple[int, int]] = []
    for node in ast.parse(text).body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if out and first <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], node.end_lineno))
        else:
            out.append((first, node.end_lineno))
    return out


@pytest.mark.parametrize("text", TRICKY + [p.read_text(encoding="utf-8") for p in FIXTURE_FILES])
def test_layout_matches_the_ast(text):
    assert slicing.supported(text) and slicing.compiles(text)
    lay = slicing.layout(text)
    assert lay is not None
    assert [(s.line, s.end_line) for s in lay.statements] == _ast_spans(text)
    kinds = {"def": (ast.FunctionDef, ast.AsyncFunctionDef), "class": (ast.ClassDef,), "import": (ast.Import, ast.ImportFrom)}
    tree = ast.parse(text)
    for st_ in lay.statements:
        node = next(n for n in tree.body if min([n.lineno] + [d.lineno for d in getattr(n, "decorator_list", [])]) == st_.line)
        if st_.kind in ("def", "class"):
            assert isinstance(node, kinds[st_.kind]) and node.name == st_.name
        # the statement's text is the source of its lines
        assert text[st_.start : st_.end].rstrip() == "".join(
            text.splitlines(True)[st_.line - 1 : st_.end_line]
        ).rstrip()


@pytest.mark.parametrize("text", TRICKY + [p.read_text(encoding="utf-8") for p in FIXTURE_FILES])
def test_class_units_match_the_ast(text):
    lay = slicing.layout(text)
    tree = ast.parse(text)
    for st_ in lay.statements:
        if st_.kind != "class":
            continue
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == st_.name)
        units = slicing.class_units(text, lay, st_)
        if node.body[0].lineno == node.lineno:
            assert units is None  # a body on the class line
            continue
        lines = [text.count("\n", 0, u.start) + 1 for u in units]
        first = [min([n.lineno] + [d.lineno for d in getattr(n, "decorator_list", [])]) for n in node.body]
        assert lines == sorted(set(first))
        for u, n in zip(units, node.body):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                assert u.name == n.name


def test_blanked_keeps_lines_and_columns():
    text = TRICKY[7] + "x = 1\n" + TRICKY[1]
    lay = slicing.layout(text)
    keep = [i % 2 == 0 for i in range(len(lay.statements))]
    out = slicing.blanked(text, lay.statements, keep)
    assert out.count("\n") == text.count("\n")
    for st_, k in zip(lay.statements, keep):
        for n in range(st_.line, st_.end_line + 1):
            line = out.splitlines()[n - 1]
            assert line == (text.splitlines()[n - 1] if k else "")


@pytest.mark.parametrize(
    "text",
    [
        "x = '''unterminated\n",
        "def f(:\n    pass\n",
        "x = 1\n\fy = 2\n",
        "x = 1\ry = 2\n",
        "\ufeffx = 1\n",
        "x = " + "(" * 300 + ")" * 300 + "\n",
    ],
)
def test_unsure_texts_go_the_old_way(text):
    text = "custom_gradient(x)\n" + text  # a trigger word in code: something to analyse
    assert slicing.plan(text, {"custom_gradient"}) is None


def test_texts_without_a_trigger_word_in_code_keep_nothing_unsure_or_not():
    texts = ["x = '''unterminated\n", "x = " + "(" * 300 + ")" * 300 + "\n",
             '"""custom_gradient in a docstring"""\nx = 1  # custom_gradient\n']
    for text in texts:
        plan = slicing.plan(text, {"custom_gradient"})
        assert plan is not None and plan.empty


@pytest.mark.parametrize("terms", [100, 900, 3000])
def test_compiles_agrees_with_the_ast_guard(terms):
    from tfgradlint.engine import _too_deep_for_python

    text = "import tensorflow as tf\nx = " + " + ".join(["1"] * terms) + "\n"
    nested = "x = " + "[" * terms + "]" * terms + "\n"
    for t in (text, nested):
        assert slicing.compiles(t) == (_too_deep_for_python(t) is None)


def test_dead_trigger_words():
    text = (
        "import tensorflow as tf\n"
        "from tensorflow_probability.python.internal import custom_gradient as tfp_cg\n"
        "@tfp_cg.custom_gradient(vjp_fwd=None)\n"
        "def f(x):\n    return x\n"
        "def g(x):\n    '''tf.custom_gradient in a docstring'''\n    return x  # tf.GradientTape\n"
    )
    plan = slicing.plan(text, {"custom_gradient", "GradientTape"})
    assert plan is not None and plan.empty
    # rebinding the name anywhere makes it live again
    live = text + "def h():\n    tfp_cg = tf\n    return tfp_cg.custom_gradient(f)\n"
    plan = slicing.plan(live, {"custom_gradient"})
    assert plan is not None and not plan.empty


def test_override_map_words_count_only_with_a_call():
    text = "import tensorflow as tf\ndef gradient_override_map(m):\n    return tf.Session()\n"
    plan = slicing.plan(text, {"gradient_override_map"})
    assert plan is not None and plan.empty
    call = text + "def f(g):\n    with g.gradient_override_map({'Sign': 'Identity'}):\n        pass\n"
    plan = slicing.plan(call, {"gradient_override_map"})
    assert plan is not None and not plan.empty
    kept = {st_.name for st_ in plan.statements}
    assert {"gradient_override_map", "f"} <= kept  # tf.Session(): a sign of TF1 graph code


def test_analysed_is_remembered_and_bounded(monkeypatch):
    monkeypatch.setattr(slicing, "ANALYSED_MAX_CHARS", 70)
    slicing._ANALYSED.clear()
    slicing._ANALYSED_CHARS[0] = 0
    a = "x = 1\n" * 5
    b = "y = 2\n" * 5
    lay = slicing.analysed(a)
    assert slicing.analysed(a) is lay
    slicing.analysed(b)
    assert a in slicing._ANALYSED and b in slicing._ANALYSED
    slicing.analysed("z = 3\n" * 5)
    assert a not in slicing._ANALYSED  # the oldest went first
    assert slicing._ANALYSED_CHARS[0] <= 70
    slicing._ANALYSED.clear()
    slicing._ANALYSED_CHARS[0] = 0


# -- positions per statement -----------------------------------------------------------------


@pytest.mark.parametrize("text", TRICKY + [p.read_text(encoding="utf-8") for p in FIXTURE_FILES])
def test_positions_per_statement_match_the_whole_module(text):
    module = cst.parse_module(text)
    lines = [s.line for s in slicing.layout(text).statements]
    full = cst.MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    from tfgradlint.index import ModuleIndex

    index = ModuleIndex(module)
    positions = NodePositions(module, lines, index.parent)
    checked = 0
    for node in full:
        if index.parent(node) is None and node is not module:
            continue  # whitespace and punctuation nodes: not reported
        if node is module:
            continue
        assert positions[node] == full[node], node
        checked += 1
    assert checked or not module.body


# -- discovery's compiled globs ----------------------------------------------------------------

_part = st.text(alphabet="abc._-", min_size=1, max_size=4)
_glob = st.text(alphabet="abc.*?/[]!_", min_size=1, max_size=7)


@settings(max_examples=400, deadline=None)
@given(st.lists(_part, min_size=1, max_size=4), st.lists(_glob, min_size=1, max_size=4))
def test_compiled_excludes_match_path_matches(parts, patterns):
    rel = "/".join(parts)
    name = parts[-1]
    expected = any(path_matches(rel, p) or path_matches(name, p) for p in patterns)
    assert _Excludes(tuple(patterns))(rel, name) == expected


# -- the project index's searches --------------------------------------------------------------

_words = st.lists(st.text(alphabet="ab_1", min_size=1, max_size=3).filter(lambda w: not w[0].isdigit()),
                  min_size=1, max_size=12, unique=True)


@settings(max_examples=300, deadline=None)
@given(_words, st.text(alphabet="ab_1 .*\nimport(", max_size=60))
def test_word_search_matches_the_bounded_regex(names, text):
    reference = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in sorted(names)) + r")\b")
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n))))
    assert _mentions(text, sorted(names), pattern) == bool(reference.search(text))
    assert _has_star_import(text) == bool(re.search(r"\bimport\s*\*", text))


# -- fixes on a module of some of the statements -----------------------------------------------


def _sliced(text: str, keep_names: set[str]):
    lay = slicing.layout(text)
    keep = [st_.kind == "import" or st_.name in keep_names for st_ in lay.statements]
    return slicing.blanked(text, lay.statements, keep)


def _transplant(text: str, keep_names: set[str], compact: bool = False):
    """A module of the imports and the ``keep_names`` statements of ``text``: their code
    with the others' lines empty, or (``compact``) without them, and its transplant."""
    from tfgradlint.engine import _Replacer, _Transplant
    from tfgradlint.index import ModuleIndex

    lay = slicing.layout(text)
    keep = [st_.kind == "import" or st_.name in keep_names for st_ in lay.statements]
    kept = [st_ for st_, k in zip(lay.statements, keep) if k]
    if compact:
        dropped = [(st_.start, st_.end) for st_, k in zip(lay.statements, keep) if not k]
        form = slicing.compacted(text, dropped, kept)
        module = cst.parse_module(form.text)
        index = ModuleIndex(module)
        return module, index, _Transplant(_Replacer(module, form.text, index.parent, form.lines), text, form.original_row)
    sliced = _sliced(text, keep_names)
    module = cst.parse_module(sliced)
    index = ModuleIndex(module)
    lines = [st_.line for st_ in kept]
    return module, index, _Transplant(_Replacer(module, sliced, index.parent, lines), text)


@pytest.mark.parametrize("compact", [False, True], ids=["blanked", "compact"])
def test_transplanted_fix_equals_the_whole_module_fix(compact):
    from tfgradlint.fixes import replaced_text
    from tfgradlint.index import ModuleIndex

    text = (
        "import tensorflow as tf\n\ndef dropped(a):\n    return a\n\n"
        "def kept(x):\n    return tf.sign(x)\n\n# after\ndef also_dropped():\n    pass\n"
    )
    module, index, transplant = _transplant(text, {"kept"}, compact)
    call = next(s.node for s in index.calls if s.node.func.attr.value == "sign")
    new = call.with_changes(func=call.func.with_changes(attr=cst.Name("abs")))
    whole = cst.parse_module(text)
    whole_index = ModuleIndex(whole)
    whole_call = next(s.node for s in whole_index.calls if s.node.func.attr.value == "sign")
    expected = replaced_text(whole, text, [(whole_call, whole_call.with_changes(
        func=whole_call.func.with_changes(attr=cst.Name("abs"))))], whole_index.parent)
    assert transplant([(call, new)]) == expected
    assert not transplant.failed


@pytest.mark.parametrize("compact", [False, True], ids=["blanked", "compact"])
def test_transplant_refuses_edits_that_reach_statements_left_out(compact):
    from tfgradlint.engine import _NeedsWholeModule

    # removing a statement removes its leading lines too: the blanked lines of the
    # statement left out before it, or in the compact form, the comment above that one
    text = "import tensorflow as tf\n# on dropped\ndef dropped(a):\n    return a\ndef kept(x):\n    return x\n"
    module, index, transplant = _transplant(text, {"kept"}, compact)
    kept = module.body[-1]
    with pytest.raises(_NeedsWholeModule):
        transplant([(kept, cst.RemovalSentinel.REMOVE)])
    assert transplant.failed


def test_compact_transplant_removes_a_statement_as_the_whole_module_does():
    from tfgradlint.fixes import replaced_text
    from tfgradlint.index import ModuleIndex

    text = "import tensorflow as tf\ndef dropped(a):\n    return a\n# on kept\ndef kept(x):\n    return x\n"
    module, index, transplant = _transplant(text, {"kept"}, compact=True)
    whole = cst.parse_module(text)
    expected = replaced_text(whole, text, [(whole.body[-1], cst.RemovalSentinel.REMOVE)], ModuleIndex(whole).parent)
    assert transplant([(module.body[-1], cst.RemovalSentinel.REMOVE)]) == expected
    assert expected == "import tensorflow as tf\ndef dropped(a):\n    return a\n"
    assert not transplant.failed


def test_compacted_removes_whole_lines_and_maps_rows_back():
    text = (
        "import a\n"  # 1
        "def dropped():\n    return 1\n"  # 2-3
        "# kept comment\n"  # 4
        "class K:\n    def m(self):\n        pass\n    def gone(self):\n        pass\n"  # 5-9
        "x = 1\ny = 2\n"  # 10-11
        "def last():\n    pass"  # 12-13, no final newline
    )
    lay = slicing.layout(text)
    by_line = {st_.line: st_ for st_ in lay.statements}
    gone = text.index("    def gone")
    removed = [(by_line[2].start, by_line[2].end), (gone, text.index("x = 1")), (by_line[10].start, by_line[10].end)]
    kept = [by_line[1], by_line[5], by_line[11], by_line[12]]
    form = slicing.compacted(text, removed, kept)
    assert form.text == "import a\n# kept comment\nclass K:\n    def m(self):\n        pass\ny = 2\ndef last():\n    pass"
    assert form.lines == [1, 3, 6, 7]
    text_lines, form_lines = text.split("\n"), form.text.split("\n")
    for row in range(1, len(form_lines) + 1):
        assert text_lines[form.original_row(row) - 1] == form_lines[row - 1], row
    assert [form.original_row(r) for r in range(1, 9)] == [1, 4, 5, 6, 7, 11, 12, 13]
    # statements left out at the start, two in a row, CRLF
    crlf = "def a():\r\n    pass\r\ndef b():\r\n    pass\r\nimport c\r\n"
    lay = slicing.layout(crlf)
    form = slicing.compacted(crlf, [(s.start, s.end) for s in lay.statements[:2]], lay.statements[2:])
    assert form.text == "import c\r\n" and form.lines == [1] and form.original_row(1) == 5


def test_positions_in_a_class_with_methods_left_out_are_the_files():
    """Methods left out of a kept class are removed from the parsed code: positions inside
    the class, after them, are moved back to the file's rows."""
    from tfgradlint.engine import NodePositions
    from tfgradlint.index import ModuleIndex

    text = (
        "import tensorflow as tf\n\n\ndef unrelated():\n    return 1\n\n\n"
        "class Layer(object):\n    def a(self):\n        return 1\n\n    def b(self):\n        return 2\n\n"
        "    def train(self, w):\n        with tf.GradientTape() as tape:\n            y = w * 2\n"
        "        return tape.gradient(y, w)\n"
    )
    plan = slicing.plan(text, {"GradientTape"}, tape_rules=True)
    assert plan is not None and plan.compact is not None
    assert "def a" not in plan.compact.text and "unrelated" not in plan.compact.text
    module = cst.parse_module(plan.compact.text)
    index = ModuleIndex(module)
    positions = NodePositions(module, plan.compact.lines, index.parent, None, plan.compact.original_row)
    whole = cst.MetadataWrapper(cst.parse_module(text)).resolve(PositionProvider)
    by_code = {cst.Module([]).code_for_node(n): r for n, r in whole.items() if isinstance(n, cst.Call)}
    calls = [s.node for s in index.calls]
    assert calls
    for call in calls:
        assert positions[call] == by_code[cst.Module([]).code_for_node(call)]


def test_every_built_in_rule_was_reviewed_for_slicing():
    """A new rule: read slicing.py's docstring, check what the rule reads beyond the
    statements with its trigger words, then add its code to slicing.REVIEWED_RULES."""
    from tfgradlint.rules import all_rules

    missing = sorted(r.code for r in all_rules() if r.triggers and r.code not in slicing.REVIEWED_RULES)
    assert not missing, f"review these rules' needs and add them to slicing.REVIEWED_RULES: {missing}"


def test_unreviewed_rules_lint_whole_files():
    from tfgradlint.context import FixSpec  # noqa: F401
    from tfgradlint.engine import lint_source
    from tfgradlint.rules.base import Rule

    class EveryName(Rule):
        code = "TGL990"
        name = "every-name"
        triggers = ("custom_gradient",)

        def check(self, ctx):
            for st_ in ctx.module.body:
                ctx.report(st_, "statement")

    text = "import tensorflow as tf\ndef f():\n    pass\nx = tf.custom_gradient(f)\n"
    found = lint_source(text, "m.py", [EveryName()], enabled=frozenset({"TGL990"}))
    assert [f.start.row for f in found.findings] == [1, 2, 4]


def test_needs_libcst_says_when_lint_source_parses(monkeypatch):
    from tfgradlint import engine
    from tfgradlint.config import select_rules
    from tfgradlint.rules import all_rules

    codes = select_rules(("ALL",), (), (), True)
    rules = [cls() for cls in all_rules() if cls.code in codes]
    parsed = []
    real = cst.parse_module

    def spy(text, *a, **k):
        parsed.append(text)
        return real(text, *a, **k)

    monkeypatch.setattr(cst, "parse_module", spy)
    texts = [p.read_text(encoding="utf-8") for p in FIXTURE_FILES] + [
        "import numpy as np\n# noqa\n",
        "from tfp.internal import custom_gradient as cg\n@cg.custom_gradient\ndef f(x):\n    return x\n",
        "x = (\n# noqa: TGL101\n",
    ]
    for text in texts:
        parsed.clear()
        engine.lint_source(text, "m.py", rules, enabled=codes)
        assert engine.needs_libcst(text, rules, enabled=codes) == bool(parsed), text


@pytest.mark.parametrize("path", [p for p in FIXTURE_FILES if p.name.endswith("_bad.py")], ids=lambda p: p.name)
def test_replacer_equals_replaced_text(path):
    """The engine's one-statement replacement gives fixes.replaced_text's text."""
    from tfgradlint.engine import _Replacer
    from tfgradlint.fixes import replaced_text
    from tfgradlint.index import ModuleIndex

    text = path.read_text(encoding="utf-8")
    module = cst.parse_module(text)
    index = ModuleIndex(module)
    lines = [st_.line for st_ in slicing.layout(text).statements]
    replace = _Replacer(module, text, index.parent, lines)
    for site in index.calls[:25]:
        items = [(site.node.func, cst.Name("replaced"))]
        assert replace(items) == replaced_text(module, text, items, index.parent)
    if index.calls:
        both = [(index.calls[0].node, cst.Name("a")), (index.calls[-1].node, cst.Name("b"))]
        try:
            expected = replaced_text(module, text, both, index.parent)
        except Exception as exc:
            with pytest.raises(type(exc)):
                replace(both)
        else:
            assert replace(both) == expected


def test_tape_reuse_names_the_first_call_whatever_the_addresses():
    """The earlier call a TGL301 message names does not depend on object addresses (the
    findings must be the same in every process)."""
    from tfgradlint.engine import lint_source
    from tfgradlint.rules import all_rules

    rules = [cls() for cls in all_rules() if cls.code == "TGL301"]
    text = (
        "import tensorflow as tf\n\nw = tf.Variable(2.0)\ndef f(flag):\n"
        "    with tf.GradientTape(persistent=False) as tape:\n        y = w * w\n"
        "    if flag:\n        a = tape.gradient(y, w)\n    else:\n        a = tape.gradient(y * 2, w)\n"
        "    return a, tape.gradient(y, w)\n"
    )
    messages = set()
    keep = []
    for i in range(12):
        keep.append([object() for _ in range(i * 13)])  # shift the allocations
        messages.add(lint_source(text, "m.py", rules).findings[0].message)
    assert len(messages) == 1 and "line 8" in messages.pop()


def _lint_all(text):
    from tfgradlint.engine import lint_source
    from tfgradlint.rules import runtime_rules

    rules = runtime_rules()
    enabled = frozenset(r.code for r in rules) | {"TGL001"}
    return lint_source(text, "m.py", rules, enabled=enabled)


def test_files_that_keep_nothing_are_not_compiled(monkeypatch):
    """CPython's parser reads a candidate file only when its plan keeps something."""
    assert slicing.only_outside_code('"""GradientTape"""\n# GradientTape\nx = "GradientTape"\n', ["GradientTape"])
    assert not slicing.only_outside_code('x = f"{GradientTape}"\n', ["GradientTape"])
    assert not slicing.only_outside_code('"""doc"""\nGradientTape = 1\n', ["GradientTape"])
    assert slicing.only_outside_code("x = 1\n", ["GradientTape"])
    asked = []
    real = slicing.compiles
    monkeypatch.setattr(slicing, "compiles", lambda text: asked.append(text) or real(text))
    docstring_only = '"""Example:\n\n    with tf.GradientTape() as tape:\n        y = f(x)\n"""\nimport math\n\n\ndef f(x):\n    return math.exp(x)\n'
    assert not _lint_all(docstring_only).findings
    assert asked == []
    # the same, broken elsewhere: nothing analysed, nothing reported (TGL001's documented scope)
    assert not _lint_all(docstring_only + "\ndef g():\n    return = 1\n").findings
    assert asked == []
    # unbalanced brackets too: its words are found outside code before any layout
    assert not _lint_all(docstring_only + "\ndef g(:\n    pass\n").findings
    # where a trigger word is in code, the layout is unsure: the whole file is parsed and
    # TGL001 says why
    in_code = "import tensorflow as tf\nt = tf.GradientTape()\n"
    assert [f.code for f in _lint_all(in_code + "\ndef g(:\n    pass\n").findings] == ["TGL001"]
    relevant = "import tensorflow as tf\n\n\ndef step(x):\n    with tf.GradientTape() as tape:\n        y = x * x\n    return tape.gradient(y, x)\n"
    assert not _lint_all(relevant).findings
    assert asked == [relevant]


def test_the_code_analysed_is_compiled_and_its_syntax_error_reported(monkeypatch):
    """A plan compiles the code it keeps (TGL001 when that fails); the statements it leaves
    out are not compiled, as in a file with nothing to analyse (TGL001's documented scope)."""
    asked = []
    real = slicing.compiles
    monkeypatch.setattr(slicing, "compiles", lambda text: asked.append(text) or real(text))
    head = "import tensorflow as tf\n\n\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n        return dy\n"
    broken_in_f = head + "    return = x, grad\n\n\ndef g():\n    return 1\n"
    assert [f.code for f in _lint_all(broken_in_f).findings] == ["TGL001"]
    broken_in_g = head + "    return x, grad\n\n\ndef g():\n    return = 1\n"
    asked.clear()
    assert _lint_all(broken_in_g).findings == []
    assert asked and all("return = 1" not in code for code in asked)  # only the kept code compiled


@pytest.mark.parametrize("path", FIXTURE_FILES[::3], ids=lambda p: p.name)
def test_words_outside_code_agree_with_the_layout(path):
    """only_outside_code (strings and comments alone) says what the layout says, wherever
    the layout is sure."""
    text = path.read_text(encoding="utf-8")
    words = ["GradientTape", "custom_gradient", "recompute_grad", "RegisterGradient", "gradient_override_map",
             "tf", "x", "grad", "dy", "f", "self", "return"]
    lay = slicing.layout(text)
    if lay is None:
        return
    for w in words:
        assert slicing.only_outside_code(text, [w]) == (not slicing.mentions_in_code(text, lay, [w])), w
    for text in TRICKY:
        lay = slicing.layout(text)
        if lay is not None:
            for w in ("x", "a", "b", "not_code", "c", "y", "width", "名前", "f", "pass"):
                assert slicing.only_outside_code(text, [w]) == (not slicing.mentions_in_code(text, lay, [w])), (text, w)


def _tokens_one_position_at_a_time(text: str):
    """The layout's tokens as a plain alternation finds them, trying every alternative at
    every position (what _TOKEN did before it skipped runs of plain code)."""
    alternation = re.compile(
        "|".join([slicing._STRING_OR_COMMENT, r"([(\[{])", r"([)\]}])", r"\\\r?\n", r"(\r?\n)"]), re.S
    )
    out = []
    for m in alternation.finditer(text):
        out.append(("noncode" if m.lastindex is None else "bracket-or-newline", m.span()))
    return out


def _tokens(text: str):
    out = []
    for m in slicing._TOKEN.finditer(text):
        if m.lastindex in (1, 3):
            out.append(("noncode", m.span(m.lastindex)))
        elif m.lastindex == 2:
            out.append(("bracket-or-newline", m.span(2)))
    return out


@pytest.mark.parametrize("text", TRICKY + [
    "x = 'unterminated\ny = (1,\n  2)\n", "a = b \\ c\nd = 1\n", "s = '''open\n(", "q = \"\n", "#", "'", "x = 1\rz\n",
    "with a, \\\n     b:\n    pass\n", "x" * 5000 + "'" + "y" * 5000, "(" * 50 + "\n" + ")" * 50 + "\n",
] + [p.read_text(encoding="utf-8") for p in FIXTURE_FILES[::4]])
def test_the_layouts_tokens_are_those_of_the_plain_alternation(text):
    """Skipping runs of plain code changes no token: the same strings, comments,
    backslash-newlines, brackets and newlines, wherever a quote opens no string or a
    backslash continues nothing."""
    assert _tokens(text) == _tokens_one_position_at_a_time(text)
