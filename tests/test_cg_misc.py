"""TGL111 (NumPy in custom gradients) and TGL112 (decorator order)."""

from __future__ import annotations

import textwrap

import pytest

from conftest import FIXTURES, lint_text
from test_cg_variables import apply_fixes
from tf_required import run_tf_script

CODES = ["TGL111", "TGL112"]
RULES = FIXTURES / "rules"


def _pairs(path, select=CODES):
    return [(f.code, f.start.row) for f in lint_text(path.read_text(), select=select, preview=True)]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL111_bad.py", [("TGL111", 11), ("TGL111", 19)]),
        ("TGL111_good.py", []),
        ("TGL112_bad.py", [("TGL112", 5)]),
        ("TGL112_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs(RULES / name) == expected


def test_tgl111_messages_and_anchor():
    first, second = lint_text((RULES / "TGL111_bad.py").read_text(), select=["TGL111"])
    assert "np.abs(...) of 'x'" in first.message and "grad fn 'grad' of 'sign_ste'" in first.message
    assert (first.start.row, first.start.column, first.end.column) == (11, 16, 25)
    assert "tf.reduce_max(x).numpy()" in second.message and "'clip_by_max'" in second.message


@pytest.mark.parametrize(
    "src",
    [
        # a numpy call on a local Python value
        """
        import numpy as np, tensorflow as tf
        @tf.custom_gradient
        def f(x):
            scale = np.sqrt(2.0)
            return x * scale, lambda dy: dy * scale
        """,
        # np.float32 as a dtype
        """
        import numpy as np, tensorflow as tf
        @tf.custom_gradient
        def f(x):
            return tf.cast(x, np.float32), lambda dy: tf.cast(dy, np.float32)
        """,
        # `np` is a local name, not numpy
        """
        import tensorflow as tf
        @tf.custom_gradient
        def f(x, np):
            return x, lambda dy: np.sign(dy)
        """,
        # float() of a shape
        """
        import tensorflow as tf
        @tf.custom_gradient
        def f(x):
            n = float(x.shape[0])
            return x / n, lambda dy: dy / n
        """,
    ],
)
def test_tgl111_silent(src):
    assert lint_text(textwrap.dedent(src), select=["TGL111"]) == []


def test_tgl111_one_finding_per_expression():
    src = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        @tf.custom_gradient
        def f(x):
            return x, lambda dy: np.asarray(np.clip(dy.numpy(), -1, 1))
        """
    )
    (f,) = lint_text(src, select=["TGL111"])
    assert "dy.numpy()" in f.message


def test_tgl112_fix_swaps_the_decorators():
    src = (RULES / "TGL112_bad.py").read_text()
    (f,) = lint_text(src, select=["TGL112"])
    assert (f.start.row, f.start.column, f.end.row, f.end.column) == (5, 1, 5, 20)
    assert f.fix.applicability == "safe"
    edits = [(e.content, e.start.row, e.start.column, e.end.row, e.end.column) for e in f.fix.edits]
    assert edits == [
        ("tf.function(reduce_retracing=True)", 5, 2, 5, 20),
        ("tf.custom_gradient", 6, 2, 6, 36),
    ]
    fixed = apply_fixes(src, [f])
    assert fixed == (RULES / "TGL112_good.py").read_text().replace(
        '"""tf.function on top: it traces the custom-gradient function."""',
        '"""A compiled custom gradient with the decorators in the wrong order."""',
    )
    assert lint_text(fixed, select=["TGL112"]) == []


def test_rule_examples_fixed_sources():
    from tfgradlint.rules import all_rules

    for rule in all_rules():
        if rule.code not in ("TGL112", "TGL119"):
            continue
        for example in rule.invalid:
            findings = lint_text(example.code, select=[rule.code], preview=True)
            if example.fixed is None:
                continue
            assert apply_fixes(example.code, findings) == example.fixed, rule.code


def test_tgl112_no_fix_when_not_adjacent():
    from tfgradlint.rules.cg_misc import DecoratorOrder

    example = DecoratorOrder.invalid[-1]
    (f,) = lint_text(example.code, select=["TGL112"])
    assert f.fix is None


RUNTIME_SCRIPT = r'''
import os, runpy, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf

F = sys.argv[1]
x = tf.constant([[-1.0, 2.0, 3.0], [0.5, -0.2, 1.0]])

def input_grad(fn, function=False):
    def run(x):
        with tf.GradientTape() as t:
            t.watch(x)
            loss = tf.reduce_sum(fn(x))
        return t.gradient(loss, x)
    if function:
        run = tf.function(run)
    return run(x).numpy().round(4).tolist()

def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as e:
        return (type(e).__name__, str(e))

out = {}
for name in ("bad", "good"):
    m = runpy.run_path(F + f"/TGL111_{name}.py")
    for f in ("sign_ste", "clip_by_max"):
        out[f"111_{name}_{f}"] = outcome(input_grad, m[f])
        out[f"111_{name}_{f}_fn"] = outcome(input_grad, m[f], True)
    m = runpy.run_path(F + f"/TGL112_{name}.py")
    out[f"112_{name}"] = outcome(input_grad, m["log1pexp"])
print(repr(out))
'''


@pytest.mark.runtime
def test_claims_hold_on_tensorflow(tmp_path):
    out = run_tf_script(tmp_path, RUNTIME_SCRIPT, RULES)
    for f in ("sign_ste", "clip_by_max"):
        # NumPy works eagerly and fails under tf.function
        assert out[f"111_bad_{f}"][0] == "ok", f
        assert out[f"111_bad_{f}_fn"][0] != "ok", f
        assert out[f"111_good_{f}"] == out[f"111_good_{f}_fn"] == out[f"111_bad_{f}"], f
    assert "symbolic" in out["111_bad_sign_ste_fn"][1] or "numpy" in out["111_bad_sign_ste_fn"][1]
    assert out["112_bad"][0] == "TypeError" and "To be compatible with tf.function" in out["112_bad"][1]
    assert out["112_good"][0] == "ok"
