"""Parsing a statement at a time (tfgradlint/parsing.py ``parse_statements``): the language
server's re-lints reuse the unchanged statements of the previous lints. The trees and the
findings are those of the parse at once; scripts/compare_incremental.py checks the corpus."""

from __future__ import annotations

import threading
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfgradlint import engine, parsing, slicing
from tfgradlint.config import select_rules
from tfgradlint.fixes import _parent_map
from tfgradlint.rules import all_rules
from tfgradlint.walk import walk

ROOT = Path(__file__).resolve().parent.parent
CODES = select_rules(("ALL",), (), (), True)
RULES = [cls() for cls in all_rules() if cls.code in CODES]

BLOCK = '''

@tf.custom_gradient
def scale{i}(x, y):
    """Scale {i}."""
    z = x * y

    def grad(dy):
        return dy * y  # one gradient for two inputs

    return z, grad


class Dense{i}(tf.keras.layers.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], 4))

    def call(self, x):
        with tf.GradientTape() as tape:
            y = scale{i}(x, self.w)
        return tape.gradient(y, x)
'''
HEADER = '"""A module."""\n# a comment\n\nimport tensorflow as tf\n'
SOURCE = HEADER + "".join(BLOCK.replace("{i}", str(i)) for i in range(6))


@pytest.fixture(autouse=True)
def _fresh():
    parsing.cache_clear()
    yield
    parsing.cache_clear()


def _lines(text: str) -> list[int]:
    lay = slicing.analysed(text)
    assert lay is not None
    return [s.line for s in lay.statements]


def _assembled(text: str, lines=None):
    module, chunks = parsing.parse_statements(text, _lines(text) if lines is None else lines)
    whole = cst.parse_module(text)
    assert module.deep_equals(whole)
    assert module.code == text
    return module, chunks


def _data(result) -> tuple:
    return [f.identity() for f in result.findings], result.errors


def _lint(text: str, incremental: bool, monkeypatch) -> tuple:
    monkeypatch.setattr(parsing, "INCREMENTAL", incremental)
    return _data(engine.lint_source(text, "m.py", RULES, enabled=CODES, whole_project=True))


# -- findings -------------------------------------------------------------------------------


def test_findings_identical_across_an_edit_sequence(monkeypatch):
    edits = [
        SOURCE,
        SOURCE + "# appended\n",
        "# inserted\n\n" + SOURCE,
        SOURCE.replace("return dy * y  # one gradient for two inputs", "return dy * y, dy * x", 1),
        SOURCE.replace("def grad(dy):", "def grad(dy, variables=None):", 2),
        SOURCE.replace("class Dense3", "class Renamed3"),
        SOURCE.replace("    z = x * y\n", "    z = x * y\n    # thinking\n", 1),
        SOURCE,
    ]
    seen = set()
    for text in edits:
        reference = _lint(text, False, monkeypatch)
        assert reference[0], "the module has findings"
        assert _lint(text, True, monkeypatch) == reference
        seen.add(tuple(reference[0]))
    assert len(seen) > 2  # the edits changed the findings
    assert parsing.cache_size()[0] > 0


def test_positions_of_every_node_after_edits():
    _assembled(SOURCE)
    text = "# one\n# two\n\n" + SOURCE.replace("return tape.gradient(y, x)", "return tape.gradient(y, [x])", 2)
    lines = _lines(text)
    module, chunks = _assembled(text, lines)
    positions = engine.NodePositions(module, lines, _parent_map(module), chunks)
    whole = cst.parse_module(text)
    reference = engine.node_positions(whole)
    nodes, ref_nodes = list(walk(module))[1:], list(walk(whole))[1:]
    for node in nodes:
        positions[node]  # computed (and remembered) for every statement
    module2, chunks2 = _assembled(text, lines)  # every statement reused
    assert all(a is b for a, b in zip(chunks, chunks2))
    positions2 = engine.NodePositions(module2, lines, _parent_map(module2), chunks2)
    for node, ref in zip(list(walk(module2))[1:], ref_nodes):
        assert positions2[node] == reference[ref]
    assert len(nodes) == len(ref_nodes)


# -- what is reused -------------------------------------------------------------------------


def test_an_edited_statement_is_parsed_again_the_others_reused():
    m1, c1 = _assembled(SOURCE)
    edited = SOURCE.replace("z = x * y", "z = x * y * 2", 1)
    m2, c2 = _assembled(edited)
    assert len(c1) == len(c2)
    changed = [i for i, (a, b) in enumerate(zip(c1, c2)) if a is not b]
    assert len(changed) == 1
    (i,) = changed
    assert "scale0" in c2[i].text and "* 2" in c2[i].text
    assert not m1.body[i].deep_equals(m2.body[i])
    for j in range(len(c1)):
        if j != i:
            assert c1[j] is c2[j]
            # the statement's nodes themselves (its leading lines aside) are shared
            assert m1.body[j].children[-1] is m2.body[j].children[-1]


def test_lines_inserted_at_the_top_reuse_every_statement_after_the_first():
    _, c1 = _assembled(SOURCE)
    _, c2 = _assembled("# new\n\n\n" + SOURCE)
    assert c1[0] is not c2[0]
    assert all(a is b for a, b in zip(c1[1:], c2[1:]))


def test_the_same_statement_twice_gets_its_own_nodes():
    text = "import tensorflow as tf\nx = tf.constant(1)\ny = 2\nx = tf.constant(1)\ny = 2\n"
    module, chunks = _assembled(text)
    assert len({id(c) for c in chunks}) == len(chunks)
    nodes = [id(n) for n in walk(module)]
    assert len(nodes) == len(set(nodes))


def test_the_cache_is_bounded(monkeypatch):
    limit = 2 * len(SOURCE)
    monkeypatch.setattr(parsing, "CACHE_MAX_CHARS", limit)
    for i in range(30):
        _assembled(SOURCE.replace("scale", f"scale_{i}_"))
        chunks, chars = parsing.cache_size()
        assert chars <= limit
    assert chunks > 0
    # the most recent statements are the ones remembered
    last = SOURCE.replace("scale", "scale_29_")
    _, c1 = _assembled(last)
    _, c2 = _assembled(last)
    assert all(a is b for a, b in zip(c1, c2))
    _, c3 = _assembled(SOURCE.replace("scale", "scale_0_"))
    # the first variant's statements were forgotten: parsed again
    assert not any(a is b for a, b in zip(c1, c3) if "scale" in b.text)


def test_fixed_code_is_reused_only_for_equal_replacements():
    module, chunks = _assembled(SOURCE)
    chunk = next(c for c in chunks if "def scale2" in c.text)
    name = chunk.node.name
    made = []

    def make(code: str):
        return lambda: made.append(code) or code

    a = chunk.fixed_code(module, [(name, cst.Name("renamed"))], make("A"))
    b = chunk.fixed_code(module, [(name, cst.Name("renamed"))], make("B"))  # an equal replacement
    c = chunk.fixed_code(module, [(name, cst.Name("other"))], make("C"))
    d = chunk.fixed_code(module, [(chunk.node.params, cst.Parameters())], make("D"))  # another node
    assert (a, b, c, d) == ("A", "A", "C", "D")
    assert made == ["A", "C", "D"]


def test_mixed_indentation_lints_the_same(monkeypatch):
    text = SOURCE + "\n\nclass Odd(tf.keras.layers.Layer):\n  def call(self, x):\n    return scale1(x, self.w)\n"
    lines = _lines(text)
    assert parsing.parse_statements(text, lines)[1] is None  # parsed at once
    assert _lint(text, True, monkeypatch) == _lint(text, False, monkeypatch)


def test_nothing_remembered_when_asked(monkeypatch):
    parsing.parse_statements(SOURCE, _lines(SOURCE), remember=False)
    assert parsing.cache_size() == (0, 0)


def test_lints_from_several_threads_agree(monkeypatch):
    monkeypatch.setattr(parsing, "INCREMENTAL", True)
    texts = [SOURCE.replace("z = x * y", f"z = x * y + {i}", 1) for i in range(6)]
    expected = [_data(engine.lint_source(t, "m.py", RULES, enabled=CODES, whole_project=True)) for t in texts]
    got: dict[int, tuple] = {}

    def work(k: int) -> None:
        for _ in range(2):
            got[k] = _data(engine.lint_source(texts[k], "m.py", RULES, enabled=CODES, whole_project=True))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[k] for k in range(len(texts))] == expected


# -- the layout cases: parsed by statements, or at once -------------------------------------

SAME_BY_STATEMENTS = [
    "x = 1\ny = 2\n",
    "# h\n\n# c\nx = 1\n\n# d\ny = 2\n# e\n",
    "def f():\n    x\n    # a\n  # b\n    # c\n# d\ny = 1\n",  # an indented block's footer
    "def f():\n    x\n# d\n    # e\ny = 2\n# f\n",
    "def f():\n    x\n\n\n    # e\n\n\ny = 2\n",
    "x = 1\ndef f():\n    pass\n    # trailing comment without a newline",
    "x = 1\ny = 2",  # no final newline
    "x = 1\ndef f():\n    pass\n\n\n",
    "if x: y\nif z:\n  w\nclass A:\n  pass\n",  # a two-space module
    "x = 1\r\ny = 2\r\ndef f():\r\n    pass\r\n",
    "@d\n# c\n@e\ndef f(): pass\nclass B: x = 1\n",
    "try:\n  x\nexcept E:\n    y\nfinally:\n z\nw = 1\n",
    "x = 1 \\\n  + 2\ny = 3\n",
    "match x:\n    case 1:\n        pass\ny = 1\n",
    "'''doc'''\nimport a\n\n\ndef f():\n    '''x\n  y'''\n    return 1\n",
    "x = 1\n   # an indented comment\ny = 2\n",
    # indented lines after a simple statement: a chunk alone would end with a module footer,
    # which LibCST builds without them (it expects an indented block to have taken them)
    "import a\n\n\n  # what was left of a function\n  #   left out\n\n\ndef f():\n  pass\n",
    "x = 1\n    \n\t\ny = 2\n",
    "def f():\n    pass\n\n        # deeper\n  # shallower\n\ny = 2\n",
]

AT_ONCE = [
    "x = 1\nif z:\n\tw\nclass A:\n  pass\n",  # two blocks, two indents: the module's is the first
    "def f():\n  x\ndef g():\n    y\n",
    "x = 1\r\ny = 2\ndef f():\n    pass\r\n",  # the statements disagree on the newline
    "x = 1\n\fy = 2\n",  # a form feed
    "x = 1\n",  # one statement: nothing to reuse
]


@pytest.mark.parametrize("text", SAME_BY_STATEMENTS)
def test_assembled_by_statements(text):
    lines = [s.line for s in slicing.layout(text).statements]
    module, chunks = parsing.parse_statements(text, lines)
    assert chunks is not None
    assert module.deep_equals(cst.parse_module(text))
    assert module.code == text


@pytest.mark.parametrize("text", AT_ONCE)
def test_parsed_at_once(text):
    lines = [1, 2] if "\f" in text else [s.line for s in slicing.layout(text).statements]
    module, chunks = parsing.parse_statements(text, lines)
    assert chunks is None
    assert module.deep_equals(cst.parse_module(text))


def test_bad_lines_parse_at_once():
    text = "x = (1,\n     2)\ny = 3\n"
    for lines in ([1, 2, 3], [2, 3], [1, 1], [3, 1], [1, 9]):  # inside a statement, not code, ...
        module, chunks = parsing.parse_statements(text, lines)
        assert chunks is None
        assert module.deep_equals(cst.parse_module(text))


def test_a_syntax_error_raises_as_parse_module():
    text = "x = 1\ndef f(:\n    pass\n"
    with pytest.raises(cst.ParserSyntaxError):
        parsing.parse_statements(text, [1, 2])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(SAME_BY_STATEMENTS + [BLOCK.replace("{i}", "0"), HEADER]), min_size=2, max_size=6))
def test_any_sequence_of_modules(parts):
    text = "".join(p if p.endswith("\n") else p + "\n" for p in parts)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lay = slicing.analysed(text)
    if lay is None or len(lay.statements) < 2:
        return
    module, _ = parsing.parse_statements(text, [s.line for s in lay.statements])
    assert module.deep_equals(cst.parse_module(text))
    assert module.code == text


def test_the_language_server_parses_by_statements(monkeypatch):
    from tfgradlint import lsp

    seen = []

    class Server:
        def start_io(self) -> None:
            seen.append(parsing.INCREMENTAL)

    monkeypatch.setattr(parsing, "INCREMENTAL", False)
    monkeypatch.setattr(lsp, "_make_server", Server)
    monkeypatch.delenv("TFGRADLINT_INCREMENTAL", raising=False)
    lsp.serve()
    monkeypatch.setenv("TFGRADLINT_INCREMENTAL", "0")  # the variable decides
    monkeypatch.setattr(parsing, "INCREMENTAL", False)
    lsp.serve()
    assert seen == [True, False]
