"""docs/rules/*.md and the README's rule table are generated from the rules and up to date."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_generated_docs_are_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_has_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    assert "pip install . && tfgradlint fixtures/" in readme
    assert "pip install -e '.[dev]' && pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install" in ci and "-e '.[dev]'" in ci and "pytest" in ci
