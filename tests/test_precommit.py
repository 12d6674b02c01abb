"""The pre-commit hooks, run by the real ``pre-commit try-repo``.

The hook repository is a temporary git repository holding a copy of this checkout's package
(its working tree, so uncommitted changes are tested too), committed there. ``try-repo``
installs the package from it into a fresh virtual environment of its own on every call
(about 10 s with pip's cache warm), which needs pip to reach PyPI for libcst and click; so
the tests make few calls, each over several files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEED3 = (FIXTURES / "seed" / "example3_weight_constraint.py").read_text()
CLEAN = (FIXTURES / "seed" / "example2_clipped_relu.py").read_text()
# What building and installing the package needs.
_PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE", ".pre-commit-hooks.yaml", "setup.py", "setup.cfg")

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c", "user.name=tfgradlint tests",
            "-c", "user.email=tests@tfgradlint.invalid",
            "-c", "commit.gpgsign=false",
            "-c", "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )


def _package_files() -> list[str]:
    """This checkout's package files (tracked or not, but not ignored)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        out = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()]
    return sorted(
        f
        for f in out
        if (f.startswith("tfgradlint/") and "__pycache__" not in f) or f in _PACKAGE_FILES
    )


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in _package_files():
        source = ROOT / name
        if source.is_file():
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    assert (repo / ".pre-commit-hooks.yaml").is_file()
    if not (repo / "README.md").exists():  # pyproject.toml names it
        (repo / "README.md").write_text("# tfgradlint\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "hook repository for the tests")
    return repo


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "project"
    proj.mkdir()
    _git(proj, "init", "-q")
    return proj


def _try_repo(hook_repo: Path, project: Path, hook: str, *files: str) -> subprocess.CompletedProcess:
    _git(project, "add", "-A")
    env = dict(os.environ, PRE_COMMIT_COLOR="never", NO_COLOR="1")
    env.pop("PYTHONPATH", None)  # the hook must run the package pre-commit installed
    return subprocess.run(
        ["pre-commit", "try-repo", str(hook_repo), hook, "--verbose", "--files", *files],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_hook_definitions():
    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["tfgradlint"]["entry"] == "tfgradlint check --force-exclude"
    assert hooks["tfgradlint-fix"]["entry"] == "tfgradlint check --fix --force-exclude"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["types_or"] == ["python", "pyi", "jupyter"]
        assert hook["require_serial"] is True


def test_hook_fails_on_findings_and_passes_clean_files(hook_repo, project):
    """One run over a buggy file, a notebook, a broken notebook and an excluded file."""
    (project / "train.py").write_text(SEED3)
    (project / "clean.py").write_text(CLEAN)
    shutil.copy(FIXTURES / "notebooks" / "bad.ipynb", project / "analysis.ipynb")
    (project / "broken.ipynb").write_text((FIXTURES / "notebooks" / "good.ipynb").read_text()[:300])
    (project / "legacy").mkdir()
    (project / "legacy" / "old.py").write_text(SEED3)
    (project / "pyproject.toml").write_text('[tool.tfgradlint]\nextend-exclude = ["legacy"]\n')

    bad = _try_repo(hook_repo, project, "tfgradlint", "train.py", "analysis.ipynb", "broken.ipynb", "legacy/old.py")
    out = bad.stdout + bad.stderr
    assert bad.returncode == 1, out
    assert "tfgradlint..." in out and "Failed" in out
    assert "train.py:15:1: TGL201" in out
    assert "weight_constraint" in out and "kernel" in out
    assert "analysis.ipynb:cell 4:3:1: TGL201" in out
    assert "broken.ipynb:17:5: TGL002 cannot read notebook: invalid JSON" in out
    # pre-commit passed legacy/old.py by name; --force-exclude applied the configured exclude.
    assert "legacy/old.py" not in out.split("hook id: tfgradlint", 1)[-1]

    good = _try_repo(hook_repo, project, "tfgradlint", "clean.py")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout


def test_fix_hook_repairs_the_file(hook_repo, project):
    shutil.copy(FIXTURES / "rules" / "TGL119_bad.py", project / "prelu.py")
    res = _try_repo(hook_repo, project, "tfgradlint-fix", "prelu.py")
    out = res.stdout + res.stderr
    assert res.returncode == 1, out  # pre-commit fails a hook that changed files
    assert "files were modified by this hook" in out
    assert "1 fixed" in out
    assert "soft_prelu(x, tf.convert_to_tensor(self.slope))" in (project / "prelu.py").read_text()
