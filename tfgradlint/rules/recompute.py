"""TGL501-TGL503: `tf.recompute_grad` traps.

`tf.recompute_grad(f)` runs ``f`` forward without recording it, and runs it AGAIN in the
backward pass under a local tape to get the gradients. It is a `tf.custom_gradient` with
``*args, **kwargs``: keyword arguments fail in graph mode (and an all-keyword call loses the
input gradients eagerly); a random draw differs between the two runs; layers or variables
created inside ``f`` are new objects in the recomputation, so the forward pass's weights get
zero gradients.
"""

from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from tfgradlint import names
from tfgradlint.analysis import (
    _decorated_recompute,
    is_recompute_call,
    recompute_target,
    recompute_wrapped_function,
)
from tfgradlint.index import ClassInfo, FunctionInfo, Scope, dotted_name
from tfgradlint.rules.base import Invalid, Rule, Valid

# Random draws (canonical names). Stateless ops (tf.random.stateless_*) are deterministic.
RANDOM_FUNCTIONS = frozenset(
    {
        "tensorflow.random.normal",
        "tensorflow.random.uniform",
        "tensorflow.random.truncated_normal",
        "tensorflow.random.shuffle",
        "tensorflow.random.categorical",
        "tensorflow.random.gamma",
        "tensorflow.random.poisson",
        "tensorflow.random.log_uniform_candidate_sampler",
        "tensorflow.random.uniform_candidate_sampler",
        "tensorflow.random.fixed_unigram_candidate_sampler",
        "tensorflow.random.learned_unigram_candidate_sampler",
        "tensorflow.random_normal",
        "tensorflow.random_uniform",
        "tensorflow.truncated_normal",
        "tensorflow.random_shuffle",
        "tensorflow.random_gamma",
        "tensorflow.random_poisson",
        "tensorflow.multinomial",
        "tensorflow.nn.dropout",
        "tensorflow.dropout",  # tensorflow.python.ops.nn_ops.dropout
        "tensorflow.dropout_v2",
        "tensorflow.image.random_crop",
        "tensorflow.image.random_flip_left_right",
        "tensorflow.image.random_flip_up_down",
        "tensorflow.image.random_brightness",
        "tensorflow.image.random_contrast",
        "tensorflow.image.random_hue",
        "tensorflow.image.random_saturation",
        "tensorflow.image.random_jpeg_quality",
    }
)
# keras.random.<fn>: stateful unless seeded with an int (then Keras uses a stateless op).
KERAS_RANDOM = frozenset(
    {"normal", "uniform", "truncated_normal", "categorical", "randint", "dropout", "shuffle", "gamma", "binomial", "beta"}
)
# Keras layers that draw randomness when training.
RANDOM_LAYERS = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
    }
)
# Keras layers that own weights (a new instance per call means new weights).
WEIGHTED_LAYERS = frozenset(
    {
        "Dense",
        "EinsumDense",
        "Embedding",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Convolution1D",
        "Convolution2D",
        "Convolution3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "Convolution2DTranspose",
        "Convolution3DTranspose",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
        "SeparableConvolution1D",
        "SeparableConvolution2D",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "SpectralNormalization",
        "LSTM",
        "GRU",
        "SimpleRNN",
        "LSTMCell",
        "GRUCell",
        "SimpleRNNCell",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
        "Bidirectional",
        "MultiHeadAttention",
        "GroupQueryAttention",
        "PReLU",
        "LocallyConnected1D",
        "LocallyConnected2D",
    }
)
_LAYER_MODULES = ("keras.layers.", "tf_keras.layers.")


def _layer_class(q: Optional[str]) -> Optional[str]:
    if q is None:
        return None
    for prefix in _LAYER_MODULES:
        if q.startswith(prefix):
            return q[len(prefix):]
    return None


def _is_zero(expr: Optional[cst.BaseExpression]) -> bool:
    return isinstance(expr, (cst.Integer, cst.Float)) and float(expr.value) == 0.0


def _arg(call: cst.Call, position: int, keyword: str) -> Optional[cst.BaseExpression]:
    for i, a in enumerate(call.args):
        if a.star:
            return None
        if a.keyword is not None:
            if a.keyword.value == keyword:
                return a.value
        elif i == position:
            return a.value
    return None


def _training_false(call: cst.Call) -> bool:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == "training":
            return isinstance(a.value, cst.Name) and a.value.value == "False"
    return False


# -- the wrapped functions --------------------------------------------------------------


def recompute_wrapped(ctx) -> Iterator[tuple[str, cst.CSTNode, Scope, Optional[FunctionInfo], Optional[cst.BaseExpression]]]:
    """(display name, marker, marker scope, wrapped def/lambda or None, wrapped expression)."""
    index = ctx.index
    seen: set[int] = set()
    for fn in index.functions:
        if fn.is_lambda:
            continue
        dec = _decorated_recompute(ctx, fn)
        if dec is not None and id(fn) not in seen:
            seen.add(id(fn))
            yield fn.name or "<function>", dec, fn.parent or index.scope, fn, None
    for site in index.calls:
        call = site.node
        if not is_recompute_call(ctx, call, site.scope):
            continue
        arg = call.args[0]
        if arg.star or (arg.keyword is not None and arg.keyword.value != "f"):
            continue
        fn = recompute_wrapped_function(ctx, call, site.scope)
        if fn is not None and id(fn) in seen:
            continue
        if fn is not None:
            seen.add(id(fn))
        name = fn.name if fn is not None and fn.name else (dotted_name(arg.value) or "the wrapped function")
        yield name, call, site.scope, fn, arg.value


def _body_scopes(ctx, fn: FunctionInfo) -> list[FunctionInfo]:
    """``fn`` and what runs with it: its lambdas and the nested defs it calls by name."""
    out = [fn]
    todo = [fn]
    while todo:
        cur = todo.pop()
        nested: list[FunctionInfo] = list(cur.lambdas)
        called = {s.node.func.value for s in cur.calls if isinstance(s.node.func, cst.Name)}
        nested += [f for n, f in cur.functions.items() if n in called]
        for f in nested:
            if all(f is not o for o in out):
                out.append(f)
                todo.append(f)
    return out


def _class_of(fn: FunctionInfo) -> Optional[ClassInfo]:
    s: Optional[Scope] = fn
    while s is not None:
        if isinstance(s, FunctionInfo) and s.cls is not None:
            return s.cls
        s = s.parent
    return None


def _self_of(fn: FunctionInfo) -> Optional[str]:
    s: Optional[Scope] = fn
    while s is not None:
        if isinstance(s, FunctionInfo) and s.cls is not None:
            params = s.positional_params()
            return params[0].name.value if params else None
        s = s.parent
    return None


def _random_draw(ctx, call: cst.Call, scope: Scope, cls: Optional[ClassInfo], self_name: Optional[str]) -> Optional[str]:
    """A description of the random draw ``call`` makes, or None."""
    index = ctx.index
    func = call.func
    q = index.qualified(func, scope)
    if q in RANDOM_FUNCTIONS:
        if q.endswith("dropout") or q.endswith("dropout_v2"):
            if _is_zero(_arg(call, 1, "rate")):
                return None
        return _display(q)
    if q is not None and q.startswith("keras.random."):
        fname = q[len("keras.random."):]
        if fname not in KERAS_RANDOM:
            return None
        seed = _arg(call, 99, "seed")
        if seed is not None and not (isinstance(seed, cst.Name) and seed.value == "None"):
            if isinstance(seed, cst.Integer):
                return None  # an int seed: Keras draws with a stateless op
            return None  # a seed generator or unknown: cannot tell
        return _display(q)
    # Dropout(0.1)(x): a random layer built and applied here
    if isinstance(func, cst.Call):
        layer = _layer_class(index.qualified(func.func, scope))
        if layer in RANDOM_LAYERS and not _training_false(call) and not _is_zero(_arg(func, 0, "rate")):
            return f"a new keras.layers.{layer}"
    # self.dropout(x) where every `self.dropout = ...Dropout(rate)`
    if (
        cls is not None
        and isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and func.value.value == self_name
        and not _training_false(call)
    ):
        values = cls.attr_values.get(func.attr.value, [])
        if values and func.attr.value not in cls.methods:
            kinds = set()
            for v in values:
                if not isinstance(v, cst.Call):
                    return None
                layer = _layer_class(index.qualified(v.func, _attr_scope(cls, v) or scope))
                if layer not in RANDOM_LAYERS or _is_zero(_arg(v, 0, "rate")):
                    return None
                kinds.add(layer)
            return f"self.{func.attr.value} (a keras.layers.{sorted(kinds)[0]})"
    return None


def _attr_scope(cls: ClassInfo, value: cst.BaseExpression) -> Optional[Scope]:
    for method in cls.methods.values():
        for node in method.assigns:
            if getattr(node, "value", None) is value:
                return method
    return None


def _display(q: str) -> str:
    if q.startswith("tensorflow."):
        return "tf." + q[len("tensorflow."):]
    return q


def _inside_condition(ctx, node: cst.CSTNode, fn: FunctionInfo) -> bool:
    for anc in ctx.index.ancestors(node):
        if anc is fn.node:
            return False
        if isinstance(anc, (cst.If, cst.IfExp, cst.Try, cst.BooleanOperation)):
            return True
    return False


def _sequential_random_layers(ctx, expr: cst.BaseExpression, scope: Scope) -> Iterator[tuple[cst.Call, str]]:
    """Random layers constructed in ``keras.Sequential([...])`` that ``expr`` names."""
    index = ctx.index
    value: Optional[cst.BaseExpression] = None
    value_scope: Optional[Scope] = scope
    if isinstance(expr, cst.Name):
        s, values = index.lookup(expr.value, scope)
        if s is not None and len(values) == 1:
            value, value_scope = values[0], s
    elif isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        fn = scope.function_scope()
        cls = _class_of(fn) if fn is not None else None
        if cls is not None and _self_of(fn) == expr.value.value:  # type: ignore[arg-type]
            values = cls.attr_values.get(expr.attr.value, [])
            if len(values) == 1:
                value = values[0]
                value_scope = _attr_scope(cls, value) or scope
    else:
        value = expr
    if not isinstance(value, cst.Call) or value_scope is None:
        return
    q = index.qualified(value.func, value_scope)
    if q not in ("keras.Sequential", "keras.models.Sequential", "tf_keras.Sequential", "tf_keras.models.Sequential"):
        return
    layers = _arg(value, 0, "layers")
    if not isinstance(layers, (cst.List, cst.Tuple)):
        return
    for el in layers.elements:
        if isinstance(el.value, cst.Call):
            layer = _layer_class(index.qualified(el.value.func, value_scope))
            if layer in RANDOM_LAYERS and not _is_zero(_arg(el.value, 0, "rate")):
                yield el.value, f"keras.layers.{layer}"


# -- rules -------------------------------------------------------------------------------


class RecomputeGradKeywordCall(Rule):
    code = "TGL501"
    name = "recompute-grad-keyword-call"
    triggers = ("recompute_grad",)
    summary = "A `tf.recompute_grad`-wrapped callable is called with keyword arguments."
    what = (
        "Finds keyword arguments (`training=True`, `x=x`) at a call of a callable wrapped by "
        "`tf.recompute_grad`: `f = tf.recompute_grad(g)` then `f(...)`, a function decorated with "
        "`@tf.recompute_grad`, `self.f = tf.recompute_grad(self.block)` then `self.f(...)` in the "
        "class, or `tf.recompute_grad(g)(...)`."
    )
    why = (
        "`tf.recompute_grad` is built on `tf.custom_gradient`, which accepts keyword arguments "
        "only eagerly: under `tf.function` (and so in Keras `fit`) the call raises. Eagerly, "
        "tensors passed by keyword are not inputs of the custom gradient: they get no gradient."
    )
    tensorflow_error = (
        "`ValueError: The custom_gradient decorator currently supports keywords arguments only "
        "when eager execution is enabled.`; eagerly, `tape.gradient` returns None for a tensor "
        "passed by keyword."
    )
    example = """\
import tensorflow as tf

class Block(tf.keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.dense = tf.keras.layers.Dense(64)
        self.f = tf.recompute_grad(self.body)

    def body(self, x, training=False):
        return self.dense(x)

    def call(self, x, training=False):
        return self.f(x, training=training)
"""
    instead = """\
import functools
import tensorflow as tf

class Block(tf.keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.dense = tf.keras.layers.Dense(64)

    def body(self, x, training=False):
        return self.dense(x)

    def call(self, x, training=False):
        # bind non-tensor options outside the recomputed function; pass tensors positionally
        return tf.recompute_grad(functools.partial(self.body, training=training))(x)
"""
    valid = (
        Valid("import tensorflow as tf\ndef g(x, y):\n    return x * y\nf = tf.recompute_grad(g)\nz = f(a, b)\n"),
        Valid("import tensorflow as tf\ndef g(x, y):\n    return x * y\nz = g(a, y=b)\n"),
        Valid(
            "import tensorflow as tf\nimport functools\ndef g(x, training=False):\n    return x\n"
            "f = tf.recompute_grad(functools.partial(g, training=True))\nz = f(a)\n"
        ),
        # rebound: unknown
        Valid(
            "import tensorflow as tf\ndef g(x, training=False):\n    return x\n"
            "f = tf.recompute_grad(g)\nif cond:\n    f = g\nz = f(a, training=True)\n"
        ),
        Valid("import tensorflow as tf\ndef g(x):\n    return x\nf = tf.recompute_grad(g)\nz = f(a, **kw)\n"),
        Valid(
            "import tensorflow as tf\nclass B(tf.keras.layers.Layer):\n"
            "    def __init__(self):\n        self.f = tf.recompute_grad(self.body)\n"
            "    def build(self, s):\n        self.f = self.body\n"
            "    def call(self, x):\n        return self.f(x, training=True)\n"
        ),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\ndef g(x, training=False):\n    return x\n"
            "f = tf.recompute_grad(g)\nz = f(a, training=True)\n",
            line=5,
            message_contains=("'f'", "training", "functools.partial"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.recompute_grad\ndef block(x, w):\n    return x @ w\n"
            "y = block(x=a, w=b)\n",
            lines=[5, 5],
            message_contains=("'block'", "positionally"),
        ),
        Invalid(
            "import tensorflow as tf\n"
            "class Block(tf.keras.layers.Layer):\n"
            "    def __init__(self, block):\n"
            "        super().__init__()\n"
            "        self.block = block\n"
            "        self.f = tf.recompute_grad(self.block)\n"
            "    def call(self, x, training=False):\n"
            "        return self.f(x, training=training)\n",
            line=8,
            message_contains=("'self.f'", "training"),
        ),
        Invalid(
            "import tensorflow as tf\ndef g(x, scale=1.0):\n    return x * scale\n"
            "def run(x):\n    return tf.recompute_grad(g)(x, scale=2.0)\n",
            line=5,
        ),
    )

    def check(self, ctx) -> None:
        for site in ctx.index.calls:
            call = site.node
            if not any(a.keyword is not None for a in call.args):
                continue
            target = recompute_target(ctx, call, site.scope)
            if target is None:
                continue
            for arg in call.args:
                if arg.keyword is None or arg.star:
                    continue
                kw = arg.keyword.value
                option = (
                    target.with_default is not None and kw in target.with_default
                ) or kw in target.kwonly
                if option:
                    wrapped = (dotted_name(target.wrapped) if target.wrapped is not None else None) or (
                        target.function.name if target.function is not None and target.function.name else "<function>"
                    )
                    how = (
                        f"bind it outside the recomputed function instead "
                        f"(tf.recompute_grad(functools.partial({wrapped}, {kw}=...)) or a closure)"
                    )
                else:
                    how = "pass it positionally"
                eager = "" if option else ", and eagerly a tensor passed by keyword gets no gradient"
                ctx.report(
                    arg,
                    f"'{target.name}' is wrapped by tf.recompute_grad, which does not accept keyword "
                    f"arguments: '{kw}=' raises a ValueError under tf.function (and Keras fit){eager}; "
                    f"{how}",
                    subject=target.name,
                )


class RecomputeGradRandomness(Rule):
    code = "TGL502"
    name = "recompute-grad-randomness"
    severity = "warning"
    triggers = ("recompute_grad",)
    summary = "A `tf.recompute_grad`-wrapped function draws randomness; the recomputation draws again."
    what = (
        "Finds random draws in a function wrapped by `tf.recompute_grad` (its body, its lambdas "
        "and the nested functions it calls): `tf.random.*` (not the stateless ops), "
        "`tf.nn.dropout`, `keras.random.*` without an int seed, and Keras `Dropout`-family layers "
        "(built there, held in a `self.` attribute, or in a wrapped `keras.Sequential`), except "
        "with `training=False` or a literal zero rate."
    )
    why = (
        "`tf.recompute_grad` runs the function again in the backward pass: the second run draws "
        "a different dropout mask or noise, so the gradients are those of a different function "
        "than the one the forward pass computed."
    )
    tensorflow_error = "None: no error; the gradients silently do not match the forward pass."
    example = """\
import tensorflow as tf

def block(x):
    x = tf.keras.activations.relu(x)
    return tf.nn.dropout(x, rate=0.1)

block = tf.recompute_grad(block)
"""
    instead = """\
import tensorflow as tf

def block(x, mask):
    return tf.keras.activations.relu(x) * mask  # the mask is an input: the same in both runs

mask = tf.cast(tf.random.uniform(shape) > 0.1, tf.float32) / 0.9
y = tf.recompute_grad(block)(x, mask)
"""
    valid = (
        Valid(
            "import tensorflow as tf\ndef block(x):\n"
            "    return x * tf.random.stateless_uniform(tf.shape(x), seed=[1, 2])\n"
            "f = tf.recompute_grad(block)\n"
        ),
        Valid("import tensorflow as tf\ndef block(x):\n    return tf.nn.dropout(x, 0.1)\ny = block(x)\n"),
        Valid(
            "import tensorflow as tf\ndef block(x):\n    return tf.keras.layers.Dropout(0.5)(x, training=False)\n"
            "f = tf.recompute_grad(block)\n"
        ),
        Valid("import keras\ndef block(x):\n    return x + keras.random.normal((2,), seed=3)\nf = keras.ops.identity(block)\n"),
        Valid(
            "import tensorflow as tf\nimport keras\ndef block(x):\n    return x + keras.random.normal((2,), seed=3)\n"
            "f = tf.recompute_grad(block)\n"
        ),
        Valid(
            "import tensorflow as tf\ndef block(x):\n    def unused():\n        return tf.random.normal((2,))\n"
            "    return x\nf = tf.recompute_grad(block)\n"
        ),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\ndef block(x):\n    x = tf.nn.relu(x)\n    return tf.nn.dropout(x, rate=0.1)\n\n"
            "block = tf.recompute_grad(block)\n",
            line=5,
            message_contains=("'block'", "tf.nn.dropout", "different random draw"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.recompute_grad\ndef noisy(x):\n"
            "    return x + tf.random.normal(tf.shape(x), stddev=0.1)\n",
            line=4,
        ),
        Invalid(
            "import tensorflow as tf\n"
            "class Block(tf.keras.layers.Layer):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.dense = tf.keras.layers.Dense(8)\n"
            "        self.drop = tf.keras.layers.Dropout(0.2)\n"
            "        self.f = tf.recompute_grad(self.body)\n"
            "    def body(self, x):\n"
            "        return self.drop(self.dense(x))\n",
            line=9,
            message_contains=("self.drop",),
        ),
        Invalid(
            "import tensorflow as tf\n"
            "class Net(tf.keras.Model):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.block = tf.keras.Sequential([tf.keras.layers.Dense(8), tf.keras.layers.Dropout(0.1)])\n"
            "        self.f = tf.recompute_grad(self.block)\n",
            line=5,
            message_contains=("Dropout",),
        ),
        Invalid(
            "import tensorflow as tf\ndef block(x):\n    return tf.map_fn(lambda t: tf.random.uniform(()) * t, x)\n"
            "f = tf.recompute_grad(block)\n",
            line=3,
        ),
    )

    def check(self, ctx) -> None:
        for name, _marker, scope, fn, wrapped in recompute_wrapped(ctx):
            if fn is None:
                if wrapped is not None:
                    for node, what in _sequential_random_layers(ctx, wrapped, scope):
                        self._report(ctx, node, name, what)
                continue
            cls = _class_of(fn)
            self_name = _self_of(fn)
            for body in _body_scopes(ctx, fn):
                for site in body.calls:
                    what = _random_draw(ctx, site.node, site.scope, cls, self_name)
                    if what is not None:
                        self._report(ctx, site.node, name, what)

    def _report(self, ctx, node: cst.CSTNode, name: str, what: str) -> None:
        ctx.report(
            node,
            f"'{name}' is wrapped by tf.recompute_grad but draws randomness with {what}: the "
            f"backward pass recomputes it with a different random draw, so the gradients do not "
            f"match the forward pass; draw the randomness outside and pass it in (or use a "
            f"stateless op with a fixed seed)",
            subject=name,
        )


class RecomputeGradCreatesLayers(Rule):
    code = "TGL503"
    name = "recompute-grad-creates-layers"
    triggers = ("recompute_grad",)
    summary = "A `tf.recompute_grad`-wrapped function constructs Keras layers or variables on each call."
    what = (
        "Finds constructions of Keras layers that own weights (`Dense`, `Conv2D`, "
        "`BatchNormalization`, `LSTM`, ...) and of `tf.Variable` inside a function wrapped by "
        "`tf.recompute_grad` (its body, its lambdas and the nested functions it calls). "
        "Constructions under an `if`/`try` (lazy creation) are not reported."
    )
    why = (
        "The function runs twice (forward, then again in the backward pass): each run builds new "
        "layers with new weights. The gradients are taken with respect to the recomputation's "
        "fresh weights, so the weights the forward pass used get zero gradients and training "
        "silently does not progress (and every call leaks new variables)."
    )
    tensorflow_error = "None: no error; the forward pass's weights get zero gradients."
    example = """\
import tensorflow as tf

@tf.recompute_grad
def block(x):
    return tf.keras.layers.Dense(64, activation="relu")(x)
"""
    instead = """\
import tensorflow as tf

dense = tf.keras.layers.Dense(64, activation="relu")  # built once

@tf.recompute_grad
def block(x):
    return dense(x)
"""
    valid = (
        Valid(
            "import tensorflow as tf\ndense = tf.keras.layers.Dense(4)\n@tf.recompute_grad\n"
            "def block(x):\n    return dense(x)\n"
        ),
        Valid(
            "import tensorflow as tf\ndef block(x):\n    return tf.keras.layers.Dense(4)(x)\ny = block(x)\n"
        ),
        Valid(
            "import tensorflow as tf\nclass B(tf.keras.layers.Layer):\n"
            "    def body(self, x):\n"
            "        if self.dense is None:\n            self.dense = tf.keras.layers.Dense(4)\n"
            "        return self.dense(x)\n"
            "    def call(self, x):\n        return tf.recompute_grad(self.body)(x)\n"
        ),
        Valid(
            "import tensorflow as tf\n@tf.recompute_grad\ndef block(x):\n"
            "    return tf.keras.layers.ReLU()(tf.keras.layers.Flatten()(x))\n"
        ),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\n@tf.recompute_grad\ndef block(x):\n"
            "    return tf.keras.layers.Dense(64, activation='relu')(x)\n",
            line=5,
            message_contains=("'block'", "Dense", "zero gradients"),
        ),
        Invalid(
            "import tensorflow as tf\ndef block(x):\n    w = tf.Variable(tf.ones((3, 3)))\n"
            "    return x @ w\nf = tf.recompute_grad(block)\n",
            line=3,
            message_contains=("tf.Variable",),
        ),
        Invalid(
            "from tensorflow import keras\nimport tensorflow as tf\n"
            "class Net(keras.Model):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.f = tf.recompute_grad(self.body)\n"
            "    def body(self, x):\n"
            "        h = keras.layers.Conv2D(8, 3)(x)\n"
            "        return keras.layers.BatchNormalization()(h)\n",
            lines=[8, 9],
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for name, _marker, _scope, fn, _wrapped in recompute_wrapped(ctx):
            if fn is None:
                continue
            for body in _body_scopes(ctx, fn):
                for site in body.calls:
                    call = site.node
                    q = index.qualified(call.func, site.scope)
                    layer = _layer_class(q)
                    if layer in WEIGHTED_LAYERS:
                        what = f"keras.layers.{layer}"
                    elif q in names.TF_VARIABLE:
                        what = "tf.Variable"
                    else:
                        continue
                    if _inside_condition(ctx, call, fn):
                        continue
                    ctx.report(
                        call,
                        f"'{name}' is wrapped by tf.recompute_grad but constructs {what} on every "
                        f"call: the recomputation in the backward pass creates new weights, so the "
                        f"weights of the forward pass get zero gradients and training does not "
                        f"progress; create it once outside (e.g. in __init__) and use it here",
                        subject=name,
                    )
