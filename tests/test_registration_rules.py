"""TGL401, TGL402, TGL405: gradient_override_map and RegisterGradient traps."""

from __future__ import annotations

import textwrap

import pytest

from conftest import FIXTURES, lint_text
from tf_required import run_tf_script
from tfgradlint.fixes import apply_edits
from tfgradlint.rules.registration import (
    OverrideMapNoEffect,
    OverrideMapUnknownOp,
    RegisteredGradientReturnsIterator,
)

CODES = ["TGL401", "TGL402", "TGL405"]
RULES = FIXTURES / "rules"


def _pairs(text, select=CODES):
    return [(f.code, f.start.row) for f in lint_text(text, select=select, preview=True)]


def _fix_all(text, code, unsafe=False):
    findings = [f for f in lint_text(text, select=[code], preview=True) if f.fix is not None]
    findings = [f for f in findings if unsafe or f.fix.applicability == "safe"]
    return apply_edits(text, [e for f in findings for e in f.fix.edits])


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL401_bad.py", [("TGL401", 16), ("TGL401", 29), ("TGL401", 35)]),
        ("TGL401_good.py", []),
        ("TGL402_bad.py", [("TGL402", 11), ("TGL402", 23), ("TGL402", 23), ("TGL402", 28)]),
        ("TGL402_good.py", []),
        ("TGL405_bad.py", [("TGL405", 9), ("TGL405", 15), ("TGL405", 20)]),
        ("TGL405_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs((RULES / name).read_text()) == expected


@pytest.mark.parametrize("rule", [OverrideMapNoEffect, OverrideMapUnknownOp, RegisteredGradientReturnsIterator])
def test_examples_fixed_source(rule):
    for example in rule.invalid:
        if example.fixed is not None:
            assert _fix_all(example.code, rule.code) == example.fixed


def test_tgl401_anchor_and_message():
    src = (RULES / "TGL401_bad.py").read_text()
    first = lint_text(src, select=["TGL401"])[0]
    assert (first.start.row, first.start.column) == (16, 10)
    assert src.splitlines()[15][first.start.column - 1:first.end.column - 1].startswith(
        "tf.compat.v1.get_default_graph().gradient_override_map("
    )
    assert "'binarize'" in first.message and "tf.custom_gradient" in first.message
    assert first.subject == "binarize"


@pytest.mark.parametrize(
    "src",
    [
        # the module runs in graph mode
        """
        import tensorflow as tf
        tf.compat.v1.disable_v2_behavior()
        class L(tf.keras.layers.Layer):
            def call(self, x):
                with tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "Identity"}):
                    return tf.sign(x)
        """,
        # a session means graph code
        """
        import tensorflow as tf
        with tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "Identity"}):
            y = tf.sign(x)
        with tf.compat.v1.Session() as sess:
            sess.run(y)
        """,
        # TensorFlow's own tests: run in graph mode by decorator
        """
        from tensorflow.python.framework import ops, test_util
        class T(test_util.TensorFlowTestCase):
            @test_util.run_deprecated_v1
            def testOverride(self):
                with ops.get_default_graph().gradient_override_map({"Sign": "Identity"}):
                    pass
        """,
        # the function is only called from a graph block, two levels up
        """
        import tensorflow as tf
        def binarize(x):
            with tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "Identity"}):
                return tf.sign(x)
        def layer(x):
            return binarize(x) * 2.0
        def build():
            with tf.Graph().as_default() as g:
                return layer(tf.ones(3))
        """,
        # inside a function wrapped by tf.function later (the tape may be outside)
        """
        import tensorflow as tf
        def binarize(x):
            with tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "Identity"}):
                return tf.sign(x)
        fast = tf.function(binarize)
        """,
        # not used as a context manager
        """
        import tensorflow as tf
        ctx = tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "Identity"})
        """,
        # a method called through another object: unknown callers
        """
        import tensorflow as tf
        class Q:
            def quantize(self, x):
                with tf.compat.v1.get_default_graph().gradient_override_map({"Round": "Identity"}):
                    return tf.round(x)
        """,
    ],
)
def test_tgl401_silent(src):
    assert _pairs(textwrap.dedent(src), ["TGL401"]) == []


def test_tgl401_follows_callers_through_helpers():
    src = textwrap.dedent(
        """
        import tensorflow as tf
        def binarize(x):
            with tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "Identity"}):
                return tf.sign(x)
        def quantized_dense(x, w):
            return x @ binarize(w)
        class Net(tf.keras.Model):
            def call(self, x):
                return quantized_dense(x, self.w)
        """
    )
    assert _pairs(src, ["TGL401"]) == [("TGL401", 4)]


def test_tgl402_fix_keeps_quotes_and_prefix():
    src = 'with g.gradient_override_map({r"matmul": "X", "MatMul": "Y"}):\n    pass\n'
    assert _fix_all(src, "TGL402") == 'with g.gradient_override_map({r"MatMul": "X", "MatMul": "Y"}):\n    pass\n'
    [finding] = lint_text(src, select=["TGL402"])
    assert finding.fix.applicability == "safe"
    assert (finding.start.column, finding.end.column) == (31, 40)  # the key


def test_tgl402_unknown_keys_without_a_near_miss_are_silent():
    # CamelCase names may be custom ops (loaded elsewhere with tf.load_op_library)
    src = "with g.gradient_override_map({'RoiAlignCustom': 'X', 'PsRoiPool': 'Y'}):\n    pass\n"
    assert _pairs(src, ["TGL402"]) == []


def test_tgl402_project_registrations_make_a_key_known():
    src = "with g.gradient_override_map({'copy': 'copy_override'}):\n    pass\n"
    assert _pairs(src, ["TGL402"]) == [("TGL402", 1)]
    src2 = "import tensorflow as tf\ntf.no_gradient('copy')\n" + src
    assert _pairs(src2, ["TGL402"]) == []


def test_tgl405_zip_fix_is_unsafe():
    src = (RULES / "TGL405_bad.py").read_text()
    fixes = {f.start.row: f.fix.applicability for f in lint_text(src, select=["TGL405"])}
    assert fixes == {9: "safe", 15: "safe", 20: "unsafe"}
    fixed = _fix_all(src, "TGL405", unsafe=True)
    assert "return list(map(lambda _: grad * 0.5, op.inputs))" in fixed
    assert "return list(grad * mask for _ in op.inputs)" in fixed
    assert "return list(grads)" in fixed
    compile(fixed, "fixed.py", "exec")


RUNTIME_SCRIPT = r'''
import os, runpy, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
F = sys.argv[1]
out = {}
bad401 = runpy.run_path(F + "/TGL401_bad.py")
good401 = runpy.run_path(F + "/TGL401_good.py")
x = tf.constant([0.5, -2.0, 3.0])
with tf.GradientTape() as t:
    t.watch(x)
    y = bad401["binarize"](x)
out["401_bad_eager"] = t.gradient(y, x).numpy().tolist()
layer = bad401["RoundedActivation"]()
with tf.GradientTape() as t:
    t.watch(x)
    y = layer(x)
gl = t.gradient(y, x)
out["401_bad_layer"] = None if gl is None else gl.numpy().tolist()
graph, z = good401["build_graph"]()
with graph.as_default():
    xs = [op for op in graph.get_operations() if op.type == "PlaceholderWithDefault"][0].outputs[0]
    g = tf.gradients(z, xs)[0]
    with tf.compat.v1.Session(graph=graph) as sess:
        out["401_good_graph"] = sess.run(g).tolist()
with tf.GradientTape() as t:
    t.watch(x)
    y = good401["binarize"](x)
out["401_good_eager"] = t.gradient(y, x).numpy().tolist()

bad402 = runpy.run_path(F + "/TGL402_bad.py")
def graph_grad(fn):
    graph = tf.Graph()
    with graph.as_default():
        xg = tf.constant([0.5, -2.0, 3.0])
        yg = fn(graph, xg)
        gg = tf.gradients(yg, xg)[0]
        with tf.compat.v1.Session(graph=graph) as sess:
            return sess.run(gg).tolist()
out["402_bad"] = graph_grad(bad402["binarize"])
def fixed(graph, xg):
    with graph.as_default(), graph.gradient_override_map({"Sign": "Identity"}):
        return tf.sign(xg)
out["402_fixed"] = graph_grad(fixed)

runpy.run_path(F + "/TGL405_bad.py")
runpy.run_path(F + "/TGL405_good.py")
def add_grad(name):
    graph = tf.Graph()
    with graph.as_default():
        a = tf.constant(2.0); b = tf.constant(3.0)
        with graph.gradient_override_map({"AddV2": name}):
            c = tf.raw_ops.AddV2(x=a, y=b)
        try:
            gs = tf.gradients(c, [a, b])
            with tf.compat.v1.Session(graph=graph) as sess:
                return ("ok", [float(v) for v in sess.run(gs)])
        except Exception as e:
            return (type(e).__name__, str(e)[:2000])
out["405_bad_map"] = add_grad("HalfAddGrad")
out["405_bad_gen"] = add_grad("MaskedAddGrad")
out["405_good"] = add_grad("HalfAddGradOk")
print(repr(out))
'''


@pytest.mark.runtime
def test_claims_hold_on_tensorflow(tmp_path):
    """The fixtures' bugs behave as the rules say on the installed TensorFlow."""
    out = run_tf_script(tmp_path, RUNTIME_SCRIPT, RULES)
    # TGL401: eagerly the override is ignored (Sign's gradient is zero, Round's is None) ...
    assert out["401_bad_eager"] == [0.0, 0.0, 0.0]
    assert out["401_bad_layer"] in (None, [0.0, 0.0, 0.0])
    # ... while in a graph the same map works, and tf.custom_gradient works eagerly
    assert out["401_good_graph"] == [[1.0, 1.0], [1.0, 1.0]]
    assert out["401_good_eager"] == [1.0, 1.0, 1.0]
    # TGL402: a lowercase key is ignored even in a graph; the correct op type works
    assert out["402_bad"] == [0.0, 0.0, 0.0]
    assert out["402_fixed"] == [1.0, 1.0, 1.0]
    # TGL405: an iterator counts as one gradient for a two-input op
    for key in ("405_bad_map", "405_bad_gen"):
        kind, message = out[key]
        assert kind == "ValueError" and "Num gradients 1 generated" in message and "num inputs 2" in message
    assert out["405_good"] == ("ok", [0.5, 0.5])
