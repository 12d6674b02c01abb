from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def lint_text(text: str, *, select=None, preview: bool = False, filename: str = "example.py", project: bool = True):
    """Lint source text with the default (or selected) rules; returns findings."""
    from tfgradlint.config import select_rules
    from tfgradlint.engine import lint_source
    from tfgradlint.rules import all_rules

    codes = select_rules(select, (), (), preview)
    rules = [cls() for cls in all_rules() if cls.code in codes]
    result = lint_source(text, filename, rules, enabled=codes, whole_project=project)
    assert not result.errors, result.errors
    return result.findings


@pytest.fixture
def run_cli():
    """Run the real command in a subprocess; returns CompletedProcess."""

    def _run(*args, cwd=None, input=None, env=None):
        return subprocess.run(
            [sys.executable, "-m", "tfgradlint", *map(str, args)],
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    return _run


def run_paths(*paths, jobs=1, no_cache=True, cache_dir=None, **overrides):
    """runner.run over ``paths`` in this process (cache and jobs as given)."""
    from pathlib import Path

    from tfgradlint.config import Overrides
    from tfgradlint.runner import RunOptions, run

    return run(
        RunOptions(
            paths=[Path(p) for p in paths],
            jobs=jobs,
            no_cache=no_cache,
            cache_dir=cache_dir,
            overrides=Overrides(**overrides),
        )
    )


def findings_data(result):
    """Everything about a run's findings (fixes and subject included), for equality checks."""
    from tfgradlint.runner import _finding_data

    return [_finding_data(f) for f in result.findings]
