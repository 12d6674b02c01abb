"""TGL101, TGL105, TGL106, TGL107, TGL113: the shape of the ``tf.custom_gradient`` contract.

A cg function returns ``(output, grad_fn)``; TensorFlow calls ``grad_fn`` with one upstream
gradient per (flattened) output and expects one gradient per (flattened) positional input.
These rules check the counts that the code states for certain: tuple/list literals, single
tensors (``-dy * l``, ``tf.matmul(...)``), parameter lists. Anything built at run time
(``tuple(gs)``, ``helper(...)``, ``*gs``, ``*args``, list arguments) is unknown and silent.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from tfgradlint.analysis import cg_target
from tfgradlint.context import FixSpec
from tfgradlint.gradients import (
    Resolver,
    cg_arity,
    cg_of,
    decorated_below,
    grad_returns,
    plural,
    quote_list,
    sequence_inputs,
    upstream_arity,
)
from tfgradlint.index import CgFunction, GradFn
from tfgradlint.rules.base import Invalid, Rule, Valid


def grad_label(grad: GradFn) -> str:
    """TGL101's wording: ``grad of 'flip'``."""
    return "the grad lambda" if grad.info.is_lambda else grad.name


def fn_label(grad: GradFn) -> str:
    return "the grad lambda" if grad.info.is_lambda else f"grad fn '{grad.name}'"


def _call_site_doubts(ctx, cg: CgFunction) -> bool:
    """A call in this module passes a sequence, unpacks arguments, or passes an input by
    keyword: the number of inputs TensorFlow counts then differs from the signature."""
    required = {p.name.value for p in cg.inputs(ctx.index) if p.default is None}
    for site in ctx.index.calls:
        call = site.node
        if not call.args:
            continue
        target = cg_target(ctx, call, site.scope)
        if target is None or target.local is not cg:
            continue
        for a in call.args:
            if a.star:
                return True
            if a.keyword is not None and a.keyword.value in required:
                return True  # TGL109's finding; the count TensorFlow sees differs
            if isinstance(a.value, (cst.List, cst.Tuple, cst.Dict, cst.ListComp, cst.GeneratorExp)):
                return True
    return False


def _append_none_fix(expr: cst.BaseExpression, missing: list[str], k: int) -> Optional[FixSpec]:
    """``(expr, None)`` / ``(a, b, None)``: one ``None`` per missing trailing input."""
    nones = [cst.Element(cst.Name("None")) for _ in missing]
    if isinstance(expr, (cst.Tuple, cst.List)):
        if any(isinstance(e.value, (cst.Tuple, cst.List)) for e in expr.elements):
            return None  # nested literal: where the missing ones go is not obvious
        elements = list(expr.elements)
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        if elements:
            last = elements[-1]
            elements[-1] = last.with_changes(comma=comma)
        new_elements = elements + [n.with_changes(comma=comma) for n in nones[:-1]] + [nones[-1]]
        if isinstance(expr, cst.Tuple) and not expr.lpar and not elements:
            return None
        new: cst.BaseExpression = expr.with_changes(elements=new_elements)
        if isinstance(expr, cst.Tuple) and not expr.lpar and not new_elements:
            return None
    else:
        if isinstance(expr, (cst.NamedExpr, cst.Lambda, cst.Yield)):
            return None
        inner = expr.with_changes(lpar=[], rpar=[]) if getattr(expr, "lpar", None) else expr
        new = cst.Tuple(
            [cst.Element(inner, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))]
            + [n.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))) for n in nones[:-1]]
            + [nones[-1]],
        )
    return FixSpec(
        "unsafe",
        f"Return None for {quote_list(missing)} (check that {'it needs' if len(missing) == 1 else 'they need'} no gradient)",
        [(expr, new)],
    )


class GradArityMismatch(Rule):
    code = "TGL101"
    name = "grad-arity-mismatch"
    severity = "error"
    summary = "The grad fn returns a different number of gradients than the function has inputs."
    what = (
        "Finds a `return` of a `tf.custom_gradient` grad fn whose number of gradients is known "
        "(a tuple/list literal, flattened; or one tensor: arithmetic on the upstream gradient, a "
        "name bound to such a value, a call of a TensorFlow op that returns one tensor, `None`) "
        "and differs from the number of positional inputs of the decorated function (less a "
        "bound `self`/`cls`; a range when inputs have defaults). When the grad fn accepts "
        "`variables`, the first item of `(input_grads, variable_grads)` is counted; when the grad "
        "fn is itself a custom gradient, the first item of its `(gradient, grad_grad_fn)`. "
        "Silent when the count is unknown: `tuple(gs)`, `helper(...)`, `(*gs, None)`, `*args`, "
        "an input used as a sequence (a list argument flattens to many inputs), another "
        "decorator under `@tf.custom_gradient`, or a call in the module that passes an input by "
        "keyword or unpacks its arguments."
    )
    why = (
        "TensorFlow needs exactly one gradient per positional input, Python numbers and strings "
        "included (`None` for inputs that need none). A gradient-reversal `flip(x, l)` returning "
        "only `-dy * l` fails the first time a gradient is computed, typically deep inside "
        "training."
    )
    tensorflow_error = (
        "Eager: `ValueError: custom_gradient function expected to return N gradients, but "
        "returned M instead`. Under `tf.function`: a C++ `InternalError ... returned too few "
        "gradients. Expected A but received B`, whose numbers include outputs and variables (and "
        "which says \"too few\" even when there are too many)."
    )
    example = """
import tensorflow as tf

@tf.custom_gradient
def flip(x, l):
    def grad(dy):
        return -dy * l
    return tf.identity(x), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def flip(x, l):
    def grad(dy):
        return -dy * l, None  # one gradient per input; None for the constant l
    return tf.identity(x), grad
"""
    fix_safety = (
        "Unsafe fix when fewer gradients than inputs are returned: `None` is appended for each "
        "missing trailing input. Check that those inputs need no gradient (a float tensor input "
        "needs a real one) and that the returned gradients are in input order."
    )
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef flip(x, l):\n    def grad(dy):\n"
              "        return -dy * l, None\n    return tf.identity(x), grad\n"),
        # tuple(gs), helper(...), a starred element, *args: the count is unknown
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
              "        gs = [dy, dy]\n        return tuple(gs)\n    return x * y, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
              "        return helper(dy)\n    return x * y, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y, z):\n    def grad(dy):\n"
              "        gs = helper(dy)\n        return (*gs, None)\n    return x * y, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(*args):\n    def grad(dy):\n"
              "        return dy\n    return args[0], grad\n"),
        # a list input flattens to many inputs
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(xs):\n    def grad(dy):\n"
              "        return dy, dy\n    return tf.add_n(xs), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(pair):\n    a, b = pair\n"
              "    def grad(dy):\n        return dy * b, dy * a\n    return a * b, grad\n"),
        # defaults: 1 or 2 inputs depending on the call
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, scale=2.0):\n    def grad(dy):\n"
              "        return dy * scale\n    return x * scale, grad\n"),
        # a bound self is not an input
        Valid("import tensorflow as tf\nclass M(tf.Module):\n    @tf.custom_gradient\n    def f(self, x):\n"
              "        def grad(dy):\n            return dy\n        return tf.identity(x), grad\n"),
        # variables: the first item of (input_grads, variable_grads) is counted
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy * v, [dy * x]\n    return x * v, grad\n"),
        # a grad fn that is itself a custom gradient returns (gradient, grad_grad_fn)
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    @tf.custom_gradient\n"
              "    def grad(dy):\n        def grad_grad(ddy):\n            return ddy\n"
              "        return dy * 2.0, grad_grad\n    return x * 2.0, grad\n"),
        # unknown helper / method calls
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
              "        return self.backward(dy)\n    return x * y, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
              "        return tf.split(dy, 2)\n    return x * y, grad\n"),
        # TensorFlow Probability's wrapper is a different API
        Valid("import tensorflow_probability as tfp\nimport tensorflow as tf\n"
              "def f(x, y):\n    return tfp.math.custom_gradient(x * y, lambda dy: dy, x)\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\n@tf.custom_gradient\ndef flip(x, l):\n    def grad(dy):\n"
            "        return -dy * l\n    return tf.identity(x), grad\n",
            line=6,
            message_contains=("grad of 'flip' returns 1 gradient but 'flip' takes 2 inputs (x, l)", "None for 'l'"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef clip(x, lo, hi):\n    y = tf.clip_by_value(x, lo, hi)\n"
            "    def grad(dy):\n        dx = tf.where((x > lo) & (x < hi), dy, 0.0)\n        return dx\n"
            "    return y, grad\n",
            line=7,
            message_contains=("returns 1 gradient", "3 inputs (x, lo, hi)", "None for 'lo' and 'hi'"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
            "        return []\n    return x * 2.0, grad\n",
            line=5,
            message_contains=("returns 0 gradients", "1 input (x)"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
            "        return dy * y, dy * x, None\n    return x * y, grad\n",
            line=5,
            message_contains=("returns 3 gradients", "2 inputs (x, y)"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef flip(x, l):\n"
            "    return tf.identity(x), lambda dy: -dy\n",
            line=4,
            message_contains=("the grad lambda of 'flip' returns 1 gradient",),
        ),
        Invalid(
            "import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x, y):\n"
            "    def grad(dy, variables=None):\n        return dy * v, [dy * x]\n    return x * y * v, grad\n",
            line=6,
            message_contains=("returns 1 input gradient",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    @tf.custom_gradient\n"
            "    def grad(dy):\n        def grad_grad(ddy):\n            return ddy\n"
            "        return dy * 2.0, grad_grad\n    return x * y, grad\n",
            line=8,
            message_contains=("returns 1 gradient", "2 inputs"),
        ),
        Invalid(
            "import tensorflow as tf\nclass M(tf.Module):\n    @tf.custom_gradient\n    def f(self, x, y):\n"
            "        def grad(dy):\n            return dy\n        return x * y, grad\n",
            line=6,
            message_contains=("2 inputs (x, y)",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, axis=-1):\n    def grad(dy):\n"
            "        return dy, None, None\n    return tf.reduce_sum(x, axis), grad\n",
            line=5,
            message_contains=("1 or 2 inputs (x, axis)",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        resolver = Resolver(index)
        for cg in index.cg_functions:
            arity = cg_arity(index, cg)
            if arity is None or decorated_below(cg):
                continue
            grads = cg.grad_fns()
            if not grads:
                continue
            doubts: Optional[bool] = None
            for grad in grads:
                for ret in grad_returns(index, grad):
                    if ret.inputs_expr is None:
                        continue
                    leaves = resolver.count(ret.inputs_expr, ret.scope)
                    if leaves is None or arity.accepts(len(leaves)):
                        continue
                    if doubts is None:
                        doubts = bool(sequence_inputs(index, cg, arity.names)) or _call_site_doubts(ctx, cg)
                    if doubts:
                        break
                    self._report(ctx, cg, grad, ret, leaves, arity)

    def _report(self, ctx, cg, grad, ret, leaves, arity) -> None:
        k = len(leaves)
        what = "input gradient" if grad.variables_param() is not None else "gradient"
        message = (
            f"{grad_label(grad)} of '{cg.name}' returns {plural(k, what)} but '{cg.name}' takes "
            f"{arity.describe()}; return one per input"
        )
        fix = None
        if k < arity.total:
            missing = arity.names[k:]
            message += f", None for {quote_list(missing)}"
            literal = isinstance(ret.inputs_expr, (cst.Tuple, cst.List)) or (
                len(leaves) == 1 and leaves[0] is ret.inputs_expr
            )
            if arity.required == arity.total and literal and k > 0:
                fix = _append_none_fix(ret.inputs_expr, missing, k)
        ctx.report(ret.anchor, message, fix=fix, subject=cg.name)


def _not_callable(resolver: Resolver, expr: cst.BaseExpression, scope) -> Optional[str]:
    """What ``expr`` certainly is when it is certainly not a callable, else None."""
    if isinstance(expr, cst.Name) and expr.value == "None":
        return "None"
    if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary)):
        return "number"
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
        return "string"
    if isinstance(expr, (cst.Tuple, cst.List, cst.Dict, cst.Set, cst.ListComp, cst.GeneratorExp)):
        return "tuple" if isinstance(expr, cst.Tuple) else "list" if isinstance(expr, (cst.List, cst.ListComp)) else "collection"
    if resolver.is_tensor(expr, scope):
        return "tensor"
    return None



def _under_none_guard(index, ret: cst.Return, cg: CgFunction) -> bool:
    """``if x is None: return ...`` for an input ``x``: a guard for a call TensorFlow never makes
    with a tensor, not the function's result (tensors are never None)."""
    params = {p.name.value for p in cg.info.positional_params()}
    for node in index.ancestors(ret):
        if node is cg.info.node:
            return False
        if isinstance(node, cst.If):
            for leaf in _is_none_tests(node.test):
                if leaf in params:
                    return True
    return False


def _is_none_tests(test: cst.BaseExpression) -> list[str]:
    """Names tested with ``<name> is None`` in ``test`` (through ``or``/``and``)."""
    if isinstance(test, cst.BooleanOperation):
        return _is_none_tests(test.left) + _is_none_tests(test.right)
    if (
        isinstance(test, cst.Comparison)
        and isinstance(test.left, cst.Name)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Is)
        and isinstance(test.comparisons[0].comparator, cst.Name)
        and test.comparisons[0].comparator.value == "None"
    ):
        return [test.left.value]
    return []


class MissingGradFn(Rule):
    code = "TGL105"
    name = "missing-grad-fn"
    severity = "error"
    summary = "A custom-gradient function does not return `(output, grad_fn)`."
    what = (
        "Finds a `return` of a `tf.custom_gradient` function that certainly is not a pair "
        "`(output, grad_fn)`: a bare `return` or `return None`, a tuple of another length, a "
        "single tensor (`return y`), or a pair whose second item is certainly not a function "
        "(a tensor, a number, `None`, a tuple)."
    )
    why = (
        "TensorFlow unpacks the result into the output and the gradient function on every call; "
        "anything else fails at the first forward call."
    )
    tensorflow_error = (
        "At the first forward call: `TypeError: Cannot iterate over a scalar tensor` or "
        "`TypeError: unsupported callable` for a lone tensor (the tensor is unpacked into two "
        "rows); `TypeError: cannot unpack non-iterable NoneType object`; `ValueError: too many "
        "values to unpack (expected 2)`; `TypeError: unsupported callable` when the second item "
        "is not a function. Under `tf.function`: `OperatorNotAllowedInGraphError: Iterating over "
        "a symbolic tf.Tensor is not allowed`."
    )
    example = """
import tensorflow as tf

@tf.custom_gradient
def clip_grad(x):
    y = tf.identity(x)
    return y
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def clip_grad(x):
    def grad(dy):
        return tf.clip_by_norm(dy, 1.0)
    return tf.identity(x), grad
"""
    valid = (
        # a guard for a None input is not the result: tensors are never None
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    if x is None:\n        return None\n"
              "    return x * 2.0, lambda dy: dy * 2.0\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    return helper(x)\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    out = (x * 2.0, lambda dy: dy * 2.0)\n"
              "    return out\n"),
        Valid("import tensorflow as tf\ndef _grad(dy):\n    return dy\n@tf.custom_gradient\ndef f(x):\n"
              "    return tf.identity(x), _grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def helper(z):\n        return z * 2.0\n"
              "    def grad(dy):\n        return helper(dy)\n    return helper(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    return x * 2.0, make_grad(x)\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    return (*helper(x),)\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    y = tf.identity(x)\n    return y\n",
            line=5,
            message_contains=("'f' returns only its output", "(output, grad_fn)"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    y = tf.identity(x)\n"
            "    dy = tf.ones_like(y)\n    return y, dy\n",
            line=6,
            message_contains=("second item is a tensor",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    if not tf.executing_eagerly():\n        return\n"
            "    return x * 2.0, lambda dy: dy * 2.0\n",
            line=5,
            message_contains=("returns None",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
            "    return x * 2.0, x * 3.0, lambda dy: dy * 2.0\n",
            line=4,
            message_contains=("3-item tuple",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    return x * 2.0, None\n",
            line=4,
            message_contains=("second item is None",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        resolver = Resolver(index)
        for cg in index.cg_functions:
            if cg.info.yields:
                continue
            for r in cg.returns:
                if r.grad is not None or _under_none_guard(index, r.node, cg):
                    continue
                problem = self._problem(resolver, cg, r.node.value)
                if problem is not None:
                    ctx.report(
                        r.node,
                        f"custom-gradient function '{cg.name}' {problem}, not a pair (output, grad_fn); "
                        f"return the output and a gradient function defined in '{cg.name}'",
                        subject=cg.name,
                    )

    @staticmethod
    def _problem(resolver: Resolver, cg: CgFunction, value: Optional[cst.BaseExpression]) -> Optional[str]:
        scope = cg.info
        if value is None or (isinstance(value, cst.Name) and value.value == "None"):
            return "returns None"
        if isinstance(value, (cst.Tuple, cst.List)):
            if any(isinstance(e, cst.StarredElement) for e in value.elements):
                return None
            n = len(value.elements)
            if n != 2:
                return f"returns a {n}-item {'tuple' if isinstance(value, cst.Tuple) else 'list'}"
            second = value.elements[1].value
            kind = _not_callable(resolver, second, scope)
            if kind is None:
                return None
            if kind == "None":
                return "returns a pair whose second item is None"
            return f"returns a pair whose second item is a {kind}"
        if resolver.is_tensor(value, scope) or isinstance(value, (cst.Integer, cst.Float)):
            return "returns only its output"
        return None


class UpstreamArityMismatch(Rule):
    code = "TGL106"
    name = "upstream-arity-mismatch"
    severity = "error"
    summary = "The grad fn takes a different number of upstream gradients than the function has outputs."
    what = (
        "Finds a `tf.custom_gradient` function that returns m outputs (a tuple/list literal, "
        "flattened, or one tensor) while its grad fn takes a different number of positional "
        "upstream parameters (`variables` excluded; no `*args`)."
    )
    why = (
        "TensorFlow calls the grad fn with one upstream gradient per output: `grad(*dys)`. A "
        "grad fn written for one output fails as soon as a gradient is computed."
    )
    tensorflow_error = (
        "When a gradient is computed: `TypeError: grad() takes 1 positional argument but 2 were "
        "given`, or `TypeError: grad() missing 1 required positional argument: 'dz'`."
    )
    example = """
import tensorflow as tf

@tf.custom_gradient
def split_scale(x):
    def grad(dy):
        return dy * 2.0
    return (x * 2.0, x * 3.0), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def split_scale(x):
    def grad(dy1, dy2):
        return dy1 * 2.0 + dy2 * 3.0
    return (x * 2.0, x * 3.0), grad
"""
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy1, dy2):\n"
              "        return dy1 + dy2\n    return (x * 2.0, x * 3.0), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(*dys):\n"
              "        return dys[0]\n    return (x * 2.0, x * 3.0), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy, variables=None):\n"
              "        return dy, []\n    return x * 2.0, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy1, dy2):\n"
              "        return dy1 + dy2\n    return helper(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    outs = [x, x]\n    def grad(dy1, dy2, dy3):\n"
              "        return dy1\n    return (outs, x), grad\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
            "        return dy * 2.0\n    return (x * 2.0, x * 3.0), grad\n",
            line=4,
            message_contains=("'f' returns 2 outputs", "'grad' takes 1 upstream gradient (dy)"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy1, dy2):\n"
            "        return dy1 + dy2\n    return tf.matmul(x, x), grad\n",
            line=4,
            message_contains=("returns 1 output", "2 upstream gradients"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
            "    return (x, (x * 2.0, x * 3.0)), lambda dy, dz: dy\n",
            line=4,
            message_contains=("returns 3 outputs",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        resolver = Resolver(index)
        for cg in index.cg_functions:
            for r in cg.returns:
                if r.grad is None or r.output is None:
                    continue
                ups = upstream_arity(r.grad)
                if ups is None:
                    continue
                leaves = resolver.count(r.output, cg.info)
                if leaves is None or ups.accepts(len(leaves)):
                    continue
                arity = cg_arity(index, cg)
                params = {n.value for n in leaves if isinstance(n, cst.Name)} & set(arity.names if arity else ())
                if params and sequence_inputs(index, cg, sorted(params)):
                    continue  # an input returned as an output may be a list
                m = len(leaves)
                anchor: cst.CSTNode = r.grad.info.params if r.grad.upstream_params() else (
                    r.grad.node if r.grad.info.is_lambda else r.grad.node.name  # type: ignore[union-attr]
                )
                label = "the grad lambda" if r.grad.info.is_lambda else f"its grad fn '{r.grad.name}'"
                upstream = ups.describe().replace("inputs", "upstream gradients").replace(
                    "input ", "upstream gradient "
                )
                ctx.report(
                    anchor,
                    f"'{cg.name}' returns {plural(m, 'output')} but {label} takes {upstream}; "
                    f"give it one upstream parameter per output",
                    subject=cg.name,
                )


class GradFnReturnsNothing(Rule):
    code = "TGL107"
    name = "grad-fn-returns-nothing"
    severity = "error"
    summary = "The grad fn has no `return` with a value."
    what = "Finds a `tf.custom_gradient` grad fn that falls off its end or only has bare `return`s."
    why = (
        "The grad fn then returns `None`: with one input the gradient is silently `None` (the "
        "input stops learning); with more inputs TensorFlow raises the arity error."
    )
    tensorflow_error = (
        "One input: no error, the gradient is `None`. More: `ValueError: custom_gradient "
        "function expected to return N gradients, but returned 1 instead`."
    )
    example = """
import tensorflow as tf

@tf.custom_gradient
def clip_grad(x):
    def grad(dy):
        dx = tf.clip_by_norm(dy, 1.0)
    return tf.identity(x), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def clip_grad(x):
    def grad(dy):
        return tf.clip_by_norm(dy, 1.0)
    return tf.identity(x), grad
"""
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        raise NotImplementedError('no gradient')\n    return tf.identity(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        if dy is None:\n            return None\n        return dy\n    return tf.identity(x), grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    return tf.identity(x), lambda dy: None\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef clip_grad(x):\n    def grad(dy):\n"
            "        dx = tf.clip_by_norm(dy, 1.0)\n    return tf.identity(x), grad\n",
            line=4,
            message_contains=("'grad' of 'clip_grad' returns nothing", "silently None"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dy):\n"
            "        dx = dy * y\n        return\n    return x * y, grad\n",
            line=4,
            message_contains=("expects 2",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            arity = cg_arity(index, cg)
            for grad in cg.grad_fns():
                info = grad.info
                if info.is_lambda or info.raises or info.yields:
                    continue
                if any(r.value is not None for r in info.returns):
                    continue
                n = arity.total if arity is not None else None
                if n == 1:
                    effect = f"the gradient of '{arity.names[0]}' is silently None"  # type: ignore[union-attr]
                elif n:
                    effect = f"TensorFlow gets None but expects {n} gradients"
                else:
                    effect = "TensorFlow gets None as the gradient"
                ctx.report(
                    grad.node.name,  # type: ignore[union-attr]
                    f"grad fn '{grad.name}' of '{cg.name}' returns nothing: {effect}; "
                    f"return one gradient per input (None for inputs that need none)",
                    subject=cg.name,
                )


class NestedCustomGradient(Rule):
    code = "TGL113"
    name = "nested-custom-gradient"
    severity = "warning"
    default = "preview"
    summary = "The grad fn is itself a `tf.custom_gradient`: its gradient is not the second derivative."
    what = "Finds a grad fn decorated with `tf.custom_gradient` (a custom second-order gradient)."
    why = (
        "TensorFlow documents that the inner custom gradient is taken with respect to the "
        "upstream `dy` the grad fn receives, not with respect to the original input: it is not "
        "in general the second-order gradient of the outer function, and higher-order "
        "gradients silently come out wrong."
    )
    tensorflow_error = "None: higher-order gradients are silently wrong."
    example = """
import tensorflow as tf

@tf.custom_gradient
def softplus(x):
    @tf.custom_gradient
    def grad(dy):
        def grad_grad(ddy):
            return ddy * tf.sigmoid(x) * (1 - tf.sigmoid(x))
        return dy * tf.sigmoid(x), grad_grad
    return tf.math.softplus(x), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def softplus(x):
    def grad(dy):
        # differentiable ops on x: TensorFlow derives the second-order gradient itself
        return dy * tf.sigmoid(x)
    return tf.math.softplus(x), grad
"""
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n"
              "        return dy * tf.sigmoid(x)\n    return tf.math.softplus(x), grad\n", preview=True),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    @tf.custom_gradient\n"
            "    def grad(dy):\n        def grad_grad(ddy):\n            return ddy\n"
            "        return dy * tf.sigmoid(x), grad_grad\n    return tf.math.softplus(x), grad\n",
            line=4,
            message_contains=("'grad' of 'f' is itself a custom gradient", "'dy'"),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            for grad in cg.grad_fns():
                inner = cg_of(index, grad.info)
                if inner is None or not isinstance(inner.marker, cst.Decorator):
                    continue
                ups = [p.name.value for p in grad.upstream_params()]
                wrt = f"the upstream '{ups[0]}'" if len(ups) == 1 else "the upstream gradients"
                ctx.report(
                    inner.marker,
                    f"grad fn '{grad.name}' of '{cg.name}' is itself a custom gradient: its gradient is "
                    f"taken with respect to {wrt}, not in general the second derivative of "
                    f"'{cg.name}'; check higher-order gradients numerically, or let TensorFlow "
                    f"differentiate the grad fn",
                    subject=cg.name,
                )
