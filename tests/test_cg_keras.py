"""TGL110, TGL116, TGL119: custom gradients in Keras layers."""

from __future__ import annotations

import textwrap

import pytest

from conftest import FIXTURES, lint_text
from test_cg_variables import apply_fixes
from tf_required import run_tf_script

CODES = ["TGL102", "TGL110", "TGL116", "TGL119"]
RULES = FIXTURES / "rules"


def _pairs(path, select=CODES):
    return [(f.code, f.start.row) for f in lint_text(path.read_text(), select=select, preview=True)]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL110_bad.py", [("TGL110", 6)]),
        ("TGL110_good.py", []),
        ("TGL116_bad.py", [("TGL116", 11)]),
        ("TGL116_good.py", []),
        ("TGL119_bad.py", [("TGL119", 23)]),
        ("TGL119_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs(RULES / name) == expected


def test_tgl110_anchor_is_the_decorator():
    (f,) = lint_text((RULES / "TGL110_bad.py").read_text(), select=["TGL110"])
    assert (f.start.row, f.start.column, f.end.row, f.end.column) == (6, 5, 6, 24)
    assert "'GradClipDense'" in f.message and "tf.convert_to_tensor" in f.message


def test_tgl116_anchor_is_the_method_name():
    (f,) = lint_text((RULES / "TGL116_bad.py").read_text(), select=["TGL116"])
    assert (f.start.row, f.start.column, f.end.column) == (11, 9, 16)


def test_tgl119_fix_edit():
    src = (RULES / "TGL119_bad.py").read_text()
    (f,) = lint_text(src, select=["TGL119"])
    assert f.fix is not None and f.fix.applicability == "safe"
    (edit,) = f.fix.edits
    assert (edit.content, edit.start.row, edit.start.column, edit.end.row, edit.end.column) == (
        "tf.convert_to_tensor(self.slope)", 23, 30, 23, 40
    )
    fixed = apply_fixes(src, [f])
    assert "        return soft_prelu(x, tf.convert_to_tensor(self.slope))\n" in fixed
    assert lint_text(fixed, select=["TGL119"]) == []


def test_tgl119_fix_uses_the_module_alias_or_none():
    src = textwrap.dedent(
        """
        import tensorflow.compat.v2 as tf2
        import keras

        @tf2.custom_gradient
        def scale(x, w):
            return x * w, lambda dy: (dy * w, dy * x)

        class S(keras.layers.Layer):
            def build(self, s):
                self.w = self.add_weight(shape=(3,))
            def call(self, x):
                return scale(x, w=self.w)
        """
    )
    (f,) = lint_text(src, select=["TGL119"])
    assert f.fix.edits[0].content == "tf2.convert_to_tensor(self.w)"
    # tensorflow not importable under a name (only keras): the finding has no fix
    no_tf = src.replace("import tensorflow.compat.v2 as tf2\n", "from tensorflow import custom_gradient\n").replace(
        "@tf2.custom_gradient", "@custom_gradient"
    )
    (f,) = lint_text(no_tf, select=["TGL119"])
    assert f.fix is None
    # a local name shadowing the alias is not usable
    shadowed = src.replace("    def call(self, x):\n", "    def call(self, x, tf2=None):\n")
    (f,) = lint_text(shadowed, select=["TGL119"])
    assert f.fix is None


@pytest.mark.parametrize(
    "src",
    [
        # the weight converted with .value / tf.identity / a keras.ops cast
        """
        import keras, tensorflow as tf
        @tf.custom_gradient
        def scale(x, w):
            return x * w, lambda dy: (dy * w, dy * x)
        class S(keras.layers.Layer):
            def build(self, s):
                self.w = self.add_weight(shape=(3,))
            def call(self, x):
                y = scale(x, keras.ops.convert_to_tensor(self.w, dtype=x.dtype))
                y = scale(y, self.w.value)
                return scale(y, tf.identity(self.w))
        """,
        # the weight assigned from something unknown as well
        """
        import keras, tensorflow as tf
        @tf.custom_gradient
        def scale(x, w):
            return x * w, lambda dy: (dy * w, dy * x)
        class S(keras.layers.Layer):
            def build(self, s):
                self.w = self.add_weight(shape=(3,))
            def reset(self, w):
                self.w = w
            def call(self, x):
                return scale(x, self.w)
        """,
        # the grad fn is unknown (a helper builds it)
        """
        import keras, tensorflow as tf
        @tf.custom_gradient
        def scale(x, w):
            return x * w, make_grad(x, w)
        class S(keras.layers.Layer):
            def build(self, s):
                self.w = self.add_weight(shape=(3,))
            def call(self, x):
                return scale(x, self.w)
        """,
        # tf.Module holds tf.Variables, not Keras variables
        """
        import tensorflow as tf
        @tf.custom_gradient
        def scale(x, w):
            return x * w, lambda dy: (dy * w, dy * x)
        class S(tf.Module):
            def __init__(self):
                self.kernel = tf.Variable(1.0)
            def __call__(self, x):
                return scale(x, self.kernel)
        """,
    ],
)
def test_tgl119_silent(src):
    assert lint_text(textwrap.dedent(src), select=["TGL119"]) == []


def test_tgl119_dense_kernel_by_name():
    src = textwrap.dedent(
        """
        import tensorflow as tf
        @tf.custom_gradient
        def mm(x, w):
            return tf.matmul(x, w), lambda dy: (dy, dy)
        dense = tf.keras.layers.Dense(3)
        dense.build((None, 3))
        y = mm(tf.ones((1, 3)), dense.kernel)
        """
    )
    (f,) = lint_text(src, select=["TGL119"])
    assert f.start.row == 8 and "dense.kernel" in f.message


def test_tgl119_keras_ops_convert_to_tensor_is_not_a_conversion():
    src = textwrap.dedent(
        """
        import keras
        import tensorflow as tf
        from keras import ops

        @ops.custom_gradient
        def scale(x, w):
            def grad(*args, upstream=None):
                return upstream * w, upstream * x
            return x * w, grad

        class S(keras.layers.Layer):
            def build(self, s):
                self.w = self.add_weight(shape=(3,))
            def call(self, x):
                return scale(x, ops.convert_to_tensor(self.w))
        """
    )
    (f,) = lint_text(src, select=["TGL119"])
    assert f.start.row == 16 and "keras.ops.convert_to_tensor(self.w) returns the Keras 3 weight unchanged" in f.message
    (edit,) = f.fix.edits
    assert edit.content == "tf.convert_to_tensor(self.w)"
    assert (edit.start.row, edit.start.column, edit.end.row, edit.end.column) == (16, 25, 16, 54)
    assert lint_text(apply_fixes(src, [f]), select=["TGL119"]) == []


def test_tgl116_references_anywhere_in_the_module_count():
    src = (RULES / "TGL116_bad.py").read_text()
    assert lint_text(src + "\nREVERSE = GradientReversal().reverse\n", select=["TGL116"]) == []
    assert lint_text(src + "\nMETHOD = 'reverse'\n", select=["TGL116"]) == []


RUNTIME_SCRIPT = r'''
import os, runpy, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf

F = sys.argv[1]
x = tf.constant([[-1.0, 2.0, 3.0], [0.5, -2.0, 1.0]])

def layer_grads(layer, function=False):
    def run(x):
        with tf.GradientTape() as t:
            loss = tf.reduce_sum(layer(x))
        return t.gradient(loss, layer.trainable_variables)
    if function:
        run = tf.function(run)
    return [None if g is None else g.numpy().round(4).tolist() for g in run(x)]

def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as e:
        return (type(e).__name__, str(e))

out = {}
for name in ("bad", "good"):
    m = runpy.run_path(F + f"/TGL110_{name}.py")
    out[f"110_{name}"] = outcome(layer_grads, m["GradClipDense"](2))
    out[f"110_{name}_fn"] = outcome(layer_grads, m["GradClipDense"](2), True)
    m = runpy.run_path(F + f"/TGL116_{name}.py")
    layer = m["GradientReversal"]()
    def input_grad():
        with tf.GradientTape() as t:
            t.watch(x)
            loss = tf.reduce_sum(layer(x))
        return t.gradient(loss, x).numpy().tolist()
    out[f"116_{name}"] = outcome(input_grad)
    m = runpy.run_path(F + f"/TGL119_{name}.py")
    out[f"119_{name}"] = outcome(layer_grads, m["SoftPReLU"]())
    out[f"119_{name}_fn"] = outcome(layer_grads, m["SoftPReLU"](), True)
m = runpy.run_path(F + "/TGL119_bad.py")
out["119_sliced"] = outcome(layer_grads, m["ProjectedPReLU"](3))

import keras

class ViaKerasOps(m["SoftPReLU"]):
    def call(self, x):
        return m["soft_prelu"](x, keras.ops.convert_to_tensor(self.slope))

class ViaValue(m["SoftPReLU"]):
    def call(self, x):
        return m["soft_prelu"](x, self.slope.value)

out["119_keras_ops"] = outcome(layer_grads, ViaKerasOps())
out["119_value"] = outcome(layer_grads, ViaValue())
print(repr(out))
'''


@pytest.mark.runtime
def test_claims_hold_on_tensorflow(tmp_path):
    """TF 2.21 / Keras 3: the bad fixtures fail or misbehave as the rules say; the good ones work."""
    out = run_tf_script(tmp_path, RUNTIME_SCRIPT, RULES)
    variables_error = "grad_fn must accept keyword argument 'variables'"
    # TGL110: the weights are variables; fails eagerly and under tf.function
    assert out["110_bad"][0] == "TypeError" and variables_error in out["110_bad"][1]
    assert out["110_bad_fn"][0] == "TypeError" and variables_error in out["110_bad_fn"][1]
    assert out["110_good"][0] == "ok" and out["110_good_fn"][0] == "ok"
    # TGL116: the unused method leaves the gradient unreversed
    assert out["116_bad"] == ("ok", [[1.0] * 3] * 2)
    assert out["116_good"] == ("ok", [[-1.0] * 3] * 2)
    # TGL119: the Keras 3 weight fails eagerly (under tf.function the arguments are converted)
    assert out["119_bad"][0] == "TypeError" and variables_error in out["119_bad"][1]
    assert out["119_bad_fn"][0] == "ok"
    # converted, it works in both modes and the gradient reaches the weight
    assert out["119_good"][0] == "ok" and out["119_good"] == out["119_good_fn"]
    (slope_grad,) = out["119_good"][1]
    assert slope_grad is not None and any(g != 0 for g in slope_grad)
    # a slice of a weight is a tensor: no error, not reported
    assert out["119_sliced"][0] == "ok"
    # keras.ops.convert_to_tensor returns the Keras variable unchanged: still the error
    assert out["119_keras_ops"][0] == "TypeError" and variables_error in out["119_keras_ops"][1]
    # .value is the tf.Variable itself, which TensorFlow takes as an input
    assert out["119_value"] == out["119_good"]
