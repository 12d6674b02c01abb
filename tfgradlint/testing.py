"""Helpers for users' own test suites.

    from tfgradlint.testing import assert_custom_gradient

    def test_my_op():
        assert_custom_gradient(my_op, tf.random.normal([4, 3]), 0.5)

``assert_custom_gradient`` runs the same numeric check as ``tfgradlint gradcheck`` (see
``tfgradlint.runtime.numeric``), in this process: the custom gradient against central finite
differences with a random upstream cotangent, a dot-product test, eagerly and under
``tf.function``, and per input: not ``None`` where the numeric gradient is not zero, a tensor,
the input's shape and dtype. Float inputs are cast to float64 first when the function accepts
float64 (pass ``float64=False`` to keep your dtypes). It raises ``AssertionError`` with the
report when the check fails or cannot run, and returns the result when it passes.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Sequence

from tfgradlint.runtime.numeric import CheckResult, check_promoted

__all__ = ["assert_custom_gradient", "CheckResult"]


def _param_names(fn: Callable, count: int) -> list[str]:
    target = getattr(fn, "__wrapped__", fn)
    try:
        params = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    names = params[:count]
    return names + [f"input {i}" for i in range(len(names), count)]


def _as_float64(values: Sequence[Any]) -> list[Any]:
    import numpy as np
    import tensorflow as tf

    out = []
    for v in values:
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            out.append(tf.constant(v, dtype=tf.float64))
        elif isinstance(v, tf.Variable) and v.dtype.is_floating:
            out.append(tf.Variable(tf.cast(v, tf.float64)))
        elif isinstance(v, tf.Tensor) and v.dtype.is_floating:
            out.append(tf.cast(v, tf.float64))
        else:
            out.append(v)
    return out


def assert_custom_gradient(
    fn: Callable,
    *inputs: Any,
    names: Optional[Sequence[str]] = None,
    atol: Optional[float] = None,
    rtol: Optional[float] = None,
    eps: Optional[float] = None,
    float64: bool = True,
    function_mode: bool = True,
    seed: int = 0,
) -> CheckResult:
    """Check ``fn``'s custom gradient at ``inputs``; raise AssertionError with the report if wrong.

    ``atol``/``rtol``/``eps`` default by precision (float64: 1e-5 / 1e-3 / 1e-6, as
    ``torch.autograd.gradcheck``); ``function_mode`` also checks under ``tf.function``.
    """
    import numpy as np
    import tensorflow as tf

    values = [tf.constant(v) if isinstance(v, np.ndarray) else v for v in inputs]
    labels = list(names) if names is not None else _param_names(fn, len(values))
    title = getattr(fn, "__name__", None) or getattr(getattr(fn, "__wrapped__", None), "__name__", "custom gradient")
    promoted = None
    if float64:
        promoted = _as_float64(values)
        try:
            fn(*promoted)
        except Exception:  # noqa: BLE001 - the function does not run in float64: keep the dtypes
            promoted = None
    result = check_promoted(
        fn,
        values,
        promoted,
        labels,
        eps=eps,
        atol=atol,
        rtol=rtol,
        seed=seed,
        function_mode=function_mode,
    )
    if result.status != "pass":
        raise AssertionError("\n" + result.report(title))
    return result
