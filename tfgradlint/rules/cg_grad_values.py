"""TGL108, TGL114, TGL115: what a ``tf.custom_gradient`` grad fn returns, value by value.

- TGL108: the upstream gradient is never used (the chain rule is broken).
- TGL114: a gradient is a NumPy value, a ``.numpy()`` value or a non-zero Python number.
- TGL115 (preview): the upstream parameter is rebound and then returned as an input's gradient.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from tfgradlint import names
from tfgradlint.gradients import (
    Resolver,
    body_of,
    cg_arity,
    grad_returns,
    is_numpy_call,
    is_numpy_method,
    name_loads,
    number_value,
    walk,
)
from tfgradlint.index import (
    UNKNOWN,
    FunctionInfo,
    GradFn,
    ModuleIndex,
    Scope,
)
from tfgradlint.rules.base import Invalid, Rule, Valid
from tfgradlint.rules.cg_arity import fn_label

_ZERO_FUNCS = frozenset(
    {
        "tensorflow.zeros_like",
        "tensorflow.zeros",
        "tensorflow.fill",
        "tensorflow.constant",
        "keras.ops.zeros_like",
        "keras.ops.zeros",
        "numpy.zeros_like",
        "numpy.zeros",
    }
)


def _zero_like(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> bool:
    """``None``, ``0``, ``tf.zeros_like(...)``, ``tf.zeros(...)``, ``[None] * n``, or a
    structure / name made only of those."""
    if depth > 6:
        return False
    if isinstance(expr, cst.Name):
        if expr.value == "None":
            return True
        s, values = index.lookup(expr.value, scope)
        if s is None or expr.value in s.imports or not values or any(v is UNKNOWN for v in values):
            return False
        if isinstance(s, FunctionInfo) and expr.value in s.param_names():
            return False
        return all(_zero_like(index, v, s, depth + 1) for v in values)
    value = number_value(expr)
    if value is not None:
        return value == 0
    if isinstance(expr, (cst.Tuple, cst.List)):
        return all(
            not isinstance(e, cst.StarredElement) and _zero_like(index, e.value, scope, depth + 1)
            for e in expr.elements
        )
    if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
        return _zero_like(index, expr.elt, scope, depth + 1)
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
        # [None] * n, 0.0 * x
        for side in (expr.left, expr.right):
            if isinstance(side, (cst.List, cst.Tuple)):
                return _zero_like(index, side, scope, depth + 1)
        return _zero_like(index, expr.left, scope, depth + 1) or _zero_like(index, expr.right, scope, depth + 1)
    if isinstance(expr, cst.IfExp):
        return _zero_like(index, expr.body, scope, depth + 1) and _zero_like(index, expr.orelse, scope, depth + 1)
    if isinstance(expr, cst.Call):
        q = index.qualified(expr.func, scope)
        if q not in _ZERO_FUNCS:
            return False
        if q in ("tensorflow.fill", "tensorflow.constant"):
            arg = expr.args[1] if q == "tensorflow.fill" and len(expr.args) > 1 else (
                expr.args[0] if q == "tensorflow.constant" and expr.args else None
            )
            v = number_value(arg.value) if arg is not None else None
            return v == 0 if v is not None else False
        return True
    return False


def _uses_tape_or_gradients(index: ModuleIndex, grad: GradFn) -> bool:
    for n in walk(body_of(grad.info)) if not grad.info.is_lambda else walk(grad.node):
        if isinstance(n, cst.Call):
            q = index.qualified(n.func, grad.info)
            if q in ("tensorflow.gradients",) or q in names.GRADIENT_TAPE:
                return True
    return False


def _reads_upstream(grad: GradFn, wanted: set[str]) -> bool:
    """The grad fn reads one of its upstream parameters before an unconditional top-level
    statement rebinds it (``dy = tf.ones_like(x)`` discards the upstream)."""
    if grad.info.is_lambda:
        return any(n.value in wanted for n in name_loads(grad.node.body))  # type: ignore[union-attr]
    live = set(wanted)
    body = body_of(grad.info)
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    for stmt in statements:
        if any(n.value in live for n in name_loads(stmt)):
            reads = {n.value for n in name_loads(stmt)}
            killed = _killed_by(stmt, live)
            if (reads - killed) & live or any(_reads_value(stmt, k) for k in killed):
                return True
        live -= _killed_by(stmt, live)
        if not live:
            return False
    return False


def _killed_by(stmt: cst.CSTNode, names_: set[str]) -> set[str]:
    """Names that a simple top-level ``name = value`` statement rebinds."""
    out: set[str] = set()
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                for t in small.targets:
                    if isinstance(t.target, cst.Name) and t.target.value in names_:
                        out.add(t.target.value)
    return out


def _reads_value(stmt: cst.CSTNode, name: str) -> bool:
    """``stmt`` (a simple assignment line) reads ``name`` on a right-hand side."""
    assert isinstance(stmt, cst.SimpleStatementLine)
    for small in stmt.body:
        if isinstance(small, cst.Assign) and any(n.value == name for n in name_loads(small.value)):
            return True
        if not isinstance(small, cst.Assign) and any(n.value == name for n in name_loads(small)):
            return True
    return False


class UpstreamGradientIgnored(Rule):
    code = "TGL108"
    name = "upstream-gradient-ignored"
    severity = "warning"
    summary = "The grad fn never uses its upstream gradient: the chain rule is broken."
    what = (
        "Finds a `tf.custom_gradient` grad fn that uses none of its upstream parameters yet "
        "returns a gradient that is not `None`, `0` or `tf.zeros_like(...)`; also when it "
        "recomputes the gradient with `tf.gradients(...)` or a `GradientTape` instead of using "
        "the upstream."
    )
    why = (
        "The gradient of an input is the upstream gradient times the local derivative. Without "
        "the upstream, the result is right only when the function is the last operation before "
        "the loss: a loss of `5 * f(x)` gets the gradient of `f(x)`, and a `reduce_mean` after "
        "it scales nothing."
    )
    tensorflow_error = "None: the gradients are silently wrong."
    example = """
import tensorflow as tf

@tf.custom_gradient
def square(x):
    def grad(dy):
        return 2.0 * x
    return x * x, grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def square(x):
    def grad(dy):
        return dy * 2.0 * x
    return x * x, grad
"""
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        return dy * 2.0 * x\n    return x * x, grad\n"),
        # deliberate stop-gradient
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        return tf.zeros_like(x)\n    return tf.identity(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, n):\n    def grad(dy):\n"
              "        return None, None\n    return tf.identity(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(_):\n"
              "        return 0.0\n    return tf.identity(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(*dys):\n"
              "        return tf.ones_like(x)\n    return tf.identity(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        return tf.gradients(x * x, x, grad_ys=dy)[0]\n    return x * x, grad\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef square(x):\n    def grad(dy):\n"
            "        return 2.0 * x\n    return x * x, grad\n",
            line=4,
            message_contains=("'grad' of 'square' never uses its upstream gradient 'dy'", "chain rule"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    y = x * x\n    def grad(upstream):\n"
            "        with tf.GradientTape() as tape:\n            tape.watch(x)\n            z = x * x\n"
            "        return tape.gradient(z, x)\n    return y, grad\n",
            line=5,
            message_contains=("recomputes the gradient",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    return tf.identity(x), lambda dy: tf.ones_like(x)\n",
            line=4,
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            for grad in cg.grad_fns():
                info = grad.info
                if info.has_star_args():
                    continue
                ups = grad.upstream_params()
                if not ups:
                    continue
                if _reads_upstream(grad, {p.name.value for p in ups}):
                    continue
                values = [r.value for r in grad_returns(index, grad)]
                if not values or all(v is None or _zero_like(index, v, info) for v in values):
                    continue
                first = ups[0].name.value
                label = fn_label(grad)
                upstream = f"upstream gradient '{first}'" if len(ups) == 1 else (
                    "upstream gradients " + ", ".join(f"'{p.name.value}'" for p in ups)
                )
                if _uses_tape_or_gradients(index, grad):
                    how = (
                        f"recomputes the gradient with tf.gradients/a GradientTape without its {upstream}: "
                        f"the chain rule is broken; pass '{first}' as grad_ys/output_gradients"
                    )
                else:
                    how = (
                        f"returns a gradient: the chain rule is broken (a loss of 5 * {cg.name}(...) gets "
                        f"the gradient of {cg.name}(...)); multiply the local derivative by '{first}'"
                    )
                ctx.report(
                    ups[0].name,
                    f"{label} of '{cg.name}' never uses its {upstream} but {how}",
                    subject=cg.name,
                )


def _numpy_value(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope) -> Optional[tuple[str, cst.CSTNode]]:
    """A NumPy call, a ``.numpy()`` value, or arithmetic of one with Python numbers."""
    if is_numpy_method(expr):
        return "a .numpy() value", expr
    if is_numpy_call(index, expr, scope):
        return "a NumPy value", expr
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        return _numpy_value(index, expr.expression, scope)
    if isinstance(expr, cst.BinaryOperation):
        left, right = expr.left, expr.right
        if number_value(right) is not None:
            return _numpy_value(index, left, scope)
        if number_value(left) is not None:
            return _numpy_value(index, right, scope)
    return None


def _non_tensor(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope) -> Optional[tuple[str, cst.CSTNode]]:
    """(what it is, the node that makes it) when ``expr`` is certainly a NumPy value or a
    non-zero Python number; a name is followed when it is bound once."""
    value = number_value(expr)
    if value is not None:
        return (f"the Python number {index.module.code_for_node(expr)}", expr) if value != 0 else None
    found = _numpy_value(index, expr, scope)
    if found is not None:
        return found
    if isinstance(expr, cst.Name) and expr.value not in ("None", "True", "False"):
        s, values = index.lookup(expr.value, scope)
        if s is None or expr.value in s.imports or len(values) != 1 or values[0] is UNKNOWN:
            return None
        if isinstance(s, FunctionInfo) and expr.value in s.param_names():
            return None
        return _numpy_value(index, values[0], s)  # a named number: too often a deliberate scalar
    return None


class NonTensorGradient(Rule):
    code = "TGL114"
    name = "non-tensor-gradient"
    severity = "warning"
    summary = "The grad fn returns a NumPy value or a Python number as a gradient."
    what = (
        "Finds a `tf.custom_gradient` grad fn that returns, for some input, a NumPy call "
        "result, a `.numpy()` value or a non-zero numeric literal."
    )
    why = (
        "`tape.gradient` passes the value through unchanged: the caller gets a Python float (for "
        "a 3-element input) or a NumPy array instead of a tensor of the input's shape, and the "
        "optimizer fails later, or silently broadcasts. `.numpy()` also fails under "
        "`tf.function`."
    )
    tensorflow_error = (
        "None at the custom gradient; later `optimizer.apply_gradients` errors, or "
        "`'SymbolicTensor' object has no attribute 'numpy'` under `tf.function`."
    )
    example = """
import numpy as np
import tensorflow as tf

@tf.custom_gradient
def hard_round(x):
    def grad(dy):
        return np.ones(3)
    return tf.round(x), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def hard_round(x):
    def grad(dy):
        return dy  # straight-through: a tensor shaped like x
    return tf.round(x), grad
"""
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, n):\n    def grad(dy):\n"
              "        return dy, None\n    return x * n, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, n):\n    def grad(dy):\n"
              "        return dy * n, 0.0\n    return x * n, grad\n"),
        Valid("import numpy as np\nimport tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        return dy * np.pi\n    return x * np.pi, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        return tf.convert_to_tensor(dy.numpy())\n    return tf.identity(x), grad\n"),
    )
    invalid = (
        Invalid(
            "import numpy as np\nimport tensorflow as tf\n@tf.custom_gradient\ndef hard_round(x):\n"
            "    def grad(dy):\n        return np.ones(3)\n    return tf.round(x), grad\n",
            line=6,
            message_contains=("'grad' of 'hard_round' returns a NumPy value as the gradient of 'x'",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
            "        return dy * y, 1.0\n    return x * y, grad\n",
            line=5,
            message_contains=("the Python number 1.0", "gradient of 'y'"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
            "        g = dy.numpy()\n        return g\n    return tf.identity(x), grad\n",
            line=6,
            message_contains=("a .numpy() value",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        resolver = Resolver(index)
        claimed = {id(r.node) for r in ctx.reported("TGL111")}
        for cg in index.cg_functions:
            arity = cg_arity(index, cg)
            for grad in cg.grad_fns():
                for ret in grad_returns(index, grad):
                    expr = ret.inputs_expr
                    if expr is None:
                        continue
                    leaves = resolver.leaves(expr, ret.scope) if isinstance(expr, (cst.Tuple, cst.List)) else [expr]
                    if leaves is None:
                        continue
                    for i, leaf in enumerate(leaves):
                        found = _non_tensor(index, leaf, ret.scope)
                        if found is None:
                            continue
                        what, maker = found
                        if claimed and any(id(n) in claimed for n in (leaf, maker, *walk(maker))):
                            continue  # TGL111 already reports this NumPy use
                        of = ""
                        if arity is not None and len(leaves) == arity.total and i < arity.total:
                            of = f" as the gradient of '{arity.names[i]}'"
                        ctx.report(
                            leaf,
                            f"{fn_label(grad)} of '{cg.name}' returns {what}{of}: tape.gradient passes "
                            f"it through unchanged, not as a tensor shaped like the input; return a "
                            f"tensor (tf.convert_to_tensor, or tf.ones_like(x) * value)",
                            subject=cg.name,
                        )


_NORMALISING = frozenset(
    {
        "tensorflow.convert_to_tensor",
        "tensorflow.convert_to_tensor_v2",
        "tensorflow.convert_to_tensor_v2_with_dispatch",
        "tensorflow.cast",
        "tensorflow.identity",
        "tensorflow.ensure_shape",
        "tensorflow.reshape",
        "tensorflow.squeeze",
        "tensorflow.expand_dims",
        "tensorflow.broadcast_to",
        "tensorflow.stop_gradient",
        "keras.ops.convert_to_tensor",
        "keras.ops.cast",
        "keras.ops.reshape",
    }
)


def _normalising(index: ModuleIndex, value: Optional[cst.BaseExpression], name: str, scope: Scope) -> bool:
    """``dy = tf.convert_to_tensor(dy)``, ``dy = tf.cast(dy, ...)``, ...: same meaning."""
    if not isinstance(value, cst.Call) or not value.args:
        return False
    if index.qualified(value.func, scope) not in _NORMALISING:
        return False
    first = value.args[0].value
    return isinstance(first, cst.Name) and first.value == name


def _rebinds(index: ModuleIndex, grad: GradFn, name: str) -> list[cst.CSTNode]:
    """Statements of the grad fn's own body that rebind ``name`` with a new meaning."""
    out: list[cst.CSTNode] = []
    for n in walk(body_of(grad.info), nested=False):
        if isinstance(n, cst.Assign):
            for t in n.targets:
                if _binds(t.target, name):
                    if not _normalising(index, n.value, name, grad.info):
                        out.append(n)
                    break
        elif isinstance(n, cst.AugAssign) and isinstance(n.target, cst.Name) and n.target.value == name:
            out.append(n)
        elif isinstance(n, cst.AnnAssign) and _binds(n.target, name) and n.value is not None:
            if not _normalising(index, n.value, name, grad.info):
                out.append(n)
    return out


def _binds(target: cst.BaseExpression, name: str) -> bool:
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_binds(e.value, name) for e in target.elements)
    if isinstance(target, cst.StarredElement):
        return _binds(target.value, name)
    return False


class UpstreamGradientReassigned(Rule):
    code = "TGL115"
    name = "upstream-gradient-reassigned"
    severity = "warning"
    default = "preview"
    summary = "The grad fn rebinds its upstream parameter and returns it as an input's gradient."
    what = (
        "Finds a grad fn that assigns a new value to its upstream parameter (`dy = tf.matmul(x, "
        "dy, ...)`) and then returns that name as the gradient of an input, while the upstream "
        "is also read elsewhere in the grad fn. The finding is anchored at the rebinding "
        "assignment: that line changes what the name means and is where a new name belongs; "
        "the `return` looks right on its own. Normalising rebinds that keep the meaning "
        "(`dy = tf.convert_to_tensor(dy)`, `tf.cast`, `tf.reshape`, ...) are not reported."
    )
    why = (
        "One name then means two things: the upstream gradient before the line, an input's "
        "gradient after it. Moving a line that reads it (or adding one below the rebind) "
        "silently computes with the wrong value, as in the seed document's `modified_matmul`."
    )
    tensorflow_error = "None: reordered code silently computes wrong gradients."
    example = """
import tensorflow as tf

@tf.custom_gradient
def modified_matmul(x, y):
    def grad(dy):
        dx = tf.matmul(dy, y, transpose_b=True) * 0.5
        dy = tf.matmul(x, dy, transpose_a=True)
        return dx, dy
    return tf.matmul(x, y), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def modified_matmul(x, y):
    def grad(upstream):
        grad_x = tf.matmul(upstream, y, transpose_b=True) * 0.5
        grad_y = tf.matmul(x, upstream, transpose_a=True)
        return grad_x, grad_y
    return tf.matmul(x, y), grad
"""
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        dy = tf.convert_to_tensor(dy)\n        return dy * 2.0\n    return x * 2.0, grad\n", preview=True),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        dy = dy * 2.0\n        return dy\n    return x * 2.0, grad\n", preview=True),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
              "        dy = tf.cast(dy, tf.float32)\n        return dy * y, dy * x\n    return x * y, grad\n",
              preview=True),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
              "        dx = dy * y\n        g = tf.matmul(x, dy)\n        return dx, g\n    return x * y, grad\n",
              preview=True),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\n@tf.custom_gradient\ndef modified_matmul(x, y):\n    def grad(dy):\n"
            "        dx = tf.matmul(dy, y, transpose_b=True) * 0.5\n"
            "        dy = tf.matmul(x, dy, transpose_a=True)\n        return dx, dy\n"
            "    return tf.matmul(x, y), grad\n",
            line=7,
            message_contains=("rebinds its upstream gradient 'dy'", "gradient of 'y'", "'grad_y'"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
            "        dx = dy * y\n        dy *= x\n        return dx, dy\n    return x * y, grad\n",
            line=6,
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        resolver = Resolver(index)
        for cg in index.cg_functions:
            arity = cg_arity(index, cg)
            for grad in cg.grad_fns():
                if grad.info.is_lambda:
                    continue
                for p in grad.upstream_params():
                    name = p.name.value
                    rebinds = _rebinds(index, grad, name)
                    if not rebinds:
                        continue
                    returned = self._returned_as(index, resolver, grad, name, arity)
                    if returned is None:
                        continue
                    _, leaf, input_name = returned
                    if not self._read_elsewhere(grad, name, rebinds, leaf):
                        continue
                    target = f"'grad_{input_name}'" if input_name else "'grad_<input>'"
                    of = f"the gradient of '{input_name}'" if input_name else "an input's gradient"
                    ctx.report(
                        rebinds[-1],
                        f"grad fn '{grad.name}' of '{cg.name}' rebinds its upstream gradient '{name}' and "
                        f"returns it as {of}: the name means two things, and moving a line that "
                        f"reads it silently uses the wrong one; bind the new value to a new name "
                        f"such as {target}",
                        subject=cg.name,
                    )

    @staticmethod
    def _returned_as(index, resolver, grad, name, arity):
        for ret in grad_returns(index, grad):
            expr = ret.inputs_expr
            if expr is None:
                continue
            leaves = resolver.leaves(expr, ret.scope) if isinstance(expr, (cst.Tuple, cst.List)) else [expr]
            if not leaves:
                continue
            for i, leaf in enumerate(leaves):
                if isinstance(leaf, cst.Name) and leaf.value == name:
                    input_name = None
                    if arity is not None and len(leaves) == arity.total:
                        input_name = arity.names[i]
                    return ret.anchor, leaf, input_name
        return None

    @staticmethod
    def _read_elsewhere(grad: GradFn, name: str, rebinds: list[cst.CSTNode], leaf: cst.Name) -> bool:
        """The upstream is read outside the rebinding statements and the returned leaf."""
        skip: set[int] = {id(leaf)}
        for stmt in rebinds:
            for n in name_loads(stmt):
                skip.add(id(n))
        return any(n.value == name and id(n) not in skip for n in name_loads(body_of(grad.info)))
