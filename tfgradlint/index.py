"""The module index: one pass over a module that records what the rules ask about.

Rules query this index instead of re-walking the tree: import aliases (resolved to canonical
TensorFlow names), scopes and their bindings, functions with their decorators, parameters and
``return`` statements, classes with their bases and ``self.<attr>`` assignments, every call
(with its scope and the ``with`` blocks around it), assignments, ``with`` statements, and the
custom-gradient (cg) functions with their grad fns.

It is deliberately not LibCST's generic ScopeProvider/QualifiedNameProvider: those cost about
ten times the parse on real code. Names are resolved on demand, only for the expressions a
rule asks about, through the scope chain recorded here.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence, Union

import libcst as cst

from tfgradlint import names
from tfgradlint.walk import LEAVES, iter_children

_BUILTINS = frozenset(dir(builtins))
FunctionNode = Union[cst.FunctionDef, cst.Lambda]

# A binding whose value is not a single expression (a parameter, a loop target, ...).
UNKNOWN = None


# LibCST's node classes have no subclasses: ``type(x) is cst.Name`` is ``isinstance(x,
# cst.Name)`` without ``ABCMeta.__instancecheck__`` (a Python-level call each time).
_Attribute = cst.Attribute
_Name = cst.Name


def dotted_name(expr: cst.BaseExpression) -> Optional[str]:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    t = type(expr)
    if t is _Name:
        return expr.value  # type: ignore[attr-defined]
    if t is not _Attribute:
        return None
    parts: list[str] = []
    while type(expr) is _Attribute:
        parts.append(expr.attr.value)  # type: ignore[attr-defined]
        expr = expr.value  # type: ignore[attr-defined]
    if type(expr) is _Name:
        parts.append(expr.value)  # type: ignore[attr-defined]
        return ".".join(reversed(parts))
    return None


_LAST_PARTS: dict[frozenset[str], frozenset[str]] = {}


def may_qualify_to(expr: cst.BaseExpression, targets: frozenset[str]) -> bool:
    """False when ``ModuleIndex.qualified(expr, scope)`` cannot be one of ``targets``, for
    any scope: an attribute ``x.y.f`` resolves to a name whose last part is ``f``, which
    ``names.canonical`` keeps (but for ``ResourceVariable``, which becomes ``Variable``).
    True for anything else (a plain name may be an alias of anything)."""
    if type(expr) is not _Attribute:
        return True
    parts = _LAST_PARTS.get(targets)
    if parts is None:
        found = {t.rsplit(".", 1)[-1] for t in targets}
        if "Variable" in found:
            found.add("ResourceVariable")
        parts = _LAST_PARTS[targets] = frozenset(found)
    return expr.attr.value in parts  # type: ignore[attr-defined]


def _import_name(node: Union[cst.Attribute, cst.Name]) -> str:
    return dotted_name(node) or ""


@dataclass(eq=False)
class Scope:
    """The module, a function (``def`` or ``lambda``) or a class body."""

    node: cst.CSTNode
    parent: Optional["Scope"]
    kind: str  # "module" | "function" | "class"
    imports: dict[str, str] = field(default_factory=dict)
    # name -> the values assigned to it in this scope (UNKNOWN for non-expression bindings)
    bindings: dict[str, list[Optional[cst.BaseExpression]]] = field(default_factory=dict)
    calls: list["CallSite"] = field(default_factory=list)
    functions: dict[str, "FunctionInfo"] = field(default_factory=dict)
    lambdas: list["FunctionInfo"] = field(default_factory=list)
    classes: dict[str, "ClassInfo"] = field(default_factory=dict)
    withs: list[cst.With] = field(default_factory=list)
    assigns: list[cst.CSTNode] = field(default_factory=list)

    def bind(self, name: str, value: Optional[cst.BaseExpression]) -> None:
        self.bindings.setdefault(name, []).append(value)

    def function_scope(self) -> Optional["FunctionInfo"]:
        scope: Optional[Scope] = self
        while scope is not None and not isinstance(scope, FunctionInfo):
            scope = scope.parent
        return scope


@dataclass(eq=False)
class FunctionInfo(Scope):
    name: Optional[str] = None  # None for a lambda
    cls: Optional["ClassInfo"] = None  # the class whose body defines this method
    returns: list[cst.Return] = field(default_factory=list)
    yields: int = 0
    raises: int = 0

    @property
    def is_lambda(self) -> bool:
        return isinstance(self.node, cst.Lambda)

    @property
    def params(self) -> cst.Parameters:
        return self.node.params  # type: ignore[union-attr]

    @property
    def decorators(self) -> Sequence[cst.Decorator]:
        return () if self.is_lambda else self.node.decorators  # type: ignore[union-attr]

    @property
    def is_method(self) -> bool:
        return self.cls is not None

    def positional_params(self) -> list[cst.Param]:
        p = self.params
        return list(p.posonly_params) + list(p.params)

    def has_star_args(self) -> bool:
        return isinstance(self.params.star_arg, cst.Param)

    def has_star_kwargs(self) -> bool:
        return self.params.star_kwarg is not None

    def param_names(self) -> list[str]:
        return list(self._param_names())

    def _param_names(self) -> tuple[str, ...]:
        names_ = self.__dict__.get("_param_names_cache")
        if names_ is None:
            p = self.params
            out = [q.name.value for q in self.positional_params()]
            if isinstance(p.star_arg, cst.Param):
                out.append(p.star_arg.name.value)
            out += [q.name.value for q in p.kwonly_params]
            if p.star_kwarg is not None:
                out.append(p.star_kwarg.name.value)
            names_ = self.__dict__["_param_names_cache"] = tuple(out)
            self.__dict__["_param_set_cache"] = frozenset(out)
        return names_

    def param_set(self) -> frozenset[str]:
        """The names of the parameters (as ``param_names``), for membership tests."""
        found = self.__dict__.get("_param_set_cache")
        if found is None:
            self._param_names()
            found = self.__dict__["_param_set_cache"]
        return found

    def is_staticmethod(self, index: "ModuleIndex") -> bool:
        return any(
            dotted_name(d.decorator) in ("staticmethod",) for d in self.decorators
        )

    def bound_params(self, index: "ModuleIndex") -> list[cst.Param]:
        """Positional parameters less a method's bound ``self``/``cls``."""
        params = self.positional_params()
        if self.is_method and not self.is_staticmethod(index) and params:
            params = params[1:]
        return params


@dataclass(eq=False)
class ClassInfo(Scope):
    name: str = ""
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    # self.<attr> = <value> in any method of the class
    attr_values: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)


@dataclass(eq=False)
class CallSite:
    node: cst.Call
    scope: Scope
    withs: tuple[cst.With, ...]  # enclosing ``with`` statements, outermost first


@dataclass(eq=False)
class GradFn:
    """The callable a cg function returns as the second item of its result."""

    node: FunctionNode
    info: FunctionInfo

    @property
    def name(self) -> str:
        return self.info.name or "<lambda>"

    def upstream_params(self) -> list[cst.Param]:
        return [p for p in self.info.positional_params() if p.name.value != "variables"]

    def variables_param(self) -> Optional[cst.Param]:
        p = self.info.params
        for q in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
            if q.name.value == "variables":
                return q
        return None

    def return_values(self) -> list[Optional[cst.BaseExpression]]:
        """Returned expressions (None for a bare ``return``)."""
        if isinstance(self.node, cst.Lambda):
            return [self.node.body]
        return [r.value for r in self.info.returns]


@dataclass(eq=False)
class CgReturn:
    node: cst.Return
    output: Optional[cst.BaseExpression]  # the first item of the returned pair
    grad_expr: Optional[cst.BaseExpression]  # the second item
    grad: Optional[GradFn]  # resolved grad fn, when the second item is one


@dataclass(eq=False)
class CgFunction:
    """A function decorated with, or wrapped by, ``tf.custom_gradient``."""

    info: FunctionInfo
    # The decorator, or the ``tf.custom_gradient(...)`` call that wraps the function.
    marker: cst.CSTNode
    # Names under which the cg callable can be called in its scope.
    call_names: list[str]
    returns: list[CgReturn] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.info.name or "<lambda>"

    def inputs(self, index: "ModuleIndex") -> list[cst.Param]:
        return self.info.bound_params(index)

    def grad_fns(self) -> list[GradFn]:
        seen: list[GradFn] = []
        for r in self.returns:
            if r.grad is not None and all(r.grad.node is not g.node for g in seen):
                seen.append(r.grad)
        return seen


class ModuleIndex:
    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.scope = Scope(module, None, "module")
        self.functions: list[FunctionInfo] = []
        self.classes: list[ClassInfo] = []
        self.calls: list[CallSite] = []
        self.cg_functions: list[CgFunction] = []
        self._scope_of: dict[int, Scope] = {}
        # child id -> parent, for every node below the module: recorded by the one walk
        self._parents: dict[int, cst.CSTNode] = {}
        # (id(expr), id(scope)) -> (qualified name, expr, scope): the bindings and imports
        # do not change once the index is built
        self._qualified_memo: dict[tuple[int, int], tuple[Optional[str], object, object]] = {}
        _IndexBuilder(self).walk(module)
        self._find_cg_functions()

    def __del__(self) -> None:
        # Scopes and call sites point up to their scope (``parent``, ``cls``, ``scope``),
        # which lists them: cycles that would keep every node they hold (all of the tree)
        # alive until the cyclic GC finds them. Once the index is gone, cut them: the tree
        # is freed now, and the collector never has to walk it.
        try:
            for s in self.all_scopes():
                s.parent = None
                if isinstance(s, FunctionInfo):
                    s.cls = None
            for site in self.calls:
                site.scope = None  # type: ignore[assignment]
        except Exception:  # pragma: no cover - a half-built index
            pass

    # -- queries -----------------------------------------------------------------------

    def all_scopes(self) -> Iterator[Scope]:
        yield self.scope
        yield from self.functions
        yield from self.classes

    def enclosing_functions(self, scope: Scope) -> Iterator[FunctionInfo]:
        """``scope`` (when a function) and the functions around it, innermost first."""
        s: Optional[Scope] = scope
        while s is not None:
            if isinstance(s, FunctionInfo):
                yield s
            s = s.parent

    def decorator_names(self, fn: FunctionInfo) -> list[Optional[str]]:
        """Canonical names of ``fn``'s decorators (a call decorator by its callee)."""
        out = []
        for dec in fn.decorators:
            expr = dec.decorator
            if isinstance(expr, cst.Call):
                expr = expr.func
            out.append(self.qualified(expr, fn.parent))
        return out

    def tape_withs(self, withs: Sequence[cst.With], scope: Scope) -> list[tuple[cst.With, cst.WithItem]]:
        """The ``with tf.GradientTape(...)`` items among ``withs``."""
        out = []
        for w in withs:
            for item in w.items:
                call = item.item
                if isinstance(call, cst.Call) and self.qualified(call.func, scope) in names.GRADIENT_TAPE:
                    out.append((w, item))
        return out

    def scope_of(self, node: cst.CSTNode) -> Optional[Scope]:
        """The scope a def/lambda/class node creates."""
        return self._scope_of.get(id(node))

    def qualified(self, expr: cst.BaseExpression, scope: Optional[Scope]) -> Optional[str]:
        """The canonical qualified name ``expr`` refers to from ``scope``, or None."""
        scope = scope or self.scope
        key = (id(expr), id(scope))
        # remembered with the expression and scope themselves (their ids stay theirs)
        found = self._qualified_memo.get(key)
        if found is not None:
            return found[0]
        name = self._qualified(expr, scope, 0)
        self._qualified_memo[key] = (name, expr, scope)
        return name

    def _qualified(self, expr: cst.BaseExpression, scope: Scope, depth: int) -> Optional[str]:
        dotted = dotted_name(expr)
        if dotted is None or depth > 8:
            return None
        head, _, rest = dotted.partition(".")
        s: Optional[Scope] = scope
        while s is not None:
            if s.kind == "class" and s is not scope:
                s = s.parent  # class bodies do not enclose their methods
                continue
            if head in s.imports and head not in s.bindings:
                base = s.imports[head]
                return names.canonical(base + ("." + rest if rest else ""))
            if head in s.bindings:
                values = s.bindings[head]
                # `cg = tf.custom_gradient` makes an alias; anything else shadows.
                if len(values) == 1 and values[0] is not None and head not in s.imports:
                    target = self._qualified(values[0], s, depth + 1)
                    if target is not None:
                        return names.canonical(target + ("." + rest if rest else ""))
                return None
            if isinstance(s, FunctionInfo) and head in s.param_set():
                return None
            s = s.parent
        if head in _BUILTINS:
            return "builtins." + dotted
        return None

    def lookup(self, name: str, scope: Scope) -> tuple[Optional[Scope], list[Optional[cst.BaseExpression]]]:
        """The scope that binds ``name`` as seen from ``scope``, and its assigned values."""
        s: Optional[Scope] = scope
        while s is not None:
            if s.kind == "class" and s is not scope:
                s = s.parent
                continue
            if isinstance(s, FunctionInfo) and name in s.param_set():
                return s, [UNKNOWN]
            if name in s.bindings or name in s.imports:
                return s, list(s.bindings.get(name, [UNKNOWN]))
            s = s.parent
        return None, []

    def resolve_function(self, name: str, scope: Scope) -> Optional[FunctionInfo]:
        """The ``def`` (or lambda assigned once) that ``name`` refers to from ``scope``."""
        s, values = self.lookup(name, scope)
        if s is None:
            return None
        if name in s.functions and not values:
            return s.functions[name]
        if name in s.functions and all(v is UNKNOWN for v in values) and len(values) == 1:
            return s.functions[name]
        if len(values) == 1 and isinstance(values[0], cst.Lambda):
            return self.scope_of(values[0])  # type: ignore[return-value]
        return None

    def parent(self, node: cst.CSTNode) -> Optional[cst.CSTNode]:
        return self._parents.get(id(node))

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        parents = self._parents
        p = parents.get(id(node))
        while p is not None:
            yield p
            p = parents.get(id(p))

    def class_bases(self, cls: ClassInfo) -> list[str]:
        """Canonical names of ``cls``'s bases, following classes of this module."""
        out: list[str] = []
        seen: set[int] = set()
        todo = [cls]
        while todo:
            c = todo.pop()
            if id(c) in seen:
                continue
            seen.add(id(c))
            for arg in c.node.bases:  # type: ignore[attr-defined]
                q = self.qualified(arg.value, c.parent)
                if q is not None:
                    out.append(q)
                    continue
                local = dotted_name(arg.value)
                if local and c.parent is not None and local in c.parent.classes:
                    todo.append(c.parent.classes[local])
                elif local:
                    out.append("?" + local)
        return out

    def is_layer_class(self, cls: ClassInfo, keras3_only: bool = False) -> bool:
        """True when ``cls`` subclasses a Keras layer/model or tf.Module (via this module).

        ``keras3_only``: only Keras 3 (``keras``/``tf.keras``), not ``tf_keras`` or tf.Module.
        """
        for q in self.class_bases(cls):
            if keras3_only and not q.startswith("keras."):
                continue
            if q in names.KERAS_LAYER_BASES:
                return True
            # keras.layers.Dense and the other built-in layers are layers too
            if q.startswith(("keras.layers.", "tf_keras.layers.")) and q.rsplit(".", 1)[1][:1].isupper():
                return True
        return False

    def is_cg_decorator(self, dec: cst.Decorator, scope: Scope) -> bool:
        return self.qualified(dec.decorator, scope) in names.CUSTOM_GRADIENT

    def cg_by_name(self, name: str, scope: Scope) -> Optional[CgFunction]:
        """The cg function a bare name refers to from ``scope`` (same module)."""
        s, values = self.lookup(name, scope)
        if s is None:
            return None
        for cg in self.cg_functions:
            if name in cg.call_names and self._defining_scope(cg) is s:
                return cg
        return None

    def _defining_scope(self, cg: CgFunction) -> Optional[Scope]:
        return cg.info.parent

    # -- cg functions ---------------------------------------------------------------------

    def _find_cg_functions(self) -> None:
        for fn in self.functions:
            if fn.is_lambda:
                continue
            for dec in fn.decorators:
                if self.is_cg_decorator(dec, fn.parent or self.scope):
                    self._add_cg(fn, dec, [fn.name or ""])
                    break
        # The call form: f = tf.custom_gradient(g) / tf.custom_gradient(f=g)
        for site in self.calls:
            call = site.node
            func = call.func
            if not may_qualify_to(func, names.CUSTOM_GRADIENT):
                continue  # ``x.y.f(...)``: no lookup needed
            if self.qualified(func, site.scope) not in names.CUSTOM_GRADIENT:
                continue
            arg = None
            for a in call.args:
                if a.keyword is None or a.keyword.value == "f":
                    arg = a.value
                    break
            if not isinstance(arg, cst.Name):
                continue
            fn = self.resolve_function(arg.value, site.scope)
            if fn is None or fn.is_lambda:
                continue
            if any(cg.info is fn for cg in self.cg_functions):
                continue
            aliases = []
            parent = self.parent(call)
            if isinstance(parent, cst.Assign):
                for t in parent.targets:
                    if isinstance(t.target, cst.Name):
                        aliases.append(t.target.value)
            self._add_cg(fn, call, aliases)

    def _add_cg(self, fn: FunctionInfo, marker: cst.CSTNode, call_names: list[str]) -> None:
        cg = CgFunction(fn, marker, [n for n in call_names if n])
        for ret in fn.returns:
            value = ret.value
            output = grad_expr = None
            grad = None
            if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == 2 and not any(
                isinstance(e, cst.StarredElement) for e in value.elements
            ):
                output = value.elements[0].value
                grad_expr = value.elements[1].value
                grad = self._grad_fn(grad_expr, fn)
            cg.returns.append(CgReturn(ret, output, grad_expr, grad))
        self.cg_functions.append(cg)

    def _grad_fn(self, expr: cst.BaseExpression, fn: FunctionInfo) -> Optional[GradFn]:
        if isinstance(expr, cst.Lambda):
            info = self.scope_of(expr)
            return GradFn(expr, info) if isinstance(info, FunctionInfo) else None
        if isinstance(expr, cst.Name):
            target = self.resolve_function(expr.value, fn)
            if target is not None and self._is_within(target, fn):
                return GradFn(target.node, target)
        return None

    @staticmethod
    def _is_within(inner: Scope, outer: Scope) -> bool:
        s: Optional[Scope] = inner.parent
        while s is not None:
            if s is outer:
                return True
            s = s.parent
        return False


_HANDLERS: dict[type, dict[type, Callable[..., Optional[bool]]]] = {}


class _IndexBuilder:
    """One pass over the tree (tfgradlint.walk: LibCST's visitors rebuild every node).

    ``visit_<Node>`` handlers run before a node's children; a handler returning False
    walks (or skips) the children itself.
    """

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.scope: Scope = index.scope
        self.with_stack: list[list[cst.With]] = [[]]
        self.parents = index._parents
        # the handlers by node type, as functions: bound methods kept on the builder would
        # make it (and the index, and the tree) garbage that only the cyclic GC frees
        cls = type(self)
        handlers = _HANDLERS.get(cls)
        if handlers is None:
            handlers = _HANDLERS[cls] = {
                getattr(cst, name[len("visit_") :]): getattr(cls, name)
                for name in dir(cls)
                if name.startswith("visit_")
            }
        self.handlers = handlers

    def walk(self, node: cst.CSTNode) -> None:
        # The parent of every child is recorded here; a handler that walks the children
        # itself records those it does not walk (``_record``, ``visit_With``).
        children = iter_children(node)
        parents = self.parents
        walk = self.walk
        handler = self.handlers.get(type(node))
        if handler is None:
            for child in children:
                parents[id(child)] = node
                if type(child) not in LEAVES:  # nothing below, no handler
                    walk(child)
            return
        for child in children:
            parents[id(child)] = node
        if handler(self, node) is False:
            return
        for child in children:
            if type(child) not in LEAVES:
                walk(child)

    def _record(self, node: Optional[cst.CSTNode]) -> None:
        """The parents below ``node``, which the index does not visit."""
        if node is None:
            return
        parents = self.parents
        stack = [node]
        while stack:
            n = stack.pop()
            for child in iter_children(n):
                parents[id(child)] = n
                stack.append(child)

    # -- scopes -------------------------------------------------------------------------

    def _push(self, scope: Scope) -> None:
        self.index._scope_of[id(scope.node)] = scope
        self.scope = scope
        self.with_stack.append([])

    def _pop(self) -> None:
        assert self.scope.parent is not None
        self.scope = self.scope.parent
        self.with_stack.pop()

    def _bind_params(self, params: cst.Parameters) -> None:
        pass  # parameters are looked up through FunctionInfo.param_names()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        parent = self.scope
        cls = parent if isinstance(parent, ClassInfo) else None
        info = FunctionInfo(node, parent, "function", name=node.name.value, cls=cls)
        parent.functions[node.name.value] = info
        parent.bind(node.name.value, UNKNOWN)
        if cls is not None:
            cls.methods[node.name.value] = info
        self.index.functions.append(info)
        # Decorators and defaults are evaluated in the enclosing scope.
        for dec in node.decorators:
            self.walk(dec)
        self._record(node.type_parameters)
        self.walk(node.params)
        if node.returns is not None:
            self.walk(node.returns)
        self._push(info)
        self.walk(node.body)
        self._pop()
        return False  # type: ignore[return-value]

    def visit_Lambda(self, node: cst.Lambda) -> None:
        info = FunctionInfo(node, self.scope, "function")
        self.scope.lambdas.append(info)
        self.index.functions.append(info)
        self.walk(node.params)
        self._push(info)
        self.walk(node.body)
        self._pop()
        return False  # type: ignore[return-value]

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        parent = self.scope
        info = ClassInfo(node, parent, "class", name=node.name.value)
        parent.classes[node.name.value] = info
        parent.bind(node.name.value, UNKNOWN)
        self.index.classes.append(info)
        for dec in node.decorators:
            self.walk(dec)
        self._record(node.type_parameters)
        for arg in list(node.bases) + list(node.keywords):
            self.walk(arg)
        self._push(info)
        self.walk(node.body)
        self._pop()
        return False  # type: ignore[return-value]

    # -- imports ------------------------------------------------------------------------

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = _import_name(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.scope.imports[alias.asname.name.value] = full
            else:
                head = full.split(".")[0]
                self.scope.imports[head] = head

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            # Relative imports name this project's modules, not TensorFlow's; record the
            # names as bound so they shadow nothing by accident.
            if not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    local = alias.evaluated_alias or alias.evaluated_name
                    self.scope.imports[local.split(".")[0]] = "." * len(node.relative) + (
                        (_import_name(node.module) + ".") if node.module else ""
                    ) + alias.evaluated_name
            return
        module = _import_name(node.module)
        for alias in node.names:
            local = alias.evaluated_alias or alias.evaluated_name
            self.scope.imports[local] = module + "." + alias.evaluated_name

    # -- bindings -----------------------------------------------------------------------

    def _bind_target(self, target: cst.BaseExpression, value: Optional[cst.BaseExpression]) -> None:
        if isinstance(target, cst.Name):
            self.scope.bind(target.value, value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            pairwise = (
                isinstance(value, (cst.Tuple, cst.List))
                and len(value.elements) == len(elements)
                and not any(isinstance(e, cst.StarredElement) for e in elements)
                and not any(isinstance(e, cst.StarredElement) for e in value.elements)
            )
            for i, el in enumerate(elements):
                sub = value.elements[i].value if pairwise else UNKNOWN  # type: ignore[union-attr]
                self._bind_target(el.value, sub)
        elif isinstance(target, cst.StarredElement):
            self._bind_target(target.value, UNKNOWN)
        elif isinstance(target, cst.Attribute) and value is not None:
            self._record_self_attr(target, value)

    def _record_self_attr(self, target: cst.Attribute, value: cst.BaseExpression) -> None:
        fn = self.scope
        if not isinstance(fn, FunctionInfo) or fn.cls is None:
            return
        if not (isinstance(target.value, cst.Name) and fn.positional_params()):
            return
        if target.value.value != fn.positional_params()[0].name.value:
            return
        fn.cls.attr_values.setdefault(target.attr.value, []).append(value)

    def visit_Assign(self, node: cst.Assign) -> None:
        self.scope.assigns.append(node)
        for t in node.targets:
            self._bind_target(t.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.scope.assigns.append(node)
        if node.value is not None:
            self._bind_target(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self.scope.bind(node.target.value, UNKNOWN)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        if isinstance(node.target, cst.Name):
            self.scope.bind(node.target.value, node.value)

    def visit_For(self, node: cst.For) -> None:
        self._bind_target(node.target, UNKNOWN)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind_target(node.target, UNKNOWN)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self.scope.bind(node.name.name.value, UNKNOWN)

    def visit_Global(self, node: cst.Global) -> None:
        for n in node.names:
            self.scope.bind(n.name.value, UNKNOWN)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        for n in node.names:
            self.scope.bind(n.name.value, UNKNOWN)

    # -- with, calls, returns --------------------------------------------------------------

    def visit_With(self, node: cst.With) -> None:
        parents = self.parents
        for item in node.items:
            for child in iter_children(item):
                parents[id(child)] = item
            if item.asname is not None:
                for child in iter_children(item.asname):
                    parents[id(child)] = item.asname
            self.walk(item.item)
            if item.asname is not None:
                self._bind_target(item.asname.name, UNKNOWN)
                self.walk(item.asname.name)
        self.scope.withs.append(node)
        self.with_stack[-1].append(node)
        self.walk(node.body)
        self.with_stack[-1].pop()
        return False  # type: ignore[return-value]

    def visit_Call(self, node: cst.Call) -> None:
        site = CallSite(node, self.scope, tuple(self.with_stack[-1]))
        self.scope.calls.append(site)
        self.index.calls.append(site)

    def visit_Return(self, node: cst.Return) -> None:
        if isinstance(self.scope, FunctionInfo):
            self.scope.returns.append(node)

    def visit_Yield(self, node: cst.Yield) -> None:
        if isinstance(self.scope, FunctionInfo):
            self.scope.yields += 1

    def visit_Raise(self, node: cst.Raise) -> None:
        if isinstance(self.scope, FunctionInfo):
            self.scope.raises += 1
