"""Shared helper for runtime tests that need TensorFlow.

    from tf_required import require_tensorflow

    @pytest.mark.runtime
    def test_something():
        require_tensorflow()
        ...

Without TensorFlow the test is skipped, unless TFGRADLINT_REQUIRE_TENSORFLOW=1 is set
(CI sets it): then a missing TensorFlow FAILS the test instead of silently skipping it.
The check does not import TensorFlow (a spec lookup only), so it is cheap.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

ENV_VAR = "TFGRADLINT_REQUIRE_TENSORFLOW"


def tensorflow_required() -> bool:
    """True when the environment demands TensorFlow (runtime tests must not skip)."""
    return os.environ.get(ENV_VAR, "").strip() == "1"


def tensorflow_available() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def require_tensorflow() -> None:
    """Skip the calling test when TensorFlow is missing, or fail it when it is required."""
    if tensorflow_available():
        return
    message = "TensorFlow is not installed (pip install -e '.[runtime]')"
    if tensorflow_required():
        pytest.fail(f"{message}, but {ENV_VAR}=1 requires it", pytrace=False)
    pytest.skip(message)
