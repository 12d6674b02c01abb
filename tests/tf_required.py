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


def run_tf_script(tmp_path, script: str, *args, timeout: float = 300, with_stderr: bool = False):
    """Run ``script`` (Python that prints ``repr(dict)`` last) with TensorFlow in a child process.

    The tests that prove a rule's claim on the installed TensorFlow use this: the child
    imports TensorFlow, the test process does not. Returns the printed dict (and the
    child's standard error, with ``with_stderr``).
    """
    import ast
    import subprocess
    import sys
    from pathlib import Path

    require_tensorflow()
    path = tmp_path / "check.py"
    path.write_text(script)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, str(path), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=root
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    try:
        out = ast.literal_eval(last)
    except (ValueError, SyntaxError):
        out = eval(last, {"inf": float("inf"), "nan": float("nan")})  # noqa: S307 - our own repr
    return (out, proc.stderr) if with_stderr else out
