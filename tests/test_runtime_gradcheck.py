"""``tfgradlint gradcheck`` and ``assert_custom_gradient`` on real TensorFlow (no mocks)."""

from __future__ import annotations

import io
import json
import os

import pytest

from conftest import FIXTURES

from tf_required import require_tensorflow


pytestmark = pytest.mark.runtime
SEED = FIXTURES / "seed"
CASES = FIXTURES / "runtime" / "gradcheck_cases.py"


@pytest.fixture(scope="module")
def worker():
    require_tensorflow()
    from tfgradlint.runtime.worker import WorkerClient

    client = WorkerClient()
    yield client
    client.close()


def gradcheck(worker, *targets, output_format="json"):
    from tfgradlint.runtime.gradcheck import run_gradcheck_command

    out = io.StringIO()
    code = run_gradcheck_command([os.path.relpath(t) if not isinstance(t, str) else t for t in targets], output_format, out=out, client=worker, progress=False)
    return code, out.getvalue()


def test_seed_example_1_fails_for_x_with_compatible_inputs(worker):
    code, text = gradcheck(worker, f"{os.path.relpath(SEED / 'example1_modified_matmul.py')}::modified_matmul")
    assert code == 1
    (r,) = json.loads(text)
    assert set(r) == {"function", "filename", "line", "status", "inputs", "max_abs_error", "max_rel_error", "reason"}
    assert (r["function"], r["line"], r["status"]) == ("modified_matmul", 4, "fail")
    assert r["reason"].startswith("input 'x': worst element")
    assert "rel error 0.5" in r["reason"]  # the halved gradient
    x, y = r["inputs"]
    assert x == {"name": "x", "value": "Variable float64[2,3]", "source": "call at line 15"}
    assert y["value"] == "float64[3,2]" and y["source"] == "shape search"
    assert r["max_rel_error"] == pytest.approx(0.5, abs=1e-6)


def test_seed_example_2_passes(worker):
    code, text = gradcheck(worker, SEED / "example2_clipped_relu.py")
    assert code == 0
    (r,) = json.loads(text)
    assert (r["function"], r["status"]) == ("clipped_relu", "pass")
    assert r["max_abs_error"] < 1e-5


def test_cases_pass_fail_and_skip_for_the_right_reasons(worker):
    code, text = gradcheck(worker, CASES)
    assert code == 1
    results = {r["function"]: r for r in json.loads(text)}
    status = {name: r["status"] for name, r in results.items()}
    assert status == {
        "log1pexp": "pass",
        "sum_of_squares": "fail",
        "scaled": "pass",
        "matmul_bad_shape": "fail",
        "detached": "fail",
        "numpy_cos": "fail",
        "inner": "skipped",
        "method": "skipped",
    }
    assert "worst element" in results["sum_of_squares"]["reason"]  # the random upstream shows it
    assert "gradient has shape [], the input has [3, 2]" in results["matmul_bad_shape"]["reason"]
    assert "input 'y': gradient is None" in results["detached"]["reason"]
    assert "under tf.function" in results["numpy_cos"]["reason"]
    assert "defined inside 'make_op'" in results["inner"]["reason"]
    assert "a method of 'Ops'" in results["method"]["reason"]
    assert results["scaled"]["inputs"][1] == {"name": "alpha", "value": "2.0", "source": "default"}


def test_full_format(worker):
    code, text = gradcheck(worker, SEED, output_format="full")
    assert code == 1
    assert "example1_modified_matmul.py:4: modified_matmul: FAIL: input 'x'" in text
    assert "example2_clipped_relu.py:4: clipped_relu: PASS" in text
    assert "    inputs: x=Variable float64[2,3] (call at line 15), y=float64[3,2] (shape search)" in text
    assert text.rstrip().splitlines()[-1].startswith("gradcheck: 1 passed, 2 failed, 0 skipped; float64: step 1e-06, atol 1e-05, rtol 0.001")


def test_usage_errors_exit_2(worker, capsys):
    example = os.path.relpath(SEED / "example1_modified_matmul.py")
    assert gradcheck(worker, "no/such/file.py")[0] == 2
    assert gradcheck(worker, f"{example}::nothing")[0] == 2
    assert "'nothing' is not defined" in capsys.readouterr().err
    code, _ = gradcheck(worker, f"{example}::grad")
    assert code == 2
    assert "'grad' is not a custom-gradient function" in capsys.readouterr().err


def test_assert_custom_gradient():
    require_tensorflow()
    import tensorflow as tf

    from tfgradlint.testing import assert_custom_gradient

    @tf.custom_gradient
    def log1pexp(x):
        e = tf.exp(x)
        return tf.math.log(1 + e), lambda dy: dy * (1 - 1 / (1 + e))

    result = assert_custom_gradient(log1pexp, tf.random.normal([3, 2]))
    assert result.status == "pass" and result.precision == "float64"

    @tf.custom_gradient
    def halved(x, y):
        def grad(dy):
            return tf.matmul(dy, y, transpose_b=True) * 0.5, tf.matmul(x, dy, transpose_a=True)

        return tf.matmul(x, y), grad

    with pytest.raises(AssertionError) as info:
        assert_custom_gradient(halved, tf.random.normal([2, 3]), tf.random.normal([3, 4]))
    report = str(info.value)
    assert "halved: FAIL" in report and "x float64[2,3]: fail: worst element" in report
    assert "rel error 0.5" in report

    @tf.custom_gradient
    def ignores_upstream(x):
        return tf.reduce_sum(x * x), lambda dy: 2 * x

    with pytest.raises(AssertionError, match="ignores_upstream: FAIL"):
        assert_custom_gradient(ignores_upstream, tf.random.normal([4]))
