"""``concise`` (one line a finding) and ``full`` (with a code frame and the rule's link)."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from tfgradlint.findings import Finding

_FRAME_CONTEXT = 2


def _headline(f: Finding) -> str:
    where = f"{f.filename}:"
    if f.cell is not None:
        where += f"cell {f.cell}:"
    mark = " [*]" if f.fix is not None and f.fix.applicability == "safe" else ""
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
        out.write(_headline(f) + "\n")
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
        out.write("\nFixed:\n")
        for f in ctx.fixed_findings:
            out.write(f"  {f.filename}:{f.start.row}:{f.start.column}: {f.code} {f.fix.message if f.fix else ''}\n")
    if ctx.quiet:
        return
    n = len(findings)
    if ctx.fixed:
        out.write(f"Fixed {ctx.fixed} finding{'s' if ctx.fixed != 1 else ''}.\n")
    if n:
        fixable = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "safe")
        out.write(f"Found {n} finding{'s' if n != 1 else ''} in {ctx.files_checked} file{'s' if ctx.files_checked != 1 else ''} checked.\n")
        if fixable:
            out.write(f"[*] {fixable} fixable with the `--fix` option.\n")
        unsafe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "unsafe")
        if unsafe:
            out.write(f"{unsafe} more fix{'es are' if unsafe != 1 else ' is'} available with `--unsafe-fixes`.\n")
    else:
        out.write(f"All checks passed ({ctx.files_checked} file{'s' if ctx.files_checked != 1 else ''} checked).\n")


def write_statistics(findings: list[Finding], out: TextIO) -> None:
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = {f.code for f in findings if f.fix is not None}
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        mark = "[*]" if code in fixable else "   "
        out.write(f"{count:>5}\t{code}\t{mark} {names[code]}\n")
