"""TGL102-TGL104: custom gradients of functions that read variables.

TensorFlow watches the trainable variables a custom-gradient (cg) function reads while its
forward pass runs. When it finds any that are not inputs, it calls the grad fn as
``grad_fn(*upstream, variables=[...])`` and expects ``(input_grads, variable_grads)`` back,
one variable gradient per variable, in TensorFlow's own order.

This module also holds the helpers the other cg rule modules share: walking a function's own
body, finding ``self`` of an enclosing method, recognising weight-creating calls, and the
variables a cg function's forward pass reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import libcst as cst

from tfgradlint.walk import iter_children

from tfgradlint.context import FixSpec
from tfgradlint.index import (
    CgFunction,
    ClassInfo,
    FunctionInfo,
    GradFn,
    ModuleIndex,
    Scope,
    dotted_name,
)
from tfgradlint import names
from tfgradlint.rules.base import Invalid, Rule, Valid

TRAINABLE_WEIGHT_ATTRS = names.TRAINABLE_WEIGHT_ATTRS
# Reading these from a variable does not read its value.
META_ATTRS = frozenset(
    {"shape", "dtype", "name", "trainable", "device", "ndim", "get_shape", "constraint", "aggregation",
     "synchronization", "initializer", "op", "graph", "handle", "path"}
)
# Attribute accesses on a variable that read its value.
READ_ATTRS = frozenset({"value", "read_value"})
VARIABLE_CONSTRUCTORS = frozenset(
    {"tensorflow.Variable", "keras.Variable", "keras.backend.Variable", "keras.variables.Variable"}
)
GET_VARIABLE = frozenset({"tensorflow.get_variable"})
WEIGHT_METHODS = ("add_weight", "add_variable")


# -- walking ------------------------------------------------------------------------------

_NESTED = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
# LibCST's node classes have no subclasses: a set lookup by type, not ``isinstance`` through
# ``ABCMeta.__instancecheck__``
_NESTED_TYPES = frozenset(_NESTED)


def own_body(fn_node: cst.CSTNode) -> cst.CSTNode:
    return fn_node.body  # type: ignore[attr-defined]


def walk_own(root: cst.CSTNode, *, skip_eager_guards: bool = False) -> Iterator[tuple[cst.CSTNode, Optional[cst.CSTNode]]]:
    """(node, parent) for every node under ``root``, not entering nested defs/lambdas/classes.

    ``skip_eager_guards``: also skip ``if`` statements whose test mentions
    ``executing_eagerly`` (code written for one mode only).
    """
    stack: list[tuple[cst.CSTNode, Optional[cst.CSTNode]]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        if parent is not None and type(node) in _NESTED_TYPES:  # isinstance(node, _NESTED)
            continue
        if skip_eager_guards and isinstance(node, (cst.If, cst.IfExp)) and _mentions_eager(node.test):
            continue
        yield node, parent
        for child in reversed(list(iter_children(node))):
            stack.append((child, node))


def _mentions_eager(test: cst.BaseExpression) -> bool:
    stack: list[cst.CSTNode] = [test]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name) and n.value in ("executing_eagerly", "executing_eagerly_outside_functions", "inside_function"):
            return True
        stack.extend(iter_children(n))
    return False


def is_load_name(node: cst.Name, parent: Optional[cst.CSTNode]) -> bool:
    """``node`` is a Name read as a value (not an attribute name, keyword, target, ...)."""
    if parent is None:
        return True
    if isinstance(parent, cst.Attribute) and parent.attr is node:
        return False
    if isinstance(parent, cst.Arg) and parent.keyword is node:
        return False
    if isinstance(parent, (cst.AssignTarget, cst.Param, cst.ImportAlias, cst.AsName, cst.FunctionDef,
                           cst.ClassDef, cst.Global, cst.Nonlocal, cst.NameItem)):
        return False
    if isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and parent.target is node:
        return False
    if isinstance(parent, cst.CompFor) and parent.target is node:
        return False
    if isinstance(parent, cst.For) and parent.target is node:
        return False
    if isinstance(parent, cst.NamedExpr) and parent.target is node:
        return False
    return True


# -- self, classes and weights ----------------------------------------------------------------


def enclosing_method(scope: Scope) -> Optional[FunctionInfo]:
    """The method (a def directly in a class body) that ``scope`` is in, or None."""
    s: Optional[Scope] = scope
    while s is not None:
        if isinstance(s, FunctionInfo) and s.cls is not None:
            return s
        if s.kind == "class":
            return None
        s = s.parent
    return None


def self_of(index: ModuleIndex, scope: Scope) -> Optional[tuple[str, ClassInfo, FunctionInfo]]:
    """(name of ``self``, its class, the method) for code in ``scope``, when it is unshadowed."""
    method = enclosing_method(scope)
    if method is None or method.is_lambda or method.is_staticmethod(index):
        return None
    if any(dotted_name(d.decorator) == "classmethod" for d in method.decorators):
        return None
    params = method.positional_params()
    if not params:
        return None
    name = params[0].name.value
    found, _ = index.lookup(name, scope)
    if found is not method:
        return None
    return name, method.cls, method  # type: ignore[return-value]


def class_chain(index: ModuleIndex, cls: ClassInfo) -> list[ClassInfo]:
    """``cls`` and its base classes defined in this module (nearest first)."""
    out: list[ClassInfo] = []
    todo = [cls]
    while todo:
        c = todo.pop(0)
        if any(c is o for o in out):
            continue
        out.append(c)
        for arg in c.node.bases:  # type: ignore[attr-defined]
            local = dotted_name(arg.value)
            if local and c.parent is not None and local in c.parent.classes:
                todo.append(c.parent.classes[local])
    return out


def attr_values(index: ModuleIndex, cls: ClassInfo, attr: str) -> list[cst.BaseExpression]:
    out: list[cst.BaseExpression] = []
    for c in class_chain(index, cls):
        out.extend(c.attr_values.get(attr, ()))
    return out


def is_keras_class(index: ModuleIndex, cls: ClassInfo, keras3_only: bool = False) -> bool:
    """A Keras ``Layer``/``Model`` subclass (not a plain ``tf.Module``)."""
    if not index.is_layer_class(cls, keras3_only=keras3_only):
        return False
    prefixes = ("keras.",) if keras3_only else ("keras.", "tf_keras.")
    return any(q.startswith(prefixes) for q in index.class_bases(cls))


def _literal_bool(expr: cst.BaseExpression) -> Optional[bool]:
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return expr.value == "True"
    return None


TRAINABLE, FROZEN, UNKNOWN_KIND = "trainable", "frozen", "unknown"


def _trainable(call: cst.Call, positional_index: Optional[int]) -> str:
    """The ``trainable`` argument of a weight-creating call: TRAINABLE (default), FROZEN, UNKNOWN."""
    if any(a.star for a in call.args):
        return UNKNOWN_KIND
    positional = [a for a in call.args if a.keyword is None]
    for a in call.args:
        if a.keyword is not None and a.keyword.value == "trainable":
            value = _literal_bool(a.value)
            return UNKNOWN_KIND if value is None else (TRAINABLE if value else FROZEN)
    if positional_index is not None and len(positional) > positional_index:
        value = _literal_bool(positional[positional_index].value)
        return UNKNOWN_KIND if value is None else (TRAINABLE if value else FROZEN)
    return TRAINABLE


def weight_creation(index: ModuleIndex, value: Optional[cst.BaseExpression], scope: Optional[Scope]) -> Optional[str]:
    """For a weight-creating call: TRAINABLE, FROZEN or UNKNOWN_KIND; None when not one."""
    if not isinstance(value, cst.Call):
        return None
    func = value.func
    if isinstance(func, cst.Attribute) and func.attr.value in WEIGHT_METHODS and isinstance(func.value, cst.Name):
        # Keras 3: add_weight(shape, initializer, dtype, trainable, ...); tf_keras has more
        # positional parameters before trainable: unknown when more than three are given.
        positional = [a for a in value.args if a.keyword is None]
        if len(positional) > 3:
            return UNKNOWN_KIND
        return _trainable(value, None)
    q = index.qualified(func, scope)
    if q in VARIABLE_CONSTRUCTORS:
        return _trainable(value, 1 if q == "tensorflow.Variable" else 2)
    if q in GET_VARIABLE:
        return _trainable(value, 5)
    return None


def _is_none(expr: Optional[cst.BaseExpression]) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def self_attr_is_weight(index: ModuleIndex, cls: ClassInfo, attr: str, *, keras3_only: bool = False,
                        allow_known_names: bool = True) -> Optional[bool]:
    """Is ``self.<attr>`` a trainable variable? True / False (known not) / None (unknown)."""
    if not index.is_layer_class(cls, keras3_only=keras3_only):
        return False
    values = [v for v in attr_values(index, cls, attr) if not _is_none(v)]
    if not values:
        if attr_values(index, cls, attr):
            return None  # only ever None here: set elsewhere
        return True if allow_known_names and attr in TRAINABLE_WEIGHT_ATTRS else None
    kinds = {weight_creation(index, v, cls.parent) for v in values}
    if kinds == {TRAINABLE}:
        return True
    if kinds == {FROZEN}:
        return False
    return None


def _name_is_variable(index: ModuleIndex, name: str, scope: Scope) -> tuple[Optional[Scope], Optional[bool]]:
    """(binding scope, True: bound only to trainable variables; False: only to frozen ones)."""
    s, values = index.lookup(name, scope)
    if s is None or not values:
        return s, None
    kinds = {weight_creation(index, v, s) for v in values}
    if kinds == {TRAINABLE}:
        return s, True
    if kinds == {FROZEN}:
        return s, False
    return s, None


# -- the variables a cg function's forward pass reads ----------------------------------------


@dataclass
class VariableRead:
    label: str  # how the code names it: "self.kernel", "v", "tf.Variable(...)"
    key: str  # distinct variables have distinct keys
    node: cst.CSTNode


@dataclass
class ForwardFacts:
    reads: list[VariableRead]
    # True when every call and name in the forward body is understood, so ``reads`` is the
    # complete set of trainable variables the forward pass reads.
    closed: bool

    def distinct(self) -> list[VariableRead]:
        out: list[VariableRead] = []
        for r in self.reads:
            if all(r.key != o.key for o in out):
                out.append(r)
        return out


_CLOSED_PREFIXES = ("tensorflow.", "builtins.", "math.", "numpy.")
_OPEN_TF_PREFIXES = ("tensorflow.keras", "tensorflow.Module", "tensorflow.py_function", "tensorflow.numpy_function",
                     "tensorflow.map_fn", "tensorflow.vectorized_map", "tensorflow.while_loop", "tensorflow.cond",
                     "tensorflow.switch_case", "tensorflow.case", "tensorflow.scan", "tensorflow.foldl",
                     "tensorflow.foldr", "tensorflow.function", "tensorflow.saved_model", "tensorflow.compat")


def _constant(expr: Optional[cst.BaseExpression]) -> bool:
    if expr is None:
        return False
    if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(expr, cst.Name) and expr.value in ("None", "True", "False"):
        return True
    if isinstance(expr, cst.UnaryOperation):
        return _constant(expr.expression)
    return False


def forward_facts(index: ModuleIndex, cg: CgFunction) -> ForwardFacts:
    """The trainable variables ``cg``'s forward body reads (statically), and whether that is all."""
    fn = cg.info
    grad_nodes = {id(g.node) for g in cg.grad_fns()}
    me = self_of(index, fn)
    reads: list[VariableRead] = []
    closed = True
    body = own_body(fn.node)
    for node, parent in walk_own(body):
        if isinstance(node, _NESTED):
            continue
        if isinstance(node, cst.Call):
            q = index.qualified(node.func, fn)
            kind = weight_creation(index, node, fn) if q in VARIABLE_CONSTRUCTORS | GET_VARIABLE else None
            if kind is not None:
                if kind == UNKNOWN_KIND:
                    closed = False
                elif kind == TRAINABLE and _call_is_used(node, parent):
                    label = "tf.compat.v1.get_variable(...)" if q in GET_VARIABLE else "tf.Variable(...)"
                    reads.append(VariableRead(label, f"call:{id(node)}", node))
                continue
            if q is None or not q.startswith(_CLOSED_PREFIXES) or q.startswith(_OPEN_TF_PREFIXES):
                closed = False
            continue
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            if me is not None and node.value.value == me[0] and index.lookup(me[0], fn)[0] is me[2]:
                if isinstance(parent, cst.Attribute) and parent.value is node:
                    if parent.attr.value in META_ATTRS:
                        continue
                    if parent.attr.value not in READ_ATTRS:
                        closed = False
                        continue
                if isinstance(parent, cst.AssignTarget) or (isinstance(parent, cst.Call) and parent.func is node):
                    closed = False
                    continue
                weight = self_attr_is_weight(index, me[1], node.attr.value)
                if weight:
                    reads.append(VariableRead(f"{me[0]}.{node.attr.value}", f"self:{node.attr.value}", node))
                    if not attr_values(index, me[1], node.attr.value):
                        # an inherited weight property (Keras' Dense.kernel with LoRA reads
                        # three variables): how many variables it reads is not known here
                        closed = False
                elif weight is None:
                    values = attr_values(index, me[1], node.attr.value)
                    if not (values and all(_constant(v) for v in values)):
                        closed = False
            continue
        if isinstance(node, cst.Name) and is_load_name(node, parent):
            if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in META_ATTRS:
                continue
            if me is not None and node.value == me[0] and isinstance(parent, cst.Attribute) and parent.value is node:
                continue  # self.<attr>: handled above
            s, is_var = _name_is_variable(index, node.value, fn)
            if is_var:
                if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value not in READ_ATTRS:
                    closed = False
                    continue
                reads.append(VariableRead(node.value, f"name:{id(s)}:{node.value}", node))
                continue
            if s is None:
                if index.qualified(node, fn) is None:
                    closed = False
                continue
            if s is fn or node.value in s.imports:
                continue
            if isinstance(s, FunctionInfo) and node.value in s.param_names():
                if s is not fn:
                    closed = False  # a closure over an enclosing function's parameter
                continue
            if is_var is False:
                continue
            values = s.bindings.get(node.value, [])
            if isinstance(s, FunctionInfo) and node.value in s.functions:
                # a nested def other than the grad fn: unknown unless it is a grad fn
                if id(s.functions[node.value].node) not in grad_nodes:
                    closed = False
                continue
            if not (values and all(_constant(v) for v in values)):
                closed = False
    # nested defs/lambdas other than the grad fns may read variables when called
    for nested in list(fn.functions.values()) + list(fn.lambdas):
        if id(nested.node) not in grad_nodes:
            closed = False
    if fn.classes:
        closed = False
    return ForwardFacts(reads, closed)


def _call_is_used(call: cst.Call, parent: Optional[cst.CSTNode]) -> bool:
    """A variable-creating call whose result is read right there (not just bound or dropped)."""
    return not isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Expr, cst.NamedExpr))


def _labels(reads: Sequence[VariableRead], limit: int = 3) -> str:
    labels: list[str] = []
    for r in reads:
        if r.label not in labels:
            labels.append(r.label)
    shown = ", ".join(labels[:limit])
    if len(labels) > limit:
        shown += f" and {len(labels) - limit} more"
    return shown


def keras_call_cg(index: ModuleIndex, cg: CgFunction) -> bool:
    """``@tf.custom_gradient`` directly on a Keras layer/model ``call`` or ``__call__`` (TGL110)."""
    fn = cg.info
    if fn.cls is None or fn.name not in ("call", "__call__"):
        return False
    if not isinstance(cg.marker, cst.Decorator):
        return False
    return is_keras_class(index, fn.cls)


def grad_anchor(grad: GradFn) -> tuple[cst.CSTNode, Optional[cst.CSTNode]]:
    """(start, end) of a grad fn's anchor: its name, or ``lambda <params>``."""
    if isinstance(grad.node, cst.FunctionDef):
        return grad.node.name, None
    params = grad.node.params
    if grad.info.param_names():
        return grad.node, params
    return grad.node, None


def accepts_variables(grad: GradFn) -> bool:
    return grad.variables_param() is not None or grad.info.has_star_kwargs()


# -- rules ----------------------------------------------------------------------------------

_KERAS_LAYER = """\
import tensorflow as tf

class Scale(tf.keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")
"""


class MissingVariablesParam(Rule):
    code = "TGL102"
    name = "missing-variables-param"
    severity = "error"
    summary = "A custom-gradient function reads a variable but its grad fn has no `variables` parameter."
    what = (
        "Finds a `tf.custom_gradient` function whose forward pass reads a trainable variable that "
        "is not one of its inputs (a layer weight `self.kernel`, a `tf.Variable` created in the "
        "function or bound at module level, `tf.compat.v1.get_variable`) while its grad fn accepts "
        "neither `variables` nor `**kwargs`."
    )
    why = (
        "TensorFlow watches the variables read during the forward pass and must hand them to the "
        "grad fn as `variables=[...]` so it can return their gradients. A grad fn that cannot take "
        "them makes the forward call fail, eagerly and under `tf.function`."
    )
    tensorflow_error = (
        "`TypeError: @tf.custom_gradient grad_fn must accept keyword argument 'variables', since "
        "function uses variables: [...]` at the forward call."
    )
    example = _KERAS_LAYER + """
    @tf.custom_gradient
    def scale(self, x):
        def grad(dy):
            return dy * self.w
        return x * self.w, grad

    def call(self, x):
        return self.scale(x)
"""
    instead = _KERAS_LAYER + """
    @tf.custom_gradient
    def scale(self, x, w):
        def grad(dy):
            return dy * w, tf.reduce_sum(dy * x, axis=0)
        return x * w, grad

    def call(self, x):
        # pass the weight in as an input, converted to a tensor
        return self.scale(x, tf.convert_to_tensor(self.w))
"""
    fix_safety = (
        "This rule has no automatic fix: the grad fn must also compute and return the variable "
        "gradients, which only the author knows."
    )
    valid = (
        # trainable=False: the tape does not watch it
        Valid("import tensorflow as tf\nv = tf.Variable(1.0, trainable=False)\n"
              "@tf.custom_gradient\ndef f(x):\n    def grad(dy):\n        return dy * v\n"
              "    return x * v, grad\n"),
        # a Python attribute, not a variable
        Valid("import tensorflow as tf\nclass L(tf.keras.layers.Layer):\n"
              "    def __init__(self):\n        super().__init__()\n        self.alpha = 0.5\n"
              "    @tf.custom_gradient\n    def f(self, x):\n        def grad(dy):\n"
              "            return dy * self.alpha\n        return x * self.alpha, grad\n"
              "    def call(self, x):\n        return self.f(x)\n"),
        # the weight converted before it is passed in
        Valid(_KERAS_LAYER + "    def call(self, x):\n        return scale(x, tf.convert_to_tensor(self.w))\n"
              "@tf.custom_gradient\ndef scale(x, w):\n    def grad(dy):\n        return dy * w, dy * x\n"
              "    return x * w, grad\n"),
        # the grad fn accepts variables / **kwargs
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy * v, [dy * x]\n    return x * v, grad\n"),
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, **kwargs):\n        return dy * v, [dy * x]\n    return x * v, grad\n"),
        # the variable is read only in the grad fn (not watched there)
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy):\n        return dy * v\n    return x * 2.0, grad\n"),
        # a variable passed as an input
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x, w):\n"
              "    def grad(dy):\n        return dy * w, dy * x\n    return x * w, grad\ny = f(2.0, v)\n"),
        # only the shape of the weight is read
        Valid("import tensorflow as tf\nclass L(tf.keras.layers.Dense):\n    @tf.custom_gradient\n"
              "    def f(self, x):\n        n = self.kernel.shape[0]\n        def grad(dy):\n"
              "            return dy * n\n        return x * n, grad\n"),
        # a variable created and never read
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    v = tf.Variable(1.0)\n"
              "    def grad(dy):\n        return dy\n    return x, grad\n"),
        # a Keras call method: TGL110 reports it
        Valid("import tensorflow as tf\nclass L(tf.keras.layers.Dense):\n    @tf.custom_gradient\n"
              "    def call(self, x):\n        def grad(dy):\n            return dy\n"
              "        return tf.matmul(x, self.kernel), grad\n"),
        # a plain class (not a layer) with a kernel attribute
        Valid("import tensorflow as tf\nclass Op:\n    def __init__(self, k):\n        self.kernel = k\n"
              "    @tf.custom_gradient\n    def f(self, x):\n        def grad(dy):\n"
              "            return dy * self.kernel\n        return x * self.kernel, grad\n"),
    )
    invalid = (
        Invalid(
            _KERAS_LAYER + "    @tf.custom_gradient\n    def scale(self, x):\n        def grad(dy):\n"
            "            return dy * self.w\n        return x * self.w, grad\n"
            "    def call(self, x):\n        return self.scale(x)\n",
            line=8,
            message_contains=("'scale'", "self.w", "'grad'", "variables=None", "tf.convert_to_tensor"),
        ),
        Invalid(
            "import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
            "    def grad(dy):\n        return dy * v\n    return x * v, grad\n",
            line=5,
            message_contains=("'f'", "variable v"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    v = tf.Variable(2.0)\n"
            "    return x * v, lambda dy: dy * 2.0\n",
            line=5,
            message_contains=("'<lambda>'",),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
            "    w = tf.compat.v1.get_variable('w', shape=())\n    def grad(dy):\n        return dy * w\n"
            "    return x * w, grad\n",
            line=5,
        ),
        # a cg function nested in a layer method, closing over self
        Invalid(
            "import tensorflow as tf\nclass L(tf.keras.layers.Dense):\n    def call(self, x):\n"
            "        @tf.custom_gradient\n        def f(x):\n            def grad(dy):\n"
            "                return tf.matmul(dy, self.kernel, transpose_b=True)\n"
            "            return tf.matmul(x, self.kernel), grad\n        return f(x)\n",
            line=6,
            message_contains=("self.kernel",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            grads = [g for g in cg.grad_fns() if not accepts_variables(g)]
            if not grads or keras_call_cg(index, cg):
                continue
            facts = forward_facts(index, cg)
            if not facts.reads:
                continue
            reads = facts.distinct()
            noun = "variable" if len(reads) == 1 else "variables"
            for grad in grads:
                start, end = grad_anchor(grad)
                ctx.report(
                    start,
                    f"custom-gradient function '{cg.name}' reads {noun} {_labels(reads)} in its "
                    f"forward pass but its grad fn '{grad.name}' has no 'variables' parameter, so "
                    f"TensorFlow raises a TypeError at the call; add 'variables=None' and return "
                    f"(input_grads, variable_grads), or pass the weight in as an input converted "
                    f"with tf.convert_to_tensor",
                    end_node=end,
                    subject=cg.name,
                )


# -- TGL103 -------------------------------------------------------------------------------

# TensorFlow calls that return several tensors (or a structure): never "one tensor".
_MULTI_OUTPUT = frozenset(
    {
        "tensorflow.split", "tensorflow.unstack", "tensorflow.meshgrid", "tensorflow.unique",
        "tensorflow.unique_with_counts", "tensorflow.gradients", "tensorflow.while_loop",
        "tensorflow.cond", "tensorflow.case", "tensorflow.switch_case", "tensorflow.map_fn",
        "tensorflow.vectorized_map", "tensorflow.py_function", "tensorflow.numpy_function",
        "tensorflow.tuple", "tensorflow.identity_n", "tensorflow.scan", "tensorflow.foldl",
        "tensorflow.foldr", "tensorflow.custom_gradient", "tensorflow.recompute_grad",
        "tensorflow.shape_n", "tensorflow.dynamic_partition", "tensorflow.group",
        "tensorflow.nn.moments", "tensorflow.nn.weighted_moments", "tensorflow.nn.top_k",
        "tensorflow.math.top_k", "tensorflow.nn.fused_batch_norm", "tensorflow.nn.sufficient_statistics",
        "tensorflow.linalg.eigh", "tensorflow.linalg.eig", "tensorflow.linalg.svd", "tensorflow.linalg.qr",
        "tensorflow.linalg.lu", "tensorflow.linalg.slogdet", "tensorflow.linalg.eigh_tridiagonal",
        "tensorflow.nn.ctc_beam_search_decoder", "tensorflow.nn.ctc_greedy_decoder",
        "tensorflow.nn.max_pool_with_argmax", "tensorflow.math.unsorted_segment_max",
        "tensorflow.unravel_index", "tensorflow.function", "tensorflow.clip_by_global_norm",
        "tensorflow.while_loop_v2", "tensorflow.image.combined_non_max_suppression",
        "tensorflow.image.non_max_suppression_padded", "tensorflow.setdiff1d",
        "tensorflow.sparse.split", "tensorflow.strings.split", "tensorflow.ragged.stack",
    }
)
_MULTI_PREFIXES = ("tensorflow.nest.", "tensorflow.raw_ops.", "tensorflow.data.", "tensorflow.keras",
                   "tensorflow.compat.", "tensorflow.experimental.", "tensorflow.distribute.",
                   "tensorflow.io.", "tensorflow.saved_model.", "tensorflow.train.", "tensorflow.summary.",
                   "tensorflow.debugging.", "tensorflow.config.", "tensorflow.random.experimental.",
                   "tensorflow.sparse.", "tensorflow.ragged.", "tensorflow.TensorArray", "tensorflow.lookup.",
                   "tensorflow.queue.", "tensorflow.estimator.", "tensorflow.autograph.", "tensorflow.types.",
                   "tensorflow.Variable", "tensorflow.get_variable", "tensorflow.GradientTape")
_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power,
               cst.MatrixMultiply)


def one_tensor(index: ModuleIndex, expr: Optional[cst.BaseExpression], scope: FunctionInfo,
               tensor_names: frozenset[str], depth: int = 0) -> bool:
    """``expr`` is certainly a single tensor (not a tuple/list/structure)."""
    if expr is None or depth > 6:
        return False
    if isinstance(expr, cst.Name):
        if expr.value in tensor_names:
            return True
        s, values = index.lookup(expr.value, scope)
        if s is scope and len(values) == 1 and values[0] is not None and not isinstance(values[0], cst.Name):
            return one_tensor(index, values[0], scope, tensor_names, depth + 1)
        return False
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, _ARITHMETIC):
        return one_tensor(index, expr.left, scope, tensor_names, depth + 1) or one_tensor(
            index, expr.right, scope, tensor_names, depth + 1
        )
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        return one_tensor(index, expr.expression, scope, tensor_names, depth + 1)
    if isinstance(expr, cst.Call):
        q = index.qualified(expr.func, scope)
        if q is None or not q.startswith("tensorflow.") or q in _MULTI_OUTPUT or q.startswith(_MULTI_PREFIXES):
            return False
        return True
    return False


def _inside_variables_test(index: ModuleIndex, node: cst.CSTNode, stop: cst.CSTNode) -> bool:
    """``node`` sits in an ``if``/conditional whose test mentions ``variables``."""
    for anc in index.ancestors(node):
        if anc is stop:
            return False
        if isinstance(anc, (cst.If, cst.IfExp, cst.While)) and _mentions_name(anc.test, "variables"):
            return True
    return False


def _mentions_name(expr: cst.CSTNode, name: str) -> bool:
    stack = [expr]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name) and n.value == name:
            return True
        stack.extend(iter_children(n))
    return False


def grad_returns(grad: GradFn) -> list[tuple[cst.CSTNode, Optional[cst.BaseExpression]]]:
    """(anchor, returned value) for each return of the grad fn (a lambda: its body)."""
    if isinstance(grad.node, cst.Lambda):
        return [(grad.node.body, grad.node.body)]
    return [(r, r.value) for r in grad.info.returns]


def _pair(value: Optional[cst.BaseExpression]) -> Optional[tuple[cst.BaseExpression, cst.BaseExpression]]:
    if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == 2 and not any(
        isinstance(e, cst.StarredElement) for e in value.elements
    ):
        return value.elements[0].value, value.elements[1].value
    return None


def _is_cg_itself(index: ModuleIndex, grad: GradFn) -> bool:
    return any(c.info is grad.info for c in index.cg_functions)


def variable_grads_literal(index: ModuleIndex, grad: GradFn, expr: cst.BaseExpression) -> Optional[cst.BaseExpression]:
    """The list/tuple literal the variable gradients are (directly or via a name bound once)."""
    if isinstance(expr, (cst.List, cst.Tuple)):
        return expr
    if isinstance(expr, cst.Name):
        s, values = index.lookup(expr.value, grad.info)
        if s is grad.info and len(values) == 1 and isinstance(values[0], (cst.List, cst.Tuple)):
            return values[0]
    return None


def _param_fix(param: cst.Param, module: cst.Module) -> Optional[tuple[cst.CSTNode, str]]:
    if param.annotation is not None:
        ann = param.annotation.annotation
        return ann, module.code_for_node(ann) + " = None"
    return param.name, param.name.value + "=None"


class VariablesGradStructure(Rule):
    code = "TGL103"
    name = "variables-grad-structure"
    severity = "error"
    summary = "A grad fn that accepts `variables` returns the wrong structure, or requires `variables`."
    what = (
        "For a grad fn with a `variables` parameter, finds (a) a `return` that is not a pair "
        "`(input_grads, variable_grads)` while the forward pass reads a variable; (b) variable "
        "gradients given as a list literal whose length differs from the number of distinct "
        "trainable variables the function is statically known to read; (c) a `variables` "
        "parameter without a default."
    )
    why = (
        "TensorFlow unpacks `input_grads, variable_grads = grad_fn(*upstream, variables=...)` and "
        "requires one gradient per variable. It passes `variables` only when it detects trainable "
        "variables (not for non-trainable ones, not always under `tf.cond` in graph mode), so a "
        "required `variables` parameter makes the backward pass fail whenever none are detected."
    )
    tensorflow_error = (
        "`ValueError: Must return gradient for each variable from @custom_gradient grad_fn`, "
        "`TypeError: Scalar tensor has no len()` / `Cannot iterate over a scalar tensor`, or "
        "`TypeError: grad() missing 1 required positional argument: 'variables'`."
    )
    example = """
import tensorflow as tf

v = tf.Variable(2.0)

@tf.custom_gradient
def scale(x):
    def grad(dy, variables):
        return dy * v  # not a pair; and 'variables' has no default
    return x * v, grad
"""
    instead = """
import tensorflow as tf

v = tf.Variable(2.0)

@tf.custom_gradient
def scale(x):
    def grad(dy, variables=None):
        return dy * v, [tf.reduce_sum(dy * x) for _ in variables or []]
    return x * v, grad
"""
    fix_safety = (
        "Case (c) has a safe fix: give `variables` the default `None` (TensorFlow passes it by "
        "keyword when it has variables to pass, so behaviour with variables is unchanged). Cases "
        "(a) and (b) have no automatic fix."
    )
    valid = (
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy * v, [dy * x]\n    return x * v, grad\n"),
        # **kwargs forwarding helper
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(*dys, **kwargs):\n        return helper(*dys, **kwargs)\n    return x * v, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None, **kwargs):\n        return dy * 2.0\n    return x * 2.0, grad\n"),
        # no variable is read: TensorFlow passes no variables, a single gradient is right
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy * 2.0\n    return x * 2.0, grad\n"),
        # the variable count is not known (a sublayer may read more)
        Valid("import tensorflow as tf\nclass L(tf.keras.layers.Dense):\n"
              "    @tf.custom_gradient\n    def f(self, x):\n        y = self.inner(x) * self.kernel\n"
              "        def grad(dy, variables=None):\n            return dy, [dy]\n        return y, grad\n"),
        # a branch on variables
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        if variables is None:\n            return dy * v\n"
              "        return dy * v, [dy * x]\n    return x * v, grad\n"),
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy * v, [dy * x for _ in variables]\n"
              "    return x * v, grad\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
            "    def grad(dy, variables=None):\n        return dy * v\n    return x * v, grad\n",
            line=6,
            message_contains=("'grad'", "'f'", "(input_grads, variable_grads)"),
        ),
        Invalid(
            "import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
            "    def grad(dy, variables=None):\n        return dy * v, [dy * x, dy]\n    return x * v, grad\n",
            line=6,
            message_contains=("2 variable gradients", "1 trainable variable", "v"),
        ),
        Invalid(
            "import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
            "    def grad(dy, variables):\n        return dy * v, [dy * x]\n    return x * v, grad\n",
            line=5,
            message_contains=("'variables'", "variables=None"),
            fixed="import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
            "    def grad(dy, variables=None):\n        return dy * v, [dy * x]\n    return x * v, grad\n",
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
            "    def grad(*dys, variables: list):\n        return dys[0] * 2.0, []\n    return x * 2.0, grad\n",
            line=4,
            fixed="import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
            "    def grad(*dys, variables: list = None):\n        return dys[0] * 2.0, []\n    return x * 2.0, grad\n",
        ),
        Invalid(
            "import tensorflow as tf\nclass L(tf.keras.layers.Dense):\n    @tf.custom_gradient\n"
            "    def f(self, x):\n        def grad(dy, variables=None):\n            return dy, dy, [dy]\n"
            "        return x * self.kernel, grad\n",
            line=6,
            message_contains=("3 items",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            grads = [g for g in cg.grad_fns() if g.variables_param() is not None and not g.info.has_star_kwargs()]
            if not grads:
                continue
            facts: Optional[ForwardFacts] = None
            for grad in grads:
                if _is_cg_itself(index, grad):
                    continue
                param = grad.variables_param()
                assert param is not None
                # (c) no default
                if param.default is None:
                    self._report_required(ctx, cg, grad, param)
                if facts is None:
                    facts = forward_facts(index, cg)
                if not facts.reads:
                    continue
                reads = facts.distinct()
                tensors = frozenset(p.name.value for p in grad.upstream_params()) | frozenset(
                    p.name.value for p in cg.inputs(index)
                )
                for anchor, value in grad_returns(grad):
                    if value is None or _inside_variables_test(index, anchor, grad.node):
                        continue
                    pair = _pair(value)
                    if pair is None:
                        # (a)
                        if isinstance(value, (cst.Tuple, cst.List)) and not any(
                            isinstance(e, cst.StarredElement) for e in value.elements
                        ):
                            what = f"{len(value.elements)} items"
                        elif one_tensor(index, value, grad.info, tensors):
                            what = "a single tensor"
                        else:
                            continue
                        ctx.report(
                            anchor,
                            f"grad fn '{grad.name}' of '{cg.name}' returns {what}, but '{cg.name}' "
                            f"reads {_labels(reads)} so TensorFlow passes 'variables' and unpacks "
                            f"the result as (input_grads, variable_grads); return that pair, one "
                            f"variable gradient per variable",
                            subject=cg.name,
                        )
                        continue
                    # (b)
                    if not facts.closed:
                        continue
                    lit = variable_grads_literal(index, grad, pair[1])
                    if lit is None or any(isinstance(e, cst.StarredElement) for e in lit.elements):
                        continue
                    k, n = len(lit.elements), len(reads)
                    if k != n:
                        ctx.report(
                            anchor,
                            f"grad fn '{grad.name}' of '{cg.name}' returns {k} variable gradient"
                            f"{'s' if k != 1 else ''} but '{cg.name}' reads {n} trainable variable"
                            f"{'s' if n != 1 else ''} ({_labels(reads, 6)}); return one gradient per "
                            f"variable, built from 'variables'",
                            subject=cg.name,
                        )

    def _report_required(self, ctx, cg: CgFunction, grad: GradFn, param: cst.Param) -> None:
        fix = None
        p = grad.info.params
        positional = list(p.posonly_params) + list(p.params)
        if any(q is param for q in positional):
            after = positional[[id(q) for q in positional].index(id(param)) + 1:]
            fixable = all(q.default is not None for q in after)
        else:
            fixable = True
        if fixable:
            node, text = _param_fix(param, ctx.module)  # type: ignore[misc]
            fix = FixSpec("safe", "Give 'variables' the default None", [(node, text)])
        ctx.report(
            param,
            f"grad fn '{grad.name}' of '{cg.name}' requires 'variables', but TensorFlow passes it "
            f"only when it detects trainable variables read in the forward pass (not for "
            f"non-trainable ones, not always under tf.cond); write 'variables=None'",
            fix=fix,
            subject=cg.name,
        )


# -- TGL104 -------------------------------------------------------------------------------


class VariablesOrderAssumed(Rule):
    code = "TGL104"
    name = "variables-order-assumed"
    severity = "warning"
    summary = "Variable gradients returned as a fixed-order list: TensorFlow's `variables` order is unspecified."
    what = (
        "Finds a grad fn returning its variable gradients as a list literal of two or more "
        "(`[d_a, d_b]`) instead of building them from the `variables` it receives "
        "(a comprehension, a loop, `zip`)."
    )
    why = (
        "The order of `variables` is unspecified in eager mode (a set) and sorted by variable "
        "name under `tf.function`: a fixed list silently swaps gradients between variables. A "
        "default such as `variables=[a, b]` does not fix the order: TensorFlow passes its own list."
    )
    tensorflow_error = "None: the gradients are silently applied to the wrong variables."
    example = """
import tensorflow as tf

a = tf.Variable(1.0, name="b_weight")
b = tf.Variable(2.0, name="a_weight")

@tf.custom_gradient
def f(x):
    def grad(dy, variables=None):
        return dy * a * b, [dy * x * b, dy * x * a]
    return x * a * b, grad
"""
    instead = """
import tensorflow as tf

a = tf.Variable(1.0, name="b_weight")
b = tf.Variable(2.0, name="a_weight")

@tf.custom_gradient
def f(x):
    def grad(dy, variables=None):
        by_var = {a.ref(): dy * x * b, b.ref(): dy * x * a}
        return dy * a * b, [by_var[v.ref()] for v in variables]
    return x * a * b, grad
"""
    valid = (
        Valid("import tensorflow as tf\nv = tf.Variable(1.0)\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy * v, [dy * x]\n    return x * v, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy, [tf.zeros_like(v) for v in variables]\n"
              "    return x, grad\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy, variables=None):\n        return dy, [None, None]\n    return x, grad\n"),
        # not a variables-aware grad fn: a pair of input gradients
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, y):\n"
              "    def grad(dy):\n        return [dy * y, dy * x]\n    return x * y, grad\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\na = tf.Variable(1.0)\nb = tf.Variable(2.0)\n@tf.custom_gradient\n"
            "def f(x):\n    def grad(dy, variables=None):\n        return dy * a * b, [dy * x * b, dy * x * a]\n"
            "    return x * a * b, grad\n",
            line=7,
            message_contains=("'grad'", "'f'", "2 variable gradients", "sorted by variable name"),
        ),
        Invalid(
            "import tensorflow as tf\na = tf.Variable(1.0)\nb = tf.Variable(2.0)\n@tf.custom_gradient\n"
            "def f(x):\n    def grad(dy, variables=[a, b]):\n        gv = [dy * x * b, dy * x * a]\n"
            "        return dy * a * b, gv\n    return x * a * b, grad\n",
            line=7,
            message_contains=("default",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            for grad in cg.grad_fns():
                param = grad.variables_param()
                if param is None or _is_cg_itself(index, grad):
                    continue
                reported: set[int] = set()
                for _, value in grad_returns(grad):
                    pair = _pair(value)
                    if pair is None:
                        continue
                    lit = variable_grads_literal(index, grad, pair[1])
                    if lit is None or id(lit) in reported or len(lit.elements) < 2:
                        continue
                    if any(isinstance(e, cst.StarredElement) for e in lit.elements):
                        continue
                    codes = {ctx.code_for(e.value).strip() for e in lit.elements}
                    if len(codes) == 1:
                        continue  # the same gradient for every variable: order does not matter
                    reported.add(id(lit))
                    note = ""
                    if isinstance(param.default, (cst.List, cst.Tuple)):
                        note = (
                            f" (the default 'variables={ctx.code_for(param.default).strip()}' does not "
                            f"fix the order: TensorFlow passes its own list)"
                        )
                    ctx.report(
                        lit,
                        f"grad fn '{grad.name}' of '{cg.name}' returns {len(lit.elements)} variable "
                        f"gradients in a fixed order, but the order of 'variables' is unspecified "
                        f"eagerly and sorted by variable name under tf.function{note}; build the "
                        f"list from 'variables' (e.g. match each v by v.ref())",
                        subject=cg.name,
                    )
