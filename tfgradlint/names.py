"""Canonical TensorFlow names: many spellings of one API resolve to one string.

The index resolves ``tf.compat.v1.custom_gradient``, ``tensorflow.python.ops.custom_gradient
.custom_gradient`` and ``from tensorflow import custom_gradient as cg`` all to
``tensorflow.custom_gradient``, so rules compare against one name.
"""

from __future__ import annotations

import ast
from typing import Optional

# tf.custom_gradient and the APIs with its contract (keras.ops on the TensorFlow backend).
CUSTOM_GRADIENT = frozenset({"tensorflow.custom_gradient", "keras.ops.custom_gradient"})
RECOMPUTE_GRAD = frozenset({"tensorflow.recompute_grad"})
TF_FUNCTION = frozenset({"tensorflow.function"})
TF_VARIABLE = frozenset({"tensorflow.Variable"})
GRADIENT_TAPE = frozenset({"tensorflow.GradientTape"})
REGISTER_GRADIENT = frozenset({"tensorflow.RegisterGradient"})

# Layer and model weight attributes (TGL201 and its runtime confirmer).
WEIGHT_ATTRS = frozenset(
    {
        "kernel",
        "bias",
        "embeddings",
        "depthwise_kernel",
        "pointwise_kernel",
        "recurrent_kernel",
        "gamma",
        "beta",
        "moving_mean",
        "moving_variance",
    }
)
# Those Keras creates as trainable variables (BatchNormalization's moving_mean and
# moving_variance are not trainable: the tape does not watch them).
TRAINABLE_WEIGHT_ATTRS = WEIGHT_ATTRS - {"moving_mean", "moving_variance"}

# Base classes that make a class a Keras layer/model or a tf.Module (weights are variables).
KERAS_LAYER_BASES = frozenset(
    {
        "keras.layers.Layer",
        "keras.Layer",
        "keras.Model",
        "keras.models.Model",
        "keras.Sequential",
        "keras.models.Sequential",
        "tensorflow.Module",
        "tf_keras.layers.Layer",
        "tf_keras.Model",
        "tf_keras.models.Model",
    }
)
# Keras 3 (``keras`` and ``tf.keras`` from TF 2.16) as opposed to Keras 2 (``tf_keras``).
KERAS3_LAYER_BASES = frozenset(
    n for n in KERAS_LAYER_BASES if n.startswith("keras.")
)

# Modules under tensorflow/python whose public names are re-exported as tensorflow.<name>.
_TF_PRIVATE_ALIASES = {
    "ResourceVariable": "Variable",
    "backprop.GradientTape": "GradientTape",
}


def canonical(qualified: str) -> str:
    """Map one spelling of a TensorFlow/Keras name to its canonical form."""
    if qualified.startswith("tensorflow.compat.v1.") or qualified.startswith(
        "tensorflow.compat.v2."
    ):
        qualified = "tensorflow." + qualified[len("tensorflow.compat.v1.") :]
    if qualified.startswith("tensorflow.keras."):
        return "keras." + qualified[len("tensorflow.keras.") :]
    if qualified == "tensorflow.keras":
        return "keras"
    if qualified.startswith("tensorflow.python.keras.") or qualified.startswith("tf_keras."):
        return "tf_keras." + qualified.split(".keras.", 1)[1] if ".keras." in qualified else qualified
    if qualified.startswith("tensorflow.python."):
        parts = qualified.split(".")
        # tensorflow.python.<package>.<module>.<name> -> tensorflow.<name>
        if len(parts) >= 5:
            name = parts[-1]
            return "tensorflow." + _TF_PRIVATE_ALIASES.get(name, name)
        return qualified
    if qualified.startswith("keras.src."):
        parts = qualified.split(".")
        if parts[-1] in ("Layer", "Model", "Sequential", "custom_gradient"):
            return {
                "Layer": "keras.layers.Layer",
                "Model": "keras.Model",
                "Sequential": "keras.Sequential",
                "custom_gradient": "keras.ops.custom_gradient",
            }[parts[-1]]
    if qualified == "tensorflow.ResourceVariable":
        return "tensorflow.Variable"
    return qualified


def is_tensorflow(qualified: str | None) -> bool:
    return bool(qualified) and (
        qualified == "tensorflow" or qualified.startswith("tensorflow.")
    )


def ast_dotted(expr: ast.AST) -> Optional[str]:
    """``a.b.c`` for a stdlib-ast Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        parts.append(expr.id)
        return ".".join(reversed(parts))
    return None
