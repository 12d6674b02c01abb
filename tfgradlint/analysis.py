"""Semantic questions several rules ask, answered from the module index (and the project).

- ``cg_target``: is this call a call of a custom-gradient function, and with what signature?
- ``find_cg_calls``: the cg calls inside an expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

import libcst as cst

from tfgradlint.index import CgFunction, ClassInfo, FunctionInfo, Scope, dotted_name

if TYPE_CHECKING:  # pragma: no cover
    from tfgradlint.context import RuleContext


@dataclass(frozen=True)
class CgSignature:
    """What a call site needs to know about the cg function it calls."""

    name: str
    params: tuple[str, ...]  # positional inputs, in order (bound self/cls excluded)
    required: int  # how many of them have no default
    has_star_args: bool
    has_star_kwargs: bool
    kwonly: tuple[str, ...]
    # The grad fn accepts ``variables`` or ``**kwargs`` (None when unknown).
    grad_accepts_variables: Optional[bool]
    local: Optional[CgFunction] = None  # the definition, when in this module
    module: Optional[str] = None  # where it is defined, when in another module


def signature_of(ctx: "RuleContext", cg: CgFunction) -> CgSignature:
    inputs = cg.inputs(ctx.index)
    required = sum(1 for p in inputs if p.default is None)
    grads = cg.grad_fns()
    accepts: Optional[bool]
    if not grads:
        accepts = None
    else:
        accepts = all(g.variables_param() is not None or g.info.has_star_kwargs() for g in grads)
    return CgSignature(
        name=cg.name,
        params=tuple(p.name.value for p in inputs),
        required=required,
        has_star_args=cg.info.has_star_args(),
        has_star_kwargs=cg.info.has_star_kwargs(),
        kwonly=tuple(p.name.value for p in cg.info.params.kwonly_params),
        grad_accepts_variables=accepts,
        local=cg,
    )


def _enclosing_class(scope: Scope) -> Optional[ClassInfo]:
    fn = scope.function_scope()
    while fn is not None:
        if fn.cls is not None:
            return fn.cls
        fn = fn.parent.function_scope() if fn.parent is not None else None
    return None


def cg_target(ctx: "RuleContext", call: cst.Call, scope: Scope) -> Optional[CgSignature]:
    """The signature of the cg function ``call`` calls, or None (not one, or unknown)."""
    func = call.func
    index = ctx.index
    if isinstance(func, cst.Name):
        cg = index.cg_by_name(func.value, scope)
        if cg is not None:
            return signature_of(ctx, cg)
    elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        cls = _enclosing_class(scope)
        fn = scope.function_scope()
        # self.method(...) inside a method of the class that defines the cg method
        if cls is not None and fn is not None:
            method_self = _self_name(fn)
            if method_self == func.value.value:
                cg = _cg_method(ctx, cls, func.attr.value)
                if cg is not None:
                    return signature_of(ctx, cg)
    if ctx.project is not None:
        return ctx.project.cg_target(ctx, call, scope)
    return None


def _self_name(fn: FunctionInfo) -> Optional[str]:
    while fn is not None and fn.cls is None:
        fn = fn.parent.function_scope() if fn.parent is not None else None  # type: ignore[assignment]
    if fn is None:
        return None
    params = fn.positional_params()
    return params[0].name.value if params else None


def _cg_method(ctx: "RuleContext", cls: ClassInfo, name: str) -> Optional[CgFunction]:
    method = cls.methods.get(name)
    if method is None:
        return None
    for cg in ctx.index.cg_functions:
        if cg.info is method:
            return cg
    return None


def find_cg_calls(
    ctx: "RuleContext", expr: cst.CSTNode, scope: Scope
) -> Iterator[tuple[cst.Call, CgSignature]]:
    """Calls of cg functions inside ``expr`` (not inside nested lambdas)."""
    stack: list[cst.CSTNode] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Lambda):
            continue
        if isinstance(node, cst.Call):
            target = cg_target(ctx, node, scope)
            if target is not None:
                yield node, target
        stack.extend(reversed(node.children))


def qualified(ctx: "RuleContext", expr: cst.BaseExpression, scope: Scope) -> Optional[str]:
    return ctx.index.qualified(expr, scope)


def callee_name(call: cst.Call) -> Optional[str]:
    return dotted_name(call.func)
