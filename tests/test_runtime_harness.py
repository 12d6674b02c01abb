"""The runtime layer's static side: harnesses and input evidence (no TensorFlow needed)."""

from __future__ import annotations

import ast
import textwrap

from tfgradlint.runtime.harness import ModuleSource
from tfgradlint.runtime.inputs import Evidence, combinations, input_plan

from conftest import FIXTURES

SCRIPT = textwrap.dedent(
    '''\
    """A user script that trains at import time."""
    import os
    import numpy as np
    import tensorflow as tf
    from helpers import not_needed

    SCALE = 2.0
    marker = open("marker.txt", "w")


    def helper(x, factor=SCALE):
        return x * factor


    @tf.custom_gradient
    def op(x):
        def grad(dy):
            return helper(dy)
        return helper(x), grad


    model = train_for_hours()
    print("training")
    for epoch in range(100):
        op(model)
    if __name__ == "__main__":
        main()
    '''
)


def test_harness_keeps_only_what_the_function_needs():
    mod = ModuleSource(SCRIPT, "script.py")
    text = mod.harness({"op"}).text
    assert "import tensorflow as tf" in text
    assert "SCALE = 2.0" in text  # a default argument of a needed function
    assert "def helper" in text and "def op" in text
    for absent in ("import os", "import numpy", "not_needed", "marker", "train_for_hours", "print", "for epoch", "__main__"):
        assert absent not in text, absent


def test_harness_keeps_lines_in_place():
    mod = ModuleSource(SCRIPT, "script.py")
    original = SCRIPT.splitlines()
    harness = mod.harness({"op"}).text.splitlines()
    assert len(harness) == len(original)
    for got, want in zip(harness, original):
        assert got in ("", want)
    compile(mod.harness({"op"}).text, "script.py", "exec")


def test_harness_follows_names_transitively_and_through_classes():
    src = textwrap.dedent(
        """\
        import keras
        import tensorflow as tf
        try:
            import scipy
        except ImportError:
            scipy = None
        UNITS = 4
        BASE = keras.layers.Layer
        unrelated = expensive()

        class Scale(BASE):
            units = UNITS
            def call(self, x):
                return helper(x)

        def helper(x):
            return tf.identity(x) if scipy is None else x
        """
    )
    mod = ModuleSource(src, "layer.py")
    text = mod.harness({"Scale"}).text
    for present in ("import keras", "import tensorflow", "import scipy", "UNITS = 4", "BASE =", "class Scale", "def helper"):
        assert present in text, present
    assert "expensive" not in text


def test_star_import_kept_only_for_unresolved_names():
    src = "from numpy import *\nimport tensorflow as tf\n\ndef f(x):\n    return tf.sin(x)\n\ndef g(x):\n    return sin(x)\n"
    mod = ModuleSource(src, "m.py")
    assert "from numpy import *" not in mod.harness({"f"}).text
    assert "from numpy import *" in mod.harness({"g"}).text


def test_shared_line_statements_are_split():
    src = "import tensorflow as tf; import os; os.system('echo ran')\n\ndef f(x):\n    return tf.sin(x)\n"
    text = ModuleSource(src, "m.py").harness({"f"}).text
    assert text.splitlines()[0] == "import tensorflow as tf"


def test_main_guard_and_loops_never_included():
    src = "import tensorflow as tf\nif __name__ == '__main__':\n    import os\n    X = 1\nwhile True:\n    X = 2\n\ndef f(x):\n    return x * X\n"
    text = ModuleSource(src, "m.py").harness({"f"}).text
    assert "__main__" not in text and "while" not in text


def test_evidence_reads_shapes_dtypes_and_numbers():
    src = textwrap.dedent(
        """\
        import numpy as np
        import tensorflow as tf
        A = tf.constant([[1., 2., 3.], [4., 5., 6.]])
        B = tf.Variable(tf.random.normal([2, 3]))
        C = np.zeros((4, 5))
        D = tf.random.uniform(shape=(7,), dtype=tf.float64)
        E = tf.constant([1, 2, 3])
        F = np.random.randn(3, 2).astype(np.float32)
        G = 0.5
        """
    )
    mod = ModuleSource(src, "m.py")
    ev = Evidence(mod)

    def spec(name):
        return ev.spec(ast.Name(id=name, ctx=ast.Load(), lineno=99), mod.tree, "here")

    assert spec("A")["shape"] == [2, 3] and spec("A")["dtype"] == "float32" and spec("A")["kind"] == "tensor"
    assert spec("B")["kind"] == "variable" and spec("B")["shape"] == [2, 3]
    assert spec("C")["shape"] == [4, 5] and spec("C")["dtype"] == "float64"
    assert spec("D")["shape"] == [7] and spec("D")["dtype"] == "float64"
    assert spec("E")["dtype"] == "int32" and spec("E")["values"] == [1, 2, 3]
    assert spec("F")["shape"] == [3, 2] and spec("F")["dtype"] == "float32"
    assert spec("G") == {"kind": "python", "value": 0.5, "source": "here"}


def test_seed_example_1_inputs_come_from_the_call_site_then_a_compatible_shape():
    path = FIXTURES / "seed" / "example1_modified_matmul.py"
    mod = ModuleSource(path.read_text(), str(path))
    loc = mod.find_function("modified_matmul")
    plan = input_plan(mod, loc)
    site = plan["call_sites"][0]["args"]
    assert site[0]["kind"] == "variable" and site[0]["shape"] == [2, 3]
    assert site[1]["shape"] == [2, 3] and site[1]["source"] == "call at line 15"
    rows = list(combinations(plan))
    assert [r[1]["shape"] for r in rows[:3]][0] == [2, 3]  # the file's own (incompatible) call first
    shapes = [(r[0]["shape"], r[1]["shape"]) for r in rows]
    assert ([2, 3], [3, 2]) in shapes[:6]  # x kept, y searched: a matmul-compatible pair soon


def test_defaults_stay_python_numbers():
    src = "import tensorflow as tf\n@tf.custom_gradient\ndef flip(x, l=1.0):\n    return x, lambda dy: (-dy * l, None)\n"
    mod = ModuleSource(src, "m.py")
    plan = input_plan(mod, mod.find_function("flip"))
    row = next(combinations(plan))
    assert row[1] == {"kind": "python", "value": 1.0, "source": "default"}
    assert row[0]["kind"] == "tensor"


def test_progress_bar_only_for_longer_runs():
    import io

    from tfgradlint.runtime.progress import Progress

    out = io.StringIO()
    bar = Progress(2, "Confirming", stream=out)
    bar.step("a")
    bar.step("b")
    bar.done()
    assert out.getvalue() == ""  # a short run shows nothing
    out = io.StringIO()
    bar = Progress(5, "Confirming", stream=out)
    for i in range(5):
        bar.step(f"TGL101 f.py:{i}")
    bar.done()
    text = out.getvalue()
    assert "\rConfirming [" in text and "5/5" in text and "TGL101 f.py:4" in text
    assert text.endswith("\r")  # the line is cleared at the end
    out = io.StringIO()
    bar = Progress(5, "Confirming", stream=out, enabled=False)  # not a terminal
    bar.step()
    bar.done()
    assert out.getvalue() == ""
