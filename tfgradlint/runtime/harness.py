"""Harnesses: the part of a user's module a runtime check needs, and nothing else.

A harness for a function is the module's ``__future__`` imports, the imports it needs, and the
module-level definitions it needs (transitively: functions, classes, and names bound by plain
assignments), taken from the source text with the stdlib ``ast`` and ``symtable`` modules. The
user's module is never imported, and its other top-level statements (a training loop, a
``print``, ``model.fit(...)``, ``if __name__ == "__main__":``) never run: user scripts train at
import time.

The harness keeps every included statement on its original line (other lines are blank), so
tracebacks and TensorFlow's "in user code" messages point at the user's file.

Nothing here imports TensorFlow; ``load_harness`` (used by the worker) runs a harness.
"""

from __future__ import annotations

import __future__
import ast
import builtins
import os
import symtable
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from tfgradlint.names import ast_dotted as dotted  # re-exported for confirm.py and inputs.py

_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__builtins__", "__spec__", "__package__"}

# Statements allowed inside a top-level ``if``/``try`` that a harness may include.
_DEFINITION_STMTS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
    ast.Pass,
)


class HarnessError(Exception):
    """The harness cannot be built (the reason is shown as the confirmation's evidence)."""


@dataclass(eq=False)
class TopLevel:
    """One top-level statement of the module."""

    node: ast.stmt
    start: int  # first line, decorators included (1-based)
    end: int
    kind: str  # future | import | star-import | def | class | assign | guarded | tape | other
    binds: frozenset[str]
    uses: frozenset[str]


@dataclass
class Harness:
    text: str
    filename: str
    statements: list[TopLevel]
    package: Optional[str]
    sys_path: list[str]

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "filename": self.filename,
            "package": self.package,
            "sys_path": self.sys_path,
        }


@dataclass
class FunctionLoc:
    """Where a function is defined: its node, the classes and functions around it."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    classes: list[ast.ClassDef] = field(default_factory=list)  # enclosing classes, outermost first
    functions: list[ast.AST] = field(default_factory=list)  # enclosing functions, outermost first
    top: Optional[TopLevel] = None

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def cls(self) -> Optional[ast.ClassDef]:
        return self.classes[-1] if self.classes else None

    @property
    def is_module_level(self) -> bool:
        return not self.classes and not self.functions

    @property
    def is_method(self) -> bool:
        return bool(self.classes) and not self.functions


def _names_loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _target_names(target: ast.AST) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        out: set[str] = set()
        for el in target.elts:
            out |= _target_names(el)
        return out
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()


def _only_name_targets(target: ast.AST) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_only_name_targets(e) for e in target.elts)
    if isinstance(target, ast.Starred):
        return _only_name_targets(target.value)
    return False


def _is_main_guard(test: ast.AST) -> bool:
    return "__name__" in _names_loaded(test)


def _is_tape_with(node: ast.stmt) -> bool:
    if not isinstance(node, ast.With):
        return False
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call) and (dotted(call.func) or "").endswith("GradientTape"):
            return True
    return False


def _import_binds(node: ast.Import | ast.ImportFrom) -> set[str]:
    out = set()
    for alias in node.names:
        if alias.name == "*":
            continue
        if alias.asname:
            out.add(alias.asname)
        elif isinstance(node, ast.Import):
            out.add(alias.name.split(".")[0])
        else:
            out.add(alias.name)
    return out


class ModuleSource:
    """A module's source, parsed (never imported), and its top-level statements."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.lines = text.splitlines()
        try:
            self.tree = ast.parse(text, filename=filename)
        except (SyntaxError, ValueError) as exc:
            raise HarnessError(f"cannot parse {filename}: {exc}") from None
        try:
            self._symtable: Optional[symtable.SymbolTable] = symtable.symtable(text, filename, "exec")
        except (SyntaxError, ValueError):  # pragma: no cover - ast accepted it
            self._symtable = None
        self.toplevel = [self._classify(node) for node in self.tree.body]
        self._parents: dict[int, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self._parents[id(child)] = parent

    # -- top-level statements -------------------------------------------------------------

    def _start(self, node: ast.stmt) -> int:
        decorators = getattr(node, "decorator_list", None) or []
        return min([node.lineno] + [d.lineno for d in decorators])

    def _classify(self, node: ast.stmt) -> TopLevel:
        start, end = self._start(node), node.end_lineno or node.lineno
        binds: set[str] = set()
        uses: set[str] = set()
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            kind = "future"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            kind = "star-import" if any(a.name == "*" for a in node.names) else "import"
            binds = _import_binds(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            binds = {node.name}
            uses = self._definition_uses(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(_only_name_targets(t) for t in targets) and node.value is not None:
                kind = "assign"
                for t in targets:
                    binds |= _target_names(t)
                uses = _names_loaded(node.value)
            else:
                kind = "other"
        elif isinstance(node, (ast.If, ast.Try)) and self._definitions_only(node):
            kind = "guarded"
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    binds |= _import_binds(sub)
                elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    binds.add(sub.name)
                elif isinstance(sub, ast.Assign):
                    for t in sub.targets:
                        binds |= _target_names(t)
                elif isinstance(sub, ast.AnnAssign):
                    binds |= _target_names(sub.target)
            uses = _names_loaded(node)
        elif _is_tape_with(node):
            kind = "tape"
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    binds.add(sub.id)
            uses = _names_loaded(node)
        else:
            kind = "other"
        return TopLevel(node, start, end, kind, frozenset(binds), frozenset(uses - binds if kind == "tape" else uses))

    def _definitions_only(self, node: ast.If | ast.Try) -> bool:
        if isinstance(node, ast.If):
            if _is_main_guard(node.test):
                return False
            bodies = [node.body, node.orelse]
        else:
            bodies = [node.body, node.orelse, node.finalbody] + [h.body for h in node.handlers]
        for body in bodies:
            for stmt in body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    continue
                if isinstance(stmt, (ast.If, ast.Try)):
                    if not self._definitions_only(stmt):
                        return False
                    continue
                if not isinstance(stmt, _DEFINITION_STMTS):
                    return False
                if isinstance(stmt, ast.Assign) and not all(_only_name_targets(t) for t in stmt.targets):
                    return False
        return True

    def _definition_uses(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
        """Module-level names a def/class needs: from its body (symtable) and its header."""
        uses: set[str] = set()
        for dec in node.decorator_list:
            uses |= _names_loaded(dec)
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                uses |= _names_loaded(base)
            for kw in node.keywords:
                uses |= _names_loaded(kw.value)
        else:
            args = node.args
            for default in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
                uses |= _names_loaded(default)
        table = self._table_for(node)
        if table is None:
            # No symbol table: every loaded name in the body (an over-approximation).
            for stmt in node.body:
                uses |= _names_loaded(stmt)
        else:
            uses |= _global_refs(table)
        return uses

    def _table_for(self, node: ast.AST) -> Optional[symtable.SymbolTable]:
        if self._symtable is None:
            return None
        name = getattr(node, "name", None)
        for child in self._symtable.get_children():
            if child.get_name() == name and child.get_lineno() in (node.lineno, self._start(node)):  # type: ignore[attr-defined]
                return child
        for child in self._symtable.get_children():
            if child.get_name() == name:
                return child
        return None

    # -- slicing ------------------------------------------------------------------------

    def needed(self, roots: Iterable[str], extra: Iterable[TopLevel] = ()) -> list[TopLevel]:
        """The top-level statements that bind ``roots`` and what those need, transitively."""
        binders: dict[str, list[TopLevel]] = {}
        for st in self.toplevel:
            if st.kind in ("import", "def", "class", "assign", "guarded"):
                for name in st.binds:
                    binders.setdefault(name, []).append(st)
        chosen: dict[int, TopLevel] = {}
        todo = list(roots)
        for st in extra:
            chosen[id(st)] = st
            todo += list(st.uses)
        seen: set[str] = set()
        unresolved: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            found = binders.get(name)
            if not found:
                if name not in _BUILTINS:
                    unresolved.add(name)
                continue
            for st in found:
                if id(st) not in chosen:
                    chosen[id(st)] = st
                    todo += list(st.uses)
        out = [st for st in self.toplevel if id(st) in chosen or st.kind == "future"]
        if unresolved:
            # ``from x import *`` may bind them: keep star imports then.
            out = sorted(
                out + [st for st in self.toplevel if st.kind == "star-import" and id(st) not in chosen],
                key=lambda s: s.start,
            )
        return out

    def harness(self, roots: Iterable[str], extra: Iterable[TopLevel] = ()) -> Harness:
        statements = self.needed(roots, extra)
        return Harness(self._render(statements), self.filename, statements, *package_context(self.filename))

    def _render(self, statements: list[TopLevel]) -> str:
        out = [""] * len(self.lines)
        shared = self._shared_lines()
        for st in statements:
            if st.start == st.end and st.start in shared:
                segment = ast.get_source_segment(self.text, st.node) or ""
                line = out[st.start - 1]
                out[st.start - 1] = f"{line}; {segment}" if line else segment
                continue
            for n in range(st.start, st.end + 1):
                out[n - 1] = self.lines[n - 1]
        return "\n".join(out) + "\n"

    def _shared_lines(self) -> set[int]:
        counts: dict[int, int] = {}
        for st in self.toplevel:
            for n in range(st.start, st.end + 1):
                counts[n] = counts.get(n, 0) + 1
        return {n for n, c in counts.items() if c > 1}

    # -- finding things ------------------------------------------------------------------

    def toplevel_at(self, line: int) -> Optional[TopLevel]:
        for st in self.toplevel:
            if st.start <= line <= st.end:
                return st
        return None

    def parent(self, node: ast.AST) -> Optional[ast.AST]:
        return self._parents.get(id(node))

    def functions(self) -> Iterator[FunctionLoc]:
        """Every function definition, with the classes and functions around it."""

        def walk(body: list[ast.stmt], classes: list, functions: list, top: Optional[TopLevel]) -> Iterator[FunctionLoc]:
            for stmt in body:
                t = top or self._top_of(stmt)
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield FunctionLoc(stmt, list(classes), list(functions), t)
                    yield from walk(stmt.body, classes, functions + [stmt], t)
                elif isinstance(stmt, ast.ClassDef):
                    yield from walk(stmt.body, classes + [stmt], functions, t)
                else:
                    for field_name in ("body", "orelse", "finalbody"):
                        sub = getattr(stmt, field_name, None)
                        if isinstance(sub, list):
                            yield from walk(sub, classes, functions, t)
                    for handler in getattr(stmt, "handlers", []) or []:
                        yield from walk(handler.body, classes, functions, t)

        yield from walk(self.tree.body, [], [], None)

    def _top_of(self, stmt: ast.stmt) -> Optional[TopLevel]:
        for st in self.toplevel:
            if st.node is stmt:
                return st
        return None

    def find_function(self, name: str, line: Optional[int] = None) -> Optional[FunctionLoc]:
        """The definition of ``name``: the one nearest above ``line`` when several exist."""
        matches = [f for f in self.functions() if f.name == name]
        if not matches:
            return None
        if line is not None:
            containing = [f for f in matches if f.node.lineno <= line <= (f.node.end_lineno or f.node.lineno)]
            if containing:
                return containing[-1]
        module_level = [f for f in matches if f.is_module_level]
        return (module_level or matches)[-1] if line is None else (module_level or matches)[0]

    def enclosing_function(self, line: int) -> Optional[FunctionLoc]:
        """The innermost function whose body contains ``line``."""
        best: Optional[FunctionLoc] = None
        for f in self.functions():
            if self._start(f.node) <= line <= (f.node.end_lineno or f.node.lineno):
                if best is None or f.node.lineno >= best.node.lineno:
                    best = f
        return best

    def enclosing_class(self, line: int) -> Optional[ast.ClassDef]:
        best = None
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ClassDef) and node.lineno <= line <= (node.end_lineno or node.lineno):
                if best is None or node.lineno >= best.lineno:
                    best = node
        return best

    def nodes_at(self, line: int, kind: type) -> list[ast.AST]:
        """Nodes of ``kind`` that start on ``line`` (outermost first)."""
        out = [n for n in ast.walk(self.tree) if isinstance(n, kind) and getattr(n, "lineno", None) == line]
        return sorted(out, key=lambda n: (n.col_offset, -(n.end_col_offset or 0)))

    def nodes_covering(self, line: int, kind: type) -> list[ast.AST]:
        """Nodes of ``kind`` whose lines include ``line``, innermost first."""
        out = [
            n
            for n in ast.walk(self.tree)
            if isinstance(n, kind) and n.lineno <= line <= (n.end_lineno or n.lineno)
        ]
        return sorted(out, key=lambda n: ((n.end_lineno or n.lineno) - n.lineno, -n.lineno))

    def module_assignment(self, name: str) -> Optional[ast.expr]:
        """The value of the only plain top-level assignment to ``name``, if exactly one."""
        values = []
        for st in self.toplevel:
            if name in st.binds:
                if st.kind == "assign" and isinstance(st.node, ast.Assign) and len(st.node.targets) == 1 and isinstance(st.node.targets[0], ast.Name):
                    values.append(st.node.value)
                elif st.kind == "assign" and isinstance(st.node, ast.AnnAssign) and st.node.value is not None:
                    values.append(st.node.value)
                else:
                    return None
        return values[0] if len(values) == 1 else None


def _global_refs(table: symtable.SymbolTable) -> set[str]:
    """Names a function/class table (and the tables inside it) reads from module scope."""
    out: set[str] = set()
    stack = [table]
    while stack:
        t = stack.pop()
        for sym in t.get_symbols():
            if not sym.is_referenced():
                continue
            if sym.is_global() or (t.get_type() == "class" and not sym.is_local()):
                out.add(sym.get_name())
        stack.extend(t.get_children())
    return out


def package_context(filename: str) -> tuple[Optional[str], list[str]]:
    """The package a file belongs to (for relative imports) and the folders for sys.path."""
    path = Path(filename)
    if not path.is_file():
        return None, [os.getcwd()]
    path = path.resolve()
    directory = path.parent
    parts: list[str] = []
    root = directory
    while (root / "__init__.py").is_file():
        parts.append(root.name)
        root = root.parent
    package = ".".join(reversed(parts)) or None
    folders = [str(directory)]
    if str(root) not in folders:
        folders.append(str(root))
    return package, folders


# -- running a harness (in the worker) ------------------------------------------------------

_counter = 0


def load_harness(spec: dict) -> types.ModuleType:
    """Run a harness's text in a fresh module and return it (worker side)."""
    global _counter
    _counter += 1
    package = spec.get("package")
    short = f"__tfgradlint_harness_{_counter}__"
    name = f"{package}.{short}" if package else short
    module = types.ModuleType(name)
    module.__file__ = spec["filename"]
    module.__package__ = package or ""
    for folder in reversed(spec.get("sys_path") or []):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    flags = __future__.annotations.compiler_flag
    code = compile(spec["text"], spec["filename"], "exec", flags=flags, dont_inherit=True)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def unload_harness(module: types.ModuleType) -> None:
    sys.modules.pop(module.__name__, None)
