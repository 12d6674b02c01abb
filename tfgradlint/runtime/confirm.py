"""``tfgradlint check --confirm``: show that a finding happens in TensorFlow.

For each finding of a rule with a confirmer, a *planner* (here, no TensorFlow) reads the
finding's file with ``ast``, builds a harness around the function concerned (harness.py), the
inputs' evidence (inputs.py) and a job for the worker (scenarios.py); a *classifier* turns the
worker's answer into ``Confirmation(status, evidence)``:

- ``confirmed``: TensorFlow showed the predicted failure (its exception, or the observed
  gradient: ``None``, wrong kind, custom gradient silently dropped);
- ``not-reproduced``: the code ran and behaved correctly;
- ``inconclusive``: it could not be run (the reason says why), or it failed some other way.

Rules without a confirmer get ``inconclusive`` with the reason; nothing is guessed.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tfgradlint.discovery import display_name
from tfgradlint.findings import Confirmation, Finding
from tfgradlint.names import WEIGHT_ATTRS
from tfgradlint.runtime.harness import FunctionLoc, HarnessError, ModuleSource, TopLevel, dotted
from tfgradlint.runtime.inputs import LAYER_SHAPES, Evidence, call_sites, input_plan
from tfgradlint.runtime.progress import Progress
from tfgradlint.runtime.worker import DEFAULT_TIMEOUT, JobFailed, WorkerClient

CONFIRMED, NOT_REPRODUCED, INCONCLUSIVE = "confirmed", "not-reproduced", "inconclusive"

# TensorFlow's messages, as patterns (they change between versions).
ARITY = [
    r"expected to return \d+ gradients?, but returned \d+",
    r"returned too (few|many) gradients",
    r"Num gradients \d+ generated for op",
]
VARIABLES_KW = [r"grad_fn must accept keyword argument 'variables'"]
VARIABLES_STRUCT = [
    r"Must return gradient for each variable",
    r"Scalar tensor has no `?len",
    r"Cannot iterate over a scalar tensor",
    r"len is not well defined for a symbolic Tensor",
    r"missing 1 required positional argument: 'variables'",
    r"too many values to unpack",
    r"not enough values to unpack",
    r"object of type '.*' has no len\(\)",
    r"cannot unpack non-iterable",
]
MISSING_GRAD_FN = [
    r"Cannot iterate over a scalar tensor",
    r"unsupported callable",
    r"too many values to unpack",
    r"not enough values to unpack",
    r"Iterating over a symbolic `?tf\.Tensor`? is not allowed",
    r"object is not callable",
    r"cannot unpack non-iterable",
]
UPSTREAM_ARITY = [
    r"takes \d+ positional arguments? but \d+ (were|was) given",
    r"missing \d+ required positional arguments?",
]
DECORATOR_ORDER = [r"To be compatible with tf\.function, Python functions must return zero or more Tensors"]
KEYWORD_GRAPH = [r"supports keywords arguments only when eager execution is enabled"]
NUMPY_GRAPH = [
    r"Cannot convert a symbolic",
    r"has no attribute 'numpy'",
    r"numpy\(\) is only available when eager",
    r"SymbolicTensor",
]
TAPE_REUSED = [r"non-persistent GradientTape can only be used to compute one set of gradients"]


class Unrunnable(Exception):
    """The finding cannot be run; the message is the inconclusive evidence."""


@dataclass
class Plan:
    job: dict
    classify: Callable[[dict], Confirmation]


# -- locating the function a finding is about ----------------------------------------------------


def _decorator_names(node: ast.AST) -> list[str]:
    out = []
    for dec in getattr(node, "decorator_list", []):
        target = dec.func if isinstance(dec, ast.Call) else dec
        out.append(dotted(target) or "")
    return out


def _is_cg_decorated(node: ast.AST) -> bool:
    return any(d.endswith("custom_gradient") for d in _decorator_names(node))


def _call_form_alias(mod: ModuleSource, name: str) -> Optional[str]:
    """``f = tf.custom_gradient(name)`` at module level: returns ``f``."""
    for st in mod.toplevel:
        node = st.node
        if st.kind != "assign" or not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        value = node.value
        if isinstance(value, ast.Call) and (dotted(value.func) or "").endswith("custom_gradient"):
            arg = value.args[0] if value.args else next((k.value for k in value.keywords if k.arg == "f"), None)
            if isinstance(arg, ast.Name) and arg.id == name and isinstance(node.targets[0], ast.Name):
                return node.targets[0].id
    return None


@dataclass
class CgRef:
    """A cg function a finding is about: where it is defined and how the finding's file names it."""

    mod: ModuleSource  # the module that defines it (the finding's own, or one it imports)
    loc: FunctionLoc
    local_names: set[str]  # how the finding's module calls it (``f``, ``ops.f``, an alias)

    @property
    def name(self) -> str:
        return self.loc.name


def _module_file(importer: str, module: str, level: int) -> Optional[Path]:
    """The source file of ``module`` imported from the file ``importer`` (never imported)."""
    here = Path(importer).resolve().parent
    parts = [p for p in module.split(".") if p]
    if level:
        roots = [here.parents[level - 2] if level >= 2 else here]
    else:
        from tfgradlint.runtime.harness import package_context

        roots = [Path(p) for p in package_context(importer)[1]] + [Path.cwd()]
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
            if candidate is not None and candidate.is_file():
                return candidate
    return None


def _load(path: Path) -> Optional[ModuleSource]:
    try:
        return ModuleSource(Path(path).read_text(encoding="utf-8"), display_name(path))
    except (OSError, UnicodeDecodeError, HarnessError):
        return None


def _chase(mod: ModuleSource, name: str, depth: int = 0) -> Optional[tuple[ModuleSource, FunctionLoc]]:
    """What ``name`` is in ``mod``: a function defined there, or one it imports (re-exports)."""
    loc = mod.find_function(name)
    if loc is not None and loc.is_module_level:
        return mod, loc
    if depth > 3:
        return None
    for st in mod.toplevel:
        node = st.node
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        for alias in node.names:
            if alias.name == "*" or (alias.asname or alias.name) == name:
                target = _module_file(mod.filename, node.module or "", node.level)
                other = _load(target) if target is not None and target.resolve() != Path(mod.filename).resolve() else None
                if other is not None:
                    found = _chase(other, name if alias.name == "*" else alias.name, depth + 1)
                    if found is not None:
                        return found
    return None


def _imported_cg(mod: ModuleSource, subject: str) -> Optional[CgRef]:
    """Follow the module's imports to the file defining the cg function ``subject``."""

    def is_cg(found: Optional[tuple[ModuleSource, FunctionLoc]]) -> bool:
        if found is None:
            return False
        other, loc = found
        return loc.name == subject and (_is_cg_decorated(loc.node) or _call_form_alias(other, loc.name) is not None)

    for st in mod.toplevel:
        node = st.node
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                local = subject if alias.name == "*" else (alias.asname or alias.name)
                found = _chase(mod, local)
                if is_cg(found):
                    return CgRef(found[0], found[1], {local})  # type: ignore[index]
                # `from pkg import ops` then `ops.f(...)`
                sub = _module_file(mod.filename, f"{node.module or ''}.{alias.name}".lstrip("."), node.level)
                other = _load(sub) if sub is not None and alias.name != "*" else None
                if other is not None:
                    found = _chase(other, subject)
                    if is_cg(found):
                        return CgRef(found[0], found[1], {f"{local}.{subject}"})  # type: ignore[index]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                target = _module_file(mod.filename, alias.name, 0)
                other = _load(target) if target is not None else None
                if other is not None:
                    found = _chase(other, subject)
                    if is_cg(found):
                        local = alias.asname or alias.name
                        return CgRef(found[0], found[1], {f"{local}.{subject}"})  # type: ignore[index]
    return None



def _locate_cg(mod: ModuleSource, finding: Finding) -> CgRef:
    line = finding.start.row
    if finding.subject:
        loc = mod.find_function(finding.subject, line)
        if loc is not None:
            return CgRef(mod, loc, {loc.name})
        ref = _imported_cg(mod, finding.subject)
        if ref is not None:
            return ref
        raise Unrunnable(f"cannot find the definition of {finding.subject!r} (in {finding.filename} or the modules it imports)")
    # No subject: the finding sits inside the cg function (or its grad fn).
    for f in mod.functions():
        if _is_cg_decorated(f.node) and f.node.lineno <= line <= (f.node.end_lineno or f.node.lineno):
            return CgRef(mod, f, {f.name})
    raise Unrunnable("the finding names no custom-gradient function")


def _cg_callable(mod: ModuleSource, loc: FunctionLoc) -> tuple[str, Optional[str]]:
    """(the name to call, the raw function's name or None) for a module-level cg function."""
    if loc.functions:
        outer = getattr(loc.functions[0], "name", "?")
        raise Unrunnable(
            f"'{loc.name}' is defined inside '{outer}': it cannot be called without running '{outer}'"
        )
    if loc.classes:
        cls = loc.classes[0].name
        if any(d == "staticmethod" for d in _decorator_names(loc.node)) and len(loc.classes) == 1:
            return f"{cls}.{loc.name}", None
        raise Unrunnable(f"'{loc.name}' is a method of '{cls}', which is not a Keras layer: it is not run")
    if _is_cg_decorated(loc.node):
        return loc.name, None
    alias = _call_form_alias(mod, loc.name)
    if alias is not None:
        return alias, loc.name
    raise Unrunnable(f"'{loc.name}' is not wrapped by tf.custom_gradient at module level")


def _is_layer_class(mod: ModuleSource, cls: ast.ClassDef, depth: int = 0) -> bool:
    for base in cls.bases:
        name = dotted(base) or ""
        last = name.rsplit(".", 1)[-1]
        if last in ("Layer", "Model", "Module", "Sequential") or ".layers." in f".{name}." and last[:1].isupper():
            return True
        if depth < 5:
            for other in mod.tree.body:
                if isinstance(other, ast.ClassDef) and other.name == name and _is_layer_class(mod, other, depth + 1):
                    return True
    return False


def _layer_target(mod: ModuleSource, cls: ast.ClassDef) -> dict:
    if cls not in mod.tree.body:
        raise Unrunnable(f"class '{cls.name}' is not defined at module level")
    if not _is_layer_class(mod, cls):
        raise Unrunnable(f"'{cls.name}' is not a Keras layer or model; only layers are built and called")
    target: dict[str, Any] = {"class": cls.name}
    ev = Evidence(mod)
    shapes: list[list[int]] = []
    instance_names: set[str] = set()
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == cls.name:
            try:
                args = [ast.literal_eval(a) for a in node.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
            except (ValueError, TypeError, SyntaxError):
                continue
            if "init_args" not in target and len(kwargs) == len(node.keywords):
                target["init_args"], target["init_kwargs"] = args, kwargs
            parent = mod.parent(node)
            if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
                instance_names.add(parent.targets[0].id)
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in instance_names and node.args:
            spec = ev.spec(node.args[0], None, "call")
            if spec and spec.get("shape") and spec["kind"] != "python" and spec["shape"] not in shapes:
                shapes.append(spec["shape"])
    if shapes:
        target["input_shapes"] = shapes + [s for s in LAYER_SHAPES if s not in shapes]
    return target


# -- evidence wording -------------------------------------------------------------------------


def _inputs_note(answer: dict) -> str:
    inputs = answer.get("inputs")
    return f" [inputs: {inputs}]" if inputs else ""


def _grads_summary(outcome: dict) -> str:
    parts = []
    for g in outcome.get("grads", []):
        if g["kind"] == "None":
            parts.append(f"{g['name']}: None")
        elif g["kind"] == "tensor":
            parts.append(f"{g['name']}: {g.get('dtype')}[{','.join(str(d) for d in g.get('shape', []))}]")
        else:
            parts.append(f"{g['name']}: {g['kind']}")
    return ", ".join(parts) or "no gradients"


def _sample(g: dict) -> str:
    values = g.get("sample") or []
    return "[" + ", ".join(f"{v:.4g}" for v in values[:3]) + (", ..." if len(values) > 3 else "") + "]"


def _modes(answer: dict) -> list[tuple[str, dict]]:
    return [(label, answer[key]) for key, label in (("eager", "eager"), ("graph", "tf.function")) if key in answer]


def _error_rule(patterns: list[str], what: str) -> Callable[[dict], Confirmation]:
    """Confirmed when TensorFlow raises one of ``patterns`` eagerly or under tf.function."""

    def classify(answer: dict) -> Confirmation:
        modes = _modes(answer)
        hits = [(label, o["error"]) for label, o in modes if o.get("error") and _matches(o["error"], patterns)]
        if hits:
            if len(hits) == 2 and hits[0][1] != hits[1][1]:
                text = f"eager: {hits[0][1]}; tf.function: {hits[1][1]}"
            else:
                text = f"{' and '.join(label for label, _ in hits)}: {hits[0][1]}"
            return Confirmation(CONFIRMED, text + _inputs_note(answer))
        errors = [(label, o["error"]) for label, o in modes if o.get("error")]
        if not errors and modes:
            return Confirmation(
                NOT_REPRODUCED,
                f"ran eagerly and under tf.function without {what}; gradients: {_grads_summary(modes[0][1])}"
                + _inputs_note(answer),
            )
        return _other_failure(answer, errors)

    return classify


def _other_failure(answer: dict, errors: list[tuple[str, str]]) -> Confirmation:
    if answer.get("probe_error") and errors:
        return Confirmation(
            INCONCLUSIVE,
            f"found no inputs the function accepts (last: {answer['probe_error']}); with the first candidate, "
            f"{errors[0][0]}: {errors[0][1]}" + _inputs_note(answer),
        )
    if errors:
        return Confirmation(INCONCLUSIVE, f"a different failure, {errors[0][0]}: {errors[0][1]}" + _inputs_note(answer))
    return Confirmation(INCONCLUSIVE, "the scenario produced no result" + _inputs_note(answer))


def _matches(text: Optional[str], patterns: list[str]) -> bool:
    return bool(text) and any(re.search(p, text) for p in patterns)


# -- classifiers with gradients ---------------------------------------------------------------


def _classify_107(answer: dict) -> Confirmation:
    modes = _modes(answer)
    for label, o in modes:
        if o.get("error") and _matches(o["error"], ARITY):
            return Confirmation(CONFIRMED, f"{label}: {o['error']}" + _inputs_note(answer))
    eager = answer.get("eager", {})
    nones = [g["name"] for g in eager.get("grads", []) if g["kind"] == "None" and not g["name"].startswith("variable")]
    if nones:
        return Confirmation(
            CONFIRMED,
            f"the gradient for {', '.join(repr(n) for n in nones)} is None (the grad fn returns nothing), "
            "eagerly and under tf.function" + _inputs_note(answer),
        )
    errors = [(label, o["error"]) for label, o in modes if o.get("error")]
    if not errors and eager.get("grads"):
        return Confirmation(NOT_REPRODUCED, f"the grad fn returned gradients: {_grads_summary(eager)}" + _inputs_note(answer))
    return _other_failure(answer, errors)


def _classify_108(answer: dict) -> Confirmation:
    eager, doubled = answer.get("eager", {}), answer.get("eager_doubled", {})
    if not eager.get("grads") or not doubled.get("grads"):
        return _other_failure(answer, [(label, o["error"]) for label, o in _modes(answer) if o.get("error")])
    import math

    unchanged, scaled = [], []
    for g1, g2 in zip(eager["grads"], doubled["grads"]):
        if g1["kind"] not in ("tensor", "None") and g1.get("repr") is not None:
            # a Python number or NumPy value: the same object whatever the upstream
            (unchanged if g1.get("repr") == g2.get("repr") else scaled).append(dict(g1, sample=None))
            continue
        a, b = g1.get("sample"), g2.get("sample")
        if not a or not b or all(abs(v) < 1e-12 for v in a):
            continue
        if all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-7) for x, y in zip(a, b)):
            unchanged.append(g1)
        elif all(math.isclose(2 * x, y, rel_tol=1e-4, abs_tol=1e-7) for x, y in zip(a, b)):
            scaled.append(g1)
    if unchanged:
        g = unchanged[0]
        shown = _sample(g) if g.get("sample") else g.get("repr", "")
        return Confirmation(
            CONFIRMED,
            f"doubling the upstream gradient left the gradient for {g['name']!r} unchanged ({shown}): "
            "the grad fn ignores its upstream" + _inputs_note(answer),
        )
    if scaled:
        return Confirmation(NOT_REPRODUCED, "the gradient doubles with the upstream gradient" + _inputs_note(answer))
    return Confirmation(INCONCLUSIVE, "the gradients are zero or did not change predictably" + _inputs_note(answer))


def _classify_111(answer: dict) -> Confirmation:
    graph, eager = answer.get("graph", {}), answer.get("eager", {})
    if graph.get("error") and _matches(graph["error"], NUMPY_GRAPH):
        ran = "eager ran; " if eager.get("grads") else ""
        return Confirmation(CONFIRMED, f"{ran}tf.function: {graph['error']}" + _inputs_note(answer))
    if eager.get("grads") and graph.get("grads"):
        return Confirmation(NOT_REPRODUCED, "ran eagerly and under tf.function" + _inputs_note(answer))
    return _other_failure(answer, [(label, o["error"]) for label, o in _modes(answer) if o.get("error")])


def _classify_114(answer: dict) -> Confirmation:
    eager = answer.get("eager", {})
    for g in eager.get("grads", []):
        if g["kind"] not in ("tensor", "None"):
            return Confirmation(
                CONFIRMED,
                f"tape.gradient returned a {g['kind']} for {g['name']!r} ({g.get('repr', '')}), not a tensor"
                + _inputs_note(answer),
            )
        if g["kind"] == "tensor" and "input_shape" in g and g.get("shape") != g["input_shape"]:
            return Confirmation(
                CONFIRMED,
                f"the gradient for {g['name']!r} has shape {g.get('shape')} but the input has {g['input_shape']}"
                + _inputs_note(answer),
            )
    if eager.get("grads"):
        return Confirmation(NOT_REPRODUCED, f"every gradient is a tensor of its input's shape: {_grads_summary(eager)}" + _inputs_note(answer))
    return _other_failure(answer, [(label, o["error"]) for label, o in _modes(answer) if o.get("error")])


def _classify_109(answer: dict) -> Confirmation:
    eager, graph = answer.get("as_written_eager", {}), answer.get("as_written_graph", {})
    custom, auto = answer.get("custom_eager", {}), answer.get("autodiff_eager", {})
    parts = []
    confirmed = False
    if eager.get("error"):
        if _matches(eager["error"], ARITY + KEYWORD_GRAPH):
            parts.append(f"eager: {eager['error']}")
            confirmed = True
    elif answer.get("written_equals_autodiff") and not answer.get("written_equals_custom"):
        g_kw = next((g for g in eager.get("grads", []) if g["kind"] == "tensor"), None)
        g_c = next((g for g in custom.get("grads", []) if g["kind"] == "tensor"), None)
        detail = ""
        if g_kw and g_c:
            detail = f" ({g_kw['name']}: {_sample(g_kw)} instead of the custom {_sample(g_c)})"
        parts.append(f"eager: the keyword call silently dropped the custom gradient, its gradient equals autodiff's{detail}")
        confirmed = True
    if graph.get("error") and _matches(graph["error"], KEYWORD_GRAPH + ARITY):
        parts.append(f"tf.function: {graph['error']}")
        confirmed = True
    if confirmed:
        return Confirmation(CONFIRMED, "; ".join(parts) + _inputs_note(answer))
    if eager.get("grads") and graph.get("grads") and answer.get("written_equals_custom"):
        return Confirmation(NOT_REPRODUCED, "the call as written uses the custom gradient, eagerly and under tf.function" + _inputs_note(answer))
    errors = [(m, o["error"]) for m, o in (("eager", eager), ("tf.function", graph)) if o.get("error")]
    if not errors and eager.get("grads") and auto.get("grads") and answer.get("written_equals_autodiff") and answer.get("written_equals_custom"):
        return Confirmation(
            INCONCLUSIVE,
            "the custom gradient equals autodiff's at these inputs, so a dropped custom gradient cannot be seen"
            + _inputs_note(answer),
        )
    return _other_failure(answer, errors)


def _classify_layer(patterns: list[str], what: str) -> Callable[[dict], Confirmation]:
    def classify(answer: dict) -> Confirmation:
        eager = answer.get("eager", {})
        if eager.get("error") and _matches(eager["error"], patterns):
            return Confirmation(CONFIRMED, f"eager: {eager['error']}" + _inputs_note(answer))
        if eager.get("grads"):
            return Confirmation(
                NOT_REPRODUCED,
                f"the layer ran without {what}; gradients: {_grads_summary(eager)}" + _inputs_note(answer),
            )
        return _other_failure(answer, [("eager", eager["error"])] if eager.get("error") else [])

    return classify


def _classify_sever(answer: dict) -> Confirmation:
    eager = answer.get("eager", {})
    attribute = answer.get("attribute") or {}
    attr_note = ""
    if attribute.get("assign_error"):
        attr_note = f"; assigning it to the {attribute.get('type', 'layer')} attribute: {attribute['assign_error']}"
    wrap = answer.get("wrap", "none")
    how = {
        "variable": "tf.Variable(<its output>)",
        "assign": "<variable>.assign(<its output>)",
        "assign_add": "<variable>.assign_add(<its output>)",
        "assign_sub": "<variable>.assign_sub(<its output>)",
    }.get(wrap)
    if eager.get("error"):
        if attr_note:
            return Confirmation(CONFIRMED, attr_note[2:] + _inputs_note(answer))
        return Confirmation(INCONCLUSIVE, f"a different failure: {eager['error']}" + _inputs_note(answer))
    grads = eager.get("grads", [])
    nones = [g["name"] for g in grads if g["kind"] == "None"]
    fn = answer.get("function", "the custom-gradient function")
    if grads and len(nones) == len(grads) and how:
        how = how.replace("<its output>", f"{fn}(...)")
        return Confirmation(
            CONFIRMED,
            f"tape.gradient(loss, {', '.join(nones)}) is None after {how}: no gradient reaches "
            f"{fn}'s input" + attr_note + _inputs_note(answer),
        )
    if attr_note:
        return Confirmation(CONFIRMED, attr_note[2:] + _inputs_note(answer))
    if wrap == "attribute" and not attribute:
        return Confirmation(
            INCONCLUSIVE,
            "the output is assigned to a layer attribute of an object built elsewhere (not at module level): "
            "nothing to run that shows what training does with it" + _inputs_note(answer),
        )
    if grads and not nones:
        return Confirmation(
            NOT_REPRODUCED,
            f"the gradient reaches {fn}'s input ({_grads_summary(eager)})" + _inputs_note(answer),
        )
    if wrap == "attribute" and attribute.get("assigned"):
        return Confirmation(
            INCONCLUSIVE,
            f"the assignment to the {attribute.get('type')} attribute succeeded (not a Keras 3 layer); "
            "whether training uses the new value cannot be shown here" + _inputs_note(answer),
        )
    return Confirmation(INCONCLUSIVE, f"gradients: {_grads_summary(eager)}" + _inputs_note(answer))


def _classify_tape(code: str, call_lines: Optional[tuple[int, int]], source_index: Optional[int], source_name: str):
    def classify(answer: dict) -> Confirmation:
        calls = answer.get("gradient_calls", [])
        error = answer.get("error")
        if code == "TGL301":
            hit = error if _matches(error, TAPE_REUSED) else next(
                (c["error"] for c in calls if _matches(c.get("error"), TAPE_REUSED)), None
            )
            if hit:
                return Confirmation(CONFIRMED, hit + _inputs_note(answer))
            if error is None:
                n = len(calls)
                return Confirmation(NOT_REPRODUCED, f"{n} gradient call{'s' if n != 1 else ''} ran without error" + _inputs_note(answer))
            return Confirmation(INCONCLUSIVE, f"running it raised a different error: {error}" + _inputs_note(answer))
        # TGL303 (and other None-gradient tape rules)
        mine = [c for c in calls if call_lines and c.get("line") is not None and call_lines[0] <= c["line"] <= call_lines[1]]
        for c in mine:
            nones = c.get("none")
            if nones is None:
                if c.get("error") and re.search(r"numpy\.ndarray|has no attribute '_id'", c["error"]):
                    return Confirmation(
                        CONFIRMED,
                        f"tape.gradient(...) at line {c['line']} raised {c['error']}: a NumPy array is not a tensor "
                        "the tape can watch" + _inputs_note(answer),
                    )
                if c.get("error"):
                    return Confirmation(
                        INCONCLUSIVE,
                        f"tape.gradient(...) at line {c['line']} raised {c['error']} (not the None gradient the rule predicts)"
                        + _inputs_note(answer),
                    )
                continue
            idx = source_index if source_index is not None and source_index < len(nones) else 0
            if nones[idx]:
                return Confirmation(
                    CONFIRMED,
                    f"tape.gradient(...) at line {c['line']} returned None for {source_name}" + _inputs_note(answer),
                )
            return Confirmation(
                NOT_REPRODUCED, f"tape.gradient(...) at line {c['line']} returned a gradient for {source_name}" + _inputs_note(answer)
            )
        if error:
            return Confirmation(INCONCLUSIVE, f"running it raised before the gradient call: {error}" + _inputs_note(answer))
        return Confirmation(INCONCLUSIVE, "the gradient call did not run" + _inputs_note(answer))

    return classify


# -- planners ---------------------------------------------------------------------------------


def _cg_job(mod: ModuleSource, finding: Finding, scenario: str = "cg_call", ref: Optional[CgRef] = None) -> tuple[dict, CgRef]:
    ref = ref or _locate_cg(mod, finding)
    callable_name, raw = _cg_callable(ref.mod, ref.loc)
    roots = {callable_name.split(".")[0]} | ({raw} if raw else set())
    harness = ref.mod.harness(roots)
    call_names = [callable_name] if "." not in callable_name else None
    plan = input_plan(ref.mod, ref.loc, call_names=call_names)
    if ref.mod is not mod:
        # The finding's own file calls it too: its call sites come first.
        plan["call_sites"] = (call_sites(mod, ref.local_names, plan["params"], f"{mod.filename} ") + plan["call_sites"])[:8]
    job = {
        "scenario": scenario,
        "harness": harness.to_json(),
        "target": {"callable": callable_name, "raw": raw},
        "plan": plan,
    }
    return job, ref


def _plan_cg_error(patterns: list[str], what: str):
    """Call the cg function (a cg method of a Keras layer: through the layer); match the error."""

    def planner(mod: ModuleSource, finding: Finding) -> Plan:
        ref = _locate_cg(mod, finding)
        loc = ref.loc
        if loc.is_method and loc.cls is not None and _is_layer_class(ref.mod, loc.cls):
            return _layer_job(ref.mod, loc.cls, patterns, what)
        job, _ = _cg_job(mod, finding, ref=ref)
        job["expect"] = patterns
        return Plan(job, _error_rule(patterns, what))

    return planner


def _plan_cg_custom(classify: Callable[[dict], Confirmation], expect: list[str], options: Optional[dict] = None):
    def planner(mod: ModuleSource, finding: Finding) -> Plan:
        job, _ = _cg_job(mod, finding)
        job["expect"] = expect
        if options:
            job["options"] = options
        return Plan(job, classify)

    return planner


def _layer_job(mod: ModuleSource, cls: ast.ClassDef, patterns: list[str], what: str) -> Plan:
    target = _layer_target(mod, cls)
    harness = mod.harness({cls.name})
    job = {"scenario": "layer_call", "harness": harness.to_json(), "target": target, "expect": patterns}
    return Plan(job, _classify_layer(patterns, what))


def _plan_variables(patterns: list[str], what: str):
    """TGL102/TGL103/TGL110: a plain cg function is called; a cg method is run through its layer."""
    return _plan_cg_error(patterns, what)


def _plan_119(mod: ModuleSource, finding: Finding) -> Plan:
    cls = mod.enclosing_class(finding.start.row)
    if cls is None:
        raise Unrunnable("the call is not inside a Keras layer class")
    return _layer_job(mod, cls, VARIABLES_KW, "the variables error")


def _keyword_call(mod: ModuleSource, finding: Finding, callables: set[str]) -> ast.Call:
    """The call of the cg function at the finding's line (the one with a keyword there)."""
    line = finding.start.row
    calls = []
    for call in mod.nodes_covering(line, ast.Call):
        assert isinstance(call, ast.Call)
        name = dotted(call.func) or ""
        if name.rsplit(".", 1)[-1] in callables:
            calls.append(call)
    for call in calls:
        if any(kw.arg and kw.lineno <= line <= (kw.end_lineno or kw.lineno) for kw in call.keywords):
            return call
    if calls:
        return calls[0]
    raise Unrunnable("cannot find the call at the finding's line")


def _plan_109(mod: ModuleSource, finding: Finding) -> Plan:
    job, ref = _cg_job(mod, finding)
    names = [p["name"] for p in job["plan"]["params"]]
    call = _keyword_call(mod, finding, ref.local_names | {ref.name, job["target"]["callable"].rsplit(".", 1)[-1]})
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise Unrunnable("the call passes *args or **kwargs")
    keywords = [k.arg for k in call.keywords if k.arg in names]
    job["options"] = {"keyword": {"positional": len(call.args), "keywords": keywords}}
    job["expect"] = ARITY + KEYWORD_GRAPH
    return Plan(job, _classify_109)


def _find_cg_call(mod: ModuleSource, stmt: ast.AST, names: set[str]) -> Optional[ast.Call]:
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call) and (dotted(node.func) or "") in names:
            return node
    return None


def _innermost_stmt(mod: ModuleSource, line: int) -> ast.stmt:
    stmts = mod.nodes_covering(line, ast.stmt)
    simple = [s for s in stmts if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.While, ast.With, ast.Try))]
    if simple:
        return simple[0]  # type: ignore[return-value]
    if stmts:
        return stmts[0]  # type: ignore[return-value]
    raise Unrunnable("cannot find the statement at the finding's line")


def _classify_layer_source(cls_name: str, attr: str) -> Callable[[dict], Confirmation]:
    """TGL203 through the layer: is the gradient to the source weight None?"""

    def classify(answer: dict) -> Confirmation:
        eager = answer.get("eager", {})
        if eager.get("error"):
            return _other_failure(answer, [("eager", eager["error"])])
        name = f"{cls_name}.{attr}"
        for g in eager.get("grads", []):
            if g["name"] == name:
                if g["kind"] == "None":
                    return Confirmation(
                        CONFIRMED,
                        f"through the layer: tape.gradient(loss, {name}) is None: the assigned variable cuts the "
                        "gradient to the source weight" + _inputs_note(answer),
                    )
                return Confirmation(
                    NOT_REPRODUCED,
                    f"through the layer: the gradient reaches {name} ({g.get('dtype')}[{','.join(map(str, g.get('shape', [])))}])"
                    + _inputs_note(answer),
                )
        return Confirmation(INCONCLUSIVE, f"{name} is not a trainable weight of the built layer; gradients: {_grads_summary(eager)}" + _inputs_note(answer))

    return classify


def _layer_source_plan(mod: ModuleSource, finding: Finding, call: ast.Call) -> Optional[Plan]:
    """TGL203 inside a Keras layer's ``call`` on ``self.<w>``: run it through the layer."""
    fn = mod.enclosing_function(finding.start.row)
    if fn is None or not fn.is_method or fn.name != "call" or fn.cls is None or not _is_layer_class(mod, fn.cls):
        return None
    if fn.cls not in mod.tree.body or not call.args:
        return None
    arg = call.args[0]
    # tf.convert_to_tensor(self.w) / tf.identity(self.w) / self.w.value: the same weight
    if isinstance(arg, ast.Call) and arg.args and (dotted(arg.func) or "").rsplit(".", 1)[-1] in ("convert_to_tensor", "identity"):
        arg = arg.args[0]
    if isinstance(arg, ast.Attribute) and arg.attr == "value" and isinstance(arg.value, ast.Attribute):
        arg = arg.value
    params = fn.node.args.args
    if not (isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and params and arg.value.id == params[0].arg):
        return None
    target = _layer_target(mod, fn.cls)
    job = {"scenario": "layer_call", "harness": mod.harness({fn.cls.name}).to_json(), "target": target, "expect": []}
    return Plan(job, _classify_layer_source(fn.cls.name, arg.attr))


def _plan_sever(mod: ModuleSource, finding: Finding) -> Plan:
    job, ref = _cg_job(mod, finding, scenario="sever")
    stmt = _innermost_stmt(mod, finding.start.row)
    names = ref.local_names | ({ref.name, job["target"]["callable"]} if ref.mod is mod else set())
    call = _find_cg_call(mod, stmt, names)
    if call is None:
        raise Unrunnable(f"no call of '{ref.name}' in the statement at line {finding.start.row}")
    if finding.code == "TGL203":
        through_layer = _layer_source_plan(mod, finding, call)
        if through_layer is not None:
            return through_layer
    wrap = "none"
    node: Optional[ast.AST] = mod.parent(call)
    while node is not None and node is not stmt:
        if isinstance(node, ast.Call):
            fname = dotted(node.func) or ""
            if fname.endswith("Variable"):
                wrap = "variable"
                break
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("assign", "assign_add", "assign_sub"):
                wrap = node.func.attr
                break
            if isinstance(node.func, ast.Attribute) and node.func.attr == "set_weights":
                wrap = "assign"
                break
        node = mod.parent(node)
    options: dict[str, Any] = {"wrap": wrap}
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Attribute):
        target = stmt.targets[0]
        if target.attr in WEIGHT_ATTRS:
            if wrap == "none":
                wrap = options["wrap"] = "attribute"
            obj_src = ast.get_source_segment(mod.text, target.value) or ""
            root = target.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            top = mod.toplevel_at(stmt.lineno)
            if isinstance(root, ast.Name) and top is not None and top.node is stmt and ref.mod is mod:
                options["attribute"] = {"object": obj_src, "attr": target.attr}
                roots = {job["target"]["callable"], root.id} | ({job["target"]["raw"]} if job["target"]["raw"] else set())
                job["harness"] = mod.harness(roots).to_json()
    job["options"] = options
    return Plan(job, _classify_sever)


def _tape_call(mod: ModuleSource, finding: Finding) -> ast.Call:
    line = finding.start.row
    for call in mod.nodes_covering(line, ast.Call):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in ("gradient", "jacobian", "batch_jacobian"):
            return call
    raise Unrunnable("cannot find the tape.gradient call at the finding's line")


def _source_index(mod: ModuleSource, call: ast.Call, finding: Finding) -> tuple[Optional[int], str]:
    sources = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "sources"), None)
    if sources is None:
        return None, "the source"
    if isinstance(sources, (ast.List, ast.Tuple)):
        for i, el in enumerate(sources.elts):
            if el.lineno <= finding.start.row <= (el.end_lineno or el.lineno) and el.col_offset <= finding.start.column - 1 <= (el.end_col_offset or 0):
                return i, repr(ast.get_source_segment(mod.text, el) or "the source")
        return 0, repr(ast.get_source_segment(mod.text, sources.elts[0]) or "the source") if sources.elts else "the source"
    return 0, repr(ast.get_source_segment(mod.text, sources) or "the source")


_RUNNABLE_TOP = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.With)


def _plan_tape(code: str):
    def planner(mod: ModuleSource, finding: Finding) -> Plan:
        call = _tape_call(mod, finding)
        lines = (call.lineno, call.end_lineno or call.lineno)
        index, source_name = _source_index(mod, call, finding) if code != "TGL301" else (None, "")
        expect = TAPE_REUSED if code == "TGL301" else []
        fn = mod.enclosing_function(finding.start.row)
        if fn is not None:
            if not fn.is_module_level:
                where = fn.classes[-1].name if fn.classes else getattr(fn.functions[-1], "name", "?")
                raise Unrunnable(f"the tape code is in '{fn.name}', inside '{where}'; only module-level functions are run")
            harness = mod.harness({fn.name})
            job = {
                "scenario": "function_run",
                "harness": harness.to_json(),
                "target": {"callable": fn.name},
                "plan": input_plan(mod, fn),
                "expect": expect,
                "call_lines": list(lines),
            }
            return Plan(job, _classify_tape(code, lines, index, source_name))
        # Module-level tape code: the statement itself, the tape's `with` block and what they
        # need, plus the statements between them that use the tape (never loops or the rest).
        top = mod.toplevel_at(finding.start.row)
        if top is None or not isinstance(top.node, _RUNNABLE_TOP) or (isinstance(top.node, ast.With) and top.kind != "tape"):
            raise Unrunnable("the tape code runs at module level inside a compound statement; tfgradlint does not run a module's top-level loops or blocks")
        extra = [top]
        tape_names = {n for st in mod.toplevel if st.kind == "tape" and st.start < top.start for n in st.binds}
        used_tapes = (set(top.uses) | _names_in(top.node)) & tape_names
        for st in mod.toplevel:
            if st.start < top.start and st.kind in ("assign", "other") and isinstance(st.node, _RUNNABLE_TOP[:4]):
                if (_names_in(st.node) & used_tapes) and _calls_tape(st.node, used_tapes):
                    extra.append(st)
        stmts = _with_tapes(mod, extra)
        harness = mod.harness(set(), extra=stmts)
        job = {"scenario": "function_run", "harness": harness.to_json(), "target": None, "expect": expect}
        return Plan(job, _classify_tape(code, lines, index, source_name))

    return planner


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _calls_tape(node: ast.AST, tapes: set[str]) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
            if n.func.value.id in tapes and n.func.attr in ("gradient", "jacobian", "batch_jacobian"):
                return True
    return False


def _with_tapes(mod: ModuleSource, extra: list[TopLevel]) -> list[TopLevel]:
    """Add the module-level tape ``with`` blocks that bind names the statements use."""
    chosen = list(extra)
    changed = True
    while changed:
        changed = False
        needed = set().union(*(st.uses | _names_in(st.node) for st in chosen))
        for st in mod.toplevel:
            if st.kind == "tape" and st not in chosen and st.binds & needed and st.start < max(s.start for s in extra):
                chosen.append(st)
                changed = True
    return sorted(chosen, key=lambda s: s.start)


PLANNERS: dict[str, Callable[[ModuleSource, Finding], Plan]] = {
    "TGL101": _plan_cg_error(ARITY, "an arity error"),
    "TGL102": _plan_variables(VARIABLES_KW, "the variables error"),
    "TGL103": _plan_variables(VARIABLES_STRUCT, "a variables error"),
    "TGL105": _plan_cg_error(MISSING_GRAD_FN, "an error"),
    "TGL106": _plan_cg_error(UPSTREAM_ARITY, "an arity error"),
    "TGL107": _plan_cg_custom(_classify_107, ARITY),
    "TGL108": _plan_cg_custom(_classify_108, [], {"upstream_scaling": True}),
    "TGL109": _plan_109,
    "TGL110": _plan_variables(VARIABLES_KW + KEYWORD_GRAPH + ARITY, "an error"),
    "TGL111": _plan_cg_custom(_classify_111, NUMPY_GRAPH),
    "TGL112": _plan_cg_error(DECORATOR_ORDER, "the tf.function error"),
    "TGL114": _plan_cg_custom(_classify_114, []),
    "TGL119": _plan_119,
    "TGL201": _plan_sever,
    "TGL202": _plan_sever,
    "TGL203": _plan_sever,
    "TGL301": _plan_tape("TGL301"),
    "TGL303": _plan_tape("TGL303"),
}

_NO_CONFIRMER = {
    "TGL001": "a diagnostic of tfgradlint itself: nothing to run",
    "TGL002": "a diagnostic of tfgradlint itself: nothing to run",
    "TGL003": "a diagnostic of tfgradlint itself: nothing to run",
}


def confirmer_codes() -> list[str]:
    return sorted(PLANNERS)


def _check_confirmer(finding: Finding) -> None:
    if finding.code not in PLANNERS:
        reason = _NO_CONFIRMER.get(finding.code) or (
            f"no runtime confirmer for {finding.code} ({finding.name}); tfgradlint does not guess"
            + ("; `tfgradlint gradcheck` checks custom gradients numerically" if finding.code.startswith("TGL1") else "")
        )
        raise Unrunnable(reason)


def plan_finding(mod: ModuleSource, finding: Finding) -> Plan:
    _check_confirmer(finding)
    return PLANNERS[finding.code](mod, finding)


# -- the run -----------------------------------------------------------------------------------


def _source_text(finding: Finding, sources: dict[str, str]) -> str:
    text = sources.get(finding.filename)
    if text is not None:
        return text
    try:
        return Path(finding.filename).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unrunnable(f"cannot read {finding.filename}: {exc}") from None


def _module_for(finding: Finding, sources: dict[str, str], modules: dict[str, Any]) -> tuple[ModuleSource, Finding]:
    """The parsed module of a finding, and the finding as seen in it.

    A notebook's code cells form one virtual module (tfgradlint/notebook.py): the finding's
    (cell, line) becomes a line of that module.
    """
    key = finding.filename
    notebook = finding.cell is not None and key.endswith(".ipynb")
    if key not in modules:
        try:
            text = _source_text(finding, sources)
            if notebook:
                from tfgradlint.notebook import NotebookError, parse_notebook

                try:
                    nb = parse_notebook(text)
                except NotebookError as exc:
                    raise HarnessError(f"cannot read the notebook: {exc}") from None
                modules[key] = (ModuleSource(nb.virtual_source, key), nb)
            else:
                modules[key] = (ModuleSource(text, key), None)
        except HarnessError as exc:
            modules[key] = exc
    entry = modules[key]
    if isinstance(entry, HarnessError):
        raise Unrunnable(str(entry))
    mod, nb = entry
    if nb is None or not notebook:
        return mod, finding
    import dataclasses

    from tfgradlint.findings import Position

    def virtual(pos: Position) -> Position:
        for row, where in enumerate(nb.line_map):
            if row and where == (finding.cell, pos.row):
                return Position(row, pos.column)
        raise Unrunnable("cannot map the notebook cell's line")

    return mod, dataclasses.replace(finding, start=virtual(finding.start), end=virtual(finding.end), cell=None)


def _answer_to_confirmation(plan: Plan, answer: dict) -> Confirmation:
    if answer.get("internal_error"):
        return Confirmation(INCONCLUSIVE, f"internal error in the runtime layer: {answer['internal_error']}")
    if answer.get("harness_error"):
        return Confirmation(INCONCLUSIVE, f"the harness (imports and definitions) failed: {answer['harness_error']}")
    if answer.get("unrunnable"):
        return Confirmation(INCONCLUSIVE, answer["unrunnable"])
    return plan.classify(answer)


def confirm_findings(
    findings: Sequence[Finding],
    sources: dict[str, str],
    *,
    timeout: Optional[float] = None,
    settings: Any = None,
    progress: bool = False,
    client: Optional[WorkerClient] = None,
) -> None:
    """Set ``finding.confirmation`` on every finding (runs TensorFlow in a worker)."""
    option = settings.runtime_option if settings is not None and hasattr(settings, "runtime_option") else (lambda k, d=None: d)
    per_job = float(timeout if timeout is not None else option("timeout", DEFAULT_TIMEOUT))
    own_client = client is None
    if client is None:
        client = WorkerClient(python=option("python"), memory_limit_mb=option("memory-limit-mb"))
    modules: dict[str, Any] = {}
    work: list[tuple[Finding, Plan]] = []
    for finding in findings:
        try:
            _check_confirmer(finding)
            mod, view = _module_for(finding, sources, modules)
            work.append((finding, plan_finding(mod, view)))
        except Unrunnable as exc:
            finding.confirmation = Confirmation(INCONCLUSIVE, str(exc))
    bar = Progress(len(work), "Confirming", enabled=progress)
    answers: dict[str, Any] = {}  # identical jobs run once; each finding is classified on its own
    broken: Optional[str] = None
    job_seconds: list[float] = []
    starts_seen = client.starts
    run_started = time.monotonic()
    try:
        for finding, plan in work:
            bar.step(f"{finding.code} {finding.filename}:{finding.start.row}")
            if broken is not None:
                finding.confirmation = Confirmation(INCONCLUSIVE, broken)
                continue
            key = json.dumps(plan.job, sort_keys=True)
            try:
                if key not in answers:
                    started = time.monotonic()
                    answers[key] = client.run(plan.job, timeout=per_job)
                    job_seconds.append(time.monotonic() - started - (client.import_seconds[-1] if client.starts > starts_seen else 0.0))
                    starts_seen = client.starts
                conf = _answer_to_confirmation(plan, answers[key])
            except JobFailed as exc:
                if exc.kind == "startup":
                    broken = exc.reason
                    conf = Confirmation(INCONCLUSIVE, exc.reason)
                elif exc.kind == "timeout":
                    conf = Confirmation(INCONCLUSIVE, f"{exc.reason} (--confirm-timeout / runtime.timeout); the worker was restarted")
                else:
                    conf = Confirmation(INCONCLUSIVE, f"{exc.reason}; the worker was restarted")
                answers[key] = {"unrunnable": conf.evidence}
            finding.confirmation = conf
    finally:
        bar.done()
        if os.environ.get("TFGRADLINT_RUNTIME_STATS"):
            _print_stats(len(findings), len(work), job_seconds, client, time.monotonic() - run_started)
        if own_client:
            client.close()


def _print_stats(findings: int, planned: int, jobs: list[float], client: WorkerClient, total: float) -> None:
    """Where the time went (TFGRADLINT_RUNTIME_STATS=1): TensorFlow's import vs the jobs."""
    imports = sum(client.import_seconds)
    jobs_sorted = sorted(jobs)
    median = jobs_sorted[len(jobs_sorted) // 2] if jobs_sorted else 0.0
    sys.stderr.write(
        f"tfgradlint: confirm: {findings} findings, {planned} run, {len(jobs)} jobs in {total:.1f} s: "
        f"TensorFlow import {imports:.1f} s ({client.starts} worker start{'s' if client.starts != 1 else ''}), "
        f"jobs {sum(jobs):.1f} s (median {median:.2f} s, max {max(jobs_sorted or [0.0]):.2f} s)\n"
    )
