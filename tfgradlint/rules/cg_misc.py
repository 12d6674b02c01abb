"""TGL111, TGL112: custom gradients that only work eagerly.

NumPy inside a custom-gradient (cg) function or its grad fn works on eager tensors and fails on
the symbolic tensors of ``tf.function``; ``@tf.custom_gradient`` above ``@tf.function`` makes
``tf.function`` trace a function that returns the grad fn, which it cannot return.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from tfgradlint import names
from tfgradlint.context import FixSpec
from tfgradlint.index import CgFunction, FunctionInfo, ModuleIndex
from tfgradlint.rules.base import Invalid, Rule, Valid
from tfgradlint.rules.cg_variables import is_load_name, own_body, walk_own

# A tensor passed to these is not converted to a NumPy value.
_SHAPE_ONLY_BUILTINS = frozenset({"builtins.len", "builtins.isinstance", "builtins.type", "builtins.id",
                                  "builtins.getattr", "builtins.hasattr", "builtins.repr", "builtins.str",
                                  "builtins.print"})


def _tensor_params(index: ModuleIndex, cg: CgFunction) -> dict[int, set[str]]:
    """Per function scope (by id of its FunctionInfo), the parameter names that are tensors.

    The cg function's inputs without a default (TensorFlow converts every positional argument
    to a tensor under tf.function; a default that is not passed stays a Python value) and the
    grad fn's upstream parameters.
    """
    out: dict[int, set[str]] = {id(cg.info): {p.name.value for p in cg.inputs(index) if p.default is None}}
    for grad in cg.grad_fns():
        out[id(grad.info)] = {p.name.value for p in grad.upstream_params()}
    return out


def _is_tensor_param(index: ModuleIndex, name: str, scope: FunctionInfo, params: dict[int, set[str]]) -> bool:
    s, _ = index.lookup(name, scope)
    return s is not None and name in params.get(id(s), ())


def _value_uses(index: ModuleIndex, expr: cst.CSTNode, scope: FunctionInfo, params: dict[int, set[str]]) -> Optional[str]:
    """The first tensor parameter ``expr`` uses as a value (not only its .shape, len(), ...)."""
    if isinstance(expr, (cst.Lambda, cst.FunctionDef)):
        return None
    for node, parent in walk_own(expr):
        if isinstance(node, cst.Call):
            q = index.qualified(node.func, scope)
            if q in _SHAPE_ONLY_BUILTINS:
                continue
        if not isinstance(node, cst.Name) or not is_load_name(node, parent):
            continue
        if isinstance(parent, cst.Attribute) and parent.value is node:
            continue  # x.shape, x.dtype, x.numpy() (reported on its own)
        if _inside_shape_only(index, node, expr, scope):
            continue
        if _is_tensor_param(index, node.value, scope, params):
            return node.value
    return None


def _inside_shape_only(index: ModuleIndex, node: cst.CSTNode, stop: cst.CSTNode, scope: FunctionInfo) -> bool:
    for anc in index.ancestors(node):
        if isinstance(anc, cst.Call) and index.qualified(anc.func, scope) in _SHAPE_ONLY_BUILTINS:
            return True
        if anc is stop:
            return False
    return False


class NumpyInCustomGradient(Rule):
    code = "TGL111"
    name = "numpy-in-custom-gradient"
    severity = "warning"
    summary = "NumPy (`.numpy()`, `float(t)`, `np.<func>(t)`) inside a custom-gradient function or its grad fn."
    what = (
        "Inside a `tf.custom_gradient` function or its grad fn, finds `.numpy()`, `float(t)` / "
        "`int(t)` of a parameter, and `np.<func>(...)` applied to a parameter or an upstream "
        "gradient."
    )
    why = (
        "It works eagerly, but under `tf.function` (and Keras `fit`) the tensors are symbolic and "
        "have no NumPy value: the function fails as soon as it is traced. Use the TensorFlow op "
        "(`tf.sign`, `tf.cast`, `tf.reduce_mean`, ...) or wrap NumPy code in `tf.numpy_function`."
    )
    tensorflow_error = (
        "`NotImplementedError: Cannot convert a symbolic tf.Tensor (...) to a numpy array` or "
        "`AttributeError: 'SymbolicTensor' object has no attribute 'numpy'` under `tf.function`."
    )
    example = """
import numpy as np
import tensorflow as tf

@tf.custom_gradient
def sign_ste(x):
    def grad(dy):
        return dy * np.abs(x) <= 1.0
    return tf.sign(x), grad
"""
    instead = """
import tensorflow as tf

@tf.custom_gradient
def sign_ste(x):
    def grad(dy):
        return dy * tf.cast(tf.abs(x) <= 1.0, dy.dtype)
    return tf.sign(x), grad
"""
    valid = (
        Valid("import numpy as np\nimport tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    def grad(dy):\n        return dy * np.pi\n    return x * np.float32(2.0), grad\n"),
        Valid("import numpy as np\nimport tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    y = tf.cast(x, np.float32)\n    def grad(dy):\n        return dy * np.sqrt(2.0)\n"
              "    return y, grad\n"),
        # inside tf.numpy_function / tf.py_function callbacks
        Valid("import numpy as np\nimport tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    y = tf.numpy_function(lambda a: np.sign(a), [x], tf.float32)\n"
              "    def grad(dy):\n        def _np(d):\n            return np.clip(d.numpy(), -1, 1)\n"
              "        return tf.py_function(_np, [dy], tf.float32)\n    return y, grad\n"),
        # the shape, not the value
        Valid("import numpy as np\nimport tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
              "    n = np.prod(x.shape)\n    m = int(len(x))\n    def grad(dy):\n        return dy / n\n"
              "    return x * n, grad\n"),
        # not a cg function
        Valid("import numpy as np\nimport tensorflow as tf\ndef f(x):\n    return np.sign(x.numpy())\n"),
        # a Python-valued parameter with a default
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x, k=2):\n"
              "    def grad(dy):\n        return dy * float(k)\n    return x * float(k), grad\n"),
        # an eager-only branch
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    if tf.executing_eagerly():\n"
              "        print(x.numpy())\n    return x, lambda dy: dy\n"),
    )
    invalid = (
        Invalid(
            "import numpy as np\nimport tensorflow as tf\n\n@tf.custom_gradient\ndef sign_ste(x):\n"
            "    def grad(dy):\n        return dy * np.abs(x) <= 1.0\n    return tf.sign(x), grad\n",
            line=7,
            message_contains=("np.abs", "'x'", "'sign_ste'", "tf.function"),
        ),
        Invalid(
            "import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    scale = x.numpy().max()\n"
            "    def grad(dy):\n        return dy * float(dy)\n    return x * scale, grad\n",
            lines=[4, 6],
            message_contains=("'f'",),
        ),
        Invalid(
            "import numpy\nimport tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n"
            "    return x, lambda dy: dy * numpy.asarray(numpy.sign(dy))\n",
            line=5,
            message_contains=("numpy.asarray", "'<lambda>'"),
        ),
        Invalid(
            "import tensorflow as tf\nclass L(tf.keras.layers.Layer):\n    @tf.custom_gradient\n"
            "    def f(self, x, k):\n        n = int(k)\n        return x * n, lambda dy: dy * n\n"
            "    def call(self, x):\n        return self.f(x, 3)\n",
            line=5,
            message_contains=("int(k)",),
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for cg in index.cg_functions:
            params = _tensor_params(index, cg)
            scopes: list[tuple[FunctionInfo, str]] = [(cg.info, cg.name)]
            for grad in cg.grad_fns():
                if all(grad.info is not s for s, _ in scopes):
                    scopes.append((grad.info, f"grad fn '{grad.name}' of"))
            found: list[tuple[cst.Call, str]] = []
            for scope, where in scopes:
                for node, parent in walk_own(own_body(scope.node), skip_eager_guards=True):
                    if not isinstance(node, cst.Call):
                        continue
                    what = self._numpy_use(index, node, scope, params)
                    if what is not None:
                        place = f"custom-gradient function '{cg.name}'" if scope is cg.info else f"{where} '{cg.name}'"
                        found.append((node, f"{what} in {place}"))
            # one finding per nested expression: keep the outermost call
            ids = {id(c) for c, _ in found}
            for call, text in found:
                if any(id(a) in ids for a in index.ancestors(call)):
                    continue
                ctx.report(
                    call,
                    f"{text} needs a concrete value: it works eagerly but fails under tf.function "
                    f"(symbolic tensors have no NumPy value); use TensorFlow ops (tf.sign, tf.cast, "
                    f"tf.reduce_*) or tf.numpy_function",
                    subject=cg.name,
                )

    @staticmethod
    def _numpy_use(index: ModuleIndex, call: cst.Call, scope: FunctionInfo, params) -> Optional[str]:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "numpy" and not call.args:
            base = func.value
            if isinstance(base, cst.Name) and index.qualified(base, scope) is not None:
                return None  # a module's numpy attribute, not a tensor method
            return f"{_short(index, base)}.numpy()"
        q = index.qualified(func, scope)
        if q in ("builtins.float", "builtins.int"):
            if len(call.args) != 1 or call.args[0].keyword is not None:
                return None
            arg = call.args[0].value
            target = arg.value if isinstance(arg, cst.Subscript) else arg
            if isinstance(target, cst.Name) and _is_tensor_param(index, target.value, scope, params):
                return f"{q.split('.')[1]}({_short(index, arg)})"
            return None
        if q is not None and (q == "numpy" or q.startswith("numpy.")):
            for a in call.args:
                used = _value_uses(index, a.value, scope, params)
                if used is not None:
                    return f"{_code(index, func)}(...) of '{used}'"
        return None


def _code(index: ModuleIndex, node: cst.CSTNode) -> str:
    return index.module.code_for_node(node).strip()


def _short(index: ModuleIndex, node: cst.CSTNode) -> str:
    text = _code(index, node)
    return text if len(text) <= 40 else text[:37] + "..."


class DecoratorOrder(Rule):
    code = "TGL112"
    name = "decorator-order"
    severity = "error"
    summary = "`@tf.custom_gradient` stacked above `@tf.function`."
    what = "Finds `@tf.custom_gradient` written above `@tf.function` on the same function."
    why = (
        "Decorators apply bottom-up: `tf.function` wraps the function first and traces it, and the "
        "traced function returns the grad fn, which `tf.function` cannot return. Put "
        "`@tf.function` on top: it then traces the custom-gradient function."
    )
    tensorflow_error = (
        "`TypeError: To be compatible with tf.function, Python functions must return zero or "
        "more Tensors or ExtensionTypes or None values; in compilation of <function ...>, found "
        "return value of type function`."
    )
    example = """
import tensorflow as tf

@tf.custom_gradient
@tf.function
def clip_grad(x):
    return tf.identity(x), lambda dy: tf.clip_by_norm(dy, 1.0)
"""
    instead = """
import tensorflow as tf

@tf.function
@tf.custom_gradient
def clip_grad(x):
    return tf.identity(x), lambda dy: tf.clip_by_norm(dy, 1.0)
"""
    fix_safety = (
        "Safe when the two decorators are adjacent: swapping them gives the documented order, "
        "and the function's behaviour is what the author intended (the original order cannot "
        "run at all). No fix is offered when other decorators sit between them."
    )
    valid = (
        Valid("import tensorflow as tf\n@tf.function\n@tf.custom_gradient\ndef f(x):\n"
              "    return x, lambda dy: dy\n"),
        Valid("import tensorflow as tf\n@tf.custom_gradient\ndef f(x):\n    return x, lambda dy: dy\n"
              "g = tf.function(f)\n"),
        # a local function named like tf.function
        Valid("import tensorflow as tf\ndef function(f):\n    return f\n@tf.custom_gradient\n@function\n"
              "def f(x):\n    return x, lambda dy: dy\n"),
    )
    invalid = (
        Invalid(
            "import tensorflow as tf\n\n@tf.custom_gradient\n@tf.function\ndef clip_grad(x):\n"
            "    return tf.identity(x), lambda dy: tf.clip_by_norm(dy, 1.0)\n",
            line=3,
            message_contains=("'clip_grad'", "@tf.function", "above"),
            fixed="import tensorflow as tf\n\n@tf.function\n@tf.custom_gradient\ndef clip_grad(x):\n"
            "    return tf.identity(x), lambda dy: tf.clip_by_norm(dy, 1.0)\n",
        ),
        Invalid(
            "from tensorflow import custom_gradient, function\nclass M:\n    @custom_gradient\n"
            "    @function(jit_compile=True)\n    def f(self, x):\n        return x, lambda dy: dy\n",
            line=3,
            fixed="from tensorflow import custom_gradient, function\nclass M:\n    @function(jit_compile=True)\n"
            "    @custom_gradient\n    def f(self, x):\n        return x, lambda dy: dy\n",
        ),
        # not adjacent: reported without a fix
        Invalid(
            "import functools\nimport tensorflow as tf\n@tf.custom_gradient\n@functools.wraps(g)\n"
            "@tf.function\ndef f(x):\n    return x, lambda dy: dy\n",
            line=3,
        ),
    )

    def check(self, ctx) -> None:
        index = ctx.index
        for fn in index.functions:
            if fn.is_lambda or len(fn.decorators) < 2:
                continue
            qualified = index.decorator_names(fn)
            decorators = list(fn.decorators)
            cg_at = next((i for i, q in enumerate(qualified) if q in names.CUSTOM_GRADIENT), None)
            if cg_at is None:
                continue
            fn_at = next(
                (i for i, q in enumerate(qualified) if i > cg_at and q in names.TF_FUNCTION), None
            )
            if fn_at is None:
                continue
            cg_dec, tf_dec = decorators[cg_at], decorators[fn_at]
            fix = None
            if fn_at == cg_at + 1:
                fix = FixSpec(
                    "safe",
                    "Put @tf.function above @tf.custom_gradient",
                    [
                        (cg_dec.decorator, ctx.code_for(tf_dec.decorator).strip()),
                        (tf_dec.decorator, ctx.code_for(cg_dec.decorator).strip()),
                    ],
                )
            ctx.report(
                cg_dec,
                f"@{ctx.code_for(cg_dec.decorator).strip()} is stacked above "
                f"@{ctx.code_for(tf_dec.decorator).strip()} on '{fn.name}': tf.function then traces "
                f"a function that returns the grad fn and raises a TypeError; put @tf.function on "
                f"top",
                fix=fix,
                subject=fn.name,
            )
