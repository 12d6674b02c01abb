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


def _fields(node):
    """Every field of every node below ``node``, as stored (slots and instance dict)."""
    import dataclasses

    out = []
    todo = [node]
    while todo:
        n = todo.pop()
        values = [(f.name, getattr(n, f.name)) for f in dataclasses.fields(n)]
        out.append((type(n).__name__, [(k, v if not isinstance(v, (CSTNode, tuple)) else type(v).__name__)
                                       for k, v in values]))
        for _, v in values:
            if isinstance(v, CSTNode):
                todo.append(v)
            elif isinstance(v, (tuple, list)):
                todo.extend(x for x in v if isinstance(x, CSTNode))
    return out


def test_the_fast_constructors_build_what_the_dataclass_constructors_build(monkeypatch):
    """tfgradlint's node constructors (set once, for every LibCST node class) against the
    ones the dataclasses made: same fields, same values, on the fixtures and these sources;
    and validation outside a parse, as before."""
    from pathlib import Path

    from tfgradlint import parsing

    parse_module("x = 1\n")  # installs them
    assert parsing._ORIGINAL_INITS and all(
        getattr(cls.__dict__["__init__"], "_tfgradlint", False) for cls in parsing._ORIGINAL_INITS
    )
    root = Path(__file__).resolve().parent.parent / "fixtures"
    texts = SOURCES + [p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.py"))]
    fast = [parse_module(t) for t in texts]
    for cls, original in parsing._ORIGINAL_INITS.items():
        monkeypatch.setattr(cls, "__init__", original)
    slow = [cst.parse_module(t) for t in texts]
    monkeypatch.undo()
    for a, b in zip(fast, slow):
        assert a.deep_equals(b)
        assert _fields(a) == _fields(b)
    # with_changes (dataclasses.replace) and defaults from factories
    name = cst.Name("x")
    assert name.lpar == () and name.with_changes(value="y").value == "y"
    assert isinstance(cst.SimpleStatementLine(body=[cst.Pass()]).trailing_whitespace, cst.TrailingWhitespace)
    with pytest.raises(cst.CSTValidationError):
        name.with_changes(value="")
