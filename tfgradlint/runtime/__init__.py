"""The optional runtime layer: confirm findings and check gradients by running TensorFlow.

Nothing here imports TensorFlow in the linting process: the work runs in a child process.
"""

from __future__ import annotations

import importlib.util
from typing import Optional

INSTALL_HINT = "pip install 'tfgradlint[runtime]'"


def tensorflow_missing_message() -> Optional[str]:
    """One line saying what to install when TensorFlow is missing, else None."""
    if importlib.util.find_spec("tensorflow") is None:
        return f"--confirm and gradcheck need TensorFlow, which is not installed: {INSTALL_HINT}"
    return None
