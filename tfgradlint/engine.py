"""The linting pipeline for one file's text: prefilter, parse, index, rules, suppressions.

``lint_source`` never imports or runs the code it lints, and never raises for bad input:
unreadable or unparsable input becomes a TGL001/TGL002 finding. A rule that crashes is an
internal error: it is recorded in ``LintResult.errors`` (the command then exits 2) and the
other rules and files still run.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import io
import os
import threading
import tokenize
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from tfgradlint import DOCS_URL
from tfgradlint.findings import Finding, Position

if TYPE_CHECKING:  # pragma: no cover
    import libcst as cst

    from tfgradlint.context import Report
    from tfgradlint.index import ModuleIndex
    from tfgradlint.project import ProjectIndex
    from tfgradlint.rules.base import Rule

MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # internal errors (exit 2)
    parsed: bool = False


@dataclass
class DecodedSource:
    text: str
    encoding: str
    bom: bool
    newline: str


class UnreadableSource(Exception):
    pass


def decode_source(data: bytes) -> DecodedSource:
    """Decode Python source bytes as the interpreter would (PEP 263 cookie, BOM)."""
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableSource(
            f"file is too large to lint ({len(data) // (1024 * 1024)} MiB; the limit is "
            f"{MAX_FILE_BYTES // (1024 * 1024)} MiB)"
        )
    if b"\x00" in data:
        raise UnreadableSource("file contains NUL bytes (is it a binary file?)")
    bom = data.startswith(codecs.BOM_UTF8)
    encoding = None
    if not bom:
        # no cookie in the first two lines, which are UTF-8: what detect_encoding says
        end = data.find(b"\n")
        end = data.find(b"\n", end + 1) if end >= 0 else -1
        head = data if end < 0 else data[: end + 1]
        if b"coding" not in head:
            try:
                head.decode("utf-8")
                encoding = "utf-8"
            except UnicodeDecodeError:
                pass
    if encoding is None:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as exc:
            raise UnreadableSource(f"cannot determine the encoding: {exc}") from None
    try:
        text = data.decode("utf-8-sig" if bom else encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnreadableSource(f"cannot decode as {encoding}: {exc}") from None
    newline = "\r\n" if "\r\n" in text[:10000] else ("\r" if "\r" in text[:10000] and "\n" not in text[:10000] else "\n")
    return DecodedSource(text, encoding, bom, newline)


def meta_finding(code: str, message: str, filename: str, row: int = 1, column: int = 1) -> Finding:
    from tfgradlint.rules import rule_info  # metadata only: no rule module imported

    rule = rule_info(code)
    assert rule is not None
    pos = Position(max(row, 1), max(column, 1))
    return Finding(
        code=rule.code,
        name=rule.name,
        severity=rule.severity,
        message=message,
        filename=filename,
        start=pos,
        end=pos,
        url=DOCS_URL.format(code=rule.code),
    )


def _too_deep_for_python(text: str) -> Optional[tuple[str, int]]:
    """Reject code nested beyond what CPython itself accepts, before LibCST sees it.

    LibCST's native parser can exhaust the C stack (a crash, not an exception) on such
    input; CPython's own parser, in C and about twenty times faster, stops it cleanly.
    Ordinary syntax errors are left to LibCST, which also accepts newer grammar.
    """
    import ast
    import sys

    # CPython's guard scales with the recursion limit, which call_with_deep_stack raises:
    # judge by the interpreter's default, as `python file.py` would.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        ast.parse(text)
    except (RecursionError, MemoryError):
        return ("the code is nested too deeply for Python to compile", 1)
    except SyntaxError as exc:
        if exc.msg and ("too many nested" in exc.msg or "too complex" in exc.msg):
            return (f"{exc.msg} (line {exc.lineno})", exc.lineno or 1)
    except ValueError:
        return None
    finally:
        sys.setrecursionlimit(limit)
    return None


def _python_syntax_error(text: str) -> Optional[tuple[str, int, int]]:
    """CPython's syntax error for ``text`` as (message with line and column, row, column)."""
    import ast

    try:
        ast.parse(text)
    except SyntaxError as exc:
        row, column = exc.lineno or 1, exc.offset or 1
        return (f"{exc.msg} (line {row}, column {column})", row, column)
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


_DEEP = threading.local()


def call_with_deep_stack(fn, *args, **kwargs):
    """Run ``fn`` in a thread with a large stack and recursion limit (here, when this is
    such a thread already: a worker process runs all its tasks in one).

    Deep but valid code (a 900-term sum) nests LibCST's tree as deep as it is long; the
    default 8 MiB stack and 1,000-frame limit are too small for walking it.
    """
    import sys

    if getattr(_DEEP, "active", False):
        return fn(*args, **kwargs)
    box: dict = {}

    def target() -> None:
        _DEEP.active = True
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    old_limit = sys.getrecursionlimit()
    old_size = threading.stack_size()
    sys.setrecursionlimit(max(old_limit, 30000))
    try:
        threading.stack_size(512 * 1024 * 1024)
        thread = threading.Thread(target=target, name="tfgradlint-lint")
    finally:
        threading.stack_size(old_size)
    try:
        thread.start()
        thread.join()
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def triggered_rules(text: str, rules: Sequence["Rule"]) -> list["Rule"]:
    """The rules whose trigger strings ``text`` contains (each distinct string searched once)."""
    found: dict[str, bool] = {}
    out = []
    for r in rules:
        if not r.triggers:
            continue
        for t in r.triggers:
            hit = found.get(t)
            if hit is None:
                hit = found[t] = t in text
            if hit:
                out.append(r)
                break
    return out


# Parse only the top-level statements that can matter (tfgradlint/slicing.py). Off with
# TFGRADLINT_SLICING=0 (or ``lint_source(..., slicing=False)``): the findings are the same,
# tests/test_engine_identical.py and scripts/compare_slicing.py check it.
SLICING = os.environ.get("TFGRADLINT_SLICING", "1") not in ("0", "false", "no", "off")


def lint_source(
    text: str,
    filename: str,
    rules: Sequence["Rule"],
    *,
    enabled: Optional[frozenset[str]] = None,
    project: Optional["ProjectIndex"] = None,
    whole_project: bool = False,
    module_name: Optional[str] = None,
    extra_triggers: Iterable[str] = (),
    slicing: Optional[bool] = None,
) -> LintResult:
    """Lint one module's text with ``rules`` (instances). ``enabled`` adds TGL0xx codes.

    ``slicing`` (default ``SLICING``): parse only the top-level statements that can matter;
    the findings are those of the whole file."""
    enabled = enabled if enabled is not None else frozenset(r.code for r in rules)
    result = LintResult()
    active = triggered_rules(text, rules)
    extra = [t for t in extra_triggers if t in text]
    if extra:
        active = [r for r in rules if r.triggers]
    wants_noqa_check = "TGL003" in enabled and "noqa" in text
    if not active and not wants_noqa_check:
        return result

    env = _Env(text, filename, enabled, project, whole_project, module_name)
    if SLICING if slicing is None else slicing:
        from tfgradlint import slicing as slicer

        ahead = _take_ahead(text, active, extra)
        if not active:
            # only unused-suppression checks: the module must parse, nothing else is needed
            plan = slicer.Plan(text, [], full=False, empty=True) if slicer.supported(text) and slicer.compiles(text) else None
        elif ahead is not None:
            plan = ahead.plan
        elif not slicer.reviewed(active):
            plan = None  # a rule whose needs slicing does not know: the whole file
        else:
            plan = _slice_plan(text, active, extra)
        if plan is not None:
            if plan.empty:
                result.parsed = True
                return env.finish(result)
            try:
                with _no_gc():
                    done = _lint_plan(env, plan, active, result, ahead)
            except (Exception, RecursionError):
                done = None
            if done is not None:
                return done
            result = LintResult()  # something needs the whole module: start over

    too_deep = _too_deep_for_python(text)
    if too_deep is not None:
        if "TGL001" in enabled:
            result.findings.append(meta_finding("TGL001", f"cannot parse: {too_deep[0]}", filename, too_deep[1]))
        return result

    import libcst as cst

    try:
        with _no_gc():
            module = cst.parse_module(text)  # validated: this text may not compile
    except cst.ParserSyntaxError as exc:
        if "TGL001" in enabled:
            reason = str(exc.message).splitlines()[0] if exc.message else "invalid syntax"
            result.findings.append(
                meta_finding(
                    "TGL001",
                    f"cannot parse: {reason} (line {exc.raw_line}, column {exc.raw_column + 1})",
                    filename,
                    exc.raw_line,
                    exc.raw_column + 1,
                )
            )
        return result
    except cst.CSTValidationError as exc:
        # LibCST's grammar accepts it, its node checks do not ('a' b'b'): CPython says why
        if "TGL001" in enabled:
            reason, row, column = _python_syntax_error(text) or (str(exc), 1, 1)
            result.findings.append(meta_finding("TGL001", f"cannot parse: {reason}", filename, row, column))
        return result
    except RecursionError:
        if "TGL001" in enabled:
            result.findings.append(
                meta_finding("TGL001", "cannot parse: the code is nested too deeply to analyse", filename)
            )
        return result
    result.parsed = True
    if not active:
        return env.finish(result)
    lines = None
    if (SLICING if slicing is None else slicing):
        lines = _statement_lines(text, len(module.body))
    with _no_gc():
        _run_rules(env, module, active, lines, result, whole_module=True)
    return result


def needs_libcst(
    text: str,
    rules: Sequence["Rule"],
    *,
    enabled: Optional[frozenset[str]] = None,
    extra_triggers: Iterable[str] = (),
) -> bool:
    """Whether ``lint_source`` with these arguments would parse ``text`` with LibCST (the
    costly part: schedule such files on worker processes). Cheap when False: the slicing
    analysis it computes is remembered (``slicing.analysed``) for ``lint_source``."""
    enabled = enabled if enabled is not None else frozenset(r.code for r in rules)
    active = triggered_rules(text, rules)
    extra = [t for t in extra_triggers if t in text]
    if extra:
        active = [r for r in rules if r.triggers]
    from tfgradlint import slicing as slicer

    if not active:
        if "TGL003" in enabled and "noqa" in text:
            # only unused-suppression checks: LibCST only says why it does not compile
            return not (SLICING and slicer.supported(text) and slicer.compiles(text))
        return False
    if not SLICING:
        return True

    if not slicer.reviewed(active):
        return True
    plan = _slice_plan(text, active, extra)
    return plan is None or not plan.empty


def _slice_plan(text: str, active, extra):
    """Which statements of ``text`` the ``active`` rules need; None means the whole file."""
    from tfgradlint import slicing as slicer

    try:
        return slicer.plan(
            text,
            {t for r in active for t in r.triggers},
            extra,
            tape_rules=any(r.code.startswith("TGL3") for r in active),
            cg_method_rule=any(r.code == "TGL116" for r in active),
        )
    except (Exception, RecursionError):  # never worse than the whole file
        return None


# -- lint work done ahead ----------------------------------------------------------------------
#
# A run over a project builds its index (tfgradlint/project.py) before any file is linted,
# since rules read it. What a lint does before its rules run does not depend on the index
# when the index adds no trigger words to the file (the usual case): the plan, LibCST's parse
# of it and the module index. The runner's workers do that part while the index is built
# (``lint_ahead``); ``lint_source`` takes the result, once, for the same text and rules.


@dataclass
class _Ahead:
    active: frozenset[str]  # the codes of the rules it was planned for
    plan: "object"  # slicing.Plan
    chars: int  # of the plan's code
    module: Optional["cst.Module"] = None
    index: Optional["ModuleIndex"] = None


_AHEAD: "dict[str, _Ahead]" = {}
_AHEAD_CHARS = [0]
# At most this many characters of planned code are held parsed at once (a worker's memory).
AHEAD_MAX_CHARS = 12_000_000


def lint_ahead(text: str, rules: Sequence["Rule"], enabled: Optional[frozenset[str]] = None) -> Optional[str]:
    """Plan ``text`` for ``rules`` as ``lint_source`` does without extra triggers, and parse
    and index what the plan keeps; remembered for ``lint_source``. What lint_source has left
    to do: "nothing" (no statement matters, or no rule is triggered), "rules" (the tree is
    ready), None (everything: the plan keeps the whole file the old way, or this failed)."""
    if not SLICING:
        return None
    from tfgradlint import parsing
    from tfgradlint import slicing as slicer

    if parsing.INCREMENTAL:
        return None  # the language server parses statement by statement (parse_statements)
    enabled = enabled if enabled is not None else frozenset(r.code for r in rules)
    active = triggered_rules(text, rules)
    if not active:
        return "nothing" if not ("TGL003" in enabled and "noqa" in text) else None
    if not slicer.reviewed(active):
        return None
    plan = _slice_plan(text, active, [])
    if plan is None:
        return None
    if plan.empty:
        return "nothing"  # (planned again by lint_source: cheap, the layout is remembered)
    code = plan.text if plan.compact is None else plan.compact.text
    if len(code) > AHEAD_MAX_CHARS:
        return None
    ahead = _Ahead(frozenset(r.code for r in active), plan, chars=len(code))
    try:
        with _no_gc():
            module = parsing.parse_module(code)
            if len(module.body) != len(plan.statements):
                return None
            from tfgradlint.index import ModuleIndex

            ahead.module, ahead.index = module, ModuleIndex(module)
    except (Exception, RecursionError):
        return None
    _drop_ahead(text)
    while _AHEAD and _AHEAD_CHARS[0] + ahead.chars > AHEAD_MAX_CHARS:
        _drop_ahead(next(iter(_AHEAD)))
    _AHEAD[text] = ahead
    _AHEAD_CHARS[0] += ahead.chars
    # Out of the collector's sight from now on: it would walk every tree held here again
    # and again while they wait for their lint. (Freed as usual once the lint drops them;
    # ModuleIndex breaks its cycles.)
    gc.freeze()
    return "rules"


def _drop_ahead(text: str) -> Optional[_Ahead]:
    ahead = _AHEAD.pop(text, None)
    if ahead is not None:
        _AHEAD_CHARS[0] -= ahead.chars
    return ahead


def _take_ahead(text: str, active: Sequence["Rule"], extra: Sequence[str]) -> Optional[_Ahead]:
    """The work ``lint_ahead`` did for ``text``, when it planned for the same rules and no
    extra triggers (forgotten either way: it is used once)."""
    if not _AHEAD:
        return None
    ahead = _drop_ahead(text)
    if ahead is None or extra or ahead.active != frozenset(r.code for r in active):
        return None
    return ahead


@contextlib.contextmanager
def _no_gc():
    """No cyclic garbage collection while one file's trees are built and walked: LibCST
    allocates hundreds of thousands of objects, and each collection would walk them all
    (and everything else alive). The cycles left are collected after."""
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Env:
    """What one lint_source call lints, for its helpers."""

    text: str
    filename: str
    enabled: frozenset[str]
    project: Optional["ProjectIndex"]
    whole_project: bool
    module_name: Optional[str]

    def finish(self, result: LintResult) -> LintResult:
        _apply_suppressions(self.text, self.filename, self.enabled, result)
        result.findings.sort(key=Finding.sort_key)
        return result


def _statement_lines(text: str, count: int) -> Optional[list[int]]:
    """The first line of each top-level statement (for positions per statement), or None."""
    from tfgradlint import slicing as slicer

    lay = slicer.analysed(text)
    if lay is None and slicer.supported(text) and slicer.compiles(text):
        lay = slicer.layout(text)
    if lay is None or len(lay.statements) != count:
        return None
    return [st.line for st in lay.statements]


def _lint_plan(
    env: _Env, plan, active: Sequence["Rule"], result: LintResult, ahead: Optional["_Ahead"] = None
) -> Optional[LintResult]:
    """Lint the statements ``plan`` keeps; None when the whole module is needed after all
    (LibCST rejects the slice, or a fix's edit reaches into a statement left out).
    ``ahead``: the plan's tree and index, built before (``lint_ahead``)."""
    import libcst as cst

    from tfgradlint import parsing

    lines = [st.line for st in plan.statements]
    chunks = None
    # what LibCST parses: the plan's compact code, or (the language server, whose parses
    # are by statement) its code with the statements left out as empty lines
    compact = None if parsing.INCREMENTAL else plan.compact
    if ahead is not None:
        module, index = ahead.module, ahead.index
    else:
        index = None
        try:
            if parsing.INCREMENTAL:
                # the same tree, unchanged statements of recent lints reused
                module, chunks = parsing.parse_statements(plan.text, lines)
            else:
                # (the kept code compiles: slicing._checked)
                module = parsing.parse_module(plan.text if compact is None else compact.text)
        except (cst.ParserSyntaxError, RecursionError):
            return None
        if len(module.body) != len(plan.statements):
            return None
    result.parsed = True
    if not _run_rules(
        env, module, active, lines, result, whole_module=plan.full, module_text=plan.text, chunks=chunks,
        index=index, compact=compact,
    ):
        return None
    return result


def _run_rules(
    env: _Env,
    module: "cst.Module",
    active: Sequence["Rule"],
    lines: Optional[list[int]],
    result: LintResult,
    *,
    whole_module: bool,
    module_text: Optional[str] = None,
    chunks=None,
    index: Optional["ModuleIndex"] = None,
    compact=None,
) -> bool:
    """Index ``module`` (whose code is ``module_text``: the linted text with some
    statements left out, unless ``whole_module``; or ``compact.text``, a slicing.Compact),
    run the rules, turn their reports into findings. False (with ``result`` untouched) when
    a report needs the whole module. ``lines``: where the module's statements start in the
    linted text."""
    from tfgradlint.context import RuleContext
    from tfgradlint.index import ModuleIndex

    filename = env.filename
    try:
        if index is None:
            index = ModuleIndex(module)
    except RecursionError:
        if not whole_module:
            return False
        if "TGL001" in env.enabled:
            result.findings.append(meta_finding("TGL001", "cannot analyse: the code is nested too deeply", filename))
        return True
    if compact is not None:
        positions = NodePositions(module, compact.lines, index.parent, chunks, compact.original_row)
    else:
        positions = NodePositions(module, lines, index.parent, chunks)
    ctx = RuleContext(
        filename=filename,
        source=env.text,
        module=module,
        index=index,
        project=env.project,
        whole_project=env.whole_project,
        module_name=env.module_name,
    )
    ctx.positions = positions
    errors: list[str] = []
    for rule in sorted(active, key=lambda r: r.code):
        if rule.needs_project and not env.whole_project:
            continue
        ctx.rule = rule
        try:
            rule.check(ctx)
        except RecursionError:
            errors.append(f"{filename}: {rule.code} gave up: the code is nested too deeply")
        except Exception as exc:  # a bug in a rule must not stop the run
            errors.append(f"{filename}: internal error in {rule.code} ({type(exc).__name__}: {exc})")
    reports = ctx.reports
    code = env.text if module_text is None else module_text
    if compact is not None:
        replace = _Replacer(module, compact.text, index.parent, compact.lines, chunks)
        transplant = _Transplant(replace, env.text, compact.original_row)
    else:
        replace = _Replacer(module, code, index.parent, lines, chunks)
        transplant = None
        if not whole_module and code != env.text:
            transplant = _Transplant(replace, env.text)
    try:
        findings = _to_findings(
            module, reports, filename, env.text, index.parent, errors, positions, transplant,
            replace if transplant is None and code == env.text and lines is not None else None,
        )
    except _NeedsWholeModule:
        return False
    result.errors.extend(errors)
    result.findings.extend(findings)
    env.finish(result)
    return True


class _NeedsWholeModule(Exception):
    """A fix's text edit cannot be computed from the statements kept."""


class _Replacer:
    """``fixes.replaced_text`` for one module and its code, without the code generation of
    every statement that ``fixes._statement_layout`` does to find the replaced statement:
    its place comes from its first line (``lines``, as for positions) and is checked
    against its code. Anything else is ``fixes.replaced_text`` itself. ``chunks`` (as for
    ``NodePositions``): the statement's code, and its code after the same replacements,
    come from the previous lints when its chunk's statement is unchanged."""

    def __init__(
        self, module: "cst.Module", code: str, parent_of, lines: Optional[Sequence[int]], chunks=None
    ) -> None:
        self.module = module
        self.code = code
        self.parent_of = parent_of
        self.lines = lines
        self.chunks = chunks
        self._starts: Optional[list[int]] = None
        self._index: Optional[dict[int, int]] = None

    def __call__(self, items) -> str:
        from tfgradlint.fixes import replaced_text

        found = self._one_statement(items) if self.lines is not None else None
        return found if found is not None else replaced_text(self.module, self.code, items, self.parent_of)

    def _one_statement(self, items) -> Optional[str]:
        import libcst as cst
        from tfgradlint.fixes import _replace_under, line_starts

        module = self.module
        tops = set()
        top = None
        for node, _ in items:
            top = node
            p = self.parent_of(top)
            while p is not None and p is not module:
                top = p
                p = self.parent_of(top)
            if p is None:
                return None
            tops.add(id(top))
        if len(tops) != 1 or top is None:
            return None
        if self._index is None:
            self._index = {id(s): i for i, s in enumerate(module.body)}
            self._starts = line_starts(self.code)
        i = self._index.get(id(top))
        if i is None or i >= len(self.lines):  # type: ignore[arg-type]
            return None
        first = self.lines[i] - 1 - len(getattr(top, "leading_lines", ()))  # type: ignore[index]
        starts = self._starts
        assert starts is not None
        if first < 0 or first >= len(starts):
            return None
        chunk = self.chunks[i] if self.chunks is not None and i < len(self.chunks) else None
        lead = ""
        if chunk is None:
            old = module.code_for_node(top)
        else:
            # a statement's code: its leading lines', then the rest's (the chunk's statement)
            if chunk.node is not top:
                lead = "".join(module.code_for_node(line) for line in top.leading_lines)
            old = lead + chunk.code(module)
        off = starts[first]
        if self.code[off : off + len(old)] != old:
            return None  # not where expected (or the last line lacks its newline)

        def make() -> Optional[str]:
            try:
                new_top = _replace_under(top, items, self.parent_of)
            except Exception:
                return None  # fixes.replaced_text raises the same error
            if not isinstance(new_top, cst.CSTNode):
                return None
            return module.code_for_node(new_top)

        if chunk is None or any(node is top for node, _ in items):
            new = make()
        else:
            new = chunk.fixed_code(module, items, lambda: _rest(make(), lead))
            new = None if new is None else lead + new
        if new is None:
            return None
        return self.code[:off] + new + self.code[off + len(old) :]


def _rest(code: Optional[str], lead: str) -> Optional[str]:
    """``code`` without its prefix ``lead`` (None when it does not start with it)."""
    if code is None or not code.startswith(lead):
        return None
    return code[len(lead) :]


class _Transplant:
    """Node replacements on a module of some of the text's statements, as the whole text
    after them: the change is made on the module's code (``_Replacer``), then made at the
    same lines and columns of the whole text, where the changed code is the same (kept
    statements are verbatim). ``original_row``: the text's row of each row of the module's
    code, when that code lacks the lines of some statements (slicing.Compact); else rows are
    the same. ``fixes.edits_for_spec`` then takes the smallest edit on the whole text, as
    for the whole module. When the changed range reaches into a statement left out,
    ``failed`` is set: the engine lints the whole module instead."""

    def __init__(self, replace: "_Replacer", text: str, original_row=None) -> None:
        self.replace = replace
        self.module_text = replace.code
        self.text = text
        self.original_row = original_row if original_row is not None else (lambda row: row)
        self.module_starts: list[int] = []
        self.starts: list[int] = []
        self.failed = False

    def __call__(self, items) -> str:
        from tfgradlint.fixes import line_starts, text_edit, to_offset

        if not self.starts:
            self.module_starts = line_starts(self.module_text)
            self.starts = line_starts(self.text)
        new = self.replace(items)
        edit = text_edit(self.module_text, new, self.module_starts)
        if edit is None:
            return self.text
        first, last = self.original_row(edit.start.row), self.original_row(edit.end.row)
        try:
            if last - first != edit.end.row - edit.start.row:
                raise ValueError("the edit spans lines left out")
            a = to_offset(self.module_starts, len(self.module_text), edit.start)
            b = to_offset(self.module_starts, len(self.module_text), edit.end)
            fa = to_offset(self.starts, len(self.text), Position(first, edit.start.column))
            fb = to_offset(self.starts, len(self.text), Position(last, edit.end.column))
        except Exception:
            self.failed = True
            raise _NeedsWholeModule() from None
        if self.module_text[a:b] != self.text[fa:fb] or self._touches_blanked(edit, first):
            self.failed = True
            raise _NeedsWholeModule()
        return self.text[:fa] + edit.content + self.text[fb:]

    def _touches_blanked(self, edit, first: int) -> bool:
        """The edit's lines include one that differs between the two texts (its first line
        is row ``first`` of the text)."""
        ms, fs = self.module_starts, self.starts
        for k in range(edit.end.row - edit.start.row + 1):
            i, j = edit.start.row - 1 + k, first - 1 + k
            if i >= len(ms) or j >= len(fs):
                return True
            m_end = ms[i + 1] if i + 1 < len(ms) else len(self.module_text)
            f_end = fs[j + 1] if j + 1 < len(fs) else len(self.text)
            if self.module_text[ms[i] : m_end] != self.text[fs[j] : f_end]:
                return True
        return False


def _to_findings(
    module: "cst.Module",
    reports: list["Report"],
    filename: str,
    text: Optional[str] = None,
    parent_of=None,
    errors: Optional[list[str]] = None,
    positions=None,
    transplant: Optional["_Transplant"] = None,
    replace: Optional["_Replacer"] = None,
) -> list[Finding]:
    if not reports:
        return []
    if positions is None:
        positions = node_positions(module)
    out = []
    seen = set()
    for rep in reports:
        start_node = rep.node
        end_node = rep.end_node or rep.node
        rng = positions[start_node]
        end_rng = positions[end_node]
        start = Position(rng.start.line, rng.start.column + 1)
        end = Position(end_rng.end.line, end_rng.end.column + 1)
        key = (rep.rule.code, start, end)
        if key in seen:
            continue  # one finding per anchor and code
        seen.add(key)
        fix = None
        if rep.fix is not None:
            # CST replacements -> text edits (tfgradlint/fixes.py documents the semantics).
            from tfgradlint.fixes import edits_for_spec

            try:
                if transplant is None:
                    fix = edits_for_spec(
                        module, module.code if text is None else text, rep.fix, positions, parent_of, replace=replace
                    )
                else:
                    fix = edits_for_spec(module, transplant.text, rep.fix, positions, parent_of, replace=transplant)
            except _NeedsWholeModule:
                raise
            except Exception as exc:  # a bug in a rule's fix: report it, keep the finding
                if errors is not None:
                    errors.append(f"{filename}: internal error in {rep.rule.code}'s fix ({type(exc).__name__}: {exc})")
            if transplant is not None and transplant.failed:
                raise _NeedsWholeModule()
        out.append(
            Finding(
                code=rep.rule.code,
                name=rep.rule.name,
                severity=rep.rule.severity,
                message=rep.message,
                filename=filename,
                start=start,
                end=end,
                url=DOCS_URL.format(code=rep.rule.code),
                fix=fix,
                subject=rep.subject,
            )
        )
    return out


def node_positions(module: "cst.Module"):
    """Positions of every node of ``module`` (LibCST's PositionProvider over all of it)."""
    import libcst as cst
    from libcst.metadata import PositionProvider

    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    return wrapper.resolve(PositionProvider)


class NodePositions:
    """Node -> ``CodeRange``, computed for the top-level statement that holds the node when
    it is first asked for (the position codegen of one statement, not of the module).

    ``lines``: the first line (first decorator or keyword) of each statement of
    ``module.body`` in the text the positions are for; None: whole-module positions.
    ``chunks``: for a module from ``parsing.parse_statements``, the chunk of each statement
    (None: parsed at once). A chunk's statement is the module's, or the same but for its
    leading lines (its children are the module's): its positions, relative to its first
    line, are computed once and remembered with the chunk for the next lints.
    """

    def __init__(
        self, module: "cst.Module", lines: Optional[Sequence[int]], parent_of, chunks=None, original_row=None
    ) -> None:
        self.module = module
        self.lines = lines
        self.parent_of = parent_of
        self.chunks = chunks
        # the module's code lacks some lines of the text (slicing.Compact): its rows, and
        # ``lines``, are the code's; positions are given in the text's rows
        self.original_row = original_row
        self._full = None
        self._by_statement: dict[int, tuple[object, int, object]] = {}
        self._index: Optional[dict[int, int]] = None

    def _whole(self):
        if self._full is None:
            self._full = node_positions(self.module)
        return self._full

    def get(self, node, default=None):
        try:
            return self[node]
        except KeyError:
            return default

    def __getitem__(self, node):
        rng = self._code_range(node)
        if self.original_row is None:
            return rng
        from libcst.metadata import CodePosition, CodeRange

        row = self.original_row
        return CodeRange(
            CodePosition(row(rng.start.line), rng.start.column), CodePosition(row(rng.end.line), rng.end.column)
        )

    def _code_range(self, node):
        if self.lines is None or self.parent_of is None:
            return self._whole()[node]
        top = node
        parent = self.parent_of(top)
        while parent is not None and parent is not self.module:
            top = parent
            parent = self.parent_of(top)
        if parent is None:
            return self._whole()[node]
        entry = self._by_statement.get(id(top))
        if entry is None:
            entry = self._statement_positions(top)
            if entry is None:
                return self._whole()[node]
        raw, delta, alias = entry
        # ``alias``: the chunk's statement, where the module's differs in its leading lines
        rng = raw[alias if alias is not None and node is top else node]  # type: ignore[index]
        if not delta:
            return rng
        from libcst.metadata import CodePosition, CodeRange

        return CodeRange(
            CodePosition(rng.start.line + delta, rng.start.column),
            CodePosition(rng.end.line + delta, rng.end.column),
        )

    def _statement_positions(self, top):
        import libcst as cst
        from libcst.metadata import PositionProvider

        if self._index is None:
            self._index = {id(s): i for i, s in enumerate(self.module.body)}
        i = self._index.get(id(top))
        if i is None or i >= len(self.lines):  # type: ignore[arg-type]
            return None
        m = self.module
        chunk = self.chunks[i] if self.chunks is not None and i < len(self.chunks) else None
        node = top if chunk is None else chunk.node
        key = (m.default_indent, m.default_newline)
        raw = None if chunk is None else chunk.positions.get(key)
        if raw is None:
            mini = cst.Module(
                body=[node],
                header=(),
                footer=(),
                encoding=m.encoding,
                default_indent=m.default_indent,
                default_newline=m.default_newline,
                has_trailing_newline=True,
            )
            raw = cst.MetadataWrapper(mini, unsafe_skip_copy=True).resolve(PositionProvider)
            if chunk is not None:
                chunk.positions[key] = raw
        delta = self.lines[i] - (len(getattr(node, "leading_lines", ())) + 1)  # type: ignore[index]
        entry = (raw, delta, None if node is top else node)
        self._by_statement[id(top)] = entry
        return entry


def _apply_suppressions(text: str, filename: str, enabled: frozenset[str], result: LintResult) -> None:
    from tfgradlint.suppressions import parse_suppressions

    if not result.findings and "TGL003" not in enabled:
        return  # nothing to suppress, and unused suppressions are not reported
    sup = parse_suppressions(text)
    if not sup.by_line and not sup.file_level:
        return
    kept = [f for f in result.findings if not sup.suppresses(f.code, f.start.row)]
    if "TGL003" in enabled:
        for directive, codes in sup.unused():
            f = meta_finding(
                "TGL003",
                f"unused suppression: {', '.join(codes)} "
                + ("(file-level) " if directive.file_level else "")
                + "suppresses nothing here; remove it",
                filename,
                directive.line,
                directive.column,
            )
            f.end = Position(directive.line, directive.end_column)
            if not sup.suppresses("TGL003", directive.line):
                kept.append(f)
    result.findings = kept
