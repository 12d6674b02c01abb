"""Baselines: --write-baseline records findings; --baseline reports only new ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfgradlint.baseline import BaselineError, filter_with_baseline, fingerprints, write_baseline_file
from tfgradlint.findings import Finding, Position

ROOT = Path(__file__).resolve().parent.parent
SEED3 = (ROOT / "fixtures" / "seed" / "example3_weight_constraint.py").read_text()
NEW_BUG = "model.layers[0].bias = tf.Variable(weight_constraint(tf.random.normal((10,))))\n"


def _codes_lines(stdout: str) -> list[tuple[str, int]]:
    return [(f["code"], f["location"]["row"]) for f in json.loads(stdout)]


def test_moved_finding_stays_baselined_and_new_one_is_reported(run_cli, tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "train.py").write_text(SEED3)
    res = run_cli("check", "--write-baseline", "baseline.json", "--output-format", "json", ".", cwd=tmp_path)
    # Writing the baseline succeeds: what it recorded is no longer reported.
    assert res.returncode == 0, res.stderr
    assert _codes_lines(res.stdout) == []
    assert "recorded 1 finding(s) in baseline.json" in res.stderr
    data = json.loads((tmp_path / "baseline.json").read_text())
    assert data["tfgradlint-baseline"] == 1
    (entry,) = data["findings"]
    assert (entry["file"], entry["code"], entry["line"]) == ("pkg/train.py", "TGL201", 15)

    # Lines inserted above the finding: it moves to line 19 and stays baselined.
    (pkg / "train.py").write_text('"""Training script."""\n\nimport os\n\n' + SEED3)
    res = run_cli("check", "--baseline", "baseline.json", "--output-format", "json", ".", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout) == []

    # A new finding (same code, another line) is reported; the old one still is not.
    (pkg / "train.py").write_text('"""Training script."""\n\nimport os\n\n' + SEED3 + NEW_BUG)
    res = run_cli("check", "--baseline", "baseline.json", "--output-format", "json", ".", cwd=tmp_path)
    assert res.returncode == 1
    assert _codes_lines(res.stdout) == [("TGL201", 4 + len(SEED3.splitlines()) + 1)]
    assert "'bias'" in json.loads(res.stdout)[0]["message"]


def test_baseline_works_from_another_folder(run_cli, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text(SEED3)
    run_cli("check", "--write-baseline", "baseline.json", ".", cwd=tmp_path)
    res = run_cli("check", "--baseline", "../baseline.json", ".", cwd=tmp_path / "pkg")
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_duplicated_buggy_line_is_a_new_finding(run_cli, tmp_path):
    line = SEED3.splitlines(keepends=True)[14]
    (tmp_path / "train.py").write_text(SEED3)
    run_cli("check", "--write-baseline", "baseline.json", ".", cwd=tmp_path)
    (tmp_path / "train.py").write_text(SEED3 + line)
    res = run_cli("check", "--baseline", "baseline.json", "--output-format", "json", ".", cwd=tmp_path)
    assert len(json.loads(res.stdout)) == 1  # one of the two identical lines is new


def test_editing_the_line_itself_makes_it_new(run_cli, tmp_path):
    (tmp_path / "train.py").write_text(SEED3)
    run_cli("check", "--write-baseline", "baseline.json", ".", cwd=tmp_path)
    (tmp_path / "train.py").write_text(SEED3.replace("(10, 10)", "(20, 20)"))
    res = run_cli("check", "--baseline", "baseline.json", "--output-format", "json", ".", cwd=tmp_path)
    assert _codes_lines(res.stdout) == [("TGL201", 15)]


def test_reindenting_keeps_the_fingerprint():
    def finding(row):
        return Finding("TGL202", "variable-severs-gradient", "error", "m", "a.py", Position(row, 1), Position(row, 5))

    before = fingerprints([finding(2)], {"a.py": "x\nv = tf.Variable( f(w) )\n"})
    after = fingerprints([finding(5)], {"a.py": "\n\n\nif True:\n        v  =  tf.Variable( f(w) )\n"})
    assert before == after


def test_notebook_findings_are_baselined(run_cli, tmp_path):
    nb = tmp_path / "analysis.ipynb"
    nb.write_text((ROOT / "fixtures" / "notebooks" / "bad.ipynb").read_text())
    run_cli("check", "--write-baseline", "baseline.json", ".", cwd=tmp_path)
    (entry,) = json.loads((tmp_path / "baseline.json").read_text())["findings"]
    assert (entry["file"], entry["cell"], entry["line"]) == ("analysis.ipynb", 4, 3)
    # Insert a code cell before: the cell number changes, the finding stays baselined.
    data = json.loads(nb.read_text())
    data["cells"].insert(1, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": ["x = 1\n"]})
    nb.write_text(json.dumps(data))
    res = run_cli("check", "--baseline", "baseline.json", ".", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline file {path} not found"),
        ("{", "not a tfgradlint baseline (invalid JSON"),
        ("[]", "not a tfgradlint baseline (no 'tfgradlint-baseline' key)"),
        ('{"tfgradlint-baseline": 99, "findings": []}', "baseline version 99 is not supported"),
        ('{"tfgradlint-baseline": 1, "findings": {}}', "'findings' is not a list"),
        ('{"tfgradlint-baseline": 1, "findings": [{"file": "a.py"}]}', "finding 1 lacks"),
    ],
)
def test_bad_baseline_file_is_one_clear_error(run_cli, tmp_path, content, message):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError, match=None) as info:
        filter_with_baseline(path, [], {})
    assert message.format(path=path) in str(info.value)
    assert "\n" not in str(info.value)
    (tmp_path / "train.py").write_text(SEED3)
    res = run_cli("check", "--baseline", "baseline.json", ".", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("tfgradlint: error: ") and len(res.stderr.strip().splitlines()) == 1


def test_write_baseline_into_a_missing_folder_is_one_clear_error(run_cli, tmp_path):
    (tmp_path / "train.py").write_text(SEED3)
    res = run_cli("check", "--write-baseline", "nope/baseline.json", ".", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == "tfgradlint: error: cannot write baseline file nope/baseline.json: No such file or directory"


def test_written_file_is_stable_and_sorted(tmp_path):
    findings = [
        Finding("TGL202", "n", "error", "m2", str(tmp_path / "b.py"), Position(3, 1), Position(3, 2)),
        Finding("TGL201", "n", "error", "m1", str(tmp_path / "a.py"), Position(9, 1), Position(9, 2)),
    ]
    sources = {str(tmp_path / "a.py"): "\n" * 8 + "x = 1\n", str(tmp_path / "b.py"): "\n\ny = 2\n"}
    write_baseline_file(tmp_path / "base.json", findings, sources)
    first = (tmp_path / "base.json").read_text()
    write_baseline_file(tmp_path / "base.json", list(reversed(findings)), sources)
    assert (tmp_path / "base.json").read_text() == first
    assert [e["file"] for e in json.loads(first)["findings"]] == ["a.py", "b.py"]
    assert filter_with_baseline(tmp_path / "base.json", findings, sources) == []
