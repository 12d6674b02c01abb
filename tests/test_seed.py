"""The seed document's three examples (fixtures/seed/)."""

from __future__ import annotations

import json

from conftest import FIXTURES

SEED = FIXTURES / "seed"


def _findings(run_cli, *args):
    proc = run_cli("check", *args, "--output-format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_example3_reports_tgl201_on_the_kernel_assignment(run_cli):
    findings = _findings(run_cli, SEED / "example3_weight_constraint.py")
    assert [(f["code"], f["location"]["row"]) for f in findings] == [("TGL201", 15)]
    line = (SEED / "example3_weight_constraint.py").read_text().splitlines()[14]
    assert line.startswith("model.layers[0].kernel = tf.Variable(weight_constraint(")
    message = findings[0]["message"]
    assert "weight_constraint" in message and "kernel" in message
    assert findings[0]["location"] == {"row": 15, "column": 1}
    assert findings[0]["end_location"]["row"] == 15


def test_example2_is_clean(run_cli):
    assert _findings(run_cli, SEED / "example2_clipped_relu.py") == []
    assert _findings(run_cli, SEED / "example2_clipped_relu.py", "--preview") == []


def test_example1_clean_by_default(run_cli):
    assert _findings(run_cli, SEED / "example1_modified_matmul.py") == []


def test_seed_folder_exit_code_and_summary(run_cli):
    proc = run_cli(SEED)
    assert proc.returncode == 1
    assert "example3_weight_constraint.py:15:1: TGL201" in proc.stdout
    assert "Found 1 finding in 3 files checked." in proc.stdout
