"""``tfgradlint gradcheck PATH[::FUNCTION]...``: check custom gradients numerically.

The custom-gradient functions are found statically (the linter's module index on a LibCST
parse: the same resolution of ``tf.custom_gradient`` aliases as the rules); each runnable one
is checked in the worker against central finite differences with a random upstream cotangent,
a dot-product test, eagerly and under ``tf.function`` (numeric.py), on inputs from the file's
own call sites, annotations and defaults, or a small shape search (inputs.py). The module's
top-level statements never run (harness.py).

Result per function: ``pass``, ``fail`` (which input, worst element, absolute and relative
error) or ``skipped`` (why). Exit 1 if any function fails, 2 on a usage error.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TextIO

from tfgradlint.discovery import display_name

from tfgradlint.runtime.harness import FunctionLoc, HarnessError, ModuleSource
from tfgradlint.runtime.inputs import input_plan
from tfgradlint.runtime.numeric import TOLERANCES
from tfgradlint.runtime.progress import Progress
from tfgradlint.runtime.worker import JobFailed, WorkerClient

DEFAULT_TIMEOUT = 120.0


@dataclass
class Entry:
    function: str
    filename: str
    line: int
    status: str = "skipped"  # pass | fail | skipped
    inputs: list[dict] = field(default_factory=list)
    max_abs_error: Optional[float] = None
    max_rel_error: Optional[float] = None
    reason: str = ""
    details: list[str] = field(default_factory=list)  # per-input lines for the full format
    notes: list[str] = field(default_factory=list)
    precision: str = ""
    job: Optional[dict] = None

    def to_json(self) -> dict:
        return {
            "function": self.function,
            "filename": self.filename,
            "line": self.line,
            "status": self.status,
            "inputs": self.inputs,
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "reason": self.reason,
        }


class UsageError(Exception):
    pass


def _cg_functions(text: str, filename: str) -> list[tuple[str, int]]:
    """(name, line of ``def``) of every custom-gradient function, by the linter's index."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    from tfgradlint.index import ModuleIndex

    module = cst.parse_module(text)
    index = ModuleIndex(module)
    if not index.cg_functions:
        return []
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    out = []
    for cg in index.cg_functions:
        node = cg.info.node
        name_node = getattr(node, "name", None)
        if name_node is None or name_node not in positions:
            continue
        out.append((cg.name, positions[name_node].start.line))
    return out


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    from tfgradlint.config import Overrides, SettingsResolver
    from tfgradlint.discovery import discover

    resolver = SettingsResolver(Overrides())
    return [sf.path for sf in discover([path], resolver.for_path) if sf.path.suffix == ".py"]



def collect(targets: list[str]) -> list[Entry]:
    """The functions to check, with a job for each runnable one (no TensorFlow here)."""
    entries: list[Entry] = []
    for target in targets:
        path_part, sep, func = target.partition("::")
        path = Path(path_part)
        if not path.exists():
            raise UsageError(f"{path_part}: no such file or directory")
        if sep and not path.is_file():
            raise UsageError(f"{target}: PATH::FUNCTION needs a file, not a folder")
        for file in _files(path):
            display = display_name(file)
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{display}: cannot read: {exc}") from None
            if "custom_gradient" not in text:
                if sep:
                    raise UsageError(f"{target}: no custom-gradient function '{func}' in {display}")
                continue
            try:
                found = _cg_functions(text, display)
                mod = ModuleSource(text, display)
            except (HarnessError, Exception) as exc:  # noqa: BLE001 - libcst parse errors
                if sep:
                    raise UsageError(f"{display}: cannot parse: {exc}") from None
                entries.append(Entry("*", display, 1, "skipped", reason=f"cannot parse: {str(exc).splitlines()[0]}"))
                continue
            if sep:
                found = [f for f in found if f[0] == func]
                if not found:
                    exists = mod.find_function(func) is not None
                    what = "is not a custom-gradient function" if exists else "is not defined"
                    raise UsageError(f"{target}: '{func}' {what} in {display}")
            for name, line in found:
                entries.append(_plan(mod, name, line, display))
    return entries


def _plan(mod: ModuleSource, name: str, line: int, display: str) -> Entry:
    entry = Entry(name, display, line)
    loc: Optional[FunctionLoc] = next((f for f in mod.functions() if f.name == name and f.node.lineno == line), None)
    if loc is None:
        loc = mod.find_function(name, line)
    if loc is None:
        entry.reason = "cannot find its definition"
        return entry
    if loc.functions:
        entry.reason = f"defined inside '{getattr(loc.functions[0], 'name', '?')}': cannot be called without running it"
        return entry
    callable_name, raw = name, None
    if loc.classes:
        decos = [getattr(d, "id", getattr(d, "attr", "")) for d in loc.node.decorator_list]
        if "staticmethod" in decos and len(loc.classes) == 1:
            callable_name = f"{loc.classes[0].name}.{name}"
        else:
            entry.reason = f"a method of '{loc.classes[-1].name}': gradcheck runs module-level functions"
            return entry
    else:
        from tfgradlint.runtime.confirm import _call_form_alias, _is_cg_decorated

        if not _is_cg_decorated(loc.node):
            alias = _call_form_alias(mod, name)
            if alias is None:
                entry.reason = "not wrapped by tf.custom_gradient at module level"
                return entry
            callable_name, raw = alias, name
    roots = {callable_name.split(".")[0]} | ({raw} if raw else set())
    plan = input_plan(mod, loc, call_names=[callable_name] if "." not in callable_name else None)
    if not plan["params"]:
        entry.reason = "it takes no inputs"
        return entry
    entry.job = {
        "scenario": "gradcheck",
        "harness": mod.harness(roots).to_json(),
        "target": {"callable": callable_name, "raw": raw},
        "plan": plan,
    }
    return entry


def run_entries(entries: list[Entry], *, timeout: float, progress: bool, client: Optional[WorkerClient] = None) -> None:
    runnable = [e for e in entries if e.job is not None]
    own = client is None
    client = client or WorkerClient()
    bar = Progress(len(runnable), "gradcheck", enabled=progress)
    broken: Optional[str] = None
    try:
        for entry in runnable:
            bar.step(f"{entry.filename}::{entry.function}")
            if broken:
                entry.reason = broken
                continue
            try:
                answer = client.run(entry.job, timeout=timeout)  # type: ignore[arg-type]
            except JobFailed as exc:
                if exc.kind == "startup":
                    broken = exc.reason
                entry.reason = exc.reason + ("; the worker was restarted" if exc.kind != "startup" else "")
                continue
            _apply(entry, answer)
    finally:
        bar.done()
        if own:
            client.close()


def _apply(entry: Entry, answer: dict) -> None:
    if answer.get("internal_error"):
        entry.reason = f"internal error in the runtime layer: {answer['internal_error']}"
        return
    if answer.get("harness_error"):
        entry.reason = f"the harness (imports and definitions) failed: {answer['harness_error']}"
        return
    if answer.get("unrunnable"):
        entry.reason = answer["unrunnable"]
        return
    result = answer["result"]
    entry.status = result["status"]
    entry.inputs = answer.get("input_list", [])
    entry.max_abs_error = result.get("max_abs_error")
    entry.max_rel_error = result.get("max_rel_error")
    entry.reason = result.get("reason", "")
    entry.precision = result.get("precision", "")
    entry.notes = list(result.get("notes", []))
    for inp in result.get("inputs", []):
        if inp["status"] == "fail" or (entry.status == "fail" and inp["status"] == "ok"):
            entry.details.append(f"{inp['name']} {inp['value']}: {inp['status']}: {inp['detail']}")


def _runtime_options():
    """``[tool.tfgradlint.runtime]`` of the configuration governing the current folder."""
    from tfgradlint.config import ConfigError, Overrides, SettingsResolver

    try:
        settings = SettingsResolver(Overrides()).for_path(Path("."))
        settings.rule_codes()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return settings.runtime_option


def write_full(entries: list[Entry], out: TextIO) -> None:
    counts = {"pass": 0, "fail": 0, "skipped": 0}
    precisions = set()
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
        head = f"{e.filename}:{e.line}: {e.function}: {e.status.upper()}"
        if e.status == "pass":
            head += f" (max abs error {e.max_abs_error:.2g}, max rel error {e.max_rel_error:.2g}; eager and tf.function)"
            precisions.add(e.precision)
        elif e.reason:
            head += f": {e.reason}"
        out.write(head + "\n")
        if e.status == "fail":
            precisions.add(e.precision)
            for line in e.details:
                out.write(f"    {line}\n")
        for note in e.notes:
            out.write(f"    note: {note}\n")
        if e.inputs:
            shown = ", ".join(f"{i['name']}={i['value']} ({i['source']})" for i in e.inputs)
            out.write(f"    inputs: {shown}\n")
    tol = ""
    for p in sorted(x for x in precisions if x):
        step, atol, rtol = TOLERANCES[p]
        tol += f"; {p}: step {step:g}, atol {atol:g}, rtol {rtol:g}"
    if not entries:
        out.write("gradcheck: no custom-gradient functions found.\n")
        return
    out.write(f"gradcheck: {counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped{tol}.\n")


def run_gradcheck_command(
    targets: list[str],
    output_format: str = "full",
    timeout: Optional[float] = None,
    *,
    out: Optional[TextIO] = None,
    progress: Optional[bool] = None,
    client: Optional[WorkerClient] = None,
) -> int:
    out = out or sys.stdout
    try:
        entries = collect(targets)
    except UsageError as exc:
        sys.stderr.write(f"tfgradlint: error: {exc}\n")
        return 2
    show = sys.stderr.isatty() if progress is None else progress
    try:
        option = _runtime_options()
    except UsageError as exc:
        sys.stderr.write(f"tfgradlint: error: {exc}\n")
        return 2
    own = client is None
    if client is None:
        client = WorkerClient(python=option("python"), memory_limit_mb=option("memory-limit-mb"))
    try:
        run_entries(entries, timeout=timeout or option("timeout", DEFAULT_TIMEOUT), progress=show, client=client)
    finally:
        if own:
            client.close()
    if output_format == "json":
        out.write(json.dumps([e.to_json() for e in entries], indent=2) + "\n")
    else:
        write_full(entries, out)
    return 1 if any(e.status == "fail" for e in entries) else 0


def gradcheck_results(targets: list[str], timeout: float = DEFAULT_TIMEOUT, client: Optional[WorkerClient] = None) -> list[dict[str, Any]]:
    """The JSON results as Python objects (for tests and tools)."""
    entries = collect(targets)
    run_entries(entries, timeout=timeout, progress=False, client=client)
    return [e.to_json() for e in entries]
