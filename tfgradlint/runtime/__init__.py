"""The optional runtime layer: confirm findings and check gradients by running TensorFlow.

Nothing here imports TensorFlow in the linting process: the work runs in a child process.
"""

from __future__ import annotations

import importlib.util
from typing import Optional

INSTALL_HINT = "pip install 'tfgradlint[runtime]'"


def tensorflow_missing_message(python: Optional[str] = None) -> Optional[str]:
    """One line saying what to install when TensorFlow is missing, else None.

    ``python``: the interpreter configured as ``[tool.tfgradlint.runtime] python`` (the
    worker runs there); None means this one. Neither case imports TensorFlow here.
    """
    if python:
        import subprocess

        probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"
        try:
            found = subprocess.run([python, "-c", probe], capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run the configured runtime python {python!r}: {exc}"
        if not found:
            return (f"--confirm and gradcheck need TensorFlow, which is not installed for {python}: "
                    f"{python} -m pip install 'tfgradlint[runtime]'")
        return None
    if importlib.util.find_spec("tensorflow") is None:
        return f"--confirm and gradcheck need TensorFlow, which is not installed: {INSTALL_HINT}"
    return None
