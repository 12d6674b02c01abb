"""What a returned expression means to ``tf.custom_gradient``: how many gradients it yields.

TensorFlow (``custom_gradient.py``, ``_eager_mode_decorator``) counts a cg function's inputs
as ``len(nest.flatten(args))`` of the positional arguments actually passed, and the grad
fn's result as ``len(nest.flatten(result))`` (the first item of ``(input_grads,
variable_grads)`` when the grad fn takes ``variables``). The rules of the TGL1xx family ask
this module three questions, always answering "unknown" (None/False) when the code does not
say for certain:

- is this expression certainly ONE leaf of ``nest.flatten`` (``is_one``), and certainly a
  tensor (``is_tensor``)? A call of a TensorFlow op that returns one tensor is; a call of a
  multi-output op (``MULTI_OUTPUT``, ``STRUCTURED``) or of any other function is not known;
- what are the leaves of a tuple/list literal (``leaves``), or None when an element may be
  a sequence (a list variable, a comprehension, ``tf.gradients(...)``, a starred element)?
- which inputs of a cg function may be sequences (``sequence_inputs``): a list argument
  flattens to many inputs, so their count is unknown.

Names are resolved through the module index; a name counts only when every value bound to it
is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import libcst as cst

from tfgradlint.walk import iter_children

from tfgradlint.index import (
    UNKNOWN,
    CgFunction,
    FunctionInfo,
    GradFn,
    ModuleIndex,
    Scope,
    dotted_name,
)

# Namespaces whose lower-case functions return one tensor, except the names listed below.
ONE_TENSOR_NAMESPACES = frozenset(
    {"tensorflow", "tensorflow.math", "tensorflow.nn", "tensorflow.linalg", "keras.ops"}
)
# TensorFlow's own modules (``from tensorflow.python.ops import math_ops``): the index maps
# ``math_ops.multiply`` to ``tensorflow.multiply``; only these modules are trusted to hold
# ops (``gen_*_ops`` hold raw ops, some with many outputs, and are never trusted).
INTERNAL_OP_MODULES = frozenset(
    {"math_ops", "array_ops", "nn_ops", "nn_impl", "clip_ops", "linalg_ops", "special_math_ops"}
)

_TF_SEQUENCE_OPS = (
    # array and math ops returning a flat list/tuple of tensors
    "split unstack meshgrid unique unique_with_counts shape_n identity_n dynamic_partition "
    "setdiff1d listdiff approx_top_k ragged_fill_empty_rows ragged_fill_empty_rows_grad "
    "required_space_to_batch_paddings gradients hessians top_k svd qr self_adjoint_eig eig "
    "eigh slogdet lu moments weighted_moments normalize_moments sufficient_statistics "
    "fused_batch_norm fused_batch_norm_v3 max_pool_with_argmax fractional_max_pool "
    "fractional_avg_pool broadcast_gradient_args sparse_split batch_gather_with_default"
).split()
_TF_NN_SEQUENCE_OPS = (
    "top_k approx_max_k approx_min_k moments weighted_moments normalize_moments "
    "sufficient_statistics fused_batch_norm max_pool_with_argmax fractional_max_pool "
    "fractional_avg_pool collapse_repeated ctc_unique_labels compute_accidental_hits "
    "isotonic_regression"
).split()
_KERAS_SEQUENCE_OPS = (
    "array_split dsplit hsplit vsplit split unstack meshgrid moments top_k qr svd eig eigh "
    "slogdet lu_factor fft fft2 ifft2 rfft stft nonzero unravel_index unique histogram"
).split()

# Calls that return a flat list/tuple of tensors: ``a, b = tf.split(x, 2)`` binds tensors.
MULTI_OUTPUT = frozenset(
    ["tensorflow." + n for n in _TF_SEQUENCE_OPS]
    + ["tensorflow.nn." + n for n in _TF_NN_SEQUENCE_OPS]
    + ["tensorflow.math." + n for n in ("top_k", "approx_max_k", "approx_min_k")]
    + ["tensorflow.linalg." + n for n in ("eig", "eigh", "svd", "qr", "slogdet", "lu", "eigh_tridiagonal")]
    + ["keras.ops." + n for n in _KERAS_SEQUENCE_OPS]
)

# Calls whose result is any structure (control flow, Python callbacks, lists, decoders).
STRUCTURED = frozenset(
    ["tensorflow." + n for n in (
        "while_loop cond case switch_case map_fn scan foldl foldr vectorized_map py_function "
        "numpy_function py_func eager_py_func tuple group clip_by_global_norm import_graph_def "
        "get_collection trainable_variables global_variables local_variables "
        "batch_function nondifferentiable_batch_function while_loop_v2 cond_v2 switch_case_v2"
    ).split()]
    + ["tensorflow.nn." + n for n in (
        "ctc_beam_search_decoder ctc_beam_search_decoder_v2 ctc_greedy_decoder dynamic_rnn "
        "bidirectional_dynamic_rnn raw_rnn static_rnn static_bidirectional_rnn "
        "static_state_saving_rnn"
    ).split()]
    + ["keras.ops." + n for n in (
        "associative_scan cond ctc_decode fori_loop jvp map scan switch vectorize "
        "vectorized_map while_loop shape"
    ).split()]
)

# Functions in the trusted namespaces that are not ops returning one tensor.
NOT_AN_OP = frozenset(
    ["tensorflow." + n for n in (
        "function custom_gradient recompute_grad grad_pass_through name_scope init_scope "
        "device control_dependencies get_logger no_op print make_tensor_proto "
        "register_tensor_conversion_function load_op_library load_library no_gradient "
        "get_current_name_scope broadcast_static_shape make_template variable_scope "
        "get_variable_scope executing_eagerly get_static_value autograph nest "
        "get_variable convert_to_tensor_or_indexed_slices"
    ).split()]
    + ["keras.ops." + n for n in ("custom_gradient", "convert_to_numpy")]
)

# Sequence-consuming APIs: a parameter passed to these is (probably) a list of tensors.
SEQUENCE_CONSUMERS = frozenset(
    ["tensorflow." + n for n in (
        "stack concat add_n parallel_stack identity_n tuple group dynamic_stitch "
        "accumulate_n meshgrid"
    ).split()]
    + ["tensorflow.math.add_n", "tensorflow.math.accumulate_n"]
    + ["keras.ops." + n for n in ("stack", "concatenate", "hstack", "vstack", "dstack")]
)
_SEQUENCE_BUILTINS = frozenset(
    "builtins." + n
    for n in "len list tuple zip enumerate map filter sorted reversed iter sum any all isinstance dict set".split()
)
_BUILTIN_SEQUENCES = frozenset(
    "builtins." + n for n in "list tuple sorted reversed zip map filter dict set range enumerate".split()
)
_BUILTIN_ONE = frozenset("builtins." + n for n in "float int bool complex str len abs".split())

# Attributes a tensor (or variable) has: ``x.<attr>`` on anything else suggests a structure.
TENSOR_ATTRS = frozenset(
    (
        "shape dtype ndim name device op graph numpy get_shape set_shape T real imag "
        "value_index consumers eval ref experimental_ref astype size rank assign assign_add "
        "assign_sub read_value value trainable handle sparse_read initialized_value __array__ "
        "to_list flat_values values dense_shape indices"
    ).split()
)

# Multiply/add can build lists (``[None] * n``); these operators cannot.
_ONE_RESULT_OPS = (
    cst.Subtract,
    cst.Divide,
    cst.FloorDivide,
    cst.Modulo,
    cst.Power,
    cst.MatrixMultiply,
    cst.LeftShift,
    cst.RightShift,
)
_ARITHMETIC = (*_ONE_RESULT_OPS, cst.Add, cst.Multiply, cst.BitAnd, cst.BitOr, cst.BitXor)


def raw_import_path(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope) -> Optional[str]:
    """The import path ``expr`` is spelled through, before canonicalisation, or None."""
    dotted = dotted_name(expr)
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    s, _values = index.lookup(head, scope)
    if s is None or head not in s.imports or head in s.bindings:
        return None
    return s.imports[head] + ("." + rest if rest else "")


def _keras_public(q: str) -> str:
    """``keras.src.ops.numpy.multiply`` (Keras' own spelling) -> ``keras.ops.multiply``."""
    if q.startswith("keras.src.ops."):
        parts = q.split(".")
        if len(parts) == 4 or (len(parts) == 5 and parts[3] in ("numpy", "math", "nn", "core", "linalg")):
            return "keras.ops." + parts[-1]
    return q


def callee_kind(index: ModuleIndex, call: cst.Call, scope: Scope) -> Optional[str]:
    """"one" (a TensorFlow/Keras op returning one tensor), "seq" (a flat sequence of
    tensors), "struct" (any structure), or None (not known)."""
    q = index.qualified(call.func, scope)
    if q is None:
        return None
    q = _keras_public(q)
    if q in MULTI_OUTPUT:
        return "seq"
    if q in STRUCTURED or q.startswith(("tensorflow.nest.", "tensorflow.raw_ops.")):
        return "struct"
    namespace, _, leaf = q.rpartition(".")
    if namespace not in ONE_TENSOR_NAMESPACES or q in NOT_AN_OP:
        return None
    if not leaf[:1].islower() or leaf.startswith(("assert_", "_")) or leaf.endswith(
        ("_initializer", "_candidate_sampler", "_scope")
    ):
        return None
    raw = raw_import_path(index, call.func, scope)
    if raw is None:
        return None
    if raw.startswith("tensorflow.python."):
        parts = raw.split(".")
        if len(parts) < 2 or parts[-2] not in INTERNAL_OP_MODULES:
            return None
    elif not (raw.startswith(("tensorflow.", "keras.")) or raw in ("tensorflow", "keras")):
        return None
    return "one"


def is_numpy_call(index: ModuleIndex, expr: cst.BaseExpression, scope: Scope) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    q = index.qualified(expr.func, scope)
    return bool(q) and (q.startswith("numpy.") or q == "numpy")


def is_numpy_method(expr: cst.BaseExpression) -> bool:
    """``<expr>.numpy()``."""
    return (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value == "numpy"
        and not expr.args
    )


def number_value(expr: cst.BaseExpression) -> Optional[complex]:
    """The value of a numeric literal (``2``, ``-1.0``, ``+3``), else None."""
    sign = 1
    while isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        if isinstance(expr.operator, cst.Minus):
            sign = -sign
        expr = expr.expression
    try:
        if isinstance(expr, cst.Integer):
            return sign * int(expr.value.replace("_", ""), 0)
        if isinstance(expr, cst.Float):
            return sign * float(expr.value.replace("_", ""))
        if isinstance(expr, cst.Imaginary):
            return sign * complex(expr.value.replace("_", ""))
    except ValueError:
        return None
    return None


def tensor_params(index: ModuleIndex) -> dict[int, frozenset[str]]:
    """For every grad fn of the module: its upstream parameters (each one tensor)."""
    cached = getattr(index, "_tfgradlint_tensor_params", None)
    if cached is not None:
        return cached
    out: dict[int, set[str]] = {}
    for cg in index.cg_functions:
        for g in cg.grad_fns():
            if g.info.has_star_args():
                continue
            out.setdefault(id(g.info), set()).update(p.name.value for p in g.upstream_params())
    result = {k: frozenset(v) for k, v in out.items()}
    index._tfgradlint_tensor_params = result  # type: ignore[attr-defined]
    return result


class Resolver:
    """Answers "one leaf / one tensor / which leaves" for expressions of one module."""

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.upstream = tensor_params(index)
        self._stack: set[tuple[int, str]] = set()
        self._seq_stack: set[tuple[int, str]] = set()

    # -- names -------------------------------------------------------------------------

    def _name_values(self, name: str, scope: Scope) -> Optional[tuple[Scope, list]]:
        """(binding scope, values) for a local name; None for parameters/imports/unknown."""
        s, values = self.index.lookup(name, scope)
        if s is None or name in s.imports:
            return None
        if isinstance(s, FunctionInfo) and name in s.param_names():
            return None
        if not values:
            return None
        return s, values

    def _unpacked_from_sequence_op(self, name: str, s: Scope, values: list) -> bool:
        """Every UNKNOWN binding of ``name`` in ``s`` is ``a, b = <multi-output op>(...)``."""
        unknown = sum(1 for v in values if v is UNKNOWN)
        if not unknown:
            return True
        found = 0
        for node in s.assigns:
            if not isinstance(node, cst.Assign) or not isinstance(node.value, cst.Call):
                continue
            if callee_kind(self.index, node.value, s) != "seq":
                continue
            for t in node.targets:
                if isinstance(t.target, (cst.Tuple, cst.List)):
                    for el in t.target.elements:
                        if isinstance(el, cst.Element) and isinstance(el.value, cst.Name) and el.value.value == name:
                            found += 1
        return found == unknown and name not in s.functions and name not in s.classes

    def _all_values(self, name: str, scope: Scope, pred) -> bool:
        key = (id(scope), name)
        if key in self._stack:
            return False
        bound = self._name_values(name, scope)
        if bound is None:
            return False
        s, values = bound
        if not self._unpacked_from_sequence_op(name, s, values):
            return False
        self._stack.add(key)
        try:
            return all(v is UNKNOWN or pred(v, s) for v in values)
        finally:
            self._stack.discard(key)

    def is_upstream(self, name: str, scope: Scope) -> bool:
        s, _ = self.index.lookup(name, scope)
        return isinstance(s, FunctionInfo) and name in self.upstream.get(id(s), ())

    # -- one tensor / one leaf -----------------------------------------------------------

    def is_tensor(self, expr: cst.BaseExpression, scope: Scope) -> bool:
        """Certainly one tensor."""
        if isinstance(expr, cst.Name):
            if expr.value in ("None", "True", "False"):
                return False
            if self.is_upstream(expr.value, scope):
                return True
            return self._all_values(expr.value, scope, self.is_tensor)
        if isinstance(expr, cst.Call):
            return callee_kind(self.index, expr, scope) == "one"
        if isinstance(expr, cst.UnaryOperation):
            return isinstance(expr.operator, (cst.Minus, cst.Plus, cst.BitInvert)) and self.is_tensor(
                expr.expression, scope
            )
        if isinstance(expr, cst.BinaryOperation):
            return isinstance(expr.operator, _ARITHMETIC) and (
                self.is_tensor(expr.left, scope) or self.is_tensor(expr.right, scope)
            )
        if isinstance(expr, cst.Subscript):
            return self.is_tensor(expr.value, scope)
        if isinstance(expr, cst.IfExp):
            return self.is_tensor(expr.body, scope) and self.is_tensor(expr.orelse, scope)
        return False

    def is_one(self, expr: cst.BaseExpression, scope: Scope) -> bool:
        """Certainly one leaf of ``nest.flatten`` (a tensor, a number, None, a string...)."""
        if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString,
                             cst.ConcatenatedString, cst.FormattedString, cst.Comparison)):
            return True
        if isinstance(expr, cst.Name):
            if expr.value in ("None", "True", "False"):
                return True
            if self.is_upstream(expr.value, scope):
                return True
            return self._all_values(expr.value, scope, self.is_one)
        if isinstance(expr, cst.UnaryOperation):
            return True  # -x, +x, ~x, not x: never a sequence
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, _ONE_RESULT_OPS):
                return True
            if self.is_tensor(expr.left, scope) or self.is_tensor(expr.right, scope):
                return True
            if not isinstance(expr.operator, (cst.Add, cst.Multiply)):
                return False
            # a list/tuple/string plus a number, or times a float, is a TypeError
            numbers = (cst.Integer, cst.Float, cst.Imaginary) if isinstance(expr.operator, cst.Add) else (
                cst.Float, cst.Imaginary
            )
            if isinstance(expr.left, numbers) or isinstance(expr.right, numbers):
                return True
            return self.is_one(expr.left, scope) and self.is_one(expr.right, scope)
        if isinstance(expr, cst.BooleanOperation):
            return self.is_one(expr.left, scope) and self.is_one(expr.right, scope)
        if isinstance(expr, cst.IfExp):
            return self.is_one(expr.body, scope) and self.is_one(expr.orelse, scope)
        if isinstance(expr, cst.Call):
            if callee_kind(self.index, expr, scope) == "one" or is_numpy_method(expr):
                return True
            return self.index.qualified(expr.func, scope) in _BUILTIN_ONE
        return self.is_tensor(expr, scope)

    # -- sequences ------------------------------------------------------------------------

    def maybe_sequence(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> bool:
        """Evidence that ``expr`` may be a list/tuple/dict (so it flattens to 0..n leaves)."""
        if depth > 40:
            return True
        if isinstance(expr, (cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp, cst.SetComp,
                             cst.DictComp, cst.GeneratorExp, cst.StarredElement)):
            return True
        if isinstance(expr, cst.Call):
            q = self.index.qualified(expr.func, scope)
            if q in _BUILTIN_SEQUENCES:
                return True
            if callee_kind(self.index, expr, scope) in ("seq", "struct"):
                return True
            dotted = dotted_name(expr.func) or ""
            return "nest" in dotted.split(".") or dotted.endswith(("flatten", "map_structure", "pack_sequence_as"))
        if isinstance(expr, cst.BinaryOperation):
            return self.maybe_sequence(expr.left, scope, depth) or self.maybe_sequence(expr.right, scope, depth)
        if isinstance(expr, cst.IfExp):
            return self.maybe_sequence(expr.body, scope, depth) or self.maybe_sequence(expr.orelse, scope, depth)
        if isinstance(expr, cst.Subscript):
            if any(isinstance(e.slice, cst.Slice) for e in expr.slice):
                return self.maybe_sequence(expr.value, scope, depth)
            return False
        if isinstance(expr, cst.Name):
            if expr.value == "variables":
                s, _ = self.index.lookup("variables", scope)
                if isinstance(s, FunctionInfo) and "variables" in s.param_names():
                    return True
            bound = self._name_values(expr.value, scope)
            if bound is None:
                return False
            s, values = bound
            key = (id(s), expr.value)
            if key in self._seq_stack:
                return False  # a cycle: the other bindings decide
            self._seq_stack.add(key)
            try:
                return any(v is not UNKNOWN and self.maybe_sequence(v, s, depth + 1) for v in values)
            finally:
                self._seq_stack.discard(key)
        return False

    def leaves(self, expr: cst.BaseExpression, scope: Scope) -> Optional[list[cst.BaseExpression]]:
        """The flattened elements of a tuple/list literal, each one leaf; None if unknown."""
        if not isinstance(expr, (cst.Tuple, cst.List)):
            return None
        out: list[cst.BaseExpression] = []
        for el in expr.elements:
            if isinstance(el, cst.StarredElement):
                return None
            value = el.value
            if isinstance(value, (cst.Tuple, cst.List)):
                sub = self.leaves(value, scope)
                if sub is None:
                    return None
                out.extend(sub)
            elif self.maybe_sequence(value, scope):
                return None
            else:
                out.append(value)
        return out

    def count(self, expr: cst.BaseExpression, scope: Scope) -> Optional[list[cst.BaseExpression]]:
        """The leaves ``expr`` flattens to: a literal's elements, ``[expr]`` for one leaf, a
        name bound once to a tuple literal; None when unknown."""
        if isinstance(expr, (cst.Tuple, cst.List)):
            return self.leaves(expr, scope)
        if self.is_one(expr, scope):
            return [expr]
        if isinstance(expr, cst.Name):
            bound = self._name_values(expr.value, scope)
            if bound is not None:
                s, values = bound
                if len(values) == 1 and isinstance(values[0], cst.Tuple):
                    return self.leaves(values[0], s)
        return None


# -- cg functions and their grad fns ----------------------------------------------------


@dataclass
class Arity:
    names: list[str]
    required: int

    @property
    def total(self) -> int:
        return len(self.names)

    def accepts(self, k: int) -> bool:
        return self.required <= k <= self.total

    def describe(self) -> str:
        n = self.total
        if self.required == n:
            count = f"{n} input" + ("" if n == 1 else "s")
        elif n - self.required == 1:
            count = f"{self.required} or {n} inputs"
        else:
            count = f"{self.required} to {n} inputs"
        return f"{count} ({', '.join(self.names)})" if self.names else count


def cg_arity(index: ModuleIndex, cg: CgFunction) -> Optional[Arity]:
    """The cg function's input count (None with ``*args``)."""
    if cg.info.has_star_args():
        return None
    inputs = cg.inputs(index)
    return Arity([p.name.value for p in inputs], sum(1 for p in inputs if p.default is None))


def upstream_arity(grad: GradFn) -> Optional[Arity]:
    """How many upstream gradients the grad fn accepts positionally (None with ``*args``)."""
    if grad.info.has_star_args():
        return None
    ups = grad.upstream_params()
    return Arity([p.name.value for p in ups], sum(1 for p in ups if p.default is None))


def cg_of(index: ModuleIndex, info: FunctionInfo) -> Optional[CgFunction]:
    for cg in index.cg_functions:
        if cg.info is info:
            return cg
    return None


def decorated_below(cg: CgFunction) -> bool:
    """Another decorator sits between ``@tf.custom_gradient`` and the ``def``."""
    decs = list(cg.info.decorators)
    for i, d in enumerate(decs):
        if d is cg.marker:
            return i < len(decs) - 1
    return False


@dataclass
class GradReturn:
    """One ``return`` of a grad fn and the expression that holds its input gradients."""

    anchor: cst.CSTNode  # the return statement (a lambda's body)
    value: Optional[cst.BaseExpression]  # the returned expression
    inputs_expr: Optional[cst.BaseExpression]  # the input gradients; None when unknown
    scope: Scope  # where names in the expressions are looked up


def grad_returns(index: ModuleIndex, grad: GradFn) -> list[GradReturn]:
    """The grad fn's returns, with the input gradients singled out.

    A grad fn that is itself a cg function (TGL113) returns ``(gradient, grad_grad_fn)``:
    its gradient is the first item. A grad fn that takes ``variables`` returns
    ``(input_grads, variable_grads)``. With ``**kwargs`` (and no ``variables``) the shape of
    the result depends on whether TensorFlow passes variables: unknown.
    """
    out: list[GradReturn] = []
    inner = cg_of(index, grad.info)
    if inner is not None:
        for r in inner.returns:
            out.append(GradReturn(r.node, r.node.value, r.output, grad.info))
        return out
    if isinstance(grad.node, cst.Lambda):
        pairs: list[tuple[cst.CSTNode, Optional[cst.BaseExpression]]] = [(grad.node.body, grad.node.body)]
    else:
        pairs = [(r, r.value) for r in grad.info.returns]
    takes_variables = grad.variables_param() is not None
    for anchor, value in pairs:
        if value is None:
            continue
        expr: Optional[cst.BaseExpression] = value
        if takes_variables:
            expr = None
            if (
                isinstance(value, (cst.Tuple, cst.List))
                and len(value.elements) == 2
                and not any(isinstance(e, cst.StarredElement) for e in value.elements)
            ):
                expr = value.elements[0].value
        elif grad.info.has_star_kwargs():
            expr = None
        out.append(GradReturn(anchor, value, expr, grad.info))
    return out


# -- walking -------------------------------------------------------------------------------


def walk(node: cst.CSTNode, *, nested: bool = True) -> Iterator[cst.CSTNode]:
    """Every node under ``node`` (not into nested defs/lambdas/classes unless ``nested``)."""
    stack: list[cst.CSTNode] = list(reversed(list(iter_children(node))))
    while stack:
        n = stack.pop()
        yield n
        if not nested and isinstance(n, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            continue
        stack.extend(reversed(list(iter_children(n))))


def _push_target(stack: list[cst.CSTNode], target: cst.BaseExpression) -> None:
    if isinstance(target, cst.Name):
        return
    if isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            _push_target(stack, el.value)
    elif isinstance(target, cst.StarredElement):
        _push_target(stack, target.value)
    else:
        stack.append(target)  # a subscript/attribute target reads its base


def name_loads(node: cst.CSTNode) -> Iterator[cst.Name]:
    """Names read under ``node``: not assignment targets, attribute names, keywords,
    parameter or definition names."""
    stack: list[cst.CSTNode] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            yield n
        elif isinstance(n, cst.Attribute):
            stack.append(n.value)
        elif isinstance(n, cst.Arg):
            stack.append(n.value)
        elif isinstance(n, cst.Param):
            if n.default is not None:
                stack.append(n.default)
        elif isinstance(n, cst.FunctionDef):
            stack.extend(n.decorators)
            stack.append(n.params)
            stack.append(n.body)
        elif isinstance(n, cst.ClassDef):
            stack.extend(n.decorators)
            stack.extend(n.bases)
            stack.append(n.body)
        elif isinstance(n, cst.AssignTarget):
            _push_target(stack, n.target)
        elif isinstance(n, cst.AnnAssign):
            _push_target(stack, n.target)
            if n.value is not None:
                stack.append(n.value)
        elif isinstance(n, (cst.For, cst.CompFor)):
            _push_target(stack, n.target)
            stack.extend(c for c in iter_children(n) if c is not n.target)
        elif isinstance(n, cst.WithItem):
            stack.append(n.item)
        elif isinstance(n, cst.NamedExpr):
            stack.append(n.value)
        elif isinstance(n, (cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal)):
            continue
        elif isinstance(n, cst.ExceptHandler):
            if n.type is not None:
                stack.append(n.type)
            stack.append(n.body)
        else:
            stack.extend(iter_children(n))


def body_of(fn: FunctionInfo) -> cst.CSTNode:
    return fn.node.body  # type: ignore[union-attr]


def sequence_inputs(index: ModuleIndex, cg: CgFunction, inputs: list[str]) -> set[str]:
    """The inputs that the cg function (or its grad fn) uses as sequences or structures:
    ``len(x)``, ``for a in x``, ``a, b = x``, ``*x``, ``x[0]``, ``x["k"]``, ``x.field``,
    ``tf.stack(x)``, ``tf.nest.*(x)``... A list argument flattens to many inputs."""
    wanted = set(inputs)
    found: set[str] = set()

    def is_input(e: cst.CSTNode) -> Optional[str]:
        if isinstance(e, cst.Name) and e.value in wanted:
            return e.value
        return None

    for n in walk(body_of(cg.info)):
        if isinstance(n, cst.Arg) and n.star in ("*", "**"):
            name = is_input(n.value)
        elif isinstance(n, cst.StarredElement):
            name = is_input(n.value)
        elif isinstance(n, (cst.For, cst.CompFor)):
            name = is_input(n.iter)
        elif isinstance(n, cst.Assign) and any(isinstance(t.target, (cst.Tuple, cst.List)) for t in n.targets):
            name = is_input(n.value)
        elif isinstance(n, cst.Subscript):
            name = is_input(n.value)
            if name is not None:
                slices = [e.slice for e in n.slice]
                constant = len(slices) == 1 and isinstance(slices[0], cst.Index) and (
                    number_value(slices[0].value) is not None
                    or isinstance(slices[0].value, (cst.SimpleString, cst.ConcatenatedString))
                )
                if not constant:
                    name = None
        elif isinstance(n, cst.Attribute):
            name = is_input(n.value)
            if name is not None and n.attr.value in TENSOR_ATTRS:
                name = None
        elif isinstance(n, cst.Call):
            q = index.qualified(n.func, cg.info) or ""
            dotted = dotted_name(n.func) or ""
            consumer = (
                q in _SEQUENCE_BUILTINS
                or q in SEQUENCE_CONSUMERS
                or q.startswith("tensorflow.nest.")
                or "nest" in dotted.split(".")
            )
            name = None
            if consumer:
                for a in n.args:
                    name = name or is_input(a.value)
                    if isinstance(a.value, (cst.List, cst.Tuple)):
                        for el in a.value.elements:
                            name = name or is_input(el.value)
        else:
            name = None
        if name is not None:
            found.add(name)
    for p in inputs:
        if p in ("xs", "ys", "args", "inputs", "tensors", "values", "params", "elems", "structure") or p.endswith(
            ("_list", "_tuple", "_seq", "_dict", "_struct", "_structure")
        ):
            found.add(p)
    return found


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def quote_list(items: list[str]) -> str:
    q = [f"'{i}'" for i in items]
    if len(q) <= 1:
        return "".join(q)
    return ", ".join(q[:-1]) + " and " + q[-1]
