"""LibCST parsing for linting: the same trees as ``libcst.parse_module``, built faster.

Every LibCST node validates itself when it is constructed (``CSTNode.__post_init__``): useful
for trees built by hand, redundant for the parser's own output, which is valid by
construction (LibCST's own source says so next to ``__post_init__``). While
:func:`parse_module` runs, that check is skipped: about 12% of the parse on TensorFlow's
``*_grad.py`` modules, and the trees are equal (``deep_equals``; tests/test_parsing.py).
Any other code constructing nodes at the same moment (another thread of the language
server) is not affected in what it builds, only unchecked; fixes are re-parsed and compiled
before anything is written (tfgradlint/fixes.py).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import libcst as cst

_LOCK = threading.Lock()
_active = 0
_original: Any = None


def _skip_validation(self: Any) -> None:
    return None


def parse_module(text: str) -> "cst.Module":
    """``libcst.parse_module(text)`` without the per-node validation (same exceptions)."""
    import libcst as cst
    from libcst._nodes.base import CSTNode

    global _active, _original
    with _LOCK:
        if _active == 0:
            current = CSTNode.__dict__.get("__post_init__")
            if current is None:  # another LibCST: nothing to skip
                return cst.parse_module(text)
            _original = current
            CSTNode.__post_init__ = _skip_validation  # type: ignore[method-assign]
        _active += 1
    try:
        return cst.parse_module(text)
    finally:
        with _LOCK:
            _active -= 1
            if _active == 0:
                CSTNode.__post_init__ = _original  # type: ignore[method-assign]
