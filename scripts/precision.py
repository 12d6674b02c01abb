"""Lint installed packages (and optionally other folders) with every rule on; print findings.

    python scripts/precision.py                     # installed tensorflow and keras
    python scripts/precision.py /tmp/corpus/tfp     # any folder, e.g. TFP's unpacked wheel

Used by tests/test_precision.py, which requires every finding on tensorflow and keras to be in
tests/precision_allowlist.txt (each entry checked by hand to be a real bug, with a reason).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from tfgradlint.config import Overrides
from tfgradlint.runner import RunOptions, run


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def lint_all(root: Path):
    """Every finding under ``root`` with all rules on (preview included)."""
    options = RunOptions(
        paths=[root],
        overrides=Overrides(select=("ALL",), preview=True, respect_gitignore=False),
        no_cache=True,
    )
    return run(options)


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [package_dir("tensorflow"), package_dir("keras")]
    total = 0
    for root in roots:
        start = time.perf_counter()
        result = lint_all(root)
        elapsed = time.perf_counter() - start
        for f in result.findings:
            rel = Path(f.filename).resolve().relative_to(root.resolve().parent).as_posix()
            print(f"{rel}:{f.start.row} {f.code} {f.message}")
        for e in result.errors:
            print(f"ERROR {e}")
        print(f"# {root}: {result.files_checked} files, {len(result.findings)} findings, "
              f"{len(result.errors)} internal errors, {elapsed:.1f} s", file=sys.stderr)
        total += len(result.findings) + len(result.errors)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
