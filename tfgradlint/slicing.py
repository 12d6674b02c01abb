"""Parse less: the parts of a module that can matter to the rules.

LibCST parses about a megabyte a second; most of a file that mentions ``custom_gradient`` or
``GradientTape`` is code no rule looks at. ``plan`` picks the top-level statements (and the
methods of the classes among them) that can matter; ``Plan.text`` is the module with the
lines of everything else left empty, so every kept node keeps its line and column (findings,
fixes and suppressions are those of the whole file). ``Plan.compact`` is what LibCST is
given instead, outside the language server: the same without the lines of the statements
left out (LibCST would make a node of every empty line); positions and a fix's edits are
moved back to the file's rows (engine.NodePositions, engine._Transplant). The findings are
the same as parsing
the whole file: tests/test_engine_identical.py compares both on the fixtures, the rules'
examples and the fixtures mixed with code that reuses their names; scripts/compare_slicing.py
on TensorFlow, Keras, TFP and the benchmark corpus.

What is kept, for the rules in ``REVIEWED_RULES``:

- **relevant** statements: a live trigger word of an active rule in code (a whole identifier
  outside strings and comments: ``my_custom_gradient`` is another name), or a name that
  matters: the project's cg/recompute callables this file imports (``extra_triggers``),
  TensorFlow imports of a trigger (``from tensorflow import custom_gradient as cg``), and,
  to a fixpoint, what a relevant statement binds when the relevant part is in its header
  (``cg = tf.custom_gradient``, ``@tf.custom_gradient def f``: calls of ``f`` matter; a
  function that merely holds a tape does not make its callers relevant). With an override
  map in code, every name a relevant statement binds matters (TGL401 follows callers);
- a trigger word is **dead** where it cannot name a TensorFlow API: ``tfp_cg.custom_gradient``
  when ``tfp_cg`` is imported once at module level from outside TensorFlow/Keras and used
  nowhere but as ``tfp_cg.<attribute>`` (rules resolve names through imports). The words the
  override-map rules match by name (``<x>.gradient_override_map(...)``, ``<x>.create_op("T")``)
  are never dead;
- every statement with a module-scope import, and (to a fixpoint) every statement binding at
  module level a name that kept code mentions: each name resolves to the same bindings;
- in a kept class, the methods (and nested classes) that hold something relevant, the users
  of what a custom-gradient or recompute_grad method binds or assigns (``self.m(...)``), the
  methods kept code names, and those assigning an attribute that kept code reads (present,
  their own names not followed: the rules read the assigned value); other class-body
  statements always;
- whole-module facts: statements and methods with ``global``/``nonlocal`` (tape rules), TF1
  graph-mode signs when there is an override map (TGL401-403), every mention of a
  custom-gradient method of a class (TGL116). When the module scope itself may create a tape
  (its flow analysis walks every top-level statement), nothing is dropped.

``layout`` finds the top-level statements with a small tokenizer (strings, comments,
brackets, line continuations) for Python 3.11's lexical rules. A plan that keeps anything
asks CPython's parser and symbol table whether the code it keeps compiles (``_checked``):
only then are the lexical rules known to hold for it, and only then does anything reach
LibCST. The statements left out are not compiled, and a file whose trigger words are all in
strings, comments or dead code keeps nothing and is never compiled (most candidate files:
TFP's docstrings show ``tf.GradientTape``): a syntax error there is not reported (TGL001
covers the code tfgradlint analyses; compiling whole files was 8% of a cold run). Anything unusual (a form feed, a lone ``\\r``, a file CPython rejects, a rule not
reviewed) returns None and the engine parses the whole file as before. ``analysed``
remembers recent texts' layouts: the project summary of a file (tfgradlint/project.py,
``summary_keep``) and its lint share one.
"""

from __future__ import annotations

import ast
import bisect
import re
import symtable
import sys
import threading
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

# The rules whose needs this module was checked against (read every rule's ``check``): what
# they report is anchored on a trigger word or a name that matters, they resolve other names
# through the index (every binding of a name kept), and the whole-module facts they read
# are kept (see the module docstring). A rule not listed here (a new rule, a plugin, a
# test rule) makes the engine parse the whole file: add it only after checking its needs
# (tests/test_slicing.py fails for a built-in rule missing here).
REVIEWED_RULES = frozenset(
    {
        "TGL101", "TGL102", "TGL103", "TGL104", "TGL105", "TGL106", "TGL107", "TGL108", "TGL109",
        "TGL110", "TGL111", "TGL112", "TGL113", "TGL114", "TGL115", "TGL116", "TGL117", "TGL118",
        "TGL119", "TGL201", "TGL202", "TGL203", "TGL301", "TGL302", "TGL303", "TGL304", "TGL305",
        "TGL306", "TGL307", "TGL401", "TGL402", "TGL403", "TGL404", "TGL405", "TGL501", "TGL502",
        "TGL503",
    }
)


def reviewed(rules: Iterable) -> bool:
    """Slicing keeps these rules' findings: each is reviewed, each trigger a word."""
    return all(r.code in REVIEWED_RULES and all(t.isidentifier() for t in r.triggers) for r in rules)


# -- the layout: top-level statements ----------------------------------------------------------

_Q3S = r"'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
_Q3D = r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'
_Q1S = r"'[^'\\\r\n]*(?:\\(?:\r\n|.)[^'\\\r\n]*)*'"
_Q1D = r'"[^"\\\r\n]*(?:\\(?:\r\n|.)[^"\\\r\n]*)*"'
# The next token after a run of plain code (skipped in one step of the regex engine: about
# three times faster than trying every alternative at every character): group 1 a string
# or a comment, matched whole (its brackets and newlines do not count); group 2 a bracket or
# a newline; group 3 a backslash-newline (its newline does not count either); group 4 any
# other character that stops the run (a quote that opens no string, a lone backslash or
# carriage return: nothing); none, the end. A match never fails where the run stops, so the
# engine never goes back over the run.
_STRING_OR_COMMENT = "|".join([_Q3S, _Q3D, _Q1S, _Q1D, r"#[^\r\n]*"])
_TOKEN = re.compile(
    r"""[^'"#()\[\]{}\\\r\n]*(?:(""" + _STRING_OR_COMMENT + r")|([()\[\]{}]|\r?\n)|(\\\r?\n)|(.)|\Z)",
    re.S,
)
_HEAD = re.compile(r"@|\w+")
_DEF_NAME = re.compile(r"(?:async[ \t]+)?def[ \t]+(\w+)|class[ \t]+(\w+)")
_INDENT = re.compile(r"[ \t]*")
_WORD = re.compile(r"\w+")
_CHAIN_CHARS = re.compile(r"[\w.]*")
_NEWLINES = re.compile(r"\r?\n")
_CLAUSES = frozenset({"else", "elif", "except", "finally"})
_TF_ROOTS = frozenset({"tensorflow", "keras", "tf_keras"})


@dataclass
class Statement:
    """One top-level statement: ``start``/``end`` offsets (``end`` just after the newline of
    its last line of code), 1-based ``line``/``end_line``, its kind ("import", "def",
    "class" or "other") and, for a def or class, its name and where its header ends."""

    start: int
    end: int
    line: int
    end_line: int
    kind: str
    name: Optional[str] = None
    header_end: int = 0
    # filled by ``_module_facts``: names bound at module level, with multiplicity
    binds: list[str] = field(default_factory=list)
    # module-scope import bindings of this statement: (local name, target as the index
    # records it), imports inside module-level if/try blocks included
    imports: list[tuple[str, str]] = field(default_factory=list)
    # an import statement and nothing else (``import a; x = 1`` is not)
    pure_import: bool = False


@dataclass
class Layout:
    statements: list[Statement]
    # the start offset of every logical line (at any indentation)
    logical_starts: list[int]
    # comments and string literals other than f-strings (whose ``{...}`` parts are code):
    # sorted, disjoint [start, end) offsets
    noncode_starts: list[int] = field(default_factory=list)
    noncode_ends: list[int] = field(default_factory=list)
    # whether CPython compiles the module: None until a plan that keeps something asks
    # (``compiled``)
    compiles: Optional[bool] = None
    # whether ``module_facts`` filled the statements' bindings and imports: None until
    # something reads them (``with_facts``); False: unsure, parse the whole file
    facts: Optional[bool] = None


def supported(text: str) -> bool:
    """The tokenizer's lexical assumptions hold (no form feed, no lone ``\\r``, no BOM)."""
    if "\f" in text or text.startswith("\ufeff"):
        return False
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return False
    return True


def compiles(text: str) -> bool:
    """CPython's parser and symbol table accept the module at the default recursion limit
    (as ``python file.py``); about a quarter cheaper than ``compile`` (no code generation).

    When they do, the module's nesting is within what ``ast.parse`` accepts too (the engine's
    guard before LibCST: the same limits, checked on generated nesting of every kind) and
    the lexical rules of ``layout`` hold. Anything else goes the old way (the whole file to
    the guard and LibCST), which reports it exactly as before.
    """
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        symtable.symtable(text, "<tfgradlint>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    finally:
        sys.setrecursionlimit(limit)
    return True


def layout(text: str) -> Optional[Layout]:
    """The top-level statements of ``text``, or None when unsure (trusted for linting only
    once the text ``compiled``)."""
    starts = [0]
    depth = 0
    append = starts.append
    spans: list[tuple[int, int]] = []
    span = spans.append
    for m in _TOKEN.finditer(text):
        k = m.lastindex
        if k == 1 or k == 3:
            span(m.span(k))  # (a backslash-newline is no code either)
        elif k == 2:
            c = text[m.end() - 1]
            if c == "\n":
                if depth == 0:
                    append(m.end())
            elif c in "([{":
                depth += 1
            else:
                depth -= 1
    if depth != 0:
        return None
    n = len(text)
    noncode_starts, noncode_ends = _noncode(text, spans)
    heads = []
    for s in starts:
        c = text[s : s + 1]
        if c and c not in " \t\r\n#":
            heads.append(s)
    statements: list[Statement] = []
    decorated_at: Optional[int] = None
    for off in heads:
        m = _HEAD.match(text, off)
        word = m.group() if m else ""
        if decorated_at is not None:
            if word == "@":
                continue
            m2 = _DEF_NAME.match(text, off)
            if m2 is None:
                return None
            statements.append(
                Statement(decorated_at, 0, 0, 0, "def" if m2.group(1) else "class", m2.group(1) or m2.group(2),
                          header_end=off)
            )
            decorated_at = None
            continue
        if word in _CLAUSES:
            if not statements:
                return None
            continue  # else/elif/except/finally: part of the statement before
        if word == "@":
            decorated_at = off
            continue
        if word in ("import", "from"):
            statements.append(Statement(off, 0, 0, 0, "import"))
        elif word in ("def", "class", "async"):
            m2 = _DEF_NAME.match(text, off)
            if m2 is not None:
                statements.append(
                    Statement(off, 0, 0, 0, "def" if m2.group(1) else "class", m2.group(1) or m2.group(2),
                              header_end=off)
                )
            else:
                statements.append(Statement(off, 0, 0, 0, "other"))
        else:
            statements.append(Statement(off, 0, 0, 0, "other"))
    if decorated_at is not None:
        return None
    # extents: up to the last logical line with code before the next statement
    line = 1
    pos = 0
    for i, st in enumerate(statements):
        limit = statements[i + 1].start if i + 1 < len(statements) else n
        j = bisect.bisect_left(starts, limit) - 1  # the last logical line starting before limit
        end = limit
        while j >= 0 and starts[j] >= st.start:
            code = _INDENT.match(text, starts[j]).end()
            c = text[code : code + 1]
            if c and c not in "#\r\n":
                end = starts[j + 1] if j + 1 < len(starts) and starts[j + 1] <= limit else limit
                break
            j -= 1
        st.end = end
        if st.kind in ("def", "class"):
            k = bisect.bisect_right(starts, st.header_end)
            st.header_end = starts[k] if k < len(starts) else n
        line += text.count("\n", pos, st.start)
        pos = st.start
        st.line = line
        st.end_line = line + text.count("\n", st.start, max(st.end - 1, st.start))
    return Layout(statements, starts, noncode_starts, noncode_ends)


def _noncode(text: str, spans: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The starts and ends of the string and comment ``spans`` that are not f-strings (whose
    replacement fields are code)."""
    noncode_starts = []
    noncode_ends = []
    for a, b in spans:
        if text[a] != "#":
            prefix = text[max(a - 2, 0) : a]
            if "f" in prefix or "F" in prefix:
                p = a
                while p > 0 and text[p - 1] in "rRbBuUfF":
                    p -= 1
                if "f" in text[p:a].lower() and (p == 0 or not (text[p - 1].isalnum() or text[p - 1] == "_")):
                    continue  # an f-string: its replacement fields are code
        noncode_starts.append(a)
        noncode_ends.append(b)
    return noncode_starts, noncode_ends


# Strings and comments alone: the layout's tokens but brackets and newlines (a sixth of the
# layout's cost), for a text whose words may all be in strings and comments.
_NONCODE = re.compile(r"""[^'"#]*(?:(""" + _STRING_OR_COMMENT + r")|.|\Z)", re.S)


def only_outside_code(text: str, words: Iterable[str]) -> bool:
    """Whether every occurrence of ``words`` (as identifiers) is in a comment or a string
    other than an f-string, as ``layout`` finds them (True when there is none): a cheap
    test before the layout of a file with nothing to analyse."""
    offsets = sorted(j for w in words for j in _occurrences(text, w))
    if not offsets:
        return True
    last = offsets[-1]
    spans = []
    for m in _NONCODE.finditer(text):
        if m.lastindex == 1:
            spans.append(m.span(1))
        if m.end() > last:
            break
    starts, ends = _noncode(text, spans)
    for j in offsets:
        i = bisect.bisect_right(starts, j) - 1
        if i < 0 or j >= ends[i]:
            return False
    return True


def blanked(text: str, statements: Sequence[Statement], keep: Sequence[bool]) -> str:
    """``text`` with the lines of every statement not kept left empty (newlines kept)."""
    return blank_spans(text, [(st.start, st.end) for st, k in zip(statements, keep) if not k])


def blank_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` with the lines of the sorted, disjoint ``spans`` left empty (newlines kept)."""
    parts = []
    pos = 0
    crlf = "\r" in text
    for a, b in spans:
        parts.append(text[pos:a])
        if crlf:
            parts.append("".join(_NEWLINES.findall(text, a, b)))
        else:
            parts.append("\n" * text.count("\n", a, b))
        pos = b
    parts.append(text[pos:])
    return "".join(parts)


@dataclass
class Unit:
    """One statement of a class body: ``start`` (its line's start) to ``end`` (after its last
    line of code), kind "def", "class" or "other", the name a def or class binds."""

    start: int
    end: int
    kind: str
    name: Optional[str] = None


def class_units(text: str, lay: Layout, st: Statement) -> Optional[list[Unit]]:
    """The statements of the body of the top-level class ``st`` (None when the body is not
    an indented block of statements at one indentation)."""
    starts = lay.logical_starts
    a = bisect.bisect_left(starts, st.header_end)
    indent: Optional[str] = None
    lines: list[tuple[int, int, bool]] = []  # (line start, code start, is a head)
    while a < len(starts) and starts[a] < st.end:
        s = starts[a]
        a += 1
        code = _INDENT.match(text, s).end()
        c = text[code : code + 1]
        if not c or c in "#\r\n":
            continue
        ws = text[s:code]
        if indent is None:
            if not ws:
                return None
            indent = ws
        if ws == indent:
            lines.append((s, code, True))
        elif ws.startswith(indent):
            lines.append((s, code, False))
        else:
            return None
    units: list[Unit] = []
    decorated: Optional[int] = None
    for s, code, head in lines:
        if head:
            m = _HEAD.match(text, code)
            word = m.group() if m else ""
            if decorated is not None:
                if word == "@":
                    continue
                m2 = _DEF_NAME.match(text, code)
                if m2 is None:
                    return None
                units.append(Unit(decorated, 0, "def" if m2.group(1) else "class", m2.group(1) or m2.group(2)))
                decorated = None
                continue
            if word in _CLAUSES:
                if not units:
                    return None
                continue
            if word == "@":
                decorated = s
                continue
            m2 = _DEF_NAME.match(text, code) if word in ("def", "class", "async") else None
            if m2 is not None:
                units.append(Unit(s, 0, "def" if m2.group(1) else "class", m2.group(1) or m2.group(2)))
            else:
                units.append(Unit(s, 0, "other"))
    if decorated is not None or not units:
        return None
    # each unit ends after the last logical line with code before the next unit
    code_lines = [s for s, _, _ in lines]
    for i, u in enumerate(units):
        limit = units[i + 1].start if i + 1 < len(units) else st.end
        j = bisect.bisect_left(code_lines, limit) - 1
        k = bisect.bisect_right(starts, code_lines[j])
        u.end = min(starts[k] if k < len(starts) else len(text), limit)
    return units


# -- module-level facts (stdlib ast, on the statements that are not defs or classes) ----------


def _store_names(node: ast.AST, out: list[str], imports: list[tuple[str, str]]) -> None:
    """Names a module-level statement binds in the module scope (the index's view, or
    more), and its module-scope imports."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            if not isinstance(n.ctx, ast.Load):
                out.append(n.id)
            continue
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(n.name)
            # decorators, defaults, annotations, bases run in this scope; the body does not
            parts: list[ast.AST] = list(n.decorator_list)
            if isinstance(n, ast.ClassDef):
                parts += n.bases + [k.value for k in n.keywords]
            else:
                parts.append(n.args)
                if n.returns is not None:
                    parts.append(n.returns)
            stack.extend(parts)
            continue
        if isinstance(n, ast.Lambda):
            stack.append(n.args)
            continue
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            imports.extend(_import_targets(n))
            for alias in n.names:
                if alias.name == "*":
                    continue
                if isinstance(n, ast.Import) and alias.asname is None:
                    out.append(alias.name.split(".")[0])
                else:
                    out.append(alias.asname or alias.name)
            continue
        if isinstance(n, ast.ExceptHandler) and n.name:
            out.append(n.name)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            out.extend(n.names)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            out.append(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            out.append(n.rest)
        stack.extend(ast.iter_child_nodes(n))


def _import_targets(node: ast.stmt) -> list[tuple[str, str]]:
    """(local name, target) for an import statement, as the LibCST index records them."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                out.append((alias.asname, alias.name))
            else:
                head = alias.name.split(".")[0]
                out.append((head, head))
    elif isinstance(node, ast.ImportFrom):
        prefix = "." * (node.level or 0) + ((node.module + ".") if node.module else "")
        for alias in node.names:
            if alias.name != "*":
                out.append((alias.asname or alias.name, prefix + alias.name))
    return out


def module_facts(text: str, lay: Layout) -> bool:
    """Fill ``binds`` and ``imports`` of every statement; False when unsure."""
    statements = lay.statements
    others = [st.kind not in ("def", "class") for st in statements]
    if any(others):
        source = blanked(text, statements, others)
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
        lines = [st.line for st in statements]
        pure: dict[int, bool] = {}
        for node in tree.body:
            i = bisect.bisect_right(lines, node.lineno) - 1
            if i < 0 or not others[i] or node.lineno > statements[i].end_line:
                return False
            st = statements[i]
            _store_names(node, st.binds, st.imports)
            if st.kind == "import":
                pure.setdefault(i, True)
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    pure[i] = False
        for i, flag in pure.items():
            statements[i].pure_import = flag
    for st, other in zip(statements, others):
        if not other:
            st.binds.append(st.name or "")
            header = text[st.start : st.header_end]
            if ":=" in header or re.search(r"\bfor\b", header):
                st.binds.extend(_WORD.findall(header))  # walrus/comprehension targets: any word
        if any(not b.isascii() for b in st.binds):
            return False  # NFKC-normalized identifiers: the raw text may spell them otherwise
    return True


# -- which statements to keep ---------------------------------------------------------------

# The override-map rules (TGL401-403) match ``<anything>.gradient_override_map(...)`` and the
# op types a module creates or registers (``<anything>.create_op("T")``, TGL402) by name, not
# through imports: these words are never dead. They also read signs of TF1 graph code, custom
# op libraries and tapes around the map (resolved names), and the module's registrations.
_OVERRIDE_MAP = "gradient_override_map"
_RAW_WORDS = (
    "RegisterGradient", "NotDifferentiable", "NoGradient", "no_gradient", "RegisterShape",
    "RegisterStatistics", "create_op", "_create_op_internal", "apply_op", "_apply_op", "_apply_op_helper",
)
_GRAPH_WORDS = (
    "compat", "disable_eager_execution", "disable_v2_behavior", "Session", "InteractiveSession",
    "get_default_session", "placeholder", "gradients", "Graph", "reset_default_graph", "wrap_function",
    "graph_mode", "FuncGraph", "func_graph_from_py_func", "_GradientsHelper", "run_deprecated_v1",
    "run_v1_only", "deprecated_graph_mode_only", "run_in_graph_and_eager_modes",
    "run_all_in_graph_and_eager_modes", "build_as_function_and_v1_graph", "get_session",
    "estimator", "contrib", "MonitoredSession", "load_op_library", "load_library", "get_default_graph",
    "GradientTape",
)
_TAPE_WORD = "GradientTape"
_GLOBAL_NONLOCAL = re.compile(r"\b(?:global|nonlocal)\b")
# Its matches, found as words (``Planner.code``: the same boundaries, faster than the regex).
_GLOBAL_NONLOCAL_WORDS = ("global", "nonlocal")
_CG_WORD = "custom_gradient"
_RECOMPUTE_WORD = "recompute_grad"


@dataclass
class Compact:
    """A plan's code without the lines of the statements left out, top-level ones and those
    of kept classes. LibCST parses it about a quarter faster than ``Plan.text``, whose
    empty lines it would make nodes of."""

    text: str
    # the first line of each kept statement in ``text``
    lines: list[int]
    # where each piece copied from the original text starts: its row in ``text`` and in the
    # original (the pieces lie between the statements removed)
    rows: list[int]
    original_rows: list[int]

    def original_row(self, row: int) -> int:
        """The row of the original text that row ``row`` of ``text`` was copied from."""
        k = bisect.bisect_right(self.rows, row) - 1
        return row - self.rows[k] + self.original_rows[k]


def compacted(text: str, removed: Sequence[tuple[int, int]], kept: Sequence[Statement]) -> Compact:
    """``text`` without the whole lines of the ``removed`` spans (disjoint, each starting a
    line and ending after a newline or at the end)."""
    parts: list[str] = []
    rows, original_rows = [1], [1]
    pos, row, orow = 0, 1, 1
    for a, b in sorted(removed):
        n = text.count("\n", pos, a)
        parts.append(text[pos:a])
        row, orow = row + n, orow + n + text.count("\n", a, b)
        rows.append(row)
        original_rows.append(orow)
        pos = b
    parts.append(text[pos:])
    lines = []
    for st in kept:
        k = bisect.bisect_right(original_rows, st.line) - 1
        lines.append(st.line - original_rows[k] + rows[k])
    return Compact("".join(parts), lines, rows, original_rows)


@dataclass
class Plan:
    """What to parse: ``text`` (the whole text when ``full``), the statements kept, in order."""

    text: str
    statements: list[Statement]
    full: bool
    # No statement can matter: the rules would find nothing (imports alone are not parsed).
    empty: bool = False
    # ``text`` without the lines of the statements left out
    compact: Optional[Compact] = None


def _occurrences(text: str, word: str, start: int = 0, end: Optional[int] = None) -> Iterable[int]:
    """Offsets of ``word`` as a whole identifier in ``text[start:end]``."""
    end = len(text) if end is None else end
    n = len(word)
    if not n:
        return
    i = text.find(word, start, end)
    while i >= 0:
        before = text[i - 1 : i] if i > 0 else ""
        after = text[i + n : i + n + 1]
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            yield i
        i = text.find(word, i + n, end)


def _chain_head(text: str, i: int, word: str) -> str:
    """The first component of the dotted name ``...word`` whose last part starts at ``i``
    ("" when it does not start with a name: ``f().word``, ``x[0].word``, ``a . word``)."""
    # the run of word characters and dots before ``i`` (``\w``: ``isalnum()`` or "_"), read
    # backwards from a window before ``i`` (the whole way when it fills the window)
    lo = max(i - 200, 0)
    run = _CHAIN_CHARS.match(text[lo:i][::-1]).end()
    if run < i - lo or lo == 0:
        a = i - run
    else:
        a = i
        while a > 0 and (text[a - 1].isalnum() or text[a - 1] in "_."):
            a -= 1
    return (text[a:i] + word).split(".")[0]


class _DeadHeads:
    """``name in dead``: the planner's ``is_dead``, remembered."""

    def __init__(self, planner: "_Planner") -> None:
        self.planner = planner
        self.known: dict[str, bool] = {}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        found = self.known.get(name)
        if found is None:
            found = self.known[name] = self.planner.is_dead(name)
        return found


class _ClassSlice:
    """A kept class whose methods are kept one at a time.

    A method is kept *read* when rules may analyse its code (it holds something that
    matters, or kept code names it: ``tf.recompute_grad(self.m)`` analyses ``m``), or only
    *present* when kept code reads an attribute it assigns (``self.w = ...``: the rules read
    the assigned value, not the method). The names a read method mentions are wanted in
    turn; a present method's only count outside its class (the value's names resolve in
    the module).
    """

    def __init__(self, planner: "_Planner", units: list[Unit]) -> None:
        self.units = units
        self.starts = [u.start for u in units]
        self.keep = [u.kind not in ("def", "class") for u in units]
        self.read = list(self.keep)
        self.by_name: dict[str, list[int]] = {}
        self.assigns: dict[str, list[int]] = {}
        for i, u in enumerate(units):
            if u.name:
                self.by_name.setdefault(u.name, []).append(i)
            if u.kind != "other":
                for w in planner.assigned_attributes(u.start, u.end):
                    self.assigns.setdefault(w, []).append(i)

    def unit_at(self, offset: int) -> Optional[int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.units[i].end:
            return i
        return None

    def mark_read(self, i: int) -> None:
        self.keep[i] = True
        self.read[i] = True

    def wanted(self, words: Iterable[str]) -> list[tuple[int, bool]]:
        """Keep the methods that bind one of ``words`` (read) or assign one as an attribute
        (present); returns the units newly kept or newly read, with whether they are read."""
        out = []
        for w in words:
            for i in self.by_name.get(w, ()):
                if not self.read[i]:
                    self.mark_read(i)
                    out.append((i, True))
            for i in self.assigns.get(w, ()):
                if not self.keep[i]:
                    self.keep[i] = True
                    out.append((i, False))
        return out

    def spans_dropped(self) -> list[tuple[int, int]]:
        return [(u.start, u.end) for u, k in zip(self.units, self.keep) if not k]


# Brackets and the operators that contain ``=``, to find a statement's assignment ``=``.
_EQ_TOKENS = re.compile(r"[()\[\]{}]|==|!=|<=|>=|:=|->|\*\*=|//=|>>=|<<=|[-+*/%&|^@]=|=")
_ATTR = re.compile(r"\.[ \t]*(\w+)")


class _Planner:
    def __init__(self, text: str, lay: Layout) -> None:
        self.text = text
        self.statements = lay.statements
        self.lay = lay
        self.starts = [st.start for st in self.statements]
        self.binders: dict[str, list[int]] = {}
        for i, st in enumerate(self.statements):
            for name in st.binds:
                lst = self.binders.setdefault(name, [])
                if not lst or lst[-1] != i:
                    lst.append(i)
        self._bind_count: dict[str, int] = {}
        for st in self.statements:
            for name in st.binds:
                self._bind_count[name] = self._bind_count.get(name, 0) + 1
        # classes kept a method at a time, by statement index
        self.classes: dict[int, _ClassSlice] = {}
        self.open_class = None

    def code_matches(self, pattern: "re.Pattern[str]", start: int, end: int) -> Iterable["re.Match[str]"]:
        for m in pattern.finditer(self.text, start, end):
            if self.in_code(m.start()):
                yield m

    def assigned_attributes(self, start: int, end: int) -> set[str]:
        """Attribute names that the assignments in ``text[start:end]`` may assign: every
        ``.name`` left of the last ``=`` of a statement (outside brackets and strings)."""
        out: set[str] = set()
        starts = self.lay.logical_starts
        text = self.text
        # the logical lines that start before ``end`` (from the one at or after ``start``),
        # those with a "=" anywhere
        first = bisect.bisect_left(starts, start)
        after = bisect.bisect_left(starts, end)
        if first >= after:
            return out
        region_end = starts[after] if after < len(starts) else len(text)
        lines = []
        j = text.find("=", starts[first], region_end)
        while j >= 0:
            k = bisect.bisect_right(starts, j) - 1
            b = starts[k + 1] if k + 1 < len(starts) else len(text)
            lines.append((starts[k], b))
            j = text.find("=", b, region_end)
        if not lines:
            return out
        # The lines' code with comments and strings blanked (offsets from ``base``): no
        # token matched here reaches into or out of a string or comment, so the matches
        # are those in code of the text itself.
        base = lines[0][0]
        code = self.blank_noncode(base, lines[-1][1])
        eq_tokens = _EQ_TOKENS.finditer
        for a, b in lines:
            a -= base
            b -= base
            if code.find("=", a, b) < 0:
                continue
            depth = 0
            last = -1
            for m in eq_tokens(code, a, b):
                tok = m.group()
                if tok in "([{":
                    depth += 1
                elif tok in ")]}":
                    depth -= 1
                elif tok == "=" and depth == 0:
                    last = m.start()
            if last > a:
                out.update(_ATTR.findall(code, a, last))
        return out

    def blank_noncode(self, start: int, end: int) -> str:
        """``text[start:end]`` with every comment and string (``Layout.noncode_*``) replaced
        by as many spaces (line continuations, also in ``noncode_*``, stay)."""
        text = self.text
        ns, ne = self.lay.noncode_starts, self.lay.noncode_ends
        i = bisect.bisect_right(ne, start)
        if i >= len(ns) or ns[i] >= end:
            return text[start:end]
        pieces = []
        pos = start
        while i < len(ns) and ns[i] < end:
            if text[ns[i]] != "\\":
                a = max(ns[i], pos)
                b = min(ne[i], end)
                pieces.append(text[pos:a])
                pieces.append(" " * (b - a))
                pos = b
            i += 1
        pieces.append(text[pos:end])
        return "".join(pieces)

    def attributes(self, start: int, end: int) -> set[str]:
        return {m.group(1) for m in self.code_matches(_ATTR, start, end)}

    def in_code(self, offset: int) -> bool:
        return _in_code(self.lay, offset)

    def code(self, word: str, start: int = 0, end: Optional[int] = None) -> Iterable[int]:
        """Offsets of ``word`` as an identifier in code (not in a comment or a string)."""
        for j in _occurrences(self.text, word, start, end):
            if self.in_code(j):
                yield j

    def raw(self, word: str, start: int = 0, end: Optional[int] = None) -> Iterable[int]:
        """Code occurrences of a word the rules match by name; ``gradient_override_map``
        only as an attribute (the rules match ``<expr>.gradient_override_map(...)``)."""
        for j in self.code(word, start, end):
            if word == _OVERRIDE_MAP:
                k = j
                while k > 0 and self.text[k - 1] in " \t\r\n\\":
                    k -= 1
                if self.text[k - 1 : k] != ".":
                    continue
            yield j

    def code_words(self, start: int, end: int) -> set[str]:
        """The identifiers (and numbers) in the code of ``text[start:end]``."""
        text = self.text
        ns, ne = self.lay.noncode_starts, self.lay.noncode_ends
        i = bisect.bisect_right(ne, start)
        pieces = []
        pos = start
        while i < len(ns) and ns[i] < end:
            pieces.append(text[pos : ns[i]])
            pos = max(pos, ne[i])
            i += 1
        pieces.append(text[pos:end])
        return set(_WORD.findall(" ".join(pieces)))

    def statement_at(self, offset: int) -> Optional[int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.statements[i].end:
            return i
        return None

    # -- dead trigger words -------------------------------------------------------------------

    def dead_heads(self) -> "_DeadHeads":
        """Names bound once, by a module-level import from outside TensorFlow/Keras, and used
        nowhere but as ``name.<attribute>`` (so no scope rebinds them); decided for a name
        when first asked (only the heads of trigger words are)."""
        return _DeadHeads(self)

    def is_dead(self, name: str) -> bool:
        if self._bind_count.get(name) != 1:
            return False
        if not any(
            local == name and target.split(".")[0] not in _TF_ROOTS
            for st in self.statements
            if st.kind == "import"
            for local, target in st.imports
        ):
            return False
        text = self.text
        n = len(name)
        for j in self.code(name):
            k = self.statement_at(j)
            if k is not None and self.statements[k].kind == "import":
                continue
            if text[j + n : j + n + 1] == "." or text[j - 1 : j] == ".":
                continue
            return False
        return True

    # -- the plan ------------------------------------------------------------------------------

    def live(self, j: int, word: str, dead: "_DeadHeads") -> bool:
        """The occurrence of ``word`` at ``j`` may name a TensorFlow API."""
        head = _chain_head(self.text, j, word)
        return not (head and head in dead)

    def relevant(
        self,
        seeds: Iterable[str],
        dead: "_DeadHeads",
        names: Iterable[str] = (),
        *,
        raw: Iterable[str] = (),
        skip_defs: bool = False,
        headers_only: bool = True,
    ) -> tuple[list[bool], set[str]]:
        """The statements (pure imports aside) with a live occurrence in code of a seed word
        (any of a ``raw`` word) or of a name that matters, and those names: ``names`` and,
        to a fixpoint, the names the relevant statements bind. A def or class passes its
        name on only when the occurrence is in its header (decorators, signature, bases:
        ``@tf.custom_gradient def f`` makes ``f`` matter, a function that merely holds a tape
        does not), unless not ``headers_only``. ``skip_defs``: defs and classes do not count."""
        statements = self.statements
        hit = [False] * len(statements)
        passed = [False] * len(statements)
        names = set(names)
        todo = list(names)

        def touch(j: int) -> None:
            k = self.statement_at(j)
            if k is None:
                return
            st = statements[k]
            if st.pure_import or (skip_defs and st.kind in ("def", "class")):
                return
            hit[k] = True
            if passed[k]:
                return
            if headers_only and st.kind in ("def", "class") and j >= st.header_end:
                return
            passed[k] = True
            for b in st.binds:
                if b not in names:
                    names.add(b)
                    todo.append(b)

        for word in raw:
            for j in self.raw(word):
                touch(j)
        for word in seeds:
            for j in self.code(word):
                if self.live(j, word, dead):
                    touch(j)
        searched: set[str] = set()
        while todo:
            word = todo.pop()
            if word in searched or not word:
                continue
            searched.add(word)
            for j in self.code(word):
                touch(j)
        return hit, names

    def import_aliases(self, seeds: set[str]) -> set[str]:
        """Names a module-scope import binds to a TensorFlow/Keras API (or module) that a seed
        word names: ``from tensorflow import custom_gradient as cg``."""
        out = set()
        for st in self.statements:
            for local, target in st.imports:
                parts = target.split(".")
                if parts[0] in _TF_ROOTS and any(p in seeds for p in parts):
                    out.add(local)
        return out

    def tape_at_module_level(self, dead: "_DeadHeads") -> bool:
        """Some module-level code (not in a def or class) may create a tape: the tape flow
        analysis of the module scope then walks every top-level statement."""
        seeds = {_TAPE_WORD}
        hit, _ = self.relevant(seeds, dead, self.import_aliases(seeds), skip_defs=True)
        return any(hit)

    def close(self, keep: list[bool]) -> None:
        """Keep, to a fixpoint, every statement binding a name that kept code mentions, and in
        the classes kept a method at a time (``self.classes``), the methods that kept code
        wants (``_ClassSlice.wanted``)."""
        statements = self.statements
        seen: set[str] = set()  # words whose module-level binders are kept
        wanted: set[str] = set()  # words the classes' methods were asked for
        todo: list[tuple[int, int, bool]] = []
        for i, k in enumerate(keep):
            if k:
                todo.extend(self.kept_spans(i))
        while todo:
            a, b, read = todo.pop()
            words = self.code_words(a, b)
            new = words - seen
            if new:
                seen |= new
                for word in new:
                    for i in self.binders.get(word, ()):
                        if not keep[i]:
                            keep[i] = True
                            if statements[i].kind == "class" and self.open_class is not None:
                                self.open_class(i, wanted)
                            todo.extend(self.kept_spans(i))
            if read:
                new = words - wanted
                if new:
                    wanted |= new
                    for cs in self.classes.values():
                        for u, r in cs.wanted(new):
                            todo.append((cs.units[u].start, cs.units[u].end, r))

    def kept_spans(self, i: int) -> list[tuple[int, int, bool]]:
        """The kept code of statement ``i``: (start, end, read)."""
        st = self.statements[i]
        cs = self.classes.get(i)
        if cs is None:
            return [(st.start, st.end, True)]
        out = [(st.start, cs.units[0].start, True)]
        out += [(u.start, u.end, r) for u, k, r in zip(cs.units, cs.keep, cs.read) if k]
        return out

    def keep_words(self, keep: list[bool], words: Iterable[str]) -> None:
        for word in words:
            for j in _occurrences(self.text, word):
                k = self.statement_at(j)
                if k is not None:
                    keep[k] = True

    def keep_code_words(self, keep: list[bool], words: Iterable[str]) -> None:
        """Keep the statements with one of ``words`` in code."""
        for word in words:
            for j in self.code(word):
                k = self.statement_at(j)
                if k is not None:
                    keep[k] = True

    def keep_holding(self, keep: list[bool], word: str) -> None:
        """Keep every statement with ``word`` in code (as an identifier)."""
        for i, st in enumerate(self.statements):
            if not keep[i] and any(True for _ in self.code(word, st.start, st.end)):
                keep[i] = True

    def cg_methods(self, hit: list[bool], cg_names: set[str]) -> set[str]:
        """Names of the methods that a decorator line naming a custom-gradient word (or
        alias) decorates, in the relevant classes (TGL116 looks for their references)."""
        out: set[str] = set()
        text = self.text
        starts = self.lay.logical_starts
        for i, st in enumerate(self.statements):
            if not hit[i] or st.kind != "class":
                continue
            a = bisect.bisect_left(starts, st.start)
            decorated = False
            while a < len(starts) and starts[a] < st.end:
                s = starts[a]
                body = _INDENT.match(text, s).end()
                e = starts[a + 1] if a + 1 < len(starts) else len(text)
                if text.startswith("@", body) and body > s:
                    if any(True for w in cg_names for _ in self.code(w, body, e)):
                        decorated = True
                elif decorated:
                    m = _DEF_NAME.match(text, body)
                    if m is not None and m.group(1):
                        out.add(m.group(1))
                    if text[body : body + 1] not in ("#", "\r", "\n", ""):
                        decorated = False
                a += 1
        return out


def plan(
    text: str,
    triggers: Iterable[str],
    names: Iterable[str] = (),
    *,
    tape_rules: bool = False,
    cg_method_rule: bool = False,
) -> Optional[Plan]:
    """The statements of ``text`` to parse for rules with ``triggers`` active and the project
    names ``names`` (extra triggers). None: parse the whole file the old way (it does not
    compile, or something here is unsure); ``Plan.full``: the whole text, known to compile."""
    triggers, names = set(triggers), set(names)
    lay = analysed_if_known(text)
    if lay is None and supported(text) and only_outside_code(text, [*triggers, *names]):
        # no word that makes a statement relevant is in code: nothing is (most candidates),
        # found without the layout (nor a check that the rest is well formed: nothing in
        # the file is analysed)
        return Plan(text, [], full=False, empty=True)
    lay = analysed(text)
    if lay is None or not lay.statements:
        return None
    statements = lay.statements
    if not mentions_in_code(text, lay, [*triggers, *names]):
        # no word that makes a statement relevant is in code: nothing is (most candidates)
        return Plan(text, statements, full=False, empty=True)
    if not with_facts(text, lay):
        return None
    planner = _Planner(text, lay)
    seeds = set(triggers)
    raw: set[str] = set()
    if _OVERRIDE_MAP in seeds:
        seeds.discard(_OVERRIDE_MAP)
        if any(True for _ in planner.raw(_OVERRIDE_MAP)):
            raw = {_OVERRIDE_MAP, *_RAW_WORDS}
            seeds.update(_GRAPH_WORDS)
    dead = planner.dead_heads()
    # with an override map, TGL401 follows callers of callers: every relevant name matters
    hit, matter = planner.relevant(
        seeds, dead, set(names) | planner.import_aliases(seeds | raw), raw=raw, headers_only=not raw
    )
    if not any(hit):
        return Plan(text, statements, full=False, empty=True)
    if tape_rules and planner.tape_at_module_level(dead):
        return _checked(Plan(text, statements, full=True), lay)
    # every import (a fix may name any module the file imports), the relevant statements
    keep = [h or bool(st.imports) for h, st in zip(hit, statements)]
    always: list[str] = []  # words kept wherever they are in code (as ``_GLOBAL_NONLOCAL``)
    if tape_rules:
        always.extend(_GLOBAL_NONLOCAL_WORDS)
        planner.keep_code_words(keep, _GLOBAL_NONLOCAL_WORDS)
    methods: set[str] = set()
    if cg_method_rule and _CG_WORD in seeds:
        _, cg_names = planner.relevant({_CG_WORD}, dead, planner.import_aliases({_CG_WORD}))
        methods = planner.cg_methods(hit, cg_names | {_CG_WORD})
        planner.keep_words(keep, methods)

    # Inside a class, whose methods' users matter: those of a custom-gradient or recompute_grad
    # method (``self.m(...)`` is a cg call) or attribute (``self.f = tf.recompute_grad(g)``),
    # and with an override map, its callers' callers (TGL401 follows them). A method that
    # only holds a tape, a registration or a call of something that matters is kept, but
    # its own users are not.
    spreading = {_CG_WORD, _RECOMPUTE_WORD} & seeds
    spread_names = planner.relevant(spreading, dead, planner.import_aliases(spreading))[1] if spreading else set()
    spread_all = bool(raw)

    def open_class(i: int, wanted: set[str]) -> None:
        """Keep the class ``i`` a method at a time: the methods with a trigger word or a name
        that matters, the users of what a custom-gradient method binds or assigns (see
        above), and what kept code asks for (``close``)."""
        st = statements[i]
        units = class_units(text, lay, st)
        if units is None or len(units) < 2:
            return
        cs = _ClassSlice(planner, units)
        hit_units = [False] * len(units)

        def mark(j: int, todo: Optional[list[str]]) -> None:
            u = cs.unit_at(j)
            if u is not None and not hit_units[u]:
                hit_units[u] = True
                if todo is not None:
                    unit = units[u]
                    if unit.name:
                        todo.append(unit.name)
                    todo.extend(planner.assigned_attributes(unit.start, unit.end))

        todo: list[str] = []
        spread = todo if spread_all else None
        for word in raw:
            for j in planner.raw(word, st.start, st.end):
                mark(j, todo)
        for word in spreading:
            for j in planner.code(word, st.start, st.end):
                if planner.live(j, word, dead):
                    mark(j, todo)
        for word in spread_names:
            if word != st.name:
                for j in planner.code(word, st.start, st.end):
                    mark(j, todo)
        for word in seeds:
            for j in planner.code(word, st.start, st.end):
                if planner.live(j, word, dead):
                    mark(j, spread)
        for word in matter:
            if word != st.name:
                for j in planner.code(word, st.start, st.end):
                    mark(j, spread)
        searched: set[str] = set()
        while todo:
            word = todo.pop()
            if word in searched:
                continue
            searched.add(word)
            for j in planner.code(word, st.start, st.end):
                mark(j, spread)
        for u, h in enumerate(hit_units):
            if h:
                cs.mark_read(u)
        for word in always:
            for j in planner.code(word, st.start, st.end):
                u = cs.unit_at(j)
                if u is not None:
                    cs.mark_read(u)
        for word in methods:
            for j in _occurrences(text, word, st.start, st.end):
                u = cs.unit_at(j)
                if u is not None:
                    cs.mark_read(u)
        cs.wanted(wanted)
        if not any(cs.keep):
            smallest = min(range(len(units)), key=lambda u: units[u].end - units[u].start)
            cs.mark_read(smallest)
        if not all(cs.keep):
            planner.classes[i] = cs

    planner.open_class = open_class
    for i, st in enumerate(statements):
        if keep[i] and st.kind == "class":
            open_class(i, set())
    planner.close(keep)
    if all(keep) and not planner.classes:
        return _checked(Plan(text, statements, full=True), lay)
    spans, inner = [], []
    for i, st in enumerate(statements):
        if not keep[i]:
            spans.append((st.start, st.end))
        elif i in planner.classes:
            inner.extend(planner.classes[i].spans_dropped())
    kept = [st for st, k in zip(statements, keep) if k]
    plan_ = Plan(blank_spans(text, sorted(spans + inner)), kept, full=False, compact=compacted(text, spans + inner, kept))
    return _checked(plan_, lay)


def _checked(plan_: Plan, lay: Layout) -> Optional[Plan]:
    """``plan_`` when the code it keeps compiles (``compiles``: the layout's lexical rules
    hold for it, its nesting is within what the engine's guard accepts), else None: the
    engine parses the whole file and reports why it does not compile. The statements left
    out are not compiled: a syntax error there is left to Python and general linters, as
    in a file with nothing to analyse."""
    if plan_.full:
        return plan_ if compiled(plan_.text, lay) else None
    assert plan_.compact is not None
    return plan_ if compiles(plan_.compact.text) else None


# -- the project summary (tfgradlint/project.py) ------------------------------------------------


def summary_keep(text: str, lay: Layout, seeds: Iterable[str]) -> list[bool]:
    """Which statements the project summary needs parsed: every statement that is not a def
    or class (module-level bindings, ``__all__``, star imports), and the defs and classes
    that a live ``seeds`` word or an alias of one reaches, that hold an import, or that
    such a statement names (``f = tf.custom_gradient(g)`` needs ``g``'s signature). Any
    other def or class only binds its name (the summary gets a stub)."""
    planner = _Planner(text, lay)
    seeds = set(seeds)
    dead = planner.dead_heads()
    hit, _ = planner.relevant(seeds, dead, planner.import_aliases(seeds))
    keep = [h or st.kind not in ("def", "class") for h, st in zip(hit, lay.statements)]
    planner.keep_holding(keep, "import")
    for i, st in enumerate(lay.statements):
        if hit[i]:
            for word in planner.code_words(st.start, st.end):
                for b in planner.binders.get(word, ()):
                    keep[b] = True
    return keep


# -- one analysis per text, shared by the summary and the lint of a file -----------------------

_ANALYSED: "dict[str, Optional[Layout]]" = {}
_ANALYSED_CHARS = [0]
# The texts remembered at once, in characters (the oldest go first).
ANALYSED_MAX_CHARS = 16_000_000
_MISSING = object()
_ANALYSED_LOCK = threading.Lock()


def mentions_in_code(text: str, lay: Layout, words: Iterable[str]) -> bool:
    """Whether one of ``words`` occurs as an identifier in code (not only in comments and
    strings)."""
    return any(_in_code(lay, j) for w in words for j in _occurrences(text, w))


def _in_code(lay: Layout, offset: int) -> bool:
    """``offset`` is outside the layout's comments and strings."""
    i = bisect.bisect_right(lay.noncode_starts, offset) - 1
    return i < 0 or offset >= lay.noncode_ends[i]


def with_facts(text: str, lay: Layout) -> bool:
    """Fill the statements' bindings and imports (``module_facts``) once; False: unsure."""
    if lay.facts is None:
        try:
            lay.facts = module_facts(text, lay)
        except (Exception, RecursionError):
            lay.facts = False
    return lay.facts


def compiled(text: str, lay: Layout) -> bool:
    """Whether ``text`` (whose layout is ``lay``) ``compiles``; asked once per layout."""
    if lay.compiles is None:
        lay.compiles = compiles(text)
    return lay.compiles


def analysed_if_known(text: str) -> Optional[Layout]:
    """``analysed(text)`` when it was computed already and is still remembered, else None."""
    return _ANALYSED.get(text)


def analysed(text: str) -> Optional[Layout]:
    """``layout`` of a text (None when unsure), its ``module_facts`` computed when first
    needed (``with_facts``: most candidate files never need them); recent texts are
    remembered (a file's summary and its lint ask for the same text).

    Whether the text compiles is not checked here (``compiled``): a plan checks it before it
    keeps anything, and most candidate files keep nothing (their trigger words are in
    docstrings, comments or dead code), so CPython's parser never reads them. On a text
    that does not compile, the layout may be wrong; it is then used for nothing that is
    reported (the summary of such a file is what its statements say)."""
    found = _ANALYSED.get(text, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[return-value]
    lay: Optional[Layout] = None
    if supported(text):
        try:
            lay = layout(text)
        except (Exception, RecursionError):  # a text that does not compile, say
            lay = None
    if len(text) <= ANALYSED_MAX_CHARS:
        with _ANALYSED_LOCK:  # the language server may lint from several threads
            if text not in _ANALYSED:
                while _ANALYSED and _ANALYSED_CHARS[0] + len(text) > ANALYSED_MAX_CHARS:
                    old = next(iter(_ANALYSED))
                    del _ANALYSED[old]
                    _ANALYSED_CHARS[0] -= len(old)
                _ANALYSED[text] = lay
                _ANALYSED_CHARS[0] += len(text)
    return lay
