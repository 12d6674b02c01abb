"""The cache (tfgradlint/cache.py, tfgradlint/runner.py): correct keys, never trusted when
broken, nothing read twice, identical findings with and without it."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfgradlint import cache as cache_mod
from tfgradlint.cache import Cache, tool_fingerprint
from tfgradlint.findings import Finding, Position
from conftest import findings_data, run_paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEED3 = FIXTURES / "seed" / "example3_weight_constraint.py"

CLEAN = "import tensorflow as tf\n\n\ndef f(x):\n    return x * 2\n"


def _run(*paths, cache_dir=None, no_cache=False, jobs=1, **overrides):
    return run_paths(*paths, cache_dir=cache_dir, no_cache=no_cache, jobs=jobs, **overrides)


def _data(result):
    """Everything about the findings (fixes and subject included) and the errors."""
    return findings_data(result), list(result.errors), result.files_checked


def _pairs(result):
    return sorted((Path(f.filename).name, f.code, f.start.row) for f in result.findings)


def _age(*paths: Path, seconds: int = 3600) -> None:
    """Old modification times: the cache's stat check trusts them."""
    t = time.time() - seconds
    for p in paths:
        os.utime(p, (t, t))


def _py_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _poison(cache_dir: Path) -> None:
    """Replace every cached result with one made-up finding: seeing it proves the cache
    was used; not seeing it proves it was not."""
    c = Cache.open(cache_dir)
    assert c.entries, c.rejected
    fake = Finding("TGL201", "x", "error", "POISONED", "x.py", Position(1, 1), Position(1, 2)).to_json()
    fake["subject"] = None
    for e in c.entries.values():
        for k in list(e["r"]):
            e["r"][k] = ([fake], {})
    c.dirty = True
    c.save()


def _poisoned(result) -> bool:
    return any(f.message == "POISONED" for f in result.findings)


@pytest.fixture
def seed_copy(tmp_path):
    p = tmp_path / "src" / "train.py"
    p.parent.mkdir()
    shutil.copy(SEED3, p)
    _age(p)
    return p


@pytest.fixture
def fresh_fingerprint():
    tool_fingerprint.cache_clear()
    yield
    tool_fingerprint.cache_clear()


# -- the store ---------------------------------------------------------------------------------


def test_cache_is_written_where_asked_and_used(seed_copy, tmp_path):
    cache = tmp_path / "cache"
    first = _run(seed_copy, cache_dir=cache)
    assert _pairs(first) == [("train.py", "TGL201", 15)]
    assert (cache / "CACHEDIR.TAG").is_file() and (cache / ".gitignore").is_file()
    assert Cache.open(cache).entries
    _poison(cache)
    assert _poisoned(_run(seed_copy, cache_dir=cache))


def test_default_location_is_the_project_root(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    (project / "pkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.tfgradlint]\npreview = false\n")
    shutil.copy(SEED3, project / "pkg" / "train.py")
    monkeypatch.chdir(tmp_path)
    _run(project / "pkg" / "train.py")
    assert (project / ".tfgradlint_cache").is_dir()
    assert not (tmp_path / ".tfgradlint_cache").exists()
    # without a configuration file: the current folder
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(SEED3, plain / "t.py")
    monkeypatch.chdir(plain)
    _run(Path("t.py"))
    assert (plain / ".tfgradlint_cache").is_dir()


def test_configured_cache_dir(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.tfgradlint]\ncache-dir = "build/tgl"\n')
    shutil.copy(SEED3, tmp_path / "t.py")
    monkeypatch.chdir(tmp_path)
    _run(Path("t.py"))
    assert (tmp_path / "build" / "tgl").is_dir()
    assert not (tmp_path / ".tfgradlint_cache").exists()


def test_no_cache_reads_and_writes_nothing(seed_copy, tmp_path):
    cache = tmp_path / "cache"
    _run(seed_copy, cache_dir=cache, no_cache=True)
    assert not cache.exists()
    _run(seed_copy, cache_dir=cache)
    _poison(cache)
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    result = _run(seed_copy, cache_dir=cache, no_cache=True)
    assert not _poisoned(result)
    assert _pairs(result) == [("train.py", "TGL201", 15)]
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == before


# -- invalidation ------------------------------------------------------------------------------


def test_invalidated_when_the_file_changes(seed_copy, tmp_path):
    cache = tmp_path / "cache"
    assert _pairs(_run(seed_copy, cache_dir=cache)) == [("train.py", "TGL201", 15)]
    seed_copy.write_text(seed_copy.read_text().replace("model.layers[0].kernel = ", "kernel = "))
    changed = _run(seed_copy, cache_dir=cache)
    assert _pairs(changed) == [("train.py", "TGL202", 15)]
    assert _data(changed) == _data(_run(seed_copy, no_cache=True))
    shutil.copy(SEED3, seed_copy)
    assert _pairs(_run(seed_copy, cache_dir=cache)) == [("train.py", "TGL201", 15)]


def test_same_size_same_mtime_rewrite_is_still_seen(tmp_path):
    """A rewrite within one timestamp tick keeps (mtime, size): a file modified just before
    it was read is hashed again on the next run (git's racy-clean rule)."""
    cache = tmp_path / "cache"
    p = tmp_path / "t.py"
    shutil.copy(SEED3, p)
    st = p.stat()
    assert _pairs(_run(p, cache_dir=cache)) == [("t.py", "TGL201", 15)]
    text = p.read_text()
    changed = text.replace("model.layers[0].kernel = tf.Variable(", "model.layers[0].kernel = tf.identity(")
    assert len(changed) == len(text)
    p.write_text(changed)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert p.stat().st_size == st.st_size and p.stat().st_mtime_ns == st.st_mtime_ns
    after = _run(p, cache_dir=cache)
    assert _data(after) == _data(_run(p, no_cache=True))
    assert _pairs(after) == []


def test_invalidated_when_the_settings_change(seed_copy, tmp_path):
    cache = tmp_path / "cache"
    assert _pairs(_run(seed_copy, cache_dir=cache)) == [("train.py", "TGL201", 15)]
    assert _pairs(_run(seed_copy, cache_dir=cache, ignore=("TGL201",))) == []
    assert _pairs(_run(seed_copy, cache_dir=cache)) == [("train.py", "TGL201", 15)]
    # a configuration file appears: per-file-ignores
    (seed_copy.parent / "tfgradlint.toml").write_text('[per-file-ignores]\n"train.py" = ["TGL2"]\n')
    from tfgradlint import config

    config._config_file_in.cache_clear()  # this process saw the folder without it
    config.load_settings.cache_clear()
    assert _pairs(_run(seed_copy, cache_dir=cache)) == []
    (seed_copy.parent / "tfgradlint.toml").write_text('[per-file-ignores]\n"other.py" = ["TGL2"]\n')
    config.load_settings.cache_clear()
    assert _pairs(_run(seed_copy, cache_dir=cache)) == [("train.py", "TGL201", 15)]


def test_invalidated_when_the_version_changes(seed_copy, tmp_path, monkeypatch, fresh_fingerprint):
    import tfgradlint

    cache = tmp_path / "cache"
    _run(seed_copy, cache_dir=cache)
    _poison(cache)
    assert _poisoned(_run(seed_copy, cache_dir=cache))
    old_store = Cache(cache).path
    monkeypatch.setattr(tfgradlint, "__version__", "99.0.0")
    tool_fingerprint.cache_clear()
    result = _run(seed_copy, cache_dir=cache)
    assert not _poisoned(result)
    assert _pairs(result) == [("train.py", "TGL201", 15)]
    assert Cache(cache).path != old_store and Cache(cache).path.is_file()


def test_fingerprint_covers_the_package_files(tmp_path, monkeypatch, fresh_fingerprint):
    """An edited checkout (same version number) must not be served old findings."""
    fake_pkg = tmp_path / "tfgradlint"
    fake_pkg.mkdir()
    (fake_pkg / "cache.py").write_text("x = 1\n")
    (fake_pkg / "rule.py").write_text("y = 1\n")
    monkeypatch.setattr(cache_mod, "__file__", str(fake_pkg / "cache.py"))
    tool_fingerprint.cache_clear()
    first = tool_fingerprint()
    (fake_pkg / "rule.py").write_text("y = 22\n")
    tool_fingerprint.cache_clear()
    assert tool_fingerprint() != first


def _copy_project(tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", dest)
    _age(*_py_files(dest))
    return dest


def test_cross_file_invalidation(tmp_path):
    """train.py does not change, but the function it imports stops being a cg function."""
    project = _copy_project(tmp_path)
    cache = tmp_path / "cache"
    before = _run(project, cache_dir=cache)
    assert ("train.py", "TGL201", 17) in _pairs(before)
    ops = project / "pkg" / "ops.py"
    ops.write_text(ops.read_text().replace("@tf.custom_gradient\ndef ste_sign", "def ste_sign"))
    after = _run(project, cache_dir=cache)
    assert not [p for p in _pairs(after) if p[0] == "train.py" and p[1] == "TGL201"]
    assert _data(after) == _data(_run(project, no_cache=True))
    # and back
    ops.write_text(ops.read_text().replace("def ste_sign", "@tf.custom_gradient\ndef ste_sign"))
    assert _data(_run(project, cache_dir=cache)) == _data(before)


def test_cross_file_registrations_invalidation(tmp_path):
    """TGL404 in legacy_grads.py depends on grads.py registering the same name."""
    project = _copy_project(tmp_path)
    cache = tmp_path / "cache"
    assert ("legacy_grads.py", "TGL404", 8) in _pairs(_run(project, cache_dir=cache))
    grads = project / "pkg" / "grads.py"
    grads.write_text(grads.read_text().replace('"StraightThrough"', '"StraightThrough2"'))
    after = _run(project, cache_dir=cache)
    assert ("legacy_grads.py", "TGL404", 8) not in _pairs(after)
    assert _data(after) == _data(_run(project, no_cache=True))


def test_single_file_and_whole_project_results_are_kept_apart(tmp_path):
    project = _copy_project(tmp_path)
    cache = tmp_path / "cache"
    train = project / "train.py"
    whole = _run(project, cache_dir=cache)
    alone = _run(train, cache_dir=cache)
    assert [p for p in _pairs(whole) if p[0] == "train.py"] != _pairs(alone)
    assert _data(alone) == _data(_run(train, no_cache=True))
    assert _data(_run(project, cache_dir=cache)) == _data(whole)


# -- identical findings, nothing read twice ------------------------------------------------------


@pytest.mark.parametrize("folder", ["rules", "project", "notebooks", ""])
def test_findings_identical_with_and_without_the_cache(tmp_path, folder):
    src = FIXTURES / folder if folder else FIXTURES
    if not src.exists():
        pytest.skip(f"no fixtures/{folder}")
    dest = tmp_path / "fx"
    shutil.copytree(src, dest)
    _age(*_py_files(dest))
    cache = tmp_path / "cache"
    reference = _data(_run(dest, no_cache=True))
    assert reference[0]
    assert _data(_run(dest, cache_dir=cache)) == reference  # cold
    assert _data(_run(dest, cache_dir=cache)) == reference  # warm
    warm = _run(dest, cache_dir=cache)
    for name, text in warm.sources.items():  # code frames: the texts are there when asked
        if "#cell" not in name:
            assert text == Path(name).read_text(encoding="utf-8", errors="replace") or name.endswith(".ipynb")


def test_warm_run_reads_no_unchanged_file(tmp_path, monkeypatch):
    project = _copy_project(tmp_path)
    clean = project / "clean.py"
    clean.write_text(CLEAN)
    _age(clean)
    cache = tmp_path / "cache"
    reference = _data(_run(project, cache_dir=cache))
    reads: list[str] = []
    real = Path.read_bytes

    def spy(self):
        reads.append(self.name)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    warm = _run(project, cache_dir=cache)
    assert _data(warm) == reference
    with_findings = {Path(f.filename).name for f in warm.findings}
    # only files with findings are read (once), for their code frames and fixes
    assert sorted(reads) == sorted(set(reads)) and set(reads) <= with_findings
    assert "clean.py" not in reads
    # the outcomes still give the text of every file with findings
    assert all(o.text is not None for o in warm.outcomes if o.findings)


def test_one_changed_file_is_the_only_one_linted(tmp_path, monkeypatch):
    import tfgradlint.runner as runner

    project = _copy_project(tmp_path)
    cache = tmp_path / "cache"
    _run(project, cache_dir=cache)
    linted: list[str] = []
    real = runner.lint_source

    def spy(text, filename, *args, **kwargs):
        linted.append(Path(filename).name)
        return real(text, filename, *args, **kwargs)

    monkeypatch.setattr(runner, "lint_source", spy)
    _run(project, cache_dir=cache)
    assert linted == []
    # a change that leaves every summary as it was: only that file is linted again
    train = project / "train.py"
    train.write_text(train.read_text().replace("clipped(x, 0.5)", "clipped(x, 0.25)"))
    result = _run(project, cache_dir=cache)
    assert linted == ["train.py"]
    monkeypatch.setattr(runner, "lint_source", real)
    assert _data(result) == _data(_run(project, no_cache=True))


def test_fix_from_a_warm_cache(tmp_path):
    from tfgradlint.fixes import fix_run

    src = FIXTURES / "rules" / "TGL109_bad.py"
    a, b = tmp_path / "a" / "TGL109_bad.py", tmp_path / "b" / "TGL109_bad.py"
    for p in (a, b):
        p.parent.mkdir()
        shutil.copy(src, p)
        _age(p)
    cache = tmp_path / "cache"
    _run(a, cache_dir=cache)
    warm = _run(a, cache_dir=cache)
    assert any(f.fix is not None for f in warm.findings)
    out_a = fix_run(warm, write=True)
    out_b = fix_run(_run(b, no_cache=True), write=True)
    assert not out_a.errors and out_a.fixed
    assert not out_b.errors and out_b.fixed
    assert a.read_text() == b.read_text() != src.read_text()
    # the fixed file is linted again on the next run
    assert _data(_run(a, cache_dir=cache))[0] == [
        {**d, "filename": str(a) if os.path.isabs(d["filename"]) else d["filename"]}
        for d in _data(_run(a, no_cache=True))[0]
    ]


def test_unreadable_file_is_reported_every_time(tmp_path):
    p = tmp_path / "bad.py"
    p.write_bytes(b"x = 1\x00\n")
    cache = tmp_path / "cache"
    for _ in range(2):
        result = _run(p, cache_dir=cache)
        assert [f.code for f in result.findings] == ["TGL002"]


def test_missing_file_is_an_error_every_time(tmp_path):
    cache = tmp_path / "cache"
    for _ in range(2):
        result = _run(tmp_path / "nope.py", cache_dir=cache)
        assert result.errors and "no such file" in result.errors[0]
        assert result.files_checked == 0


# -- a broken cache is ignored and rebuilt -------------------------------------------------------


def _store(cache: Path) -> Path:
    return Cache(cache).path


def _check_rebuilt(seed_copy: Path, cache: Path) -> None:
    result = _run(seed_copy, cache_dir=cache)
    assert not _poisoned(result)
    assert _pairs(result) == [("train.py", "TGL201", 15)]
    reopened = Cache.open(cache)
    assert reopened.rejected is None and reopened.entries


def _primed(seed_copy: Path, cache: Path) -> bytes:
    _run(seed_copy, cache_dir=cache)
    _poison(cache)
    return _store(cache).read_bytes()


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",
        "empty",
        "truncated",
        "flipped-byte",
        "wrong-format",
        "wrong-fingerprint",
        "not-plain-data",
        "wrong-shape",
        "malformed-entries",
    ],
)
def test_broken_cache_is_ignored_and_rebuilt(seed_copy, tmp_path, damage):
    cache = tmp_path / "cache"
    blob = _primed(seed_copy, cache)
    store = _store(cache)
    header = cache_mod._HEADER
    marker = tmp_path / "executed"

    def checksummed(payload: bytes, fmt: bytes = b"%02d" % cache_mod.FORMAT, fp: str = None) -> bytes:
        import hashlib

        fp = fp or tool_fingerprint()[:32]
        return cache_mod.MAGIC + fmt + fp.encode() + hashlib.blake2b(payload, digest_size=16).hexdigest().encode() + payload

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    if damage == "garbage":
        store.write_bytes(os.urandom(3000))
    elif damage == "empty":
        store.write_bytes(b"")
    elif damage == "truncated":
        store.write_bytes(blob[: len(blob) // 2])
    elif damage == "flipped-byte":
        b = bytearray(blob)
        b[header + (len(blob) - header) // 2] ^= 0x55
        store.write_bytes(bytes(b))
    elif damage == "wrong-format":
        store.write_bytes(checksummed(blob[header:], fmt=b"99"))
    elif damage == "wrong-fingerprint":
        store.write_bytes(checksummed(blob[header:], fp="0" * 32))
    elif damage == "not-plain-data":
        store.write_bytes(checksummed(pickle.dumps({"format": cache_mod.FORMAT, "entries": Evil(), "projects": {}})))
    elif damage == "wrong-shape":
        store.write_bytes(checksummed(pickle.dumps(["not", "a", "store"])))
    elif damage == "malformed-entries":
        data = pickle.loads(blob[header:])
        for e in data["entries"].values():
            for k in e["r"]:
                e["r"][k] = ([{"code": "TGL201"}], None)  # findings without their fields
        for p in data["projects"].values():
            p["summaries"] = {"x.py": {"no": "such field"}}
        store.write_bytes(checksummed(pickle.dumps(data)))
    rejected = Cache.open(cache).rejected
    if damage == "malformed-entries":
        assert rejected is None  # well-formed store, bad entries: each is checked on use
    else:
        assert rejected
    _check_rebuilt(seed_copy, cache)
    assert not marker.exists()


def test_malformed_project_memo_is_rebuilt(tmp_path):
    project = _copy_project(tmp_path)
    cache = tmp_path / "cache"
    reference = _data(_run(project, no_cache=True))
    _run(project, cache_dir=cache)
    c = Cache.open(cache)
    for p in c.projects.values():
        p["summaries"] = {d: {"no": "such field"} for d in p["summaries"]}
    for e in c.entries.values():
        e["r"] = {}  # every file must be linted again, with the (rebuilt) project index
    c.dirty = True
    c.save()
    assert _data(_run(project, cache_dir=cache)) == reference


def test_unwritable_cache_dir_is_not_fatal(seed_copy, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _run(seed_copy, cache_dir=blocker / "cache")
    assert _pairs(result) == [("train.py", "TGL201", 15)] and not result.errors


def test_failed_write_keeps_the_old_store(seed_copy, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _run(seed_copy, cache_dir=cache)
    before = _store(cache).read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod.os, "replace", boom)
    seed_copy.write_text(seed_copy.read_text() + "\n# changed\n")
    assert _pairs(_run(seed_copy, cache_dir=cache)) == [("train.py", "TGL201", 15)]
    assert _store(cache).read_bytes() == before
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".tmp-")) == []


def test_concurrent_runs_do_not_corrupt_the_store(tmp_path):
    """Several processes lint different files into one cache at the same time."""
    cache = tmp_path / "cache"
    files = []
    for i in range(6):
        p = tmp_path / f"t{i}.py"
        p.write_text(SEED3.read_text() + f"\n# {i}\n")
        files.append(p)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tfgradlint", "check", "--cache-dir", str(cache), "--jobs", "1",
             "--output-format", "concise", "--quiet", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        for p in files
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert b"TGL201" in out
    c = Cache.open(cache)
    assert c.rejected is None and c.entries
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]
    for p in files:
        assert _pairs(_run(p, cache_dir=cache)) == [(p.name, "TGL201", 15)]


def test_runs_merge_their_entries(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    shutil.copy(SEED3, a)
    shutil.copy(SEED3, b)
    _age(a, b)
    cache = tmp_path / "cache"
    c1 = Cache.open(cache)  # loaded before the other run writes
    _run(b, cache_dir=cache)
    c1.record(str(a), a.stat(), b"x" * 16, time.time_ns())
    c1.save()
    keys = set(Cache.open(cache).entries)
    assert {str(a), str(b)} <= keys


def test_entries_of_deleted_files_are_pruned(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    shutil.copy(SEED3, a)
    shutil.copy(SEED3, b)
    cache = tmp_path / "cache"
    _run(tmp_path, cache_dir=cache)
    assert {str(a), str(b)} <= set(Cache.open(cache).entries)
    b.unlink()
    a.write_text(a.read_text() + "\n# changed\n")
    _run(a, cache_dir=cache)
    keys = set(Cache.open(cache).entries)
    assert str(a) in keys and str(b) not in keys


# -- tfgradlint clean -----------------------------------------------------------------------------


def test_clean_removes_the_cache(seed_copy, tmp_path, run_cli):
    cache = tmp_path / "cache"
    _run(seed_copy, cache_dir=cache)
    r = run_cli("clean", "--cache-dir", cache)
    assert r.returncode == 0 and "Removed" in r.stdout
    assert not cache.exists()
    r = run_cli("clean", "--cache-dir", cache)
    assert r.returncode == 0 and "No cache" in r.stdout


def test_clean_default_location(tmp_path, run_cli):
    shutil.copy(SEED3, tmp_path / "t.py")
    r = run_cli("check", "t.py", cwd=tmp_path)
    assert r.returncode == 1
    assert (tmp_path / ".tfgradlint_cache").is_dir()
    r = run_cli("clean", cwd=tmp_path)
    assert r.returncode == 0 and "Removed" in r.stdout
    assert not (tmp_path / ".tfgradlint_cache").exists()


def test_clean_keeps_foreign_files(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    shutil.copy(SEED3, tmp_path / "t.py")
    _run(tmp_path / "t.py", cache_dir=folder)
    assert cache_mod.clean(folder) == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_cli_no_cache_and_cache_dir(tmp_path, run_cli):
    shutil.copy(SEED3, tmp_path / "t.py")
    r = run_cli("check", "--no-cache", "t.py", cwd=tmp_path)
    assert r.returncode == 1 and not (tmp_path / ".tfgradlint_cache").exists()
    r = run_cli("check", "--cache-dir", "elsewhere", "t.py", cwd=tmp_path)
    assert r.returncode == 1 and (tmp_path / "elsewhere").is_dir()
    again = run_cli("check", "--cache-dir", "elsewhere", "--output-format", "full", "t.py", cwd=tmp_path)
    assert again.returncode == 1 and "model.layers[0].kernel" in again.stdout  # code frame from the file


def test_stores_of_other_versions_are_bounded(seed_copy, tmp_path):
    cache = tmp_path / "cache"
    _run(seed_copy, cache_dir=cache)
    ours = Cache(cache).path
    for i in range(5):
        other = cache / f"v{cache_mod.FORMAT}-other{i}.bin"
        other.write_bytes(b"x")
        os.utime(other, (time.time() - 100 * (i + 1),) * 2)
    old = cache / f"v{cache_mod.FORMAT}-ancient.bin"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - cache_mod.STALE_STORE_SECONDS - 10,) * 2)
    seed_copy.write_text(seed_copy.read_text() + "\n# changed\n")
    _run(seed_copy, cache_dir=cache)  # a write
    stores = sorted(p.name for p in cache.iterdir() if p.name.endswith(".bin"))
    assert stores == sorted([ours.name, f"v{cache_mod.FORMAT}-other0.bin", f"v{cache_mod.FORMAT}-other1.bin"])
