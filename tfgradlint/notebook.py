"""Jupyter notebooks (``.ipynb``): lint the code cells as one module, report per cell.

The code cells are joined, in order, into one virtual module (a cell defines what a later
cell uses, as when the notebook runs top to bottom). IPython syntax that is not Python is
neutralised first, line for line, so that line numbers stay put:

- line magics (``%matplotlib inline``), shell escapes (``!pip install ...``, ``!!ls``), help
  (``?tf.custom_gradient``, ``tf.GradientTape??``) and auto-call escapes (``/f x``, ``,f a b``,
  ``;f a``) become ``pass`` at the same indentation (a backslash-continued magic blanks its
  continuation lines);
- ``x = !ls`` / ``x = %sx ls`` become ``x = None`` (the name stays bound: it is no longer
  whatever an import made it);
- a cell magic on a cell's first line: ``%%time``, ``%%timeit``, ``%%capture``, ``%%prun`` and
  ``%%debug`` run the rest of the cell as Python (only the magic line is blanked); any other
  cell magic (``%%bash``, ``%%writefile``, ``%%html``, ...) blanks the whole cell.
A line that merely looks like a magic but continues a string, a bracket or a backslash line
is left alone.

Findings carry ``cell`` = the 1-based index of the cell among the notebook's *code* cells
(markdown and raw cells are not counted; the same numbering as ``ruff``), and ``start`` /
``end`` are the line and column within that cell. ``# noqa`` works on a cell's line as in a
file; ``# tfgradlint: noqa`` in the first code cell's leading comments covers the notebook.
A notebook that is not valid JSON, or not a notebook, gives TGL002. A notebook whose kernel
language is not Python is skipped. Fixes are not offered in notebooks (the fix machinery
edits plain source files).

The cells' own sources are returned under ``"<file>#cell<N>"`` so that reports can show code
frames and baselines can fingerprint lines.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

from tfgradlint.findings import Finding, Position

if TYPE_CHECKING:  # pragma: no cover
    from tfgradlint.engine import LintResult
    from tfgradlint.rules.base import Rule

# Cell magics whose body is Python.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ESCAPE = re.compile(r"^(?P<indent>[ \t]*)(?:%|!|\?|/|,|;)")
_HELP_SUFFIX = re.compile(r"^(?P<indent>[ \t]*)[A-Za-z_][\w.]*(?:\(\))?\?{1,2}[ \t]*$")
_ASSIGN_MAGIC = re.compile(
    r"^(?P<indent>[ \t]*)(?P<targets>[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*)[ \t]*=[ \t]*[!%]"
)
_CELL_MAGIC = re.compile(r"^[ \t]*%%(?P<name>[A-Za-z_][\w]*)")


class NotebookError(Exception):
    """The file is not a readable notebook (the message is one line; where, when known)."""

    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


@dataclass
class Cell:
    number: int  # 1-based among code cells
    source: str  # as written in the notebook
    lines: list[str]  # source lines, each with its line break
    virtual_lines: list[str]  # the same lines, IPython syntax neutralised


@dataclass
class Notebook:
    cells: list[Cell] = field(default_factory=list)
    python: bool = True
    # virtual line (1-based) -> (cell number, line in cell); index 0 unused
    line_map: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])

    @property
    def virtual_source(self) -> str:
        return "".join(line for cell in self.cells for line in cell.virtual_lines)

    def to_cell(self, pos: Position) -> tuple[int, Position]:
        """A position in the virtual module -> (cell number, position in that cell)."""
        if len(self.line_map) <= 1:
            return 1, Position(1, 1)
        row = min(max(pos.row, 1), len(self.line_map) - 1)
        cell, line = self.line_map[row]
        column = pos.column if row == pos.row else 1
        return cell, Position(line, column)

    def cell(self, number: int) -> Cell:
        return self.cells[number - 1]


def split_lines(text: str) -> list[str]:
    """Lines with their breaks, splitting only where Python does (\\n, \\r\\n, \\r)."""
    out = []
    start = 0
    for m in _LINE_BREAK.finditer(text):
        out.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


def _source_text(value, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return "".join(value)
    raise NotebookError(f"not a notebook: {where} is neither a string nor a list of strings")


def _is_python(meta) -> bool:
    if not isinstance(meta, dict):
        return True
    names = []
    info = meta.get("language_info")
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        names.append(info["name"])
    spec = meta.get("kernelspec")
    if isinstance(spec, dict) and isinstance(spec.get("language"), str):
        names.append(spec["language"])
    return all(n.strip().lower().startswith(("python", "ipython")) for n in names)


def parse_notebook(text: str) -> Notebook:
    """Read a notebook's JSON (nbformat 4, or 3 with worksheets). Raises NotebookError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg[:1].lower()}{exc.msg[1:]})",
            exc.lineno,
            exc.colno,
        ) from None
    except RecursionError:
        raise NotebookError("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise NotebookError("not a notebook: the top level is not a JSON object")
    if "cells" in data:
        raw_cells = data["cells"]
        source_key = "source"
    elif isinstance(data.get("worksheets"), list):  # nbformat 3
        raw_cells = []
        for ws in data["worksheets"]:
            if not isinstance(ws, dict) or not isinstance(ws.get("cells", []), list):
                raise NotebookError("not a notebook: a worksheet has no list of cells")
            raw_cells += ws.get("cells", [])
        source_key = "input"
    else:
        raise NotebookError("not a notebook: no 'cells' list")
    if not isinstance(raw_cells, list):
        raise NotebookError("not a notebook: 'cells' is not a list")
    nb = Notebook(python=_is_python(data.get("metadata")))
    for i, raw in enumerate(raw_cells, 1):
        if not isinstance(raw, dict) or not isinstance(raw.get("cell_type"), str):
            raise NotebookError(f"not a notebook: cell {i} has no cell_type")
        if raw["cell_type"] != "code":
            continue
        source = _source_text(raw.get(source_key, ""), f"the source of cell {i}")
        number = len(nb.cells) + 1
        lines = split_lines(source)
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += "\n"
        cell = Cell(number, source, lines, neutralise(lines))
        nb.cells.append(cell)
        nb.line_map += [(number, n) for n in range(1, len(lines) + 1)]
    return nb


# -- IPython syntax -------------------------------------------------------------------------


def _break(line: str) -> str:
    stripped = line.rstrip("\r\n")
    return line[len(stripped) :] or "\n"


def _body(line: str) -> str:
    return line.rstrip("\r\n")


def _ends_with_backslash(line: str) -> bool:
    return _body(line).endswith("\\")


def neutralise(lines: Sequence[str]) -> list[str]:
    """The cell's lines with IPython-only syntax replaced by Python of the same line count."""
    out = list(lines)
    if not out:
        return out
    candidates: set[int] = set()  # 0-based lines we changed
    m = _CELL_MAGIC.match(out[0])
    if m:
        if m.group("name") not in PYTHON_CELL_MAGICS:
            return [_break(line) for line in out]
        out[0] = _break(out[0])
        start = 1
    else:
        start = 0
    i = start
    while i < len(out):
        line = out[i]
        body = _body(line)
        new = None
        assign = _ASSIGN_MAGIC.match(body)
        if assign:
            new = f"{assign.group('indent')}{assign.group('targets')} = None"
        else:
            esc = _ESCAPE.match(body) or _HELP_SUFFIX.match(body)
            if esc:
                new = f"{esc.group('indent')}pass"
        if new is None:
            i += 1
            continue
        out[i] = new + _break(line)
        candidates.add(i)
        continued = _ends_with_backslash(line)
        i += 1
        while continued and i < len(out):
            continued = _ends_with_backslash(out[i])
            out[i] = _break(out[i])
            candidates.add(i)
            i += 1
    # A changed line that continues a string, bracket or backslash line was not a magic:
    # restore the first such line and look again (what precedes it is settled).
    while candidates:
        wrong = sorted(_continuation_lines(out) & candidates)
        if not wrong:
            break
        out[wrong[0]] = lines[wrong[0]]
        candidates = {c for c in candidates if c > wrong[0]}
    return out


def _continuation_lines(lines: Sequence[str]) -> set[int]:
    """0-based lines that start inside a string, a bracket or after a backslash."""
    inside: set[int] = set()
    text = "".join(lines)
    depth = 0
    first_token_seen: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            row = tok.start[0] - 1
            if row not in first_token_seen and tok.type not in (tokenize.DEDENT, tokenize.INDENT):
                first_token_seen.add(row)
                if depth > 0:
                    inside.add(row)
            if tok.end[0] > tok.start[0]:
                inside.update(range(tok.start[0], tok.end[0]))  # lines after the first
            if tok.type == tokenize.OP:
                if tok.string in "([{":
                    depth += 1
                elif tok.string in ")]}":
                    depth = max(0, depth - 1)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    for row in range(1, len(lines)):
        if _ends_with_backslash(lines[row - 1]) and "#" not in lines[row - 1]:
            inside.add(row)
    return inside


# -- linting --------------------------------------------------------------------------------


def lint_notebook(
    text: str,
    filename: str,
    rules: Sequence["Rule"],
    *,
    enabled: Optional[frozenset[str]] = None,
    project=None,
    whole_project: bool = False,
    sources: Optional[dict[str, str]] = None,
) -> "LintResult":
    """Lint a notebook's JSON text; findings carry ``cell`` and in-cell positions.

    ``sources`` (when given) receives each code cell's source under ``"<file>#cell<N>"``.
    """
    from tfgradlint.engine import LintResult, lint_source, meta_finding

    enabled = enabled if enabled is not None else frozenset(r.code for r in rules)
    try:
        nb = parse_notebook(text)
    except NotebookError as exc:
        result = LintResult()
        if "TGL002" in enabled:
            result.findings.append(
                meta_finding("TGL002", f"cannot read notebook: {exc}", filename, exc.row, exc.column)
            )
        return result
    if sources is not None:
        for cell in nb.cells:
            sources[f"{filename}#cell{cell.number}"] = cell.source
    if not nb.python or not nb.cells:
        return LintResult()
    result = lint_source(
        nb.virtual_source,
        filename,
        rules,
        enabled=enabled,
        project=project,
        whole_project=whole_project,
        module_name=None,
    )
    result.findings = [map_finding(nb, f) for f in result.findings]
    result.findings.sort(key=Finding.sort_key)
    return result


def map_finding(nb: Notebook, f: Finding) -> Finding:
    """Move a finding of the virtual module to its cell (fixes are dropped)."""
    cell, start = nb.to_cell(f.start)
    end_cell, end = nb.to_cell(f.end)
    if end_cell != cell or end < start:
        lines = nb.cell(cell).lines
        last = lines[-1] if lines else "\n"
        end = Position(max(len(lines), 1), len(_body(last)) + 1)
        if end < start:
            end = start
    if f.code == "TGL001":
        f.message = _remap_message(nb, f.message)
    f.cell = cell
    f.start = start
    f.end = end
    f.fix = None
    return f


def _remap_message(nb: Notebook, message: str) -> str:
    """Line numbers in a parser message, from the virtual module to the cell."""

    def line_in_cell(row: str) -> int:
        return nb.to_cell(Position(int(row), 1))[1].row

    message = re.sub(r"\bat (\d+):(\d+)", lambda m: f"at {line_in_cell(m.group(1))}:{m.group(2)}", message)
    return re.sub(r"\bline (\d+)", lambda m: f"line {line_in_cell(m.group(1))}", message)
