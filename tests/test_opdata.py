"""The shipped TensorFlow op-type data and its loader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tf_required import ENV_VAR, require_tensorflow
from tfgradlint import opdata

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tfgradlint" / "data" / "op_types.json"
SCRIPT = ROOT / "scripts" / "generate_op_data.py"


def test_loader_reads_the_shipped_file():
    data = json.loads(DATA.read_text(encoding="utf-8"))
    assert opdata.op_types() == frozenset(data["op_types"])
    assert opdata.ops_with_gradient() == frozenset(data["ops_with_gradient"])
    assert opdata.data_version() == data["tensorflow_version"]
    assert data["op_types"] == sorted(data["op_types"])
    assert data["ops_with_gradient"] == sorted(data["ops_with_gradient"])


def test_loader_contents_are_plausible():
    ops = opdata.op_types()
    grads = opdata.ops_with_gradient()
    assert isinstance(ops, frozenset) and isinstance(grads, frozenset)
    assert {"MatMul", "Relu", "Identity", "Square", "Add", "AddV2", "Sub"} <= ops
    assert {"MatMul", "Relu", "Identity", "Square", "AddV2"} <= grads
    assert "Size" in opdata.ops_not_differentiable() <= grads
    assert "NoSuchOpXyz" not in ops
    assert opdata.data_version().count(".") >= 1
    assert opdata.op_types() is ops  # cached
    assert opdata.op_type_case_matches("matmul") == ["MatMul"]
    assert opdata.op_type_case_matches("nosuchop") == []


def test_loader_never_imports_tensorflow():
    code = (
        "import sys; from tfgradlint import opdata; "
        "opdata.op_types(); opdata.ops_with_gradient(); opdata.data_version(); "
        "assert 'tensorflow' not in sys.modules, 'imported tensorflow'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_require_tensorflow_fails_when_required(monkeypatch):
    import tf_required

    monkeypatch.setattr(tf_required, "tensorflow_available", lambda: False)
    monkeypatch.setenv(ENV_VAR, "1")
    with pytest.raises(pytest.fail.Exception):
        tf_required.require_tensorflow()
    monkeypatch.setenv(ENV_VAR, "0")
    with pytest.raises(pytest.skip.Exception):
        tf_required.require_tensorflow()


@pytest.mark.runtime
def test_shipped_data_matches_installed_tensorflow():
    require_tensorflow()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--stdout"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout)
    shipped = json.loads(DATA.read_text(encoding="utf-8"))
    assert fresh["tensorflow_version"] == shipped["tensorflow_version"], (
        "the shipped op data was generated from another TensorFlow version; "
        "run: python scripts/generate_op_data.py"
    )
    for key in ("op_types", "ops_with_gradient", "ops_not_differentiable"):
        missing = sorted(set(fresh[key]) - set(shipped[key]))
        extra = sorted(set(shipped[key]) - set(fresh[key]))
        assert not missing and not extra, (key, missing[:20], extra[:20])
    assert fresh == shipped
