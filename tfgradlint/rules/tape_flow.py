"""Flow analysis of ``tf.GradientTape`` objects inside one function (or module) body.

The TGL3xx rules (tfgradlint/rules/tape.py) ask, for every ``<tape>.gradient(...)``,
``.jacobian(...)`` and ``.batch_jacobian(...)`` call: which tape object(s) can the receiver
name hold here, has that tape certainly been used already (on *every* path that reaches the
call), and is the call inside the ``with`` block of that same tape?

It is a small abstract interpreter over the statements of one scope. The state maps a name to
the set of ``(tape binding, used)`` pairs it can hold, or to TOP (unknown). Joins are unions,
so "already used" is a *must* fact: a call is a reuse only when every path that reaches it
has used the tape, which keeps correlated conditions (``if a: ... if not a: ...``) silent.
Loops get a second pass from the state at the end of an iteration, so a single call in a loop
body is a reuse when the tape was created before the loop.

Anything the analysis cannot follow makes the name TOP: the tape passed to a function,
aliased, stored, re-bound by a nested function (``nonlocal``/``global``), referenced from a
nested ``def``/``lambda``, touched in a ``try`` body whose handlers resume, or used under a
context manager that may swallow the error (``assertRaises``). TOP never yields a finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

import libcst as cst

from tfgradlint.walk import iter_children

from tfgradlint import names
from tfgradlint.index import FunctionInfo, ModuleIndex, Scope, dotted_name

TAPE_CTORS = frozenset(names.GRADIENT_TAPE | {"tensorflow.autodiff.GradientTape"})
GRAD_METHODS = frozenset({"gradient", "jacobian", "batch_jacobian"})
# Uses of a tape that neither consume it nor let it escape.
_HARMLESS_METHODS = frozenset({"watch", "watched_variables", "stop_recording"})
# Context managers that may swallow the exception a reused tape raises.
_SUPPRESSING_CM = re.compile(r"(?i)raise|suppress|catch|ignore|except|error|expect")
# Exception types that certainly do not catch the RuntimeError of a reused tape.
_UNRELATED_EXCEPTIONS = frozenset(
    {
        "ValueError",
        "TypeError",
        "KeyError",
        "IndexError",
        "AttributeError",
        "ImportError",
        "ModuleNotFoundError",
        "StopIteration",
        "ZeroDivisionError",
        "NameError",
        "OSError",
        "IOError",
        "FileNotFoundError",
        "LookupError",
        "ArithmeticError",
        "AssertionError",
        "KeyboardInterrupt",
        "UnicodeError",
    }
)

_MAX_LOOP_ITERATIONS = 12


@dataclass(eq=False)
class TapeBinding:
    """One place that creates a tape: ``with tf.GradientTape(...) as t`` or ``t = tf.GradientTape(...)``."""

    name: str
    ctor: cst.Call
    persistent: Optional[bool]  # None when it cannot be known statically
    with_stmt: Optional[cst.With]  # the ``with`` that binds it (with ... as name)
    scope: Scope


class _Top:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "TOP"


TOP = _Top()
# name -> frozenset of (binding, first-use call or None) | TOP
Pair = tuple[TapeBinding, Optional[cst.Call]]
Value = Union[frozenset, _Top]
State = dict[str, Value]


@dataclass(eq=False)
class TapeCall:
    """A ``<name>.gradient/jacobian/batch_jacobian(...)`` call and what is known at it."""

    node: cst.Call
    method: str
    receiver: str
    scope: Scope
    # Every tape binding the receiver can hold here; None when unknown (TOP somewhere).
    bindings: Optional[set[TapeBinding]] = field(default_factory=set)
    # The earlier call that certainly consumed the (non-persistent) tape, if any.
    reuse_of: Optional[cst.Call] = None
    # True while every observation placed the call inside its own tape's with block.
    in_own_block: Optional[bool] = None
    suppressed: bool = False  # under assertRaises / try-except that catches the error
    in_loop: bool = False

    @property
    def binding(self) -> Optional[TapeBinding]:
        """The single tape binding the receiver certainly holds, else None."""
        if self.bindings is not None and len(self.bindings) == 1:
            return next(iter(self.bindings))
        return None


@dataclass
class TapeAnalysis:
    bindings: list[TapeBinding]
    calls: list[TapeCall]

    def calls_on(self, binding: TapeBinding) -> list[TapeCall]:
        return [c for c in self.calls if c.binding is binding]


def analysis(ctx) -> TapeAnalysis:
    """The tape analysis of ``ctx``'s module (computed once, shared by the TGL3xx rules)."""
    index = ctx.index
    cached = getattr(index, "_tgl_tape_analysis", None)
    if cached is None:
        cached = _analyse_module(index, ctx.source)
        index._tgl_tape_analysis = cached  # type: ignore[attr-defined]
    return cached


def poisoned_names(index: ModuleIndex, source: Optional[str] = None) -> frozenset[str]:
    """Names declared global/nonlocal anywhere in the module (cached on the index).
    ``source``: the text the module was parsed from (whole, or with statements left out):
    without either word in it there is nothing to look for."""
    cached = getattr(index, "_tgl_poisoned", None)
    if cached is None:
        if source is not None and "global" not in source and "nonlocal" not in source:
            cached = frozenset()
        else:
            cached = _global_and_nonlocal_names(index.module)
        index._tgl_poisoned = cached  # type: ignore[attr-defined]
    return cached


def is_tape_ctor(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope) -> bool:
    return isinstance(expr, cst.Call) and index.qualified(expr.func, scope) in TAPE_CTORS


def persistence(call: cst.Call) -> Optional[bool]:
    """``persistent=`` of a GradientTape constructor call: True/False, or None when unknown."""
    for i, arg in enumerate(call.args):
        if arg.star:
            return None
        if (arg.keyword is None and i == 0) or (arg.keyword is not None and arg.keyword.value == "persistent"):
            value = arg.value
            if isinstance(value, cst.Name) and value.value in ("True", "False"):
                return value.value == "True"
            return None
    return False


def _analyse_module(index: ModuleIndex, source: Optional[str] = None) -> TapeAnalysis:
    out = TapeAnalysis([], [])
    poisoned = poisoned_names(index, source)
    scopes: list[Scope] = [index.scope] + [f for f in index.functions if not f.is_lambda]
    for scope in scopes:
        if not _creates_tapes(index, scope):
            continue
        interp = _Interpreter(index, scope, poisoned)
        try:
            if isinstance(scope.node, cst.Module):
                interp.run_block(scope.node.body, {})
            else:
                interp.run_suite(scope.node.body, {})  # type: ignore[attr-defined]
        except _GiveUp:
            continue
        out.bindings.extend(interp.bindings.values())
        out.calls.extend(interp.finish())
    return out


def _creates_tapes(index: ModuleIndex, scope: Scope) -> bool:
    for w in scope.withs:
        for item in w.items:
            if is_tape_ctor(index, item.item, scope):
                return True
    for node in scope.assigns:
        if isinstance(node, (cst.Assign, cst.AnnAssign)) and node.value is not None:
            if is_tape_ctor(index, node.value, scope):
                return True
    return False


class _GiveUp(Exception):
    pass


# Expressions with no parts (``iter_children`` is empty) and no case in ``eval``.
_LEAF_VALUES = frozenset({cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary, cst.Ellipsis})


# By node type, which case of ``_global_and_nonlocal_names`` a node is (each type's
# ``isinstance`` answers, found once): 1 global/nonlocal, 2 a line of small statements,
# 3 a compound statement or clause, 0 anything else.
_STATEMENT_KINDS: dict[type, int] = {}


def _statement_kind(node: cst.CSTNode) -> int:
    if isinstance(node, (cst.Global, cst.Nonlocal)):
        kind = 1
    elif isinstance(node, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
        kind = 2
    elif isinstance(node, (cst.BaseCompoundStatement, cst.ExceptHandler, cst.ExceptStarHandler,
                           cst.Else, cst.Finally, cst.MatchCase)):
        kind = 3
    else:
        kind = 0
    _STATEMENT_KINDS[type(node)] = kind
    return kind


def _global_and_nonlocal_names(module: cst.Module) -> frozenset[str]:
    """Names some scope declares ``global`` or ``nonlocal`` (a walk over statements only)."""
    found: set[str] = set()
    stack: list = [module.body]
    kinds = _STATEMENT_KINDS
    while stack:
        items = stack.pop()
        for node in items:
            kind = kinds.get(type(node))
            if kind is None:
                kind = _statement_kind(node)
            if kind == 1:
                found.update(n.name.value for n in node.names)
            elif kind == 2:
                stack.append(node.body)
            elif kind == 3:
                for attr in ("body", "orelse", "handlers", "finalbody", "cases"):
                    part = getattr(node, attr, None)
                    if part is None:
                        continue
                    if isinstance(part, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                        stack.append(part.body)
                    elif isinstance(part, (list, tuple)):
                        stack.append(part)
                    else:
                        stack.append([part])
    return frozenset(found)


def _names_in(node: cst.CSTNode) -> frozenset[str]:
    """Every identifier that may be a variable reference or binding inside ``node``."""
    return frozenset(_collect_names(node))


def _collect_names(node: cst.CSTNode) -> set[str]:
    # Names, less attribute names (``a.b`` gives ``a``) and keyword names (``f(k=v)`` gives ``v``).
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            found.add(n.value)
        elif isinstance(n, cst.Attribute):
            stack.append(n.value)
        elif isinstance(n, cst.Arg):
            stack.append(n.value)
        else:
            stack.extend(iter_children(n))
    return found


def join(a: Optional[State], b: Optional[State]) -> Optional[State]:
    if a is None:
        return None if b is None else dict(b)
    if b is None:
        return dict(a)
    out: State = {}
    for name in set(a) | set(b):
        va, vb = a.get(name), b.get(name)
        if va is None or vb is None or va is TOP or vb is TOP:
            out[name] = TOP  # a tape on one path, something else (or unknown) on another
        else:
            out[name] = va | vb  # type: ignore[operator]
    return out


def join_all(states: Iterable[Optional[State]]) -> Optional[State]:
    out: Optional[State] = None
    for s in states:
        out = join(out, s)
    return out


def taint(state: Optional[State], touched: Iterable[str]) -> Optional[State]:
    if state is None:
        return None
    out = dict(state)
    for name in touched:
        out[name] = TOP
    return out


@dataclass
class _Loop:
    breaks: list[State] = field(default_factory=list)
    continues: list[State] = field(default_factory=list)


@dataclass
class _Observation:
    value: Value | None  # None: the receiver is not a known tape here
    active: tuple[TapeBinding, ...]
    suppressed: bool
    in_loop: bool


class _Interpreter:
    def __init__(self, index: ModuleIndex, scope: Scope, poisoned: frozenset[str]) -> None:
        self.index = index
        self.scope = scope
        # names some function declares global/nonlocal: another scope may rebind them
        self.poisoned = set(poisoned)
        self.bindings: dict[int, TapeBinding] = {}
        self.observations: dict[int, tuple[cst.Call, str, str, list[_Observation]]] = {}
        self.reuses: dict[int, cst.Call] = {}
        self.loops: list[_Loop] = []
        self.active: tuple[TapeBinding, ...] = ()  # tape with-blocks around the statement
        self.suppressed = 0  # depth of try/assertRaises that may catch a reuse error
        self.loop_depth = 0
        self.python_loop_depth = 0  # loops that certainly repeat the body in Python
        self.steps = 0
        self._names: dict[int, frozenset[str]] = {}

    def names_in(self, node: cst.CSTNode) -> frozenset[str]:
        """``_names_in`` cached for this analysis (loops revisit the same nodes)."""
        found = self._names.get(id(node))
        if found is None:
            found = self._names[id(node)] = _names_in(node)
        return found

    # -- results --------------------------------------------------------------------------

    def finish(self) -> list[TapeCall]:
        calls = []
        for key, (node, method, receiver, obs) in self.observations.items():
            call = TapeCall(node, method, receiver, self.scope)
            bindings: Optional[set[TapeBinding]] = set()
            in_block: Optional[bool] = True
            for o in obs:
                if o.value is None or o.value is TOP:
                    bindings = None
                    in_block = False
                    continue
                values = {b for b, _ in o.value}  # type: ignore[union-attr]
                if bindings is not None:
                    bindings |= values
                if not (len(values) == 1 and next(iter(values)) in o.active):
                    in_block = False
                call.suppressed = call.suppressed or o.suppressed
                call.in_loop = call.in_loop or o.in_loop
            call.bindings = bindings
            call.in_own_block = bool(in_block) and bindings is not None and len(bindings) == 1
            call.reuse_of = self.reuses.get(key)
            calls.append(call)
        return calls

    # -- statements -----------------------------------------------------------------------

    def _tick(self) -> None:
        self.steps += 1
        if self.steps > 200_000:
            raise _GiveUp()

    def run_block(self, statements: Sequence[cst.CSTNode], state: Optional[State]) -> Optional[State]:
        for stmt in statements:
            if state is None:
                return None
            state = self.run_stmt(stmt, state)
        return state

    def run_suite(self, suite: cst.BaseSuite, state: Optional[State]) -> Optional[State]:
        if isinstance(suite, cst.SimpleStatementSuite):
            return self.run_small(suite.body, state)
        return self.run_block(suite.body, state)  # type: ignore[attr-defined]

    def run_small(self, smalls: Sequence[cst.BaseSmallStatement], state: Optional[State]) -> Optional[State]:
        for small in smalls:
            if state is None:
                return None
            state = self.run_small_stmt(small, state)
        return state

    def run_stmt(self, stmt: cst.CSTNode, state: State) -> Optional[State]:
        self._tick()
        if isinstance(stmt, cst.SimpleStatementLine):
            return self.run_small(stmt.body, state)
        if isinstance(stmt, cst.If):
            state = self.eval(stmt.test, state)
            if state is None:
                return None
            then = self.run_suite(stmt.body, dict(state))
            other: Optional[State]
            if stmt.orelse is None:
                other = state
            elif isinstance(stmt.orelse, cst.If):
                other = self.run_stmt(stmt.orelse, dict(state))
            else:
                other = self.run_suite(stmt.orelse.body, dict(state))
            return join(then, other)
        if isinstance(stmt, cst.For):
            return self.run_for(stmt, state)
        if isinstance(stmt, cst.While):
            return self.run_while(stmt, state)
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            return self.run_try(stmt, state)
        if isinstance(stmt, cst.With):
            return self.run_with(stmt, state)
        if isinstance(stmt, cst.FunctionDef):
            for dec in stmt.decorators:
                state = self.eval(dec.decorator, state)
                if state is None:
                    return None
            state = self.eval_params(stmt.params, state)
            if state is None:
                return None
            state = self.nested_scope(stmt, state)
            return self.bind_name(stmt.name.value, None, state, None)
        if isinstance(stmt, cst.ClassDef):
            for dec in stmt.decorators:
                state = self.eval(dec.decorator, state)
                if state is None:
                    return None
            for arg in list(stmt.bases) + list(stmt.keywords):
                state = self.eval(arg.value, state)
                if state is None:
                    return None
            state = self.nested_scope(stmt, state)
            return self.bind_name(stmt.name.value, None, state, None)
        # match statements and anything new: give up on every name they touch
        return taint(state, self.names_in(stmt))

    def run_small_stmt(self, stmt: cst.BaseSmallStatement, state: State) -> Optional[State]:
        if isinstance(stmt, cst.Expr):
            return self.eval(stmt.value, state)
        if isinstance(stmt, cst.Assign):
            s = self.eval(stmt.value, state)
            for target in stmt.targets:
                if s is None:
                    return None
                s = self.assign(target.target, stmt.value if len(stmt.targets) == 1 else None, s)
            return s
        if isinstance(stmt, cst.AnnAssign):
            s: Optional[State] = state
            if stmt.value is not None:
                s = self.eval(stmt.value, state)
                if s is None:
                    return None
                return self.assign(stmt.target, stmt.value, s)
            return s
        if isinstance(stmt, cst.AugAssign):
            s = self.eval(stmt.value, state)
            if s is None:
                return None
            if isinstance(stmt.target, cst.Name):
                return self.bind_name(stmt.target.value, None, s, None, unknown=stmt.target.value in s)
            return self.eval(stmt.target, s)
        if isinstance(stmt, cst.Return):
            if stmt.value is not None:
                self.eval(stmt.value, state)
            return None
        if isinstance(stmt, cst.Raise):
            if stmt.exc is not None:
                self.eval(stmt.exc, state)
            return None
        if isinstance(stmt, cst.Break):
            if self.loops:
                self.loops[-1].breaks.append(state)
            return None
        if isinstance(stmt, cst.Continue):
            if self.loops:
                self.loops[-1].continues.append(state)
            return None
        if isinstance(stmt, cst.Del):
            return taint(state, self.names_in(stmt.target))
        if isinstance(stmt, cst.Assert):
            s = self.eval(stmt.test, state)
            if s is not None and stmt.msg is not None:
                s = join(s, self.eval(stmt.msg, dict(s)))
            return s
        if isinstance(stmt, (cst.Global, cst.Nonlocal)):
            names_ = [n.name.value for n in stmt.names]
            self.poisoned.update(names_)
            return taint(state, names_)
        if isinstance(stmt, (cst.Import, cst.ImportFrom)):
            return taint(state, self.names_in(stmt))
        return state  # pass

    # -- bindings -------------------------------------------------------------------------

    def binding_for(self, name: str, ctor: cst.Call, with_stmt: Optional[cst.With]) -> TapeBinding:
        b = self.bindings.get(id(ctor))
        if b is None:
            b = TapeBinding(name, ctor, persistence(ctor), with_stmt, self.scope)
            self.bindings[id(ctor)] = b
        return b

    def bind_name(
        self,
        name: str,
        binding: Optional[TapeBinding],
        state: State,
        _node: Optional[cst.CSTNode],
        unknown: bool = False,
    ) -> State:
        out = dict(state)
        if name in self.poisoned or unknown:
            out[name] = TOP
        elif binding is not None:
            out[name] = frozenset({(binding, None)})
        else:
            out.pop(name, None)  # not a tape any more
        return out

    def assign(self, target: cst.BaseExpression, value: Optional[cst.BaseExpression], state: State) -> Optional[State]:
        if isinstance(target, cst.Name):
            binding = None
            if value is not None and is_tape_ctor(self.index, value, self.scope):
                binding = self.binding_for(target.value, value, None)  # type: ignore[arg-type]
            return self.bind_name(target.value, binding, state, target)
        if isinstance(target, (cst.Tuple, cst.List)):
            s: Optional[State] = state
            for el in target.elements:
                if s is None:
                    return None
                s = self.assign(el.value, None, s)
            return s
        if isinstance(target, cst.StarredElement):
            return self.assign(target.value, None, state)
        # attribute or subscript store: evaluates the object (and the index)
        return self.eval(target, state)

    def nested_scope(self, node: cst.CSTNode, state: State) -> State:
        """A nested def/lambda/class that refers to a tape name: its calls happen at unknown times."""
        if not state:
            return state
        info = self.index.scope_of(node)
        local: set[str] = set()
        if isinstance(info, FunctionInfo):
            local = set(info.bindings) | set(info.param_names())
        free = set(self.names_in(node.body)) - local  # type: ignore[attr-defined]
        touched = [n for n in state if n in free]
        return taint(state, touched) if touched else state  # type: ignore[return-value]

    # -- compound statements --------------------------------------------------------------

    def _loop(self, body_runner, entry: State, repeats_in_python: bool) -> tuple[Optional[State], _Loop]:
        """Run a loop body to a fixpoint; returns (state after the loop's head, exits)."""
        head: State = entry
        loop = _Loop()
        for _ in range(_MAX_LOOP_ITERATIONS):
            loop = _Loop()
            self.loops.append(loop)
            self.loop_depth += 1
            end = body_runner(dict(head))
            self.loop_depth -= 1
            self.loops.pop()
            back = join_all([end, *loop.continues])
            new_head = join(entry, back)
            if new_head == head:
                break
            head = new_head  # type: ignore[assignment]
        else:
            raise _GiveUp()
        # A second pass from the state at the end of an iteration: the paths that run the
        # body again after it ran once. Only findings come out of it.
        back = join_all([end, *loop.continues])
        if back is not None and repeats_in_python:
            saved = (self.loops, self.loop_depth)
            self.loops = self.loops + [_Loop()]
            self.loop_depth += 1
            self.python_loop_depth += 1
            body_runner(dict(back))
            self.python_loop_depth -= 1
            self.loops, self.loop_depth = saved
        return head, loop

    def _repeats_in_python(self, iterable: Optional[cst.BaseExpression]) -> bool:
        """False when the loop may be a tf.while_loop under AutoGraph (traced once)."""
        if iterable is not None:
            if isinstance(iterable, (cst.List, cst.Tuple)):
                return len(iterable.elements) > 1 or any(
                    isinstance(e, cst.StarredElement) for e in iterable.elements
                )
            if isinstance(iterable, cst.Call):
                q = self.index.qualified(iterable.func, self.scope)
                if q is not None and (q.startswith("tensorflow.") or q.startswith("keras.")):
                    return False
                if q == "builtins.range" and len(iterable.args) == 1:
                    v = iterable.args[0].value
                    if isinstance(v, cst.Integer) and int(v.value, 0) <= 1:
                        return False
        # AutoGraph turns loops over tensors into graph loops traced once: inside a
        # tf.function only a loop over a literal collection is certainly unrolled.
        if self._in_tf_function():
            return isinstance(iterable, (cst.List, cst.Tuple))
        return True

    def _in_tf_function(self) -> bool:
        for fn in self.index.enclosing_functions(self.scope):
            if fn.is_lambda:
                continue
            if any(n in names.TF_FUNCTION for n in self.index.decorator_names(fn)):
                return True
        return False

    def run_for(self, stmt: cst.For, state: State) -> Optional[State]:
        s = self.eval(stmt.iter, state)
        if s is None:
            return None

        def body(st: State) -> Optional[State]:
            st2 = self.assign(stmt.target, None, st)
            return self.run_suite(stmt.body, st2)

        head, loop = self._loop(body, s, self._repeats_in_python(stmt.iter))
        after = head
        if stmt.orelse is not None:
            after = self.run_suite(stmt.orelse.body, dict(head)) if head is not None else None
        return join_all([after, *loop.breaks])

    def run_while(self, stmt: cst.While, state: State) -> Optional[State]:
        forever = isinstance(stmt.test, cst.Name) and stmt.test.value == "True"

        def body(st: State) -> Optional[State]:
            st2 = self.eval(stmt.test, st)
            if st2 is None:
                return None
            return self.run_suite(stmt.body, st2)

        head, loop = self._loop(body, state, self._repeats_in_python(None))
        if head is not None:
            head = self.eval(stmt.test, dict(head))
        after = None if forever else head
        if stmt.orelse is not None and after is not None:
            after = self.run_suite(stmt.orelse.body, after)
        return join_all([after, *loop.breaks])

    def run_try(self, stmt: Union[cst.Try, cst.TryStar], state: State) -> Optional[State]:
        catches = any(self._may_catch_reuse(h) for h in stmt.handlers)
        self.suppressed += 1 if catches else 0
        body_out = self.run_suite(stmt.body, dict(state))
        self.suppressed -= 1 if catches else 0
        # An exception may leave the body at any point: every name it touches is unknown.
        handler_in = taint(state, self.names_in(stmt.body))
        outs: list[Optional[State]] = []
        if stmt.orelse is not None:
            outs.append(self.run_suite(stmt.orelse.body, body_out) if body_out is not None else None)
        else:
            outs.append(body_out)
        for h in stmt.handlers:
            hs = handler_in
            if hs is not None and h.type is not None:
                hs = self.eval(h.type, dict(hs))
            if hs is not None and h.name is not None and isinstance(h.name.name, cst.Name):
                hs = self.bind_name(h.name.name.value, None, hs, None)
            outs.append(self.run_suite(h.body, hs))
        out = join_all(outs)
        if stmt.finalbody is not None:
            if out is None:
                # the finally block still runs (on the way out): analyse it for its calls
                self.run_suite(stmt.finalbody.body, taint(state, self.names_in(stmt)))
                return None
            out = self.run_suite(stmt.finalbody.body, out)
        return out

    def _may_catch_reuse(self, handler: Union[cst.ExceptHandler, cst.ExceptStarHandler]) -> bool:
        if handler.type is None:
            return True
        types = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
        for t in types:
            expr = t.value if isinstance(t, cst.Element) else t
            dotted = dotted_name(expr)  # type: ignore[arg-type]
            if dotted is None or dotted not in _UNRELATED_EXCEPTIONS:
                return True
        return False

    def run_with(self, stmt: cst.With, state: State) -> Optional[State]:
        s: Optional[State] = state
        active = list(self.active)
        suppressing = False
        for item in stmt.items:
            if s is None:
                return None
            expr = item.item
            if not (isinstance(expr, cst.Name) and expr.value in s):
                s = self.eval(expr, s)
                if s is None:
                    return None
            target = item.asname.name if item.asname is not None else None
            if is_tape_ctor(self.index, expr, self.scope):
                if isinstance(target, cst.Name):
                    b = self.binding_for(target.value, expr, stmt)  # type: ignore[arg-type]
                    s = self.bind_name(target.value, b, s, target)
                    if s.get(target.value) is not TOP:
                        active.append(b)
                elif target is not None:
                    s = self.assign(target, None, s)
                continue
            # `with tape:` re-enters a tape: a fresh recording (a used tape is usable again)
            if isinstance(expr, cst.Name) and expr.value in s:
                value = s[expr.value]
                if value is not TOP:
                    s = dict(s)
                    fresh = frozenset((b, None) for b, _ in value)  # type: ignore[union-attr]
                    s[expr.value] = fresh
                    if len(fresh) == 1:
                        active.append(next(iter(fresh))[0])
                if target is not None:
                    s = self.assign(target, None, s)
                continue
            # `with tape.stop_recording():` pauses the tape for its body
            if (
                isinstance(expr, cst.Call)
                and isinstance(expr.func, cst.Attribute)
                and expr.func.attr.value == "stop_recording"
                and isinstance(expr.func.value, cst.Name)
            ):
                value = s.get(expr.func.value.value)
                if value is not None and value is not TOP:
                    stopped = {b for b, _ in value}  # type: ignore[union-attr]
                    active = [b for b in active if b not in stopped]
            if isinstance(expr, cst.Call) and _SUPPRESSING_CM.search((dotted_name(expr.func) or "").rsplit(".", 1)[-1]):
                suppressing = True
            if target is not None:
                s = self.assign(target, None, s)
        if s is None:
            return None
        saved = self.active
        self.active = tuple(active)
        if suppressing:
            self.suppressed += 1
        out = self.run_suite(stmt.body, dict(s))
        if suppressing:
            self.suppressed -= 1
            # the manager may swallow an exception raised anywhere in the body
            out = join(out, taint(s, self.names_in(stmt.body)))
        self.active = saved
        return out

    # -- expressions ----------------------------------------------------------------------

    def eval_params(self, params: cst.Parameters, state: State) -> Optional[State]:
        s: Optional[State] = state
        for p in list(params.posonly_params) + list(params.params) + list(params.kwonly_params):
            if p.default is not None and s is not None:
                s = self.eval(p.default, s)
        return s

    def eval(self, expr: cst.CSTNode, state: State) -> Optional[State]:
        """The state after evaluating ``expr`` (in Python's order of evaluation)."""
        self._tick()
        # LibCST's node classes have no subclasses: ``type(expr) is`` is ``isinstance``
        # without ``ABCMeta.__instancecheck__``, for the common kinds of expression
        kind = type(expr)
        if kind is cst.Name:
            if expr.value in state and state[expr.value] is not TOP:  # type: ignore[attr-defined]
                s = dict(state)
                s[expr.value] = TOP  # type: ignore[attr-defined]  # a bare use: the tape escapes or is aliased
                return s
            return state
        if kind is cst.Call:
            return self.eval_call(expr, state)  # type: ignore[arg-type]
        if kind is cst.Attribute:
            if type(expr.value) is cst.Name and expr.value.value in state:  # type: ignore[attr-defined]
                if expr.attr.value in ("_persistent", "_recording"):  # type: ignore[attr-defined]
                    return state
                return self.eval(expr.value, state)  # type: ignore[attr-defined]  # e.g. `g = tape.gradient` escapes
            return self.eval(expr.value, state)  # type: ignore[attr-defined]
        if kind in _LEAF_VALUES:
            return state  # nothing below: as the loop over its parts at the end
        if isinstance(expr, cst.IfExp):
            s = self.eval(expr.test, state)
            if s is None:
                return None
            return join(self.eval(expr.body, dict(s)), self.eval(expr.orelse, dict(s)))
        if isinstance(expr, cst.BooleanOperation):
            s = self.eval(expr.left, state)
            if s is None:
                return None
            return join(s, self.eval(expr.right, dict(s)))
        if isinstance(expr, cst.Lambda):
            s = self.eval_params(expr.params, state)
            return self.nested_scope(expr, s) if s is not None else None
        if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            return self.eval_comprehension(expr, state)
        if isinstance(expr, cst.NamedExpr):
            s = self.eval(expr.value, state)
            if s is None:
                return None
            return self.assign(expr.target, expr.value, s)
        if isinstance(expr, cst.Arg):
            return self.eval(expr.value, state)
        # anything else: its parts, in source order (which is Python's for these nodes)
        s2: Optional[State] = state
        for child in iter_children(expr):
            if s2 is None:
                return None
            s2 = self.eval(child, s2)
        return s2

    def eval_comprehension(self, expr: cst.CSTNode, state: State) -> Optional[State]:
        comp: cst.CompFor = expr.for_in  # type: ignore[attr-defined]
        s = self.eval(comp.iter, state)
        if s is None:
            return None
        targets: set[str] = set()
        c: Optional[cst.CompFor] = comp
        while c is not None:
            targets |= self.names_in(c.target)
            c = c.inner_for_in
        if any(t in s for t in targets):
            return taint(s, self.names_in(expr))

        def body(st: State) -> Optional[State]:
            c: Optional[cst.CompFor] = comp
            first = True
            cur: Optional[State] = st
            while c is not None and cur is not None:
                if not first:
                    cur = self.eval(c.iter, cur)
                first = False
                for cond in c.ifs:
                    if cur is None:
                        break
                    cur = join(cur, self.eval(cond.test, dict(cur)))
                c = c.inner_for_in
            if cur is None:
                return None
            if isinstance(expr, cst.DictComp):
                cur = self.eval(expr.key, cur)
                return self.eval(expr.value, cur) if cur is not None else None
            return self.eval(expr.elt, cur)  # type: ignore[attr-defined]

        # AutoGraph leaves comprehensions alone: they always run in Python
        repeats = not (
            isinstance(comp.iter, (cst.List, cst.Tuple)) and len(comp.iter.elements) <= 1 and not comp.inner_for_in
        )
        head, _ = self._loop(body, s, repeats)
        return head

    def eval_call(self, call: cst.Call, state: State) -> Optional[State]:
        func = call.func
        receiver = func.value.value if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) else None
        method = func.attr.value if isinstance(func, cst.Attribute) else None
        s: Optional[State] = state
        tracked = receiver is not None and receiver in state
        # Python evaluates the callee, then the arguments, then calls: `tape.gradient`
        # itself is not an escape of the tape.
        if not (tracked and (method in GRAD_METHODS or method in _HARMLESS_METHODS)):
            s = self.eval(func, state)
            if s is None:
                return None
        for arg in call.args:
            if s is None:
                return None
            s = self.eval(arg.value, s)
        if s is None:
            return None
        if receiver is not None and method in GRAD_METHODS:
            self.observe(call, method, receiver, s)
            value = s.get(receiver)
            if value is not None and value is not TOP:
                s = dict(s)
                s[receiver] = frozenset((b, first or call) for b, first in value)  # type: ignore[union-attr]
        elif tracked and method not in _HARMLESS_METHODS:
            s = dict(s)
            s[receiver] = TOP  # reset(), a private method, ...: unknown effect
        return s

    def observe(self, call: cst.Call, method: str, receiver: str, state: State) -> None:
        value = state.get(receiver)
        obs = _Observation(value, self.active, self.suppressed > 0, self.loop_depth > 0)
        key = id(call)
        entry = self.observations.get(key)
        if entry is None:
            entry = (call, method, receiver, [])
            self.observations[key] = entry
        entry[3].append(obs)
        if value is None or value is TOP or not value or self.suppressed:
            return
        pairs = list(value)  # type: ignore[arg-type]
        used = all(first is not None for _, first in pairs)
        if used and all(b.persistent is False for b, _ in pairs) and key not in self.reuses:
            # prefer naming an earlier, different call when there is one
            firsts = [f for _, f in pairs if f is not call]
            # the first one observed (a set's order follows the objects' addresses)
            order = {k: i for i, k in enumerate(self.observations)}
            self.reuses[key] = min(firsts, key=lambda f: order.get(id(f), len(order))) if firsts else call
