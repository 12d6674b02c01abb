"""``tfgradlint check --confirm``: every confirmer, both ways, on real TensorFlow (no mocks).

Each confirmer is proven twice: ``confirmed`` on its buggy fixture and ``not-reproduced`` on
the corrected one. Findings are built directly (code, file, line, subject), so these tests do
not depend on the static rules; a few end-to-end runs of the command follow. One worker
process (one TensorFlow import) serves the whole module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

from tf_required import require_tensorflow


pytestmark = pytest.mark.runtime
RT = FIXTURES / "runtime"

# (code, file stem, line of the finding, subject) for the buggy and the corrected program.
CASES = [
    ("TGL101", "TGL101", 8, 8, "flip_gradient"),
    ("TGL102", "TGL102", 11, 11, "tempered_softplus"),
    ("TGL102", "TGL102_layer", 19, 27, "project"),
    ("TGL103", "TGL103", 10, 10, "gated"),
    ("TGL105", "TGL105", 8, 8, "safe_log"),
    ("TGL106", "TGL106", 9, 9, "sincos"),
    ("TGL107", "TGL107", 7, 7, "clip_gradient"),
    ("TGL108", "TGL108", 7, 7, "ste_sign"),
    ("TGL109", "TGL109", 14, 14, "soft_relu"),
    ("TGL111", "TGL111", 9, 9, "noisy_identity"),
    ("TGL112", "TGL112", 5, 5, "fast_sigmoid"),
    ("TGL114", "TGL114", 8, 8, "hard_threshold"),
    ("TGL119", "TGL119", 19, 19, "scale_op"),
    ("TGL201", "TGL201", 15, 15, "weight_constraint"),
    ("TGL202", "TGL202", 14, 14, "ste_round"),
    ("TGL203", "TGL203", 24, 23, "ste_round"),
    ("TGL301", "TGL301", 11, 11, None),
    ("TGL303", "TGL303", 9, 10, None),
    ("TGL303", "TGL303_script", 7, 8, None),
]


def finding(code: str, path: Path, line: int, subject=None, column: int = 1):
    from tfgradlint.findings import Finding, Position

    return Finding(
        code=code,
        name=code.lower(),
        severity="error",
        message="",
        filename=os.path.relpath(path),
        start=Position(line, column),
        end=Position(line, column + 1),
        subject=subject,
    )


@pytest.fixture(scope="module")
def worker():
    require_tensorflow()
    from tfgradlint.runtime.worker import WorkerClient

    client = WorkerClient()
    yield client
    client.close()


def confirm(worker, *findings, timeout: float = 60.0):
    from tfgradlint.runtime.confirm import confirm_findings

    confirm_findings(list(findings), {}, timeout=timeout, client=worker)
    return [f.confirmation for f in findings]


@pytest.mark.parametrize("code,stem,bad_line,good_line,subject", CASES, ids=[c[1] for c in CASES])
def test_confirmer_both_ways(worker, code, stem, bad_line, good_line, subject):
    bad, good = confirm(
        worker,
        finding(code, RT / f"{stem}_bad.py", bad_line, subject),
        finding(code, RT / f"{stem}_good.py", good_line, subject),
    )
    assert bad.status == "confirmed", bad
    assert good.status == "not-reproduced", good
    for conf in (bad, good):
        assert "\n" not in conf.evidence and conf.evidence


def test_evidence_says_what_tensorflow_did(worker):
    t101, t109, t201, t203, t303 = confirm(
        worker,
        finding("TGL101", RT / "TGL101_bad.py", 8, "flip_gradient"),
        finding("TGL109", RT / "TGL109_bad.py", 14, "soft_relu"),
        finding("TGL201", FIXTURES / "seed" / "example3_weight_constraint.py", 15, "weight_constraint"),
        finding("TGL203", RT / "TGL203_bad.py", 24, "ste_round"),
        finding("TGL303", RT / "TGL303_bad.py", 9, None),
    )
    # TensorFlow's own exception, eagerly and under tf.function; the inputs used
    assert "expected to return 2 gradients, but returned 1" in t101.evidence
    assert "returned too few gradients" in t101.evidence
    assert "x=float32[8,16] (call at line 15)" in t101.evidence and "l=0.3" in t101.evidence
    # the custom gradient silently dropped eagerly (autodiff's instead), and the graph error
    assert "equals autodiff's" in t109.evidence
    assert "keywords arguments only when eager execution is enabled" in t109.evidence
    # seed example 3: the None gradient and Keras 3's missing setter
    assert t201.status == "confirmed"
    assert "is None" in t201.evidence and "has no setter" in t201.evidence
    assert "w=float32[10,10] (call at line 15)" in t201.evidence
    assert "QuantDense.w) is None" in t203.evidence
    assert "returned None for 'x'" in t303.evidence


def test_rules_without_a_confirmer_are_inconclusive_with_a_reason(worker):
    (conf,) = confirm(worker, finding("TGL115", RT / "TGL101_bad.py", 8, "flip_gradient"))
    assert conf.status == "inconclusive"
    assert "no runtime confirmer for TGL115" in conf.evidence


def test_unrunnable_functions_are_inconclusive_never_guessed(tmp_path, worker):
    src = tmp_path / "nested.py"
    src.write_text(
        textwrap.dedent(
            """\
            import tensorflow as tf

            def make():
                @tf.custom_gradient
                def inner(x):
                    def grad(dy):
                        return dy, dy
                    return tf.identity(x), grad
                return inner
            """
        )
    )
    (conf,) = confirm(worker, finding("TGL101", src, 7, "inner"))
    assert conf.status == "inconclusive"
    assert "defined inside 'make'" in conf.evidence


def test_hang_oom_and_crash_are_inconclusive_and_the_run_goes_on():
    require_tensorflow()
    from tfgradlint.runtime.worker import WorkerClient

    path = RT / "misbehaving.py"
    client = WorkerClient(memory_limit_mb=3072)
    try:
        hang, oom, crash, ok = confirm(
            client,
            finding("TGL101", path, 14, "hangs"),
            finding("TGL101", path, 20, "eats_memory"),
            finding("TGL101", path, 26, "crashes"),
            finding("TGL101", path, 34, "flip"),
            timeout=8,
        )
    finally:
        client.close()
    assert hang.status == "inconclusive" and "timed out after 8 s" in hang.evidence
    assert oom.status == "inconclusive" and "out of memory (limit 3072 MB" in oom.evidence
    assert crash.status == "inconclusive" and "crashed (SIGSEGV)" in crash.evidence
    assert ok.status == "confirmed", ok
    assert client.starts == 4  # one start, then a fresh worker after each failure


# -- the command, end to end -------------------------------------------------------------------


def _cli(*args, cwd=None, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "tfgradlint", *map(str, args)],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_confirms_seed_example_3():
    require_tensorflow()
    proc = _cli("check", "--confirm", FIXTURES / "seed" / "example3_weight_constraint.py")
    assert proc.returncode == 1, proc.stderr
    assert "TGL201" in proc.stdout
    # `full` shows the confirmation under the finding
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("  = confirmation: ")]
    assert line.startswith("  = confirmation: confirmed: ") and "has no setter" in line


def test_cli_confirm_on_the_runtime_fixtures():
    """Whatever static rules exist today: every finding gets a confirmation in JSON, and their
    findings on the buggy fixture for that very rule are confirmed."""
    require_tensorflow()
    proc = _cli("check", "--confirm", "--preview", "--output-format", "json", "--exit-zero", RT)
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)
    checked = 0
    for item in items:
        assert item["confirmation"] is not None, item
        stem = Path(item["filename"]).stem
        if stem.startswith(item["code"]) and stem.endswith("_bad"):
            assert item["confirmation"]["status"] == "confirmed", item
            checked += 1
    assert checked >= 1  # at least TGL201 on its fixture


def test_top_level_code_never_runs(tmp_path):
    """The script writes a marker file and loops forever at top level: never executed."""
    require_tensorflow()
    marker = tmp_path / "marker.txt"
    env = dict(os.environ, TFGRADLINT_SAFETY_MARKER=str(marker))
    path = RT / "safety_toplevel.py"
    confirm_run = _cli("check", "--confirm", "--output-format", "json", path, cwd=tmp_path, env=env, timeout=300)
    gradcheck_run = _cli("gradcheck", "--output-format", "json", path, cwd=tmp_path, env=env, timeout=300)
    assert not marker.exists()
    assert not (tmp_path / "tfgradlint-safety-marker.txt").exists()
    items = json.loads(confirm_run.stdout)
    assert any(i["code"] == "TGL201" and i["confirmation"]["status"] == "confirmed" for i in items), items
    results = {r["function"]: r["status"] for r in json.loads(gradcheck_run.stdout)}
    assert results == {"weight_constraint": "fail", "double": "pass"}


def test_without_tensorflow_confirm_and_gradcheck_exit_2_naming_the_extra(tmp_path):
    """A sitecustomize shim hides TensorFlow: ``sys.modules['tensorflow'] = None`` makes
    ``importlib.util.find_spec('tensorflow')`` return None and ``import tensorflow`` fail."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['tensorflow'] = None\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), str(ROOT)]))
    probe = subprocess.run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('tensorflow'))"],
        env=env, capture_output=True, text=True,
    )
    assert probe.stdout.strip() == "None"
    example = FIXTURES / "seed" / "example3_weight_constraint.py"
    for args in (("check", "--confirm", example), ("gradcheck", example)):
        proc = _cli(*args, env=env, timeout=120)
        assert proc.returncode == 2, proc
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "pip install 'tfgradlint[runtime]'" in lines[0], proc.stderr
        assert proc.stdout == ""
    static = _cli("check", example, env=env, timeout=120)
    assert static.returncode == 1 and "TGL201" in static.stdout
