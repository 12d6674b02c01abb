"""TGL109, TGL117, TGL118: how a custom-gradient (cg) function is called.

``tf.custom_gradient`` records the call's *positional* arguments as the inputs it computes
gradients for. Keyword arguments are not inputs: in eager mode an all-keyword call silently
loses the custom gradient (autodiff runs instead) and a mixed call gets the arity error;
under ``tf.function`` any keyword raises. And a cg function applied to a Keras symbolic
tensor (Functional API) fails in Keras 3: TensorFlow ops cannot take KerasTensors.

The cg function may live in another module of the project: ``analysis.cg_target`` resolves
it through the project-wide index.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from tfgradlint.analysis import CgSignature, cg_target
from tfgradlint.context import FixSpec
from tfgradlint.index import FunctionInfo, Scope, dotted_name
from tfgradlint.rules.base import Invalid, Rule, Valid

GRAPH_MODE_ERROR = (
    "The custom_gradient decorator currently supports keywords arguments only when eager "
    "execution is enabled"
)

_PREAMBLE = """\
import tensorflow as tf

@tf.custom_gradient
def clip(x, lo, hi):
    def grad(dy):
        return dy, None, None
    return tf.clip_by_value(x, lo, hi), grad
"""

_SCALED = """\
import tensorflow as tf

@tf.custom_gradient
def scaled(x, scale=2.0):
    def grad(dy):
        return dy * scale
    return x * scale, grad
"""


def _keyword_args(call: cst.Call) -> list[cst.Arg]:
    return [a for a in call.args if a.keyword is not None and a.star == ""]


def _plain_call(call: cst.Call) -> bool:
    """No ``*args``/``**kwargs`` at the call site (what binds where is then known)."""
    return all(a.star == "" for a in call.args)


def _positional_args(call: cst.Call) -> list[cst.Arg]:
    return [a for a in call.args if a.keyword is None and a.star == ""]


def _called(call: cst.Call, target: CgSignature) -> str:
    """The name the call uses (``flip`` for ``flip = tf.custom_gradient(_flip)``)."""
    name = dotted_name(call.func)
    return name.rsplit(".", 1)[-1] if name else target.name


def _quote(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _calls_with_keywords(ctx):
    """(call, target) for calls of cg functions that pass keyword arguments."""
    for site in ctx.index.calls:
        call = site.node
        if not _keyword_args(call) or not _plain_call(call):
            continue
        target = cg_target(ctx, call, site.scope)
        if target is None or target.outer_wrapped:
            continue
        yield call, target


def _misplaced_inputs(call: cst.Call, target: CgSignature) -> list[cst.Arg]:
    """Keyword arguments for inputs without a default, not already given positionally."""
    n_pos = len(_positional_args(call))
    required = target.params[: target.required]
    return [
        a for a in _keyword_args(call) if a.keyword.value in required and required.index(a.keyword.value) >= n_pos
    ]


def _keyword_for_defaulted(call: cst.Call, target: CgSignature) -> list[cst.Arg]:
    """Keyword arguments for parameters with a default, or keyword-only parameters."""
    n_pos = len(_positional_args(call))
    defaulted = target.params[target.required :]
    out = []
    for a in _keyword_args(call):
        name = a.keyword.value
        if name in defaulted and target.params.index(name) >= n_pos:
            out.append(a)
        elif name in target.kwonly:
            out.append(a)
    return out


def _pure(expr: cst.BaseExpression) -> bool:
    """Evaluating ``expr`` has no side effect (so moving it cannot change behaviour)."""
    if isinstance(expr, (cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis)):
        return True
    if isinstance(expr, cst.Attribute):
        return _pure(expr.value)
    if isinstance(expr, cst.ConcatenatedString):
        return _pure(expr.left) and _pure(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _pure(expr.expression)
    return False


def _positional_fix(call: cst.Call, target: CgSignature, bad: list[cst.Arg]) -> Optional[FixSpec]:
    """Pass the misplaced inputs positionally, in the signature's order."""
    if target.has_star_args:
        return None
    positional = _positional_args(call)
    n_pos = len(positional)
    by_name = {a.keyword.value: a for a in bad}
    order = sorted(by_name, key=target.params.index)
    # the inputs must follow the positional arguments without a gap
    if [target.params.index(n) for n in order] != list(range(n_pos, n_pos + len(order))):
        return None
    moved = [by_name[n] for n in order]
    others = [a for a in call.args if a.keyword is not None and a not in moved]
    new_order = positional + moved + others
    last_comma = call.args[-1].comma
    new_args = []
    for i, arg in enumerate(new_order):
        if arg in moved:
            arg = arg.with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
        if i < len(new_order) - 1:
            comma = arg.comma if isinstance(arg.comma, cst.Comma) else cst.Comma(
                whitespace_after=cst.SimpleWhitespace(" ")
            )
        else:
            comma = last_comma
        new_args.append(arg.with_changes(comma=comma))
    same_order = list(call.args) == new_order
    safe = same_order or all(_pure(a.value) for a in moved + others)
    names = ", ".join(order)
    return FixSpec(
        "safe" if safe else "unsafe",
        f"Pass {names} positionally",
        [(call, call.with_changes(args=new_args))],
    )


def _call_text(ctx, call: cst.Call, target: CgSignature, bad: list[cst.Arg]) -> str:
    """How the call reads with the inputs positional (for the message)."""
    positional = [ctx.code_for(a.value) for a in _positional_args(call)]
    by_name = {a.keyword.value: ctx.code_for(a.value) for a in bad}
    order = sorted(by_name, key=target.params.index)
    parts = positional + [by_name[n] for n in order]
    others = [f"{a.keyword.value}={ctx.code_for(a.value)}" for a in _keyword_args(call) if a not in bad]
    text = f"{dotted_name(call.func) or target.name}({', '.join(parts + others)})"
    return text if len(text) <= 60 else "positionally"


class KeywordCall(Rule):
    code = "TGL109"
    name = "keyword-call"
    severity = "error"
    triggers = ("custom_gradient",)
    summary = "A custom-gradient function's tensor input is passed by keyword."
    what = (
        "Finds calls of a `tf.custom_gradient` function (in this module or imported from "
        "another module of the project) that pass a keyword argument for a parameter without "
        "a default, i.e. a tensor input."
    )
    why = (
        "`tf.custom_gradient` records only the positional arguments as the inputs it returns "
        "gradients for. In eager mode an all-keyword call silently drops the custom gradient "
        "(autodiff runs instead; TensorFlow issue 65839) and a mixed call makes the grad fn's "
        "gradients no longer match the recorded inputs; under `tf.function` any keyword "
        "argument raises."
    )
    tensorflow_error = (
        f"Under `tf.function`: `ValueError: {GRAPH_MODE_ERROR}`. Eager, mixed call: "
        "`ValueError: custom_gradient function expected to return 1 gradients, but returned 2 "
        "instead`. Eager, all-keyword call: no error, the custom gradient is silently ignored."
    )
    example = _PREAMBLE + """
y = clip(x=t, lo=0.0, hi=1.0)
"""
    instead = _PREAMBLE + """
y = clip(t, 0.0, 1.0)
"""
    fix_safety = (
        "The fix passes the inputs positionally, in the signature's order. It is offered when "
        "the signature is known and has no `*args` and the inputs follow the positional "
        "arguments without a gap. It is safe when the arguments keep their order or are plain "
        "names, attributes and literals; otherwise it is unsafe (moving an argument can reorder "
        "side effects)."
    )
    valid = (
        Valid(_PREAMBLE + "y = clip(t, 0.0, 1.0)\n"),
        # a parameter with a default (TGL117, preview), not a tensor input
        Valid(_SCALED + "y = scaled(t, scale=3.0)\n"),
        # not a cg function
        Valid("import tensorflow as tf\ndef clip(x, lo, hi):\n    return x\ny = clip(x=t, lo=0.0, hi=1.0)\n"),
        # a local name shadows the cg function
        Valid(_PREAMBLE + "def f(clip):\n    return clip(x=1.0, lo=0.0, hi=1.0)\n"),
        # *args / **kwargs at the call site: what binds where is unknown
        Valid(_PREAMBLE + "y = clip(*xs, hi=1.0)\nz = clip(**kw)\n"),
        # tf.function above the cg decorator binds keywords to positions itself
        Valid(
            "import tensorflow as tf\n\n@tf.function\n@tf.custom_gradient\ndef f(x, y):\n"
            "    def grad(dy):\n        return dy, dy\n    return x * y, grad\nz = f(x=a, y=b)\n"
        ),
        # **kwargs cg function: an unknown keyword goes to **kwargs
        Valid(
            "import tensorflow as tf\n\n@tf.custom_gradient\ndef f(x, **kw):\n"
            "    def grad(dy):\n        return dy\n    return x, grad\nz = f(a, mode=1)\n"
        ),
        # TensorFlow Probability's custom_gradient is a different API
        Valid(
            "import tensorflow_probability as tfp\n\n@tfp.math.custom_gradient\ndef f(x):\n"
            "    return x\nz = f(x=a)\n"
        ),
    )
    invalid = (
        Invalid(
            _PREAMBLE + "y = clip(x=t, lo=0.0, hi=1.0)\n",
            line=8,
            message_contains=("'clip'", "'x', 'lo' and 'hi'", "silently", "clip(t, 0.0, 1.0)"),
            fixed=_PREAMBLE + "y = clip(t, 0.0, 1.0)\n",
        ),
        Invalid(
            _PREAMBLE + "y = clip(t, lo=0.0, hi=1.0)\n",
            line=8,
            message_contains=("'lo' and 'hi'", "expected to return"),
            fixed=_PREAMBLE + "y = clip(t, 0.0, 1.0)\n",
        ),
        # the call form, and a method called through self
        Invalid(
            "import tensorflow as tf\n\ndef _flip(x, l):\n    def grad(dy):\n        return -dy * l, None\n"
            "    return tf.identity(x), grad\n\nflip = tf.custom_gradient(_flip)\ny = flip(x, l=0.5)\n",
            line=9,
            message_contains=("'flip'", "'l'"),
        ),
        Invalid(
            "import tensorflow as tf\n\nclass M(tf.Module):\n    @tf.custom_gradient\n"
            "    def f(self, x):\n        def grad(dy):\n            return dy\n        return x, grad\n\n"
            "    def __call__(self, t):\n        return self.f(x=t)\n",
            line=11,
            message_contains=("'f'", "'x'"),
        ),
    )

    def check(self, ctx) -> None:
        for call, target in _calls_with_keywords(ctx):
            bad = _misplaced_inputs(call, target)
            if not bad:
                continue
            names = [a.keyword.value for a in bad]
            n_pos = len(_positional_args(call))
            if n_pos == 0 and len(names) == target.required:
                eager = "in eager mode TensorFlow silently ignores the custom gradient (autodiff runs instead)"
            else:
                eager = (
                    "in eager mode the grad fn's gradients no longer match the recorded inputs "
                    "('custom_gradient function expected to return N gradients')"
                )
            plural = "inputs" if len(names) > 1 else "input"
            ctx.report(
                bad[0],
                f"call of custom-gradient function '{_called(call, target)}' passes tensor {plural} "
                f"{_quote(names)} by keyword: {eager}, and under tf.function it raises "
                f"'{GRAPH_MODE_ERROR}'; pass {'them' if len(names) > 1 else 'it'} positionally: "
                f"{_call_text(ctx, call, target, bad)}",
                end_node=bad[-1],
                fix=_positional_fix(call, target, bad),
                subject=target.name,
            )


class KeywordArgBreaksGraphMode(Rule):
    code = "TGL117"
    name = "keyword-arg-breaks-graph-mode"
    severity = "warning"
    default = "preview"
    triggers = ("custom_gradient",)
    summary = "A keyword argument to a custom-gradient function breaks it under tf.function."
    what = (
        "Finds calls of a `tf.custom_gradient` function that pass a keyword argument for a "
        "parameter with a default (`dtype=...`, `scale=...`) or a keyword-only parameter."
    )
    why = (
        "In eager mode the keyword argument is passed through, but in graph mode "
        "(`tf.function`, Keras `fit`) `tf.custom_gradient` rejects every keyword argument: the "
        "code works in a notebook and fails in training."
    )
    tensorflow_error = f"Under `tf.function`: `ValueError: {GRAPH_MODE_ERROR}`."
    example = _SCALED + """
@tf.function
def step(t):
    return scaled(t, scale=3.0)
"""
    instead = """
import tensorflow as tf

def make_scaled(scale):
    @tf.custom_gradient
    def scaled(x):
        def grad(dy):
            return dy * scale
        return x * scale, grad
    return scaled

scaled3 = make_scaled(3.0)

@tf.function
def step(t):
    return scaled3(t)
"""
    valid = (
        Valid(_SCALED + "y = scaled(t, 3.0)\ny = scaled(t)\n"),
        # a tensor input by keyword is TGL109
        Valid(_SCALED + "y = scaled(x=t)\n"),
        Valid(
            "import tensorflow as tf\n\n@tf.function\n@tf.custom_gradient\ndef f(x, s=1.0):\n"
            "    def grad(dy):\n        return dy, None\n    return x * s, grad\nz = f(a, s=2.0)\n"
        ),
    )
    invalid = (
        Invalid(_SCALED + "y = scaled(t, scale=3.0)\n", line=8, message_contains=("'scaled'", "'scale'", "tf.function")),
        Invalid(
            "import tensorflow as tf\n\n@tf.custom_gradient\ndef f(x, *, mode='fast'):\n"
            "    def grad(dy):\n        return dy\n    return tf.identity(x), grad\ny = f(t, mode='slow')\n",
            line=8,
            message_contains=("'mode'",),
        ),
    )

    def check(self, ctx) -> None:
        for call, target in _calls_with_keywords(ctx):
            bad = _keyword_for_defaulted(call, target)
            if not bad:
                continue
            names = [a.keyword.value for a in bad]
            ctx.report(
                bad[0],
                f"call of custom-gradient function '{_called(call, target)}' passes {_quote(names)} by "
                f"keyword: fine in eager mode, but under tf.function (and Keras fit) it raises "
                f"'{GRAPH_MODE_ERROR}'; bind {'them' if len(names) > 1 else 'it'} in a closure "
                f"(a factory that returns the cg function) or pass {'them' if len(names) > 1 else 'it'} "
                f"positionally and return None for {'them' if len(names) > 1 else 'it'} from the grad fn",
                end_node=bad[-1],
                subject=target.name,
            )


# -- TGL118 ---------------------------------------------------------------------------------

KERAS_INPUTS = frozenset({"keras.Input", "keras.layers.Input", "keras.input"})
KERAS_MODELS = frozenset({"keras.Sequential", "keras.models.Sequential", "keras.Model", "keras.models.Model"})


class _Symbolic:
    """Is an expression a Keras symbolic tensor (Functional API), statically?"""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.index = ctx.index
        # The call being examined: ``x = f(x)`` rebinds x with the call's own result, which
        # says nothing about the value x has at the call.
        self.current: Optional[cst.Call] = None

    def value(self, expr: cst.BaseExpression, scope: Scope, seen: frozenset = frozenset(), depth: int = 0) -> Optional[str]:
        """What makes ``expr`` symbolic ('keras.Input' or a layer call), or None."""
        if depth > 12:
            return None
        if isinstance(expr, cst.Name):
            return self.name(expr.value, scope, seen, depth)
        if isinstance(expr, cst.Call):
            q = self.index.qualified(expr.func, scope)
            if q in KERAS_INPUTS:
                return "keras.Input"
            if self.is_layer(expr.func, scope, depth) and expr.args:
                first = expr.args[0]
                if first.star == "" and first.keyword is None:
                    inner = self.value(first.value, scope, seen, depth + 1)
                    if inner is not None:
                        return inner
            return None
        if isinstance(expr, cst.BinaryOperation):
            for side in (expr.left, expr.right):
                found = self.value(side, scope, seen, depth + 1)
                if found is not None:
                    return found
            return None
        if isinstance(expr, cst.UnaryOperation):
            return self.value(expr.expression, scope, seen, depth + 1)
        return None

    def name(self, name: str, scope: Scope, seen: frozenset, depth: int) -> Optional[str]:
        s, values = self.index.lookup(name, scope)
        # bound in the call's own scope (not a parameter, import, or outer name)
        if s is not scope or not values or any(v is None for v in values):
            return None
        if isinstance(s, FunctionInfo) and name in s.param_names():
            return None
        if (id(s), name) in seen:
            return "cycle"
        seen = seen | {(id(s), name)}
        found = None
        for v in values:
            if v is self.current:
                continue
            r = self.value(v, s, seen, depth + 1)
            if r is None:
                return None
            if r != "cycle":
                found = r
        return found

    def is_layer(self, func: cst.BaseExpression, scope: Scope, depth: int) -> bool:
        """``func`` is a Keras layer or model instance: ``Dense(3)`` or a name bound to one."""
        if isinstance(func, cst.Call):
            return self._layer_class(func.func, scope)
        if isinstance(func, cst.Name):
            s, values = self.index.lookup(func.value, scope)
            if s is None or len(values) != 1 or values[0] is None:
                return False
            return isinstance(values[0], cst.Call) and self._layer_class(values[0].func, s)
        return False

    def _layer_class(self, expr: cst.BaseExpression, scope: Scope) -> bool:
        q = self.index.qualified(expr, scope)
        if q is not None:
            if q in KERAS_MODELS:
                return True
            return q.startswith("keras.layers.") and q.rsplit(".", 1)[1][:1].isupper() and q not in KERAS_INPUTS
        name = dotted_name(expr)
        if name and "." not in name:
            s, values = self.index.lookup(name, scope)
            if s is not None and name in s.classes and len(values) == 1:
                return self.index.is_layer_class(s.classes[name], keras3_only=True)
        return False


class CustomGradientOnSymbolicKerasTensor(Rule):
    code = "TGL118"
    name = "custom-gradient-on-symbolic-keras-tensor"
    severity = "warning"
    triggers = ("custom_gradient",)
    summary = "A custom-gradient function is applied to a Keras symbolic tensor (Functional API)."
    what = (
        "Finds a call of a `tf.custom_gradient` function directly on a value bound in the same "
        "scope to `keras.Input(...)` (or `tf.keras.Input`, `tf.keras.layers.Input`), or to a "
        "Keras layer applied to such a value, outside any layer."
    )
    why = (
        "In the Functional API these values are symbolic `KerasTensor`s, not tensors: a "
        "TensorFlow function cannot take them. Keras 3 raises when the model is built; the "
        "function has to run inside a layer's `call`, where it sees real tensors."
    )
    tensorflow_error = (
        "Keras 3: `ValueError: A KerasTensor cannot be used as input to a TensorFlow function.` "
        "(TensorFlow 2.4-2.6 raised a `TypeError`)."
    )
    example = """
import tensorflow as tf

@tf.custom_gradient
def ste_sign(x):
    def grad(dy):
        return dy
    return tf.sign(x), grad

inputs = tf.keras.Input(shape=(16,))
h = tf.keras.layers.Dense(16)(inputs)
outputs = ste_sign(h)
model = tf.keras.Model(inputs, outputs)
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def ste_sign(x):
    def grad(dy):
        return dy
    return tf.sign(x), grad

class SteSign(tf.keras.layers.Layer):
    def call(self, x):
        return ste_sign(x)

inputs = tf.keras.Input(shape=(16,))
h = tf.keras.layers.Dense(16)(inputs)
outputs = SteSign()(h)
model = tf.keras.Model(inputs, outputs)
"""
    _P = """\
import tensorflow as tf
import keras

@tf.custom_gradient
def ste_sign(x):
    def grad(dy):
        return dy
    return tf.sign(x), grad
"""
    valid = (
        # inside a layer's call the value is a real tensor
        Valid(_P + "class S(keras.layers.Layer):\n    def call(self, x):\n        return ste_sign(x)\n"
              "inp = keras.Input((3,))\nout = S()(inp)\n"),
        # a Lambda layer applies it to real tensors
        Valid(_P + "inp = keras.Input((3,))\nout = keras.layers.Lambda(lambda t: ste_sign(t))(inp)\n"),
        # an eager tensor
        Valid(_P + "x = tf.constant([1.0, -2.0])\ny = ste_sign(x)\n"),
        # a value that is also bound to something else in the scope: unknown
        Valid(_P + "x = keras.Input((3,))\nx = tf.ones((1, 3))\ny = ste_sign(x)\n"),
        # a parameter named like the input
        Valid(_P + "inp = keras.Input((3,))\ndef f(inp):\n    return ste_sign(inp)\n"),
        # not a cg function
        Valid("import keras\ndef ste_sign(x):\n    return x\ninp = keras.Input((3,))\ny = ste_sign(inp)\n"),
    )
    invalid = (
        Invalid(
            _P + "inputs = tf.keras.Input(shape=(16,))\nh = tf.keras.layers.Dense(16)(inputs)\n"
            "outputs = ste_sign(h)\n",
            line=11,
            message_contains=("'ste_sign'", "'h'", "KerasTensor", "Layer"),
        ),
        Invalid(_P + "def build():\n    inp = keras.Input((3,))\n    return keras.Model(inp, ste_sign(inp * 2.0))\n", line=11),
        Invalid(
            _P + "x = keras.layers.Input((3,))\ndense = keras.layers.Dense(4)\nx = dense(x)\nx = ste_sign(x)\n",
            line=12,
        ),
    )

    def check(self, ctx) -> None:
        symbolic = _Symbolic(ctx)
        for site in ctx.index.calls:
            call = site.node
            if not call.args:
                continue
            arg_hits = []
            symbolic.current = call
            for a in call.args:
                if a.star:
                    continue
                what = symbolic.value(a.value, site.scope)
                if what is not None and what != "cycle":
                    arg_hits.append(a)
            if not arg_hits:
                continue
            target = cg_target(ctx, call, site.scope)
            if target is None:
                continue
            shown = ctx.code_for(arg_hits[0].value)
            shown = "its argument" if len(shown) > 30 else f"'{shown}'"
            ctx.report(
                call,
                f"custom-gradient function '{_called(call, target)}' is applied to {shown}, a Keras symbolic "
                f"tensor (Functional API): Keras 3 raises 'A KerasTensor cannot be used as input to "
                f"a TensorFlow function'; apply '{_called(call, target)}' inside a Layer's call (a small "
                f"custom Layer) instead",
                subject=target.name,
            )
