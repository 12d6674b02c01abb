"""The index's and the suppressions' shortcuts give what the plain way gives.

- ``ModuleIndex`` records every node's parent during its one walk (handlers that walk a
  node's parts themselves record the parts they skip): the map equals a full walk's.
- ``ModuleIndex.__del__`` cuts the scopes' cycles: the tree is freed without the cyclic GC.
- ``suppressions._noqa_comments`` reads comments from the slicing layout instead of
  tokenizing: the noqa comments equal ``tokenize``'s.
"""

from __future__ import annotations

import gc
import weakref

import libcst as cst
import pytest

from conftest import FIXTURES, ROOT
from tfgradlint import slicing, suppressions
from tfgradlint.index import ModuleIndex, may_qualify_to
from tfgradlint.walk import LEAVES, iter_children, walk

SOURCES = sorted(FIXTURES.rglob("*.py")) + sorted((ROOT / "tfgradlint").rglob("*.py"))

EXTRA = [
    "with a as (b, c), d() as e.f, g[h]:\n    pass\nasync def f():\n    async with x as y:\n        pass\n",
    "def f[T: int](x: T) -> T:\n    return x\nclass C[T](B, metaclass=M):\n    pass\n",
    "@dec(lambda: (yield))\ndef f(a=g(), *b, c=h(), **d) -> k():\n    return [i for i in j if i]\n",
]


def _full_walk_parents(module: cst.Module) -> dict[int, int]:
    out: dict[int, int] = {}
    stack: list[cst.CSTNode] = [module]
    while stack:
        n = stack.pop()
        for child in iter_children(n):
            out[id(child)] = id(n)
            stack.append(child)
    return out


def _modules():
    for path in SOURCES:
        try:
            yield str(path.relative_to(ROOT)), cst.parse_module(path.read_text())
        except cst.ParserSyntaxError:
            continue
    for i, text in enumerate(EXTRA):
        try:
            yield f"extra{i}", cst.parse_module(text)
        except cst.ParserSyntaxError:  # grammar this LibCST does not know
            continue


@pytest.mark.parametrize("name,module", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_parents_recorded_by_the_walk_are_complete(name, module):
    index = ModuleIndex(module)
    got = {k: id(v) for k, v in index._parents.items()}
    assert got == _full_walk_parents(module)


def test_leaves_have_no_children():
    module = cst.parse_module("x = 'a' + 1 + 1.5 + 2j + ...\nfor i in y:\n    pass\n    break\n    continue\n")
    kinds = set()
    for node in walk(module):
        if type(node) in LEAVES:
            kinds.add(type(node))
            assert iter_children(node) == []
    assert kinds == LEAVES


def test_the_tree_is_freed_with_the_index():
    module = cst.parse_module("import tensorflow as tf\nclass A:\n    def f(self):\n        return g(lambda: h())\n")
    index = ModuleIndex(module)
    fn = index.functions[0]
    ref = weakref.ref(index)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del index
        assert ref() is None  # not kept alive by a cycle
    finally:
        if enabled:
            gc.enable()
    assert fn.parent is None  # the cycles were cut


def test_may_qualify_to():
    call = cst.parse_expression("tf.custom_gradient(f)")
    assert may_qualify_to(call.func, frozenset({"tensorflow.custom_gradient"}))
    assert not may_qualify_to(call.func, frozenset({"tensorflow.RegisterGradient"}))
    assert may_qualify_to(cst.parse_expression("cg"), frozenset({"tensorflow.RegisterGradient"}))
    assert may_qualify_to(cst.parse_expression("tf.ResourceVariable"), frozenset({"tensorflow.Variable"}))


NOQA_TEXTS = [
    "# tfgradlint: noqa: TGL1\n\nimport x  # noqa: TGL101\n",
    '"""doc # noqa: TGL1"""\n# tfgradlint: noqa\nx = "# noqa"  # NOQA:TGL2, E501\n',
    "\n\n   # tfgradlint: NoQa: TGL3\n#c\nx = (1,  # noqa\n     2)\ny = f'{x} # noqa'  # noqa: TGL4\n",
    "x = 1 \\\n    + 2  # noqa: TGL5\n'''\n# noqa: TGL6\n'''  # noqa\n",
    "# a\r\n# tfgradlint: noqa: TGL7\r\nx = 1  # noqa: TGL8\r\n",
    "def f():\n    # noqa: TGL9 ok\n    return 1 # noqanoqa\n",
]


@pytest.mark.parametrize("text", NOQA_TEXTS + [p.read_text() for p in SOURCES if "noqa" in p.read_text().lower()])
def test_noqa_comments_from_the_layout_are_tokenize_s(text):
    assert slicing.analysed(text) is not None
    fast = suppressions._noqa_comments(text)
    assert fast is not None
    assert fast == [c for c in suppressions._comments(text) if "noqa" in c[2].lower()]
