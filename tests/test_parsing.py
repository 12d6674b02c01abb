"""tfgradlint/parsing.py: the parser's trees without per-node validation are LibCST's own."""

import libcst as cst
import pytest
from libcst._nodes.base import CSTNode

from tfgradlint.parsing import parse_module

SOURCES = [
    "import tensorflow as tf\n\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n        return dy * 2\n    return x, grad\n",
    "# header\n\nclass A(B, metaclass=M):\n    x: int = 1  # c\n    async def m(self, *a, k=1, **kw):\n        async with t as (u, v):\n            yield [i async for i in u if not i] or {**kw}\n",
    "x = lambda a, /, b=2, *, c: (a, b, c)[1:2:3]\nmatch x:\n    case {'a': [1, *rest]} if rest: pass\n    case _: ...\n",
    "s = f'{x!r:>{w}}' r'\\x' '''a\n'''\ntry:\n    pass\nexcept* E as e:\n    raise\nfinally:\n    del s\n",
]


@pytest.mark.parametrize("source", SOURCES)
def test_same_tree_as_libcst(source):
    fast = parse_module(source)
    assert fast.deep_equals(cst.parse_module(source))
    assert fast.code == source


def test_validation_is_back_after_parsing():
    parse_module("x = 1\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not an identifier")  # construction validates again


def test_validation_is_back_after_a_syntax_error():
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def f(:\n")
    assert CSTNode.__dict__["__post_init__"].__name__ == "__post_init__"
    with pytest.raises(cst.CSTValidationError):
        cst.Name("")
