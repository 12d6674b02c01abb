"""The numeric gradient check behind ``tfgradlint gradcheck`` and ``assert_custom_gradient``.

For a function ``f`` and inputs ``x``: draw a random upstream cotangent ``u`` for every float
output (so a scalar output cannot hide a grad fn that ignores its upstream) and compare the
custom vector-Jacobian product ``J^T u`` that ``tf.GradientTape`` returns with central finite
differences of ``L(x) = sum(u * f(x))``, element by element, plus a dot-product test along a
random direction ``v`` (``<J^T u, v>`` against ``(L(x + h v) - L(x - h v)) / 2h``), which is
cheap at any size. Then the same gradient under ``tf.function``. Per input: the gradient must
not be ``None`` where the numeric gradient is not zero, and must be a tensor of the input's
shape and dtype. Variables the function reads (not passed in) are checked the same way.

Tolerances (``|custom - numeric| <= atol + rtol * |numeric|``, as ``torch.autograd.gradcheck``):

==========  =========  =======  =======
precision   step       atol     rtol
==========  =========  =======  =======
float64     1e-6       1e-5     1e-3      (torch.autograd.gradcheck's defaults)
float32     5e-3       1e-2     1e-2      (only when the function does not run in float64)
float16     5e-2       5e-2     5e-2
==========  =========  =======  =======

This module imports TensorFlow; the command line runs it in the worker process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

TOLERANCES = {
    "float64": (1e-6, 1e-5, 1e-3),
    "float32": (5e-3, 1e-2, 1e-2),
    "float16": (5e-2, 5e-2, 5e-2),
}
MAX_ELEMENTS = 256  # per input, element-wise; larger inputs are sampled (the dot test covers all)


@dataclass
class InputCheck:
    name: str
    status: str  # "ok" | "fail" | "skipped"
    detail: str = ""
    max_abs_error: Optional[float] = None
    max_rel_error: Optional[float] = None
    value: str = ""  # e.g. "float64[2,3]"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "status": self.status,
            "detail": self.detail,
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
        }


@dataclass
class CheckResult:
    status: str  # "pass" | "fail" | "skipped"
    reason: str = ""
    inputs: list[InputCheck] = field(default_factory=list)
    max_abs_error: Optional[float] = None
    max_rel_error: Optional[float] = None
    precision: str = ""
    modes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    retry_positive: bool = False  # the output was not finite: try positive inputs

    def report(self, title: str = "custom gradient") -> str:
        head = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIPPED"}[self.status]
        lines = [f"{title}: {head}" + (f": {self.reason}" if self.reason else "")]
        for inp in self.inputs:
            errs = ""
            if inp.max_abs_error is not None:
                errs = f" (max abs error {inp.max_abs_error:.3g}, max rel error {inp.max_rel_error:.3g})"
            lines.append(f"  {inp.name} {inp.value}: {inp.status}{': ' + inp.detail if inp.detail else ''}{errs}")
        if self.precision:
            step, atol, rtol = TOLERANCES[self.precision]
            lines.append(
                f"  checked in {self.precision} ({', '.join(self.modes) or 'eager'}), step {step:g}, "
                f"atol {atol:g}, rtol {rtol:g}, random upstream cotangent"
            )
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "inputs": [i.to_json() for i in self.inputs],
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "precision": self.precision,
            "notes": self.notes,
        }


def summarize_exception(exc: BaseException, limit: int = 300) -> str:
    """One line for an exception: TensorFlow's "in user code" blocks and Keras's wrappers
    reduced to the message that matters."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    text = re.sub(r",\s*numpy=[^>]*>", ">", text)  # variables' values in TensorFlow's messages
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    name = type(exc).__name__
    if not lines:
        return name
    line = lines[0]
    if line.startswith("in user code:") or line.startswith("in converted code:"):
        line = lines[-1]
    elif line.startswith("Exception encountered when calling") and len(lines) > 1:
        line = lines[1]
        for cand in lines[1:]:
            if not cand.startswith(("Arguments received", "•", "Exception encountered")):
                line = cand
                break
    elif line.startswith("Graph execution error") and len(lines) > 1:
        detail = [ln for ln in lines if "Error" in ln or "error" in ln]
        line = detail[-1] if detail else lines[-1]
    if not re.match(r"^[A-Za-z_.]*(Error|Exception|Warning|Exit|Interrupt)\b", line):
        line = f"{name}: {line}"
    line = re.sub(r"\s+", " ", line)
    line = re.sub(r" at 0x[0-9a-fA-F]+>", ">", line)  # object addresses
    if len(line) > 160 and ". " in line[80:]:
        line = line[: 80 + line[80:].index(". ") + 1]  # the first sentence of a long explanation
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def _is_float(dtype) -> bool:
    return bool(getattr(dtype, "is_floating", False))


def _precision(dtypes: Sequence[Any]) -> str:
    names = {getattr(d, "name", str(d)) for d in dtypes}
    if names & {"float16", "bfloat16"}:
        return "float16"
    if "float32" in names:
        return "float32"
    return "float64"


def _shape_str(x) -> str:
    try:
        dtype = x.dtype.name
        return f"{dtype}[{','.join(str(d) for d in x.shape)}]"
    except AttributeError:
        return type(x).__name__


def _fmt_index(idx: tuple) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


class _Source:
    """Something the gradient is taken with respect to: an argument or a variable."""

    def __init__(self, name: str, kind: str, index: Optional[int], obj) -> None:
        self.name = name
        self.kind = kind  # "arg" | "var"
        self.index = index
        self.obj = obj  # the argument (tensor / Variable) or the variable
        self.base = np.asarray(obj.numpy() if hasattr(obj, "numpy") else obj, dtype=np.float64)
        self.dtype = obj.dtype

    @property
    def is_variable(self) -> bool:
        import tensorflow as tf

        return isinstance(self.obj, tf.Variable)


def check_gradient(
    fn: Callable,
    args: Sequence[Any],
    names: Optional[Sequence[str]] = None,
    *,
    eps: Optional[float] = None,
    atol: Optional[float] = None,
    rtol: Optional[float] = None,
    seed: int = 0,
    function_mode: bool = True,
    max_elements: int = MAX_ELEMENTS,
) -> CheckResult:
    """Check ``fn``'s gradient at ``args``; see the module docstring."""
    import tensorflow as tf

    args = list(args)
    names = list(names) if names is not None else [f"input {i}" for i in range(len(args))]
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            args[i] = tf.constant(a)
    rng = np.random.default_rng(seed)
    result = CheckResult("pass")

    # Forward once, outside any tape: the outputs and their cotangents.
    try:
        y = fn(*args)
    except Exception as exc:  # noqa: BLE001 - user code
        return CheckResult("skipped", f"the function raised on these inputs: {summarize_exception(exc)}")
    flat = tf.nest.flatten(y)
    out_idx = [k for k, t in enumerate(flat) if isinstance(t, (tf.Tensor, tf.Variable)) and _is_float(t.dtype)]
    if not out_idx:
        return CheckResult("skipped", "the function has no float tensor output")
    for k in out_idx:
        if not np.all(np.isfinite(np.asarray(flat[k].numpy(), dtype=np.float64))):
            res = CheckResult("skipped", "the output is not finite at these inputs")
            res.retry_positive = True
            return res
    cot_np = [rng.standard_normal(size=flat[k].shape).astype(np.float64) for k in out_idx]
    cots = [tf.constant(c, dtype=flat[k].dtype) for c, k in zip(cot_np, out_idx)]

    # Sources: float tensor / Variable arguments, then variables read inside.
    sources: list[_Source] = []
    for i, a in enumerate(args):
        if isinstance(a, (tf.Tensor, tf.Variable)) and _is_float(a.dtype):
            sources.append(_Source(names[i], "arg", i, a))
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            result.inputs.append(InputCheck(names[i], "skipped", "a Python number (not checked)", value=repr(a)))
        elif isinstance(a, (tf.Tensor, tf.Variable)):
            result.inputs.append(InputCheck(names[i], "skipped", f"{a.dtype.name} input (not differentiable)", value=_shape_str(a)))

    def custom_vjp(call_args: list) -> tuple[list, list]:
        with tf.GradientTape() as tape:
            for s in sources:
                if s.kind == "arg" and not isinstance(call_args[s.index], tf.Variable):
                    tape.watch(call_args[s.index])
            out = tf.nest.flatten(fn(*call_args))
        targets = [out[k] for k in out_idx]
        arg_sources = [call_args[s.index] for s in sources if s.kind == "arg"]
        extra = [
            v
            for v in tape.watched_variables()
            if v.trainable and not any(v is a for a in arg_sources) and _is_float(v.dtype)
        ]
        grads = tape.gradient(targets, arg_sources + extra, output_gradients=cots)
        return grads, extra

    try:
        grads, extra_vars = custom_vjp(args)
    except Exception as exc:  # noqa: BLE001
        result.status = "fail"
        result.reason = f"computing the gradient raised (eager): {summarize_exception(exc)}"
        return result
    for v in extra_vars:
        sources.append(_Source(f"variable '{v.name}'", "var", None, v))
    if not sources:
        return CheckResult("skipped", "the function has no float tensor input", inputs=result.inputs)

    precision = _precision([s.dtype for s in sources] + [flat[k].dtype for k in out_idx])
    d_eps, d_atol, d_rtol = TOLERANCES[precision]
    eps = d_eps if eps is None else eps
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    result.precision = precision
    result.modes = ["eager"]

    def loss_at(src_values: dict[int, np.ndarray]) -> float:
        call_args = list(args)
        saved = []
        try:
            for si, value in src_values.items():
                s = sources[si]
                if s.is_variable:
                    saved.append((s.obj, s.obj.read_value()))
                    s.obj.assign(tf.constant(value, dtype=s.dtype))
                else:
                    call_args[s.index] = tf.constant(value, dtype=s.dtype)
            out = tf.nest.flatten(fn(*call_args))
            return float(sum(np.sum(c * np.asarray(out[k].numpy(), dtype=np.float64)) for c, k in zip(cot_np, out_idx)))
        finally:
            for var, old in saved:
                var.assign(old)

    def rounded(value: np.ndarray, s: _Source) -> np.ndarray:
        return np.asarray(value, dtype=s.dtype.as_numpy_dtype).astype(np.float64)

    worst_abs, worst_rel = 0.0, 0.0
    custom: list[Optional[np.ndarray]] = []
    for si, (s, g) in enumerate(zip(sources, grads[: len(sources)])):
        value = _shape_str(s.obj)
        if isinstance(g, tf.IndexedSlices):
            g = tf.convert_to_tensor(g)
        # Numeric gradient (element-wise, sampled for large inputs).
        size = int(s.base.size)
        flat_idx = np.arange(size) if size <= max_elements else rng.choice(size, max_elements, replace=False)
        numeric = np.zeros(len(flat_idx))
        for n, j in enumerate(flat_idx):
            idx = np.unravel_index(int(j), s.base.shape) if s.base.shape else ()
            step = eps * max(1.0, abs(float(s.base[idx]))) if precision != "float64" else eps
            plus, minus = s.base.copy(), s.base.copy()
            plus[idx] += step
            minus[idx] -= step
            plus, minus = rounded(plus, s), rounded(minus, s)
            denom = float(plus[idx] - minus[idx]) if s.base.shape else float(plus - minus)
            numeric[n] = (loss_at({si: plus}) - loss_at({si: minus})) / denom
        sampled = "" if size <= max_elements else f" ({max_elements} of {size} elements sampled)"
        if g is None:
            custom.append(None)
            biggest = float(np.max(np.abs(numeric))) if numeric.size else 0.0
            if biggest <= atol:
                result.inputs.append(InputCheck(s.name, "ok", "gradient is None and the numeric gradient is zero", value=value))
            else:
                result.inputs.append(
                    InputCheck(s.name, "fail", f"gradient is None but the numeric gradient is not zero (max |numeric| {biggest:.3g})", value=value)
                )
                result.status = "fail"
            continue
        if not isinstance(g, (tf.Tensor, tf.Variable)):
            custom.append(None)
            result.inputs.append(
                InputCheck(s.name, "fail", f"gradient is a {type(g).__name__}, not a tensor ({g!r:.60})", value=value)
            )
            result.status = "fail"
            continue
        if tuple(g.shape) != tuple(s.base.shape):
            custom.append(None)
            result.inputs.append(
                InputCheck(s.name, "fail", f"gradient has shape {list(g.shape)}, the input has {list(s.base.shape)}", value=value)
            )
            result.status = "fail"
            continue
        if g.dtype != s.dtype:
            result.inputs.append(
                InputCheck(s.name, "fail", f"gradient has dtype {g.dtype.name}, the input {s.dtype.name}", value=value)
            )
            result.status = "fail"
            custom.append(np.asarray(g.numpy(), dtype=np.float64))
            continue
        gv = np.asarray(g.numpy(), dtype=np.float64)
        custom.append(gv)
        got = gv.reshape(-1)[flat_idx]
        abs_err = np.abs(got - numeric)
        rel_err = abs_err / np.maximum(np.abs(numeric), 1e-12)
        over = abs_err - (atol + rtol * np.abs(numeric))
        if not np.all(np.isfinite(got)):
            bad = int(np.argmax(~np.isfinite(got)))
            idx = np.unravel_index(int(flat_idx[bad]), s.base.shape) if s.base.shape else ()
            result.inputs.append(InputCheck(s.name, "fail", f"gradient is not finite at {_fmt_index(idx)}", value=value))
            result.status = "fail"
            continue
        k = int(np.argmax(over)) if over.size else 0
        in_abs = float(np.max(abs_err)) if abs_err.size else 0.0
        in_rel = float(np.max(rel_err[abs_err > atol])) if np.any(abs_err > atol) else 0.0
        worst_abs, worst_rel = max(worst_abs, in_abs), max(worst_rel, in_rel)
        if over.size and over[k] > 0:
            idx = np.unravel_index(int(flat_idx[k]), s.base.shape) if s.base.shape else ()
            result.inputs.append(
                InputCheck(
                    s.name,
                    "fail",
                    f"worst element {_fmt_index(idx)}: custom {got[k]:.6g} vs numeric {numeric[k]:.6g} "
                    f"(abs error {abs_err[k]:.3g}, rel error {rel_err[k]:.3g}){sampled}",
                    in_abs,
                    in_rel,
                    value,
                )
            )
            result.status = "fail"
        else:
            result.inputs.append(InputCheck(s.name, "ok", f"matches finite differences{sampled}", in_abs, in_rel, value))

    # Dot-product (vector-Jacobian) test along a random direction, all sources at once.
    directions = [rng.standard_normal(size=s.base.shape) for s in sources]
    plus = {si: rounded(s.base + eps * d, s) for si, (s, d) in enumerate(zip(sources, directions))}
    minus = {si: rounded(s.base - eps * d, s) for si, (s, d) in enumerate(zip(sources, directions))}
    try:
        numeric_dir = (loss_at(plus) - loss_at(minus)) / (2 * eps)
        custom_dir = float(sum(np.sum(c * d) for c, d in zip(custom, directions) if c is not None))
        dot_err = abs(custom_dir - numeric_dir)
        dot_scale = atol * math.sqrt(sum(s.base.size for s in sources)) + rtol * abs(numeric_dir)
        if dot_err > dot_scale and result.status != "fail":
            result.status = "fail"
            result.reason = (
                f"dot-product test: <J^T u, v> = {custom_dir:.6g} but finite differences give "
                f"{numeric_dir:.6g} (abs error {dot_err:.3g})"
            )
    except Exception as exc:  # noqa: BLE001
        result.notes.append(f"dot-product test not run: {summarize_exception(exc)}")

    # The same gradient under tf.function.
    if function_mode:
        result.modes.append("tf.function")
        tensor_pos = [s.index for s in sources if s.kind == "arg" and not s.is_variable]

        def graph_vjp(*tensors):
            call_args = list(args)
            for pos, t in zip(tensor_pos, tensors):
                call_args[pos] = t
            with tf.GradientTape() as tape:
                for t in tensors:
                    tape.watch(t)
                out = tf.nest.flatten(fn(*call_args))
            targets = [out[k] for k in out_idx]
            srcs = list(tensors) + [s.obj for s in sources if s.kind == "var" or s.is_variable]
            return tape.gradient(targets, srcs, output_gradients=cots)

        try:
            g_graph = tf.function(graph_vjp)(*[args[p] for p in tensor_pos])
            order = [s for s in sources if s.kind == "arg" and not s.is_variable] + [
                s for s in sources if s.kind == "var" or s.is_variable
            ]
            eager_by_name = {s.name: c for s, c in zip(sources, custom)}
            for s, gg in zip(order, g_graph):
                ce = eager_by_name.get(s.name)
                if (gg is None) != (ce is None) and not any(i.name == s.name and i.status == "fail" for i in result.inputs):
                    result.status = "fail"
                    result.reason = result.reason or (
                        f"under tf.function the gradient for {s.name} is "
                        f"{'None' if gg is None else 'a tensor'} but eagerly {'None' if ce is None else 'a tensor'}"
                    )
                    continue
                if gg is None or ce is None:
                    continue
                if isinstance(gg, tf.IndexedSlices):
                    gg = tf.convert_to_tensor(gg)
                gv = np.asarray(gg.numpy(), dtype=np.float64)
                if gv.shape != ce.shape:
                    result.status = "fail"
                    result.reason = result.reason or f"under tf.function the gradient for {s.name} has shape {list(gv.shape)}"
                    continue
                scale = max(1.0, float(np.max(np.abs(ce))) if ce.size else 1.0)
                if not np.allclose(gv, ce, rtol=rtol, atol=atol * scale):
                    k = int(np.argmax(np.abs(gv - ce)))
                    idx = np.unravel_index(k, ce.shape) if ce.shape else ()
                    result.status = "fail"
                    result.reason = result.reason or (
                        f"under tf.function the gradient for {s.name} differs from eager at {_fmt_index(idx)}: "
                        f"{gv.reshape(-1)[k]:.6g} vs {ce.reshape(-1)[k]:.6g}"
                    )
        except Exception as exc:  # noqa: BLE001
            result.status = "fail"
            result.reason = result.reason or f"under tf.function: {summarize_exception(exc)}"

    result.max_abs_error = worst_abs
    result.max_rel_error = worst_rel
    if result.status == "fail" and not result.reason:
        failed = [i for i in result.inputs if i.status == "fail"]
        if failed:
            result.reason = f"input '{failed[0].name}': {failed[0].detail}" if not failed[0].name.startswith("variable") else f"{failed[0].name}: {failed[0].detail}"
    return result


def check_promoted(
    fn: Callable,
    original: Sequence[Any],
    promoted: Optional[Sequence[Any]],
    names: Optional[Sequence[str]] = None,
    **kwargs: Any,
) -> CheckResult:
    """Check in float64 (``promoted``) when possible, else in the inputs' own dtypes.

    A function may run in float64 eagerly yet fail under ``tf.function`` only because Python
    numbers become float32 tensors there: that is an artefact of the promotion, so the check
    is then repeated in the original dtypes (with a note).
    """
    import re

    if promoted is None:
        return check_gradient(fn, original, names, **kwargs)
    result = check_gradient(fn, promoted, names, **kwargs)
    clash = re.search(r"float64|double", result.reason or "") and re.search(
        r"does not match|expected|must be|cannot compute|incompatible", result.reason or "", re.I
    )
    if result.status == "fail" and "tf.function" in (result.reason or "") and clash:
        again = check_gradient(fn, original, names, **kwargs)
        again.notes.append(f"not checked in float64: {result.reason}")
        return again
    return result
