"""Check that parsing a statement at a time (tfgradlint/parsing.py ``parse_statements``, the
language server's re-lints) changes nothing.

    python scripts/compare_incremental.py                  # benchmarks/corpus, fixtures/, rule examples,
                                                           # the language-server benchmark's module
    python scripts/compare_incremental.py PATH [PATH ...]  # any folders or files (and the last two)
    python scripts/compare_incremental.py --no-edits       # no simulated edits (faster)
    python scripts/compare_incremental.py --all-trees      # also the trees of every file, candidate or not

For every candidate file (its text contains a trigger word of some rule, as the engine
decides), with every rule on (preview included) and project rules on:

- **trees**: the module assembled from separately parsed statements ``deep_equals``
  ``parse_module`` of the same text (same header, footer, default indent and newline,
  trailing newline), and its code is the text, for the text the engine parses (the
  slicing plan's) and for the whole file (every top-level statement a chunk);
- **findings**: ``lint_source`` gives the same findings (code, positions, message, subject,
  fix edits) and internal errors with the incremental parse as without, first with nothing
  remembered, then after each simulated edit, where the unchanged statements come from the
  previous lints: a comment added to one statement, a statement blanked out, two lines
  inserted at the top, a line appended, and the original text again;
- **positions**: after the edits, every node's position from the engine's per-statement
  positions (``NodePositions`` with the remembered statements) equals LibCST's
  ``PositionProvider`` on the module parsed at once.

Prints the figures; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tfgradlint import engine, parsing, slicing  # noqa: E402
from tfgradlint.config import select_rules  # noqa: E402
from tfgradlint.rules import all_rules  # noqa: E402
from tfgradlint.walk import walk  # noqa: E402

CODES = select_rules(("ALL",), (), (), True)
RULES = [cls() for cls in all_rules() if cls.code in CODES]


def data(result) -> tuple:
    return [f.identity() for f in result.findings], list(result.errors), result.parsed


def lint(text: str, incremental: bool) -> tuple:
    parsing.INCREMENTAL = incremental
    try:
        return data(engine.lint_source(text, "m.py", RULES, enabled=CODES, whole_project=True))
    finally:
        parsing.INCREMENTAL = False


def plan_of(text: str):
    active = engine.triggered_rules(text, RULES)
    if not active or not slicing.reviewed(active):
        return None
    plan = engine._slice_plan(text, active, [])
    return None if plan is None or plan.empty else plan


class Checker:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.failures: list[str] = []

    def fail(self, what: str) -> None:
        self.counts["DIFFERENT"] += 1
        if len(self.failures) < 40:
            self.failures.append(what)

    # -- trees ------------------------------------------------------------------------------

    def tree(self, name: str, text: str, lines: list[int], kind: str):
        """parse_statements vs parse_module; the assembled module and its chunks (or None)."""
        try:
            whole = parsing.parse_module(text)
        except Exception:
            whole = None
        try:
            module, chunks = parsing.parse_statements(text, lines, remember=False)
        except Exception as exc:
            if whole is not None:
                self.fail(f"{name} ({kind}): parse_statements raised {type(exc).__name__}, parse_module did not")
            else:
                self.counts[f"trees {kind}: both reject"] += 1
            return None
        if whole is None:
            self.fail(f"{name} ({kind}): parse_statements accepted what parse_module rejects")
            return None
        if chunks is None:
            self.counts[f"trees {kind}: parsed at once (fallback)"] += 1
            return None
        if not module.deep_equals(whole) or module.code != text:
            self.fail(f"{name} ({kind}): the assembled module differs from the whole parse")
            return None
        self.counts[f"trees {kind}: same"] += 1
        self.counts["statements assembled"] += len(chunks)
        return module, chunks, whole

    # -- positions --------------------------------------------------------------------------

    def positions(self, name: str, text: str, lines: list[int]) -> None:
        module, chunks = parsing.parse_statements(text, lines)
        if chunks is None:
            return
        whole = parsing.parse_module(text)
        from tfgradlint.fixes import _parent_map

        mine = engine.NodePositions(module, lines, _parent_map(module), chunks)
        ref = engine.node_positions(whole)
        a = list(walk(module))
        b = list(walk(whole))
        if len(a) != len(b):
            self.fail(f"{name}: the trees differ in size")
            return
        for x, y in zip(a[1:], b[1:]):  # not the module itself
            if mine[x] != ref[y]:
                self.fail(f"{name}: position of a {type(x).__name__} differs: {mine[x]} != {ref[y]}")
                return
        self.counts["positions checked (nodes)"] += len(a) - 1

    # -- findings ---------------------------------------------------------------------------

    def findings(self, name: str, text: str, step: str) -> None:
        ref = lint(text, False)
        got = lint(text, True)
        if ref != got:
            only_ref = sorted(set(map(repr, ref[0])) - set(map(repr, got[0])))[:3]
            only_got = sorted(set(map(repr, got[0])) - set(map(repr, ref[0])))[:3]
            self.fail(f"{name} [{step}]: findings differ: whole {only_ref} incremental {only_got}"
                      f" errors {ref[1][:2]} / {got[1][:2]}")
        else:
            self.counts[f"lints same ({step})"] += 1
            self.counts["findings compared"] += len(ref[0])
            self.counts["fixes compared"] += sum(1 for f in ref[0] if f[6] is not None)

    def reuse(self, before: str, after: str) -> None:
        """How many statements of ``after``'s plan come from ``before``'s parse."""
        pa, pb = plan_of(before), plan_of(after)
        if pa is None or pb is None:
            return
        _, ca = parsing.parse_statements(pa.text, [st.line for st in pa.statements])
        _, cb = parsing.parse_statements(pb.text, [st.line for st in pb.statements])
        if ca is None or cb is None:
            return
        old = {id(c) for c in ca}
        self.counts["edit: statements reused"] += sum(1 for c in cb if id(c) in old)
        self.counts["edit: statements parsed again"] += sum(1 for c in cb if id(c) not in old)

    # -- one text ---------------------------------------------------------------------------

    def text(self, name: str, text: str, edits: bool, all_trees: bool = False) -> None:
        if not engine.triggered_rules(text, RULES):
            if all_trees:
                lay = slicing.analysed(text)
                if lay is not None and len(lay.statements) >= 2:
                    self.tree(name, text, [st.line for st in lay.statements], "whole file, not a candidate")
            return
        self.counts["candidates"] += 1
        parsing.cache_clear()
        lay = slicing.analysed(text)
        if lay is not None and len(lay.statements) >= 2:
            self.tree(name, text, [st.line for st in lay.statements], "whole file")
        plan = plan_of(text)
        if plan is None:
            self.counts["not parsed by statements (no plan: whole file or nothing)"] += 1
        elif plan.text != text:
            self.tree(name, plan.text, [st.line for st in plan.statements], "sliced")
        self.findings(name, text, "cold")
        if not edits or plan is None:
            return
        steps = [("comment", edit_comment(text, plan)), ("blank", edit_blank(text, plan)),
                 ("insert top", "# inserted\n\n" + text),
                 ("append", text + ("" if text.endswith("\n") or not text else "\n") + "# x\n"),
                 ("original", text)]
        before = text
        for step, edited in steps:
            if edited is None:
                continue
            self.reuse(before, edited)
            self.findings(name, edited, step)
            before = edited
        plan = plan_of(text)
        if plan is not None:
            self.positions(name, plan.text, [st.line for st in plan.statements])


def _middle(plan) -> "slicing.Statement | None":
    kept = [st for st in plan.statements if st.kind != "import"]
    return kept[len(kept) // 2] if kept else None


def edit_comment(text: str, plan):
    """A comment added at the end of the last line of a kept statement (its text changes)."""
    st = _middle(plan)
    if st is None:
        return None
    end = st.end
    nl = end - 2 if text[end - 2 : end] == "\r\n" else end - 1
    if nl < 0 or text[nl : end] not in ("\n", "\r\n"):
        return None
    return text[:nl] + "  # edited" + text[nl:]


def edit_blank(text: str, plan):
    """The last kept non-import statement left out (its lines empty: the others keep theirs)."""
    kept = [st for st in plan.statements if st.kind != "import"]
    if len(kept) < 2:
        return None
    st = kept[-1]
    return slicing.blank_spans(text, [(st.start, st.end)])


def sources(paths: list[Path]):
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for p in files:
            try:
                yield str(p), engine.decode_source(p.read_bytes()).text
            except Exception:
                continue


def examples():
    for cls in all_rules():
        for i, ex in enumerate(list(cls.valid) + list(cls.invalid)):
            yield f"{cls.code}-example-{i}", ex.code
        for name in ("example", "instead"):
            text = getattr(cls, name, None)
            if text:
                yield f"{cls.code}-{name}", text


def benchmark_modules():
    """The language-server benchmark's module (benchmarks/run.py), with bugs in every block
    and in every other one too: many findings with fixes in big statements."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run as bench

    for every in (5, 2, 1):
        yield f"lsp_source(buggy_every={every})", bench.lsp_source(buggy_every=every)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--no-edits", action="store_true", help="no simulated edits")
    ap.add_argument("--limit", type=int, default=0, help="at most this many candidate files per path group")
    ap.add_argument("--all-trees", action="store_true", help="compare the trees of every file, not only candidates")
    args = ap.parse_args(argv)
    sys.setrecursionlimit(30000)
    groups: list[tuple[str, list[Path]]] = []
    if args.paths:
        groups.append(("paths", list(args.paths)))
    else:
        corpus = ROOT / "benchmarks" / "corpus"
        groups.append(("corpus", sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))))
        groups.append(("fixtures", [ROOT / "fixtures"]))
    failed = False
    for label, paths in groups + [("rule examples", []), ("benchmark module", [])]:
        checker = Checker()
        start = time.perf_counter()
        items = (examples() if label == "rule examples" else benchmark_modules() if label == "benchmark module"
                 else sources(paths))
        for name, text in items:
            if args.limit and checker.counts["candidates"] >= args.limit:
                break
            try:
                engine.call_with_deep_stack(checker.text, name, text, not args.no_edits, args.all_trees)
            except Exception as exc:
                checker.fail(f"{name}: the check crashed: {type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - start
        ok = not checker.counts["DIFFERENT"]
        failed |= not ok
        print(f"{'same' if ok else 'DIFFERENT'}: {label} ({elapsed:.0f} s)")
        for k in sorted(checker.counts):
            print(f"  {k}: {checker.counts[k]}")
        for f in checker.failures:
            print("  !", f)
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
