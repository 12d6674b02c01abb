"""Parallel files (``--jobs``): the same findings, in the same order, as a serial run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tfgradlint.runner as runner
from tfgradlint.rules import Rule
from conftest import findings_data, run_paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEED3 = FIXTURES / "seed" / "example3_weight_constraint.py"
PARENT = os.getpid()


def _run(*paths, jobs=1, no_cache=True, cache_dir=None, **overrides):
    return run_paths(*paths, jobs=jobs, no_cache=no_cache, cache_dir=cache_dir, **overrides)


def _data(result):
    return (findings_data(result), list(result.errors), result.files_checked,
            [o.source_file.display for o in result.outcomes])


@pytest.fixture
def pools(monkeypatch):
    """Parallel even for small runs; records the pools started."""
    started: list[int] = []
    real = runner.WorkerPool.start

    def start(jobs, warm_up=None):
        pool = real(jobs, warm_up)
        if pool is not None:
            started.append(jobs)
        return pool

    monkeypatch.setattr(runner.WorkerPool, "start", staticmethod(start))
    monkeypatch.setattr(runner, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    return started


@pytest.mark.parametrize("folder", ["", "project", "rules", "notebooks"])
@pytest.mark.parametrize("batch", [1, 48 * 1024])
def test_same_findings_with_any_jobs(pools, monkeypatch, folder, batch):
    # workers prepare (summaries, layouts) and lint the files; one file per task, or many
    monkeypatch.setattr(runner, "BATCH_BYTES", batch)
    target = FIXTURES / folder if folder else FIXTURES
    serial = _data(_run(target, jobs=1))
    assert serial[0]
    assert not pools
    for jobs in (2, 3):
        assert _data(_run(target, jobs=jobs)) == serial
    assert pools and max(pools) > 1


def test_same_findings_with_jobs_and_cache(pools, tmp_path):
    serial = _data(_run(FIXTURES, jobs=1))
    cache = tmp_path / "cache"
    assert _data(_run(FIXTURES, jobs=2, no_cache=False, cache_dir=cache)) == serial  # cold, parallel
    assert _data(_run(FIXTURES, jobs=1, no_cache=False, cache_dir=cache)) == serial  # warm
    assert _data(_run(FIXTURES, jobs=2, no_cache=False, cache_dir=cache)) == serial


def test_cli_output_is_identical(tmp_path):
    """The whole command, default thresholds: byte-identical JSON for --jobs 1 and 2."""
    outs = []
    for jobs in ("1", "2", "0"):
        r = subprocess.run(
            [sys.executable, "-m", "tfgradlint", "check", "--no-cache", "--jobs", jobs, "--output-format", "json",
             str(FIXTURES)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
        )
        assert r.returncode == 1, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] == outs[2]
    assert json.loads(outs[0])


def test_small_runs_stay_serial(monkeypatch):
    def no_pool(jobs, warm_up=None):  # pragma: no cover - must not be called
        raise AssertionError("a pool was started for a small run")

    monkeypatch.setattr(runner.WorkerPool, "start", staticmethod(no_pool))
    result = _run(FIXTURES / "seed", jobs=2)
    assert result.findings


def test_jobs_1_is_serial(pools):
    _run(FIXTURES, jobs=1)
    assert pools == []


class Boom(Rule):
    code = "TGL990"
    name = "test-boom"
    default = "on"
    triggers = ("custom_gradient",)

    def check(self, ctx):
        if ctx.filename.endswith("example3_weight_constraint.py"):
            raise ValueError("boom")


class Crash(Rule):
    code = "TGL991"
    name = "test-crash"
    default = "on"
    triggers = ("custom_gradient",)

    def check(self, ctx):
        if ctx.filename.endswith("crash_me.py") and os.getpid() != PARENT:
            os._exit(3)  # a worker dies (a crash in a native parser, out of memory...)


@pytest.fixture
def extra_rules(monkeypatch):
    import tfgradlint.rules as rules_pkg

    real = rules_pkg.all_rules()

    def register(*classes):
        monkeypatch.setattr(rules_pkg, "all_rules", lambda: tuple(sorted(real + classes, key=lambda c: c.code)))

    return register


def test_internal_error_in_a_worker_is_reported(pools, extra_rules):
    extra_rules(Boom)
    serial = _run(FIXTURES / "seed", FIXTURES / "rules", jobs=1)
    assert any("internal error in TGL990 (ValueError: boom)" in e for e in serial.errors)
    parallel = _run(FIXTURES / "seed", FIXTURES / "rules", jobs=2)
    assert pools
    assert _data(parallel) == _data(serial)


def test_a_dying_worker_is_an_internal_error_for_its_file_only(pools, extra_rules, tmp_path):
    extra_rules(Crash)
    shutil.copytree(FIXTURES / "rules", tmp_path / "rules")
    shutil.copy(SEED3, tmp_path / "rules" / "crash_me.py")
    reference = _run(tmp_path / "rules", jobs=1, ignore=("TGL991",))
    result = _run(tmp_path / "rules", jobs=2)
    assert pools
    assert len(result.errors) == 1
    assert "crash_me.py" in result.errors[0]
    assert result.errors[0].endswith("internal error: the worker process linting this file died")
    others = [f.to_json() for f in result.findings if not f.filename.endswith("crash_me.py")]
    expected = [f.to_json() for f in reference.findings if not f.filename.endswith("crash_me.py")]
    assert others == expected


def _deep_source(terms: int = 900) -> str:
    total = " + ".join(["x"] * terms)
    return (
        "import tensorflow as tf\n\n\n"
        "@tf.custom_gradient\n"
        "def deep(x):\n"
        f"    y = {total}\n\n"
        "    def grad(dy):\n"
        "        return dy, dy\n\n"
        "    return y, grad\n"
    )


def test_deep_code_in_workers(pools, tmp_path):
    """Deep but valid code needs the deep stack in workers too (engine.call_with_deep_stack)."""
    for i in range(3):
        (tmp_path / f"deep{i}.py").write_text(_deep_source())
    serial = _run(tmp_path, jobs=1)
    assert not serial.errors and serial.findings  # TGL101: two gradients for one input
    assert _data(_run(tmp_path, jobs=2)) == _data(serial)
    assert pools


def test_default_jobs_is_the_cores():
    assert runner.default_jobs() >= 1
    if hasattr(os, "sched_getaffinity"):
        assert runner.default_jobs() == len(os.sched_getaffinity(0))


def _texts_for_prefilter():
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(FIXTURES.rglob("*.py"))]
    out = list(texts)
    for t in texts:  # the same programs with their trigger strings spelled otherwise
        for word in ("custom_gradient", "GradientTape", "RegisterGradient", "recompute_grad",
                     "gradient_override_map", "no_gradient", "NotDifferentiable", "NoGradient"):
            t = t.replace(word, word[:3] + "_" + word[3:])
        out.append(t)
        out.append(t + "\nx = 1  # noqa: TGL101\n")
        out.append("def f(:\n" + t)  # a syntax error: no parse, no TGL001, without triggers
    return out


@pytest.mark.parametrize("extra_codes", [(), ("TGL003",)])
def test_prefilter_matches_the_engine(extra_codes):
    """In parallel runs, files the runner's prefilter rejects are not sent to lint_source:
    lint_source must give nothing for them."""
    from tfgradlint.config import select_rules
    from tfgradlint.engine import lint_source
    from tfgradlint.rules import runtime_rules

    codes = select_rules(("ALL",), extra_codes, (), True)
    rules = runtime_rules(codes)
    triggers = tuple(sorted({t for r in rules for t in r.triggers}))
    skipped = 0
    for text in _texts_for_prefilter():
        if runner._may_parse(text, triggers, codes, []):
            continue
        skipped += 1
        result = lint_source(text, "t.py", rules, enabled=codes, whole_project=True)
        assert not result.findings and not result.errors and not result.parsed
    assert skipped > 50


def _dying_prepare(items):  # replaces the prepare steps (summaries, lint ahead) in the workers
    if os.getpid() != PARENT:
        os._exit(3)
    raise AssertionError("not in a worker")


def test_pool_broken_while_indexing_falls_back(pools, monkeypatch):
    """Every worker dies preparing files: the summaries and the linting are done here."""
    monkeypatch.setattr(runner, "BATCH_BYTES", 1)
    serial = _data(_run(FIXTURES / "project", jobs=1))
    monkeypatch.setattr(runner, "_worker_summarize", _dying_prepare)
    monkeypatch.setattr(runner, "_worker_lint_ahead", _dying_prepare)
    assert _data(_run(FIXTURES / "project", jobs=2)) == serial
    assert pools


def _prepare_then_die_once(items):  # the first worker to summarise dies; the others work
    import fcntl

    marker = os.environ["TGL_TEST_DIE_MARKER"]
    fd = os.open(marker, os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    first = os.path.getsize(marker) == 0
    if first:
        os.write(fd, b"died")
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    if first:
        os._exit(3)
    return _REAL_SUMMARIZE(items)


_REAL_SUMMARIZE = runner._worker_summarize


def test_one_worker_dying_leaves_the_others_working(pools, monkeypatch, tmp_path):
    """One of three workers dies on its first task: its files go elsewhere, same results."""
    monkeypatch.setattr(runner, "BATCH_BYTES", 1)
    serial = _data(_run(FIXTURES, jobs=1))
    monkeypatch.setenv("TGL_TEST_DIE_MARKER", str(tmp_path / "died"))
    monkeypatch.setattr(runner, "_worker_summarize", _prepare_then_die_once)
    assert _data(_run(FIXTURES, jobs=3)) == serial
    assert (tmp_path / "died").read_bytes() == b"died"


def test_word_scan_finds_what_a_search_per_word_finds():
    words = {"GradientTape", "custom_gradient", "RegisterGradient", "recompute_grad", "NotDifferentiable",
             "gradient_override_map", "no_gradient", "NoGradient", "noqa"}
    scan = runner._WordScan(words)
    assert "recompute_grad" in scan.alone and "GradientTape" in scan.keyed
    texts = _texts_for_prefilter() + ["", "recompute_grad only", "radient", "NotDifferentiable('X')"]
    for text in texts:
        assert scan.search(text) == frozenset(w for w in words if w in text)


def test_a_task_that_cannot_be_pickled_fails_at_once():
    """It raises where it is submitted; the pool goes on (it must never wait for an answer
    that cannot come)."""
    from tfgradlint.workers import WorkerPool

    pool = WorkerPool.start(1)
    assert pool is not None
    try:
        with pytest.raises(Exception):
            pool.submit(0, len, lambda: None)
        assert pool.submit(0, len, "abc").result() == 3
    finally:
        pool.close()
