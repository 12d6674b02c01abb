"""``concise`` (one line a finding) and ``full`` (with a code frame and the rule's link)."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from tfgradlint.findings import Finding

_FRAME_CONTEXT = 2


def _offered(f: Finding, ctx) -> bool:
    """Would ``--fix`` apply this finding's fix with the current options? (``[*]``)"""
    if f.fix is None or not f.fix.edits or f.cell is not None:
        return False
    return f.fix.applicability == "safe" or bool(getattr(ctx, "unsafe_fixes", False))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _headline(f: Finding, ctx=None) -> str:
    where = f"{f.filename}:"
    if f.cell is not None:
        where += f"cell {f.cell}:"
    mark = " [*]" if _offered(f, ctx) else ""
    return f"{where}{f.start.row}:{f.start.column}: {f.code}{mark} {f.message}"


def _frame(f: Finding, ctx) -> list[str]:
    if f.cell is not None:
        lines = ctx.sources.get(f"{f.filename}#cell{f.cell}", "").splitlines()
    else:
        lines = ctx.source_lines(f.filename) or []
    if not lines or f.start.row > len(lines):
        return []
    first = max(1, f.start.row - _FRAME_CONTEXT)
    last = min(len(lines), f.end.row if f.end.row - f.start.row < 6 else f.start.row)
    last = min(len(lines), max(last, f.start.row) + _FRAME_CONTEXT)
    width = len(str(last))
    out = []
    for n in range(first, last + 1):
        text = lines[n - 1].rstrip()
        out.append(f"  {n:>{width}} | {text}")
        if n == f.start.row:
            start = f.start.column - 1
            end = f.end.column - 1 if f.end.row == f.start.row else len(text)
            out.append(f"  {'':>{width}} | {' ' * start}{'^' * max(1, end - start)}")
    return out


def write(findings: list[Finding], out: TextIO, ctx) -> None:
    full = ctx.format == "full"
    for f in findings:
        out.write(_headline(f, ctx) + "\n")
        if full:
            for line in _frame(f, ctx):
                out.write(line + "\n")
            if f.confirmation is not None:
                out.write(f"  = confirmation: {f.confirmation.status}: {f.confirmation.evidence}\n")
            if f.fix is not None:
                label = "fix" if f.fix.applicability == "safe" else "unsafe fix"
                out.write(f"  = {label}: {f.fix.message}\n")
            out.write(f"  = help: {f.url}\n\n")
        elif f.confirmation is not None:
            out.write(f"    confirmation: {f.confirmation.status}: {f.confirmation.evidence}\n")
    if ctx.statistics:
        write_statistics(findings, out)
    if ctx.show_fixes and ctx.fixed_findings:
        write_fixed(ctx.fixed_findings, out)
    if ctx.quiet:
        return
    n = len(findings)
    files = _plural(ctx.files_checked, "file")
    if n or ctx.fixed:
        fixed = f" ({ctx.fixed} fixed, {n} remaining)" if ctx.fixed else ""
        out.write(f"Found {_plural(n + ctx.fixed, 'finding')}{fixed} in {files} checked.\n")
        fixable = sum(1 for f in findings if _offered(f, ctx))
        hidden = 0 if getattr(ctx, "unsafe_fixes", False) else sum(
            1 for f in findings if f.fix is not None and f.fix.edits and f.cell is None and f.fix.applicability == "unsafe"
        )
        hint = (
            f" ({hidden} hidden fix{'es' if hidden != 1 else ''} can be enabled with the `--unsafe-fixes` option)"
            if hidden
            else ""
        )
        if fixable:
            out.write(f"[*] {fixable} fixable with the `--fix` option{hint}.\n")
        elif hidden:
            out.write(f"No fixes available{hint}.\n")
    else:
        out.write(f"All checks passed ({files} checked).\n")


def write_fixed(fixed: list[Finding], out: TextIO) -> None:
    """``--show-fixes``: what was fixed, per file and rule."""
    out.write(f"Fixed {_plural(len(fixed), 'finding')}:\n")
    per_file: dict[str, Counter] = {}
    names = {}
    for f in fixed:
        per_file.setdefault(f.filename, Counter())[f.code] += 1
        names[f.code] = f.name
    for filename in sorted(per_file):
        out.write(f"- {filename}:\n")
        for code, count in sorted(per_file[filename].items()):
            out.write(f"    {count} \u00d7 {code} ({names[code]})\n")
    out.write("\n")


def write_statistics(findings: list[Finding], out: TextIO) -> None:
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = {f.code for f in findings if f.fix is not None}
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        mark = "[*]" if code in fixable else "   "
        out.write(f"{count:>5}\t{code}\t{mark} {names[code]}\n")
