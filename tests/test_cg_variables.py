"""TGL102-TGL104: custom gradients of functions that read variables."""

from __future__ import annotations

import textwrap

import pytest

from conftest import FIXTURES, lint_text
from tf_required import run_tf_script

CODES = ["TGL102", "TGL103", "TGL104", "TGL110", "TGL119"]
RULES = FIXTURES / "rules"


def _pairs(path, select=CODES):
    return [(f.code, f.start.row) for f in lint_text(path.read_text(), select=select, preview=True)]


def apply_fixes(text, findings):
    """Apply every finding's fix edits (1-based rows/columns) to ``text``."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(pos):
        return offsets[pos.row - 1] + pos.column - 1

    edits = sorted((e for f in findings if f.fix for e in f.fix.edits), key=lambda e: e.start, reverse=True)
    for e in edits:
        text = text[: offset(e.start)] + e.content + text[offset(e.end):]
    return text


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL102_bad.py", [("TGL102", 22), ("TGL102", 37)]),
        ("TGL102_good.py", []),
        ("TGL103_bad.py", [("TGL103", 14), ("TGL103", 27), ("TGL103", 34)]),
        ("TGL103_good.py", []),
        ("TGL104_bad.py", [("TGL104", 17)]),
        ("TGL104_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs(RULES / name) == expected


def test_tgl102_message_and_anchor():
    findings = lint_text((RULES / "TGL102_bad.py").read_text(), select=["TGL102"])
    first, second = findings
    assert "'clipped_matmul'" in first.message and "self.kernel, self.bias" in first.message
    assert "'grad'" in first.message and "variables=None" in first.message
    assert (first.start.row, first.start.column, first.end.column) == (22, 13, 17)  # the name 'grad'
    # a lambda grad fn: anchored on `lambda dy`
    assert "'<lambda>'" in second.message and "variable temperature" in second.message
    assert (second.start.column, second.end.column) == (19, 28)


def test_tgl110_is_reported_instead_of_tgl102_for_a_keras_call():
    src = (RULES / "TGL110_bad.py").read_text()
    assert [f.code for f in lint_text(src, select=["TGL102", "TGL110"])] == ["TGL110"]
    # the same method under another name is TGL102's
    renamed = src.replace("def call(self, inputs)", "def project(self, inputs)")
    assert [f.code for f in lint_text(renamed, select=["TGL102", "TGL110"])] == ["TGL102"]


def test_keras_weight_passed_in_is_tgl119_not_tgl102():
    src = (RULES / "TGL119_bad.py").read_text()
    assert [f.code for f in lint_text(src, select=["TGL102", "TGL119"])] == ["TGL119"]


@pytest.mark.parametrize(
    "src",
    [
        # trainable given by an expression: unknown
        """
        import tensorflow as tf
        v = tf.Variable(1.0, trainable=TRAIN)
        @tf.custom_gradient
        def f(x):
            return x * v, lambda dy: dy * v
        """,
        # a name rebound to something else as well
        """
        import tensorflow as tf
        v = tf.Variable(1.0)
        v = 3.0
        @tf.custom_gradient
        def f(x):
            return x * v, lambda dy: dy * v
        """,
        # a local name shadows the module variable
        """
        import tensorflow as tf
        v = tf.Variable(1.0)
        @tf.custom_gradient
        def f(x):
            v = 2.0
            return x * v, lambda dy: dy * v
        """,
        # the attribute is assigned from a parameter: unknown
        """
        import tensorflow as tf
        class L(tf.keras.layers.Layer):
            def __init__(self, w):
                super().__init__()
                self.w = w
            @tf.custom_gradient
            def f(self, x):
                return x * self.w, lambda dy: dy * self.w
        """,
        # a non-trainable batch-norm statistic
        """
        import tensorflow as tf
        class BN(tf.keras.layers.BatchNormalization):
            @tf.custom_gradient
            def f(self, x):
                return x - self.moving_mean, lambda dy: dy
        """,
        # TensorFlow Probability's own custom_gradient is another API
        """
        import tensorflow_probability as tfp
        import tensorflow as tf
        v = tf.Variable(1.0)
        def f(x):
            return tfp.math.custom_gradient(x * v, lambda dy: dy * v, x)
        """,
    ],
)
def test_tgl102_silent_when_unknown(src):
    assert lint_text(textwrap.dedent(src), select=["TGL102"]) == []


def test_tgl102_tf_module_and_call_form():
    src = textwrap.dedent(
        """
        import tensorflow as tf
        class Affine(tf.Module):
            def __init__(self):
                self.w = tf.Variable(tf.ones((3, 3)))
            def _fwd(self, x):
                def grad(dy):
                    return dy
                return tf.matmul(x, self.w), grad
            fwd = tf.custom_gradient(_fwd)
        """
    )
    # the call form inside a class body is wrapped too
    findings = lint_text(src, select=["TGL102"])
    assert [(f.code, f.start.row) for f in findings] == [("TGL102", 7)]
    assert "self.w" in findings[0].message


def test_tgl103_fix_edit_positions():
    src = (RULES / "TGL103_bad.py").read_text()
    findings = [f for f in lint_text(src, select=["TGL103"]) if f.fix]
    assert len(findings) == 1
    (edit,) = findings[0].fix.edits
    assert findings[0].fix.applicability == "safe"
    assert (edit.content, edit.start.row, edit.start.column, edit.end.row, edit.end.column) == (
        "variables=None", 34, 18, 34, 27
    )
    fixed = apply_fixes(src, findings)
    assert "    def grad(dy, variables=None):  # (c)" in fixed
    assert [(f.code, f.start.row) for f in lint_text(fixed, select=["TGL103"])] == [("TGL103", 14), ("TGL103", 27)]


def test_tgl103_no_fix_when_a_required_parameter_follows():
    src = textwrap.dedent(
        """
        import tensorflow as tf
        @tf.custom_gradient
        def f(x):
            def grad(dy, variables, extra):
                return dy, []
            return x, grad
        """
    )
    (finding,) = lint_text(src, select=["TGL103"])
    assert finding.fix is None


def test_rule_examples_fixed_sources():
    """Each example's ``fixed`` is what applying this rule's fixes gives."""
    from tfgradlint.rules import all_rules

    for rule in all_rules():
        if rule.code not in ("TGL103",):
            continue
        for example in rule.invalid:
            if example.fixed is None:
                continue
            findings = lint_text(example.code, select=[rule.code], preview=True)
            assert apply_fixes(example.code, findings) == example.fixed


RUNTIME_SCRIPT = r'''
import os, runpy, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf

F = sys.argv[1]
x = tf.constant([-1.0, 2.0, 3.0])

def grads(fn, vars_, function=False):
    def run(x):
        with tf.GradientTape() as t:
            t.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * tf.range(1.0, 1.0 + tf.size(y, out_type=tf.float32)))
        return t.gradient(loss, [x] + vars_)
    if function:
        run = tf.function(run)
    return [g.numpy().round(4).tolist() for g in run(x)]

def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as e:
        return (type(e).__name__, str(e))

out = {}
m = runpy.run_path(F + "/TGL102_bad.py")
layer = m["ClippedDense"](2)
layer.build((None, 3))
out["102_bad_layer"] = outcome(lambda: layer(tf.ones((1, 3))))
out["102_bad_fn"] = outcome(grads, m["tempered_softmax"], [m["temperature"]], True)
m = runpy.run_path(F + "/TGL102_good.py")
layer = m["ClippedDense"](2)
layer.build((None, 3))
out["102_good_layer"] = outcome(lambda: layer(tf.ones((1, 3))).shape.as_list())
out["102_good"] = outcome(grads, m["tempered_softmax"], [m["temperature"]])
for name in ("bad", "good"):
    m = runpy.run_path(F + f"/TGL103_{name}.py")
    for f in ("leaky", "scaled_leaky", "shift"):
        vs = {"leaky": [m["alpha"]], "scaled_leaky": [m["alpha"], m["beta"]], "shift": []}[f]
        out[f"103_{name}_{f}"] = outcome(grads, m[f], vs)
        out[f"103_{name}_{f}_fn"] = outcome(grads, m[f], vs, True)
for name in ("bad", "good"):
    m = runpy.run_path(F + f"/TGL104_{name}.py")
    vs = [m["scale"], m["offset"]]
    out[f"104_{name}_fn"] = outcome(grads, m["affine"], vs, True)
out["104_autodiff"] = outcome(grads, lambda x: m["scale"] * x + m["offset"], vs)
print(repr(out))
'''


@pytest.mark.runtime
def test_claims_hold_on_tensorflow(tmp_path):
    """The fixtures' bugs fail (or mislead) on the installed TensorFlow; the fixed ones work."""
    out = run_tf_script(tmp_path, RUNTIME_SCRIPT, RULES)
    variables_error = "grad_fn must accept keyword argument 'variables'"
    assert out["102_bad_layer"][0] == "TypeError" and variables_error in out["102_bad_layer"][1]
    assert out["102_bad_fn"][0] == "TypeError" and variables_error in out["102_bad_fn"][1]
    assert out["102_good_layer"] == ("ok", [1, 2])
    assert out["102_good"][0] == "ok"
    for f in ("leaky", "scaled_leaky", "shift"):
        assert out[f"103_bad_{f}"][0] != "ok", f
        assert out[f"103_bad_{f}_fn"][0] != "ok", f
        assert out[f"103_good_{f}"][0] == "ok", f
        assert out[f"103_good_{f}"] == out[f"103_good_{f}_fn"], f
    assert "Must return gradient for each variable" in out["103_bad_scaled_leaky"][1]
    assert "missing 1 required positional argument: 'variables'" in out["103_bad_shift"][1]
    # TGL104: under tf.function the fixed-order list swaps the two variable gradients
    auto = out["104_autodiff"][1]
    assert out["104_good_fn"] == ("ok", auto)
    bad = out["104_bad_fn"][1]
    assert bad[0] == auto[0] and bad[1:] == auto[1:][::-1] != auto[1:]
