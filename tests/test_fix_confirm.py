"""Fixes proven at runtime: --confirm on the fixed code no longer reproduces the bug.

For each rule that has both a fix and a runtime confirmer, the buggy runtime fixture's
finding is confirmed, the fix is applied with the real command, and the same finding
(same rule, function and line) run against the fixed file is ``not-reproduced``.
"""

from __future__ import annotations

import shutil

import pytest

from conftest import FIXTURES
from tf_required import require_tensorflow

pytestmark = pytest.mark.runtime

# (rule, fixture stem); TGL103's fix (case c, `variables=None`) has no runtime fixture: the
# failure needs TensorFlow to skip passing `variables`, which these programs cannot provoke.
FIXABLE = ["TGL101", "TGL109", "TGL112", "TGL119", "TGL301"]


@pytest.fixture(scope="module")
def worker():
    require_tensorflow()
    from tfgradlint.runtime.worker import WorkerClient

    client = WorkerClient()
    yield client
    client.close()


def _lint(path, code):
    """Findings with their subject (the function the confirmer runs), as --confirm sees them."""
    from tfgradlint.config import Overrides
    from tfgradlint.runner import RunOptions, run

    result = run(RunOptions(paths=[path], overrides=Overrides(select=(code,)), no_cache=True))
    assert result.errors == []
    return result.findings


@pytest.mark.parametrize("code", FIXABLE)
def test_fixed_code_is_not_reproduced(code, tmp_path, run_cli, worker):
    from tfgradlint.runtime.confirm import confirm_findings

    path = tmp_path / f"{code}_bad.py"
    shutil.copy(FIXTURES / "runtime" / f"{code}_bad.py", path)
    [before] = _lint(path, code)
    assert before.fix is not None
    subject = before.subject
    confirm_findings([before], {}, timeout=60.0, client=worker)
    assert before.confirmation.status == "confirmed", before.confirmation.evidence

    proc = run_cli("check", path, "--select", code, "--fix", "--unsafe-fixes", "--no-cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _lint(path, code) == []

    # The same finding, now pointing at the fixed code.
    before.confirmation = None
    before.subject = subject
    confirm_findings([before], {}, timeout=60.0, client=worker)
    assert before.confirmation.status == "not-reproduced", before.confirmation.evidence
