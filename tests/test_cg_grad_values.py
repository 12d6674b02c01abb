"""TGL108, TGL114, TGL115: the values a grad fn returns; and the seed document's examples."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, lint_text

CODES = ["TGL101", "TGL105", "TGL106", "TGL107", "TGL113", "TGL108", "TGL114", "TGL115"]
RULES = FIXTURES / "rules"
SEED = FIXTURES / "seed"


def _pairs(path, select=CODES, preview=True):
    return [(f.code, f.start.row) for f in lint_text(path.read_text(), select=select, preview=preview)]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL108_bad.py", [("TGL108", 7), ("TGL108", 15), ("TGL108", 23)]),
        ("TGL108_good.py", []),
        # hard_round and eager_clip also ignore the upstream gradient (TGL108)
        ("TGL114_bad.py", [("TGL108", 8), ("TGL114", 9), ("TGL114", 17), ("TGL108", 24), ("TGL114", 26)]),
        ("TGL114_good.py", []),
        ("TGL115_bad.py", [("TGL115", 9), ("TGL115", 19)]),
        ("TGL115_good.py", []),
    ],
)
def test_fixtures(name, expected):
    assert _pairs(RULES / name) == expected


def test_seed_example1_nothing_by_default_tgl115_with_preview():
    path = SEED / "example1_modified_matmul.py"
    assert _pairs(path, select=None, preview=False) == []
    findings = lint_text(path.read_text(), select=None, preview=True)
    assert [(f.code, f.start.row) for f in findings] == [("TGL115", 7)]
    f = findings[0]
    # anchored at the rebinding assignment `dy = tf.matmul(x, dy, transpose_a=True)`
    assert (f.start.column, f.end.row) == (5, 7)
    assert path.read_text().splitlines()[6][f.start.column - 1 : f.end.column - 1] == "dy = tf.matmul(x, dy, transpose_a=True)"
    assert "'dy'" in f.message and "'y'" in f.message and "modified_matmul" in f.message


@pytest.mark.parametrize("preview", [False, True])
def test_seed_example2_and_3_give_no_tgl1_findings(preview):
    assert _pairs(SEED / "example2_clipped_relu.py", select=None, preview=preview) == []
    codes = {c for c, _ in _pairs(SEED / "example3_weight_constraint.py", select=None, preview=preview)}
    assert not codes & set(CODES)


GRAD = (
    "import numpy as np\nimport tensorflow as tf\n@tf.custom_gradient\ndef f(x, n):\n"
    "    def grad(dy):\n{body}    return x * n, grad\n"
)


@pytest.mark.parametrize(
    "body",
    [
        "        return None, None\n",
        "        return tf.zeros_like(x), None\n",
        "        return tf.zeros(tf.shape(x)), 0\n",
        "        z = tf.zeros_like(x)\n        return z, None\n",
        "        return [None] * 2\n",
        "        return 0.0 * x, None\n",
        "        return tf.constant(0.0), tf.fill([2], 0.0)\n",
    ],
)
def test_tgl108_deliberate_zero_gradients_are_silent(body):
    assert lint_text(GRAD.format(body=body), select=["TGL108"]) == []


@pytest.mark.parametrize(
    "body",
    [
        "        return tf.ones_like(x), None\n",
        "        return helper(x)\n",
        "        g = tf.gradients(x * x, x)[0]\n        return g, None\n",
    ],
)
def test_tgl108_reports(body):
    [f] = lint_text(GRAD.format(body=body), select=["TGL108"])
    assert f.start.row == 5 and f.start.column == 14  # the upstream parameter
    assert (f.end.row, f.end.column) == (5, 16)


@pytest.mark.parametrize(
    "body",
    [
        "        return dy * x, None\n",
        "        def inner():\n            return dy\n        return inner() * x, None\n",
        "        dy2 = dy\n        return tf.ones_like(x), None\n",
        "        tf.print(dy)\n        return tf.ones_like(x), None\n",
    ],
)
def test_tgl108_any_read_of_the_upstream_is_a_use(body):
    assert lint_text(GRAD.format(body=body), select=["TGL108"]) == []


def test_tgl108_assignment_to_the_upstream_is_not_a_use():
    body = "        dy = tf.ones_like(x)\n        return dy, None\n"
    assert [f.code for f in lint_text(GRAD.format(body=body), select=["TGL108"])] == ["TGL108"]


def test_tgl108_variables_and_kwargs():
    body = "        return tf.ones_like(x), None\n"
    text = GRAD.format(body=body).replace("def grad(dy):", "def grad(*dys, **kwargs):")
    assert lint_text(text, select=["TGL108"]) == []
    text = GRAD.format(body=body).replace("def grad(dy):", "def grad(dy, **kwargs):")
    assert [f.code for f in lint_text(text, select=["TGL108"])] == ["TGL108"]
    text = GRAD.format(body="        return (tf.ones_like(x), None), []\n").replace(
        "def grad(dy):", "def grad(dy, variables=None):"
    )
    assert [f.code for f in lint_text(text, select=["TGL108"])] == ["TGL108"]


@pytest.mark.parametrize(
    "body,what",
    [
        ("        return np.ones(3), None\n", "a NumPy value"),
        ("        return dy.numpy() * 2, None\n", "a .numpy() value"),
        ("        return -np.ones_like(x), None\n", "a NumPy value"),
        ("        return dy, 2\n", "the Python number 2"),
        ("        return dy, -1.5\n", "the Python number -1.5"),
        ("        g = np.zeros(3)\n        return g, None\n", "a NumPy value"),
    ],
)
def test_tgl114_reports(body, what):
    findings = lint_text(GRAD.format(body=body), select=["TGL114"])
    assert len(findings) == 1 and what in findings[0].message


@pytest.mark.parametrize(
    "body",
    [
        "        return dy, None\n",
        "        return dy, 0\n",
        "        return dy, 0.0\n",
        "        return dy * np.pi, None\n",
        "        return dy * np.float32(2.0), None\n",
        "        scale = 2.0\n        return dy * scale, scale\n",
        "        return tf.convert_to_tensor(np.ones(3)), None\n",
        "        return helper(), None\n",
    ],
)
def test_tgl114_silent(body):
    assert lint_text(GRAD.format(body=body), select=["TGL114"]) == []


def test_tgl114_anchor_is_the_returned_element():
    [f] = lint_text(GRAD.format(body="        return dy * n, 1.0\n"), select=["TGL114"])
    assert (f.start.row, f.start.column, f.end.column) == (6, 24, 27)
    assert "gradient of 'n'" in f.message


@pytest.mark.parametrize(
    "body",
    [
        "        dy = tf.convert_to_tensor(dy)\n        return dy * n, dy * x\n",
        "        dy = tf.reshape(dy, tf.shape(x))\n        return dy * n, dy * x\n",
        "        dy = dy * n\n        return dy, None\n",
        "        g = dy * n\n        return g, dy * x\n",
        "        def inner(dy):\n            dy = dy * 2\n            return dy\n        return inner(dy), None\n",
    ],
)
def test_tgl115_silent(body):
    assert lint_text(GRAD.format(body=body), select=["TGL115"], preview=True) == []


def test_tgl115_is_preview_only():
    body = "        dx = dy * n\n        dy = dy * x\n        return dx, dy\n"
    assert lint_text(GRAD.format(body=body), select=None, preview=False) == []
    [f] = lint_text(GRAD.format(body=body), select=["TGL115"], preview=True)
    assert f.start.row == 7 and "gradient of 'n'" in f.message
