"""TGL2xx: gradient flow severed by state (variables and assignments).

A custom-gradient (cg) function's gradient runs only when the tape records the call on the
path from a trainable input to the loss. Storing the output in a variable (``tf.Variable``,
``.assign``, a layer's ``kernel``) makes a new leaf: nothing is recorded, the custom gradient
never runs and the source weight gets no gradient.
"""

from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from tfgradlint import names
from tfgradlint.analysis import CgSignature, find_cg_calls
from tfgradlint.index import CallSite, Scope
from tfgradlint.rules.base import Invalid, Rule, Valid

WEIGHT_ATTRS = names.WEIGHT_ATTRS
ASSIGN_METHODS = ("assign", "assign_add", "assign_sub")

_PREAMBLE = """\
import tensorflow as tf

@tf.custom_gradient
def weight_constraint(w):
    def grad(dy):
        return tf.clip_by_norm(dy, 1.0)
    return w, grad
"""


def _first_cg_call(ctx, expr: cst.CSTNode, scope: Scope) -> Optional[tuple[cst.Call, CgSignature]]:
    return next(find_cg_calls(ctx, expr, scope), None)


def _variable_wrapping(ctx, value: cst.BaseExpression, scope: Scope) -> Optional[tuple[cst.Call, CgSignature]]:
    """``tf.Variable(<expr with a cg call>)`` or a direct cg call."""
    if isinstance(value, cst.Call) and ctx.index.qualified(value.func, scope) in names.TF_VARIABLE:
        for arg in value.args:
            if arg.keyword is None or arg.keyword.value == "initial_value":
                return _first_cg_call(ctx, arg.value, scope)
        return None
    if isinstance(value, cst.Call):
        found = _first_cg_call(ctx, value, scope)
        if found is not None and found[0] is value:
            return found
    return None


def weight_assignments(ctx) -> Iterator[tuple[cst.CSTNode, str, cst.Call, CgSignature, bool]]:
    """(anchor, weight attribute, cg call, target, wrapped in tf.Variable) for TGL201."""
    index = ctx.index
    for scope in index.all_scopes():
        for node in scope.assigns:
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            value = node.value
            if value is None:
                continue
            for target in targets:
                if isinstance(target, cst.Attribute) and target.attr.value in WEIGHT_ATTRS:
                    found = _variable_wrapping(ctx, value, scope)
                    if found is not None:
                        wrapped = found[0] is not value
                        yield node, target.attr.value, found[0], found[1], wrapped
                        break
    for site in index.calls:
        call = site.node
        func = call.func
        if not isinstance(func, cst.Attribute):
            continue
        # <layer>.kernel.assign(cg(...))
        if (
            func.attr.value in ASSIGN_METHODS
            and isinstance(func.value, cst.Attribute)
            and func.value.attr.value in WEIGHT_ATTRS
            and call.args
        ):
            found = _first_cg_call(ctx, call.args[0].value, site.scope)
            if found is not None:
                yield call, func.value.attr.value, found[0], found[1], False
        # layer.set_weights([... cg(...) ...])
        elif func.attr.value == "set_weights" and call.args:
            found = _first_cg_call(ctx, call.args[0].value, site.scope)
            if found is not None:
                yield call, "weights", found[0], found[1], False


class CustomGradientOutputToWeight(Rule):
    code = "TGL201"
    name = "custom-gradient-output-to-weight"
    triggers = ("custom_gradient",)
    summary = "A custom-gradient output is stored in a layer weight; the custom gradient never runs."
    what = (
        "Finds the output of a `tf.custom_gradient` function assigned to a layer or model "
        "weight (`kernel`, `bias`, `embeddings`, `gamma`, ...), directly or wrapped in "
        "`tf.Variable(...)`, through `<weight>.assign(...)`, or through `layer.set_weights([...])`."
    )
    why = (
        "Wrapping the output in `tf.Variable` (or assigning it) records no gradient: the new "
        "variable is a leaf, so the custom gradient never runs during training. Keras 3 layers "
        "have no setter for `kernel` (`AttributeError: property 'kernel' of 'Dense' object has "
        "no setter`); in tf.keras 2 the assignment replaces the tracked weight, and an unbuilt "
        "layer overwrites it in `build()`."
    )
    tensorflow_error = (
        "None during training (the gradient is silently never computed); Keras 3: "
        "`AttributeError: property 'kernel' of 'Dense' object has no setter`."
    )
    example = _PREAMBLE + """
model = tf.keras.Sequential([tf.keras.layers.Dense(10)])
model.layers[0].kernel = tf.Variable(weight_constraint(tf.random.normal((10, 10))))
"""
    instead = """
import tensorflow as tf

class ConstrainedDense(tf.keras.layers.Dense):
    def call(self, inputs):
        # apply the custom-gradient function to the weight inside call
        return tf.matmul(inputs, weight_constraint(tf.convert_to_tensor(self.kernel)))

# or, for a weight constraint, Keras' own mechanism:
layer = tf.keras.layers.Dense(10, kernel_constraint=tf.keras.constraints.MaxNorm(1.0))
"""
    valid = (
        Valid(_PREAMBLE + "w = tf.Variable(tf.random.normal((3, 3)))\ny = weight_constraint(w)\n"),
        Valid(_PREAMBLE + "layer = tf.keras.layers.Dense(3)\nlayer.kernel = tf.Variable(tf.zeros((3, 3)))\n"),
        Valid("import tensorflow as tf\ndef weight_constraint(w):\n    return w\n"
              "layer = tf.keras.layers.Dense(3)\nlayer.kernel = tf.Variable(weight_constraint(tf.zeros((3, 3))))\n"),
    )
    invalid = (
        Invalid(
            _PREAMBLE
            + "model = tf.keras.Sequential([tf.keras.layers.Dense(10)])\n"
            + "model.layers[0].kernel = tf.Variable(weight_constraint(tf.random.normal((10, 10))))\n",
            line=9,
            message_contains=("weight_constraint", "kernel"),
        ),
        Invalid(_PREAMBLE + "layer = tf.keras.layers.Dense(3)\nlayer.bias = weight_constraint(tf.zeros((3,)))\n", line=9),
        Invalid(_PREAMBLE + "layer = tf.keras.layers.Dense(3)\nlayer.kernel.assign(weight_constraint(w))\n", line=9),
        Invalid(_PREAMBLE + "layer = tf.keras.layers.Dense(3)\nlayer.set_weights([weight_constraint(w)])\n", line=9),
    )

    def check(self, ctx) -> None:
        for anchor, attr, call, target, wrapped in weight_assignments(ctx):
            how = "wrapping it in tf.Variable" if wrapped else "assigning it"
            ctx.report(
                anchor,
                f"output of custom-gradient function '{target.name}' is stored in '{attr}': "
                f"{how} records no gradient, so '{target.name}''s gradient never runs in training "
                f"(and Keras 3 layers have no setter for '{attr}'); apply '{target.name}' to the "
                f"weight inside the layer's call (or use a Keras constraint=)",
                subject=target.name,
            )


class VariableSeversGradient(Rule):
    code = "TGL202"
    name = "variable-severs-gradient"
    triggers = ("custom_gradient",)
    summary = "`tf.Variable(<custom-gradient output>)` makes a leaf: no gradient reaches the inputs."
    what = "Finds `tf.Variable(...)` whose initial value contains a call of a custom-gradient function."
    why = (
        "A variable's initial value is read once, outside any tape: the new variable is a leaf, "
        "so no gradient reaches the custom-gradient function or its inputs, and its custom "
        "gradient never runs."
    )
    tensorflow_error = "None: `tape.gradient(loss, source)` silently returns None for the source."
    example = _PREAMBLE + """
w = tf.Variable(tf.random.normal((3, 3)))
v = tf.Variable(weight_constraint(w))
"""
    instead = _PREAMBLE + """
w = tf.Variable(tf.random.normal((3, 3)))
with tf.GradientTape() as tape:
    v = weight_constraint(w)  # use the output directly on the path to the loss
    loss = tf.reduce_sum(v)
"""
    valid = (
        Valid(_PREAMBLE + "v = tf.Variable(tf.zeros((3,)))\n"),
        Valid(_PREAMBLE + "layer = tf.keras.layers.Dense(3)\nlayer.kernel = tf.Variable(weight_constraint(w))\n"),
    )
    invalid = (
        Invalid(_PREAMBLE + "v = tf.Variable(weight_constraint(w))\n", line=8, message_contains=("weight_constraint",)),
        Invalid(_PREAMBLE + "v = tf.Variable(initial_value=2.0 * weight_constraint(w), trainable=True)\n", line=8),
    )

    def check(self, ctx) -> None:
        claimed = {id(c) for _, _, c, _, wrapped in weight_assignments(ctx)}
        for site in ctx.index.calls:
            call = site.node
            if ctx.index.qualified(call.func, site.scope) not in names.TF_VARIABLE:
                continue
            for arg in call.args:
                if arg.keyword is None or arg.keyword.value == "initial_value":
                    found = next(find_cg_calls(ctx, arg.value, site.scope), None)
                    if found is not None and id(found[0]) not in claimed:
                        ctx.report(
                            call,
                            f"tf.Variable of the output of custom-gradient function '{found[1].name}' "
                            f"is a leaf: no gradient reaches '{found[1].name}' or its inputs; use the "
                            f"output directly on the path to the loss",
                            subject=found[1].name,
                        )
                    break


def _training_context(ctx, site: CallSite) -> Optional[str]:
    """Why the call runs while gradients are recorded (tape, Keras call, tf.function)."""
    index = ctx.index
    if index.tape_withs(site.withs, site.scope):
        return "inside a GradientTape block"
    for fn in index.enclosing_functions(site.scope):
        if fn.is_lambda:
            continue
        if fn.cls is not None and fn.name in ("call", "train_step", "__call__") and index.is_layer_class(fn.cls):
            return f"in a Keras {fn.name}"
        if any(n in names.TF_FUNCTION for n in index.decorator_names(fn)):
            return "in a tf.function"
    return None


class AssignSeversGradient(Rule):
    code = "TGL203"
    name = "assign-severs-gradient"
    triggers = ("custom_gradient",)
    summary = "`<variable>.assign(<custom-gradient output>)` while training: the source gets no gradient."
    what = (
        "Finds `.assign(...)`, `.assign_add(...)` or `.assign_sub(...)` whose value contains a "
        "call of a custom-gradient function, inside a `GradientTape` block, a Keras "
        "`call`/`train_step`, or a `tf.function`."
    )
    why = (
        "This is the straight-through estimator done wrong: quantizing into a variable, then "
        "using the variable. An assignment is not differentiable, so the gradient to the "
        "source weight is None and the custom gradient never runs."
    )
    tensorflow_error = "None: `tape.gradient(loss, source)` silently returns None for the source."
    example = _PREAMBLE + """
w = tf.Variable(tf.random.normal((3, 3)))
q = tf.Variable(tf.zeros((3, 3)))
with tf.GradientTape() as tape:
    q.assign(weight_constraint(w))
    loss = tf.reduce_sum(q)
"""
    instead = _PREAMBLE + """
w = tf.Variable(tf.random.normal((3, 3)))
with tf.GradientTape() as tape:
    q = weight_constraint(w)
    loss = tf.reduce_sum(q)
"""
    valid = (
        Valid(_PREAMBLE + "q = tf.Variable(tf.zeros((3, 3)))\nq.assign(weight_constraint(w))\n"),
        Valid(_PREAMBLE + "with tf.GradientTape() as tape:\n    q.assign(w * 2.0)\n"),
        Valid(_PREAMBLE + "layer = tf.keras.layers.Dense(3)\nwith tf.GradientTape() as tape:\n"
              "    layer.kernel.assign(weight_constraint(w))\n"),
    )
    invalid = (
        Invalid(_PREAMBLE + "with tf.GradientTape() as tape:\n    q.assign(weight_constraint(w))\n", line=9),
        Invalid(
            _PREAMBLE
            + "class Q(tf.keras.layers.Layer):\n    def call(self, x):\n"
            + "        self.q.assign_sub(0.1 * weight_constraint(self.w))\n        return x * self.q\n",
            line=10,
            message_contains=("weight_constraint", "Keras call"),
        ),
        Invalid(_PREAMBLE + "@tf.function\ndef step(w, q):\n    q.assign(weight_constraint(w))\n", line=10),
    )

    def check(self, ctx) -> None:
        claimed = {id(anchor) for anchor, *_ in weight_assignments(ctx)}
        for site in ctx.index.calls:
            call = site.node
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value in ASSIGN_METHODS and call.args):
                continue
            if id(call) in claimed:
                continue
            found = next(find_cg_calls(ctx, call.args[0].value, site.scope), None)
            if found is None:
                continue
            where = _training_context(ctx, site)
            if where is None:
                continue
            ctx.report(
                call,
                f"{func.attr.value}() of the output of custom-gradient function '{found[1].name}' "
                f"{where}: an assignment records no gradient, so the source gets None and "
                f"'{found[1].name}''s gradient never runs; use the output directly instead of "
                f"storing it in a variable",
                subject=found[1].name,
            )
