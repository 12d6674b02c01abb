"""TGL3xx: ``tf.GradientTape`` misuse.

The tape rules share one flow analysis per module (tfgradlint/rules/tape_flow.py): which
tape object a name holds at each ``gradient``/``jacobian``/``batch_jacobian`` call, whether
that tape was certainly used already, and whether the call sits inside the tape's own
``with`` block. The value rules (unwatched, stop-gradient, NumPy and integer sources and
targets) look only at names bound in the same function whose every binding is known.
"""

from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from tfgradlint.walk import iter_children

from tfgradlint.context import FixSpec
from tfgradlint.index import FunctionInfo, Scope, dotted_name
from tfgradlint.rules.base import Invalid, Rule, Valid
from tfgradlint.rules.tape_flow import (
    GRAD_METHODS,
    TapeBinding,
    TapeCall,
    analysis,
    poisoned_names,
)

TRIGGERS = ("GradientTape",)
STOP_GRADIENT = frozenset({"tensorflow.stop_gradient", "keras.ops.stop_gradient"})
_INT_DTYPES = frozenset(
    f"{m}.{t}"
    for m in ("tensorflow", "numpy", "keras.ops")
    for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
) | frozenset({"builtins.int"})
_INT_DTYPE_STRINGS = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})
# tf constructors whose result is a fresh tensor with no recorded history.
_FRESH = frozenset(
    {
        "tensorflow.zeros",
        "tensorflow.ones",
        "tensorflow.fill",
        "tensorflow.eye",
        "tensorflow.range",
        "tensorflow.linspace",
    }
)
# Constructors that may return their argument itself when it already is a tensor.
_CONVERTING = frozenset({"tensorflow.constant", "tensorflow.convert_to_tensor"})

_HEADER = "import tensorflow as tf\n\nw = tf.Variable(2.0)\n"


# -- small helpers ------------------------------------------------------------------------


def _where(scope: Scope) -> str:
    fn = scope.function_scope()
    if fn is None:
        return "at module level"
    return f"in '{fn.name or '<lambda>'}'"


def _line(ctx, node: cst.CSTNode) -> Optional[int]:
    rng = ctx.position(node)
    return rng.start.line if rng is not None else None


def _arg(call: cst.Call, position: int, keyword: str) -> Optional[cst.Arg]:
    positional = 0
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is None:
            if positional == position:
                return arg
            positional += 1
        elif arg.keyword.value == keyword:
            return arg
    return None


def _has_star(call: cst.Call) -> bool:
    return any(a.star for a in call.args)


def target_arg(call: TapeCall) -> Optional[cst.BaseExpression]:
    a = _arg(call.node, 0, "target")
    return a.value if a is not None else None


def sources_arg(call: TapeCall) -> Optional[cst.BaseExpression]:
    a = _arg(call.node, 1, "source" if call.method == "batch_jacobian" else "sources")
    return a.value if a is not None else None


def unconnected_arg(call: TapeCall) -> Optional[cst.Arg]:
    return _arg(call.node, 3 if call.method == "gradient" else 2, "unconnected_gradients")


def source_names(expr: Optional[cst.BaseExpression]) -> list[cst.Name]:
    """The plain names among the sources (a name, or the names in a list/tuple)."""
    if isinstance(expr, cst.Name):
        return [expr]
    if isinstance(expr, (cst.List, cst.Tuple)):
        return [e.value for e in expr.elements if isinstance(e, cst.Element) and isinstance(e.value, cst.Name)]
    return []


def _poisoned(ctx) -> frozenset[str]:
    return poisoned_names(ctx.index, ctx.source)


def local_values(ctx, name: str, scope: Scope) -> Optional[list[cst.BaseExpression]]:
    """Every value ``name`` is bound to, when all its bindings are in ``scope`` and known."""
    if name in _poisoned(ctx) or name in ("True", "False", "None"):
        return None
    owner = scope.function_scope() or ctx.index.scope
    found, values = ctx.index.lookup(name, scope)
    if found is not owner or not values or any(v is None for v in values):
        return None
    if name in found.imports:
        return None
    return values  # type: ignore[return-value]


def _inside(ctx, node: cst.CSTNode, container: cst.CSTNode) -> bool:
    return any(a is container for a in ctx.index.ancestors(node))


def _literal(expr: cst.BaseExpression, ints_only: bool = False) -> bool:
    """A number, or a (nested) list/tuple of numbers."""
    if isinstance(expr, cst.Integer):
        return True
    if isinstance(expr, (cst.Float, cst.Imaginary)):
        return not ints_only
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        return _literal(expr.expression, ints_only)
    if isinstance(expr, (cst.List, cst.Tuple)):
        return bool(expr.elements) and all(
            isinstance(e, cst.Element) and _literal(e.value, ints_only) for e in expr.elements
        )
    return False


def _static_arg(ctx, expr: cst.BaseExpression, scope: Scope) -> bool:
    """A literal, a string, a dtype, True/False/None, or a list/tuple of those."""
    if _literal(expr) or isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(expr, cst.Name) and expr.value in ("True", "False", "None"):
        return True
    if isinstance(expr, cst.Attribute):
        q = ctx.index.qualified(expr, scope)
        return q is not None and q.startswith(("tensorflow.", "numpy."))
    if isinstance(expr, (cst.List, cst.Tuple)):
        return all(isinstance(e, cst.Element) and _static_arg(ctx, e.value, scope) for e in expr.elements)
    return False


def _numpy_call(ctx, expr: cst.BaseExpression, scope: Scope) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    q = ctx.index.qualified(expr.func, scope)
    return q is not None and (q == "numpy" or q.startswith("numpy."))


def _dtype(ctx, call: cst.Call, position: Optional[int], scope: Scope) -> Optional[str]:
    """'int', 'other' or None (unknown) for the dtype= of a constructor; 'absent' when none."""
    a = _arg(call, position, "dtype") if position is not None else _arg(call, 99, "dtype")
    if a is None:
        return "absent"
    v = a.value
    if isinstance(v, cst.SimpleString):
        text = v.evaluated_value
        return "int" if text in _INT_DTYPE_STRINGS else "other"
    if isinstance(v, cst.Name) and v.value == "None":
        return "absent"
    q = ctx.index.qualified(v, scope)
    if q is None:
        return None
    if q in _INT_DTYPES:
        return "int"
    if q.startswith(("tensorflow.", "numpy.", "builtins.")):
        return "other"
    return None


def integer_source(ctx, value: cst.BaseExpression, scope: Scope) -> Optional[str]:
    """How ``value`` makes an integer tensor, or None when it is not certainly one."""
    if not isinstance(value, cst.Call) or _has_star(value):
        return None
    q = ctx.index.qualified(value.func, scope)
    if q in _CONVERTING:
        dtype = _dtype(ctx, value, 1, scope)
        if dtype == "int":
            return f"{_short(q)} with an integer dtype"
        if dtype == "absent":
            a = _arg(value, 0, "value")
            if a is not None and _literal(a.value, ints_only=True):
                return f"{_short(q)} of integer literals"
        return None
    if q == "tensorflow.range":
        dtype = _dtype(ctx, value, None, scope)
        if dtype == "int":
            return "tf.range with an integer dtype"
        if dtype == "absent":
            positional = [a.value for a in value.args if a.keyword is None]
            keywords = [a.value for a in value.args if a.keyword is not None and a.keyword.value in ("start", "limit", "delta")]
            if positional and all(_literal(v, ints_only=True) for v in positional + keywords):
                return "tf.range of integers"
        return None
    if q in ("tensorflow.zeros", "tensorflow.ones", "tensorflow.zeros_like", "tensorflow.ones_like",
             "tensorflow.fill", "tensorflow.random.uniform", "tensorflow.eye"):
        if _dtype(ctx, value, None, scope) == "int":
            return f"{_short(q)} with an integer dtype"
        return None
    if q == "tensorflow.cast":
        if _dtype(ctx, value, 1, scope) == "int":
            return "tf.cast to an integer dtype"
    return None


def _short(q: Optional[str]) -> str:
    if q is None:
        return "?"
    if q.startswith("tensorflow."):
        return "tf." + q[len("tensorflow."):]
    if q.startswith("numpy."):
        return "np." + q[len("numpy."):]
    return q


def unwatched_kind(ctx, value: cst.BaseExpression, scope: Scope, block: Optional[cst.With]) -> Optional[str]:
    """What a source bound to ``value`` is when the tape cannot have recorded it, else None.

    'tensor:<how>' for a fresh tensor (tf.constant, tf.zeros, tf.random.*, ...), 'numpy' for a
    NumPy value, 'python' for a Python number or list.
    """
    if _literal(value):
        return "python"
    if not isinstance(value, cst.Call) or _has_star(value):
        return None
    q = ctx.index.qualified(value.func, scope)
    if q is None:
        return None
    if q == "numpy" or q.startswith("numpy."):
        return "numpy"
    inside = block is not None and _inside(ctx, value, block.body)
    args = [a.value for a in value.args]
    if q in _CONVERTING:
        a = _arg(value, 0, "value")
        if a is None:
            return None
        # tf.constant(<tensor>) returns that very tensor: only literals and NumPy are fresh
        if _literal(a.value) or _numpy_call(ctx, a.value, scope):
            if all(_static_arg(ctx, x.value, scope) for x in value.args if x is not a):
                return f"tensor:{_short(q)}"
        return None
    if q in _FRESH or q.startswith("tensorflow.random."):
        # Inside the tape block, an argument computed from a watched tensor (tf.fill's
        # value, tf.random.normal's mean) would make the result an intermediate the tape
        # can differentiate to: only static arguments are certainly unconnected there.
        if not inside or all(_static_arg(ctx, x, scope) for x in args):
            return f"tensor:{_short(q)}"
    return None


def _tape_uses(ctx, binding: TapeBinding) -> Iterator[tuple[cst.Name, Optional[cst.CSTNode]]]:
    """Every Name node spelled like the tape in the function, with its parent."""
    root = binding.scope.node
    name = binding.name
    stack: list[cst.CSTNode] = [root]
    while stack:
        n = stack.pop()
        for child in iter_children(n):
            if isinstance(child, cst.Name) and child.value == name:
                if isinstance(n, cst.Attribute) and n.attr is child:
                    continue
                if isinstance(n, cst.Arg) and n.keyword is child:
                    continue
                yield child, n
            else:
                stack.append(child)


def watch_status(ctx, call: TapeCall, source: str) -> Optional[bool]:
    """True: ``source`` is watched by the call's tape; False: certainly not; None: unknown."""
    binding = call.binding
    if binding is None or binding.with_stmt is None:
        return None
    block = binding.with_stmt.body
    watched = False
    for use, parent in _tape_uses(ctx, binding):
        # the with-as target itself
        if isinstance(parent, cst.AsName) and any(
            item.asname is parent for item in binding.with_stmt.items
        ):
            continue
        if isinstance(parent, cst.Attribute) and parent.value is use:
            grand = ctx.index.parent(parent)
            if not (isinstance(grand, cst.Call) and grand.func is parent):
                return None
            method = parent.attr.value
            if method in GRAD_METHODS or method in ("watched_variables", "stop_recording"):
                continue
            if method == "watch":
                if not _inside(ctx, grand, block):
                    continue  # watching after the block records nothing
                verdict = _watch_covers(ctx, grand, source, binding.scope)
                if verdict is None:
                    return None
                watched = watched or verdict
                continue
            return None
        # another tape of the same name bound elsewhere in the function: a separate binding
        if isinstance(parent, cst.AsName) and not _inside(ctx, use, block):
            continue
        if isinstance(parent, cst.Del) and not _inside(ctx, use, block):
            continue
        return None
    return watched


def _watch_covers(ctx, call: cst.Call, source: str, scope: Scope) -> Optional[bool]:
    if len(call.args) != 1 or call.args[0].star:
        return None
    arg = call.args[0].value
    items = [arg]
    if isinstance(arg, (cst.List, cst.Tuple)):
        items = [e.value for e in arg.elements if isinstance(e, cst.Element)]
        if len(items) != len(arg.elements):
            return None
    for item in items:
        if isinstance(item, cst.Attribute) and item.attr.value in _VARIABLE_LISTS:
            continue  # a model's variables: not a tensor created in this function
        if not isinstance(item, cst.Name):
            return None
        if item.value == source:
            return True
        # another name: fine when it is certainly a single tensor, not a list holding ours
        if not _single_tensor_name(ctx, item.value, scope):
            return None
    return False


_VARIABLE_LISTS = frozenset({"trainable_variables", "trainable_weights", "variables", "weights"})


def _single_tensor_name(ctx, name: str, scope: Scope) -> bool:
    if name in _poisoned(ctx):
        return False
    _, values = ctx.index.lookup(name, scope)
    if not values or any(v is None for v in values):
        return False
    for v in values:
        if not isinstance(v, cst.Call):
            return False
        q = ctx.index.qualified(v.func, scope)
        if q not in _FRESH and q not in _CONVERTING and q != "tensorflow.Variable" and not (
            q is not None and q.startswith("tensorflow.random.")
        ):
            return False
    return True


def stop_gradient_value(ctx, expr: cst.BaseExpression, scope: Scope) -> bool:
    """``expr`` is a tf.stop_gradient(...) call, or a local name only ever bound to one."""
    if isinstance(expr, cst.Call):
        return ctx.index.qualified(expr.func, scope) in STOP_GRADIENT
    if isinstance(expr, cst.Name):
        values = local_values(ctx, expr.value, scope)
        return bool(values) and all(
            isinstance(v, cst.Call) and ctx.index.qualified(v.func, scope) in STOP_GRADIENT for v in values
        )
    return False


def is_zero_unconnected(ctx, call: TapeCall) -> Optional[cst.Arg]:
    a = unconnected_arg(call)
    if a is None:
        return None
    v = a.value
    if isinstance(v, cst.SimpleString) and str(v.evaluated_value).lower() == "zero":
        return a
    dotted = dotted_name(v)
    if dotted and dotted.endswith("UnconnectedGradients.ZERO"):
        q = ctx.index.qualified(v, call.scope)
        if q is not None and q.startswith("tensorflow."):
            return a
    return None


def _outcome(ctx, call: TapeCall) -> str:
    if is_zero_unconnected(ctx, call) is not None:
        return "silently zero (unconnected_gradients=ZERO)"
    return "None"


def tape_calls(ctx) -> list[TapeCall]:
    return [c for c in analysis(ctx).calls if c.bindings]


# -- the value checks shared by TGL303-TGL307 ----------------------------------------------


def unwatched_sources(ctx, call: TapeCall) -> Iterator[tuple[cst.Name, str]]:
    """(source name node, kind) for TGL303."""
    binding = call.binding
    if binding is None or binding.with_stmt is None:
        return
    target = target_arg(call)
    for src in source_names(sources_arg(call)):
        if isinstance(target, cst.Name) and target.value == src.value:
            continue
        values = local_values(ctx, src.value, call.scope)
        if not values:
            continue
        if any(integer_source(ctx, v, call.scope) for v in values):
            continue  # TGL307's finding: watching it would not help
        kinds = [unwatched_kind(ctx, v, call.scope, binding.with_stmt) for v in values]
        if not all(kinds):
            continue
        if watch_status(ctx, call, src.value) is not False:
            continue
        yield src, kinds[0]  # type: ignore[misc]


def stop_gradient_args(ctx, call: TapeCall) -> Iterator[tuple[cst.BaseExpression, str]]:
    """(argument, 'target'|'source') for TGL305."""
    target = target_arg(call)
    sources = sources_arg(call)
    if target is None or sources is None:
        return
    names_ = {n.value for n in source_names(sources)}
    if stop_gradient_value(ctx, target, call.scope):
        if not (isinstance(target, cst.Name) and target.value in names_) and not isinstance(
            sources, (cst.Dict, cst.DictComp)
        ):
            # every source must be a name (checked for aliasing below) or a model's variables:
            # only then can no source be the stop_gradient result itself
            items = [e.value for e in sources.elements] if isinstance(sources, (cst.List, cst.Tuple)) else [sources]
            plain = bool(items) and all(
                isinstance(i, cst.Name)
                or (isinstance(i, cst.Attribute) and i.attr.value in _VARIABLE_LISTS)
                for i in items
            )
            aliased = isinstance(target, cst.Name) and any(
                any(isinstance(v, cst.Name) and v.value == target.value for v in (local_values(ctx, n, call.scope) or []))
                for n in names_
            )
            if plain and not aliased:
                yield target, "target"
    binding = call.binding
    if binding is None or binding.with_stmt is None:
        return
    for src in source_names(sources):
        if isinstance(target, cst.Name) and target.value == src.value:
            continue
        if stop_gradient_value(ctx, src, call.scope) and watch_status(ctx, call, src.value) is False:
            yield src, "source"


def integer_sources(ctx, call: TapeCall) -> Iterator[tuple[cst.Name, str]]:
    """(source name node, how it is an integer tensor) for TGL307."""
    target = target_arg(call)
    for src in source_names(sources_arg(call)):
        if isinstance(target, cst.Name) and target.value == src.value:
            continue
        values = local_values(ctx, src.value, call.scope)
        if not values:
            continue
        hows = [integer_source(ctx, v, call.scope) for v in values]
        if all(hows):
            yield src, hows[0]  # type: ignore[misc]


def _cut(ctx, expr: cst.BaseExpression, scope: Scope, seen: frozenset[str], depth: int) -> Optional[list[cst.CSTNode]]:
    """When ``expr`` cannot carry a recorded tensor: the conversions that cut it, else None."""
    if depth > 8:
        return None
    if _literal(expr) or isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        return []
    if isinstance(expr, cst.Name):
        if expr.value in ("True", "False", "None"):
            return []
        if expr.value in seen:
            return None
        values = local_values(ctx, expr.value, scope)
        if not values:
            return None
        out: list[cst.CSTNode] = []
        for v in values:
            sub = _cut(ctx, v, scope, seen | {expr.value}, depth + 1)
            if sub is None:
                return None
            out += sub
        return out
    if isinstance(expr, cst.Attribute):
        q = ctx.index.qualified(expr, scope)
        if q is not None and q.startswith(("tensorflow.", "numpy.")):
            return []
        return _cut(ctx, expr.value, scope, seen, depth + 1)
    if isinstance(expr, cst.Subscript):
        base = _cut(ctx, expr.value, scope, seen, depth + 1)
        if base is None:
            return None
        for el in expr.slice:
            if isinstance(el.slice, cst.Index):
                sub = _cut(ctx, el.slice.value, scope, seen, depth + 1)
                if sub is None:
                    return None
                base = base + sub
            else:
                for part in (el.slice.lower, el.slice.upper, el.slice.step):  # type: ignore[union-attr]
                    if part is not None:
                        sub = _cut(ctx, part, scope, seen, depth + 1)
                        if sub is None:
                            return None
                        base = base + sub
        return base
    if isinstance(expr, cst.BinaryOperation):
        left = _cut(ctx, expr.left, scope, seen, depth + 1)
        right = _cut(ctx, expr.right, scope, seen, depth + 1) if left is not None else None
        return None if right is None else left + right  # type: ignore[operator]
    if isinstance(expr, cst.UnaryOperation):
        return _cut(ctx, expr.expression, scope, seen, depth + 1)
    if isinstance(expr, (cst.List, cst.Tuple)):
        out = []
        for e in expr.elements:
            if not isinstance(e, cst.Element):
                return None
            sub = _cut(ctx, e.value, scope, seen, depth + 1)
            if sub is None:
                return None
            out += sub
        return out
    if isinstance(expr, cst.Call):
        if _has_star(expr):
            return None
        func = expr.func
        q = ctx.index.qualified(func, scope)
        if isinstance(func, cst.Attribute) and func.attr.value == "numpy" and not expr.args:
            return [expr]
        if q in ("builtins.float", "builtins.int") or (q is not None and (q == "numpy" or q.startswith("numpy."))):
            return [expr]
        args_cut: list[cst.CSTNode] = []
        for a in expr.args:
            sub = _cut(ctx, a.value, scope, seen, depth + 1)
            if sub is None:
                return None
            args_cut += sub
        if q is not None and q.startswith("tensorflow.") and not _may_read_state(q):
            return args_cut
        if q in ("builtins.abs", "builtins.round", "builtins.min", "builtins.max", "builtins.sum"):
            return args_cut
        if isinstance(func, cst.Attribute) and q is None:
            base = _cut(ctx, func.value, scope, seen, depth + 1)
            if base is not None and base:
                return base + args_cut  # a method of a NumPy value: arr.mean(), arr.sum()
        return None
    return None


_STATEFUL_TF = frozenset(
    {
        "tensorflow.py_function",
        "tensorflow.numpy_function",
        "tensorflow.map_fn",
        "tensorflow.vectorized_map",
        "tensorflow.while_loop",
        "tensorflow.cond",
        "tensorflow.case",
        "tensorflow.switch_case",
        "tensorflow.scan",
        "tensorflow.foldl",
        "tensorflow.foldr",
        "tensorflow.function",
        "tensorflow.custom_gradient",
        "tensorflow.recompute_grad",
    }
)


def _may_read_state(q: str) -> bool:
    """A TensorFlow API that may read a variable or run user code (not a pure op)."""
    return "variable" in q.lower() or q in _STATEFUL_TF or q.startswith("tensorflow.keras")


def numpy_cut_target(ctx, call: TapeCall) -> Optional[tuple[cst.CSTNode, cst.BaseExpression]]:
    """(the conversion inside the tape block, the target) for TGL304."""
    binding = call.binding
    if binding is None or binding.with_stmt is None:
        return None
    target = target_arg(call)
    if target is None:
        return None
    breakers = _cut(ctx, target, call.scope, frozenset(), 0)
    if not breakers:
        return None
    inside = [b for b in breakers if _inside(ctx, b, binding.with_stmt.body)]
    if not inside:
        return None
    return inside[0], target


def broken_paths(ctx, call: TapeCall) -> list[str]:
    """Why some gradient of ``call`` is certainly unconnected (for TGL306)."""
    out = []
    for src, _ in unwatched_sources(ctx, call):
        out.append(f"'{src.value}' is not watched")
    for arg, role in stop_gradient_args(ctx, call):
        out.append(f"the {role} {_describe(ctx, arg)} is a tf.stop_gradient result")
    for src, _ in integer_sources(ctx, call):
        out.append(f"'{src.value}' is an integer tensor")
    if numpy_cut_target(ctx, call) is not None:
        out.append("the target is computed through NumPy")
    return out


def _describe(ctx, expr: cst.CSTNode) -> str:
    if isinstance(expr, cst.Name):
        return f"'{expr.value}'"
    code = ctx.code_for(expr).strip()
    return f"'{code if len(code) <= 40 else code[:37] + '...'}'"


def _kind_text(kind: str) -> str:
    if kind == "numpy":
        return "a NumPy value"
    if kind == "python":
        return "a Python number"
    return "a " + kind.split(":", 1)[1] + " tensor"


# -- the rules ----------------------------------------------------------------------------


class TapeReused(Rule):
    code = "TGL301"
    name = "tape-reused"
    severity = "error"
    triggers = TRIGGERS
    summary = "A non-persistent GradientTape computes gradients twice: the second call raises RuntimeError."
    what = (
        "Finds a second `gradient`/`jacobian`/`batch_jacobian` call on a `tf.GradientTape` created "
        "without `persistent=True`, when every path that reaches the call has already used the "
        "tape: two calls in a row, a call after the `with` block that follows a call inside it, "
        "or one call inside a loop body when the tape was created before the loop. Calls in "
        "exclusive `if`/`else` branches, a tape re-created (or re-entered with `with tape:`) "
        "between the calls, and a `persistent=` that is not a literal are not reported. Neither "
        "are calls after a first call that may not have run (`if a: ...` then `if b: ...`: the "
        "conditions may exclude each other), calls under `assertRaises` or in a `try` that "
        "catches the error, a tape passed to another function, and loops AutoGraph may turn "
        "into a graph loop inside a `tf.function` (traced once)."
    )
    why = (
        "A non-persistent tape releases its recorded operations when it computes gradients, so "
        "it can be used exactly once. The second call fails at run time, typically in a "
        "training loop after the first batch or when a second loss is added."
    )
    tensorflow_error = (
        "`RuntimeError: A non-persistent GradientTape can only be used to compute one set of "
        "gradients (or jacobians)`"
    )
    example = """
with tf.GradientTape() as tape:
    y = w * w
    z = y * y
dy_dw = tape.gradient(y, w)
dz_dw = tape.gradient(z, w)  # RuntimeError
"""
    instead = """
with tf.GradientTape(persistent=True) as tape:
    y = w * w
    z = y * y
dy_dw = tape.gradient(y, w)
dz_dw = tape.gradient(z, w)
del tape  # release the recorded operations
"""
    fix_safety = (
        "Safe: adds `persistent=True` to the tape's constructor, which only keeps the recorded "
        "operations alive until the tape is garbage-collected (delete it with `del tape` after "
        "the last call to release the memory)."
    )
    valid = (
        Valid(_HEADER + "with tf.GradientTape(persistent=True) as tape:\n    y = w * w\n"
              "a = tape.gradient(y, w)\nb = tape.gradient(y, w)\n"),
        Valid(_HEADER + "def f(flag):\n    with tf.GradientTape() as tape:\n        y = w * w\n"
              "    if flag:\n        return tape.gradient(y, w)\n    else:\n        return tape.jacobian(y, w)\n"),
        Valid(_HEADER + "def f(flag):\n    with tf.GradientTape() as tape:\n        y = w * w\n"
              "    if flag:\n        g = tape.gradient(y, w)\n    else:\n        g = tape.gradient(2 * y, w)\n    return g\n"),
        Valid(_HEADER + "def f(p):\n    with tf.GradientTape(persistent=p) as tape:\n        y = w * w\n"
              "    return tape.gradient(y, w), tape.gradient(y, w)\n"),
        # a fresh tape every iteration
        Valid(_HEADER + "for step in range(10):\n    with tf.GradientTape() as tape:\n        y = w * w\n"
              "    g = tape.gradient(y, w)\n"),
        # re-created between the calls
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    y = w * w\na = tape.gradient(y, w)\n"
              "with tf.GradientTape() as tape:\n    z = w * 3.0\nb = tape.gradient(z, w)\n"),
        # re-entered: `with tape:` starts a new recording
        Valid(_HEADER + "tape = tf.GradientTape()\nwith tape:\n    y = w * w\na = tape.gradient(y, w)\n"
              "with tape:\n    z = w * 3.0\nb = tape.gradient(z, w)\n"),
        # the second call checks the error on purpose
        Valid(_HEADER + "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n"
              "        with tf.GradientTape() as tape:\n            y = w * w\n        tape.gradient(y, w)\n"
              "        with self.assertRaises(RuntimeError):\n            tape.gradient(y, w)\n"),
        Valid(_HEADER + "def f():\n    with tf.GradientTape() as tape:\n        y = w * w\n    tape.gradient(y, w)\n"
              "    try:\n        tape.gradient(y, w)\n    except RuntimeError:\n        pass\n"),
        # the loop ends after the call
        Valid(_HEADER + "def f(losses):\n    with tf.GradientTape() as tape:\n        y = w * w\n"
              "    for loss in losses:\n        return tape.gradient(y, w)\n"),
        # the tape escapes to a helper: unknown
        Valid(_HEADER + "def f(helper):\n    with tf.GradientTape() as tape:\n        y = w * w\n"
              "    helper(tape)\n    a = tape.gradient(y, w)\n    b = tape.gradient(y, w)\n"),
        # a different tape on each path, then one call
        Valid(_HEADER + "def f(flag):\n    with tf.GradientTape() as t1:\n        y = w * w\n"
              "    a = t1.gradient(y, w)\n    with tf.GradientTape() as t2:\n        z = w * w\n"
              "    b = t2.gradient(z, w)\n"),
        # AutoGraph loop in a tf.function: traced once
        Valid(_HEADER + "@tf.function\ndef f(n):\n    with tf.GradientTape() as tape:\n        y = w * w\n"
              "    for i in tf.range(n):\n        g = tape.gradient(y, w)\n"),
    )
    invalid = (
        Invalid(
            _HEADER + "with tf.GradientTape() as tape:\n    y = w * w\n    z = y * y\n"
            "dy_dw = tape.gradient(y, w)\ndz_dw = tape.gradient(z, w)\n",
            line=8,
            message_contains=("'tape'", "persistent=True", "line 7", "del tape"),
            fixed=_HEADER + "with tf.GradientTape(persistent=True) as tape:\n    y = w * w\n    z = y * y\n"
            "dy_dw = tape.gradient(y, w)\ndz_dw = tape.gradient(z, w)\n",
        ),
        Invalid(
            _HEADER + "def train_step(xs):\n    with tf.GradientTape() as tape:\n        loss = tf.reduce_sum(w * xs)\n"
            "    for v in model_vars:\n        g = tape.gradient(loss, v)\n",
            line=8,
            message_contains=("train_step", "loop"),
        ),
        Invalid(
            _HEADER + "def f(x):\n    with tf.GradientTape(watch_accessed_variables=False) as tape:\n"
            "        tape.watch(w)\n        y = w * x\n        g = tape.gradient(y, w)\n    return tape.jacobian(y, w)\n",
            line=9,
            fixed=_HEADER + "def f(x):\n    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:\n"
            "        tape.watch(w)\n        y = w * x\n        g = tape.gradient(y, w)\n    return tape.jacobian(y, w)\n",
        ),
        Invalid(
            _HEADER + "def f(flag):\n    with tf.GradientTape(persistent=False) as tape:\n        y = w * w\n"
            "    if flag:\n        a = tape.gradient(y, w)\n    else:\n        a = tape.gradient(y * 2, w)\n"
            "    return a, tape.gradient(y, w)\n",
            line=11,
            fixed=_HEADER + "def f(flag):\n    with tf.GradientTape(persistent=True) as tape:\n        y = w * w\n"
            "    if flag:\n        a = tape.gradient(y, w)\n    else:\n        a = tape.gradient(y * 2, w)\n"
            "    return a, tape.gradient(y, w)\n",
        ),
        Invalid(
            _HEADER + "tape = tf.GradientTape()\nwith tape:\n    y = w * w\ngs = [tape.gradient(y, w), tape.batch_jacobian(y, w)]\n",
            line=7,
            message_contains=("batch_jacobian",),
        ),
    )

    def check(self, ctx) -> None:
        for call in tape_calls(ctx):
            if call.reuse_of is None or call.suppressed or not call.bindings:
                continue
            binding = call.binding
            name = call.receiver
            where = _where(call.scope)
            if call.reuse_of is call.node:
                what = (
                    f"'{name}.{call.method}()' {where} runs on every iteration of the loop but "
                    f"'{name}' is a non-persistent GradientTape created before the loop: the "
                    f"second iteration raises RuntimeError"
                )
            else:
                first = call.reuse_of
                first_method = first.func.attr.value if isinstance(first.func, cst.Attribute) else "gradient"
                line = _line(ctx, first)
                at = f" on line {line}" if line is not None else ""
                what = (
                    f"'{name}' {where} is a non-persistent GradientTape already used by "
                    f"{first_method}(){at}: this {call.method}() call raises RuntimeError"
                )
            fix = None
            if binding is not None:
                what += (
                    f"; create it with persistent=True (and `del {name}` after the last call), "
                    f"or record a new tape for each computation"
                )
                fix = _persistent_fix(binding)
            else:
                what += "; create the tape with persistent=True or record a new tape for each computation"
            ctx.report(call.node, what, fix=fix, subject=_subject(call.scope))


def _subject(scope: Scope) -> Optional[str]:
    fn = scope.function_scope()
    return fn.name if isinstance(fn, FunctionInfo) and fn.name else None


def _persistent_fix(binding: TapeBinding) -> Optional[FixSpec]:
    ctor = binding.ctor
    if binding.persistent is not False or any(a.star for a in ctor.args):
        return None
    true = cst.Name("True")
    args = list(ctor.args)
    for i, a in enumerate(args):
        if (a.keyword is None and i == 0) or (a.keyword is not None and a.keyword.value == "persistent"):
            args[i] = a.with_changes(value=true)
            break
    else:
        new = cst.Arg(
            value=true,
            keyword=cst.Name("persistent"),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
            ),
        )
        if args:
            # keep a one-argument-per-line layout: the new argument gets its own line
            after = ctor.whitespace_before_args
            if not isinstance(after, cst.ParenthesizedWhitespace):
                after = cst.SimpleWhitespace(" ")
            new = new.with_changes(comma=cst.Comma(whitespace_after=after))
        args.insert(0, new)
    return FixSpec(
        "safe",
        f"Create '{binding.name}' with persistent=True",
        [(ctor, ctor.with_changes(args=args))],
    )


class GradientInsideTape(Rule):
    code = "TGL302"
    name = "gradient-inside-tape"
    severity = "warning"
    triggers = TRIGGERS
    summary = "`tape.gradient(...)` inside the tape's own `with` block, where it costs or breaks something."
    what = (
        "Finds `tape.gradient(...)` called inside the `with` block of that same tape when it "
        "matters: on a persistent tape whose result is not differentiated again (the tape records "
        "the whole gradient computation for nothing), or on a non-persistent tape that the code "
        "uses again afterwards (the tape stopped recording at the call and is used up). Not "
        "reported: an inner tape's gradient inside an outer tape's block (the higher-order "
        "idiom), a call under `with tape.stop_recording():`, a persistent tape's call whose result "
        "is used again in the block or differentiated later (a deliberate higher-order "
        "derivative), and a lone in-block call on a non-persistent tape (nothing is lost: "
        "TensorFlow's own tests do it under an outer tape)."
    )
    why = (
        "A non-persistent tape stops recording when it computes gradients: operations after the "
        "call inside the block are silently not recorded, and the tape cannot be used again. A "
        "persistent tape records the gradient computation itself, which is slow and uses memory "
        "(TensorFlow logs a warning)."
    )
    tensorflow_error = (
        "A non-persistent tape silently stops recording (its next use raises `RuntimeError: A "
        "non-persistent GradientTape can only be used to compute one set of gradients`); a "
        "persistent one logs `Calling GradientTape.gradient on a persistent tape inside its "
        "context is significantly less efficient than calling it outside the context`."
    )
    example = """
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(w * w)
    grads = tape.gradient(loss, [w])  # the tape stops recording here
    penalty = tf.add_n([tf.reduce_sum(g * g) for g in grads])
    total = loss + penalty
total_grads = tape.gradient(total, [w])  # RuntimeError
"""
    instead = """
with tf.GradientTape() as outer:
    with tf.GradientTape() as inner:
        loss = tf.reduce_sum(w * w)
    grads = inner.gradient(loss, [w])  # the inner tape's block has ended
    penalty = tf.add_n([tf.reduce_sum(g * g) for g in grads])
    total = loss + penalty
total_grads = outer.gradient(total, [w])
"""
    valid = (
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    y = w * w\ng = tape.gradient(y, w)\n"),
        # the higher-order idiom: the inner tape's gradient inside the outer tape's block
        Valid(_HEADER + "x = tf.constant(1.0)\nwith tf.GradientTape() as t2:\n    t2.watch(x)\n"
              "    with tf.GradientTape() as t1:\n        t1.watch(x)\n        y = x * x * x\n"
              "    g = t1.gradient(y, x)\ngg = t2.gradient(g, x)\n"),
        Valid(_HEADER + "with tf.GradientTape(persistent=True) as tape:\n    y = w * w\n"
              "    with tape.stop_recording():\n        g = tape.gradient(y, w)\n    z = y * 2.0\n"),
        Valid(_HEADER + "with tf.GradientTape(persistent=True) as tape:\n    y = w * w * w\n"
              "    dy = tape.gradient(y, w)\nd2y = tape.gradient(dy, w)\n"),
        Valid(_HEADER + "with tf.GradientTape(persistent=True) as tape:\n    y = w * w * w\n"
              "    dy = tape.gradient(y, w)\n    z = tf.reduce_sum(dy * dy)\n"),
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    y = w * w\n"
              "    with tf.GradientTape() as tape:\n        z = w * 3.0\n    g = tape.gradient(z, w)\n"),
        # a lone in-block call on a non-persistent tape loses nothing
        Valid(_HEADER + "def step(x):\n    with tf.GradientTape() as tape:\n        loss = tf.reduce_sum(w * x)\n"
              "        return tape.gradient(loss, w)\n"),
        Valid(_HEADER + "with tf.GradientTape() as outer:\n    with tf.GradientTape() as inner:\n"
              "        inner.watch(w)\n        y = w * w\n        g = inner.gradient(y, w)\n"
              "    gg = outer.gradient(g, w)\n"),
    )
    invalid = (
        Invalid(
            _HEADER + "with tf.GradientTape() as tape:\n    loss = tf.reduce_sum(w * w)\n"
            "    grads = tape.gradient(loss, [w])\n    penalty = tf.add_n([tf.reduce_sum(g * g) for g in grads])\n"
            "    total = loss + penalty\ntotal_grads = tape.gradient(total, [w])\n",
            line=6,
            message_contains=("'tape'", "stops recording", "line 9", "inner tape"),
        ),
        Invalid(
            _HEADER + "with tf.GradientTape(persistent=True) as tape:\n    y = w * w\n    g = tape.gradient(y, w)\n",
            line=6,
            message_contains=("persistent", "stop_recording"),
        ),
        Invalid(
            _HEADER + "def train_step(opt):\n    with tf.GradientTape(persistent=True) as tape:\n        loss = w * w\n"
            "        grads = tape.gradient(loss, [w])\n    opt.apply_gradients(zip(grads, [w]))\n",
            line=7,
            message_contains=("'train_step'",),
        ),
        Invalid(
            _HEADER + "with tf.GradientTape(persistent=True) as outer:\n    with tf.GradientTape() as inner:\n"
            "        y = w * w\n        g = outer.gradient(y, w)\n",
            line=7,
            message_contains=("'outer'",),
        ),
    )

    def check(self, ctx) -> None:
        calls = tape_calls(ctx)
        for call in calls:
            if call.method != "gradient" or not call.in_own_block:
                continue
            binding = call.binding
            assert binding is not None
            name = call.receiver
            where = _where(call.scope)
            if binding.persistent is None:
                continue
            if binding.persistent:
                if _result_used_later(ctx, call, binding):
                    continue
                msg = (
                    f"'{name}.gradient()' {where} is called inside the with block of persistent "
                    f"tape '{name}': the tape records the gradient computation (slow, and "
                    f"TensorFlow warns); call it after the with block, or under "
                    f"`with {name}.stop_recording():`"
                )
            else:
                # Alone, an in-block call on a non-persistent tape loses nothing (the tape can
                # be used once anyway; TensorFlow's own tests do it on purpose under an outer
                # tape). It is a bug when the code goes on to use the tape again.
                later = [c for c in calls if c.reuse_of is call.node and c is not call and not c.suppressed]
                if not later:
                    continue
                line = _line(ctx, later[0].node)
                at = f" (line {line})" if line is not None else ""
                msg = (
                    f"'{name}.gradient()' {where} is called inside the with block of tape "
                    f"'{name}': the non-persistent tape stops recording here and is used up, so "
                    f"the operations after it are not recorded and the later "
                    f"{later[0].method}() call{at} fails; call it after the with block, or "
                    f"compute it with a separate inner tape"
                )
            ctx.report(call.node, msg, subject=_subject(call.scope))


def _result_used_later(ctx, call: TapeCall, binding: TapeBinding) -> bool:
    """A persistent tape's in-block gradient whose result is used again (higher order)."""
    stmt = call.node
    parent = ctx.index.parent(stmt)
    targets: set[str] = set()
    while parent is not None and not isinstance(parent, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        if isinstance(parent, cst.Assign):
            for t in parent.targets:
                targets |= {n.value for n in _all_names(t.target)}
        elif isinstance(parent, (cst.AnnAssign, cst.AugAssign, cst.NamedExpr)):
            targets |= {n.value for n in _all_names(parent.target)}
        elif not isinstance(parent, cst.Expr):
            return True  # the result feeds an expression: it is being used
        parent = ctx.index.parent(parent)
    if not targets:
        return False
    block = binding.with_stmt.body if binding.with_stmt is not None else None
    for n in _all_names(binding.scope.node):
        if n.value not in targets or _inside(ctx, n, stmt) or not _after(ctx, n, call.node):
            continue
        if block is not None and _inside(ctx, n, block):
            return True  # used again while the tape records
        if _in_gradient_target(ctx, n):
            return True  # differentiated again: a higher-order derivative
    return False


def _in_gradient_target(ctx, node: cst.CSTNode) -> bool:
    child = node
    for anc in ctx.index.ancestors(node):
        if isinstance(anc, cst.Call) and isinstance(anc.func, cst.Attribute) and anc.func.attr.value in GRAD_METHODS:
            first = _arg(anc, 0, "target")
            return first is not None and (first is child or _inside(ctx, node, first))
        if isinstance(anc, (cst.BaseStatement, cst.BaseSmallStatement)):
            return False
        child = anc
    return False


def _all_names(node: cst.CSTNode) -> list[cst.Name]:
    out: list[cst.Name] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            out.append(n)
        elif isinstance(n, cst.Attribute):
            stack.append(n.value)
        else:
            stack.extend(iter_children(n))
    return out


def _after(ctx, a: cst.CSTNode, b: cst.CSTNode) -> bool:
    la, lb = _line(ctx, a), _line(ctx, b)
    return la is not None and lb is not None and la > lb


class UnwatchedSource(Rule):
    code = "TGL303"
    name = "unwatched-source"
    severity = "error"
    triggers = TRIGGERS
    summary = "A source of `tape.gradient` is a plain tensor the tape never watched: its gradient is None."
    what = (
        "Finds a source of `tape.gradient(target, sources)` that is a name bound in the same "
        "function only to a non-variable value (`tf.constant`, `tf.convert_to_tensor` of a literal "
        "or NumPy array, `tf.zeros`/`tf.ones`/`tf.fill`/`tf.eye`, `tf.random.*`, a literal, a NumPy "
        "array) and that the tape does not `watch` in its block. When the tape is passed to another "
        "function, aliased, or watches something that could contain the source, nothing is reported."
    )
    why = (
        "A tape records operations only on trainable variables it accesses and on tensors it "
        "watches explicitly. Gradients with respect to anything else are silently `None`, and an "
        "optimizer then skips the update or fails later with a confusing error."
    )
    tensorflow_error = (
        "None: `tape.gradient(y, x)` returns None for a tensor that was not watched; a NumPy array "
        "or Python number as a source raises `AttributeError: ... has no attribute '_id'`."
    )
    example = """
x = tf.constant(3.0)
with tf.GradientTape() as tape:
    y = x * x
dy_dx = tape.gradient(y, x)  # None
"""
    instead = """
x = tf.constant(3.0)
with tf.GradientTape() as tape:
    tape.watch(x)
    y = x * x
dy_dx = tape.gradient(y, x)  # 6.0
"""
    valid = (
        Valid(_HEADER + "x = tf.constant(3.0)\nwith tf.GradientTape() as tape:\n    tape.watch(x)\n"
              "    y = x * x\ng = tape.gradient(y, x)\n"),
        Valid(_HEADER + "x = tf.constant(3.0)\nz = tf.constant(1.0)\nwith tf.GradientTape() as tape:\n"
              "    tape.watch([x, z])\n    y = x * z\ng = tape.gradient(y, [x, z])\n"),
        Valid(_HEADER + "def f(xs):\n    x = tf.constant(3.0)\n    with tf.GradientTape() as tape:\n"
              "        tape.watch(xs)\n        y = x * x\n    return tape.gradient(y, x)\n"),
        Valid(_HEADER + "x = tf.Variable(3.0)\nwith tf.GradientTape() as tape:\n    y = x * x\ng = tape.gradient(y, x)\n"),
        Valid(_HEADER + "def f(x):\n    with tf.GradientTape() as tape:\n        y = x * x\n    return tape.gradient(y, x)\n"),
        Valid(_HEADER + "def f(x0):\n    x = tf.constant(3.0)\n    x = x0\n    with tf.GradientTape() as tape:\n"
              "        y = x * x\n    return tape.gradient(y, x)\n"),
        # the tape goes to a helper that may watch
        Valid(_HEADER + "def f(helper):\n    x = tf.constant(3.0)\n    with tf.GradientTape() as tape:\n"
              "        y = helper(tape, x)\n    return tape.gradient(y, x)\n"),
        # an intermediate computed from a watched variable is differentiable
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    h = tf.convert_to_tensor(w)\n    y = h * h\n"
              "g = tape.gradient(y, h)\n"),
        # tf.fill of a watched value inside the block is an intermediate
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    h = tf.fill([3], w)\n    y = h * h\n"
              "g = tape.gradient(y, h)\n"),
        # integer sources are TGL307's
        Valid(_HEADER + "x = tf.constant(3)\nwith tf.GradientTape() as tape:\n    y = x * x\ng = tape.gradient(y, x)\n"),
        # gradient of a tensor with respect to itself is 1
        Valid(_HEADER + "x = tf.constant(3.0)\nwith tf.GradientTape() as tape:\n    y = x * 2.0\ng = tape.gradient(x, x)\n"),
    )
    invalid = (
        Invalid(
            _HEADER + "x = tf.constant(3.0)\nwith tf.GradientTape() as tape:\n    y = x * x\ndy_dx = tape.gradient(y, x)\n",
            line=7,
            message_contains=("'x'", "tf.constant", "tape.watch(x)", "None"),
        ),
        Invalid(
            _HEADER + "import numpy as np\ndef f():\n    x = tf.random.normal((3,))\n    b = np.ones(3)\n"
            "    with tf.GradientTape() as tape:\n        tape.watch(w)\n        y = tf.reduce_sum(w * x + b)\n"
            "    return tape.gradient(y, [w, x, b])\n",
            lines=[11, 11],
            message_contains=("'f'",),
        ),
        Invalid(
            _HEADER + "x = tf.zeros((2, 2))\nwith tf.GradientTape() as tape:\n    y = x * w\n"
            "g = tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)\n",
            line=7,
            message_contains=("silently zero",),
        ),
    )

    def check(self, ctx) -> None:
        for call in tape_calls(ctx):
            for src, kind in unwatched_sources(ctx, call):
                name = src.value
                where = _where(call.scope)
                if kind in ("numpy", "python"):
                    msg = (
                        f"source '{name}' of '{call.receiver}.{call.method}()' {where} is "
                        f"{_kind_text(kind)}, not a tensor the tape can watch: the call fails "
                        f"(AttributeError); convert it with tf.constant and call "
                        f"`{call.receiver}.watch({name})` in the tape's block"
                    )
                else:
                    msg = (
                        f"source '{name}' of '{call.receiver}.{call.method}()' {where} is "
                        f"{_kind_text(kind)} that tape '{call.receiver}' never watches: its "
                        f"gradient is {_outcome(ctx, call)}; call `{call.receiver}.watch({name})` "
                        f"at the start of the tape's block (or make it a tf.Variable)"
                    )
                ctx.report(src, msg, subject=_subject(call.scope))


class NumpyBreaksTape(Rule):
    code = "TGL304"
    name = "numpy-breaks-tape"
    severity = "warning"
    default = "preview"
    triggers = TRIGGERS
    summary = "The gradient target is computed through `.numpy()`, `float()` or NumPy: the tape cannot see it."
    what = (
        "Finds a `tape.gradient` target computed, inside the tape's block, only from values that "
        "left TensorFlow: `.numpy()`, `float()`/`int()`, NumPy calls (and literals or TensorFlow "
        "ops applied to those). Every path from the sources is cut."
    )
    why = (
        "The tape records TensorFlow operations on tensors. Converting to NumPy or a Python "
        "number leaves the tape: whatever is computed from the result is a new constant with no "
        "history, so the gradient is None (or the call fails when the target is not a tensor)."
    )
    tensorflow_error = (
        "None for a tensor target built from NumPy values; `AttributeError` when the target "
        "itself is a NumPy value or Python number."
    )
    example = """
import numpy as np
with tf.GradientTape() as tape:
    pred = w * 3.0
    loss = tf.reduce_mean(np.square(pred.numpy() - 1.0))
g = tape.gradient(loss, w)  # None
"""
    instead = """
with tf.GradientTape() as tape:
    pred = w * 3.0
    loss = tf.reduce_mean(tf.square(pred - 1.0))
g = tape.gradient(loss, w)
"""
    valid = (
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    pred = w * 3.0\n    loss = tf.reduce_mean(tf.square(pred - 1.0))\n"
              "g = tape.gradient(loss, w)\n"),
        # part of the target is still a tensor on the tape
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    pred = w * 3.0\n    loss = pred + float(pred.numpy())\n"
              "g = tape.gradient(loss, w)\n"),
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    pred = w * 3.0\n    print(pred.numpy())\n    loss = pred * 2.0\n"
              "g = tape.gradient(loss, w)\n"),
    )
    invalid = (
        Invalid(
            _HEADER + "import numpy as np\nwith tf.GradientTape() as tape:\n    pred = w * 3.0\n"
            "    loss = tf.reduce_mean(np.square(pred.numpy() - 1.0))\ng = tape.gradient(loss, w)\n",
            line=7,
            message_contains=("'loss'", "np.square"),
        ),
        Invalid(
            _HEADER + "def f():\n    with tf.GradientTape() as tape:\n        loss = float(w * w)\n"
            "    return tape.gradient(loss, w)\n",
            line=6,
            message_contains=("float(",),
        ),
    )

    def check(self, ctx) -> None:
        for call in tape_calls(ctx):
            found = numpy_cut_target(ctx, call)
            if found is None:
                continue
            breaker, target = found
            what = _describe(ctx, breaker)
            ctx.report(
                breaker,
                f"{what} {_where(call.scope)} takes the value out of TensorFlow inside the block "
                f"of tape '{call.receiver}' and the target {_describe(ctx, target)} of "
                f"'{call.receiver}.{call.method}()' is computed only from such values: the tape "
                f"records nothing, so the gradient is None; keep the computation in TensorFlow ops",
                subject=_subject(call.scope),
            )


class StopGradientOnPath(Rule):
    code = "TGL305"
    name = "stop-gradient-on-path"
    severity = "warning"
    triggers = TRIGGERS
    summary = "The target or a source of `tape.gradient` is a `tf.stop_gradient` result: the gradient is None."
    what = (
        "Finds a `tape.gradient` whose target is directly `tf.stop_gradient(...)` (or a name only "
        "ever bound to one in the function), or whose source is such a name that the tape does "
        "not watch."
    )
    why = (
        "`tf.stop_gradient` has no gradient: nothing flows back through it, so the target "
        "does not depend on any source as far as the tape is concerned, and a stop-gradient "
        "tensor used as a source was never recorded."
    )
    tensorflow_error = "None: `tape.gradient(...)` silently returns None."
    example = """
with tf.GradientTape() as tape:
    y = tf.stop_gradient(w * w)
g = tape.gradient(y, w)  # None
"""
    instead = """
with tf.GradientTape() as tape:
    y = w * w
g = tape.gradient(y, w)
"""
    valid = (
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    y = w * tf.stop_gradient(w)\ng = tape.gradient(y, w)\n"),
        Valid(_HEADER + "s = tf.stop_gradient(w * 1.0)\nwith tf.GradientTape() as tape:\n    tape.watch(s)\n"
              "    y = s * s\ng = tape.gradient(y, s)\n"),
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    y = tf.stop_gradient(w * w)\ng = tape.gradient(y, y)\n"),
        Valid(_HEADER + "def f(flag):\n    with tf.GradientTape() as tape:\n        y = tf.stop_gradient(w * w)\n"
              "        y = y + w\n    return tape.gradient(y, w)\n"),
    )
    invalid = (
        Invalid(
            _HEADER + "with tf.GradientTape() as tape:\n    y = tf.stop_gradient(w * w)\ng = tape.gradient(y, w)\n",
            line=6,
            message_contains=("target 'y'", "stop_gradient"),
        ),
        Invalid(
            _HEADER + "with tf.GradientTape() as tape:\n    y = w * w\ng = tape.gradient(tf.stop_gradient(y), w)\n",
            line=6,
        ),
        Invalid(
            _HEADER + "def f():\n    with tf.GradientTape() as tape:\n        s = tf.stop_gradient(w * 2.0)\n"
            "        y = s * s\n    return tape.gradient(y, s)\n",
            line=8,
            message_contains=("source 's'", "'f'"),
        ),
    )

    def check(self, ctx) -> None:
        for call in tape_calls(ctx):
            for arg, role in stop_gradient_args(ctx, call):
                if role == "target":
                    msg = (
                        f"target {_describe(ctx, arg)} of '{call.receiver}.{call.method}()' "
                        f"{_where(call.scope)} is a tf.stop_gradient result: no gradient flows "
                        f"back through it, so the gradient is {_outcome(ctx, call)}; differentiate "
                        f"the value before tf.stop_gradient"
                    )
                else:
                    msg = (
                        f"source {_describe(ctx, arg)} of '{call.receiver}.{call.method}()' "
                        f"{_where(call.scope)} is a tf.stop_gradient result the tape never "
                        f"watches: its gradient is {_outcome(ctx, call)}; differentiate with "
                        f"respect to the tensor before tf.stop_gradient, or "
                        f"`{call.receiver}.watch({ctx.code_for(arg)})` it"
                    )
                ctx.report(arg, msg, subject=_subject(call.scope))


class UnconnectedGradientsZero(Rule):
    code = "TGL306"
    name = "unconnected-gradients-zero"
    severity = "warning"
    default = "preview"
    triggers = TRIGGERS
    summary = "`unconnected_gradients=ZERO` turns a certainly broken gradient path into silent zeros."
    what = (
        "Finds `unconnected_gradients=tf.UnconnectedGradients.ZERO` (or `'zero'`) on a "
        "`gradient`/`jacobian` call where a source is certainly unconnected: unwatched, a "
        "`tf.stop_gradient` result, an integer tensor, or a target computed through NumPy."
    )
    why = (
        "With the default `NONE`, a broken path shows up as a `None` gradient. `ZERO` replaces "
        "it with zeros: training runs, the affected weights never change, and nothing says why."
    )
    tensorflow_error = "None: the gradient is silently all zeros."
    example = """
x = tf.constant(3.0)
with tf.GradientTape() as tape:
    y = x * x
g = tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)  # 0.0
"""
    instead = """
x = tf.constant(3.0)
with tf.GradientTape() as tape:
    tape.watch(x)
    y = x * x
g = tape.gradient(y, x)  # 6.0
"""
    valid = (
        Valid(_HEADER + "with tf.GradientTape() as tape:\n    y = w * w\n"
              "g = tape.gradient(y, w, unconnected_gradients=tf.UnconnectedGradients.ZERO)\n"),
        Valid(_HEADER + "x = tf.constant(3.0)\nwith tf.GradientTape() as tape:\n    tape.watch(x)\n    y = x * x\n"
              "g = tape.gradient(y, x, unconnected_gradients='zero')\n"),
    )
    invalid = (
        Invalid(
            _HEADER + "x = tf.constant(3.0)\nwith tf.GradientTape() as tape:\n    y = x * x\n"
            "g = tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)\n",
            line=7,
            message_contains=("'x' is not watched", "zero"),
        ),
        Invalid(
            _HEADER + "with tf.GradientTape() as tape:\n    y = tf.stop_gradient(w * w)\n"
            "g = tape.jacobian(y, w, 'zero')\n",
            line=6,
        ),
    )

    def check(self, ctx) -> None:
        for call in tape_calls(ctx):
            arg = is_zero_unconnected(ctx, call)
            if arg is None:
                continue
            reasons = broken_paths(ctx, call)
            if not reasons:
                continue
            ctx.report(
                arg,
                f"unconnected_gradients=ZERO on '{call.receiver}.{call.method}()' "
                f"{_where(call.scope)} hides a broken path ({'; '.join(reasons)}): the gradient is "
                f"silently zero; fix the path and keep the default (None) so a missing gradient shows",
                subject=_subject(call.scope),
            )


class IntegerSource(Rule):
    code = "TGL307"
    name = "integer-source"
    severity = "warning"
    triggers = TRIGGERS
    summary = "A source of `tape.gradient` is an integer tensor: its gradient is None."
    what = (
        "Finds a source of `tape.gradient`/`jacobian` that is a name bound in the same function "
        "only to an integer tensor: `tf.constant` of integer literals without a float dtype, a "
        "constructor with `dtype=tf.int32`/`tf.int64`/..., `tf.cast` to an integer type, or "
        "`tf.range` of integers."
    )
    why = (
        "Gradients are defined only for floating-point (and complex) tensors. TensorFlow does not "
        "raise: `watch` logs a warning and the gradient is None."
    )
    tensorflow_error = (
        "None, and the log line `The dtype of the watched tensor must be floating (e.g. "
        "tf.float32), got tf.int32`."
    )
    example = """
x = tf.constant([1, 2, 3])
with tf.GradientTape() as tape:
    tape.watch(x)
    y = tf.reduce_sum(x * x)
g = tape.gradient(y, x)  # None
"""
    instead = """
x = tf.constant([1.0, 2.0, 3.0])
with tf.GradientTape() as tape:
    tape.watch(x)
    y = tf.reduce_sum(x * x)
g = tape.gradient(y, x)
"""
    valid = (
        Valid(_HEADER + "x = tf.constant([1, 2], dtype=tf.float32)\nwith tf.GradientTape() as tape:\n"
              "    tape.watch(x)\n    y = x * x\ng = tape.gradient(y, x)\n"),
        Valid(_HEADER + "x = tf.constant([1.0, 2.0])\nwith tf.GradientTape() as tape:\n"
              "    tape.watch(x)\n    y = x * x\ng = tape.gradient(y, x)\n"),
        Valid(_HEADER + "def f(dt):\n    x = tf.constant([1, 2], dtype=dt)\n    with tf.GradientTape() as tape:\n"
              "        tape.watch(x)\n        y = x * x\n    return tape.gradient(y, x)\n"),
        Valid(_HEADER + "x = tf.range(3.0)\nwith tf.GradientTape() as tape:\n    tape.watch(x)\n    y = x * x\ng = tape.gradient(y, x)\n"),
    )
    invalid = (
        Invalid(
            _HEADER + "x = tf.constant([1, 2, 3])\nwith tf.GradientTape() as tape:\n    tape.watch(x)\n"
            "    y = tf.reduce_sum(x * x)\ng = tape.gradient(y, x)\n",
            line=8,
            message_contains=("'x'", "integer", "float"),
        ),
        Invalid(
            _HEADER + "def f():\n    idx = tf.range(5)\n    n = tf.zeros((3,), dtype=tf.int64)\n"
            "    with tf.GradientTape() as tape:\n        tape.watch([idx, n])\n        y = tf.reduce_sum(idx) + tf.reduce_sum(n)\n"
            "    return tape.gradient(y, [idx, n])\n",
            lines=[10, 10],
        ),
    )

    def check(self, ctx) -> None:
        for call in tape_calls(ctx):
            for src, how in integer_sources(ctx, call):
                ctx.report(
                    src,
                    f"source '{src.value}' of '{call.receiver}.{call.method}()' "
                    f"{_where(call.scope)} is an integer tensor ({how}): integer tensors get no "
                    f"gradient, so it is {_outcome(ctx, call)}; make it a float tensor "
                    f"(e.g. dtype=tf.float32)",
                    subject=_subject(call.scope),
                )
