"""The project-wide index: per-file summaries merged across the files of a run.

A rule sees one module (its LibCST index). What it cannot see there comes from here:

- the custom-gradient (cg) functions other modules define and export, with their signatures,
  so that ``from .ops import ste_sign``, ``from pkg import ste_sign`` (through an
  ``__init__`` re-export), ``import pkg.ops as ops; ops.ste_sign(...)`` and
  ``from pkg.ops import *`` are recognised at the use site (``analysis.cg_target`` falls back
  to ``ProjectIndex.cg_target``);
- the ``tf.recompute_grad``-wrapped callables other modules define;
- every gradient registration (``RegisterGradient``, ``no_gradient``/``NotDifferentiable``)
  of the run, for TGL403/TGL404.

Summaries are computed with Python's ``ast`` module (much cheaper than LibCST) and only for
files that can matter: files containing a trigger string, then files that mention a name
such a file exports (re-exports and use sites), until nothing new is found. A summary is
plain data (``FileSummary.to_dict``/``from_dict``: JSON-able and picklable), so a cache or a
worker process can produce it.

Resolution is conservative: a name bound more than once at module level, a star import from
a module outside the run, or an import that names two files of the run, resolves to nothing,
and the rules stay silent.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

from tfgradlint import names
from tfgradlint.names import ast_dotted

if TYPE_CHECKING:  # pragma: no cover
    import libcst as cst

    from tfgradlint.analysis import CgSignature
    from tfgradlint.context import RuleContext
    from tfgradlint.index import ModuleIndex, Scope

# A file containing one of these is summarised in the first phase.
SUMMARY_TRIGGERS = (
    "custom_gradient",
    "recompute_grad",
    "RegisterGradient",
    "no_gradient",
    "NotDifferentiable",
    "NoGradient",
)
REGISTRATION_CALLS = {
    "tensorflow.RegisterGradient": "register",
    "tensorflow.no_gradient": "no_gradient",
    "tensorflow.NotDifferentiable": "no_gradient",
    "tensorflow.NoGradient": "no_gradient",
}
_REGISTRATION_WORDS = ("RegisterGradient", "no_gradient", "NotDifferentiable", "NoGradient")
_MAX_DEPTH = 12
_BUILTINS = frozenset(dir(builtins))
_LINE_BREAKS = re.compile(r"\r\n?|\n")
_REGISTRATION_RE = re.compile("|".join(_REGISTRATION_WORDS))
# ``\bimport\s*\*`` and ``\b(?:name|...)\b``, searched without a leading ``\b`` (which
# keeps the regex engine from skipping ahead to the literal) and the boundary checked after.
_STAR_IMPORT = re.compile(r"import\s*\*")


def _word_start(text: str, i: int) -> bool:
    return i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")


def _word_end(text: str, i: int) -> bool:
    return i >= len(text) or not (text[i].isalnum() or text[i] == "_")


def _has_star_import(text: str) -> bool:
    return any(_word_start(text, m.start()) for m in _STAR_IMPORT.finditer(text))


def _mentions(text: str, names: Sequence[str], pattern: "re.Pattern[str]") -> bool:
    """``text`` holds one of ``names`` as a whole word (``pattern``: their alternation)."""
    # ``in`` skips through the text (about 30 ms per name per 100 MB), the alternation
    # tries every position: up to a few dozen names, look for each first
    if len(names) <= 24 and not any(n in text for n in names):
        return False
    return any(_word_start(text, m.start()) and _word_end(text, m.end()) for m in pattern.finditer(text))


# -- summaries --------------------------------------------------------------------------------


@dataclass
class FileSummary:
    """What other files need to know about one file (plain data)."""

    display: str
    # Module-level cg functions: name -> signature (see ``_signature``), plus "line".
    cg: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Module-level tf.recompute_grad-wrapped callables: name -> signature or {} when unknown.
    recompute: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Module-level imports bound once: local name -> raw target (".ops.f" for relative ones).
    imports: dict[str, str] = field(default_factory=dict)
    # Other module-level names (defs, classes, assignments, names bound more than once).
    defined: list[str] = field(default_factory=list)
    # ``from X import *`` at module level (raw targets).
    star_imports: list[str] = field(default_factory=list)
    # ``__all__`` when it is a literal list/tuple of strings; ``all_dynamic`` when it is not.
    all: Optional[list[str]] = None
    all_dynamic: bool = False
    # Every import in the file, any scope: [local name, raw target].
    import_targets: list[list[str]] = field(default_factory=list)
    # Gradient registrations: name (None when not a literal), line, col, kind
    # ("register" | "no_gradient"), unconditional (runs once at import), in_try.
    registrations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "display": self.display,
            "cg": self.cg,
            "recompute": self.recompute,
            "imports": self.imports,
            "defined": self.defined,
            "star_imports": self.star_imports,
            "all": self.all,
            "all_dynamic": self.all_dynamic,
            "import_targets": self.import_targets,
            "registrations": self.registrations,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FileSummary":
        return cls(**data)

    def exported_names(self) -> Iterable[str]:
        yield from self.cg
        yield from self.recompute


def _raw_from(node: ast.ImportFrom, name: str) -> str:
    prefix = "." * (node.level or 0)
    return prefix + ((node.module + ".") if node.module else "") + name


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> dict[str, Any]:
    a = fn.args
    params = [p.arg for p in a.posonlyargs + a.args]
    return {
        "params": params,
        "required": len(params) - len(a.defaults),
        "star_args": a.vararg is not None,
        "star_kwargs": a.kwarg is not None,
        "kwonly": [p.arg for p in a.kwonlyargs],
    }


def _scope_statements(body: Sequence[ast.stmt]) -> Iterable[ast.stmt]:
    """The statements of one scope: compound statements entered, defs and classes not."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        inner: list[ast.stmt] = []
        for attr in ("body", "orelse", "finalbody"):
            inner += getattr(stmt, attr, None) or []
        for handler in getattr(stmt, "handlers", None) or []:
            inner += handler.body
        for case in getattr(stmt, "cases", None) or []:
            inner += case.body
        stack.extend(reversed(inner))


def _target_names(target: ast.expr) -> Iterable[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for el in target.elts:
            yield from _target_names(el)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _scope_bindings(body: Sequence[ast.stmt]) -> dict[str, list[tuple[str, Any]]]:
    """name -> [(kind, node)] for the bindings of one scope, in source order."""
    out: dict[str, list[tuple[str, Any]]] = {}

    def bind(name: str, kind: str, node: Any) -> None:
        out.setdefault(name, []).append((kind, node))

    for stmt in _scope_statements(body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bind(stmt.name, "def", stmt)
        elif isinstance(stmt, ast.ClassDef):
            bind(stmt.name, "class", stmt)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    bind(alias.asname, "import", alias.name)
                else:
                    head = alias.name.split(".")[0]
                    bind(head, "import", head)
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*":
                    continue
                bind(alias.asname or alias.name, "import", _raw_from(stmt, alias.name))
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                for n in _target_names(t):
                    bind(n, "assign" if isinstance(t, ast.Name) else "other", stmt.value)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                for n in _target_names(stmt.target):
                    bind(n, "assign", stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            for n in _target_names(stmt.target):
                bind(n, "other", None)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            for n in _target_names(stmt.target):
                bind(n, "other", None)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    for n in _target_names(item.optional_vars):
                        bind(n, "other", None)
        elif isinstance(stmt, ast.Try) or stmt.__class__.__name__ == "TryStar":
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                if handler.name:
                    bind(handler.name, "other", None)
        elif isinstance(stmt, ast.Delete):
            for t in stmt.targets:
                for n in _target_names(t):
                    bind(n, "other", None)
    return out


class _Summariser:
    def __init__(self, tree: ast.Module, display: str, text: str = "") -> None:
        self.tree = tree
        # The lines that may hold a registration call (the expression walk visits only these).
        self.registration_lines: list[int] = []
        if any(t in text for t in _REGISTRATION_WORDS):
            if "\r" in text:
                self.registration_lines = [
                    i for i, line in enumerate(_LINE_BREAKS.split(text), 1) if _REGISTRATION_RE.search(line)
                ]
            else:
                self.registration_lines = sorted(
                    {text.count("\n", 0, m.start()) + 1 for m in _REGISTRATION_RE.finditer(text)}
                )
        self._function_imports: dict[int, dict[str, str]] = {}
        self.summary = FileSummary(display)
        self.bindings = _scope_bindings(tree.body)
        # Module-level names bound exactly once by an import: local -> raw target.
        self.module_imports: dict[str, str] = {}
        for name, binds in self.bindings.items():
            imports = [b for b in binds if b[0] == "import"]
            if imports and len(binds) == 1:
                self.module_imports[name] = imports[0][1]

    # -- names --------------------------------------------------------------------------

    def qualified(self, expr: ast.expr, imports: Sequence[dict[str, str]] = ()) -> Optional[str]:
        """Canonical name of a dotted expression through the imports (innermost first)."""
        return self._qualified(expr, imports, 0)

    def _qualified(self, expr: ast.expr, imports: Sequence[dict[str, str]], depth: int) -> Optional[str]:
        dotted = ast_dotted(expr)
        if dotted is None or depth > 5:
            return None
        head, _, rest = dotted.partition(".")
        for layer in imports:
            if head in layer:
                base = layer[head]
                return names.canonical(base + ("." + rest if rest else ""))
        binds = self.bindings.get(head)
        if binds is None or len(binds) != 1:
            return None
        kind, value = binds[0]
        if kind == "import":
            return names.canonical(value + ("." + rest if rest else ""))
        if kind == "assign" and isinstance(value, (ast.Name, ast.Attribute)):
            target = self._qualified(value, (), depth + 1)
            if target is not None:
                return names.canonical(target + ("." + rest if rest else ""))
        return None

    def module_def(self, name: str) -> Optional[ast.FunctionDef | ast.AsyncFunctionDef]:
        binds = self.bindings.get(name)
        if binds and len(binds) == 1 and binds[0][0] == "def":
            return binds[0][1]
        return None

    def module_string(self, expr: ast.expr) -> Optional[str]:
        """A string literal, or a module-level name bound once to one."""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value
        if isinstance(expr, ast.Name):
            binds = self.bindings.get(expr.id)
            if binds and len(binds) == 1 and binds[0][0] == "assign":
                value = binds[0][1]
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return value.value
        return None

    # -- the summary --------------------------------------------------------------------

    def run(self) -> FileSummary:
        s = self.summary
        for name, binds in self.bindings.items():
            if len(binds) == 1 and binds[0][0] == "import":
                s.imports[name] = binds[0][1]
            elif name not in ("__all__",):
                s.defined.append(name)
            if name == "__all__":
                if len(binds) == 1 and binds[0][0] == "assign" and isinstance(binds[0][1], (ast.List, ast.Tuple)):
                    items = [e.value for e in binds[0][1].elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                    if len(items) == len(binds[0][1].elts):
                        s.all = items
                        continue
                s.all_dynamic = True
        for stmt in _scope_statements(self.tree.body):
            if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
                s.star_imports.append(_raw_from(stmt, "")[:-1] if stmt.module else "." * stmt.level)
        if "__all__" in self.bindings:
            for stmt in _scope_statements(self.tree.body):
                # __all__.extend(...) / __all__ += ... make it unknown
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                    func = stmt.value.func
                    if isinstance(func, ast.Attribute) and ast_dotted(func.value) == "__all__":
                        s.all_dynamic = True
            if s.all_dynamic:
                s.all = None
        self._cg_and_recompute()
        self._walk_all()
        return s

    def _cg_and_recompute(self) -> None:
        s = self.summary
        for name, binds in self.bindings.items():
            if len(binds) != 1:
                continue
            kind, node = binds[0]
            if kind == "def":
                for i, dec in enumerate(node.decorator_list):
                    q = self.qualified(dec)
                    if q in names.CUSTOM_GRADIENT:
                        sig = self._cg_signature(node)
                        sig["outer_wrapped"] = i > 0
                        sig["line"] = node.lineno
                        s.cg[name] = sig
                        break
                    if q in names.RECOMPUTE_GRAD:
                        sig = _signature(node)
                        sig["outer_wrapped"] = i > 0
                        sig["line"] = node.lineno
                        s.recompute[name] = sig
                        break
            elif kind == "assign" and isinstance(node, ast.Call):
                q = self.qualified(node.func)
                if q not in names.CUSTOM_GRADIENT and q not in names.RECOMPUTE_GRAD:
                    continue
                arg = None
                for a in node.args:
                    arg = a
                    break
                if arg is None:
                    for kw in node.keywords:
                        if kw.arg == "f":
                            arg = kw.value
                            break
                wrapped: Any = self.module_def(arg.id) if isinstance(arg, ast.Name) else None
                if q in names.CUSTOM_GRADIENT:
                    if wrapped is None or any(self.qualified(d) in names.CUSTOM_GRADIENT for d in wrapped.decorator_list):
                        continue
                    sig = self._cg_signature(wrapped)
                    sig["outer_wrapped"] = False
                    sig["line"] = node.lineno
                    s.cg[name] = sig
                else:
                    if isinstance(arg, ast.Lambda):
                        wrapped = arg
                    sig = _signature(wrapped) if wrapped is not None else {}
                    if sig:
                        sig["outer_wrapped"] = False
                    sig["line"] = node.lineno
                    s.recompute[name] = sig

    def _cg_signature(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, Any]:
        sig = _signature(fn)
        local = _scope_bindings(fn.body)
        grads: list[Any] = []
        for ret in _returns(fn):
            value = ret.value
            if not isinstance(value, (ast.Tuple, ast.List)) or len(value.elts) != 2:
                continue
            if any(isinstance(e, ast.Starred) for e in value.elts):
                continue
            g = value.elts[1]
            grad: Any = None
            if isinstance(g, ast.Lambda):
                grad = g
            elif isinstance(g, ast.Name):
                params = {p.arg for p in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}
                binds = local.get(g.id)
                if g.id not in params and binds and len(binds) == 1:
                    kind, node = binds[0]
                    if kind == "def":
                        grad = node
                    elif kind == "assign" and isinstance(node, ast.Lambda):
                        grad = node
            if grad is not None and all(grad is not other for other in grads):
                grads.append(grad)
        sig["reads_inputs"] = self._forward_reads(fn)
        if not grads:
            sig["grad_accepts_variables"] = None
        else:
            sig["grad_accepts_variables"] = all(
                any(p.arg == "variables" for p in g.args.posonlyargs + g.args.args + g.args.kwonlyargs)
                or g.args.kwarg is not None
                for g in grads
            )
        return sig

    def _forward_reads(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
        """The inputs the forward body certainly reads: an operand, a subscripted value, an
        ordered comparison's operand, or an argument of a TensorFlow / ``keras.ops`` call
        (as TGL119 counts them for a cg function of its own module)."""
        inputs = {p.arg for p in fn.args.posonlyargs + fn.args.args}
        out: set[str] = set()
        stack: list[tuple[ast.AST, Optional[ast.AST], Optional[ast.AST]]] = [(stmt, None, None) for stmt in fn.body]
        while stack:
            node, parent, grandparent = stack.pop()
            if parent is not None and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in inputs:
                if self._operand(node, parent, grandparent, fn):
                    out.add(node.id)
                continue
            for child in ast.iter_child_nodes(node):
                stack.append((child, node, parent))
        return sorted(out)

    def _operand(
        self,
        node: ast.Name,
        parent: Optional[ast.AST],
        grandparent: Optional[ast.AST],
        fn: ast.FunctionDef | ast.AsyncFunctionDef,
    ) -> bool:
        if isinstance(parent, (ast.BinOp, ast.UnaryOp)):
            return True
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return True
        if isinstance(parent, ast.Compare):
            return all(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in parent.ops)
        if isinstance(parent, ast.Call) and node in parent.args:
            return self._tf_call(parent, fn)
        if isinstance(parent, ast.keyword) and isinstance(grandparent, ast.Call):
            return self._tf_call(grandparent, fn)
        return False

    def _tf_call(self, call: ast.Call, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        q = self.qualified(call.func, [self._imports_of(fn)])
        return q is not None and (q.startswith("tensorflow.") or q.startswith("keras.ops.")) and not q.startswith(
            ("tensorflow.nest.", "tensorflow.py_function", "tensorflow.numpy_function", "tensorflow.debugging.",
             "tensorflow.print", "tensorflow.Variable", "tensorflow.keras", "tensorflow.custom_gradient")
        )

    def _imports_of(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str]:
        """The names a function's own imports bind (once), computed when first needed."""
        layer = self._function_imports.get(id(fn))
        if layer is None:
            layer = {}
            for name, binds in _scope_bindings(fn.body).items():
                if len(binds) == 1 and binds[0][0] == "import":
                    layer[name] = binds[0][1]
                elif name in layer:
                    del layer[name]
            self._function_imports[id(fn)] = layer
        return layer

    def _near_registration(self, first: int, last: int) -> bool:
        lines = self.registration_lines
        i = bisect.bisect_left(lines, first)
        return i < len(lines) and lines[i] <= last

    def _walk_all(self) -> None:
        """Every import (any scope) and every gradient registration."""
        s = self.summary
        # (node, enclosing functions innermost first, unconditional, in_try)
        stack: list[tuple[ast.AST, tuple[Any, ...], bool, bool]] = [
            (stmt, (), True, False) for stmt in reversed(self.tree.body)
        ]
        while stack:
            node, imports, uncond, in_try = stack.pop()
            if not isinstance(node, (ast.stmt, ast.excepthandler, ast.arguments)):
                # an expression (or part of one): only those around a registration matter
                lineno = getattr(node, "lineno", None)
                if lineno is not None and not self._near_registration(lineno, node.end_lineno or lineno):
                    continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    s.import_targets.append([alias.asname or alias.name.split(".")[0], alias.name])
                continue
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "*":
                        s.import_targets.append(["*", _raw_from(node, "")[:-1] if node.module else "." * node.level])
                    else:
                        s.import_targets.append([alias.asname or alias.name, _raw_from(node, alias.name)])
                continue
            if isinstance(node, ast.Call):
                q = self.qualified(node.func, [self._imports_of(fn) for fn in imports])
                kind = REGISTRATION_CALLS.get(q or "")
                if kind is not None:
                    arg = node.args[0] if node.args else None
                    if arg is None:
                        for kw in node.keywords:
                            if kw.arg == "op_type":
                                arg = kw.value
                    if arg is not None or not node.keywords:
                        s.registrations.append(
                            {
                                "name": self.module_string(arg) if arg is not None else None,
                                "line": node.lineno,
                                "col": node.col_offset + 1,
                                "kind": kind,
                                "unconditional": uncond,
                                "in_try": in_try,
                            }
                        )
            children: list[tuple[ast.AST, tuple[Any, ...], bool, bool]] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inner = imports
                if not isinstance(node, ast.Lambda):
                    inner = (node,) + imports
                    for dec in node.decorator_list:
                        children.append((dec, imports, uncond, in_try))
                    for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                        children.append((d, imports, uncond, in_try))
                    for stmt in node.body:
                        children.append((stmt, inner, False, in_try))
                else:
                    children.append((node.body, inner, False, in_try))
            elif isinstance(node, ast.ClassDef):
                for dec in node.decorator_list:
                    children.append((dec, imports, uncond, in_try))
                for base in node.bases:
                    children.append((base, imports, uncond, in_try))
                for stmt in node.body:
                    children.append((stmt, imports, False, in_try))
            elif isinstance(node, (ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                for part in ast.iter_child_nodes(node):
                    children.append((part, imports, False, in_try))
            elif isinstance(node, ast.Try) or node.__class__.__name__ == "TryStar":
                for stmt in node.body:  # type: ignore[attr-defined]
                    children.append((stmt, imports, False, True))
                for part in ast.iter_child_nodes(node):
                    if part not in node.body:  # type: ignore[attr-defined]
                        children.append((part, imports, False, in_try))
            elif isinstance(node, ast.stmt) and not isinstance(
                node, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return, ast.Delete)
            ):
                # compound statements: what runs inside is conditional
                for part in ast.iter_child_nodes(node):
                    children.append((part, imports, False, in_try))
            else:
                for part in ast.iter_child_nodes(node):
                    children.append((part, imports, uncond, in_try))
            stack.extend(reversed(children))


def _returns(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterable[ast.Return]:
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def summarize(text: str, display: str, *, slicing: Optional[bool] = None) -> Optional[FileSummary]:
    """The summary of one file's text, or None when it does not parse.

    ``slicing`` (default: the engine's setting): parse only the statements the summary reads
    (tfgradlint/slicing.py ``summary_keep``); the other defs and classes only bind their
    names. The summary is the same (tests/test_engine_identical.py)."""
    tree = None
    if slicing if slicing is not None else _slicing_default():
        try:
            tree = _sliced_tree(text)
        except (Exception, RecursionError):  # never worse than parsing it all
            tree = None
    if tree is None:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    try:
        return _Summariser(tree, display, text).run()
    except RecursionError:
        return None


def _slicing_default() -> bool:
    from tfgradlint import engine

    return engine.SLICING


def _sliced_tree(text: str) -> Optional[ast.Module]:
    """The module with only the statements the summary reads parsed, other defs and classes
    as stubs that bind their names (None: parse it all)."""
    from tfgradlint import slicing

    lay = slicing.analysed(text)
    if lay is None or not lay.statements or not slicing.with_facts(text, lay):
        return None
    keep = slicing.summary_keep(text, lay, SUMMARY_TRIGGERS)
    if all(keep):
        source = text
    else:
        source = slicing.blanked(text, lay.statements, keep)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if source is text:
        return tree
    body: list[ast.stmt] = []
    nodes = tree.body
    i = 0
    for st, k in zip(lay.statements, keep):
        if k:
            while i < len(nodes) and nodes[i].lineno <= st.end_line:
                body.append(nodes[i])
                i += 1
        else:
            body.append(_stub(st))
    body.extend(nodes[i:])
    tree.body = body
    return tree


def _stub(st) -> ast.stmt:
    """A def or class that binds its name and holds nothing (for the summary); every node at
    the statement's place (what ``ast.fix_missing_locations`` would give them)."""
    where = {"lineno": st.line, "col_offset": 0, "end_lineno": st.end_line, "end_col_offset": 0}
    body: list[ast.stmt] = [ast.Pass(**where)]
    if st.kind == "class":
        return ast.ClassDef(name=st.name, bases=[], keywords=[], body=body, decorator_list=[], **where)
    args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
    return ast.FunctionDef(name=st.name, args=args, body=body, decorator_list=[], returns=None, **where)


def _summarize_file(f: "ProjectFile") -> Optional[FileSummary]:
    return summarize(f.text or "", f.display)


# -- module names ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _abspath(root: Any) -> str:
    return os.path.abspath(root)


def module_candidates(path: Path, roots: Iterable[Path], _packages: Optional[dict[Any, Any]] = None) -> list[str]:
    """The names under which ``path`` may be imported: relative to each root, and from its
    package root (the highest folder of an unbroken chain of ``__init__.py`` folders).

    ``_packages`` caches which folders are packages and each folder's name prefixes (the
    summary phase passes one dict for the whole run: a folder is worked out once)."""
    full = os.path.abspath(path)
    folder, base = os.path.split(full)
    stem, ext = os.path.splitext(base)
    if ext not in (".py", ".pyi"):
        return []
    packages = _packages if _packages is not None else {}
    roots = tuple(roots)
    key = (folder, roots)
    prefixes = packages.get(key)
    if prefixes is None:
        prefixes = packages[key] = _name_prefixes(folder, roots, packages)
    out: list[str] = []
    init = stem == "__init__"
    if not init and not stem.isidentifier():
        return out
    for prefix in prefixes:
        if prefix is None:  # a part that is not an identifier
            continue
        if init:
            name = prefix
        else:
            name = prefix + "." + stem if prefix else stem
        if name and name not in out:
            out.append(name)
    return out


def _name_prefixes(folder: str, roots: tuple, packages: dict[Any, Any]) -> list[Optional[str]]:
    """The dotted names of ``folder`` as module name prefixes ("" for a root itself): under
    each root, then from its package root; None where a part is not an identifier."""

    def joined(parts: list[str]) -> Optional[str]:
        return ".".join(parts) if all(p.isidentifier() for p in parts) else None

    out: list[Optional[str]] = []
    for root in roots:
        root_full = _abspath(root)
        # os.path.relpath(folder, root_full), for the folders under the root
        if folder == root_full:
            out.append("")
            continue
        prefix = root_full if root_full.endswith(os.sep) else root_full + os.sep
        if folder.startswith(prefix):
            rel = folder[len(prefix) :]
            if not rel.startswith(os.pardir):
                out.append(joined(rel.split(os.sep)))
    parts: list[str] = []
    while True:
        is_package = packages.get(folder)
        if is_package is None:
            is_package = os.path.isfile(os.path.join(folder, "__init__.py")) or os.path.isfile(
                os.path.join(folder, "__init__.pyi")
            )
            packages[folder] = is_package
        if not is_package:
            break
        parent = os.path.dirname(folder)
        parts.insert(0, os.path.basename(folder))
        if parent == folder:
            break
        folder = parent
    out.append(joined(parts))
    return out


@dataclass
class ProjectFile:
    """One file of the run, as the summary phase sees it."""

    display: str
    path: Path
    text: Optional[str]
    roots: Sequence[Path] = ()
    # whether the text has a SUMMARY_TRIGGERS word, when the caller has searched it already
    summary_candidate: Optional[bool] = None
    # ``module_candidates(path, roots)`` and ``_has_star_import(text)``, when the caller has
    # computed them already (the runner does while its workers prepare files)
    module_names: Optional[list[str]] = None
    star_import: Optional[bool] = None


# -- the index ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """What a dotted name of the project resolves to."""

    kind: str  # "cg" | "recompute" | "module"
    display: str  # the file
    name: str = ""  # the name in that file ("" for a module)
    module: str = ""  # the module's name
    signature: Optional[dict[str, Any]] = None


class ProjectIndex:
    def __init__(
        self,
        summaries: dict[str, FileSummary],
        modules: dict[str, tuple[list[str], bool]],
    ) -> None:
        """``summaries`` by display name; ``modules``: display -> (module names, is package)."""
        self.summaries = summaries
        self.modules = modules
        self._by_module: dict[str, Optional[str]] = {}
        for display, (mods, _) in modules.items():
            for m in mods:
                if m in self._by_module and self._by_module[m] != display:
                    other = self._by_module[m]
                    # a stub beside its module names the same module: keep the .py
                    if other is not None and _same_stem(other, display):
                        if display.endswith(".py"):
                            self._by_module[m] = display
                        continue
                    self._by_module[m] = None  # ambiguous
                else:
                    self._by_module[m] = display
        # Names under which a cg or recompute_grad callable may be reached: the definitions'
        # names and the names module-level imports re-export them under.
        self.exported: set[str] = set()
        for s in summaries.values():
            self.exported.update(s.exported_names())
        changed = True
        while changed:
            changed = False
            for s in summaries.values():
                for local, target in s.imports.items():
                    if local not in self.exported and target.rsplit(".", 1)[-1] in self.exported:
                        self.exported.add(local)
                        changed = True
        self._imports_cache: dict[str, set[str]] = {}
        self._closure_cache: dict[str, set[str]] = {}
        self._dynamic_registration = any(
            r["name"] is None for s in summaries.values() for r in s.registrations
        )

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        files: Sequence[ProjectFile],
        summarizer: Optional[Callable[[ProjectFile], Optional[FileSummary]]] = None,
        tick: Optional[Callable[[], None]] = None,
    ) -> "ProjectIndex":
        """The index of a run. ``summarizer`` computes one file's summary (default: parse
        its text); a cache can pass one that returns stored summaries. Which files are
        summarised is decided here, from their texts. ``tick`` is called now and then
        during the search of every file (the runner keeps its workers busy meanwhile)."""
        if summarizer is None:
            summarizer = _summarize_file
        summaries: dict[str, FileSummary] = {}
        modules: dict[str, tuple[list[str], bool]] = {}
        pending: list[ProjectFile] = []
        packages: dict[str, bool] = {}
        for f in files:
            names = f.module_names if f.module_names is not None else module_candidates(f.path, f.roots, packages)
            modules[f.display] = (names, f.path.stem == "__init__")
            if f.text is None or f.path.suffix not in (".py", ".pyi"):
                continue
            candidate = f.summary_candidate
            if candidate is None:
                candidate = any(t in f.text for t in SUMMARY_TRIGGERS)
            if candidate:
                s = summarizer(f)
                if s is not None:
                    summaries[f.display] = s
            else:
                pending.append(f)
        searched: set[str] = set()
        # each exported name, with the top-level packages of the files exporting it
        new: dict[str, set[str]] = {}
        for display, s in summaries.items():
            for n in s.exported_names():
                new.setdefault(n, set()).update(_tops(modules, display))
        scope = _MentionScope(modules)
        while new and pending:
            searched |= set(new)
            rest: list[ProjectFile] = []
            found: list[tuple[str, FileSummary]] = []
            for i, f in enumerate(pending):
                if tick is not None and i % 256 == 255:
                    tick()
                # a star import may re-export the names without mentioning them
                star = f.star_import if f.star_import is not None else _has_star_import(f.text or "")
                if scope.mentions(f, new) or star:
                    s = summarizer(f)
                    if s is not None:
                        summaries[f.display] = s
                        found.append((f.display, s))
                else:
                    rest.append(f)
            pending = rest
            # names under which the files just found re-export what was searched for
            new = {}
            for display, s in found:
                for local, target in s.imports.items():
                    if target.rsplit(".", 1)[-1] in searched and local not in searched:
                        new.setdefault(local, set()).update(_tops(modules, display))
        _add_importers_of_duplicates(summaries, modules, pending, summarizer)
        return cls(summaries, modules)

    @classmethod
    def from_source(cls, text: str, display: str) -> "ProjectIndex":
        """A project of one text (a rule's own examples: the text is the whole project)."""
        s = summarize(text, display)
        return cls({display: s} if s is not None else {}, {display: ([], False)})

    # -- resolution --------------------------------------------------------------------------

    def absolutes(self, raw: str, display: str) -> list[str]:
        """``raw`` (an import target as written, relative ones with leading dots) as absolute
        module paths, one per name the importing file ``display`` may have."""
        if not raw.startswith("."):
            return [raw]
        level = len(raw) - len(raw.lstrip("."))
        rest = raw[level:]
        mods, is_package = self.modules.get(display, ([], False))
        out = []
        for mod in mods:
            parts = mod.split(".") if is_package else mod.split(".")[:-1]
            up = level - 1
            if up >= len(parts):
                continue  # above the top package: not importable this way
            base = parts[: len(parts) - up]
            full = ".".join(base) + ("." + rest if rest else "")
            if full not in out:
                out.append(full)
        return out

    def resolve(self, raw: str, display: str, depth: int = 0) -> Optional[Export]:
        """What ``raw`` (seen from file ``display``) names in the project, or None."""
        if depth > _MAX_DEPTH:
            return None
        results = []
        for absolute in self.absolutes(raw, display):
            r = self._resolve_absolute(absolute, depth)
            if r is not None:
                results.append(r)
        if not results:
            return None
        first = results[0]
        # the names of one file under different roots agree on what they name
        if any((r.kind, r.display, r.name) != (first.kind, first.display, first.name) for r in results[1:]):
            return None
        return first

    def _resolve_absolute(self, dotted: str, depth: int) -> Optional[Export]:
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            mod = ".".join(parts[:i])
            if mod in self._by_module:
                display = self._by_module[mod]
                if display is None:
                    return None  # two files of the run have this name
                return self._in_module(display, mod, parts[i:], depth)
        return None

    def _in_module(self, display: str, mod: str, rest: list[str], depth: int) -> Optional[Export]:
        if not rest:
            return Export("module", display, "", mod)
        s = self.summaries.get(display)
        if s is None:
            # a file that mentions none of the exported names: a submodule may still match
            return None
        name = rest[0]
        if name in s.cg:
            return Export("cg", display, name, mod, s.cg[name]) if len(rest) == 1 else None
        if name in s.recompute:
            return Export("recompute", display, name, mod, s.recompute[name]) if len(rest) == 1 else None
        if name in s.imports:
            target = s.imports[name]
            return self.resolve(".".join([target] + rest[1:]), display, depth + 1)
        if name in s.defined:
            return None
        if s.star_imports:
            return self._via_star(s, name, rest[1:], depth)
        return None

    def _via_star(self, s: FileSummary, name: str, rest: list[str], depth: int) -> Optional[Export]:
        """``name`` bound in ``s`` by one of its star imports, when exactly one provides it."""
        provider = None
        for raw in s.star_imports:
            module = self.resolve(raw, s.display, depth + 1)
            if module is None or module.kind != "module":
                return None  # a star import from outside the run: could bind anything
            exports = self.star_exports(module.display, depth + 1)
            if exports is None:
                return None
            if name in exports:
                if provider is not None:
                    return None
                provider = module
        if provider is None:
            return None
        return self._in_module(provider.display, provider.module, [name] + rest, depth + 1)

    def star_exports(self, display: str, depth: int = 0) -> Optional[set[str]]:
        """The names ``from <module> import *`` binds, or None when unknown."""
        s = self.summaries.get(display)
        if s is None or depth > _MAX_DEPTH:
            return None
        if s.all_dynamic:
            return None
        if s.all is not None:
            return set(s.all)
        out = {n for n in list(s.cg) + list(s.recompute) + list(s.imports) + s.defined if not n.startswith("_")}
        for raw in s.star_imports:
            module = self.resolve(raw, s.display, depth + 1)
            if module is None or module.kind != "module":
                return None
            inner = self.star_exports(module.display, depth + 1)
            if inner is None:
                return None
            out |= inner
        return out

    # -- what rules ask ----------------------------------------------------------------------

    def target_of(self, ctx: "RuleContext", call: "cst.Call", scope: "Scope") -> Optional[Export]:
        """The project export ``call`` calls (a cg or recompute_grad callable), or None."""
        if not self.exported:
            return None
        raw = _raw_target(ctx.index, call.func, scope)
        if raw is None or raw.lstrip("*").rsplit(".", 1)[-1] not in self.exported:
            return None
        if raw.startswith("*"):
            # unbound in the module: maybe a star import
            s = self.summaries.get(ctx.filename)
            if s is None or not s.star_imports:
                return None
            name, _, rest = raw[1:].partition(".")
            r = self._via_star(s, name, rest.split(".") if rest else [], 0)
        else:
            r = self.resolve(raw, ctx.filename)
        if r is None or r.kind == "module":
            return None
        if r.display == ctx.filename:
            return None  # this module: the module index is the authority
        return r

    def cg_target(self, ctx: "RuleContext", call: "cst.Call", scope: "Scope") -> Optional["CgSignature"]:
        if not ctx.whole_project:
            return None
        r = self.target_of(ctx, call, scope)
        if r is None or r.kind != "cg" or r.signature is None:
            return None
        return signature_from_summary(r.name, r.signature, r.module)

    def recompute_target(self, ctx: "RuleContext", call: "cst.Call", scope: "Scope") -> Optional[Export]:
        if not ctx.whole_project:
            return None
        r = self.target_of(ctx, call, scope)
        if r is None or r.kind != "recompute":
            return None
        return r

    def extra_triggers(self, display: str, text: str) -> list[str]:
        """Names that make ``display`` worth linting although it has no trigger string: the
        cg or recompute_grad callables it imports from other files of the run."""
        s = self.summaries.get(display)
        if s is None:
            return []
        out: list[str] = []
        for local, raw in s.import_targets:
            if local == "*":
                module = self.resolve(raw, display)
                if module is None or module.kind != "module":
                    continue
                exports = self.star_exports(module.display) or set()
                target_s = self.summaries.get(module.display)
                for n in exports:
                    if n in self.exported and n in text and self.resolve(f"{module.module}.{n}", display):
                        out.append(n)
                continue
            r = self.resolve(raw, display)
            if r is None:
                continue
            if r.kind in ("cg", "recompute"):
                out.append(local)
            else:
                target_s = self.summaries.get(r.display)
                if target_s is None:
                    continue
                for n in list(target_s.exported_names()) + list(target_s.imports):
                    if n in self.exported and n in text:
                        hit = self.resolve(f"{r.module}.{n}", display)
                        if hit is not None and hit.kind in ("cg", "recompute"):
                            out.append(n)
        return sorted(set(out))

    # -- registrations -------------------------------------------------------------------------

    def registrations(self) -> list[tuple[str, dict[str, Any]]]:
        """(file, registration) for every gradient registration of the run, files in order."""
        return [(d, r) for d in sorted(self.summaries) for r in self.summaries[d].registrations]

    def registered_names(self) -> set[str]:
        return {r["name"] for _, r in self.registrations() if r["name"] is not None}

    @property
    def has_dynamic_registration(self) -> bool:
        """Some registration's name is not a literal: the set of registered names is unknown."""
        return self._dynamic_registration

    def imported_files(self, display: str) -> set[str]:
        """Files of the run that importing ``display`` imports directly (with the packages
        around them), as far as the summaries tell."""
        cached = self._imports_cache.get(display)
        if cached is not None:
            return cached
        out: set[str] = set()
        s = self.summaries.get(display)
        for _, raw in s.import_targets if s is not None else ():
            for absolute in self.absolutes(raw, display):
                parts = absolute.split(".")
                for i in range(1, len(parts) + 1):
                    other = self._by_module.get(".".join(parts[:i]))
                    if other is not None and other != display:
                        out.add(other)
        self._imports_cache[display] = out
        return out

    def closure(self, display: str) -> set[str]:
        """Every file of the run that importing ``display`` imports, transitively."""
        cached = self._closure_cache.get(display)
        if cached is not None:
            return cached
        seen: set[str] = set()
        todo = [display]
        while todo:
            d = todo.pop()
            for other in self.imported_files(d):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        seen.discard(display)
        self._closure_cache[display] = seen
        return seen

    def loaded_together(self, a: str, b: str) -> Optional[str]:
        """How files ``a`` and ``b`` end up imported in one process: "a imports b",
        "b imports a", "both imported" (by a third file), or None when nothing says so."""
        if b in self.closure(a):
            return "a imports b"
        if a in self.closure(b):
            return "b imports a"
        for c in self.summaries:
            if c not in (a, b):
                reach = self.closure(c)
                if a in reach and b in reach:
                    return "both imported"
        return None

    def is_tensorflow_source(self, display: str) -> bool:
        """The file is part of TensorFlow itself (its registrations are the built-in ones)."""
        mods, _ = self.modules.get(display, ([], False))
        return any(m == "tensorflow" or m.startswith("tensorflow.") for m in mods)


def _tops(modules: dict[str, tuple[list[str], bool]], display: str) -> set[str]:
    """The first parts of the names ``display`` may be imported under ({""}: unknown)."""
    names = modules.get(display, ([], False))[0]
    return {m.split(".", 1)[0] for m in names} if names else {""}


class _MentionScope:
    """Whether a file mentions a name another file exports, searching only for the names it
    can reach: a name defined in package ``p`` is used elsewhere only through an import that
    spells ``p`` (``import p.m``, ``from p.m import f``, ``p.m.f``) or from inside ``p``
    (relative imports). So a file is searched for the names exported from its own
    top-level packages and from those whose name it contains; on a corpus of 13 packages
    this is most of the cost of building the index (0.7 s -> see benchmarks/README.md)."""

    def __init__(self, modules: dict[str, tuple[list[str], bool]]) -> None:
        self.modules = modules
        self._patterns: dict[frozenset[str], "re.Pattern[str]"] = {}

    def mentions(self, f: ProjectFile, names: dict[str, set[str]]) -> bool:
        text = f.text or ""
        own = _tops(self.modules, f.display)
        reachable: dict[str, bool] = {}
        words = []
        for name, tops in names.items():
            if "" in tops or "" in own or tops & own:
                words.append(name)
                continue
            for top in tops:
                hit = reachable.get(top)
                if hit is None:
                    hit = reachable[top] = top in text
                if hit:
                    words.append(name)
                    break
        if not words:
            return False
        key = frozenset(words)
        pattern = self._patterns.get(key)
        if pattern is None:
            # longest first: a name that is a prefix of another must not hide it
            pattern = self._patterns[key] = re.compile(
                "|".join(re.escape(n) for n in sorted(words, key=lambda n: (-len(n), n)))
            )
        return _mentions(text, sorted(words), pattern)


def _add_importers_of_duplicates(
    summaries: dict[str, FileSummary],
    modules: dict[str, tuple[list[str], bool]],
    pending: list[ProjectFile],
    summarizer: Callable[[ProjectFile], Optional[FileSummary]],
) -> None:
    """When one gradient name is registered in two files, whether both end up imported
    together depends on the files that import them: summarise those too (files with an
    import line naming one of the modules, transitively). Nothing to do in most runs."""
    files_of: dict[str, set[str]] = {}
    for display, s in summaries.items():
        for r in s.registrations:
            if r["name"] is not None and r["unconditional"]:
                files_of.setdefault(r["name"], set()).add(display)
    involved = {d for ds in files_of.values() if len(ds) > 1 for d in ds}
    searched: set[str] = set()
    rounds = 0
    while involved and pending and rounds < 8:
        rounds += 1
        words = {m.rsplit(".", 1)[-1] for d in involved for m in modules.get(d, ([], False))[0]} - searched
        if not words:
            break
        searched |= words
        pattern = re.compile(
            r"^[ \t]*(?:from|import)\b[^\n]*\b(?:" + "|".join(re.escape(w) for w in sorted(words)) + r")\b",
            re.MULTILINE,
        )
        rest: list[ProjectFile] = []
        involved = set()
        for f in pending:
            if pattern.search(f.text or ""):
                s = summarizer(f)
                if s is not None:
                    summaries[f.display] = s
                    involved.add(f.display)
                    continue
            rest.append(f)
        pending[:] = rest


def _same_stem(a: str, b: str) -> bool:
    return a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0]


def signature_from_summary(name: str, sig: dict[str, Any], module: str) -> "CgSignature":
    from tfgradlint.analysis import CgSignature

    kwargs: dict[str, Any] = {}
    fields = CgSignature.__dataclass_fields__
    if "outer_wrapped" in fields:
        kwargs["outer_wrapped"] = bool(sig.get("outer_wrapped"))
    if "reads_inputs" in fields and sig.get("reads_inputs") is not None:
        kwargs["reads_inputs"] = tuple(sig["reads_inputs"])
    return CgSignature(
        name=name,
        params=tuple(sig["params"]),
        required=sig["required"],
        has_star_args=sig["star_args"],
        has_star_kwargs=sig["star_kwargs"],
        kwonly=tuple(sig["kwonly"]),
        grad_accepts_variables=sig.get("grad_accepts_variables"),
        local=None,
        module=module,
        **kwargs,
    )


def _raw_target(index: "ModuleIndex", expr: "cst.BaseExpression", scope: "Scope", depth: int = 0) -> Optional[str]:
    """The import target a Name/Attribute chain refers to, as written (no canonical form),
    or ``"*name"`` when its head is bound nowhere in the module (a star import may bind it)."""
    from tfgradlint.index import FunctionInfo, dotted_name

    dotted = dotted_name(expr)
    if dotted is None or depth > 8:
        return None
    head, _, rest = dotted.partition(".")
    suffix = ("." + rest) if rest else ""
    s = scope
    while s is not None:
        if s.kind == "class" and s is not scope:
            s = s.parent
            continue
        if head in s.imports and head not in s.bindings:
            return s.imports[head] + suffix
        if head in s.bindings:
            values = s.bindings[head]
            if len(values) == 1 and values[0] is not None and head not in s.imports:
                target = _raw_target(index, values[0], s, depth + 1)
                if target is not None and not target.startswith("*"):
                    return target + suffix
            return None
        if isinstance(s, FunctionInfo) and head in s.param_names():
            return None
        s = s.parent
    if head in _BUILTINS:
        return None
    return "*" + dotted
