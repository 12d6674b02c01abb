"""Check that parsing only the statements that matter (tfgradlint/slicing.py) changes nothing.

    python scripts/compare_slicing.py                      # installed tensorflow and keras, TFP if unpacked
    python scripts/compare_slicing.py PATH [PATH ...]      # any folders or files
    python scripts/compare_slicing.py --corpus             # benchmarks/corpus (every package in it)

Every path is linted twice in this process, with every rule on (preview included, as
scripts/precision.py does) and as one project: once parsing whole files (the reference), once
sliced. The findings (code, file, positions, message, fix edits), the internal errors and the
project summaries must be identical; the script prints the figures and exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tfgradlint import engine, slicing  # noqa: E402
from tfgradlint.config import Overrides  # noqa: E402
from tfgradlint.runner import RunOptions, run  # noqa: E402


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def finding_data(f) -> tuple:
    return (f.filename, *f.identity())


def lint(paths: list[Path], sliced: bool, select: tuple[str, ...]):
    engine.SLICING = sliced
    slicing._ANALYSED.clear()
    slicing._ANALYSED_CHARS[0] = 0
    options = RunOptions(
        paths=paths,
        overrides=Overrides(select=select, preview=True, respect_gitignore=False),
        no_cache=True,
        jobs=1,
    )
    start = time.process_time()
    result = run(options)
    elapsed = time.process_time() - start
    summaries = {}
    if result.project is not None:
        summaries = {d: s.to_dict() for d, s in getattr(result.project, "summaries", {}).items()}
    return result, summaries, elapsed


def plan_counts(paths: list[Path]) -> Counter:
    """How the engine handles each candidate file (for the report)."""
    from tfgradlint.rules import all_rules

    rules = [cls() for cls in all_rules()]
    counts: Counter = Counter()
    kept = total = 0
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for p in files:
            try:
                text = engine.decode_source(p.read_bytes()).text
            except Exception:
                continue
            active = engine.triggered_rules(text, rules)
            if not active:
                continue
            plan = slicing.plan(
                text,
                {t for r in active for t in r.triggers},
                tape_rules=any(r.code.startswith("TGL3") for r in active),
                cg_method_rule=any(r.code == "TGL116" for r in active),
            )
            kind = "whole (unsure)" if plan is None else "nothing to parse" if plan.empty else (
                "all statements" if plan.full else "sliced")
            counts[kind] += 1
            total += len(text) - text.count("\n")
            if plan is None:
                kept += len(text) - text.count("\n")
            elif not plan.empty:
                kept += len(plan.text) - plan.text.count("\n")
    counts["chars of candidates"] = total
    counts["chars parsed"] = kept
    return counts


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--corpus", action="store_true", help="every package folder in benchmarks/corpus")
    ap.add_argument("--default-rules", action="store_true", help="the default rules instead of ALL + preview")
    ap.add_argument("--separately", action="store_true", help="each path as its own run (not one project)")
    args = ap.parse_args(argv)
    paths: list[Path] = list(args.paths)
    if args.corpus:
        corpus = ROOT / "benchmarks" / "corpus"
        paths += sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not paths:
        paths = [p for p in (package_dir("tensorflow"), package_dir("keras"), Path("/tmp/corpus/tfp")) if p and p.exists()]
    select = () if args.default_rules else ("ALL",)
    groups = [[p] for p in paths] if args.separately else [paths]
    failed = False
    for group in groups:
        names = ", ".join(str(p) for p in group)
        whole, whole_summaries, t_whole = lint(group, False, select)
        sliced, sliced_summaries, t_sliced = lint(group, True, select)
        a = [finding_data(f) for f in whole.findings]
        b = [finding_data(f) for f in sliced.findings]
        same = a == b and whole.errors == sliced.errors and whole_summaries == sliced_summaries
        print(
            f"{'same' if same else 'DIFFERENT'}: {names}: {whole.files_checked} files, {len(a)} findings, "
            f"{len(whole.errors)} internal errors, {len(whole_summaries)} summaries; "
            f"CPU {t_whole:.1f} s whole, {t_sliced:.1f} s sliced"
        )
        if not same:
            failed = True
            for x in sorted(set(a) - set(b))[:20]:
                print("  only whole: ", x[:7])
            for x in sorted(set(b) - set(a))[:20]:
                print("  only sliced:", x[:7])
            if whole.errors != sliced.errors:
                print("  errors whole: ", whole.errors[:10])
                print("  errors sliced:", sliced.errors[:10])
            for d in sorted(set(whole_summaries) | set(sliced_summaries)):
                if whole_summaries.get(d) != sliced_summaries.get(d):
                    print("  summary differs:", d)
        counts = plan_counts(group)
        print("  candidate files:", ", ".join(f"{k} {v}" for k, v in counts.items() if not k.startswith("chars")),
              f"; parsed {counts['chars parsed'] / max(counts['chars of candidates'], 1):.1%} of their text")
    engine.SLICING = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
