"""[tool.tfgradlint.runtime] python: the TensorFlow check asks that interpreter, not this one."""

from __future__ import annotations

import os

from conftest import FIXTURES


def test_configured_runtime_python_without_tensorflow_is_one_clear_error(run_cli, tmp_path):
    fake = tmp_path / "fakepython"
    fake.write_text("#!/bin/sh\nexit 1\n")  # answers "no tensorflow" to the probe
    os.chmod(fake, 0o755)
    (tmp_path / "pyproject.toml").write_text(f'[tool.tfgradlint.runtime]\npython = "{fake}"\n')
    (tmp_path / "ex.py").write_text((FIXTURES / "seed" / "example3_weight_constraint.py").read_text())
    for args in (["check", "--confirm", "ex.py"], ["gradcheck", "ex.py"]):
        proc = run_cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.strip().splitlines() == [
            f"tfgradlint: error: --confirm and gradcheck need TensorFlow, which is not installed for {fake}: "
            f"{fake} -m pip install 'tfgradlint[runtime]'"
        ]
