"""Precision on real code: TensorFlow's and Keras's own sources give no unexplained finding.

Every finding must be in tests/precision_allowlist.txt, each entry checked by hand to be a
real bug, with a one-line reason. A finding not listed is a false positive to fix in the rule.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

ALLOWLIST = ROOT / "tests" / "precision_allowlist.txt"


def _allowed() -> set[str]:
    out = set()
    for line in ALLOWLIST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.add(line)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("package", ["tensorflow", "keras"])
def test_no_unexplained_findings_on_installed_package(package):
    import precision

    root = precision.package_dir(package)
    result = precision.lint_all(root)
    assert result.errors == []
    assert result.files_checked > 100, "the package was not linted"
    seen = set()
    for f in result.findings:
        rel = Path(f.filename).resolve().relative_to(root.resolve().parent).as_posix()
        seen.add(f"{rel}:{f.start.row} {f.code}")
    unexplained = sorted(seen - _allowed())
    assert unexplained == [], "findings not in the allowlist (false positives?):\n" + "\n".join(unexplained)
