"""Fast traversal of LibCST trees.

LibCST's ``node.children`` and ``node.visit(visitor)`` rebuild every node they pass
(``_visit_and_replace_children``): on real code that is several times the cost of parsing.
Linting only reads the tree, so here children are read straight from the nodes' fields,
skipping fields that hold only whitespace and punctuation, in lexical order.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import libcst as cst

# Fields that hold only whitespace, punctuation or operator tokens.
_SKIP = frozenset(
    {
        "lpar",
        "rpar",
        "comma",
        "semicolon",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "trailing_whitespace",
        "newline",
        "equal",
        "colon",
        "dot",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "operator",
        "asynchronous",
        "star_tok",
    }
)

# Classes whose dataclass field order is not the order of the source text.
_LEXICAL_ORDER = {
    cst.FunctionDef: ("decorators", "name", "type_parameters", "params", "returns", "body"),
    cst.ClassDef: ("decorators", "name", "type_parameters", "bases", "keywords", "body"),
    cst.IfExp: ("body", "test", "orelse"),
    cst.Arg: ("keyword", "value"),
    cst.ExceptHandler: ("type", "name", "body"),
    cst.ExceptStarHandler: ("type", "name", "body"),
}

_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields_of(cls: type) -> tuple[str, ...]:
    names = _LEXICAL_ORDER.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
    present = {f.name for f in dataclasses.fields(cls)}
    fields = tuple(
        n for n in names if n in present and n not in _SKIP and not n.startswith("whitespace")
    )
    _FIELDS[cls] = fields
    return fields


def iter_children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The node's children that can hold code, in source order."""
    cls = type(node)
    fields = _FIELDS.get(cls) or _fields_of(cls)
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


def walk(node: cst.CSTNode, *, into_lambdas: bool = True, into_defs: bool = True) -> Iterator[cst.CSTNode]:
    """``node`` and everything below it, depth-first, in source order.

    ``into_lambdas`` / ``into_defs`` False: do not enter nested lambdas / defs and classes
    (they are still yielded themselves).
    """
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if n is not node:
            if not into_lambdas and isinstance(n, cst.Lambda):
                continue
            if not into_defs and isinstance(n, (cst.FunctionDef, cst.ClassDef)):
                continue
        children = list(iter_children(n))
        children.reverse()
        stack.extend(children)
