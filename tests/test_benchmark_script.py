"""The benchmark scripts' pure parts (benchmarks/build_corpus.py, benchmarks/run.py).

No timing assertions and no network: the corpus is a tiny fake wheel built here.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bc = _load("build_corpus")
run = _load("run")


# -- build_corpus ---------------------------------------------------------------------------


def _fake_wheel(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


FAKE_MEMBERS = {
    "larq/__init__.py": "from larq import layers\n",
    "larq/layers.py": "import tensorflow as tf\n",
    "larq/py.typed": "",
    "larq/data.json": "{}",
    "larq/sub/mod.pyi": "x: int\n",
    "larq-0.14.0.dist-info/METADATA": "Name: larq\n",
    "larq-0.14.0.dist-info/fake.py": "print('metadata, not code')\n",
    "larq-0.14.0.data/purelib/extra_pkg/x.py": "X = 1\n",
    "larq-0.14.0.data/scripts/tool.py": "print('a script')\n",
}


def test_wheel_py_members_selects_code_only():
    got = dict(bc.wheel_py_members([*FAKE_MEMBERS, "../evil.py", "/abs.py", "larq/dir/"]))
    assert got == {
        "larq/__init__.py": "larq/__init__.py",
        "larq/layers.py": "larq/layers.py",
        "larq-0.14.0.data/purelib/extra_pkg/x.py": "extra_pkg/x.py",
    }


def test_unpack_and_stats(tmp_path):
    wheel = _fake_wheel(tmp_path / "larq-0.14.0-py3-none-any.whl", FAKE_MEMBERS)
    dest = tmp_path / "out"
    files, size = bc.unpack_wheel(wheel, dest)
    assert files == 3
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "extra_pkg/x.py", "larq/__init__.py", "larq/layers.py"]
    assert bc.tree_stats(dest) == (files, size)


def test_find_wheel_and_normalize(tmp_path):
    assert bc.normalize("tf-keras") == "tf_keras"
    assert bc.normalize("Tensorflow.Model-Optimization") == "tensorflow_model_optimization"
    assert bc.find_wheel(tmp_path / "missing", "tf-keras", "2.21.0") is None
    (tmp_path / "tf_keras-2.21.0-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "tf_keras-2.20.0-py3-none-any.whl").write_bytes(b"")
    assert bc.find_wheel(tmp_path, "tf-keras", "2.21.0").name == "tf_keras-2.21.0-py3-none-any.whl"
    assert bc.find_wheel(tmp_path, "tf-keras", "2.19.0") is None


def test_copy_py_tree_skips_caches_and_other_files(tmp_path):
    src = tmp_path / "pkg"
    (src / "sub" / "__pycache__").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "sub" / "m.py").write_text("x = 1\n")
    (src / "sub" / "__pycache__" / "m.cpython-311.py").write_text("")
    (src / "sub" / "lib.so").write_bytes(b"\0")
    files, size = bc.copy_py_tree(src, tmp_path / "copy" / "pkg")
    assert (files, size) == (2, 6)
    assert (tmp_path / "copy" / "pkg" / "sub" / "m.py").read_text() == "x = 1\n"
    assert not (tmp_path / "copy" / "pkg" / "sub" / "__pycache__").exists()


def test_build_from_a_local_wheel_is_idempotent(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    (corpus / ".wheels").mkdir(parents=True)
    _fake_wheel(corpus / ".wheels" / "larq-0.14.0-py3-none-any.whl", FAKE_MEMBERS)
    rows = bc.build(corpus, only={"larq"})  # the wheel is there: no pip download
    assert [(r["folder"], r["pin"], r["files"]) for r in rows] == [("larq", "larq==0.14.0", 3)]
    assert (corpus / ".git").is_dir()
    assert bc.package_folders(corpus) == [corpus / "larq"]
    (corpus / "larq" / "larq" / "layers.py").write_text("# edited\n")
    rows = bc.build(corpus, only={"larq"})  # exists: left alone
    assert (corpus / "larq" / "larq" / "layers.py").read_text() == "# edited\n"
    assert "exists" in capsys.readouterr().out
    bc.build(corpus, only={"larq"}, force=True)
    assert (corpus / "larq" / "larq" / "layers.py").read_text() == "import tensorflow as tf\n"
    table = bc.format_rows(rows)
    assert "larq" in table and "total" in table and "0.14.0" in table


# -- run: numbers and formatting ------------------------------------------------------------


def test_median_ratio_rotate():
    assert run.median([3.0, 1.0, 2.0]) == 2.0
    assert run.median([1.0, 2.0, None, 4.0, 3.0]) == 2.5
    assert run.median([]) is None
    assert run.ratio(3.0, 1.5) == 2.0
    assert run.ratio(None, 1.0) is None and run.ratio(1.0, 0.0) is None
    assert run.rotate(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert run.rotate(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert run.rotate([], 3) == []


def test_formatting():
    assert run.fmt_s(0.0421) == "42 ms"
    assert run.fmt_s(2.345) == "2.35 s"
    assert run.fmt_s(None) == "-"
    assert run.fmt_ratio(1.5) == "1.50x"
    assert run.fmt_ratio(25.0) == "25.0x"
    assert run.fmt_ratio(340.2, at_least=True) == ">= 340x"
    assert run.fmt_value("full_peak_mb", 123.4) == "123 MB"
    assert run.fmt_value("tfp_cold_vs_ruff", 3.0) == "3.00x"
    assert run.fmt_value("tfp_warm", 0.2) == "200 ms"


def test_finding_counters():
    tgl = (
        "pkg/a.py:12:9: TGL101 grad of 'f' returns 1 gradient\n"
        "pkg/b c.py:3:1: TGL201 [*] output of custom-gradient function 'g' is stored\n"
        "pkg/a.py:40:5: TGL101 grad of 'h' returns 2 gradients\n"
        "All checks passed\n"
    )
    assert run.count_concise(tgl) == Counter({"TGL101": 2, "TGL201": 1})
    ruff = "x/y.py:1:8: F401 [*] `os` imported but unused\nx/y.py:4:5: B006 Do not use mutable\n"
    assert run.count_concise(ruff) == Counter({"F401": 1, "B006": 1})
    fixit = (
        "pkg/a.py@24:30 NoRedundantLambda: The lambda is redundant. (has autofix)\n"
        "pkg/b.py@1:1 UseFstring: Do not use printf style formatting\n"
        "pkg/c.py@2:0 NoRedundantLambda: again\n"
    )
    assert run.count_fixit(fixit) == Counter({"NoRedundantLambda": 2, "UseFstring": 1})


def _finding(file, row, code="TGL101", message="m"):
    return {"code": code, "message": message, "filename": file, "location": {"row": row, "column": 1},
            "end_location": {"row": row, "column": 5}, "fix": None}


def test_compare_findings():
    a = [_finding("a.py", 1), _finding("a.py", 7, "TGL201")]
    assert run.compare_findings(a, [dict(f) for f in a]) == {"identical": True, "count": 2}
    res = run.compare_findings(a, list(reversed(a)))
    assert not res["identical"] and res["same_set_other_order"]
    res = run.compare_findings(a, [a[0], _finding("b.py", 3)])
    assert not res["identical"] and not res["same_set_other_order"]
    assert res["missing_total"] == 1 and res["extra_total"] == 1
    assert res["missing"][0][:4] == ["a.py", 7, 1, "TGL201"]
    changed = [a[0], dict(a[1], message="other")]
    assert not run.compare_findings(a, changed)["identical"]


def _tool(walls, cpu=1.0, rss=50.0, tree=80.0, by_code=None, timed_out=False):
    runs = [{"wall": w, "cpu": cpu, "maxrss_mb": rss, "tree_mb": tree, "returncode": 0,
             "timed_out": timed_out} for w in walls]
    out = {"runs": runs, "summary": run.tool_summary(runs)}
    if by_code is not None:
        out["by_code"] = by_code
        out["findings"] = sum(by_code.values())
    return out


def test_tool_summary():
    s = run.tool_summary([
        {"wall": 2.0, "cpu": 1.0, "maxrss_mb": 40.0, "tree_mb": 90.0, "returncode": 0},
        {"wall": 1.0, "cpu": 3.0, "maxrss_mb": 120.0, "tree_mb": None, "returncode": 0},
        {"wall": 3.0, "cpu": 2.0, "maxrss_mb": 60.0, "tree_mb": 70.0, "returncode": 2},
    ])
    assert (s["median_wall"], s["min_wall"], s["max_wall"], s["median_cpu"]) == (2.0, 1.0, 3.0, 2.0)
    assert (s["peak_mb"], s["maxrss_mb"], s["tree_mb"]) == (120.0, 120.0, 90.0)
    assert s["failed"] == [2] and not s["timed_out"]


def _figures():
    return {
        "machine": {"cpu": "Test CPU", "cores": 2, "python": "3.11", "versions": {"ruff": "0.17"},
                    "load_before": "1.0", "load_after": "1.1"},
        "sets": {
            "tfp": {"description": "TFP", "files": 1537, "mb": 23.9, "notes": [], "tools": {
                "tfgradlint cold": _tool([1.0, 1.2, 0.8], by_code={"TGL101": 2}),
                "tfgradlint warm": _tool([0.2, 0.25, 0.3], by_code={"TGL101": 2}),
                "ruff": _tool([0.5, 0.4, 0.6]),
                "fixit": _tool([310.0]),
            }},
            "full": {"description": "all", "files": 8000, "mb": 98.0, "notes": ["a note"], "tools": {
                "tfgradlint cold": _tool([10.0], rss=450.0, tree=620.0),
                "ruff": _tool([2.0]),
            }},
            "small": {"description": "one file", "files": 1, "mb": 0.0, "notes": [], "tools": {
                "python -c pass": _tool([0.02]),
                "tfgradlint": _tool([0.2]),
            }},
        },
        "lsp": {"lines": 3030, "diagnostics": 36, "debounce": 0.25, "open": 1.0, "change": [0.3, 0.4],
                "save": [0.1, 0.12], "median_change": 0.35, "median_relint": 0.1, "median_save": 0.11},
    }


def test_targets_and_report():
    figures = _figures()
    values = run.target_values(figures)
    assert values["tfp_cold_vs_ruff"] == pytest.approx(2.0)
    assert values["tfp_fixit_vs_cold"] == pytest.approx(310.0)
    assert values["tfp_warm"] == 0.25
    assert values["full_cold_vs_ruff"] == pytest.approx(5.0)
    assert values["full_peak_mb"] == 620.0
    assert values["small_wall"] == 0.2
    assert values["lsp_relint"] == 0.1
    targets = {t["key"]: t["met"] for t in run.evaluate_targets(values)}
    assert targets == {"tfp_cold_vs_ruff": True, "tfp_fixit_vs_cold": True, "tfp_warm": True,
                       "full_cold_vs_ruff": False, "full_peak_mb": False, "small_wall": True,
                       "lsp_relint": True}
    figures["targets"] = run.evaluate_targets(values)
    report = run.format_report(figures)
    assert "tfgradlint cold / ruff = 2.00x" in report
    assert "Fixit / tfgradlint cold = 310x" in report
    assert "TGL101 2" in report
    assert "note: a note" in report
    assert "re-lint (didChange -> publish minus debounce): median 100 ms" in report
    lines = {line.split("  ")[1].strip(): line for line in report.splitlines()
             if line.startswith("  ") and ("met" in line or "not measured" in line)}
    assert any("NOT met" in line and "full corpus: tfgradlint cold / ruff" in line for line in lines.values())
    assert any(line.endswith(" met") and "TFP: tfgradlint warm" in line for line in lines.values())


def test_a_failing_tool_is_not_measured():
    """A run that fails (here: ``python -m tfgradlint`` without the package, exit 1 under
    --exit-zero) is flagged and keeps its targets out of the verdicts, never "met"."""
    figures = _figures()
    cold = figures["sets"]["tfp"]["tools"]["tfgradlint cold"]
    for r in cold["runs"]:
        r.update(returncode=1, ok=False, stderr_tail="No module named tfgradlint\n")
    cold["summary"] = run.tool_summary(cold["runs"])
    assert cold["summary"]["failed"] == [1, 1, 1]
    values = run.target_values(figures)
    assert values["tfp_cold_vs_ruff"] is None and values["tfp_fixit_vs_cold"] is None
    figures["targets"] = run.evaluate_targets(values)
    report = run.format_report(figures)
    assert "FAILED (not counted in the targets): No module named tfgradlint" in report
    assert any("TFP: tfgradlint cold / ruff" in line and line.endswith("not measured")
               for line in report.splitlines())


def test_targets_not_measured():
    targets = run.evaluate_targets({})
    assert {t["met"] for t in targets} == {None}
    figures = {"sets": {}, "lsp": {"skipped": "tfgradlint/lsp.py does not exist yet"}, "targets": targets}
    report = run.format_report(figures)
    assert "lsp: skipped: tfgradlint/lsp.py does not exist yet" in report
    assert report.count("not measured") == len(run.TARGETS)


def test_report_of_compared_findings():
    figures = {"sets": {}, "compare_findings": [{
        "set": "corpus", "reference": "--no-cache", "reference_count": 2, "variants": {
            "cache, warm": {"identical": True, "count": 2},
            "--jobs 2": {"unsupported": "no such option: --jobs"},
            "--jobs 1": {"identical": False, "count": 1, "same_set_other_order": False, "missing_total": 1,
                         "extra_total": 0, "missing": [["a.py", 7, 1, "TGL201", "m"]], "extra": []},
        }}]}
    report = run.format_report(figures)
    assert re.search(r"cache, warm +identical \(2 findings\)", report)
    assert "failed or not supported: no such option: --jobs" in report
    assert "DIFFERENT: 1 findings; 1 missing, 0 extra" in report


def test_lsp_source_is_valid_python_of_3000_lines():
    text = run.lsp_source()
    assert text.count("\n") >= 3000
    compile(text, "model_zoo.py", "exec")
    buggy = text.count("        self.kernel = weight_constraint_")
    blocks = text.count("\nclass Block")
    assert buggy == len(range(0, blocks, 5)) and 0 < buggy < blocks


def test_measure_runs_a_command(tmp_path):
    m = run.measure([sys.executable, "-c", "print('hi')"], tmp_path, mem_interval=0.01)
    assert m.returncode == 0 and m.stdout.strip() == "hi" and not m.timed_out
    assert m.maxrss_mb > 0 and m.wall > 0
    m = run.measure([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path, mem_interval=None)
    assert m.returncode == 3


def test_json_figures_are_serialisable():
    figures = _figures()
    figures["targets"] = run.evaluate_targets(run.target_values(figures))
    assert json.loads(json.dumps(figures))["targets"][0]["key"] == "tfp_cold_vs_ruff"
