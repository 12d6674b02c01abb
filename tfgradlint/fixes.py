"""Automatic fixes: ``--fix``, ``--unsafe-fixes``, ``--diff``, ``--show-fixes``.

A rule offers a fix as a :class:`~tfgradlint.context.FixSpec` (CST replacements); the engine
turns it into text edits (:func:`edits_for_spec`) so that every output format, the language
server and this module see the same ``Finding.fix``. This module applies those edits.

Guarantees (a file is never damaged):

- Every fix of a file is applied to the decoded text in one go; fixes whose edits overlap or
  touch an edit already chosen wait for the next pass. After each pass the text is linted
  again and the remaining fixes are applied, up to :data:`MAX_PASSES` passes.
- After each pass the new text must parse (LibCST) and, when the original compiled, compile
  (``compile(text, name, "exec")``). Otherwise nothing is written for that file and an error
  names it.
- The bytes on disk are re-read before writing: a file that changed since it was linted is
  left alone. The file's encoding (PEP 263 cookie), its BOM and its newline style are kept;
  the text outside the edits is untouched byte for byte (a file whose bytes do not survive
  decoding and encoding unchanged is not fixed at all).
- Writing is atomic: a temporary file in the same folder, ``fsync``, the original's mode,
  then ``os.replace`` (a crash leaves the old file). Symbolic links are followed, so the link
  stays a link. Read-only files are not fixed.
- Fixing is idempotent: after ``--fix`` no enabled fix is left (or the file is reported), so
  a second ``--fix`` changes nothing.

Edits use 1-based rows and columns, the end exclusive; a column counts code points; a row
ends at ``\\r\\n``, ``\\r`` or ``\\n`` (as LibCST and Python's tokenizer count lines), so
``\\r\\n`` files map exactly.
"""

from __future__ import annotations

import bisect
import difflib
import os
import re
import stat
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence, Union

from tfgradlint.findings import Edit, Finding, Fix, Position

if TYPE_CHECKING:  # pragma: no cover
    import libcst as cst

    from tfgradlint.context import FixSpec
    from tfgradlint.engine import LintResult
    from tfgradlint.runner import FileOutcome, RunResult

# Passes per file: a fix that waits for another fix (overlap) is applied in a later pass.
MAX_PASSES = 12

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class FixError(Exception):
    """A fix cannot be applied (a bug in a rule's fix, or an unsafe situation)."""


# --------------------------------------------------------------------------------------
# Text and positions


def newline_of(text: str) -> str:
    """The file's newline style: ``\\r\\n``, ``\\r`` or ``\\n``."""
    if "\r\n" in text:
        return "\r\n"
    if "\r" in text and "\n" not in text:
        return "\r"
    return "\n"


# The last two texts' line starts: a file's fixes each ask for them (the linted text and
# the engine's text of the statements kept), as ((text, starts), (text, starts)).
_STARTS: tuple = ((None, ()), (None, ()))


def line_starts(text: str) -> list[int]:
    """Offsets where each row starts (row 1 at index 0); a final newline opens an empty row."""
    recent = _STARTS
    for cached in recent:
        if cached[0] is text:
            return list(cached[1])
    starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
    globals()["_STARTS"] = ((text, tuple(starts)), recent[0])
    return starts


def to_offset(starts: Sequence[int], text_len: int, pos: Position) -> int:
    """A 1-based (row, column) as an offset into the text; FixError when out of range."""
    if pos.row < 1 or pos.row > len(starts) or pos.column < 1:
        raise FixError(f"position {pos.row}:{pos.column} is outside the file")
    start = starts[pos.row - 1]
    limit = starts[pos.row] if pos.row < len(starts) else text_len
    offset = start + pos.column - 1
    if offset > limit:
        raise FixError(f"position {pos.row}:{pos.column} is past the end of its line")
    return offset


def to_position(starts: Sequence[int], offset: int) -> Position:
    """An offset as a 1-based (row, column)."""
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # last start <= offset
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return Position(lo + 1, offset - starts[lo] + 1)


def _normalize_newlines(content: str, newline: str) -> str:
    if "\r" not in content and (newline == "\n" or "\n" not in content):
        return content
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    return content.replace("\n", newline) if newline != "\n" else content


def edit_spans(text: str, edits: Iterable[Edit], starts: Optional[Sequence[int]] = None) -> list[tuple[int, int, str]]:
    """(start offset, end offset, content) of each edit, content in the file's newline style."""
    starts = starts if starts is not None else line_starts(text)
    nl = newline_of(text)
    out = []
    for e in edits:
        a = to_offset(starts, len(text), e.start)
        b = to_offset(starts, len(text), e.end)
        if b < a:
            raise FixError(f"edit ends ({e.end.row}:{e.end.column}) before it starts ({e.start.row}:{e.start.column})")
        out.append((a, b, _normalize_newlines(e.content, nl)))
    return out


def _conflict(x: tuple[int, int, str], y: tuple[int, int, str]) -> bool:
    # Overlapping or touching ranges conflict (two insertions at one point have no order,
    # and an edit ending where another starts may merge tokens).
    return x[0] <= y[1] and y[0] <= x[1]


def apply_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """Apply non-overlapping spans (any order)."""
    out = []
    last = 0
    for a, b, content in sorted(spans, key=lambda s: (s[0], s[1])):
        if a < last:
            raise FixError("edits overlap")
        out.append(text[last:a])
        out.append(content)
        last = b
    out.append(text[last:])
    return "".join(out)


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply ``edits`` (non-overlapping; positions in ``text``) and return the new text."""
    return apply_spans(text, edit_spans(text, edits))


def is_applicable(finding: Finding, unsafe: bool) -> bool:
    """Would ``--fix`` (with ``--unsafe-fixes`` when ``unsafe``) apply this finding's fix?"""
    fix = finding.fix
    if fix is None or not fix.edits or finding.cell is not None:
        return False
    return fix.applicability == "safe" or (unsafe and fix.applicability == "unsafe")


def select_fixes(text: str, findings: Iterable[Finding], unsafe: bool) -> list[tuple[Finding, list[tuple[int, int, str]]]]:
    """The applicable fixes of ``findings`` that conflict with no fix chosen before them.

    Fixes are taken in the order of their first edit (then the code); a fix that overlaps or
    touches a chosen one waits for the next pass. Raises FixError for a malformed fix.
    """
    starts = line_starts(text)
    candidates = []
    for f in findings:
        if not is_applicable(f, unsafe):
            continue
        try:
            spans = sorted(edit_spans(text, f.fix.edits, starts))  # type: ignore[union-attr]
        except FixError as exc:
            raise FixError(f"{f.code} at {f.start.row}:{f.start.column} has a malformed fix: {exc}") from None
        for s, t in zip(spans, spans[1:]):
            if t[0] < s[1] or (s[0] == s[1] == t[0] == t[1]):
                raise FixError(f"{f.code} at {f.start.row}:{f.start.column} has a fix whose edits overlap")
        candidates.append((spans[0][0], f.code, f.start, f, spans))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    chosen: list[tuple[Finding, list[tuple[int, int, str]]]] = []
    taken: list[tuple[int, int]] = []  # chosen ranges, sorted, pairwise disjoint
    seen_edits: set[tuple] = set()

    def conflicts(a: int, b: int) -> bool:
        i = bisect.bisect_left(taken, (a, a))
        return any(_conflict((a, b, ""), (*taken[j], "")) for j in (i - 1, i) if 0 <= j < len(taken))

    for _, _, _, f, spans in candidates:
        key = tuple(spans)
        if key in seen_edits:
            # Two findings with the same fix (one repair for both): apply it once, count both.
            chosen.append((f, []))
            continue
        if any(conflicts(a, b) for a, b, _ in spans):
            continue
        chosen.append((f, spans))
        for a, b, _ in spans:
            bisect.insort(taken, (a, b))
        seen_edits.add(key)
    return chosen


# --------------------------------------------------------------------------------------
# Validation


def _compiles(text: str, filename: str) -> Optional[str]:
    """None when ``text`` compiles, else a one-line reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"{exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _parses(text: str) -> Optional[str]:
    import libcst as cst

    try:
        cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        return f"{str(exc.message).splitlines()[0] if exc.message else 'invalid syntax'} (line {exc.raw_line})"
    except RecursionError:
        return "nested too deeply to parse"
    return None


# --------------------------------------------------------------------------------------
# Fixing one text


@dataclass
class SourceFix:
    """The result of fixing one module's text."""

    original: str
    text: str  # the fixed text (== original when nothing changed or on error)
    fixed: list[Finding] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)
    error: Optional[str] = None  # set: nothing may be written for this file
    lint_errors: list[str] = field(default_factory=list)  # rule crashes while re-linting
    passes: int = 0

    @property
    def changed(self) -> bool:
        return self.error is None and self.text != self.original


def fix_source(
    text: str,
    findings: list[Finding],
    lint: Callable[[str], "LintResult"],
    *,
    unsafe: bool = False,
    filename: str = "<fix>",
    max_passes: int = MAX_PASSES,
) -> SourceFix:
    """Apply the applicable fixes of ``findings`` (found on ``text``) and re-lint until stable.

    ``lint(text)`` lints a text with the same rules and settings (``LintResult``). On error
    (a malformed fix, a result that does not parse or compile, fixes that never settle) the
    returned ``text`` is the original and ``remaining`` the original findings.
    """
    result = SourceFix(original=text, text=text, remaining=list(findings))
    original_compiles: Optional[bool] = None
    seen = {text}
    current, current_findings = text, list(findings)
    fixed: list[Finding] = []
    for n in range(max_passes + 1):
        try:
            chosen = select_fixes(current, current_findings, unsafe)
        except FixError as exc:
            result.error = f"{filename}: not fixed: {exc}"
            return result
        spans = [s for _, ss in chosen for s in ss]
        if not spans:
            break
        if n == max_passes:
            result.error = (
                f"{filename}: not fixed: the fixes did not settle after {max_passes} passes "
                f"({', '.join(sorted({f.code for f, _ in chosen}))} still fixable)"
            )
            return result
        new = apply_spans(current, spans)
        if new == current:
            break  # the fixes change nothing (a rule offers a no-op): stop here
        problem = None
        reason = _parses(new)
        if reason is not None:
            problem = "parse"
        else:
            if original_compiles is None:
                original_compiles = _compiles(text, filename) is None
            if original_compiles:
                reason = _compiles(new, filename)
                problem = "compile" if reason is not None else None
        if problem is not None:
            codes = ", ".join(sorted({f.code for f, _ in chosen}))
            result.error = f"{filename}: not fixed: the fixed code would not {problem} ({reason}; fixes of {codes})"
            return result
        if new in seen:
            result.error = f"{filename}: not fixed: the fixes undo each other ({', '.join(sorted({f.code for f, _ in chosen}))})"
            return result
        seen.add(new)
        fixed.extend(f for f, _ in chosen)
        current = new
        relint = lint(current)
        current_findings = list(relint.findings)
        result.passes = n + 1
        if relint.errors:
            result.lint_errors = list(relint.errors)
    result.text = current
    result.fixed = fixed
    result.remaining = current_findings
    return result


# --------------------------------------------------------------------------------------
# Fixing a run's files


@dataclass
class FixOutcome:
    remaining: list[Finding] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    diff: str = ""
    errors: list[str] = field(default_factory=list)
    # display name -> fixed text, for every file that changed (written or not)
    texts: dict[str, str] = field(default_factory=dict)


def unified_diff(old: str, new: str, name: str) -> str:
    """A unified diff (``--- name`` / ``+++ name``) keeping the file's line endings."""
    if old == new:
        return ""
    a = _split_keep(old)
    b = _split_keep(new)
    out = []
    for i, line in enumerate(difflib.unified_diff(a, b, fromfile=name, tofile=name, lineterm="\n", n=3)):
        if i < 2 or line.endswith(("\n", "\r")):  # the two header lines end with "\n"
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _split_keep(text: str) -> list[str]:
    lines = []
    last = 0
    for m in _LINE_BREAK.finditer(text):
        lines.append(text[last : m.end()])
        last = m.end()
    if last < len(text):
        lines.append(text[last:])
    return lines


def linter_for(outcome: "FileOutcome", *, whole_project: bool, project=None) -> Callable[[str], "LintResult"]:
    """A function that lints a new text of ``outcome``'s file exactly as the run did."""
    from tfgradlint.engine import lint_source
    from tfgradlint.rules import all_rules
    from tfgradlint.runner import _module_name, _relative

    sf = outcome.source_file
    settings = outcome.settings
    enabled = settings.rule_codes(_relative(sf.path, settings.root))
    rules = [cls() for cls in all_rules() if cls.code in enabled]
    module_name = _module_name(sf.path, settings.root)

    def lint(text: str) -> "LintResult":
        extra = ()
        if project is not None and hasattr(project, "extra_triggers"):
            extra = project.extra_triggers(sf.display, text)
        return lint_source(
            text,
            sf.display,
            rules,
            enabled=enabled,
            project=project,
            whole_project=whole_project,
            module_name=module_name,
            extra_triggers=extra,
        )

    return lint


def _is_notebook(outcome: "FileOutcome") -> bool:
    return outcome.source_file.path.suffix == ".ipynb" or any(f.cell is not None for f in outcome.findings)


def fix_run(
    result: "RunResult",
    *,
    unsafe: bool = False,
    write: bool = True,
    lint_factory: Optional[Callable[["FileOutcome"], Callable[[str], "LintResult"]]] = None,
) -> FixOutcome:
    """Fix every file of a run; write the fixed files when ``write`` (else only diff them).

    ``remaining`` is every finding of the run after fixing (the fixed texts re-linted, also
    with ``write=False``), ``fixed`` the findings that were fixed (or would be, with
    ``write=False``), ``diff`` a unified diff of all changes, ``texts`` the fixed texts,
    ``errors`` one line per file that could not be fixed or written.
    """
    out = FixOutcome()
    whole_project = getattr(result, "whole_project", None)
    if whole_project is None:
        whole_project = len(result.outcomes) > 1
    project = getattr(result, "project", None)
    replaced: dict[str, list[Finding]] = {}
    diffs = []
    for outcome in result.outcomes:
        text = outcome.text
        if text is None or not any(is_applicable(f, unsafe) for f in outcome.findings):
            continue
        display = outcome.source_file.display
        if _is_notebook(outcome):
            continue  # notebooks: fixes inside cells are not applied (see docs/fixing.md)
        if lint_factory is not None:
            lint = lint_factory(outcome)
        else:
            lint = linter_for(outcome, whole_project=whole_project, project=project)
        fixed = fix_source(text, outcome.findings, lint, unsafe=unsafe, filename=display)
        if fixed.error is not None:
            out.errors.append(fixed.error)
            continue
        out.errors.extend(e for e in fixed.lint_errors if e not in result.errors and e not in out.errors)
        if not fixed.changed:
            continue
        if write:
            try:
                write_fixed(outcome.source_file.path, text, fixed.text)
            except FixError as exc:
                out.errors.append(f"{display}: not fixed: {exc}")
                continue
        out.texts[display] = fixed.text
        out.fixed.extend(fixed.fixed)
        replaced[display] = fixed.remaining
        diffs.append(unified_diff(text, fixed.text, display))
    kept = [f for f in result.findings if f.filename not in replaced]
    for fs in replaced.values():
        kept.extend(fs)
    kept.sort(key=Finding.sort_key)
    out.remaining = kept
    out.diff = "".join(diffs)
    return out


# --------------------------------------------------------------------------------------
# Writing


def encode_like(original: bytes, text: str) -> bytes:
    """``text`` encoded as ``original`` was (its PEP 263 encoding and BOM)."""
    from tfgradlint.engine import UnreadableSource, decode_source

    try:
        src = decode_source(original)
    except UnreadableSource as exc:
        raise FixError(str(exc)) from None
    codec = "utf-8" if src.bom else src.encoding
    try:
        data = text.encode(codec)
    except (UnicodeEncodeError, LookupError) as exc:
        raise FixError(f"the fixed text cannot be encoded as {src.encoding}: {exc}") from None
    return (b"\xef\xbb\xbf" + data) if src.bom else data


def write_fixed(path: Path, old_text: str, new_text: str) -> None:
    """Write ``new_text`` over ``path`` if the file still holds ``old_text``; atomically."""
    from tfgradlint.engine import UnreadableSource, decode_source

    real = Path(os.path.realpath(path))
    try:
        original = real.read_bytes()
        st = os.stat(real)
    except OSError as exc:
        raise FixError(f"cannot read it again: {exc.strerror or exc}") from None
    try:
        current = decode_source(original).text
    except UnreadableSource as exc:
        raise FixError(str(exc)) from None
    if current != old_text:
        raise FixError("the file changed since it was read")
    if encode_like(original, old_text) != original:
        raise FixError("its bytes would not survive decoding and encoding unchanged")
    if not os.access(real, os.W_OK):
        raise FixError("the file is read-only")
    data = encode_like(original, new_text)
    atomic_write(real, data, stat.S_IMODE(st.st_mode))


def atomic_write(path: Path, data: bytes, mode: Optional[int] = None) -> None:
    """Replace ``path`` with ``data``: temporary file in the same folder, fsync, os.replace."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tfgradlint-fix", dir=path.parent)
    except OSError as exc:
        raise FixError(f"cannot create a temporary file beside it: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise FixError(f"cannot write it: {exc.strerror or exc}") from None
        raise
    try:  # make the rename durable (best effort; not available everywhere)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# --------------------------------------------------------------------------------------
# From a rule's FixSpec to text edits (used by the engine)

Replacement = Union[str, "cst.CSTNode", "cst.RemovalSentinel", "cst.FlattenSentinel"]


def _parent_map(module: "cst.Module") -> Callable:
    parents: dict[int, "cst.CSTNode"] = {}
    stack = [module]
    while stack:
        n = stack.pop()
        for child in n.children:
            parents[id(child)] = n
            stack.append(child)
    return lambda n: parents.get(id(n))


def replace_in_module(module: "cst.Module", replacements: Sequence[tuple], parent_of: Callable) -> "cst.Module":
    """``module`` with every (node, new) of ``replacements`` made at once, as LibCST would.

    ``new`` is a node, ``cst.RemovalSentinel.REMOVE`` or a ``cst.FlattenSentinel``. Only the
    nodes on the paths from the replaced nodes to the module are visited and rebuilt, so a
    swap (``[(a, b), (b, a)]``) works and node validation sees the final children.
    """
    import libcst as cst

    new_module = _replace_under(module, replacements, parent_of)
    if not isinstance(new_module, cst.Module):
        raise FixError("the module itself cannot be replaced")
    return new_module


def _replace_under(root, replacements: Sequence[tuple], parent_of: Callable):
    import libcst as cst

    targets: dict[int, object] = {}
    for node, new in replacements:
        if id(node) in targets:
            raise FixError("a node is replaced twice")
        targets[id(node)] = new
    if id(root) in targets:
        if len(targets) > 1:
            raise FixError("a replaced node contains another replaced node")
        return targets[id(root)]
    on_path: set[int] = {id(root)}
    for node, _ in replacements:
        p = parent_of(node)
        while p is not None and id(p) not in on_path:
            if id(p) in targets:
                raise FixError("a replaced node contains another replaced node")
            on_path.add(id(p))
            p = parent_of(p)
        if p is None:
            raise FixError("the node to replace is not in the module")
        if id(p) in targets:
            raise FixError("a replaced node contains another replaced node")

    class _Replace(cst.CSTTransformer):
        def on_visit(self, node) -> bool:
            return id(node) in on_path

        def on_leave(self, original, updated):
            return targets.get(id(original), updated)

    return root.visit(_Replace())


# The offsets of the last module's top-level statements in its text (computed once per
# module): (module, text, {id(stmt): (offset, length)} or None), replaced as one tuple.
_LAYOUT: tuple = (None, None, None)


def _statement_layout(module: "cst.Module", text: str) -> Optional[dict[int, tuple[int, int]]]:
    global _LAYOUT
    cached = _LAYOUT
    if cached[0] is module and cached[1] is text:
        return cached[2]
    layout: Optional[dict[int, tuple[int, int]]] = {}
    offset = sum(len(module.code_for_node(h)) for h in module.header)
    for stmt in module.body:
        code = module.code_for_node(stmt)
        n = len(code)
        if text[offset : offset + n] != code:
            layout = None
            break
        layout[id(stmt)] = (offset, n)  # type: ignore[index]
        offset += n
    if layout is not None and module.body and not module.has_trailing_newline:
        layout.pop(id(module.body[-1]), None)  # its code ends with a newline the text lacks
    _LAYOUT = (module, text, layout)
    return layout


def replaced_text(module: "cst.Module", text: str, replacements: Sequence[tuple], parent_of: Callable) -> str:
    """``text`` (``module``'s code) after the replacements; codegen limited to one statement."""
    import libcst as cst

    tops = set()
    for node, _ in replacements:
        top = node
        p = parent_of(top)
        while p is not None and p is not module:
            top = p
            p = parent_of(top)
        if p is None:
            raise FixError("the node to replace is not in the module")
        tops.add(top)
    if len(tops) == 1:
        (top,) = tops
        layout = _statement_layout(module, text)
        if layout is not None and id(top) in layout:
            new_top = _replace_under(top, replacements, parent_of)
            if isinstance(new_top, cst.CSTNode):
                off, n = layout[id(top)]
                return text[:off] + module.code_for_node(new_top) + text[off + n :]
    return replace_in_module(module, replacements, parent_of).code


def _first_difference(a: str, b: str) -> int:
    n = min(len(a), len(b))
    lo = 0
    step = 4096
    while lo + step <= n and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
    # a[:lo] == b[:lo]; the first difference (or the end) is at most ``hi``: halve the range
    hi = min(lo + step, n)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def text_edit(old: str, new: str, starts: Optional[Sequence[int]] = None) -> Optional[Edit]:
    """The single smallest edit that turns ``old`` into ``new`` (None when equal)."""
    if old == new:
        return None
    prefix = _first_difference(old, new)
    limit = min(len(old), len(new)) - prefix
    suffix = _first_difference(old[::-1][:limit], new[::-1][:limit])
    # Never split a \r\n pair: an edit boundary between \r and \n would be ambiguous.
    if 0 < prefix < len(old) and old[prefix - 1] == "\r" and old[prefix] == "\n":
        prefix -= 1
    if suffix and len(old) - suffix > 0 and old[len(old) - suffix] == "\n" and old[len(old) - suffix - 1] == "\r":
        suffix -= 1
    starts = starts if starts is not None else line_starts(old)
    a, b = prefix, len(old) - suffix
    return Edit(new[prefix : len(new) - suffix], to_position(starts, a), to_position(starts, b))


def edits_for_spec(
    module: "cst.Module",
    text: str,
    spec: "FixSpec",
    positions,
    parent_of: Optional[Callable] = None,
    replace: Optional[Callable[[Sequence[tuple]], str]] = None,
) -> Fix:
    """A rule's FixSpec as text edits on ``text`` (``module``'s source).

    - a replacement by a **string** replaces the node's syntactic range (what a finding
      underlines: without surrounding parentheses, commas, decorators' ``@``-line newline);
    - a replacement by a **node** (or ``cst.RemovalSentinel.REMOVE`` /
      ``cst.FlattenSentinel``) replaces the node in the tree, exactly as LibCST's
      ``deep_replace`` would, whitespace, parentheses and commas included; the edit is the
      smallest change of the module's code.

    ``replace(replacements)``: ``text`` after node replacements (default ``replaced_text``;
    the engine passes its own when ``module`` holds only some of ``text``'s statements).
    """
    import libcst as cst

    starts = line_starts(text)
    edits: list[Edit] = []
    node_repl = []
    for node, replacement in spec.replacements:
        if isinstance(replacement, str):
            r = positions[node]
            edits.append(
                Edit(
                    _normalize_newlines(replacement, newline_of(text)),
                    Position(r.start.line, r.start.column + 1),
                    Position(r.end.line, r.end.column + 1),
                )
            )
        elif isinstance(replacement, (cst.CSTNode, cst.RemovalSentinel, cst.FlattenSentinel)):
            node_repl.append((node, replacement))
        else:
            raise FixError(f"unsupported replacement {type(replacement).__name__}")
    if node_repl:
        parent_of = parent_of or _parent_map(module)
        if replace is None:
            def replace(items: Sequence[tuple]) -> str:
                return replaced_text(module, text, items, parent_of)
        together = replace(node_repl)
        node_edits: list[Edit] = []
        if len(node_repl) > 1:
            # One edit per replacement when that gives the same text (readable edits that
            # conflict with fewer other fixes); otherwise one edit for the whole change.
            try:
                for item in node_repl:
                    e = text_edit(text, replace([item]), starts)
                    if e is not None:
                        node_edits.append(e)
                if apply_edits(text, node_edits) != together:
                    node_edits = []
            except Exception:  # e.g. a node alone would be invalid (positional after keyword)
                node_edits = []
        if not node_edits:
            e = text_edit(text, together, starts)
            node_edits = [e] if e is not None else []
        edits.extend(node_edits)
    return Fix(spec.applicability, spec.message, tuple(sorted(edits, key=lambda e: (e.start, e.end))))
