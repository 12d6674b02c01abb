"""TGL301-TGL307: tf.GradientTape misuse (tfgradlint/rules/tape.py, tape_flow.py)."""

from __future__ import annotations

import textwrap

import pytest
from conftest import FIXTURES, lint_text
from tf_required import run_tf_script

from tfgradlint.fixes import apply_edits
from tfgradlint.rules.tape import TapeReused

CODES = ["TGL301", "TGL302", "TGL303", "TGL304", "TGL305", "TGL306", "TGL307"]
RULES = FIXTURES / "rules"


def _pairs(text, select=CODES):
    return [(f.code, f.start.row) for f in lint_text(text, select=select, preview=True)]


def _src(text):
    return textwrap.dedent(text).lstrip("\n")


def _fix_all(text, code):
    findings = [f for f in lint_text(text, select=[code], preview=True) if f.fix is not None]
    edits = []
    for f in findings:
        for e in f.fix.edits:
            if e not in edits:
                edits.append(e)
    return apply_edits(text, edits)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL301_bad.py", [("TGL301", 15), ("TGL301", 26), ("TGL301", 36)]),
        ("TGL301_good.py", []),
        ("TGL302_bad.py", [("TGL302", 14), ("TGL301", 17), ("TGL302", 24)]),
        ("TGL302_good.py", []),
        ("TGL303_bad.py", [("TGL303", 11), ("TGL303", 21), ("TGL303", 21), ("TGL303", 29)]),
        ("TGL303_good.py", []),
        ("TGL304_bad.py", [("TGL304", 12), ("TGL304", 19)]),
        ("TGL304_good.py", []),
        ("TGL305_bad.py", [("TGL305", 11), ("TGL305", 18), ("TGL305", 24)]),
        ("TGL305_good.py", []),
        ("TGL306_bad.py", [("TGL303", 10), ("TGL306", 10)]),
        ("TGL306_good.py", []),
        ("TGL307_bad.py", [("TGL307", 11), ("TGL307", 19)]),
        ("TGL307_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs((RULES / name).read_text()) == expected


def test_examples_fixed_source():
    for example in TapeReused.invalid:
        if example.fixed is not None:
            assert _fix_all(example.code, "TGL301") == example.fixed


def test_fixture_fix_makes_tapes_persistent_and_clean():
    text = (RULES / "TGL301_bad.py").read_text()
    fixed = _fix_all(text, "TGL301")
    assert fixed.count("tf.GradientTape(persistent=True)") == 3
    assert _pairs(fixed) == []


def test_fix_keeps_one_argument_per_line():
    text = _src(
        """
        import tensorflow as tf
        w = tf.Variable(1.0)
        with tf.GradientTape(
            watch_accessed_variables=False,
        ) as tape:
            tape.watch(w)
            y = w * w
        a = tape.gradient(y, w)
        b = tape.gradient(y, w)
        """
    )
    assert "tf.GradientTape(\n    persistent=True,\n    watch_accessed_variables=False,\n)" in _fix_all(text, "TGL301")


def test_tgl301_anchor_message_and_fix_metadata():
    (f,) = lint_text((RULES / "TGL301_bad.py").read_text(), select=["TGL301"])[:1]
    assert (f.start.row, f.start.column) == (15, 16)
    assert f.end.row == 15 and f.end.column == 60  # the whole second call (end exclusive)
    assert "'train_step'" in f.message and "line 14" in f.message and "del tape" in f.message
    assert f.fix.applicability == "safe"
    assert f.subject == "train_step"


@pytest.mark.parametrize(
    "src",
    [
        # exclusive branches, then nothing
        """
        def f(flag, x):
            with tf.GradientTape() as tape:
                y = x * x
            if flag:
                g = tape.gradient(y, x)
            elif flag is None:
                g = tape.jacobian(y, x)
            else:
                g = None
            return g
        """,
        # correlated conditions: the first call may not have run
        """
        def f(flag, x):
            with tf.GradientTape() as tape:
                y = x * x
            if flag:
                a = tape.gradient(y, x)
            if not flag:
                b = tape.gradient(y, x)
        """,
        # a conditional expression and a short-circuit
        """
        def f(flag, x):
            with tf.GradientTape() as tape:
                y = x * x
            a = tape.gradient(y, x) if flag else None
            b = flag and tape.gradient(y, x)
            c = tape.gradient(y, x) if not flag else None
        """,
        # try/except that resumes: the tape is unknown afterwards
        """
        def f(x):
            with tf.GradientTape() as tape:
                y = x * x
            try:
                a = tape.gradient(y, x)
            except ValueError:
                a = None
            return a, tape.gradient(y, x)
        """,
        # tape.reset() or a private method: unknown effect
        """
        def f(x):
            with tf.GradientTape() as tape:
                y = x * x
                a = tape.gradient(y, x)
                tape.reset()
                z = x * 3.0
            return tape.gradient(z, x)
        """,
        # a nested function can use the tape at any time
        """
        def f(x):
            with tf.GradientTape() as tape:
                y = x * x
            g = lambda: tape.gradient(y, x)
            a = tape.gradient(y, x)
            b = tape.gradient(y, x)
        """,
        # aliasing
        """
        def f(x):
            with tf.GradientTape() as tape:
                y = x * x
            other = tape
            a = tape.gradient(y, x)
            b = tape.gradient(y, x)
        """,
        # rebound by a nested function through nonlocal
        """
        def f(x):
            with tf.GradientTape() as tape:
                y = x * x
            def fresh():
                nonlocal tape
                tape = tf.GradientTape()
            a = tape.gradient(y, x)
            b = tape.gradient(y, x)
        """,
        # persistent via a keyword that is not a literal, or **kwargs
        """
        def f(x, opts):
            with tf.GradientTape(**opts) as tape:
                y = x * x
            return tape.gradient(y, x), tape.gradient(y, x)
        """,
        # positional persistent=True
        """
        def f(x):
            with tf.GradientTape(True) as tape:
                y = x * x
            return tape.gradient(y, x), tape.gradient(y, x)
        """,
        # a loop that runs at most once, a loop that returns, a one-element comprehension
        """
        def f(x):
            with tf.GradientTape() as tape:
                y = x * x
            for _ in range(1):
                g = tape.gradient(y, x)
            return g
        """,
        """
        def f(xs):
            with tf.GradientTape() as tape:
                y = xs[0] * 2.0
            while True:
                g = tape.gradient(y, xs[0])
                break
            return [tape2.gradient(y, v) for v in [xs]]
        """,
        # a with block that may swallow the error
        """
        import contextlib
        def f(x):
            with tf.GradientTape() as tape:
                y = x * x
            with contextlib.suppress(RuntimeError):
                a = tape.gradient(y, x)
            b = tape.gradient(y, x)
        """,
        # not a tape
        """
        def f(tape, x):
            return tape.gradient(x), tape.gradient(x)
        """,
        """
        def f(x):
            tape = make_tape()
            return tape.gradient(x), tape.gradient(x)
        """,
        # a local GradientTape that is not TensorFlow's
        """
        class GradientTape:
            def gradient(self, *a):
                return 0
        def f(x):
            with GradientTape() as tape:
                y = x * x
            return tape.gradient(y, x), tape.gradient(y, x)
        """,
        # a tape of the same name re-created inside the loop
        """
        def f(xs):
            for x in xs:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = x * x
                yield tape.gradient(y, x)
        """,
        # a global that another function rebinds
        """
        with tf.GradientTape() as tape:
            y = w * w
        def refresh():
            global tape
            tape = tf.GradientTape()
        a = tape.gradient(y, w)
        refresh()
        b = tape.gradient(y, w)
        """,
    ],
)
def test_tgl301_silent(src):
    text = "import tensorflow as tf\nw = tf.Variable(1.0)\n" + _src(src)
    assert _pairs(text, ["TGL301"]) == []


@pytest.mark.parametrize(
    "src,line",
    [
        # the second call in the same expression
        ("a, b = tape.gradient(y, w), tape.gradient(y, w)\n", 5),
        # a call in a comprehension over several losses
        ("gs = [tape.gradient(l, w) for l in (y, 2 * y)]\n", 5),
        # nested call: the inner one runs first
        ("g = tape.gradient(tape.gradient(y, w), w)\n", 5),
        # after a try/finally that completed
        ("try:\n    a = tape.gradient(y, w)\nfinally:\n    pass\nb = tape.gradient(y, w)\n", 9),
        # in a while loop
        ("while w > 0:\n    g = tape.gradient(y, w)\n    w.assign_sub(1.0)\n", 6),
        # walrus then call
        ("if (g := tape.gradient(y, w)) is not None:\n    h = tape.jacobian(y, w)\n", 6),
        # both branches used it
        ("if w > 0:\n    a = tape.gradient(y, w)\nelse:\n    a = tape.jacobian(y, w)\nb = tape.gradient(y, w)\n", 9),
    ],
)
def test_tgl301_reports(src, line):
    text = "import tensorflow as tf\nw = tf.Variable(1.0)\nwith tf.GradientTape() as tape:\n    y = w * w\n" + src
    assert _pairs(text, ["TGL301"]) == [("TGL301", line)]


def test_tgl301_autograph_loops_are_silent_but_python_loops_are_not():
    body = _src(
        """
        import tensorflow as tf
        w = tf.Variable(1.0)
        @tf.function
        def f(n):
            with tf.GradientTape() as tape:
                y = w * w
            for i in range(n):
                g = tape.gradient(y, w)
            for v in [w, w]:
                h = tape.gradient(y, v)
        """
    )
    # range(n) may be a tf.while_loop under AutoGraph; a literal list is unrolled
    assert _pairs(body, ["TGL301"]) == [("TGL301", 10)]


@pytest.mark.parametrize(
    "src",
    [
        # watched through a list, a tuple, or by a helper that receives the tape
        "x = tf.constant(1.0)\nwith tf.GradientTape() as t:\n    t.watch((x,))\n    y = x * x\ng = t.gradient(y, x)\n",
        "x = tf.constant(1.0)\nwith tf.GradientTape() as t:\n    watch_all(t)\n    y = x * x\ng = t.gradient(y, x)\n",
        # watched through a name that may be a container holding it
        "x = tf.constant(1.0)\nxs = [x]\nwith tf.GradientTape() as t:\n    t.watch(xs)\n    y = x * x\ng = t.gradient(y, x)\n",
        # re-entered with `with t:` (and watched there)
        "x = tf.constant(1.0)\nwith tf.GradientTape() as t:\n    y = w * w\nwith t:\n    t.watch(x)\n    z = x * y\ng = t.gradient(z, x)\n",
        # a parameter or a value from elsewhere
        "def f(x):\n    with tf.GradientTape() as t:\n        y = x * x\n    return t.gradient(y, x)\n",
        "x = load()\nwith tf.GradientTape() as t:\n    y = x * x\ng = t.gradient(y, x)\n",
        # tf.constant of a tensor returns that tensor (an intermediate of the tape)
        "with tf.GradientTape() as t:\n    h = w * 2.0\n    c = tf.constant(h)\n    y = c * 3.0\ng = t.gradient(y, c)\n",
        # rebinding in a loop
        "x = tf.constant(1.0)\nfor step in range(3):\n    with tf.GradientTape() as t:\n        y = x * x\n    x = x - 0.1\n",
        # not a GradientTape
        "x = tf.constant(1.0)\ng = optimizer.gradient(y, x)\n",
        # a tape created by assignment: its block is not known
        "x = tf.constant(1.0)\nt = tf.GradientTape()\nwith t:\n    y = x * x\ng = t.gradient(y, x)\n",
    ],
)
def test_tgl303_silent(src):
    text = "import tensorflow as tf\nw = tf.Variable(1.0)\n" + src
    assert _pairs(text, ["TGL303"]) == []


def test_tgl303_watch_of_another_tensor_does_not_cover_the_source():
    text = _src(
        """
        import tensorflow as tf
        def f(model):
            a = tf.constant(1.0)
            b = tf.constant(2.0)
            with tf.GradientTape() as tape:
                tape.watch(a)
                tape.watch(model.trainable_variables)
                y = a * b
            return tape.gradient(y, [a, b])
        """
    )
    findings = lint_text(text, select=["TGL303"])
    assert [(f.start.row, f.start.column) for f in findings] == [(9, 33)]
    assert "'b'" in findings[0].message and "tape.watch(b)" in findings[0].message


def test_tgl303_and_tgl307_do_not_both_report_an_integer_source():
    text = "import tensorflow as tf\nx = tf.constant([1, 2])\nwith tf.GradientTape() as t:\n    y = x * x\ng = t.gradient(y, x)\n"
    assert _pairs(text) == [("TGL307", 5)]


def test_tgl307_dtypes():
    text = _src(
        """
        import numpy as np
        import tensorflow as tf
        a = tf.constant([1.5], dtype=tf.int32)
        b = tf.cast(tf.ones(3), tf.int64)
        c = tf.constant([1, 2], tf.float32)
        d = tf.constant(3, dtype="int32")
        e = tf.range(2, 10, 2)
        f = tf.constant(np.arange(3))
        with tf.GradientTape() as t:
            t.watch([a, b, c, d, e, f])
            y = a + b + c + d + e + f
        g = t.gradient(y, [a, b, c, d, e, f])
        """
    )
    findings = lint_text(text, select=["TGL307"])
    assert [f.message.split("'")[1] for f in findings] == ["a", "b", "d", "e"]


def test_tgl305_silent_when_the_tape_watches_a_detached_source_or_it_is_rebound():
    text = _src(
        """
        import tensorflow as tf
        w = tf.Variable(1.0)
        def f():
            s = tf.stop_gradient(w * 2.0)
            with tf.GradientTape() as tape:
                tape.watch(s)
                y = s * s
            return tape.gradient(y, s)
        def g():
            with tf.GradientTape() as tape:
                y = tf.stop_gradient(w)
                z = y
            return tape.gradient(y, z)
        """
    )
    assert _pairs(text, ["TGL305"]) == []


def test_tgl304_needs_the_conversion_inside_the_block():
    text = _src(
        """
        import numpy as np
        import tensorflow as tf
        w = tf.Variable(1.0)
        scale = np.float32(2.0)
        with tf.GradientTape() as tape:
            loss = tf.constant(scale) * 3.0
        g = tape.gradient(loss, w)
        """
    )
    assert _pairs(text, ["TGL304"]) == []


def test_tgl306_only_with_a_broken_path():
    text = _src(
        """
        import tensorflow as tf
        w = tf.Variable(1.0)
        with tf.GradientTape() as tape:
            y = w * w
        g = tape.gradient(y, w, None, tf.UnconnectedGradients.ZERO)
        x = tf.constant([1, 2])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        h = tape.gradient(y, x, unconnected_gradients="zero")
        """
    )
    findings = lint_text(text, select=["TGL306"], preview=True)
    assert [(f.start.row, f.start.column) for f in findings] == [(10, 25)]
    assert "'x' is an integer tensor" in findings[0].message


def test_tgl302_stop_recording_and_higher_order_are_silent():
    text = _src(
        """
        import tensorflow as tf
        def f(x):
            with tf.GradientTape(persistent=True) as t:
                t.watch(x)
                y = x ** 3
                dy = t.gradient(y, x)
                d2y = t.gradient(dy, x)
                with t.stop_recording():
                    g = t.gradient(y, x)
            return t.gradient(d2y, x), g
        """
    )
    assert _pairs(text, ["TGL302"]) == []


def test_module_without_tapes_is_cheap_and_silent():
    text = "import tensorflow as tf\n# GradientTape\nx = tf.constant(1.0)\n"
    assert _pairs(text) == []


def test_deeply_nested_code_does_not_crash():
    body = "x = 1\n"
    for i in range(40):
        body = f"if x > {i}:\n" + textwrap.indent(body, "    ")
    text = "import tensorflow as tf\nwith tf.GradientTape() as t:\n    y = 1\n" + body
    lint_text(text, select=CODES, preview=True)


RUNTIME_SCRIPT = r'''
import importlib.util, sys, warnings, io, logging
from pathlib import Path
import numpy as np
import tensorflow as tf
tf.get_logger().setLevel("WARNING")
rules = Path(sys.argv[1])

def load(name):
    spec = importlib.util.spec_from_file_location(name, rules / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

def run(fn, *args):
    try:
        out = fn(*args)
    except Exception as e:
        return (type(e).__name__, str(e)[:300])
    flat = tf.nest.flatten(out, expand_composites=False) if out is not None else [None]
    return ("ok", ["None" if v is None else float(tf.reduce_sum(v)) for v in flat])

out = {}
x = tf.ones((2, 3)); y = tf.ones((2, 1))
bad, good = load("TGL301_bad"), load("TGL301_good")
out["301_bad"] = [run(bad.train_step, x, y), run(bad.per_layer_gradients, x, y), run(bad.jacobian_and_gradient, x)]
out["301_good"] = [run(good.train_step, x, y), run(good.per_layer_gradients, x, y),
                   run(good.jacobian_or_gradient, x, True), run(good.two_losses, x, y)]
bad, good = load("TGL302_bad"), load("TGL302_good")
out["302_bad"] = [run(bad.critic_step, x, x * 0.5), run(bad.saliency, x)]
out["302_good"] = [run(good.critic_step, x, x * 0.5), run(good.saliency, x), run(good.third_derivative, tf.constant(2.0))]
model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
bad, good = load("TGL303_bad"), load("TGL303_good")
out["303_bad"] = [run(bad.input_saliency, model, 1), run(bad.fit_line), run(bad.numpy_source)]
out["303_good"] = [run(good.input_saliency, model, np.ones((1, 4))), run(good.watched_together), run(good.intermediate)]
bad, good = load("TGL304_bad"), load("TGL304_good")
out["304_bad"] = [run(bad.mse_step, x, y), run(bad.scalar_loss, x)]
out["304_good"] = [run(good.mse_step, x, y), run(good.scaled_loss, x, 4.0)]
bad, good = load("TGL305_bad"), load("TGL305_good")
v = tf.constant([1.0, 3.0])
out["305_bad"] = [run(bad.frozen_loss, v), run(bad.gradient_through_detached, v), run(bad.direct, v)]
out["305_good"] = [run(good.target_network_loss, v), run(good.gradient_wrt_detached, v)]
bad = load("TGL306_bad")
out["306_bad"] = run(bad.sensitivity, model)
bad, good = load("TGL307_bad"), load("TGL307_good")
out["307_bad"] = [run(bad.position_sensitivity, tf.ones((8, 2))), run(bad.count_gradient)]
out["307_good"] = [run(good.count_gradient), run(good.range_gradient)]
print(repr(out))
'''


@pytest.mark.runtime
def test_claims_hold_on_tensorflow(tmp_path):
    """The fixtures' bugs behave as the rules say on the installed TensorFlow."""
    out, stderr = run_tf_script(tmp_path, RUNTIME_SCRIPT, RULES, with_stderr=True)
    reuse = "A non-persistent GradientTape can only be used to compute one set of gradients"
    for kind, message in out["301_bad"] + out["302_bad"][:1]:
        assert kind == "RuntimeError" and reuse in message
    assert all(r[0] == "ok" and "None" not in r[1] for r in out["301_good"] + out["302_good"])
    # a persistent tape's in-block gradient works, and TensorFlow warns about it
    assert out["302_bad"][1][0] == "ok"
    assert "significantly less efficient" in stderr
    # TGL303: None for an unwatched tensor, AttributeError for a NumPy source
    assert out["303_bad"][0] == ("ok", ["None"])
    assert out["303_bad"][1] == ("ok", ["None", "None"])
    assert out["303_bad"][2][0] == "AttributeError"
    assert all(r[0] == "ok" and "None" not in r[1] for r in out["303_good"])
    # TGL304: every gradient None
    assert all(r[0] == "ok" and set(r[1]) == {"None"} for r in out["304_bad"])
    assert all(r[0] == "ok" and "None" not in r[1] for r in out["304_good"])
    # TGL305
    assert out["305_bad"] == [("ok", ["None"])] * 3
    assert all(r[0] == "ok" and "None" not in r[1] for r in out["305_good"])
    # TGL306: zeros instead of None
    assert out["306_bad"] == ("ok", [0.0])
    # TGL307: None, with TensorFlow's warning
    assert out["307_bad"] == [("ok", ["None"])] * 2
    assert "The dtype of the watched tensor must be floating" in stderr
    assert all(r[0] == "ok" and "None" not in r[1] for r in out["307_good"])


def test_tgl305_target_with_model_variables_as_sources():
    text = _src(
        """
        import tensorflow as tf
        def step(model, x):
            with tf.GradientTape() as tape:
                loss = tf.stop_gradient(tf.reduce_sum(model(x)))
            g1 = tape.gradient(loss, model.trainable_variables)
            with tf.GradientTape() as tape:
                out = tf.stop_gradient(model(x))
            return g1, tape.gradient(out, [model.layers[0].output])
        """
    )
    assert _pairs(text, ["TGL305"]) == [("TGL305", 5)]
