"""Semantic questions several rules ask, answered from the module index (and the project).

- ``cg_target``: is this call a call of a custom-gradient function, and with what signature?
- ``find_cg_calls``: the cg calls inside an expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

import libcst as cst

from tfgradlint.walk import iter_children

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
    # Another decorator wraps the cg callable (``@tf.function`` above ``@tf.custom_gradient``):
    # how the call reaches ``custom_gradient`` (keywords, arity) is then unknown.
    outer_wrapped: bool = False
    # For a cg function of another module: the inputs its forward body certainly reads (uses
    # in an operation, not just returns unchanged); None when unknown. TGL119 needs it (a
    # Keras 3 weight only fails when the forward pass reads it); for a cg function of this
    # module TGL119 works it out from ``local``.
    reads_inputs: Optional[tuple[str, ...]] = None


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
        outer_wrapped=isinstance(cg.marker, cst.Decorator) and cg.marker is not cg.info.decorators[0],
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
        stack.extend(reversed(list(iter_children(node))))


def qualified(ctx: "RuleContext", expr: cst.BaseExpression, scope: Scope) -> Optional[str]:
    return ctx.index.qualified(expr, scope)


def callee_name(call: cst.Call) -> Optional[str]:
    return dotted_name(call.func)


# -- tf.recompute_grad ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecomputeTarget:
    """A ``tf.recompute_grad``-wrapped callable that a call calls."""

    name: str  # the name it is called by (for messages)
    # The wrapped function's positional parameters (bound self excluded) and which of them
    # have defaults; None when the wrapped callable is unknown (a layer, another module's).
    params: Optional[tuple[str, ...]] = None
    with_default: Optional[tuple[str, ...]] = None
    kwonly: tuple[str, ...] = ()
    # In this module: the ``tf.recompute_grad(...)`` call or the decorator, the scope it is in,
    # the wrapped expression (None for the decorator form) and the wrapped def/lambda.
    marker: Optional[cst.CSTNode] = None
    marker_scope: Optional[Scope] = None
    wrapped: Optional[cst.BaseExpression] = None
    function: Optional[FunctionInfo] = None
    module: Optional[str] = None  # where it is defined, when in another module


def is_recompute_call(ctx: "RuleContext", expr: cst.BaseExpression, scope: Scope) -> bool:
    """``expr`` is a ``tf.recompute_grad(<callable>)`` call."""
    from tfgradlint import names

    return (
        isinstance(expr, cst.Call)
        and bool(expr.args)
        and ctx.index.qualified(expr.func, scope) in names.RECOMPUTE_GRAD
    )


def recompute_wrapped_function(ctx: "RuleContext", marker: cst.Call, scope: Scope) -> Optional[FunctionInfo]:
    """The def/lambda of this module that ``tf.recompute_grad(<expr>)`` wraps, or None."""
    arg = marker.args[0]
    if arg.keyword is not None and arg.keyword.value != "f" or arg.star:
        return None
    expr = arg.value
    index = ctx.index
    if isinstance(expr, cst.Lambda):
        info = index.scope_of(expr)
        return info if isinstance(info, FunctionInfo) else None
    if isinstance(expr, cst.Name):
        found = index.resolve_function(expr.value, scope)
        if found is None:
            # `g = tf.recompute_grad(g)`: the def, then the rebinding by this very call
            s, values = index.lookup(expr.value, scope)
            fn = s.functions.get(expr.value) if s is not None else None
            if fn is not None and len(values) == 2 and values[0] is None and values[1] is marker:
                found = fn
        return found
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        # tf.recompute_grad(self.method) inside a method of the class
        cls = _enclosing_class(scope)
        fn = scope.function_scope()
        if cls is not None and fn is not None and _self_name(fn) == expr.value.value:
            method = cls.methods.get(expr.attr.value)
            if method is not None and expr.attr.value not in cls.attr_values:
                return method
    return None


def _recompute_from_marker(
    ctx: "RuleContext", name: str, marker: cst.CSTNode, scope: Scope, function: Optional[FunctionInfo]
) -> RecomputeTarget:
    wrapped = None
    if isinstance(marker, cst.Call):
        wrapped = marker.args[0].value
        function = recompute_wrapped_function(ctx, marker, scope)
    params = with_default = None
    kwonly: tuple[str, ...] = ()
    if function is not None:
        ps = function.bound_params(ctx.index) if (isinstance(marker, cst.Decorator) or wrapped is None) else None
        if ps is None:
            ps = function.positional_params()
            if isinstance(wrapped, cst.Attribute) and function.is_method and ps:
                ps = ps[1:]  # a bound method: self is not passed
        params = tuple(p.name.value for p in ps)
        with_default = tuple(p.name.value for p in ps if p.default is not None)
        kwonly = tuple(p.name.value for p in function.params.kwonly_params)
    return RecomputeTarget(name, params, with_default, kwonly, marker, scope, wrapped, function)


def _decorated_recompute(ctx: "RuleContext", fn: FunctionInfo) -> Optional[cst.Decorator]:
    from tfgradlint import names

    for dec in fn.decorators:
        if ctx.index.qualified(dec.decorator, fn.parent) in names.RECOMPUTE_GRAD:
            return dec
    return None


def recompute_target(ctx: "RuleContext", call: cst.Call, scope: Scope) -> Optional[RecomputeTarget]:
    """The ``tf.recompute_grad``-wrapped callable ``call`` calls, or None (not one, or unknown).

    Recognised in this module: ``f = tf.recompute_grad(g)`` then ``f(...)``; a function
    decorated with ``@tf.recompute_grad``; ``self.f = tf.recompute_grad(...)`` (every
    assignment of ``self.f`` in the class) then ``self.f(...)`` in a method of the class; a
    method decorated with ``@tf.recompute_grad`` called as ``self.m(...)``; and the direct
    ``tf.recompute_grad(g)(...)``. Other modules' callables come from the project index.
    """
    func = call.func
    index = ctx.index
    if is_recompute_call(ctx, func, scope):
        return _recompute_from_marker(ctx, dotted_name(func.args[0].value) or "<callable>", func, scope, None)  # type: ignore[union-attr]
    if isinstance(func, cst.Name):
        s, values = index.lookup(func.value, scope)
        if s is not None and func.value not in s.imports:
            if len(values) == 1 and values[0] is not None and is_recompute_call(ctx, values[0], s):
                return _recompute_from_marker(ctx, func.value, values[0], s, None)
            # `g = tf.recompute_grad(g)` after `def g`: calls that run after the rebinding
            if (
                len(values) == 2
                and values[0] is None
                and func.value in s.functions
                and values[1] is not None
                and is_recompute_call(ctx, values[1], s)
                and _runs_after(ctx, call, scope, values[1], s)
            ):
                return _recompute_from_marker(ctx, func.value, values[1], s, None)
            fn = s.functions.get(func.value)
            if fn is not None and values == [None]:
                dec = _decorated_recompute(ctx, fn)
                if dec is not None:
                    return _recompute_from_marker(ctx, func.value, dec, s, fn)
    elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        cls = _enclosing_class(scope)
        fn = scope.function_scope()
        if cls is not None and fn is not None and _self_name(fn) == func.value.value:
            attr = func.attr.value
            values = cls.attr_values.get(attr, [])
            method = cls.methods.get(attr)
            class_values = cls.bindings.get(attr, [])
            if values and method is None and attr not in cls.bindings:
                if all(is_recompute_call(ctx, v, fn) for v in values):
                    owner = _attr_owner(cls, attr, values[0]) or fn
                    return _recompute_from_marker(ctx, f"{func.value.value}.{attr}", values[0], owner, None)
            elif method is not None and not values and class_values == [None]:
                dec = _decorated_recompute(ctx, method)
                if dec is not None:
                    return _recompute_from_marker(ctx, f"{func.value.value}.{attr}", dec, cls, method)
            elif (
                not values
                and method is None
                and len(class_values) == 1
                and class_values[0] is not None
                and is_recompute_call(ctx, class_values[0], cls)
            ):
                return _recompute_from_marker(ctx, f"{func.value.value}.{attr}", class_values[0], cls, None)
    project = ctx.project
    finder = getattr(project, "recompute_target", None) if project is not None else None
    if finder is not None:
        found = finder(ctx, call, scope)
        if found is None or isinstance(found, RecomputeTarget):
            return found
        sig = getattr(found, "signature", None) or {}
        params = tuple(sig["params"]) if "params" in sig else None
        with_default = None
        if params is not None and isinstance(sig.get("required"), int):
            with_default = params[sig["required"]:]
        return RecomputeTarget(
            name=getattr(found, "name", "") or dotted_name(func) or "<callable>",
            params=params,
            with_default=with_default,
            kwonly=tuple(sig.get("kwonly", ())),
            module=getattr(found, "module", None),
        )
    return None


def _attr_owner(cls: ClassInfo, attr: str, value: cst.BaseExpression) -> Optional[FunctionInfo]:
    """The method whose body assigns ``self.<attr> = value``."""
    for method in cls.methods.values():
        for node in method.assigns:
            if getattr(node, "value", None) is value:
                return method
    return None


def _runs_after(ctx: "RuleContext", call: cst.Call, scope: Scope, binding: cst.CSTNode, binding_scope: Scope) -> bool:
    """``call`` (in ``scope``) certainly runs after the statement of ``binding`` in
    ``binding_scope``: it is in a function nested in that scope, or a later statement of it."""
    if scope is not binding_scope:
        s: Optional[Scope] = scope
        in_function = False
        while s is not None and s is not binding_scope:
            in_function = in_function or isinstance(s, FunctionInfo)
            s = s.parent
        return s is binding_scope and in_function
    a, b = _statement_in_block(ctx, binding), _statement_in_block(ctx, call)
    return a is not None and b is not None and a[0] is b[0] and b[1] > a[1]


def _statement_in_block(ctx: "RuleContext", node: cst.CSTNode) -> Optional[tuple[cst.CSTNode, int]]:
    """The innermost block (module or indented block) around ``node`` and the index of the
    statement of that block that contains it."""
    child = node
    for anc in ctx.index.ancestors(node):
        if isinstance(anc, (cst.Module, cst.IndentedBlock)):
            for i, stmt in enumerate(anc.body):
                if stmt is child:
                    return anc, i
            return None
        child = anc
    return None
