"""Fast traversal of LibCST trees.

LibCST's ``node.children`` and ``node.visit(visitor)`` rebuild every node they pass
(``_visit_and_replace_children``): on real code that is several times the cost of parsing.
Linting only reads the tree, so here children are read straight from the nodes' fields,
skipping fields that hold only whitespace and punctuation, in lexical order.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Callable, Iterator

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

# Classes whose nodes never have children that hold code (``iter_children`` is empty):
# their fields are strings or punctuation. A walk need not look into them.
LEAVES = frozenset(
    {cst.Name, cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary, cst.Ellipsis, cst.Pass, cst.Break, cst.Continue}
)

_FIELDS: dict[type, tuple[str, ...]] = {}
# A class's code fields read at once (``operator.attrgetter``, always a tuple).
_GETTERS: dict[type, Callable[[cst.CSTNode], tuple]] = {}
# The types of field values seen, nodes and others: ``isinstance(value, cst.CSTNode)`` goes
# through ``ABCMeta.__instancecheck__``; each type is classified once instead.
_NODE_TYPES: set[type] = set()
_OTHER_TYPES: set[type] = {type(None), str, tuple, list}


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


def _getter_of(cls: type) -> Callable[[cst.CSTNode], tuple]:
    fields = _FIELDS.get(cls) or _fields_of(cls)
    if not fields:
        get: Callable[[cst.CSTNode], tuple] = lambda node: ()  # noqa: E731
    elif len(fields) == 1:
        one = operator.attrgetter(fields[0])
        get = lambda node: (one(node),)  # noqa: E731
    else:
        get = operator.attrgetter(*fields)
    _GETTERS[cls] = get
    return get


def _is_node(value: object) -> bool:
    t = type(value)
    if issubclass(t, cst.CSTNode):
        _NODE_TYPES.add(t)
        return True
    if not issubclass(t, (tuple, list)):
        _OTHER_TYPES.add(t)
    return False


def iter_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The node's children that can hold code, in source order (a new list)."""
    cls = type(node)
    get = _GETTERS.get(cls) or _getter_of(cls)
    out: list[cst.CSTNode] = []
    nodes = _NODE_TYPES
    others = _OTHER_TYPES
    for value in get(node):
        t = type(value)
        if t in nodes:
            out.append(value)
        elif t is tuple or t is list:
            for item in value:
                ti = type(item)
                if ti in nodes or (ti not in others and _is_node(item)):
                    out.append(item)
        elif t in others:
            continue
        elif _is_node(value):
            out.append(value)
        elif isinstance(value, (tuple, list)):
            out.extend(item for item in value if _is_node(item))
    return out



def walk(node: cst.CSTNode, *, into_lambdas: bool = True, into_defs: bool = True) -> Iterator[cst.CSTNode]:
    """``node`` and everything below it, depth-first, in source order.

    ``into_lambdas`` / ``into_defs`` False: do not enter nested lambdas / defs and classes
    (they are still yielded themselves).
    """
    stack = [node]
    pop = stack.pop
    extend = stack.extend
    lam = cst.Lambda
    defs = (cst.FunctionDef, cst.ClassDef)
    while stack:
        n = pop()
        yield n
        if n is not node:
            if not into_lambdas and type(n) is lam:
                continue
            if not into_defs and type(n) in defs:
                continue
        children = iter_children(n)
        children.reverse()
        extend(children)
