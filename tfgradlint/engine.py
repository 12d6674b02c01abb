"""The linting pipeline for one file's text: prefilter, parse, index, rules, suppressions.

``lint_source`` never imports or runs the code it lints, and never raises for bad input:
unreadable or unparsable input becomes a TGL001/TGL002 finding. A rule that crashes is an
internal error: it is recorded in ``LintResult.errors`` (the command then exits 2) and the
other rules and files still run.
"""

from __future__ import annotations

import codecs
import io
import tokenize
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from tfgradlint import DOCS_URL
from tfgradlint.findings import Finding, Position

if TYPE_CHECKING:  # pragma: no cover
    import libcst as cst

    from tfgradlint.context import Report
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
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise UnreadableSource(f"cannot determine the encoding: {exc}") from None
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8-sig" if bom else encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnreadableSource(f"cannot decode as {encoding}: {exc}") from None
    newline = "\r\n" if "\r\n" in text[:10000] else ("\r" if "\r" in text[:10000] and "\n" not in text[:10000] else "\n")
    return DecodedSource(text, encoding, bom, newline)


def meta_finding(code: str, message: str, filename: str, row: int = 1, column: int = 1) -> Finding:
    from tfgradlint.rules import rule_by_code_or_name

    rule = rule_by_code_or_name(code)
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


def call_with_deep_stack(fn, *args, **kwargs):
    """Run ``fn`` in a thread with a large stack and recursion limit.

    Deep but valid code (a 900-term sum) nests LibCST's tree as deep as it is long; the
    default 8 MiB stack and 1,000-frame limit are too small for walking it.
    """
    import sys
    import threading

    box: dict = {}

    def target() -> None:
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
    return [r for r in rules if r.triggers and any(t in text for t in r.triggers)]


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
) -> LintResult:
    """Lint one module's text with ``rules`` (instances). ``enabled`` adds TGL0xx codes."""
    enabled = enabled if enabled is not None else frozenset(r.code for r in rules)
    result = LintResult()
    active = triggered_rules(text, rules)
    extra = [t for t in extra_triggers if t in text]
    if extra:
        active = [r for r in rules if r.triggers]
    wants_noqa_check = "TGL003" in enabled and "noqa" in text
    if not active and not wants_noqa_check:
        return result

    too_deep = _too_deep_for_python(text)
    if too_deep is not None:
        if "TGL001" in enabled:
            result.findings.append(meta_finding("TGL001", f"cannot parse: {too_deep[0]}", filename, too_deep[1]))
        return result

    import libcst as cst

    try:
        module = cst.parse_module(text)
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
    except RecursionError:
        if "TGL001" in enabled:
            result.findings.append(
                meta_finding("TGL001", "cannot parse: the code is nested too deeply to analyse", filename)
            )
        return result
    result.parsed = True

    reports: list["Report"] = []
    parent_of = None
    if active:
        from tfgradlint.context import RuleContext
        from tfgradlint.index import ModuleIndex

        try:
            index = ModuleIndex(module)
        except RecursionError:
            if "TGL001" in enabled:
                result.findings.append(
                    meta_finding("TGL001", "cannot analyse: the code is nested too deeply", filename)
                )
            return result
        ctx = RuleContext(
            filename=filename,
            source=text,
            module=module,
            index=index,
            project=project,
            whole_project=whole_project,
            module_name=module_name,
        )
        for rule in sorted(active, key=lambda r: r.code):
            if rule.needs_project and not whole_project:
                continue
            ctx.rule = rule
            try:
                rule.check(ctx)
            except RecursionError:
                result.errors.append(f"{filename}: {rule.code} gave up: the code is nested too deeply")
            except Exception as exc:  # a bug in a rule must not stop the run
                result.errors.append(
                    f"{filename}: internal error in {rule.code} ({type(exc).__name__}: {exc})"
                )
        reports = ctx.reports
        parent_of = index.parent

    result.findings.extend(_to_findings(module, reports, filename, text, parent_of, result.errors))
    _apply_suppressions(text, filename, enabled, result)
    result.findings.sort(key=Finding.sort_key)
    return result


def _to_findings(
    module: "cst.Module",
    reports: list["Report"],
    filename: str,
    text: Optional[str] = None,
    parent_of=None,
    errors: Optional[list[str]] = None,
) -> list[Finding]:
    if not reports:
        return []
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
                fix = edits_for_spec(module, module.code if text is None else text, rep.fix, positions, parent_of)
            except Exception as exc:  # a bug in a rule's fix: report it, keep the finding
                if errors is not None:
                    errors.append(f"{filename}: internal error in {rep.rule.code}'s fix ({type(exc).__name__}: {exc})")
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
    """Positions of every node: computed only for modules that have something to report."""
    import libcst as cst
    from libcst.metadata import PositionProvider

    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    return wrapper.resolve(PositionProvider)


def _apply_suppressions(text: str, filename: str, enabled: frozenset[str], result: LintResult) -> None:
    from tfgradlint.suppressions import parse_suppressions

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
