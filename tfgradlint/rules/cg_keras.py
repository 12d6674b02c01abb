"""TGL110, TGL116, TGL119: custom gradients in Keras layers.

A Keras layer's weights are variables, Keras calls ``call`` with keyword arguments, and a
Keras 3 weight is a ``keras.Variable`` wrapping a ``tf.Variable``, which
``tf.custom_gradient`` does not recognise as an input.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from tfgradlint.walk import iter_children

from tfgradlint.analysis import cg_target
from tfgradlint.context import FixSpec
from tfgradlint.index import CgFunction, ClassInfo, FunctionInfo, ModuleIndex, Scope
from tfgradlint.rules.base import Invalid, Rule, Valid
from tfgradlint.rules.cg_variables import (
    TRAINABLE,
    TRAINABLE_WEIGHT_ATTRS,
    attr_values,
    is_keras_class,
    is_load_name,
    keras_call_cg,
    own_body,
    self_attr_is_weight,
    self_of,
    walk_own,
    weight_creation,
)


class CustomGradientOnCall(Rule):
    code = "TGL110"
    name = "custom-gradient-on-call"
    severity = "error"
    summary = "`@tf.custom_gradient` directly on a Keras layer's `call` method."
    what = (
        "Finds `@tf.custom_gradient` (or `keras.ops.custom_gradient`) decorating the `call` or "
        "`__call__` method of a Keras `Layer`/`Model` subclass."
    )
    why = (
        "Keras passes `training`/`mask` to `call` as keyword arguments, which `tf.custom_gradient` "
        "rejects in graph mode (under `fit`), and the layer's weights are variables read in the "
        "forward pass, which the grad fn would have to take as `variables` (TGL102). This rule is "
        "reported instead of TGL102 for that method."
    )
    tensorflow_error = (
        "`The custom_gradient decorator currently supports keywords arguments only when eager "
        "execution is enabled`, or `TypeError: @tf.custom_gradient grad_fn must accept keyword "
        "argument 'variables', since function uses variables: [...]`."
    )
    example = """
import tensorflow as tf

class ClipGrad(tf.keras.layers.Dense):
    @tf.custom_gradient
    def call(self, x):
        def grad(dy):
            return tf.clip_by_norm(dy, 1.0)
        return tf.matmul(x, self.kernel), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def clipped_matmul(x, w):
    def grad(dy):
        return tf.clip_by_norm(tf.matmul(dy, w, transpose_b=True), 1.0), tf.matmul(x, dy, transpose_a=True)
    return tf.matmul(x, w), grad

class ClipGrad(tf.keras.layers.Dense):
    def call(self, x):
        return clipped_matmul(x, tf.convert_to_tensor(self.kernel))
"""
    fix_safety = (
        "This rule has no automatic fix: moving the custom gradient into a helper and passing the "
        "weights in changes the grad fn's signature and what it returns."
    )
    valid = (
        Valid("import tensorflow as tf\nclass L(tf.keras.layers.Layer):\n    def call(self, x):\n"
              "        return f(x)\n@tf.custom_gradient\ndef f(x):\n    return x, lambda dy: dy\n"),
        # tf.Module is not a Keras layer (TGL102 covers its variables)
        Valid("import tensorflow as tf\nclass M(tf.Module):\n    @tf.custom_gradient\n"
              "    def __call__(self, x):\n        return x, lambda dy: dy\n"),
        # another method name
        Valid("import tensorflow as tf\nclass L(tf.keras.layers.Layer):\n    @tf.custom_gradient\n"
              "    def reverse(self, x):\n        return x, lambda dy: -dy\n"
              "    def call(self, x):\n        return self.reverse(x)\n"),
        # not a layer
        Valid("import tensorflow as tf\nclass Op:\n    @tf.custom_gradient\n    def call(self, x):\n"
              "        return x, lambda dy: dy\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\nclass ClipGrad(tf.keras.layers.Dense):\n    @tf.custom_gradient\n"
            "    def call(self, x):\n        def grad(dy):\n            return tf.clip_by_norm(dy, 1.0)\n"
            "        return tf.matmul(x, self.kernel), grad\n",
            line=3,
            message_contains=("'ClipGrad'", "call", "training", "tf.convert_to_tensor"),
        ),
        Invalid(
            "import keras\nfrom keras import ops\nclass GradReverse(keras.layers.Layer):\n"
            "    @ops.custom_gradient\n    def call(self, x):\n        return x, lambda dy: -dy\n",
            line=4,
            message_contains=("'GradReverse'",),
        ),
        Invalid(
            "import tensorflow as tf\nclass M(tf.keras.Model):\n    @tf.custom_gradient\n"
            "    def __call__(self, x):\n        return x, lambda dy: dy\n",
            line=3,
            message_contains=("__call__",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            if not keras_call_cg(index, cg):
                continue
            cls = cg.info.cls
            assert cls is not None
            dec = ctx.code_for(cg.marker.decorator).strip()  # type: ignore[attr-defined]
            ctx.report(
                cg.marker,
                f"@{dec} on the {cg.name} method of Keras class '{cls.name}': Keras passes "
                f"training/mask as keywords (an error under fit/tf.function) and the layer's "
                f"weights are variables the grad fn would have to take; move the custom gradient "
                f"into a helper called from {cg.name}, with the weights passed in as inputs "
                f"converted with tf.convert_to_tensor",
                subject=cg.name,
            )


class UnusedCustomGradientMethod(Rule):
    code = "TGL116"
    name = "unused-custom-gradient-method"
    severity = "warning"
    summary = "A Keras layer defines a custom-gradient method that nothing calls."
    what = (
        "Finds a `tf.custom_gradient` method of a Keras `Layer`/`Model` subclass that nothing in the "
        "module references (no `self.<name>`, no `<name>`, no `getattr` string)."
    )
    why = (
        "The layer's `call` never applies the custom gradient, so the layer is a plain identity "
        "(or plain op) and the intended gradient (a gradient reversal, a clipped gradient) never "
        "happens. Nothing fails: training just does something else."
    )
    tensorflow_error = "None: the custom gradient silently never runs."
    example = """
import tensorflow as tf

class GradientReversal(tf.keras.layers.Layer):
    @tf.custom_gradient
    def reverse(self, x):
        return tf.identity(x), lambda dy: -dy

    def call(self, x):
        return x  # forgot self.reverse(x)
"""
    instead = """
import tensorflow as tf

class GradientReversal(tf.keras.layers.Layer):
    @tf.custom_gradient
    def reverse(self, x):
        return tf.identity(x), lambda dy: -dy

    def call(self, x):
        return self.reverse(x)
"""
    valid = (
        Valid("import tensorflow as tf\nclass R(tf.keras.layers.Layer):\n    @tf.custom_gradient\n"
              "    def reverse(self, x):\n        return x, lambda dy: -dy\n"
              "    def call(self, x):\n        return self.reverse(x)\n"),
        Valid("import tensorflow as tf\nclass R(tf.keras.layers.Layer):\n    @tf.custom_gradient\n"
              "    def reverse(self, x):\n        return x, lambda dy: -dy\n"
              "    def call(self, x):\n        return getattr(self, 'reverse')(x)\n"),
        Valid("import tensorflow as tf\nclass R(tf.keras.layers.Layer):\n    @tf.custom_gradient\n"
              "    def reverse(self, x):\n        return x, lambda dy: -dy\n"
              "layer = R()\ny = layer.reverse(tf.ones(3))\n"),
        # not a Keras layer
        Valid("import tensorflow as tf\nclass R:\n    @tf.custom_gradient\n"
              "    def reverse(self, x):\n        return x, lambda dy: -dy\n"),
        # call itself is applied by Keras (TGL110's business)
        Valid("import tensorflow as tf\nclass R(tf.keras.layers.Layer):\n    @tf.custom_gradient\n"
              "    def call(self, x):\n        return x, lambda dy: -dy\n"),
        # referenced through a class-body alias
        Valid("import tensorflow as tf\nclass R(tf.keras.layers.Layer):\n    @tf.custom_gradient\n"
              "    def reverse(self, x):\n        return x, lambda dy: -dy\n    forward = reverse\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\nclass GradientReversal(tf.keras.layers.Layer):\n"
            "    @tf.custom_gradient\n    def reverse(self, x):\n        return tf.identity(x), lambda dy: -dy\n\n"
            "    def call(self, x):\n        return x\n",
            line=5,
            message_contains=("'reverse'", "'GradientReversal'", "self.reverse"),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        candidates = []
        for cg in index.cg_functions:
            fn = cg.info
            cls = fn.cls
            if cls is None or fn.name is None or fn.parent is not cls:
                continue
            if fn.name in ("call", "__call__") or (fn.name.startswith("__") and fn.name.endswith("__")):
                continue
            if not isinstance(cg.marker, cst.Decorator) or not is_keras_class(index, cls):
                continue
            candidates.append(cg)
        if not candidates:
            return
        used = _referenced_names(ctx.module, {id(cg.info.node.name) for cg in candidates})  # type: ignore[union-attr]
        for cg in candidates:
            if cg.name in used:
                continue
            cls = cg.info.cls
            assert cls is not None
            ctx.report(
                cg.info.node.name,  # type: ignore[union-attr]
                f"custom-gradient method '{cg.name}' of Keras class '{cls.name}' is never used: the "
                f"layer's call does not apply it, so its custom gradient never runs; call "
                f"self.{cg.name}(...) in call (or remove it)",
                subject=cg.name,
            )


def _referenced_names(module: cst.Module, skip: set[int]) -> set[str]:
    """Names, attribute names and string constants that appear in ``module``."""
    out: set[str] = set()
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            if id(node) not in skip:
                out.add(node.value)
        elif isinstance(node, cst.SimpleString):
            try:
                value = node.evaluated_value
            except Exception:  # pragma: no cover - odd literals
                value = None
            if isinstance(value, str):
                out.add(value)
        stack.extend(iter_children(node))
    return out


# -- TGL119 -------------------------------------------------------------------------------


def _keras3_layer_construction(index: ModuleIndex, value: Optional[cst.BaseExpression], scope: Optional[Scope]) -> bool:
    """``keras.layers.Dense(...)`` and other built-in Keras 3 layers (they have kernel/bias)."""
    if not isinstance(value, cst.Call):
        return False
    q = index.qualified(value.func, scope)
    if q is None or not q.startswith("keras.layers."):
        return False
    last = q.rsplit(".", 1)[1]
    return last[:1].isupper() and last not in ("Layer", "InputLayer", "Input", "Lambda")


def keras3_weight(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope) -> Optional[str]:
    """A description of ``expr`` when it is, unconverted, a trainable Keras 3 weight."""
    if not isinstance(expr, cst.Attribute):
        return None
    attr = expr.attr.value
    base = expr.value
    me = self_of(index, scope)
    # self.<w> in a Keras 3 layer
    if isinstance(base, cst.Name) and me is not None and base.value == me[0]:
        cls = me[1]
        if not is_keras_class(index, cls, keras3_only=True):
            return None
        values = [v for v in attr_values(index, cls, attr) if not (isinstance(v, cst.Name) and v.value == "None")]
        if values:
            if all(_is_add_weight(v) and weight_creation(index, v, cls.parent) == TRAINABLE for v in values):
                return f"{me[0]}.{attr}"
            return None
        # .kernel/.bias inherited from a built-in Keras layer (keras.layers.Dense, ...)
        if attr in TRAINABLE_WEIGHT_ATTRS and _inherits_builtin_layer(index, cls) and self_attr_is_weight(
            index, cls, attr, keras3_only=True
        ):
            return f"{me[0]}.{attr}"
        return None
    if attr not in TRAINABLE_WEIGHT_ATTRS:
        return None
    # self.<sublayer>.kernel where self.<sublayer> = keras.layers.Dense(...)
    if isinstance(base, cst.Attribute) and isinstance(base.value, cst.Name) and me is not None and base.value.value == me[0]:
        values = attr_values(index, me[1], base.attr.value)
        if values and all(_keras3_layer_construction(index, v, me[1].parent) for v in values):
            return f"{me[0]}.{base.attr.value}.{attr}"
        return None
    # layer.kernel where layer = keras.layers.Dense(...)
    if isinstance(base, cst.Name):
        s, values = index.lookup(base.value, scope)
        if s is not None and len(values) == 1 and _keras3_layer_construction(index, values[0], s):
            return f"{base.value}.{attr}"
    return None


KERAS_CONVERT = "keras.ops.convert_to_tensor"


def weight_argument(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope) -> Optional[tuple[str, cst.BaseExpression, bool]]:
    """(description, the weight expression, passed through ``keras.ops.convert_to_tensor``)
    for an argument that reaches the cg function as a Keras 3 variable.

    ``keras.ops.convert_to_tensor(w)`` (no ``dtype``) returns a Keras variable unchanged on the
    TensorFlow backend (it counts as a tensor there), so it does not help.
    """
    if isinstance(expr, cst.Call) and len(expr.args) == 1 and expr.args[0].keyword is None and not expr.args[0].star:
        q = index.qualified(expr.func, scope)
        if q == KERAS_CONVERT or (q is not None and q.startswith("keras.src.ops.") and q.endswith(".convert_to_tensor")):
            inner = expr.args[0].value
            desc = keras3_weight(index, inner, scope)
            if desc is not None:
                return desc, inner, True
        return None
    desc = keras3_weight(index, expr, scope)
    return (desc, expr, False) if desc is not None else None


def _is_add_weight(value: cst.BaseExpression) -> bool:
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in ("add_weight", "add_variable")
    )


def _inherits_builtin_layer(index: ModuleIndex, cls: ClassInfo) -> bool:
    for q in index.class_bases(cls):
        if q.startswith("keras.layers."):
            last = q.rsplit(".", 1)[1]
            if last[:1].isupper() and last != "Layer":
                return True
    return False


def forward_reads_inputs(index: ModuleIndex, cg: CgFunction) -> set[str]:
    """The inputs of ``cg`` its forward body certainly reads: uses as an operand, an index
    base, or an argument of a TensorFlow / ``keras.ops`` call. Returning an input unchanged
    (``return w, grad``) or using only its ``.shape`` reads nothing: a Keras 3 weight passed
    in then causes no error."""
    fn = cg.info
    inputs = {p.name.value for p in cg.inputs(index)}
    out: set[str] = set()
    for node, parent in walk_own(own_body(fn.node)):
        if not isinstance(node, cst.Name) or node.value not in inputs or node.value in out:
            continue
        if not is_load_name(node, parent) or index.lookup(node.value, fn)[0] is not fn:
            continue
        if _operand_of(index, node, parent, fn):
            out.add(node.value)
    return out


def _operand_of(index: ModuleIndex, node: cst.Name, parent: Optional[cst.CSTNode], fn: FunctionInfo) -> bool:
    if isinstance(parent, (cst.BinaryOperation, cst.UnaryOperation)):
        return True
    if isinstance(parent, cst.Subscript) and parent.value is node:
        return True
    if isinstance(parent, cst.ComparisonTarget) or (isinstance(parent, cst.Comparison) and parent.left is node):
        comparison = parent if isinstance(parent, cst.Comparison) else index.parent(parent)
        if isinstance(comparison, cst.Comparison) and all(
            isinstance(t.operator, (cst.LessThan, cst.LessThanEqual, cst.GreaterThan, cst.GreaterThanEqual))
            for t in comparison.comparisons
        ):
            return True
        return False
    if isinstance(parent, cst.Arg) and parent.value is node:
        call = index.parent(parent)
        if isinstance(call, cst.Call):
            q = index.qualified(call.func, fn)
            return q is not None and q.startswith(("tensorflow.", "keras.ops.", "keras.src.ops.")) and not q.startswith(
                ("tensorflow.nest.", "tensorflow.py_function", "tensorflow.numpy_function", "tensorflow.debugging.",
                 "tensorflow.print", "tensorflow.Variable", "tensorflow.keras", "tensorflow.custom_gradient")
            )
    return False


def tf_alias(index: ModuleIndex, scope: Scope) -> Optional[str]:
    """A name under which ``tensorflow`` (with ``convert_to_tensor``) is usable from ``scope``."""
    s: Optional[Scope] = scope
    candidates: list[str] = []
    while s is not None:
        for local in s.imports:
            if local not in candidates:
                candidates.append(local)
        s = s.parent
    candidates.sort(key=lambda n: (n != "tf", n))
    for name in candidates:
        probe = cst.Attribute(cst.Name(name), cst.Name("convert_to_tensor"))
        if index.qualified(probe, scope) == "tensorflow.convert_to_tensor":
            return name
    return None


class KerasVariableInput(Rule):
    code = "TGL119"
    name = "keras-variable-input"
    severity = "error"
    summary = "A Keras 3 weight passed unconverted to a custom-gradient function."
    what = (
        "Finds a trainable Keras 3 weight (`self.<w>` assigned from `self.add_weight(...)` in a "
        "`keras.layers.Layer` / `tf.keras.layers.Layer` / `keras.Model` subclass, or `.kernel` / "
        "`.bias` of a built-in Keras layer) passed as an argument, unconverted, to a "
        "`tf.custom_gradient` function whose grad fn accepts neither `variables` nor `**kwargs` "
        "and whose forward pass reads that input (uses it in an operation). A function that "
        "returns the input unchanged (`return w, grad`) reads nothing and is not reported."
    )
    why = (
        "A Keras 3 variable is not a `tf.Variable`: `tf.custom_gradient` does not see it as an "
        "input, and reading it during the forward pass reads the `tf.Variable` inside it, which "
        "TensorFlow then requires the grad fn to take as `variables`. The call fails whenever it "
        "runs eagerly (a layer called directly, `run_eagerly=True`, debugging). Under "
        "`tf.function` TensorFlow converts the arguments to tensors first, so the same code works "
        "in `fit`: the bug appears only in some runs. Converted with `tf.convert_to_tensor(w)` "
        "(or `w.value`, `tf.identity(w)`) it works everywhere "
        "and the gradient still reaches the weight. `keras.ops.convert_to_tensor(w)` does not "
        "help: on the TensorFlow backend it returns the Keras variable unchanged (reported too). "
        "Keras 2 (`tf_keras`) weights are "
        "`tf.Variable`s and are not affected."
    )
    tensorflow_error = (
        "`TypeError: @tf.custom_gradient grad_fn must accept keyword argument 'variables', since "
        "function uses variables: [<tf.Variable 'dense/kernel:0' ...>]` when run eagerly."
    )
    example = """
import tensorflow as tf

@tf.custom_gradient
def scale(x, w):
    def grad(dy):
        return dy * w, tf.reduce_sum(dy * x, axis=0)
    return x * w, grad

class Scale(tf.keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return scale(x, self.w)
"""
    instead = """
    def call(self, x):
        return scale(x, tf.convert_to_tensor(self.w))
"""
    fix_safety = (
        "Safe: wraps the argument in `tf.convert_to_tensor(...)` (with the module's own name for "
        "TensorFlow). The value is the same; reading the weight now happens outside the "
        "custom-gradient function, where the tape records it, so the weight still gets its "
        "gradient through the function's input gradient. No fix is offered when TensorFlow is "
        "not imported under a usable name."
    )
    valid = (
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef scale(x, w):\n    def grad(dy):\n"
              "        return dy * w, dy * x\n    return x * w, grad\n"
              "class S(tf.keras.layers.Layer):\n    def build(self, s):\n"
              "        self.w = self.add_weight(shape=(3,))\n    def call(self, x):\n"
              "        return scale(x, tf.convert_to_tensor(self.w))\n"),
        # a plain tf.Variable is an input
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef scale(x, w):\n    def grad(dy):\n"
              "        return dy * w, dy * x\n    return x * w, grad\n"
              "class S(tf.keras.layers.Layer):\n    def __init__(self):\n        super().__init__()\n"
              "        self.w = tf.Variable(1.0)\n    def call(self, x):\n        return scale(x, self.w)\n"),
        # tf_keras (Keras 2) weights are tf.Variables
        Valid("import tensorflow as tf\nimport tf_keras\n@tf.custom_gradient\ndef scale(x, w):\n"
              "    def grad(dy):\n        return dy * w, dy * x\n    return x * w, grad\n"
              "class S(tf_keras.layers.Layer):\n    def build(self, s):\n"
              "        self.w = self.add_weight(shape=(3,))\n    def call(self, x):\n"
              "        return scale(x, self.w)\n"),
        # the grad fn takes variables
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef scale(x, w):\n"
              "    def grad(dy, variables=None):\n        return (dy * w, dy * x), [dy * x for v in variables or []]\n"
              "    return x * w, grad\nclass S(tf.keras.layers.Layer):\n    def build(self, s):\n"
              "        self.w = self.add_weight(shape=(3,))\n    def call(self, x):\n"
              "        return scale(x, self.w)\n"),
        # a non-trainable weight is not watched
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef scale(x, w):\n    def grad(dy):\n"
              "        return dy * w, dy * x\n    return x * w, grad\n"
              "class S(tf.keras.layers.Layer):\n    def build(self, s):\n"
              "        self.w = self.add_weight(shape=(3,), trainable=False)\n    def call(self, x):\n"
              "        return scale(x, self.w)\n"),
        # the forward pass returns the weight unchanged: nothing is read, no error
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef weight_constraint(w):\n"
              "    def grad(dy):\n        return tf.clip_by_norm(dy, 1.0)\n    return w, grad\n"
              "class C(tf.keras.layers.Dense):\n    def call(self, x):\n"
              "        return tf.matmul(x, weight_constraint(self.kernel))\n"),
        # the weight is read only in the grad fn (not watched there)
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef scale(x, w):\n"
              "    def grad(dy):\n        return dy * w, None\n    return tf.identity(x), grad\n"
              "class S(tf.keras.layers.Layer):\n    def build(self, s):\n"
              "        self.w = self.add_weight(shape=(3,))\n    def call(self, x):\n"
              "        return scale(x, self.w)\n"),
        # not a custom-gradient function
        Valid("import tensorflow as tf\ndef scale(x, w):\n    return x * w\n"
              "class S(tf.keras.layers.Layer):\n    def build(self, s):\n"
              "        self.w = self.add_weight(shape=(3,))\n    def call(self, x):\n"
              "        return scale(x, self.w)\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\n@tf.custom_gradient\ndef scale(x, w):\n    def grad(dy):\n"
            "        return dy * w, tf.reduce_sum(dy * x, axis=0)\n    return x * w, grad\n\n"
            "class Scale(tf.keras.layers.Layer):\n    def build(self, input_shape):\n"
            "        self.w = self.add_weight(shape=(input_shape[-1],), initializer='ones')\n\n"
            "    def call(self, x):\n        return scale(x, self.w)\n",
            line=14,
            message_contains=("self.w", "'scale'", "tf.convert_to_tensor(self.w)", "eager"),
            fixed="import tensorflow as tf\n\n@tf.custom_gradient\ndef scale(x, w):\n    def grad(dy):\n"
            "        return dy * w, tf.reduce_sum(dy * x, axis=0)\n    return x * w, grad\n\n"
            "class Scale(tf.keras.layers.Layer):\n    def build(self, input_shape):\n"
            "        self.w = self.add_weight(shape=(input_shape[-1],), initializer='ones')\n\n"
            "    def call(self, x):\n        return scale(x, tf.convert_to_tensor(self.w))\n",
        ),
        # .kernel of a built-in Keras layer held by the layer; a cg method
        Invalid(
            "import keras\nimport tensorflow as tf1\nclass Block(keras.layers.Layer):\n"
            "    def __init__(self):\n        super().__init__()\n        self.dense = keras.layers.Dense(4)\n"
            "    @tf1.custom_gradient\n    def clip(self, x, w):\n        def grad(dy):\n"
            "            return tf1.clip_by_norm(dy, 1.0), None\n        return tf1.matmul(x, w), grad\n"
            "    def call(self, x):\n        return self.clip(x, self.dense.kernel)\n",
            line=13,
            message_contains=("self.dense.kernel", "'clip'"),
            fixed="import keras\nimport tensorflow as tf1\nclass Block(keras.layers.Layer):\n"
            "    def __init__(self):\n        super().__init__()\n        self.dense = keras.layers.Dense(4)\n"
            "    @tf1.custom_gradient\n    def clip(self, x, w):\n        def grad(dy):\n"
            "            return tf1.clip_by_norm(dy, 1.0), None\n        return tf1.matmul(x, w), grad\n"
            "    def call(self, x):\n        return self.clip(x, tf1.convert_to_tensor(self.dense.kernel))\n",
        ),
        # keras.ops.convert_to_tensor returns a Keras variable unchanged on the TF backend
        Invalid(
            "import keras\nimport tensorflow as tf\n@keras.ops.custom_gradient\ndef scale(x, w):\n"
            "    def grad(*args, upstream=None):\n        return upstream * w, upstream * x\n"
            "    return x * w, grad\nclass S(keras.layers.Layer):\n    def build(self, s):\n"
            "        self.w = self.add_weight(shape=(3,))\n    def call(self, x):\n"
            "        return scale(x, keras.ops.convert_to_tensor(self.w))\n",
            line=12,
            message_contains=("keras.ops.convert_to_tensor(self.w) returns the Keras 3 weight unchanged",),
            fixed="import keras\nimport tensorflow as tf\n@keras.ops.custom_gradient\ndef scale(x, w):\n"
            "    def grad(*args, upstream=None):\n        return upstream * w, upstream * x\n"
            "    return x * w, grad\nclass S(keras.layers.Layer):\n    def build(self, s):\n"
            "        self.w = self.add_weight(shape=(3,))\n    def call(self, x):\n"
            "        return scale(x, tf.convert_to_tensor(self.w))\n",
        ),
        # a subclass of Dense: self.kernel; tensorflow not imported under a usable name: no fix
        Invalid(
            "from tensorflow import custom_gradient, matmul\nfrom tensorflow import keras\n"
            "@custom_gradient\ndef mm(x, w):\n    return matmul(x, w), lambda dy: (dy, dy)\n"
            "class D(keras.layers.Dense):\n    def call(self, x):\n        return mm(x, self.kernel)\n",
            line=8,
            message_contains=("self.kernel",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        reads_cache: dict[int, set[str]] = {}
        for site in index.calls:
            call = site.node
            if not call.args:
                continue
            weights = []
            for position, arg in enumerate(call.args):
                if arg.star:
                    break  # later positions are unknown
                found = weight_argument(index, arg.value, site.scope)
                if found is not None:
                    weights.append((position, arg, found))
            if not weights:
                continue
            target = cg_target(ctx, call, site.scope)
            if target is None or target.grad_accepts_variables is not False:
                continue
            if target.local is not None:
                cg = target.local
                if id(cg) not in reads_cache:
                    reads_cache[id(cg)] = forward_reads_inputs(index, cg)
                reads: Optional[set[str]] = reads_cache[id(cg)]
            else:
                reads = set(target.reads_inputs) if getattr(target, "reads_inputs", None) is not None else None
            if not reads:
                continue  # no input is certainly read in the forward pass: no error
            alias = tf_alias(index, site.scope)
            for position, arg, (desc, weight, via_keras) in weights:
                if arg.keyword is not None:
                    param = arg.keyword.value
                elif position < len(target.params):
                    param = target.params[position]
                else:
                    continue
                if param not in reads:
                    continue
                value = arg.value
                weight_code = ctx.code_for(weight).strip()
                fix = None
                if alias is not None:
                    fix = FixSpec(
                        "safe",
                        f"Pass {alias}.convert_to_tensor({weight_code})",
                        [(value, f"{alias}.convert_to_tensor({weight_code})")],
                    )
                how = (
                    f"keras.ops.convert_to_tensor({desc}) returns the Keras 3 weight unchanged on the "
                    f"TensorFlow backend, so the weight reaches"
                    if via_keras
                    else f"Keras 3 weight {desc} is passed unconverted as '{param}' to"
                )
                if via_keras:
                    how += f" custom-gradient function '{target.name}' as '{param}'"
                else:
                    how += f" custom-gradient function '{target.name}'"
                ctx.report(
                    value,
                    f"{how}, which reads it in its forward pass while its grad fn takes no "
                    f"'variables': TensorFlow sees the tf.Variable inside the weight and raises a "
                    f"TypeError whenever the call runs eagerly; pass "
                    f"{(alias or 'tf')}.convert_to_tensor({desc}) instead",
                    fix=fix,
                    subject=target.name,
                )
