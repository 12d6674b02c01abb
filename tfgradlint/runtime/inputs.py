"""Inputs for running a user's function: found statically, searched and built at run time.

Static side (no TensorFlow): ``input_plan`` describes each parameter of a function with the
evidence the file gives, in order of preference:

1. the file's own call sites, where an argument's shape is evident: ``tf.constant`` literals,
   ``tf.random.*(shape)``, ``tf.zeros/ones``, ``np.zeros/ones``, ``np.random.*``, ``tf.Variable``
   of those, or a name bound to one of them;
2. annotations and defaults (a Python number stays a Python number);
3. otherwise "any": a tensor whose shape the worker searches among a few candidates.

Worker side: ``combinations`` yields complete argument lists (call sites first, then variations
of one argument's shape at a time, then generic shapes), and ``materialize`` builds the values.

An input spec is a small JSON-able dict: ``{"kind": "tensor" | "variable", "shape": [2, 3],
"dtype": "float32", "values": [...]?, "source": "call at line 14"}``, ``{"kind": "python",
"value": 1.0, "source": "default"}`` or ``{"kind": "any", "source": "shape search"}``.
"""

from __future__ import annotations

import ast
from typing import Any, Iterator, Optional

from tfgradlint.runtime.harness import FunctionLoc, ModuleSource, dotted

GENERIC_SHAPES: list[list[int]] = [[2, 3], [3], [], [3, 3], [3, 2], [2, 3, 4], [4, 4], [1, 4, 4, 3]]
MAX_COMBINATIONS = 48
# Input shapes tried when a Keras layer is built and called (after any the file shows).
LAYER_SHAPES: list[list[int]] = [[2, 3], [2, 4], [2, 8], [2, 16], [2, 5, 3], [2, 4, 4, 3], [2, 8, 8, 3], [4, 10]]

_FLOAT_NAMES = {"float16", "float32", "float64", "bfloat16", "half", "double", "float"}
_DTYPE_ALIASES = {"half": "float16", "double": "float64", "float": "float32", "int": "int32"}


# -- static evidence ----------------------------------------------------------------------


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> full dotted name, for the module's top-level imports."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


class Evidence:
    """Reads evident values (shapes, dtypes, numbers) off expressions of one module."""

    def __init__(self, mod: ModuleSource) -> None:
        self.mod = mod
        self.aliases = import_aliases(mod.tree)

    def full_name(self, expr: ast.AST) -> Optional[str]:
        d = dotted(expr)
        if d is None:
            return None
        head, _, rest = d.partition(".")
        base = self.aliases.get(head)
        if base is None:
            return None
        full = base + ("." + rest if rest else "")
        for prefix in ("tensorflow.compat.v2.", "tensorflow.compat.v1."):
            if full.startswith(prefix):
                full = "tensorflow." + full[len(prefix):]
        return full

    # values ---------------------------------------------------------------------------

    def literal(self, expr: ast.AST, scope: Optional[ast.AST], depth: int = 0) -> Any:
        try:
            return ast.literal_eval(expr)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        if isinstance(expr, ast.Name) and depth < 3:
            bound = self.binding(expr.id, scope, getattr(expr, "lineno", None))
            if bound is not None:
                return self.literal(bound, scope, depth + 1)
        raise ValueError("not a literal")

    def binding(self, name: str, scope: Optional[ast.AST], line: Optional[int]) -> Optional[ast.expr]:
        """The value last assigned to ``name`` before ``line`` in ``scope``, else module level."""
        if scope is not None and not isinstance(scope, ast.Module):
            best = None
            for node in ast.walk(scope):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    if node.targets[0].id == name and (line is None or node.lineno < line):
                        if best is None or node.lineno > best.lineno:
                            best = node
            if best is not None:
                return best.value
            if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                args = scope.args
                if any(a.arg == name for a in args.posonlyargs + args.args + args.kwonlyargs):
                    return None
        return self.mod.module_assignment(name)

    def shape(self, expr: ast.AST, scope: Optional[ast.AST]) -> Optional[list[int]]:
        try:
            value = self.literal(expr, scope)
        except ValueError:
            return None
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 4096 for v in value):
            if _size(list(value)) <= 1_000_000:
                return list(value)
        return None

    def dtype(self, expr: Optional[ast.AST]) -> Optional[str]:
        if expr is None:
            return None
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            name = expr.value
        else:
            d = dotted(expr)
            if d is None:
                return None
            name = d.rsplit(".", 1)[-1]
        name = _DTYPE_ALIASES.get(name, name)
        if name in _FLOAT_NAMES or name.startswith(("int", "uint", "bool", "complex")):
            return name
        return None

    def spec(self, expr: ast.AST, scope: Optional[ast.AST], source: str, depth: int = 0) -> Optional[dict]:
        """An input spec for ``expr`` when its shape (or Python value) is evident."""
        if depth > 4:
            return None
        if isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float, bool)) and not isinstance(expr.value, complex):
            return {"kind": "python", "value": expr.value, "source": source}
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)) and isinstance(expr.operand, ast.Constant):
            try:
                return {"kind": "python", "value": ast.literal_eval(expr), "source": source}
            except ValueError:
                return None
        if isinstance(expr, ast.Name):
            bound = self.binding(expr.id, scope, getattr(expr, "lineno", None))
            if bound is None:
                return None
            return self.spec(bound, scope, source, depth + 1)
        if isinstance(expr, (ast.List, ast.Tuple)):
            return self._from_literal(expr, scope, None, source, "tensorflow")
        if not isinstance(expr, ast.Call):
            return None
        func = expr.func
        # x.astype(np.float32)
        if isinstance(func, ast.Attribute) and func.attr == "astype" and expr.args:
            inner = self.spec(func.value, scope, source, depth + 1)
            dt = self.dtype(expr.args[0])
            if inner is not None and inner["kind"] != "python" and dt:
                inner = dict(inner, dtype=dt)
            return inner
        name = self.full_name(func)
        if name is None:
            return None
        args = expr.args
        kw = {k.arg: k.value for k in expr.keywords if k.arg}
        if any(isinstance(a, ast.Starred) for a in args):
            return None
        lib = "numpy" if name.startswith("numpy.") else "tensorflow"

        def arg(i: int, key: str) -> Optional[ast.AST]:
            return args[i] if len(args) > i else kw.get(key)

        short = name.split(".", 1)[1] if "." in name else name
        if short in ("Variable",) and lib == "tensorflow":
            inner_expr = arg(0, "initial_value")
            inner = self.spec(inner_expr, scope, source, depth + 1) if inner_expr is not None else None
            if inner is None or inner["kind"] == "python":
                return None
            dt = self.dtype(kw.get("dtype"))
            out = dict(inner, kind="variable")
            if dt:
                out["dtype"] = dt
            return out
        if short in ("convert_to_tensor", "identity") or (lib == "numpy" and short in ("array", "asarray")):
            inner_expr = arg(0, "value")
            if inner_expr is None:
                return None
            if lib == "numpy" and isinstance(inner_expr, (ast.List, ast.Tuple)):
                return self._from_literal(inner_expr, scope, kw.get("dtype"), source, lib)
            inner = self.spec(inner_expr, scope, source, depth + 1)
            if inner is None:
                return None
            if inner["kind"] == "python":
                inner = {"kind": "tensor", "shape": [], "dtype": "float32" if isinstance(inner["value"], float) else "int32", "source": source, "values": inner["value"]}
            dt = self.dtype(kw.get("dtype"))
            out = dict(inner, kind="tensor")
            if dt:
                out["dtype"] = dt
            return out
        if short == "cast" and len(args) >= 2:
            inner = self.spec(args[0], scope, source, depth + 1)
            dt = self.dtype(args[1])
            if inner is None or inner["kind"] == "python" or not dt:
                return None
            return dict(inner, kind="tensor", dtype=dt)
        if short == "constant" and lib == "tensorflow":
            value = arg(0, "value")
            if value is None:
                return None
            shape_expr = kw.get("shape") or (args[2] if len(args) > 2 else None)
            dt_expr = kw.get("dtype") or (args[1] if len(args) > 1 else None)
            spec = self._from_literal(value, scope, dt_expr, source, lib)
            if spec is not None and shape_expr is not None:
                shape = self.shape(shape_expr, scope)
                if shape is None:
                    return None
                spec = dict(spec, shape=shape)
                spec.pop("values", None)
            return spec
        shape_fns_tf = {
            "random.normal": "normal",
            "random.truncated_normal": "normal",
            "random.uniform": "uniform",
            "random.stateless_normal": "normal",
            "random.stateless_uniform": "uniform",
            "zeros": "zeros",
            "ones": "ones",
            "keras.random.normal": "normal",
            "keras.random.uniform": "uniform",
            "keras.ops.ones": "ones",
            "keras.ops.zeros": "zeros",
        }
        if lib == "tensorflow" or name.startswith("keras."):
            key = name if name.startswith("keras.") else short
            init = shape_fns_tf.get(key)
            if init is not None:
                shape_expr = arg(0, "shape")
                shape = self.shape(shape_expr, scope) if shape_expr is not None else None
                if shape is None:
                    return None
                dt = self.dtype(kw.get("dtype")) or ("float32" if init in ("normal", "uniform", "zeros", "ones") else None)
                return {"kind": "tensor", "shape": shape, "dtype": dt or "float32", "init": init, "source": source}
            if short == "eye":
                n = arg(0, "num_rows")
                shape = self.shape(n, scope) if n is not None else None
                if shape is None or len(shape) != 1:
                    return None
                return {"kind": "tensor", "shape": shape * 2, "dtype": self.dtype(kw.get("dtype")) or "float32", "source": source}
            if short == "fill":
                shape = self.shape(arg(0, "dims"), scope) if arg(0, "dims") is not None else None
                if shape is None:
                    return None
                return {"kind": "tensor", "shape": shape, "dtype": "float32", "source": source}
            if short == "reshape" and len(args) >= 2:
                inner = self.spec(args[0], scope, source, depth + 1)
                shape = self.shape(args[1], scope)
                if inner is None or shape is None or inner["kind"] == "python":
                    return None
                out = dict(inner, shape=shape)
                out.pop("values", None)
                return out
            return None
        # numpy
        if short in ("zeros", "ones", "empty", "random.random", "random.random_sample"):
            shape_expr = arg(0, "shape" if "random" not in short else "size")
            shape = self.shape(shape_expr, scope) if shape_expr is not None else None
            if shape is None:
                return None
            return {"kind": "tensor", "shape": shape, "dtype": self.dtype(kw.get("dtype")) or "float64", "init": "uniform" if "random" in short else "normal", "source": source}
        if short in ("random.randn", "random.rand"):
            try:
                dims = [self.literal(a, scope) for a in args]
            except ValueError:
                return None
            if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 4096 for d in dims):
                return None
            return {"kind": "tensor", "shape": dims, "dtype": "float64", "init": "normal" if short.endswith("randn") else "uniform", "source": source}
        if short in ("random.normal", "random.uniform", "random.standard_normal"):
            size_expr = kw.get("size") or (args[2] if len(args) > 2 and short != "random.standard_normal" else (args[0] if args and short == "random.standard_normal" else None))
            if size_expr is None:
                return None
            shape = self.shape(size_expr, scope)
            if shape is None:
                return None
            return {"kind": "tensor", "shape": shape, "dtype": "float64", "init": "uniform" if short == "random.uniform" else "normal", "source": source}
        return None

    def _from_literal(self, expr: ast.AST, scope, dtype_expr, source: str, lib: str) -> Optional[dict]:
        try:
            value = self.literal(expr, scope)
        except ValueError:
            return None
        shape = _literal_shape(value)
        if shape is None:
            return None
        flat = _flatten(value)
        dt = self.dtype(dtype_expr)
        if dt is None:
            if any(isinstance(v, float) for v in flat):
                dt = "float64" if lib == "numpy" else "float32"
            elif all(isinstance(v, bool) for v in flat) and flat:
                dt = "bool"
            else:
                dt = "int64" if lib == "numpy" else "int32"
        spec = {"kind": "tensor", "shape": shape, "dtype": dt, "source": source}
        if not dt.startswith(("float", "bfloat")):
            spec["values"] = value
        return spec


def _literal_shape(value: Any) -> Optional[list[int]]:
    if isinstance(value, (int, float, bool)):
        return []
    if isinstance(value, (list, tuple)):
        if not value:
            return [0]
        subs = [_literal_shape(v) for v in value]
        if any(s is None for s in subs) or any(s != subs[0] for s in subs):
            return None
        return [len(value)] + subs[0]  # type: ignore[operator]
    return None


def _flatten(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out += _flatten(v)
        return out
    return [value]


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _annotation_spec(ann: Optional[ast.AST], ev: Evidence) -> Optional[dict]:
    if ann is None:
        return None
    d = dotted(ann)
    if d in ("float",):
        return {"kind": "python", "value": 0.5, "source": "annotation"}
    if d in ("int",):
        return {"kind": "python", "value": 2, "source": "annotation"}
    if d in ("bool",):
        return {"kind": "python", "value": True, "source": "annotation"}
    full = ev.full_name(ann) or ""
    if full.startswith("tensorflow.") or full.startswith("numpy."):
        return {"kind": "any", "source": "annotation"}
    return None


def input_plan(
    mod: ModuleSource,
    fn: FunctionLoc,
    call_names: Optional[list[str]] = None,
    skip_first: bool = False,
) -> dict:
    """The evidence for each positional parameter of ``fn``: call sites, defaults, annotations.

    ``call_names``: the names the function is called by (default: its own name).
    ``skip_first``: drop a bound ``self``/``cls``.
    """
    ev = Evidence(mod)
    args = fn.node.args
    positional = list(args.posonlyargs) + list(args.args)
    if skip_first and positional:
        positional = positional[1:]
    defaults: list[Optional[ast.expr]] = [None] * (len(list(args.posonlyargs) + list(args.args)) - len(args.defaults)) + list(args.defaults)
    if skip_first and defaults:
        defaults = defaults[1:]
    params = []
    for p, default in zip(positional, defaults):
        entry: dict[str, Any] = {"name": p.arg}
        if default is not None:
            d = ev.spec(default, None, "default")
            entry["default"] = d if d is not None else {"kind": "unknown-default", "source": "default"}
        ann = _annotation_spec(p.annotation, ev)
        if ann is not None:
            entry["annotation"] = ann
        elif default is None and (p.arg.startswith(("num_", "n_")) or p.arg.endswith(_INT_NAMES)):
            entry["annotation"] = {"kind": "python", "value": 4, "source": "by its name"}
        params.append(entry)
    names = call_names or [fn.name]
    sites = call_sites(mod, set(names), params) if (fn.is_module_level or call_names) else []
    return {"params": params, "call_sites": sites[:8]}


_INT_NAMES = ("batch_size", "units", "steps", "num_", "n_", "size", "dim", "depth", "channels", "heads", "axis")


def call_sites(mod: ModuleSource, names: set[str], params: list[dict], where: str = "") -> list[dict]:
    """Evident arguments at calls of ``names`` (``f(...)`` or ``alias.f(...)``) in ``mod``."""
    ev = Evidence(mod)
    sites = []
    for call in ast.walk(mod.tree):
        if not isinstance(call, ast.Call):
            continue
        func = dotted(call.func)
        if func is None or (func not in names and func.rsplit(".", 1)[-1] not in names) or (
            "." in func and func not in names and func.split(".")[0] in ("self", "cls")
        ):
            continue
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            continue
        scope = _scope_of(mod, call)
        row: list[Optional[dict]] = [None] * len(params)
        source = f"call at {where}line {call.lineno}"
        for i, a in enumerate(call.args[: len(params)]):
            row[i] = ev.spec(a, scope, source)
        for k in call.keywords:
            for i, p in enumerate(params):
                if p["name"] == k.arg:
                    row[i] = ev.spec(k.value, scope, source)
        if any(r is not None for r in row):
            sites.append({"line": call.lineno, "args": row})
    return sites


def _scope_of(mod: ModuleSource, node: ast.AST) -> ast.AST:
    p = mod.parent(node)
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
        p = mod.parent(p)
    return p or mod.tree


# -- worker side: combinations and values ---------------------------------------------------


def _fill(param: dict, site_spec: Optional[dict]) -> dict:
    if site_spec is not None:
        return site_spec
    for key in ("default", "annotation"):
        spec = param.get(key)
        if spec is not None and spec["kind"] != "unknown-default":
            return spec
    return {"kind": "any", "source": "shape search"}


def _key(row: list[dict]) -> tuple:
    return tuple(
        (s["kind"], tuple(s.get("shape") or ()), s.get("dtype"), repr(s.get("value")), repr(s.get("values")))
        for s in row
    )


def _variations(shapes: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for s in shapes:
        cands = [s, s[::-1]]
        if s:
            cands += [[s[-1]], [s[-1], 4], [4, s[0]], [s[0]], [s[-1], s[-1]]]
        for c in cands:
            if c not in out:
                out.append(list(c))
    for g in GENERIC_SHAPES:
        if g not in out:
            out.append(g)
    return out


def _resolve_any(row: list[dict], shape: Optional[list[int]] = None) -> list[dict]:
    known = [s["shape"] for s in row if s["kind"] in ("tensor", "variable")]
    target = shape if shape is not None else (known[0] if known else [2, 3])
    dtype = next((s["dtype"] for s in row if s["kind"] in ("tensor", "variable") and str(s.get("dtype", "")).startswith("float")), "float32")
    return [
        {"kind": "tensor", "shape": list(target), "dtype": dtype, "source": "shape search"} if s["kind"] == "any" else s
        for s in row
    ]


def combinations(plan: dict, limit: int = MAX_COMBINATIONS) -> Iterator[list[dict]]:
    """Complete argument lists to try, most faithful to the file first."""
    params = plan["params"]
    seen: set[tuple] = set()
    count = 0

    def emit(row: list[dict]) -> Iterator[list[dict]]:
        nonlocal count
        k = _key(row)
        if k in seen or count >= limit:
            return
        seen.add(k)
        count += 1
        yield row

    bases: list[list[dict]] = []
    for site in plan.get("call_sites", []):
        bases.append([_fill(p, s) for p, s in zip(params, site["args"])])
    bases.append([_fill(p, None) for p in params])
    for base in bases:
        yield from emit(_resolve_any(base))
    for base in bases:
        resolved = _resolve_any(base)
        tensor_idx = [i for i, s in enumerate(resolved) if s["kind"] in ("tensor", "variable")]
        for i in reversed(tensor_idx):
            others = [resolved[j]["shape"] for j in tensor_idx if j != i]
            for shape in _variations(others or [resolved[i]["shape"]]):
                row = list(resolved)
                row[i] = dict(resolved[i], shape=shape, source="shape search")
                row[i].pop("values", None)
                yield from emit(row)
        for shape in GENERIC_SHAPES:
            yield from emit(_resolve_any(base, shape))
        if count >= limit:
            return


def describe(name: str, spec: dict) -> str:
    if spec["kind"] == "python":
        return f"{name}={spec['value']!r} ({spec.get('source', '')})"
    shape = ",".join(str(d) for d in spec.get("shape", []))
    kind = "Variable " if spec["kind"] == "variable" else ""
    return f"{name}={kind}{spec.get('dtype', 'float32')}[{shape}] ({spec.get('source', '')})"


def describe_row(names: list[str], row: list[dict]) -> str:
    return ", ".join(describe(n, s) for n, s in zip(names, row))


def is_float_dtype(name: Optional[str]) -> bool:
    return bool(name) and (name.startswith("float") or name == "bfloat16")  # type: ignore[union-attr]


def materialize(spec: dict, rng, float_dtype: Optional[str] = None, positive: bool = False):
    """Build the value for a spec (worker side: imports TensorFlow)."""
    import numpy as np
    import tensorflow as tf

    if spec["kind"] == "python":
        return spec["value"]
    shape = list(spec.get("shape", []))
    dtype = spec.get("dtype", "float32")
    if float_dtype and is_float_dtype(dtype):
        dtype = float_dtype
    if is_float_dtype(dtype) or dtype.startswith("complex"):
        init = spec.get("init", "normal")
        if positive or init == "uniform":
            data = rng.uniform(0.5, 1.5, size=shape)
        else:
            data = rng.standard_normal(size=shape)
        value = tf.constant(np.asarray(data), dtype=getattr(tf, dtype))
    elif "values" in spec:
        value = tf.constant(spec["values"], dtype=getattr(tf, dtype))
    elif dtype == "bool":
        value = tf.constant(rng.integers(0, 2, size=shape).astype(bool))
    else:
        value = tf.constant(rng.integers(0, 3, size=shape), dtype=getattr(tf, dtype))
    if spec["kind"] == "variable":
        return tf.Variable(value)
    return value
