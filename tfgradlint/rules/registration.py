"""TGL401, TGL402, TGL405: `gradient_override_map` and `RegisterGradient` traps.

`Graph.gradient_override_map({"OpType": "RegisteredName"})` tags the ops created in its
block with ``_gradient_op_type``; only graph-mode symbolic differentiation (``tf.gradients``,
a session graph, the backward pass of a ``tf.function`` differentiated from outside) reads
that tag. A ``GradientTape`` over eager ops, or inside the same ``tf.function``, ignores it.
Keys are case-sensitive op types (checked against the op-type data shipped with the package,
tfgradlint/data/op_types.json). A registered gradient function must return a list or tuple:
anything else is wrapped in a one-element list.

(TGL403 and TGL404, which need the whole project's registrations, live elsewhere.)
"""

from __future__ import annotations

import difflib
import re
from typing import Iterator, Optional

import libcst as cst

from tfgradlint.walk import iter_children

from tfgradlint import names, opdata
from tfgradlint.context import FixSpec
from tfgradlint.index import CallSite, FunctionInfo, Scope, dotted_name
from tfgradlint.rules.base import Invalid, Rule, Valid

# Module-level signs of graph-mode (TF1-style) code: the override map may well work there.
GRAPH_MODE_APIS = frozenset(
    {
        "tensorflow.disable_eager_execution",
        "tensorflow.disable_v2_behavior",
        "tensorflow.Session",
        "tensorflow.InteractiveSession",
        "tensorflow.get_default_session",
        "tensorflow.placeholder",
        "tensorflow.gradients",
        "tensorflow.Graph",
        "tensorflow.reset_default_graph",
        "tensorflow.wrap_function",
        "tensorflow.graph_mode",
        "tensorflow.FuncGraph",
        "tensorflow.func_graph_from_py_func",
        "tensorflow._GradientsHelper",
        "tensorflow.run_deprecated_v1",
        "tensorflow.run_v1_only",
        "tensorflow.deprecated_graph_mode_only",
        "tensorflow.run_in_graph_and_eager_modes",
        "tensorflow.run_all_in_graph_and_eager_modes",
        "tensorflow.build_as_function_and_v1_graph",
        # Keras 2's graph-mode backend
        "keras.backend.get_session",
        "keras.backend.gradients",
        "tf_keras.backend.get_session",
        "tf_keras.backend.gradients",
    }
)
GRAPH_MODE_PREFIXES = ("tensorflow.estimator.", "tensorflow.contrib.", "tensorflow.train.MonitoredSession")
# `with <x>.<method>():` blocks that run in a graph.
GRAPH_WITH_METHODS = frozenset({"as_default", "session", "cached_session", "test_session"})
DEFAULT_GRAPH = "tensorflow.get_default_graph"
ITERATOR_BUILTINS = {"builtins.map": "map", "builtins.filter": "filter", "builtins.zip": "zip"}
# REGISTER_OP names: an optional leading underscore (internal ops), then CamelCase.
_OP_NAME = re.compile(r"_*[A-Z][A-Za-z0-9>_]*")
_LOAD_OP_LIBRARY = frozenset({"tensorflow.load_op_library", "tensorflow.load_library"})

GRAPH, EAGER, UNKNOWN = "graph", "eager", "unknown"


# -- gradient_override_map calls ---------------------------------------------------------


def override_map_calls(ctx) -> Iterator[tuple[CallSite, Optional[cst.BaseExpression]]]:
    """``<graph>.gradient_override_map(<map>)`` calls and their map argument (None if absent)."""
    for site in ctx.index.calls:
        func = site.node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "gradient_override_map"):
            continue
        mapping = None
        for arg in site.node.args:
            if arg.star:
                break
            if arg.keyword is None or arg.keyword.value == "op_type_map":
                mapping = arg.value
                break
        yield site, mapping


def _dict_literal(ctx, expr: Optional[cst.BaseExpression], scope: Scope) -> Optional[cst.Dict]:
    if isinstance(expr, cst.Dict):
        return expr
    if isinstance(expr, cst.Name):
        s, values = ctx.index.lookup(expr.value, scope)
        if s is not None and len(values) == 1 and isinstance(values[0], cst.Dict):
            return values[0]
    return None


def _module_is_graph_code(ctx) -> bool:
    """The module shows signs of TF1 graph-mode code (then TGL401 stays silent)."""
    index = ctx.index
    found = False
    for scope in index.all_scopes():
        if any(v == "tensorflow.compat.v1" for v in scope.imports.values()):
            found = True
            break
    if not found:
        for values in index.scope.bindings.values():
            if len(values) == 1 and values[0] is not None and index.qualified(values[0], index.scope) in (
                "tensorflow.compat.v1",
            ):
                found = True
                break
    if not found:
        for site in index.calls:
            q = index.qualified(site.node.func, site.scope)
            if q is not None and (q in GRAPH_MODE_APIS or q.startswith(GRAPH_MODE_PREFIXES)):
                found = True
                break
    if not found:
        for fn in index.functions:
            if fn.is_lambda:
                continue
            if any(q in GRAPH_MODE_APIS for q in index.decorator_names(fn) if q):
                found = True
                break
    return found


def _is_default_graph(ctx, expr: cst.BaseExpression, scope: Scope) -> bool:
    """``tf.compat.v1.get_default_graph()`` (or a name bound once to it)."""
    index = ctx.index
    if isinstance(expr, cst.Name):
        s, values = index.lookup(expr.value, scope)
        if s is None or len(values) != 1 or values[0] is None:
            return False
        return _is_default_graph(ctx, values[0], s)
    if not (isinstance(expr, cst.Call) and not expr.args):
        return False
    if index.qualified(expr.func, scope) != DEFAULT_GRAPH:
        return False
    # `tf.get_default_graph()` spelled on TensorFlow 2's top-level module does not exist in
    # TF2: that is TF1 code (run under TF1), not the TF2 trap.
    dotted = dotted_name(expr.func) or ""
    head, _, rest = dotted.partition(".")
    s, _ = index.lookup(head, scope)
    if s is not None and s.imports.get(head) == "tensorflow" and rest == "get_default_graph":
        return False
    return True


def _is_traced(ctx, fn: FunctionInfo) -> bool:
    """``fn`` is decorated with (or wrapped by) ``tf.function``."""
    index = ctx.index
    if fn.is_lambda:
        return False
    if any(q in names.TF_FUNCTION for q in index.decorator_names(fn) if q):
        return True
    for site in index.calls:
        call = site.node
        if call.args and index.qualified(call.func, site.scope) in names.TF_FUNCTION:
            arg = call.args[0].value
            if isinstance(arg, cst.Name) and arg.value == fn.name:
                return True
            if isinstance(arg, cst.Attribute) and arg.attr.value == fn.name:
                return True
    return False


def _self_name(fn: FunctionInfo) -> Optional[str]:
    params = fn.positional_params()
    return params[0].name.value if fn.cls is not None and params else None


def _callers(ctx, fn: FunctionInfo) -> Iterator[CallSite]:
    index = ctx.index
    for site in index.calls:
        func = site.node.func
        if isinstance(func, cst.Name) and func.value == fn.name:
            if index.resolve_function(func.value, site.scope) is fn:
                yield site
        elif (
            fn.cls is not None
            and isinstance(func, cst.Attribute)
            and func.attr.value == fn.name
            and isinstance(func.value, cst.Name)
        ):
            for outer in index.enclosing_functions(site.scope):
                if outer.cls is fn.cls:
                    if _self_name(outer) == func.value.value:
                        yield site
                    break


def _is_graph_item(ctx, expr: cst.BaseExpression, scope: Scope) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    func = expr.func
    if isinstance(func, cst.Attribute) and func.attr.value in GRAPH_WITH_METHODS:
        return True
    q = ctx.index.qualified(func, scope)
    return q is not None and (q in GRAPH_MODE_APIS or q.startswith(GRAPH_MODE_PREFIXES))


def _is_tape_item(ctx, expr: cst.BaseExpression, scope: Scope) -> bool:
    return isinstance(expr, cst.Call) and ctx.index.qualified(expr.func, scope) in names.GRADIENT_TAPE


def execution_context(ctx, node: cst.CSTNode, scope: Scope, depth: int = 0, seen: Optional[set] = None) -> str:
    """How the code at ``node`` runs: GRAPH (a graph block: the override map works), EAGER
    (eager code, a Keras ``call``, or under a GradientTape in the same function: the map has
    no effect) or UNKNOWN."""
    index = ctx.index
    seen = set() if seen is None else seen
    tape = False
    crossed_def = False
    for anc in index.ancestors(node):
        if isinstance(anc, cst.With):
            for item in anc.items:
                if _is_graph_item(ctx, item.item, scope):
                    return GRAPH
                if not crossed_def and _is_tape_item(ctx, item.item, scope):
                    tape = True
        elif isinstance(anc, (cst.FunctionDef, cst.Lambda)):
            crossed_def = True
    chain = list(index.enclosing_functions(scope))
    if tape:
        return EAGER
    if any(_is_traced(ctx, fn) for fn in chain):
        # The tape may be outside the tf.function: then the function's backward graph is
        # built symbolically and honours the map.
        return UNKNOWN
    if not chain:
        return EAGER  # module level: runs eagerly at import
    fn = chain[0]
    if fn.is_lambda:
        return UNKNOWN
    if fn.cls is not None and fn.name in ("call", "__call__") and index.is_layer_class(fn.cls):
        return EAGER
    if depth >= 4 or id(fn) in seen:
        return UNKNOWN
    seen.add(id(fn))
    statuses = [execution_context(ctx, site.node, site.scope, depth + 1, seen) for site in _callers(ctx, fn)]
    if GRAPH in statuses:
        return GRAPH
    if EAGER in statuses:
        return EAGER
    return UNKNOWN


def _tape_inside(ctx, with_node: Optional[cst.CSTNode], scope: Scope) -> bool:
    """A ``with tf.GradientTape()`` inside the body of ``with_node`` (not in a nested def):
    the tape, not the graph's gradient machinery, differentiates the block."""
    if not isinstance(with_node, cst.With):
        return False
    stack: list[cst.CSTNode] = [with_node.body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            continue
        if isinstance(node, cst.With) and any(_is_tape_item(ctx, item.item, scope) for item in node.items):
            return True
        stack.extend(iter_children(node))
    return False


def _where(ctx, scope: Scope) -> str:
    fn = scope.function_scope()
    while fn is not None and fn.is_lambda:
        fn = fn.parent.function_scope() if fn.parent is not None else None
    return f"in '{fn.name}'" if fn is not None else "at module level"


# -- RegisterGradient functions ----------------------------------------------------------


def registered_gradient_functions(ctx) -> Iterator[tuple[FunctionInfo, Optional[str]]]:
    """Functions registered with ``@tf.RegisterGradient("Op")`` or ``tf.RegisterGradient("Op")(f)``,
    with the registered name when it is a string literal."""
    index = ctx.index
    seen: set[int] = set()
    for fn in index.functions:
        if fn.is_lambda:
            continue
        for dec in fn.decorators:
            expr = dec.decorator
            if isinstance(expr, cst.Call) and index.qualified(expr.func, fn.parent) in names.REGISTER_GRADIENT:
                if id(fn) not in seen:
                    seen.add(id(fn))
                    yield fn, _literal_arg(expr)
                break
    for site in index.calls:
        outer = site.node
        inner = outer.func
        if not (isinstance(inner, cst.Call) and outer.args and not outer.args[0].keyword and not outer.args[0].star):
            continue
        if index.qualified(inner.func, site.scope) not in names.REGISTER_GRADIENT:
            continue
        value = outer.args[0].value
        fn = None
        if isinstance(value, cst.Lambda):
            info = index.scope_of(value)
            fn = info if isinstance(info, FunctionInfo) else None
        elif isinstance(value, cst.Name):
            fn = index.resolve_function(value.value, site.scope)
        if fn is not None and id(fn) not in seen:
            seen.add(id(fn))
            yield fn, _literal_arg(inner)


def _literal_arg(call: cst.Call) -> Optional[str]:
    if call.args and isinstance(call.args[0].value, cst.SimpleString):
        value = call.args[0].value.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _iterator_kind(ctx, expr: cst.BaseExpression, fn: FunctionInfo, depth: int = 0) -> Optional[str]:
    """'map' / 'filter' / 'zip' / 'generator expression' when ``expr`` is certainly one."""
    if isinstance(expr, cst.GeneratorExp):
        return "generator expression"
    if isinstance(expr, cst.Call):
        q = ctx.index.qualified(expr.func, fn)
        return ITERATOR_BUILTINS.get(q or "")
    if isinstance(expr, cst.Name) and depth == 0:
        values = fn.bindings.get(expr.value)
        if values is not None and len(values) == 1 and values[0] is not None and expr.value not in fn.param_names():
            return _iterator_kind(ctx, values[0], fn, depth + 1)
    return None


def _wrap_in_list(expr: cst.BaseExpression) -> str:
    if isinstance(expr, cst.GeneratorExp):
        inner = cst.Module([]).code_for_node(expr.with_changes(lpar=[], rpar=[]))
        return f"list({inner})"
    return f"list({cst.Module([]).code_for_node(expr)})"


# -- rules -----------------------------------------------------------------------------


_OVERRIDE_EXAMPLE = """\
import tensorflow as tf

@tf.RegisterGradient("STESign")
def _ste_sign_grad(op, grad):
    return grad

def binarize(x):
    with tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "STESign"}):
        return tf.sign(x)
"""


class OverrideMapNoEffect(Rule):
    code = "TGL401"
    name = "override-map-no-effect"
    severity = "warning"
    triggers = ("gradient_override_map",)
    summary = "`gradient_override_map` has no effect in TF2 eager code (nor under a GradientTape in a tf.function)."
    what = (
        "Finds `with tf.compat.v1.get_default_graph().gradient_override_map(...)` in TensorFlow 2 "
        "code: the module does not disable eager execution or v2 behaviour, the block is not "
        "inside a `with <graph>.as_default():` (nor in a function only called from one), and the "
        "code runs eagerly: at module level, in a Keras `call`, under a `GradientTape` in the same "
        "function, or in a function called from such code. Silent whenever the execution mode "
        "cannot be known (e.g. inside a `tf.function` whose tape may be outside it)."
    )
    why = (
        "The override map only tags ops created in a graph; eager execution and a `GradientTape` "
        "inside the same `tf.function` ignore the tag. The registered gradient (typically a "
        "straight-through estimator) never runs and training silently uses the op's own gradient "
        "(zero for `Sign`, `Round`, `Floor`)."
    )
    tensorflow_error = "None: no error; the op's built-in gradient is used instead of the override."
    example = _OVERRIDE_EXAMPLE
    instead = """\
import tensorflow as tf

@tf.custom_gradient
def binarize(x):
    def grad(dy):
        return dy  # straight-through estimator
    return tf.sign(x), grad

# or without a custom gradient: x + tf.stop_gradient(tf.sign(x) - x)
"""
    valid = (
        Valid(
            "import tensorflow as tf\ntf.compat.v1.disable_eager_execution()\n"
            "with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "    y = tf.sign(x)\n"
        ),
        Valid(
            "import tensorflow as tf\ng = tf.Graph()\nwith g.as_default():\n"
            "    with g.gradient_override_map({'Sign': 'Identity'}):\n        y = tf.sign(x)\n"
        ),
        Valid(
            "import tensorflow as tf\n"
            "def binarize(x):\n"
            "    with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "        return tf.sign(x)\n"
            "def build(graph, x):\n"
            "    with graph.as_default():\n"
            "        return binarize(x)\n"
        ),
        # Unknown caller: maybe a graph builder in another module.
        Valid(
            "import tensorflow as tf\n"
            "def binarize(x):\n"
            "    with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "        return tf.sign(x)\n"
        ),
        # Inside a tf.function the tape may be outside it: then the map works.
        Valid(
            "import tensorflow as tf\n"
            "@tf.function\n"
            "def binarize(x):\n"
            "    with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "        return tf.sign(x)\n"
            "with tf.GradientTape() as tape:\n    y = binarize(x)\n"
        ),
        # tf.gradients honours the map (graph / tf.function code).
        Valid(
            "import tensorflow as tf\n"
            "with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "    y = tf.sign(x)\n"
            "g = tf.gradients(y, x)\n"
        ),
        # TF1-style module
        Valid(
            "import tensorflow.compat.v1 as tf\n"
            "with tf.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "    y = tf.sign(x)\n"
        ),
        Valid(
            "import tensorflow as tf\n"
            "with tf.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "    y = tf.sign(x)\n"
        ),
        # some other graph object: unknown
        Valid(
            "import tensorflow as tf\n"
            "with self.graph.gradient_override_map({'Sign': 'Identity'}):\n"
            "    y = tf.sign(x)\n"
        ),
        Valid(
            "import tensorflow as tf\n"
            "def binarize(x):\n"
            "    with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "        return tf.sign(x)\n"
            "with tf.Graph().as_default():\n    y = binarize(x)\n"
            "z = binarize(w)\n"
        ),
    )
    invalid = (
        Invalid(
            _OVERRIDE_EXAMPLE
            + "\nclass Binary(tf.keras.layers.Layer):\n    def call(self, x):\n        return binarize(x)\n",
            line=8,
            message_contains=("binarize", "no effect", "tf.custom_gradient"),
        ),
        Invalid(
            "import tensorflow as tf\n"
            "with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "    y = tf.sign(x)\n",
            line=2,
            message_contains=("module level",),
        ),
        Invalid(
            "import tensorflow as tf\n"
            "class Binary(tf.keras.layers.Layer):\n"
            "    def call(self, x):\n"
            "        g = tf.compat.v1.get_default_graph()\n"
            "        with g.gradient_override_map({'Round': 'Identity'}):\n"
            "            return tf.round(x)\n",
            line=5,
            message_contains=("'call'",),
        ),
        Invalid(
            "import tensorflow as tf\n"
            "@tf.function\n"
            "def step(x):\n"
            "    with tf.GradientTape() as tape:\n"
            "        tape.watch(x)\n"
            "        with tf.compat.v1.get_default_graph().gradient_override_map({'Sign': 'Identity'}):\n"
            "            y = tf.sign(x)\n"
            "    return tape.gradient(y, x)\n",
            line=6,
        ),
        Invalid(
            "import tensorflow as tf\n"
            "from tensorflow.python.framework import ops\n"
            "def quantize(x):\n"
            "    with ops.get_default_graph().gradient_override_map({'Round': 'Identity'}):\n"
            "        return tf.round(x)\n"
            "def model(x):\n"
            "    return quantize(x) * 2.0\n"
            "with tf.GradientTape() as tape:\n"
            "    y = model(x)\n",
            line=4,
            message_contains=("quantize",),
        ),
    )

    def check(self, ctx) -> None:
        if _module_is_graph_code(ctx):
            return
        index = ctx.index
        for site, _mapping in override_map_calls(ctx):
            call = site.node
            if not isinstance(index.parent(call), cst.WithItem):
                continue
            if not _is_default_graph(ctx, call.func.value, site.scope):  # type: ignore[attr-defined]
                continue
            status = execution_context(ctx, call, site.scope)
            if status == UNKNOWN and _tape_inside(ctx, index.parent(index.parent(call)), site.scope):
                status = EAGER
            if status != EAGER:
                continue
            fn = site.scope.function_scope()
            subject = fn.name if fn is not None and not fn.is_lambda else None
            ctx.report(
                call,
                f"gradient_override_map on the default graph {_where(ctx, site.scope)} has no effect "
                f"in TF2 eager code (nor under a GradientTape inside a tf.function): the ops keep "
                f"their built-in gradients; use tf.custom_gradient (or x + tf.stop_gradient(f(x) - x)) "
                f"instead",
                subject=subject,
            )


class OverrideMapUnknownOp(Rule):
    code = "TGL402"
    name = "override-map-unknown-op"
    triggers = ("gradient_override_map",)
    summary = "A `gradient_override_map` key is not a TensorFlow op type (keys are case-sensitive)."
    what = (
        "Finds string-literal keys of a `gradient_override_map({...})` dict (a literal, or a name "
        "bound once to one) that are not op types of TensorFlow "
        f"{opdata.data_version() or '2.x'}: a key that matches an op type only ignoring case "
        "(`\"relu\"` for `\"Relu\"`), one that cannot be an op type name at all (op types are "
        "CamelCase), or a near miss of a real op type (`\"Identiy\"`). Silent for other "
        "CamelCase names when they may be custom ops (loaded with `tf.load_op_library`)."
    )
    why = (
        "The map is looked up by the exact op type: a wrong key matches no op, so the override "
        "is silently ignored and the op keeps its built-in gradient."
    )
    tensorflow_error = "None: no error; the key matches no op and the override is ignored."
    example = """\
import tensorflow as tf
g = tf.Graph()
with g.as_default(), g.gradient_override_map({"sign": "Identity"}):
    y = tf.sign(x)
"""
    instead = """\
import tensorflow as tf
g = tf.Graph()
with g.as_default(), g.gradient_override_map({"Sign": "Identity"}):
    y = tf.sign(x)
"""
    fix_safety = (
        "Safe when exactly one TensorFlow op type matches the key ignoring case: the key is "
        "replaced by that op type, keeping the string's quotes and prefix. No fix otherwise."
    )
    valid = (
        Valid("with g.gradient_override_map({'Sign': 'Identity', 'Round': 'Identity', 'MatMul': 'X'}):\n    pass\n"),
        Valid("with g.gradient_override_map({op_type: 'Identity'}):\n    pass\n"),
        Valid("with g.gradient_override_map({'Namespace>MyOp': 'Identity'}):\n    pass\n"),
        Valid("with g.gradient_override_map({'MyCustomCorrelation': 'CorrGrad'}):\n    pass\n"),
        Valid(
            "import tensorflow as tf\nlib = tf.load_op_library('ops.so')\n"
            "with g.gradient_override_map({'Identiy': 'X'}):\n    pass\n"
        ),
        Valid("with g.gradient_override_map({f'{name}': 'Identity'}):\n    pass\n"),
        # "copy" is an op type this module creates and registers (old TensorFlow tests)
        Valid(
            "from tensorflow.python.framework import ops\n"
            "def copy_op(x):\n    return _apply_op(x.graph, 'copy', [x], [x.dtype])\n"
            "@ops.RegisterGradient('copy_override')\ndef _g(op, grad):\n    return grad\n"
            "with g.gradient_override_map({'copy': 'copy_override'}):\n    y = copy_op(x)\n"
        ),
    )
    invalid = (
        Invalid(
            "with g.gradient_override_map({'sign': 'Identity'}):\n    y = tf.sign(x)\n",
            line=1,
            message_contains=("'sign'", "'Sign'"),
            fixed="with g.gradient_override_map({'Sign': 'Identity'}):\n    y = tf.sign(x)\n",
        ),
        Invalid(
            'M = {"relu": "MyRelu", "MatMul": "MyMatMul"}\nwith g.gradient_override_map(M):\n    pass\n',
            line=1,
            fixed='M = {"Relu": "MyRelu", "MatMul": "MyMatMul"}\nwith g.gradient_override_map(M):\n    pass\n',
        ),
        Invalid(
            "with g.gradient_override_map(op_type_map={'Identiy': 'X', 'floor_div': 'Y'}):\n    pass\n",
            lines=[1, 1],
            message_contains=("not a TensorFlow op type",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        loads_ops: Optional[bool] = None
        local_ops: Optional[set[str]] = None
        all_ops = opdata.op_types()
        for site, mapping in override_map_calls(ctx):
            literal = _dict_literal(ctx, mapping, site.scope)
            if literal is None:
                continue
            for element in literal.elements:
                if not isinstance(element, cst.DictElement) or not isinstance(element.key, cst.SimpleString):
                    continue
                key = element.key
                if "b" in key.prefix.lower():
                    continue
                op = key.evaluated_value
                if not isinstance(op, str) or op in all_ops:
                    continue
                if local_ops is None:
                    local_ops = local_op_types(ctx)
                if op in local_ops:
                    continue  # an op type of this program (registered or created here)
                matches = opdata.op_type_case_matches(op)
                if matches:
                    self._report_case(ctx, key, op, matches)
                    continue
                if ">" in op:
                    continue  # a namespaced custom op ("Addons>...")
                if loads_ops is None:
                    loads_ops = any(
                        index.qualified(s.node.func, s.scope) in _LOAD_OP_LIBRARY for s in index.calls
                    )
                close = difflib.get_close_matches(op, sorted(all_ops), n=3, cutoff=0.85)
                if _OP_NAME.fullmatch(op):
                    if loads_ops or not close:
                        continue  # may be a custom op type
                hint = f"; did you mean {_quote_list(close)}?" if close else ""
                ctx.report(
                    key,
                    f"gradient_override_map key '{op}' is not a TensorFlow op type (op types are "
                    f"CamelCase, e.g. 'Relu', 'MatMul'), so the override is silently ignored{hint}",
                )

    def _report_case(self, ctx, key: cst.SimpleString, op: str, matches: list[str]) -> None:
        fix = None
        if len(matches) == 1:
            quote = key.quote
            new = f"{key.prefix}{quote}{matches[0]}{quote}"
            fix = FixSpec("safe", f"Replace '{op}' with '{matches[0]}'", [(key, new)])
        ctx.report(
            key,
            f"gradient_override_map key '{op}' is not a TensorFlow op type: op types are "
            f"case-sensitive, so the override is silently ignored; use {_quote_list(matches)}",
            fix=fix,
        )


# Calls whose string argument names an op type of the program (a registration, or an op
# created by type): a key registered or created in the module is a local op type.
_OP_TYPE_CALLS = frozenset(
    {
        "RegisterGradient",
        "NotDifferentiable",
        "NoGradient",
        "no_gradient",
        "RegisterShape",
        "RegisterStatistics",
        "create_op",
        "_create_op_internal",
        "apply_op",
        "_apply_op",
        "_apply_op_helper",
    }
)


def local_op_types(ctx) -> set[str]:
    """String literals that the module (or the project's registrations) uses as op types."""
    out: set[str] = set()
    for site in ctx.index.calls:
        name = dotted_name(site.node.func)
        if name is None or name.rsplit(".", 1)[-1] not in _OP_TYPE_CALLS:
            continue
        for arg in site.node.args[:2]:
            if isinstance(arg.value, cst.SimpleString):
                value = arg.value.evaluated_value
                if isinstance(value, str):
                    out.add(value)
    project = ctx.project
    registered = getattr(project, "registered_names", None) if project is not None else None
    if registered is not None:
        try:
            out.update(n for n in registered() if isinstance(n, str))
        except Exception:  # pragma: no cover - the project index is another helper's
            pass
    return out


def _quote_list(items: list[str]) -> str:
    quoted = [f"'{i}'" for i in items]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


class RegisteredGradientReturnsIterator(Rule):
    code = "TGL405"
    name = "registered-gradient-returns-iterator"
    triggers = ("RegisterGradient",)
    summary = "A `RegisterGradient` function returns `map(...)`/`filter(...)`/`zip(...)` or a generator."
    what = (
        "Finds `return map(...)`, `filter(...)`, `zip(...)` or a generator expression (directly, or "
        "through a local name bound once to one) in a function registered with "
        "`@tf.RegisterGradient(\"...\")` or `tf.RegisterGradient(\"...\")(fn)`."
    )
    why = (
        "TensorFlow wraps any gradient-function result that is not a list or tuple in a one-element "
        "list, so an iterator counts as ONE gradient: an op with several inputs fails with a "
        "gradient-count mismatch, and a one-input op fails because the iterator is not a tensor. "
        "(A Python 2 habit: `map` returned a list there.)"
    )
    tensorflow_error = (
        "`ValueError: Num gradients 1 generated for op name: ... do not match num inputs 2` "
        "(one-input op: `AttributeError: 'map' object has no attribute 'name'`)."
    )
    example = """\
import tensorflow as tf

@tf.RegisterGradient("ScaledAddGrad")
def _scaled_add_grad(op, grad):
    return map(lambda x: grad * 0.5, op.inputs)
"""
    instead = """\
import tensorflow as tf

@tf.RegisterGradient("ScaledAddGrad")
def _scaled_add_grad(op, grad):
    return list(map(lambda x: grad * 0.5, op.inputs))
"""
    fix_safety = (
        "Safe for `map`, `filter` and generator expressions: wrapping in `list(...)` yields the "
        "same items, which is what the code meant. Unsafe for `zip`: a list of tuples is "
        "still unlikely to be one gradient per input."
    )
    valid = (
        Valid(
            "import tensorflow as tf\n@tf.RegisterGradient('G')\ndef _g(op, grad):\n"
            "    return list(map(lambda x: grad, op.inputs))\n"
        ),
        Valid(
            "import tensorflow as tf\n@tf.RegisterGradient('G')\ndef _g(op, grad):\n"
            "    return [grad for _ in op.inputs]\n"
        ),
        Valid(
            "import tensorflow as tf\n@tf.RegisterGradient('G')\ndef _g(op, grad):\n"
            "    def helper():\n        return map(abs, op.inputs)\n    return tuple(helper())\n"
        ),
        Valid("def _g(op, grad):\n    return map(lambda x: grad, op.inputs)\n"),
        Valid(
            "import tensorflow as tf\nmap = lambda f, xs: [f(x) for x in xs]\n"
            "@tf.RegisterGradient('G')\ndef _g(op, grad):\n    return map(lambda x: grad, op.inputs)\n"
        ),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\n@tf.RegisterGradient('ScaledAddGrad')\ndef _g(op, grad):\n"
            "    return map(lambda x: grad * 0.5, op.inputs)\n",
            line=5,
            message_contains=("_g", "ScaledAddGrad", "map", "list(...)"),
            fixed="import tensorflow as tf\n\n@tf.RegisterGradient('ScaledAddGrad')\ndef _g(op, grad):\n"
            "    return list(map(lambda x: grad * 0.5, op.inputs))\n",
        ),
        Invalid(
            "from tensorflow.python.framework import ops\n@ops.RegisterGradient('G')\ndef _g(op, grad):\n"
            "    return (grad * t for t in op.inputs)\n",
            line=4,
            message_contains=("generator expression",),
            fixed="from tensorflow.python.framework import ops\n@ops.RegisterGradient('G')\ndef _g(op, grad):\n"
            "    return list(grad * t for t in op.inputs)\n",
        ),
        Invalid(
            "import tensorflow as tf\ndef _g(op, grad):\n    gs = filter(None, [grad, grad])\n    return gs\n"
            "tf.RegisterGradient('G')(_g)\n",
            line=4,
        ),
        Invalid(
            "import tensorflow as tf\ntf.RegisterGradient('G')(lambda op, grad: zip(op.inputs, op.inputs))\n",
            line=2,
        ),
    )

    def check(self, ctx) -> None:
        for fn, op in registered_gradient_functions(ctx):
            values: list[tuple[Optional[cst.BaseExpression], Optional[cst.Return]]]
            if fn.is_lambda:
                values = [(fn.node.body, None)]  # type: ignore[union-attr]
            else:
                values = [(r.value, r) for r in fn.returns]
            label = f"'{fn.name}'" if fn.name else "the lambda"
            registered = f" registered for '{op}'" if op else ""
            for value, ret in values:
                if value is None:
                    continue
                kind = _iterator_kind(ctx, value, fn)
                if kind is None:
                    continue
                what = f"a {kind}" if kind == "generator expression" else f"{kind}(...)"
                applicability = "unsafe" if kind == "zip" else "safe"
                # A parenthesized generator's own parentheses lie outside its range: rewrite
                # the whole `return (...)` so the fix does not leave `(list(...))`.
                target: cst.CSTNode = value
                replacement = _wrap_in_list(value)
                if (
                    ret is not None
                    and isinstance(value, cst.GeneratorExp)
                    and value.lpar
                    and isinstance(ret.semicolon, cst.MaybeSentinel)
                ):
                    target, replacement = ret, f"return {replacement}"
                ctx.report(
                    value,
                    f"gradient function {label}{registered} returns {what}: TensorFlow wraps a "
                    f"non-list result in a one-element list, so it counts as 1 gradient whatever "
                    f"the op's number of inputs; wrap it in list(...)",
                    fix=FixSpec(applicability, "Wrap in list(...)", [(target, replacement)]),
                    subject=fn.name,
                )
