"""TGL101, TGL105, TGL106, TGL107, TGL113: counts of the tf.custom_gradient contract."""

from __future__ import annotations

import libcst as cst
import pytest
from conftest import FIXTURES, lint_text

from tfgradlint.gradients import Resolver, callee_kind, sequence_inputs
from tfgradlint.index import ModuleIndex

CODES = ["TGL101", "TGL105", "TGL106", "TGL107", "TGL113", "TGL108", "TGL114", "TGL115"]
RULES = FIXTURES / "rules"


def _pairs(path, select=CODES):
    return [(f.code, f.start.row) for f in lint_text(path.read_text(), select=select, preview=True)]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL101_bad.py", [("TGL101", 12), ("TGL101", 21), ("TGL101", 34)]),
        ("TGL101_good.py", []),
        ("TGL105_bad.py", [("TGL105", 8), ("TGL105", 15)]),
        ("TGL105_good.py", []),
        ("TGL106_bad.py", [("TGL106", 10), ("TGL106", 20)]),
        ("TGL106_good.py", []),
        ("TGL107_bad.py", [("TGL107", 7), ("TGL107", 15)]),
        ("TGL107_good.py", []),
        ("TGL113_bad.py", [("TGL113", 7)]),
        ("TGL113_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs(RULES / name) == expected


def test_tgl113_is_preview_only():
    text = (RULES / "TGL113_bad.py").read_text()
    assert [f for f in lint_text(text) if f.code == "TGL113"] == []


def _apply(text, finding):
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out = text
    for e in sorted(finding.fix.edits, key=lambda e: e.start, reverse=True):
        a = offsets[e.start.row - 1] + e.start.column - 1
        b = offsets[e.end.row - 1] + e.end.column - 1
        out = out[:a] + e.content + out[b:]
    return out


FLIP = (
    "import tensorflow as tf\n@tf.custom_gradient\ndef flip(x, l):\n    def grad(dy):\n"
    "        return -dy * l\n    return tf.identity(x), grad\n"
)


@pytest.mark.parametrize(
    "before,after",
    [
        ("        return -dy * l\n", "        return (-dy * l, None)\n"),
        ("        return (dy,)\n", "        return (dy, None,)\n"),
    ],
)
def test_tgl101_fix_appends_none(before, after):
    text = FLIP.replace("        return -dy * l\n", before)
    [finding] = lint_text(text, select=["TGL101"])
    assert finding.fix is not None and finding.fix.applicability == "unsafe"
    assert "'l'" in finding.fix.message and "check" in finding.fix.message
    fixed = _apply(text, finding)
    cst.parse_module(fixed)
    assert fixed.replace(" ", "").replace(",)", ")") == text.replace(before, after).replace(" ", "").replace(",)", ")")
    assert lint_text(fixed, select=["TGL101"]) == []


def test_tgl101_fix_positions_for_a_single_expression():
    [finding] = lint_text(FLIP, select=["TGL101"])
    assert (finding.start.row, finding.start.column) == (5, 9)  # the return statement
    [edit] = finding.fix.edits
    assert edit.content == "(-dy * l, None)"
    assert (edit.start.row, edit.start.column, edit.end.row, edit.end.column) == (5, 16, 5, 23)


def test_tgl101_fix_for_a_list_and_a_lambda():
    text = FLIP.replace("return -dy * l", "return [dy * l]").replace("(x, l)", "(x, l, m)")
    [finding] = lint_text(text, select=["TGL101"])
    fixed = _apply(text, finding)
    assert "return [dy * l, None, None]" in fixed
    assert lint_text(fixed, select=["TGL101"]) == []
    lam = "import tensorflow as tf\n@tf.custom_gradient\ndef flip(x, l):\n    return tf.identity(x), lambda dy: -dy\n"
    [finding] = lint_text(lam, select=["TGL101"])
    fixed = _apply(lam, finding)
    assert "lambda dy: (-dy, None)" in fixed
    assert lint_text(fixed, select=["TGL101"]) == []


def test_tgl101_no_fix_when_too_many_or_defaults_or_empty():
    too_many = FLIP.replace("return -dy * l", "return -dy * l, None, None")
    [finding] = lint_text(too_many, select=["TGL101"])
    assert finding.fix is None
    empty = FLIP.replace("return -dy * l", "return []")
    [finding] = lint_text(empty, select=["TGL101"])
    assert finding.fix is None and "0 gradients" in finding.message


@pytest.mark.parametrize(
    "body",
    [
        "        return tuple(gs)\n",
        "        return helper(dy)\n",
        "        return (*gs, None)\n",
        "        return self.backward(dy)\n",
        "        return tf.nest.map_structure(lambda g: g, gs)\n",
        "        return tf.gradients(dy, [x, l])\n",
        "        return tf.unstack(dy)\n",
        "        return gs\n",
        "        return [g for g in gs]\n",
    ],
)
def test_tgl101_unknown_counts_are_silent(body):
    text = FLIP.replace("        return -dy * l\n", "        gs = helper(dy)\n" + body)
    assert lint_text(text, select=["TGL101"]) == []


@pytest.mark.parametrize(
    "use",
    [
        "    n = len(x)\n",
        "    for t in x:\n        pass\n",
        "    a, b = x\n",
        "    first = x[0]\n",
        "    s = tf.stack(x)\n",
        "    s = tf.nest.flatten(x)\n",
        "    s = x['a']\n",
        "    s = x.loc\n",
        "    s = helper(*x)\n",
    ],
)
def test_tgl101_sequence_input_is_silent(use):
    text = FLIP.replace("def flip(x, l):\n", "def flip(x, l):\n" + use)
    assert lint_text(text, select=["TGL101"]) == []


def test_tgl101_tensor_attributes_are_not_sequence_uses():
    text = FLIP.replace("def flip(x, l):\n", "def flip(x, l):\n    s = x.shape\n    d = x.dtype\n")
    assert [f.code for f in lint_text(text, select=["TGL101"])] == ["TGL101"]


@pytest.mark.parametrize(
    "call",
    [
        "y = flip([a, b], 0.5)\n",
        "y = flip(*inputs)\n",
        "y = flip(x, l=0.5)\n",
    ],
)
def test_tgl101_call_sites_that_change_the_count_are_silent(call):
    assert lint_text(FLIP + call, select=["TGL101"]) == []


def test_tgl101_plain_call_keeps_the_finding():
    assert [f.code for f in lint_text(FLIP + "y = flip(a, 0.5)\n", select=["TGL101"])] == ["TGL101"]


def test_tgl101_other_decorator_below_is_silent():
    text = FLIP.replace("@tf.custom_gradient\n", "@tf.custom_gradient\n@some_wrapper\n")
    assert lint_text(text, select=["TGL101"]) == []


def test_tgl101_names_bound_to_tensors_and_unpacked_ops():
    text = (
        "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    def grad(dz):\n"
        "        a, b = tf.split(dz, 2)\n        return a\n    return x * y, grad\n"
    )
    assert [f.code for f in lint_text(text, select=["TGL101"])] == ["TGL101"]
    text = text.replace("a, b = tf.split(dz, 2)", "a, b = helper(dz)")
    assert lint_text(text, select=["TGL101"]) == []


def test_tgl101_aliases_and_call_form():
    text = (
        "from tensorflow import custom_gradient as cg\nimport tensorflow as tf1\n"
        "def _flip(x, l):\n    def grad(dy):\n        return tf1.negative(dy)\n    return tf1.identity(x), grad\n"
        "flip = cg(_flip)\n"
    )
    assert [(f.code, f.start.row) for f in lint_text(text, select=["TGL101"])] == [("TGL101", 5)]


def test_tgl101_shadowed_custom_gradient_is_not_tensorflow():
    text = FLIP.replace("import tensorflow as tf\n", "import tensorflow as tf\ntf = MyLib()\n")
    assert lint_text(text, select=CODES, preview=True) == []


def test_tfp_custom_gradient_never_triggers():
    text = (
        "import tensorflow as tf\nimport tensorflow_probability as tfp\n"
        "from tensorflow_probability.python.internal import custom_gradient as tfp_custom_gradient\n"
        "def f(x, y):\n"
        "    return tfp.math.custom_gradient(x * y, lambda dy: dy, x)\n"
        "@tfp_custom_gradient.custom_gradient\n"
        "def g(x, y):\n    return x * y, lambda dy: dy\n"
    )
    assert lint_text(text, select=CODES, preview=True) == []


def test_keras_ops_custom_gradient():
    text = (
        "import keras\nfrom keras import ops\n@keras.ops.custom_gradient\ndef f(x, y):\n"
        "    def grad(upstream):\n        return ops.multiply(upstream, y)\n    return ops.multiply(x, y), grad\n"
    )
    assert [(f.code, f.start.row) for f in lint_text(text, select=CODES)] == [("TGL101", 6)]
    star = text.replace("def grad(upstream):", "def grad(*args, upstream=None):").replace(
        "ops.multiply(upstream, y)", "ops.multiply(args[0], y), None"
    )
    assert lint_text(star, select=CODES, preview=True) == []


def _index(text):
    return ModuleIndex(cst.parse_module(text))


def _call(index, src):
    for site in index.calls:
        if index.module.code_for_node(site.node) == src:
            return site
    raise AssertionError(src)


@pytest.mark.parametrize(
    "src,kind",
    [
        ("tf.matmul(a, b)", "one"),
        ("tf.math.reduce_sum(a)", "one"),
        ("tf.nn.relu(a)", "one"),
        ("tf.compat.v1.nn.relu(a)", "one"),
        ("tf.split(a, 2)", "seq"),
        ("tf.unstack(a)", "seq"),
        ("tf.nn.moments(a, [0])", "seq"),
        ("tf.math.top_k(a)", "seq"),
        ("tf.linalg.svd(a)", "seq"),
        ("tf.gradients(a, b)", "seq"),
        ("tf.while_loop(c, b, [a])", "struct"),
        ("tf.map_fn(f, a)", "struct"),
        ("tf.nest.flatten(a)", "struct"),
        ("tf.py_function(f, [a], tf.float32)", "struct"),
        ("tf.Variable(a)", None),
        ("tf.function(f)", None),
        ("tf.zeros_initializer()", None),
        ("tf.data.Dataset.range(3)", None),
        ("tf.nn.experimental.stateless_dropout(a, 0.5, s)", None),
        ("math_ops.multiply(a, b)", "one"),
        ("array_ops.split(a, 2)", "seq"),
        ("gen_array_ops.unique(a)", "seq"),
        ("gen_array_ops.identity(a)", None),
        ("ops.multiply(a, b)", "one"),
        ("ops.split(a, 2)", "seq"),
        ("kops.top_k(a, 2)", "seq"),
        ("helper(a)", None),
        ("np.ones(3)", None),
    ],
)
def test_callee_kind(src, kind):
    text = (
        "import numpy as np\nimport tensorflow as tf\nfrom keras import ops\nfrom keras.src.ops import math as kops\n"
        "from tensorflow.python.ops import math_ops, array_ops, gen_array_ops\n"
        f"y = {src}\n"
    )
    index = _index(text)
    site = _call(index, src)
    assert callee_kind(index, site.node, site.scope) == kind


def test_resolver_counts():
    text = (
        "import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n    z = tf.exp(x)\n"
        "    def grad(dy):\n        a = dy * z\n        b = a\n        gs = [a, b]\n        t = (a, b)\n"
        "        return a\n    return z, grad\n"
    )
    index = _index(text)
    r = Resolver(index)
    grad = index.cg_functions[0].grad_fns()[0].info
    name = lambda s: cst.parse_expression(s)
    assert r.is_tensor(name("dy"), grad)
    assert r.is_tensor(name("-dy * y"), grad)
    assert r.is_tensor(name("b"), grad)
    assert not r.is_tensor(name("y"), grad)  # an input: may be a list
    assert r.is_one(name("None"), grad) and r.is_one(name("0.0"), grad) and r.is_one(name("x - 1"), grad)
    assert not r.is_one(name("x * 2"), grad)  # [a] * 2 is a list
    assert r.is_one(name("x * 2.0"), grad)
    assert len(r.count(name("(a, (b, None))"), grad)) == 3
    assert r.count(name("(a, gs)"), grad) is None
    assert len(r.count(name("t"), grad)) == 2
    assert r.count(name("(*gs,)"), grad) is None
    assert r.count(name("helper(a)"), grad) is None


def test_sequence_inputs():
    text = (
        "import tensorflow as tf\n@tf.custom_gradient\ndef f(xs, w, b, c):\n"
        "    n = len(w)\n    s = b.shape\n    def grad(dy):\n        for g in c:\n            pass\n"
        "        return dy\n    return tf.add_n(xs), grad\n"
    )
    index = _index(text)
    cg = index.cg_functions[0]
    assert sequence_inputs(index, cg, ["xs", "w", "b", "c"]) == {"xs", "w", "c"}


def test_tgl106_list_input_returned_as_output_is_silent():
    text = (
        "import tensorflow as tf\n@tf.custom_gradient\ndef f(a, y):\n    n = len(a)\n"
        "    def grad(d1, d2, d3):\n        return d1, d2\n    return (a, y), grad\n"
    )
    assert lint_text(text, select=["TGL106"]) == []
    plain = text.replace("    n = len(a)\n", "")
    assert [(f.code, f.start.row) for f in lint_text(plain, select=["TGL106"])] == [("TGL106", 4)]
