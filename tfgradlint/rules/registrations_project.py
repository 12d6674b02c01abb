"""TGL403, TGL404: gradient registrations seen across the whole project.

``tf.RegisterGradient("Name")`` writes to one process-wide registry. An override map that
names a gradient nobody registers fails when gradients are computed (TGL403); a name
registered twice, or a name TensorFlow already registers for its own op, fails at import
(TGL404). Both need every file of the run: the project index (tfgradlint/project.py) holds
the registrations of the other files; this module's own come from its LibCST index.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterator, Optional

import libcst as cst

from tfgradlint.index import Scope, may_qualify_to
from tfgradlint.project import REGISTRATION_CALLS, ProjectIndex, module_candidates
from tfgradlint.rules.base import Invalid, Rule, Valid

_CONDITIONAL = (
    cst.IndentedBlock,
    cst.If,
    cst.Else,
    cst.Try,
    cst.TryStar,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Finally,
    cst.For,
    cst.While,
    cst.With,
    cst.Match,
    cst.Lambda,
    cst.IfExp,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)
_CONDITIONAL_TYPES = frozenset(_CONDITIONAL)
_REGISTRATION_NAMES = frozenset(REGISTRATION_CALLS)


def string_value(ctx, expr: cst.BaseExpression, scope: Scope) -> Optional[str]:
    """A string literal, or a module-level name bound once to one."""
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(expr, cst.Name):
        s, values = ctx.index.lookup(expr.value, scope)
        if s is ctx.index.scope and len(values) == 1 and isinstance(values[0], (cst.SimpleString, cst.ConcatenatedString)):
            value = values[0].evaluated_value
            return value if isinstance(value, str) else None
    return None


class Registration:
    def __init__(self, call: cst.Call, kind: str, name: Optional[str], callee: str, unconditional: bool, in_try: bool):
        self.call = call
        self.kind = kind
        self.name = name
        self.callee = callee
        self.unconditional = unconditional
        self.in_try = in_try


def _placement(ctx, call: cst.Call) -> tuple[bool, bool]:
    """(runs once at import, inside a ``try`` body)."""
    unconditional = True
    in_try = False
    prev: cst.CSTNode = call
    # LibCST's node classes have no subclasses: the ``isinstance`` tests by type, in sets
    for anc in ctx.index.ancestors(call):
        kind = type(anc)
        if (kind is cst.Try or kind is cst.TryStar) and prev is anc.body:  # type: ignore[attr-defined]
            in_try = True
        if kind is cst.FunctionDef or kind is cst.ClassDef:
            if type(prev) is not cst.Decorator:
                unconditional = False
        elif kind in _CONDITIONAL_TYPES:
            unconditional = False
        prev = anc
    return unconditional, in_try


def registrations(ctx) -> Iterator[Registration]:
    """The gradient registrations of this module, in source order."""
    for site in ctx.index.calls:
        call = site.node
        if not may_qualify_to(call.func, _REGISTRATION_NAMES):
            continue  # ``x.y.f(...)`` that no registration call is: no lookup needed
        q = ctx.index.qualified(call.func, site.scope)
        kind = REGISTRATION_CALLS.get(q or "")
        if kind is None:
            continue
        arg = call.args[0].value if call.args and call.args[0].keyword is None and not call.args[0].star else None
        if arg is None:
            for a in call.args:
                if a.keyword is not None and a.keyword.value == "op_type":
                    arg = a.value
        if arg is None:
            continue
        callee = q.rsplit(".", 1)[-1] if q else "RegisterGradient"
        unconditional, in_try = _placement(ctx, call)
        yield Registration(call, kind, string_value(ctx, arg, site.scope), callee, unconditional, in_try)


def _anchor(ctx, call: cst.Call) -> cst.CSTNode:
    """The decorator when the registration is one, else the call."""
    parent = ctx.index.parent(call)
    return parent if isinstance(parent, cst.Decorator) else call


def _project(ctx) -> ProjectIndex:
    if ctx.project is not None:
        return ctx.project
    # No project index but the whole project (a rule's own example): this text is the project.
    return ProjectIndex.from_source(ctx.source, ctx.filename)


def _is_tensorflow_source(ctx) -> bool:
    """The module is part of TensorFlow itself: its registrations are the built-in ones."""
    if ctx.project is not None and ctx.filename in ctx.project.modules:
        return ctx.project.is_tensorflow_source(ctx.filename)
    if ctx.module_name and (ctx.module_name == "tensorflow" or ctx.module_name.startswith("tensorflow.")):
        return True
    path = Path(ctx.filename)
    if path.is_file():
        return any(m.startswith("tensorflow.") for m in module_candidates(path, []))
    return False


def _builtin_gradients() -> frozenset[str]:
    from tfgradlint import opdata

    return opdata.ops_with_gradient()


_REG_PREAMBLE = """\
import tensorflow as tf

@tf.RegisterGradient("StraightThrough")
def _straight_through(op, grad):
    return grad
"""


class OverrideTargetUnregistered(Rule):
    code = "TGL403"
    name = "override-target-unregistered"
    severity = "error"
    triggers = ("gradient_override_map",)
    needs_project = True
    summary = "A gradient_override_map value names a gradient that nothing registers."
    what = (
        "Finds a value of a `gradient_override_map({...})` dict (a string literal) that no "
        "`tf.RegisterGradient(\"...\")` in the linted files registers and that is not a gradient "
        "TensorFlow registers itself (such as `\"Identity\"`)."
    )
    why = (
        "The override map only names a gradient; the name is looked up in the gradient "
        "registry when gradients are computed. A misspelt or never-registered name fails "
        "then, far from the `with` block. Needs the whole project: silent when a single file "
        "is linted, and silent when some registration's name is not a literal."
    )
    tensorflow_error = "`LookupError: No gradient defined for operation '...' (op type: ...)`."
    example = _REG_PREAMBLE + """
g = tf.compat.v1.get_default_graph()
with g.gradient_override_map({"Sign": "StraightThru"}):
    y = tf.sign(x)
"""
    instead = _REG_PREAMBLE + """
g = tf.compat.v1.get_default_graph()
with g.gradient_override_map({"Sign": "StraightThrough"}):
    y = tf.sign(x)
"""
    valid = (
        Valid(_REG_PREAMBLE + "g = tf.Graph()\nwith g.gradient_override_map({'Sign': 'StraightThrough'}):\n    pass\n"),
        # a gradient TensorFlow registers itself
        Valid("import tensorflow as tf\ng = tf.Graph()\nwith g.gradient_override_map({'Sign': 'Identity'}):\n    pass\n"),
        # a registration whose name is not a literal: the registered names are unknown
        Valid(
            "import tensorflow as tf\nimport uuid\nname = 'Grad' + str(uuid.uuid4())\n"
            "tf.RegisterGradient(name)(lambda op, grad: grad)\n"
            "with tf.Graph().gradient_override_map({'Sign': 'MyGrad'}):\n    pass\n"
        ),
        # a value that is not a literal
        Valid("import tensorflow as tf\ndef f(g, name):\n    with g.gradient_override_map({'Sign': name}):\n        pass\n"),
    )
    invalid = (
        Invalid(
            _REG_PREAMBLE + "g = tf.compat.v1.get_default_graph()\n"
            "with g.gradient_override_map({'Sign': 'StraightThru'}):\n    y = tf.sign(x)\n",
            line=7,
            message_contains=("'StraightThru'", "'Sign'", "LookupError", "'StraightThrough'"),
        ),
        Invalid(
            "import tensorflow as tf\nOVERRIDES = {'Round': 'RoundSTE'}\ng = tf.Graph()\n"
            "with g.gradient_override_map(OVERRIDES):\n    pass\n",
            line=2,
            message_contains=("'RoundSTE'",),
        ),
    )

    def check(self, ctx) -> None:
        project = _project(ctx)
        if project.has_dynamic_registration:
            return
        registered = project.registered_names()
        # this module's own registrations (also when it has no summary)
        for reg in registrations(ctx):
            if reg.name is None:
                return
            registered.add(reg.name)
        builtin = _builtin_gradients()
        for site in ctx.index.calls:
            call = site.node
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "gradient_override_map"):
                continue
            mapping = self._mapping(ctx, call, site.scope)
            if mapping is None:
                continue
            map_scope, d = mapping
            for el in d.elements:
                if not isinstance(el, cst.DictElement):
                    continue
                value = string_value(ctx, el.value, map_scope)
                if value is None or value in registered or value in builtin:
                    continue
                key = string_value(ctx, el.key, map_scope)
                near = sorted(n for n in registered | builtin if n.casefold() == value.casefold())
                if not near:
                    near = difflib.get_close_matches(value, sorted(registered), n=1, cutoff=0.75)
                hint = f"did you mean '{near[0]}'? " if near else ""
                ctx.report(
                    el.value,
                    f"gradient_override_map maps {f'{key!r}' if key else 'an op'} to gradient "
                    f"'{value}', which no RegisterGradient in the linted files registers: computing "
                    f"gradients raises LookupError; {hint}register it with "
                    f"@tf.RegisterGradient('{value}') or name a registered gradient",
                )

    @staticmethod
    def _mapping(ctx, call: cst.Call, scope: Scope) -> Optional[tuple[Scope, cst.Dict]]:
        arg = None
        for a in call.args:
            if a.star:
                return None
            if a.keyword is None or a.keyword.value == "op_type_map":
                arg = a.value
                break
        if isinstance(arg, cst.Dict):
            return scope, arg
        if isinstance(arg, cst.Name):
            s, values = ctx.index.lookup(arg.value, scope)
            if s is not None and len(values) == 1 and isinstance(values[0], cst.Dict):
                return s, values[0]
        return None


class DuplicateGradientRegistration(Rule):
    code = "TGL404"
    name = "duplicate-gradient-registration"
    severity = "error"
    triggers = ("RegisterGradient", "no_gradient", "NotDifferentiable", "NoGradient")
    summary = "A gradient name is registered twice, or is an op type TensorFlow already registers."
    what = (
        "Finds `tf.RegisterGradient(\"Name\")` (and `tf.no_gradient`) for a name that another "
        "registration of the project already registers when both run at import (module level, "
        "not inside `if`/`try`/functions; in one file, or in two files one of which imports "
        "the other or that a third file imports), or for a TensorFlow op type that already "
        "has a built-in gradient (`\"Relu\"`, `\"MaxPoolGrad\"`)."
    )
    why = (
        "The gradient registry accepts one function per name, for the whole process: the "
        "second registration raises at import. To change the gradient of a built-in op, "
        "register under a new name and map the op to it with `gradient_override_map` (graph "
        "mode) or use `tf.custom_gradient`."
    )
    tensorflow_error = "`KeyError: \"Registering two gradient with name 'Relu'! (Previous registration was in ...)\"`."
    example = """
import tensorflow as tf

@tf.RegisterGradient("Relu")
def _relu_grad(op, grad):
    return grad
"""
    instead = """
import tensorflow as tf

@tf.RegisterGradient("ReluStraightThrough")
def _relu_grad(op, grad):
    return grad

g = tf.compat.v1.get_default_graph()
with g.gradient_override_map({"Relu": "ReluStraightThrough"}):
    ...
"""
    valid = (
        Valid(_REG_PREAMBLE),
        # guarded: the KeyError is expected and caught
        Valid(
            "import tensorflow as tf\ntry:\n    @tf.RegisterGradient('Relu')\n    def _g(op, grad):\n"
            "        return grad\nexcept KeyError:\n    pass\n"
        ),
        # exclusive branches
        Valid(
            "import tensorflow as tf\nimport sys\nif sys.version_info >= (3, 9):\n"
            "    tf.RegisterGradient('MyGrad')(lambda op, g: g)\nelse:\n"
            "    tf.RegisterGradient('MyGrad')(lambda op, g: g)\n"
        ),
        # inside a function: when and how often it runs is unknown
        Valid(
            "import tensorflow as tf\ndef register():\n    tf.RegisterGradient('MyGrad')(lambda op, g: g)\n"
            "tf.RegisterGradient('MyGrad')(lambda op, g: g)\n"
        ),
        # a name that is not a literal
        Valid("import tensorflow as tf\ntf.RegisterGradient(name)(f)\ntf.RegisterGradient(name)(g)\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\n@tf.RegisterGradient('Relu')\ndef _relu_grad(op, grad):\n    return grad\n",
            line=3,
            message_contains=("'Relu'", "built-in", "KeyError", "gradient_override_map"),
        ),
        Invalid(
            _REG_PREAMBLE + "\n@tf.RegisterGradient('StraightThrough')\ndef _again(op, grad):\n    return grad\n",
            line=7,
            message_contains=("'StraightThrough'", "twice", "KeyError"),
        ),
        Invalid(
            "from tensorflow.python.framework import ops\nops.NotDifferentiable('MyOp')\n"
            "ops.RegisterGradient('MyOp')(lambda op, g: g)\n",
            line=3,
            message_contains=("'MyOp'",),
        ),
    )

    def check(self, ctx) -> None:
        builtin = _builtin_gradients()
        tensorflow_itself = None
        seen_here: set[str] = set()
        project = ctx.project if ctx.whole_project else None
        for reg in registrations(ctx):
            if reg.name is None:
                continue
            if reg.name in builtin and not reg.in_try:
                if tensorflow_itself is None:
                    tensorflow_itself = _is_tensorflow_source(ctx)
                if not tensorflow_itself:
                    ctx.report(
                        _anchor(ctx, reg.call),
                        f"{reg.callee}('{reg.name}') registers a gradient for '{reg.name}', which "
                        f"already has a built-in TensorFlow gradient: importing this module raises "
                        f"KeyError ('Registering two gradient with name'); register the new "
                        f"gradient under a new name and map '{reg.name}' to it with "
                        f"gradient_override_map (or use tf.custom_gradient)",
                    )
                    continue
            if not reg.unconditional:
                continue
            if reg.name in seen_here:
                ctx.report(
                    _anchor(ctx, reg.call),
                    f"gradient '{reg.name}' is registered twice in this module: importing it raises "
                    f"KeyError ('Registering two gradient with name'); remove one registration or "
                    f"use a different name",
                )
                continue
            seen_here.add(reg.name)
            if project is not None:
                earlier = self._earlier_elsewhere(ctx, project, reg.name)
                if earlier is not None:
                    ctx.report(
                        _anchor(ctx, reg.call),
                        f"gradient '{reg.name}' is already registered in {earlier}, and both modules "
                        f"are imported together: the second import raises KeyError ('Registering two "
                        f"gradient with name'); register it once and import it where needed",
                    )

    @staticmethod
    def _earlier_elsewhere(ctx, project: ProjectIndex, name: str) -> Optional[str]:
        """Where ``name`` was registered first, when this module's registration is the second."""
        for display, reg in project.registrations():
            if display == ctx.filename or reg["name"] != name or not reg["unconditional"]:
                continue
            how = project.loaded_together(ctx.filename, display)
            if how == "a imports b" or (how == "both imported" and display < ctx.filename):
                return f"{display}:{reg['line']}"
        return None
