"""What the worker does with a job (runs inside the worker: imports TensorFlow).

A job names a scenario, carries a harness (see harness.py) and what the scenario needs; the
answer is plain JSON describing what TensorFlow did: which inputs were used, and per mode
(eager, ``tf.function``) either the exception (one line) or the gradients observed. The
confirmers in confirm.py decide from that what it means for the finding.

Scenarios:

- ``cg_call``: call a custom-gradient function on synthesized inputs under a GradientTape that
  watches them, eagerly and inside ``tf.function``; optionally as the file's keyword call
  (TGL109), with a doubled upstream (TGL108).
- ``layer_call``: build a Keras layer class of the module and call it under a tape (TGL119,
  TGL102/TGL103 on layer methods, TGL203 in ``call``).
- ``sever``: run a cg function on a watched input, wrap or assign its output as the code does
  (``tf.Variable(...)``, ``.assign(...)``, a weight attribute), compute a loss from the result
  and take the gradient back to the input (TGL201-TGL203).
- ``function_run``: run a function of the module (or the module-level tape statements the
  finding is about) on synthesized inputs while recording every ``GradientTape.gradient`` call
  (TGL301, TGL303).
- ``gradcheck``: the numeric check of numeric.py.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf

from tfgradlint.runtime import harness as harness_mod
from tfgradlint.runtime.inputs import LAYER_SHAPES, combinations, describe_row, is_float_dtype, materialize
from tfgradlint.runtime.numeric import check_promoted, summarize_exception

MAX_SCENARIO_ATTEMPTS = 6


class ScenarioError(Exception):
    """The scenario cannot run (becomes an inconclusive confirmation / a skipped gradcheck)."""


def run_job(job: dict) -> dict:
    started = time.monotonic()
    scenario = job.get("scenario")
    if scenario == "stats":
        return _process_stats()
    fn = _SCENARIOS.get(scenario or "")
    if fn is None:
        return {"internal_error": f"unknown scenario {scenario!r}"}
    module = None
    patched = _GradientRecorder() if scenario == "function_run" else None
    try:
        if patched is not None:
            patched.install(job["harness"]["filename"])
        try:
            module = harness_mod.load_harness(job["harness"])
        except MemoryError:
            raise
        except BaseException as exc:  # noqa: BLE001 - user code
            if patched is not None and job.get("target") is None:
                # Module-level tape code: running the harness *is* the scenario.
                return {"error": summarize_exception(exc), "gradient_calls": patched.calls, "inputs": "none (module-level code)"}
            return {"harness_error": summarize_exception(exc)}
        try:
            answer = fn(module, job, patched)
        except ScenarioError as exc:
            answer = {"unrunnable": str(exc)}
    finally:
        if patched is not None:
            patched.uninstall()
        if module is not None:
            harness_mod.unload_harness(module)
        try:
            tf.keras.backend.clear_session()
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass
    answer["seconds"] = round(time.monotonic() - started, 3)
    return answer


def _process_stats() -> dict:
    """The worker's memory figures (Linux), for measuring the default memory limit."""
    out: dict[str, Any] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmPeak", "VmSize", "VmHWM", "VmRSS", "Threads"):
                    out[key] = value.strip()
    except OSError:
        pass
    return out


# -- helpers ----------------------------------------------------------------------------------


def _guard(call: Callable[[], Any]) -> tuple[Any, Optional[BaseException]]:
    """Run user code; return (value, None) or (None, exception). MemoryError propagates."""
    try:
        return call(), None
    except MemoryError:
        raise
    except RecursionError as exc:
        return None, exc
    except Exception as exc:  # noqa: BLE001
        return None, exc
    except SystemExit as exc:
        return None, RuntimeError(f"the code called sys.exit({exc.code!r})")


def _resolve(module, dotted_name: str):
    obj = module
    for part in dotted_name.split("."):
        obj = getattr(obj, part)
    return obj


def _target(module, job: dict) -> tuple[Callable, Optional[Callable]]:
    target = job["target"]
    try:
        fn = _resolve(module, target["callable"])
    except AttributeError:
        raise ScenarioError(f"'{target['callable']}' is not defined at module level") from None
    raw = None
    if target.get("raw"):
        raw = getattr(module, target["raw"], None)
    if raw is None:
        raw = getattr(fn, "__wrapped__", None)
    return fn, raw


def _float_tensor(x) -> bool:
    return isinstance(x, (tf.Tensor, tf.Variable)) and x.dtype.is_floating


def _describe_grad(name: str, g, source) -> dict:
    d: dict[str, Any] = {"name": name}
    if g is None:
        d["kind"] = "None"
        return d
    if isinstance(g, tf.IndexedSlices):
        g = tf.convert_to_tensor(g)
    if isinstance(g, (tf.Tensor, tf.Variable)):
        d["kind"] = "tensor"
        d["shape"] = [int(s) if s is not None else None for s in g.shape]
        d["dtype"] = _dtype_name(g)
        try:
            arr = np.asarray(g.numpy(), dtype=np.float64).reshape(-1)
            d["sample"] = [float(v) for v in arr[:4]]
            d["finite"] = bool(np.all(np.isfinite(arr)))
        except Exception:  # noqa: BLE001 - symbolic, complex, ...
            pass
    elif isinstance(g, np.ndarray):
        d["kind"] = "ndarray"
        d["shape"] = list(g.shape)
        d["repr"] = repr(g.tolist())[:60]
    else:
        d["kind"] = type(g).__name__
        d["repr"] = repr(g)[:60]
    if source is not None and hasattr(source, "shape"):
        d["input_shape"] = [int(s) if s is not None else None for s in source.shape]
        d["input_dtype"] = _dtype_name(source)
    return d


def _dtype_name(x) -> str:
    dtype = getattr(x, "dtype", None)
    return dtype if isinstance(dtype, str) else getattr(dtype, "name", str(dtype))


def _matches(summary: Optional[str], patterns: list[str]) -> bool:
    return bool(summary) and any(re.search(p, summary) for p in patterns)


def _choose_inputs(plan: dict, probe: Callable[[list], Any], rng, float_dtype: Optional[str] = None):
    """Yield (row, args) for argument lists the probe accepts (the probe's last error kept)."""
    last_error = None
    for row in combinations(plan):
        args = [materialize(spec, rng, float_dtype) for spec in row]
        _, err = _guard(lambda: probe(args))
        if err is None:
            yield row, args, None
        else:
            last_error = summarize_exception(err)
    yield None, None, last_error


# -- cg_call ---------------------------------------------------------------------------------


def _cg_gradients(fn: Callable, args: list, names: list[str], graph: bool, call=None, scale: float = 1.0) -> dict:
    """Call ``fn`` under a tape (eagerly or in tf.function); describe the gradients."""
    tensor_pos = [i for i, a in enumerate(args) if isinstance(a, tf.Tensor) and a.dtype.is_floating]
    var_pos = [i for i, a in enumerate(args) if isinstance(a, tf.Variable) and a.dtype.is_floating]
    invoke = call or (lambda call_args: fn(*call_args))
    extra_holder: list = []

    def body(*tensors):
        call_args = list(args)
        for p, t in zip(tensor_pos, tensors):
            call_args[p] = t
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            out = invoke(call_args)
            flat = [o for o in tf.nest.flatten(out) if isinstance(o, (tf.Tensor, tf.Variable)) and o.dtype.is_floating]
            if scale != 1.0:
                flat = [o * scale for o in flat]
        arg_sources = list(tensors) + [args[p] for p in var_pos]
        extra = [v for v in tape.watched_variables() if v.trainable and not any(v is args[p] for p in var_pos)]
        extra_holder[:] = extra
        if not flat:
            raise ScenarioError("the function returned no float tensor")
        return tape.gradient(flat, arg_sources + extra)

    runner = tf.function(body) if graph else body
    grads, err = _guard(lambda: runner(*[args[p] for p in tensor_pos]))
    if err is not None:
        if isinstance(err, ScenarioError):
            return {"error": str(err), "unrunnable": True}
        return {"error": summarize_exception(err), "type": type(err).__name__}
    order = tensor_pos + var_pos
    described = [_describe_grad(names[p], g, args[p]) for p, g in zip(order, grads)]
    for v, g in zip(extra_holder, grads[len(order):]):
        described.append(_describe_grad(f"variable '{v.name}'", g, v))
    # Python-number and non-float inputs are inputs too, but have no gradient to look at.
    return {"grads": described}


def _values(outcome: dict) -> Optional[list]:
    if "grads" not in outcome:
        return None
    return [g.get("sample") for g in outcome["grads"]]


def _close(a: Optional[list], b: Optional[list]) -> bool:
    if a is None or b is None or len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if (x is None) != (y is None):
            return False
        if x is not None and not np.allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6):
            return False
    return True


def scenario_cg_call(module, job: dict, _recorder) -> dict:
    fn, raw = _target(module, job)
    plan = job["plan"]
    names = [p["name"] for p in plan["params"]]
    expect = job.get("expect", [])
    options = job.get("options", {})
    rng = np.random.default_rng(0)
    probe_fn = raw if raw is not None else fn
    attempts = 0
    first: Optional[dict] = None
    last_probe_error = None
    for row, args, probe_error in _choose_inputs(plan, lambda a: probe_fn(*a), rng):
        if row is None:
            last_probe_error = probe_error
            break
        attempts += 1
        answer: dict[str, Any] = {"inputs": describe_row(names, row)}
        if options.get("keyword"):
            answer.update(_keyword_outcomes(fn, raw, args, names, options["keyword"]))
            outcomes = [answer.get("as_written_eager", {}), answer.get("as_written_graph", {})]
        else:
            answer["eager"] = _cg_gradients(fn, args, names, graph=False)
            answer["graph"] = _cg_gradients(fn, args, names, graph=True)
            if options.get("upstream_scaling") and "grads" in answer["eager"]:
                answer["eager_doubled"] = _cg_gradients(fn, args, names, graph=False, scale=2.0)
            outcomes = [answer["eager"], answer["graph"]]
        errors = [o.get("error") for o in outcomes if o.get("error")]
        if first is None:
            first = answer
        if not errors or any(_matches(e, expect) for e in errors):
            return answer
        if attempts >= MAX_SCENARIO_ATTEMPTS:
            break
    if first is not None:
        return first
    # No inputs the plain forward accepts: run the scenario once anyway (a broken forward
    # pass, e.g. TGL105/TGL112, fails the same way whatever the inputs).
    row = next(combinations(plan), None)
    if row is None:
        raise ScenarioError("no inputs to try")
    args = [materialize(spec, rng) for spec in row]
    answer = {"inputs": describe_row(names, row), "probe_error": last_probe_error}
    if options.get("keyword"):
        answer.update(_keyword_outcomes(fn, raw, args, names, options["keyword"]))
    else:
        answer["eager"] = _cg_gradients(fn, args, names, graph=False)
        answer["graph"] = _cg_gradients(fn, args, names, graph=True)
    return answer


def _keyword_outcomes(fn, raw, args: list, names: list[str], kw: dict) -> dict:
    """TGL109: the call as the file writes it (some arguments by keyword) vs positional."""
    k = int(kw.get("positional", 0))
    by_kw = [n for n in kw.get("keywords", []) if n in names]

    def as_written(call_args):
        kwargs = {n: call_args[names.index(n)] for n in by_kw}
        positional = [a for i, a in enumerate(call_args) if names[i] not in by_kw][: max(k, 0)]
        return fn(*positional, **kwargs)

    out: dict[str, Any] = {}
    out["custom_eager"] = _cg_gradients(fn, args, names, graph=False)
    out["as_written_eager"] = _cg_gradients(fn, args, names, graph=False, call=as_written)
    out["as_written_graph"] = _cg_gradients(fn, args, names, graph=True, call=as_written)
    if raw is not None:
        out["autodiff_eager"] = _cg_gradients(
            fn, args, names, graph=False, call=lambda call_args: _first(raw(*call_args))
        )
    written = _values(out["as_written_eager"])
    out["written_equals_custom"] = _close(written, _values(out["custom_eager"]))
    out["written_equals_autodiff"] = _close(written, _values(out.get("autodiff_eager", {})))
    return out


def _first(result):
    if isinstance(result, (tuple, list)) and len(result) == 2 and callable(result[1]):
        return result[0]
    return result


# -- layer_call ------------------------------------------------------------------------------


def _attr_names(layer) -> dict[int, str]:
    out: dict[int, str] = {}
    for key, value in list(vars(layer).items()):
        if hasattr(value, "dtype") and hasattr(value, "assign"):
            out.setdefault(id(value), f"{type(layer).__name__}.{key}")
    return out


def scenario_layer_call(module, job: dict, _recorder) -> dict:
    target = job["target"]
    try:
        cls = _resolve(module, target["class"])
    except AttributeError:
        raise ScenarioError(f"class '{target['class']}' is not defined at module level") from None
    expect = job.get("expect", [])
    init_args = target.get("init_args") or []
    init_kwargs = target.get("init_kwargs") or {}
    shapes = target.get("input_shapes") or LAYER_SHAPES
    first: Optional[dict] = None
    last_error = None
    init_args, init_kwargs = _constructor_args(cls, init_args, init_kwargs)
    for shape in shapes:
        layer, err = _guard(lambda: cls(*init_args, **init_kwargs))
        if err is not None:
            raise ScenarioError(f"cannot construct {target['class']}: {summarize_exception(err)}")
        x = tf.random.stateless_normal(shape, seed=[1, 2])
        answer: dict[str, Any] = {"inputs": f"{target['class']}({_call_repr(init_args, init_kwargs)}) called on float32[{','.join(map(str, shape))}]"}

        def run():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                flat = [o for o in tf.nest.flatten(y) if hasattr(o, "dtype") and o.dtype.is_floating]
            weights = list(layer.trainable_variables)
            grads = tape.gradient(flat, [x] + weights)
            names = _attr_names(layer)
            described = [_describe_grad("input", grads[0], x)]
            for w, g in zip(weights, grads[1:]):
                described.append(_describe_grad(names.get(id(w), f"weight '{getattr(w, 'path', w.name)}'"), g, w))
            return described

        described, err = _guard(run)
        if err is not None:
            summary = summarize_exception(err)
            answer["eager"] = {"error": summary, "type": type(err).__name__}
            if _matches(summary, expect):
                return answer
            last_error = summary
            if first is None:
                first = answer
            continue
        answer["eager"] = {"grads": described}
        answer["built"] = bool(getattr(layer, "built", True))
        return answer
    if first is not None:
        first["probe_error"] = last_error
        return first
    raise ScenarioError("no input shape to try")


_GUESSES = {"kernel_size": 3, "pool_size": 2, "strides": 1, "rate": 0.1, "alpha": 0.1, "axis": -1}


def _constructor_args(cls, args: list, kwargs: dict) -> tuple[list, dict]:
    """Fill the constructor's required arguments the file does not show (``units=4``)."""
    import inspect

    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return args, kwargs
    kwargs = dict(kwargs)
    params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for p in params[len(args):]:
        if p.default is p.empty and p.name not in kwargs:
            kwargs[p.name] = _GUESSES.get(p.name, 4)
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in kwargs:
            kwargs[p.name] = _GUESSES.get(p.name, 4)
    return list(args), kwargs


def _call_repr(args: list, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


# -- sever -----------------------------------------------------------------------------------


_SAFE_OBJECT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[-?\d+\]|\[['\"][A-Za-z0-9_]+['\"]\])*$")


def scenario_sever(module, job: dict, _recorder) -> dict:
    fn, raw = _target(module, job)
    plan = job["plan"]
    names = [p["name"] for p in plan["params"]]
    wrap = job.get("options", {}).get("wrap", "none")
    rng = np.random.default_rng(0)
    probe_fn = raw if raw is not None else fn
    for row, args, probe_error in _choose_inputs(plan, lambda a: probe_fn(*a), rng):
        if row is None:
            raise ScenarioError(f"no inputs found that '{job['target']['callable']}' accepts: {probe_error}")
        answer: dict[str, Any] = {"inputs": describe_row(names, row), "wrap": wrap, "function": job["target"]["callable"]}
        sources = [a for a in args if _float_tensor(a)]
        if not sources:
            raise ScenarioError("the function has no float tensor input to take a gradient to")
        holder: dict[str, Any] = {}

        def run():
            with tf.GradientTape(persistent=True) as tape:
                for s in sources:
                    if isinstance(s, tf.Tensor):
                        tape.watch(s)
                out = fn(*args)
                flat = [o for o in tf.nest.flatten(out) if hasattr(o, "dtype") and o.dtype.is_floating]
                value = flat[0]
                if wrap == "variable":
                    stored = tf.Variable(value)
                    holder["stored"] = stored
                    result = stored * 1.0
                elif wrap in ("assign", "assign_add", "assign_sub"):
                    stored = tf.Variable(tf.zeros_like(value))
                    getattr(stored, wrap)(value)
                    holder["stored"] = stored
                    result = stored * 1.0
                else:
                    result = value
                loss = tf.reduce_sum(result * tf.random.stateless_normal(tf.shape(result), seed=[3, 4], dtype=result.dtype))
            grads = tape.gradient(loss, sources)
            return [_describe_grad(_name_of(a, args, names), g, a) for a, g in zip(sources, grads)]

        described, err = _guard(run)
        if err is not None:
            answer["eager"] = {"error": summarize_exception(err), "type": type(err).__name__}
        else:
            answer["eager"] = {"grads": described}
        probe = job.get("options", {}).get("attribute")
        if probe and "stored" in holder and _SAFE_OBJECT.match(probe["object"]):
            answer["attribute"] = _attribute_probe(module, probe, holder["stored"])
        return answer
    raise ScenarioError("no inputs to try")  # pragma: no cover


def _name_of(a, args: list, names: list[str]) -> str:
    for n, b in zip(names, args):
        if a is b:
            return n
    return "input"


def _attribute_probe(module, probe: dict, value) -> dict:
    """Evaluate ``<object>`` (a name/attribute/index chain) and try ``<object>.<attr> = value``."""
    obj, err = _guard(lambda: eval(compile(probe["object"], "<tfgradlint>", "eval"), module.__dict__))  # noqa: S307 - validated chain
    if err is not None:
        return {"error": f"could not evaluate {probe['object']}: {summarize_exception(err)}"}
    _, err = _guard(lambda: setattr(obj, probe["attr"], value))
    out: dict[str, Any] = {"type": type(obj).__name__, "module": type(obj).__module__}
    if err is not None:
        out["assign_error"] = summarize_exception(err)
    else:
        out["assigned"] = True
    return out


# -- function_run ----------------------------------------------------------------------------


class _GradientRecorder:
    """Wraps GradientTape.gradient/jacobian to record what each call in the user's file gave."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._saved: dict[str, Any] = {}
        self._filename = ""

    def install(self, filename: str) -> None:
        self._filename = filename
        cls = tf.GradientTape
        for method in ("gradient", "jacobian", "batch_jacobian"):
            original = getattr(cls, method)
            self._saved[method] = original
            setattr(cls, method, self._wrap(method, original))

    def uninstall(self) -> None:
        for method, original in self._saved.items():
            setattr(tf.GradientTape, method, original)
        self._saved.clear()

    def _wrap(self, method: str, original):
        recorder = self

        def wrapper(tape, target, sources, *args, **kwargs):
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename != recorder._filename:
                frame = frame.f_back
            line = frame.f_lineno if frame is not None else None
            entry: dict[str, Any] = {"method": method, "line": line}
            recorder.calls.append(entry)
            try:
                result = original(tape, target, sources, *args, **kwargs)
            except BaseException as exc:
                entry["error"] = summarize_exception(exc)
                raise
            flat = tf.nest.flatten(result, expand_composites=False) if result is not None else [None]
            entry["none"] = [g is None for g in flat]
            return result

        return wrapper


def scenario_function_run(module, job: dict, recorder: _GradientRecorder) -> dict:
    target = job.get("target")
    if target is None:
        return {"inputs": "none (module-level code)", "gradient_calls": recorder.calls}
    fn = getattr(module, target["callable"], None)
    if fn is None:
        raise ScenarioError(f"'{target['callable']}' is not defined at module level")
    plan = job["plan"]
    names = [p["name"] for p in plan["params"]]
    expect = job.get("expect", [])
    rng = np.random.default_rng(0)
    first: Optional[dict] = None
    attempts = 0
    for row in combinations(plan):
        attempts += 1
        args = [materialize(spec, rng) for spec in row]
        recorder.calls.clear()
        _, err = _guard(lambda: fn(*args))
        answer: dict[str, Any] = {"inputs": describe_row(names, row), "gradient_calls": list(recorder.calls)}
        lines = job.get("call_lines")
        reached = bool(lines) and any(c.get("line") is not None and lines[0] <= c["line"] <= lines[1] for c in recorder.calls)
        if err is None or (reached and not expect):
            if err is not None:
                answer["error"] = summarize_exception(err)
            return answer
        answer["error"] = summarize_exception(err)
        if _matches(answer["error"], expect):
            return answer
        if first is None:
            first = answer
        if attempts >= 3 * MAX_SCENARIO_ATTEMPTS:
            break
    if first is None:
        raise ScenarioError("no inputs to try")
    first["probe_error"] = first.get("error")
    return first


# -- gradcheck -------------------------------------------------------------------------------


def scenario_gradcheck(module, job: dict, _recorder) -> dict:
    fn, _raw = _target(module, job)
    plan = job["plan"]
    names = [p["name"] for p in plan["params"]]
    seed = int(job.get("seed", 0))
    last_error = None
    tried = 0
    for row in combinations(plan):
        has_float = any(s["kind"] in ("tensor", "variable") and is_float_dtype(s.get("dtype")) for s in row)
        rng = np.random.default_rng(seed)
        original = [materialize(spec, rng) for spec in row]
        _, err = _guard(lambda: fn(*original))
        tried += 1
        if err is not None:
            last_error = summarize_exception(err)
            continue
        promoted = None
        if has_float:
            rng = np.random.default_rng(seed)
            promoted = [materialize(spec, rng, "float64") for spec in row]
            _, err64 = _guard(lambda: fn(*promoted))
            if err64 is not None:
                promoted = None
        result = check_promoted(fn, original, promoted, names, seed=seed)
        positive = False
        if result.retry_positive:
            positive = True
            rng = np.random.default_rng(seed)
            original = [materialize(spec, rng, positive=True) for spec in row]
            rng = np.random.default_rng(seed)
            promoted = [materialize(spec, rng, "float64", positive=True) for spec in row] if promoted is not None else None
            result = check_promoted(fn, original, promoted, names, seed=seed)
        in64 = promoted is not None and result.precision == "float64"
        shown = [dict(s, dtype="float64") if in64 and s["kind"] != "python" and is_float_dtype(s.get("dtype")) else s for s in row]
        if positive:
            shown = [dict(s, source=s.get("source", "") + ", positive values") if s["kind"] != "python" else s for s in shown]
        return {
            "inputs": describe_row(names, shown),
            "input_list": [
                {"name": n, "value": _spec_value(s), "source": s.get("source", "")} for n, s in zip(names, shown)
            ],
            "result": result.to_json(),
            "report": result.report(job["target"]["callable"]),
        }
    raise ScenarioError(f"no inputs found that the function accepts ({tried} tried): {last_error}")


def _spec_value(spec: dict) -> str:
    if spec["kind"] == "python":
        return repr(spec["value"])
    prefix = "Variable " if spec["kind"] == "variable" else ""
    return f"{prefix}{spec.get('dtype', 'float32')}[{','.join(map(str, spec.get('shape', [])))}]"


_SCENARIOS: dict[str, Callable] = {
    "cg_call": scenario_cg_call,
    "layer_call": scenario_layer_call,
    "sever": scenario_sever,
    "function_run": scenario_function_run,
    "gradcheck": scenario_gradcheck,
}
