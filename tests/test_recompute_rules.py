"""TGL501-TGL503: tf.recompute_grad traps, and analysis.recompute_target."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from conftest import FIXTURES, lint_text
from tf_required import run_tf_script

CODES = ["TGL501", "TGL502", "TGL503"]
RULES = FIXTURES / "rules"


def _pairs(text, select=CODES):
    return [(f.code, f.start.row) for f in lint_text(text, select=select, preview=True)]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL501_bad.py", [("TGL501", 19), ("TGL501", 29), ("TGL501", 29), ("TGL501", 37)]),
        ("TGL501_good.py", []),
        ("TGL502_bad.py", [("TGL502", 14), ("TGL502", 22), ("TGL502", 23)]),
        ("TGL502_good.py", []),
        ("TGL503_bad.py", [("TGL503", 8), ("TGL503", 9), ("TGL503", 14)]),
        ("TGL503_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs((RULES / name).read_text()) == expected


def test_tgl501_anchor_is_the_keyword_argument():
    src = (RULES / "TGL501_bad.py").read_text()
    findings = lint_text(src, select=["TGL501"])
    first = findings[0]
    line = src.splitlines()[first.start.row - 1]
    assert line[first.start.column - 1:first.end.column - 1] == "training=training"
    assert "functools.partial(self._inner_forward, training=...)" in first.message
    tensor = findings[1]
    assert "pass it positionally" in tensor.message and "no gradient" in tensor.message


def _targets(src):
    """name -> RecomputeTarget for every call in ``src`` that recompute_target recognises."""
    from tfgradlint.analysis import recompute_target
    from tfgradlint.context import RuleContext
    from tfgradlint.index import ModuleIndex, dotted_name

    module = cst.parse_module(textwrap.dedent(src))
    ctx = RuleContext("t.py", src, module, ModuleIndex(module))
    out = {}
    for site in ctx.index.calls:
        t = recompute_target(ctx, site.node, site.scope)
        if t is not None:
            out[dotted_name(site.node.func) or "<call>"] = t
    return out


def test_recompute_target_forms():
    targets = _targets(
        """
        import tensorflow as tf
        def g(x, training=False):
            return x
        f = tf.recompute_grad(g)
        @tf.recompute_grad
        def h(x, y):
            return x
        class B:
            def __init__(self):
                self.f = tf.recompute_grad(self.body)
            def body(self, x, scale=1.0):
                return x
            @tf.recompute_grad
            def m(self, x):
                return x
            def call(self, x):
                return self.f(x) + self.m(x)
        f(1); h(1, 2); tf.recompute_grad(g)(3)
        def later():
            return g2(1)
        def g2(x):
            return x
        g2 = tf.recompute_grad(g2)
        """
    )
    assert set(targets) == {"f", "h", "self.f", "self.m", "<call>", "g2"}
    assert targets["f"].params == ("x", "training") and targets["f"].with_default == ("training",)
    assert targets["h"].params == ("x", "y") and targets["h"].with_default == ()
    assert targets["self.f"].params == ("x", "scale")  # bound self excluded
    assert targets["self.m"].params == ("x",)
    assert targets["<call>"].function is not None and targets["<call>"].function.name == "g"


@pytest.mark.parametrize(
    "src",
    [
        # called before the rebinding: the plain function
        """
        import tensorflow as tf
        def g(x, training=False):
            return x
        y = g(1, training=True)
        g = tf.recompute_grad(g)
        """,
        # a local shadowing tf
        """
        import tensorflow as tf
        class tf:
            recompute_grad = staticmethod(lambda f: f)
        def g(x, training=False):
            return x
        f = tf.recompute_grad(g)
        y = f(1, training=True)
        """,
        # conditional wrapping: the attribute may be the plain method
        """
        import tensorflow as tf
        class B(tf.keras.layers.Layer):
            def __init__(self, cp):
                self.f = self.body
                if cp:
                    self.f = tf.recompute_grad(self.body)
            def body(self, x, training=False):
                return x
            def call(self, x, training=False):
                return self.f(x, training=training)
        """,
    ],
)
def test_tgl501_silent(src):
    assert _pairs(textwrap.dedent(src), ["TGL501"]) == []


@pytest.mark.parametrize(
    "src",
    [
        # dropout switched off
        """
        import tensorflow as tf
        class B(tf.keras.layers.Layer):
            def __init__(self):
                self.drop = tf.keras.layers.Dropout(0.0)
                self.f = tf.recompute_grad(self.body)
            def body(self, x):
                return self.drop(x)
        """,
        # random draw outside the wrapped function
        """
        import tensorflow as tf
        def body(x, noise):
            return x + noise
        f = tf.recompute_grad(body)
        y = f(x, tf.random.normal((3,)))
        """,
        # the attribute is not always a dropout layer
        """
        import tensorflow as tf
        class B(tf.keras.layers.Layer):
            def __init__(self, rate):
                self.drop = tf.keras.layers.Dropout(rate) if rate else tf.identity
                self.f = tf.recompute_grad(self.body)
            def body(self, x):
                return self.drop(x)
        """,
    ],
)
def test_tgl502_silent(src):
    assert _pairs(textwrap.dedent(src), ["TGL502"]) == []


def test_tgl503_ignores_weightless_layers_and_lazy_creation():
    src = textwrap.dedent(
        """
        import tensorflow as tf
        class B(tf.keras.layers.Layer):
            def body(self, x):
                try:
                    dense = self.dense
                except AttributeError:
                    dense = self.dense = tf.keras.layers.Dense(4)
                return tf.keras.layers.Flatten()(dense(x))
            def call(self, x):
                return tf.recompute_grad(self.body)(x)
        """
    )
    assert _pairs(src, ["TGL503"]) == []


RUNTIME_SCRIPT = r'''
import os, runpy, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
F = sys.argv[1]
out = {}
bad501 = runpy.run_path(F + "/TGL501_bad.py")
good501 = runpy.run_path(F + "/TGL501_good.py")
x = tf.random.normal((4, 8)); w1 = tf.random.normal((8, 8)); w2 = tf.random.normal((8, 2))
def fn_call(f):
    try:
        return ("ok", [None if g is None else g.shape.as_list() for g in tf.function(f)()])
    except Exception as e:
        return (type(e).__name__, str(e)[:2000])
def grads_of(run):
    def f():
        with tf.GradientTape() as t:
            t.watch([x, w1, w2])
            y = run(x, w1, w2)
        return t.gradient(y, [x, w1, w2])
    return f
out["501_bad_fn"] = fn_call(grads_of(bad501["run"]))
out["501_good_fn"] = fn_call(grads_of(good501["run"]))
out["501_bad_eager_none"] = [g is None for g in grads_of(bad501["run"])()]
img = tf.random.normal((1, 8, 8, 3))
for name, mod in (("bad", bad501), ("good", good501)):
    block = mod["Bottleneck"](4)
    def f(block=block):
        with tf.GradientTape() as t:
            y = block(img, training=True)
        return t.gradient(y, block.trainable_variables)
    out[f"501_{name}_layer_fn"] = fn_call(f)

bad502 = runpy.run_path(F + "/TGL502_bad.py")
xp = tf.abs(tf.random.normal((1, 400))) + 1.0
with tf.GradientTape() as t:
    t.watch(xp)
    y = bad502["noisy_block"](xp, tf.eye(400))
g = t.gradient(y, xp)
# forward mask (zeros of y) vs. backward mask (zeros of the gradient)
out["502_bad_masks_equal"] = bool(np.array_equal(y.numpy() != 0, g.numpy() != 0))

bad503 = runpy.run_path(F + "/TGL503_bad.py")
good503 = runpy.run_path(F + "/TGL503_good.py")
with tf.GradientTape() as t:
    y = bad503["conv_block"](img)
vs = t.watched_variables()
gs = t.gradient(y, vs)
out["503_bad_vars"] = len(vs)
out["503_bad_all_zero"] = all(gr is None or float(tf.reduce_max(tf.abs(gr))) == 0.0 for gr in gs)
block = good503["ConvBlock"]()
block(img)
with tf.GradientTape() as t:
    y = block(img)
gs = t.gradient(y, block.trainable_variables)
out["503_good_nonzero"] = all(gr is not None and float(tf.reduce_max(tf.abs(gr))) > 0.0 for gr in gs)
print(repr(out))
'''


@pytest.mark.runtime
def test_claims_hold_on_tensorflow(tmp_path):
    """The fixtures' bugs behave as the rules say on the installed TensorFlow."""
    out = run_tf_script(tmp_path, RUNTIME_SCRIPT, RULES)
    keyword_error = "supports keywords arguments only when eager execution is enabled"
    # TGL501: keywords fail under tf.function (directly and through a Keras layer) ...
    assert out["501_bad_fn"][0] == "ValueError" and keyword_error in out["501_bad_fn"][1]
    assert out["501_bad_layer_fn"][0] == "ValueError" and keyword_error in out["501_bad_layer_fn"][1]
    assert out["501_good_fn"] == ("ok", [[4, 8], [8, 8], [8, 2]])
    assert out["501_good_layer_fn"][0] == "ok"
    # ... and eagerly the tensors passed by keyword get no gradient
    assert out["501_bad_eager_none"] == [False, True, True]
    # TGL502: the backward pass drops other units than the forward pass
    assert out["502_bad_masks_equal"] is False
    # TGL503: the forward pass's new weights get zero gradients; built-once weights train
    assert out["503_bad_vars"] >= 2 and out["503_bad_all_zero"] is True
    assert out["503_good_nonzero"] is True
