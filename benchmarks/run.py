"""Benchmark tfgradlint against ruff and Fixit on the same files, in the same run (issue 7).

    python benchmarks/build_corpus.py            # once: the corpus (benchmarks/README.md)
    python benchmarks/run.py                     # 5 runs each, Fixit once on TFP
    python benchmarks/run.py --runs 3 --json figures.json
    python benchmarks/run.py --skip-fixit --only tfp small
    python benchmarks/run.py --compare-findings  # cache / --jobs give identical findings?
    python benchmarks/run.py --profile           # where tfgradlint's cold time goes

What is measured, for each set of files:

- ``tfp``: TensorFlow Probability 0.25.0 alone; ``full``: every package of the corpus.
  Tools: tfgradlint cold (``--no-cache``), tfgradlint warm (its cache in a temporary folder,
  primed by one untimed run), ruff (``--no-cache --select E,F,B``) and Fixit (default rules;
  slow: ``--fixit-runs`` times, on TFP only unless ``--fixit-full``). The runs alternate:
  round after round, every tool once per round, in an order rotated each round.
- ``small``: one small file, the whole process (a pre-commit hook on one changed file), with
  Python's own start-up (``python -c pass``) and ruff on the same file beside it.
- ``lsp``: ``tfgradlint lsp`` driven over stdio by a minimal JSON-RPC client: the time from
  ``didChange`` to ``publishDiagnostics`` on a generated 3,000-line file with findings (minus
  the server's debounce delay), and from ``didSave`` (linted at once) as a cross-check.

Wall time is the child's whole life (``perf_counter`` around start and ``wait4``); CPU time
(user + system) and the largest single process's peak RSS come from ``wait4``'s rusage of
that child, which covers its waited-for descendants (so, unlike deltas of
``getrusage(RUSAGE_CHILDREN)``, whose ``ru_maxrss`` is a maximum over every child so far,
it belongs to this run alone). The whole process tree's memory (workers included) is sampled
every ``--mem-interval`` seconds as the sum of each process's PSS (``/proc/PID/smaps_rollup``:
shared pages counted once). Peak memory = the larger of the two.

Figures move with the machine's load: the ratios are measured in one run, on the same files,
alternating, which is what the targets are about.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from build_corpus import DEFAULT_CORPUS, TFP, package_folders, tree_stats  # noqa: E402

SMALL_FILE = "fixtures/seed/example3_weight_constraint.py"
PY = sys.executable
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

# The targets: (key, description, limit, comparison).
TARGETS = [
    ("tfp_cold_vs_ruff", "TFP: tfgradlint cold / ruff", 2.0, "<="),
    ("tfp_fixit_vs_cold", "TFP: Fixit / tfgradlint cold", 100.0, ">="),
    ("tfp_warm", "TFP: tfgradlint warm (s)", 0.3, "<="),
    ("full_cold_vs_ruff", "full corpus: tfgradlint cold / ruff", 2.0, "<="),
    ("full_peak_mb", "full corpus: tfgradlint peak memory (MB)", 500.0, "<"),
    ("small_wall", "one small file: whole process (s)", 0.25, "<"),
    ("lsp_relint", "LSP: re-lint 3,000 lines after didChange (s)", 0.150, "<"),
]


# -- measuring one command ------------------------------------------------------------------


@dataclass
class Measurement:
    wall: float
    cpu: float  # user + system of the child and its waited-for descendants
    maxrss_mb: float  # the largest single process of the tree (wait4)
    tree_mb: Optional[float]  # sampled peak of the tree's summed PSS
    returncode: int
    timed_out: bool = False
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)

    @property
    def peak_mb(self) -> float:
        return max(self.maxrss_mb, self.tree_mb or 0.0)


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out.extend(int(c) for c in fh.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return out


def tree_pids(root: int) -> list[int]:
    seen, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float, skip_root: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.skip_root = pid, interval, skip_root
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = tree_pids(self.pid)
            total = sum(pss_kb(p) for p in (pids[1:] if self.skip_root else pids))
            self.peak_kb = max(self.peak_kb, total)
            self.stop.wait(self.interval)


def measure(
    cmd: list[str],
    cwd: Path,
    *,
    timeout: Optional[float] = None,
    mem_interval: Optional[float] = 0.05,
    env: Optional[dict] = None,
) -> Measurement:
    """Run ``cmd`` once; its wall and CPU time and memory (module docstring).

    The command runs under GNU time (``/usr/bin/time``, when there) for its peak RSS only: a
    child's ``ru_maxrss`` starts from the RSS of the process that forked it (Linux keeps the
    high-water mark across ``exec``), so measured from this Python process a small command
    would show at least this process's size; GNU time is a few hundred kB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".time") as timefile:
        wrapped = [GNU_TIME, "-f", "%M", "-o", timefile.name, *cmd] if GNU_TIME else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        sampler = None
        if mem_interval:
            sampler = _TreeSampler(proc.pid, mem_interval, skip_root=bool(GNU_TIME))
            sampler.start()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group this run started, nothing else
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.stop.set()
            sampler.join()
        out.seek(0)
        err.seek(0)
        maxrss_kb = usage.ru_maxrss  # kB on Linux
        if GNU_TIME:
            reported = timefile.read().split()
            maxrss_kb = int(reported[-1]) if reported and reported[-1].isdigit() else 0
        return Measurement(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            maxrss_mb=maxrss_kb / 1024,
            tree_mb=(sampler.peak_kb / 1024) if sampler else None,
            returncode=proc.returncode,
            timed_out=timed_out.is_set(),
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


# -- pure helpers (tests/test_benchmark_script.py) -------------------------------------------


def median(values: Iterable[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def rotate(items: list, k: int) -> list:
    """``items`` rotated left by ``k``: the order of round ``k`` (alternating runs)."""
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


def fmt_s(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(value: Optional[float], at_least: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:.0f}x" if value >= 100 else f"{value:.2f}x" if value < 10 else f"{value:.1f}x"
    return (">= " if at_least else "") + text


_CONCISE = re.compile(r"^(?P<file>.+?):(?P<row>\d+):(?P<col>\d+): (?P<code>[A-Z]+[0-9]+) ", re.M)
_FIXIT = re.compile(r"^(?P<file>\S.*?)@(?P<row>\d+):(?P<col>\d+) (?P<rule>\w+): ", re.M)


def count_concise(text: str) -> Counter:
    """Findings per code in tfgradlint's or ruff's ``concise`` output."""
    return Counter(m.group("code") for m in _CONCISE.finditer(text))


def count_fixit(text: str) -> Counter:
    """Findings per rule in ``fixit lint`` output (``path@row:col Rule: message``)."""
    return Counter(m.group("rule") for m in _FIXIT.finditer(text))


def finding_key(f: dict) -> tuple:
    """What makes two JSON findings the same finding (tfgradlint's --output-format json)."""
    loc, end = f.get("location") or {}, f.get("end_location") or {}
    return (f.get("filename"), loc.get("row"), loc.get("column"), end.get("row"), end.get("column"),
            f.get("code"), f.get("message"), json.dumps(f.get("fix"), sort_keys=True))


def compare_findings(reference: list[dict], other: list[dict]) -> dict:
    """Whether two runs' findings are identical (order included); what differs if not."""
    a = [finding_key(f) for f in reference]
    b = [finding_key(f) for f in other]
    if a == b:
        return {"identical": True, "count": len(b)}
    sa, sb = Counter(a), Counter(b)
    missing = list((sa - sb).elements())
    extra = list((sb - sa).elements())
    return {
        "identical": False,
        "count": len(b),
        "reference_count": len(a),
        "same_set_other_order": not missing and not extra,
        "missing": [list(k[:3]) + [k[5], k[6]] for k in missing[:10]],
        "extra": [list(k[:3]) + [k[5], k[6]] for k in extra[:10]],
        "missing_total": len(missing),
        "extra_total": len(extra),
    }


def check_target(value: Optional[float], limit: float, op: str) -> Optional[bool]:
    if value is None:
        return None
    return {"<=": value <= limit, "<": value < limit, ">=": value >= limit, ">": value > limit}[op]


def evaluate_targets(values: dict) -> list[dict]:
    """Each target with its measured value (``values[key]``, None if not measured) and verdict."""
    out = []
    for key, text, limit, op in TARGETS:
        value = values.get(key)
        out.append({"key": key, "target": f"{text} {op} {limit:g}", "value": value,
                    "limit": limit, "op": op, "met": check_target(value, limit, op)})
    return out


def verdict(met: Optional[bool]) -> str:
    return "not measured" if met is None else "met" if met else "NOT met"


def fmt_value(key: str, value: Optional[float]) -> str:
    if value is None:
        return "-"
    if key.endswith("_mb"):
        return f"{value:.0f} MB"
    if "_vs_" in key:
        return fmt_ratio(value)
    return fmt_s(value)


def tool_summary(runs: list[dict]) -> dict:
    """Medians and extremes of a tool's runs (dicts of Measurement fields)."""
    walls = [r["wall"] for r in runs]
    return {
        "runs": len(runs),
        "median_wall": median(walls),
        "min_wall": min(walls) if walls else None,
        "max_wall": max(walls) if walls else None,
        "median_cpu": median(r["cpu"] for r in runs),
        "peak_mb": max((max(r["maxrss_mb"], r.get("tree_mb") or 0.0) for r in runs), default=None),
        "maxrss_mb": max((r["maxrss_mb"] for r in runs), default=None),
        "tree_mb": max((r.get("tree_mb") or 0.0 for r in runs), default=None),
        "timed_out": any(r.get("timed_out") for r in runs),
        "failed": [r["returncode"] for r in runs if not r.get("ok", r["returncode"] in (0, 1))],
    }


def target_values(figures: dict) -> dict:
    """The targets' measured values from the figures (ratios of medians of the same run)."""
    v: dict = {}

    def med(set_name: str, tool: str) -> Optional[float]:
        t = figures.get("sets", {}).get(set_name, {}).get("tools", {}).get(tool)
        if not t or t["summary"].get("failed"):
            return None  # a tool that failed is not measured
        return t["summary"]["median_wall"]

    v["tfp_cold_vs_ruff"] = ratio(med("tfp", "tfgradlint cold"), med("tfp", "ruff"))
    v["tfp_fixit_vs_cold"] = ratio(med("tfp", "fixit"), med("tfp", "tfgradlint cold"))
    v["tfp_warm"] = med("tfp", "tfgradlint warm")
    v["full_cold_vs_ruff"] = ratio(med("full", "tfgradlint cold"), med("full", "ruff"))
    full_cold = figures.get("sets", {}).get("full", {}).get("tools", {}).get("tfgradlint cold")
    v["full_peak_mb"] = full_cold["summary"]["peak_mb"] if full_cold else None
    v["small_wall"] = med("small", "tfgradlint")
    lsp = figures.get("lsp") or {}
    v["lsp_relint"] = lsp.get("median_relint")
    return v


def _took(res: dict, key: str = "wall") -> str:
    return f", {fmt_s(res[key])}" if res.get(key) is not None else ""


def format_report(figures: dict) -> str:
    """The printed table: per set, each tool's medians, memory and findings; ratios; targets."""
    lines: list[str] = []
    m = figures.get("machine", {})
    if m:
        lines.append(f"machine: {m.get('cpu')} ({m.get('cores')} cores), Python {m.get('python')}, "
                     f"load average {m.get('load_before')} -> {m.get('load_after')}")
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()))
    for set_name, data in figures.get("sets", {}).items():
        lines.append("")
        head = f"== {set_name}: {data.get('description', '')}"
        if data.get("files") is not None:
            head += f" ({data['files']} files, {data['mb']:.1f} MB)"
        lines.append(head)
        lines.append(f"  {'tool':18} {'runs':>4} {'median':>9} {'min':>9} {'max':>9} {'cpu':>9} "
                     f"{'peak MB':>8} {'1-proc':>7} {'tree':>7}  findings")
        for tool, t in data.get("tools", {}).items():
            s = t["summary"]
            findings = t.get("findings")
            ftxt = "-" if findings is None else str(findings)
            if t.get("by_code"):
                ftxt += " (" + ", ".join(f"{c} {n}" for c, n in sorted(t["by_code"].items())) + ")"
            flags = ""
            if s.get("timed_out"):
                flags += " TIMED OUT"
            if s.get("failed"):
                flags += f" exit {s['failed']}"
            lines.append(
                f"  {tool:18} {s['runs']:4d} {fmt_s(s['median_wall']):>9} {fmt_s(s['min_wall']):>9} "
                f"{fmt_s(s['max_wall']):>9} {fmt_s(s['median_cpu']):>9} "
                f"{(s['peak_mb'] or 0):8.0f} {(s['maxrss_mb'] or 0):7.0f} "
                f"{(format(s['tree_mb'], '7.0f') if s['tree_mb'] else '      -')}  {ftxt}{flags}"
            )
            if s.get("failed"):
                tail = next((r.get("stderr_tail") for r in t.get("runs", []) if r.get("stderr_tail")), "")
                last = (tail or "").strip().splitlines()[-1:] or ["(no error output)"]
                lines.append(f"    FAILED (not counted in the targets): {last[0][:150]}")
        tools = data.get("tools", {})

        def med(name: str, tools: dict = tools) -> Optional[float]:
            return tools[name]["summary"]["median_wall"] if name in tools else None

        ratios = []
        if "tfgradlint cold" in tools and "ruff" in tools:
            ratios.append(f"tfgradlint cold / ruff = {fmt_ratio(ratio(med('tfgradlint cold'), med('ruff')))}")
        if "fixit" in tools and "tfgradlint cold" in tools:
            fx = tools["fixit"]["summary"]
            ratios.append(f"Fixit / tfgradlint cold = "
                          f"{fmt_ratio(ratio(med('fixit'), med('tfgradlint cold')), at_least=fx.get('timed_out'))}")
        if "tfgradlint warm" in tools:
            ratios.append(f"warm = {fmt_s(med('tfgradlint warm'))}")
        if "tfgradlint" in tools and "python -c pass" in tools:
            ratios.append(f"tfgradlint - python start-up = {fmt_s(med('tfgradlint') - med('python -c pass'))}")
        if ratios:
            lines.append("  " + "; ".join(ratios))
        for note in data.get("notes", []):
            lines.append(f"  note: {note}")
    lsp = figures.get("lsp")
    if lsp:
        lines.append("")
        if lsp.get("skipped"):
            lines.append(f"== lsp: skipped: {lsp['skipped']}")
        else:
            lines.append(f"== lsp: {lsp['lines']}-line file, {lsp['diagnostics']} diagnostics, "
                         f"debounce {fmt_s(lsp['debounce'])}")
            lines.append(f"  didOpen -> publish (first lint, imports included): {fmt_s(lsp['open'])}")
            lines.append(f"  didChange -> publish: median {fmt_s(lsp['median_change'])} "
                         f"(runs: {', '.join(fmt_s(x) for x in lsp['change'])})")
            lines.append(f"  re-lint (didChange -> publish minus debounce): median {fmt_s(lsp['median_relint'])}")
            lines.append(f"  didSave -> publish (linted at once): median {fmt_s(lsp['median_save'])} "
                         f"(runs: {', '.join(fmt_s(x) for x in lsp['save'])})")
    for cmp_ in figures.get("compare_findings") or []:
        lines.append("")
        lines.append(f"== findings compared on {cmp_.get('set')}: reference '{cmp_.get('reference')}' "
                     f"({cmp_.get('reference_count')} findings){_took(cmp_, 'reference_wall')}")
        for name, res in cmp_.get("variants", {}).items():
            if res.get("unsupported"):
                lines.append(f"  {name:24} failed or not supported: {res['unsupported']}")
            elif res.get("identical"):
                lines.append(f"  {name:24} identical ({res['count']} findings){_took(res)}")
            else:
                what = "same findings, other order" if res.get("same_set_other_order") else (
                    f"{res.get('missing_total')} missing, {res.get('extra_total')} extra")
                lines.append(f"  {name:24} DIFFERENT: {res['count']} findings; {what}{_took(res)}")
                for k in res.get("missing", [])[:5]:
                    lines.append(f"      missing: {k}")
                for k in res.get("extra", [])[:5]:
                    lines.append(f"      extra:   {k}")
    targets = figures.get("targets")
    if targets:
        lines.append("")
        lines.append("== targets (issue 7)")
        for t in targets:
            lines.append(f"  {t['target']:58} {fmt_value(t['key'], t['value']):>10}  {verdict(t['met'])}")
    return "\n".join(lines)


# -- the LSP file ---------------------------------------------------------------------------

_LSP_BLOCK = '''

@tf.custom_gradient
def weight_constraint_{i}(w):
    def grad(dy):
        return tf.clip_by_norm(dy, 1.0)

    return w, grad


@tf.custom_gradient
def flip_gradient_{i}(x, scale):
    def grad(dy):
        return -dy * scale

    return tf.identity(x), grad


class Block{i}(tf.keras.layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = tf.keras.layers.Dense(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units))
        self.kernel = weight_constraint_{i}(self.kernel)

    def call(self, inputs):
        h = tf.matmul(inputs, self.kernel)
        return self.dense(flip_gradient_{i}(h, 0.5))


def train_step_{i}(model, x, y, optimizer):
    with tf.GradientTape() as tape:
        pred = model(x)
        loss = tf.reduce_mean(tf.square(pred - y))
        reg = tf.add_n([tf.nn.l2_loss(v) for v in model.trainable_variables])
    grads = tape.gradient(loss, model.trainable_variables)
    reg_grads = tape.gradient(reg, model.trainable_variables)
    total = [g + 1e-4 * r for g, r in zip(grads, reg_grads)]
    optimizer.apply_gradients(zip(total, model.trainable_variables))
    return loss


def evaluate_{i}(model, dataset):
    total = 0.0
    count = 0
    for x, y in dataset:
        pred = model(x, training=False)
        total += float(tf.reduce_sum(tf.square(pred - y)))
        count += int(tf.size(y))
    return total / max(count, 1)
'''

# The corrected block: the same code with each of the three bugs fixed.
_LSP_FIXES = [
    ("        return -dy * scale\n", "        return -dy * scale, None\n"),
    ("        self.kernel = weight_constraint_{i}(self.kernel)\n", ""),
    ("        h = tf.matmul(inputs, self.kernel)\n",
     "        h = tf.matmul(inputs, weight_constraint_{i}(self.kernel))\n"),
    ("    with tf.GradientTape() as tape:\n", "    with tf.GradientTape(persistent=True) as tape:\n"),
]


def lsp_source(min_lines: int = 3000, buggy_every: int = 5) -> str:
    """A realistic module of at least ``min_lines`` lines: custom gradients, layers, training
    steps; every ``buggy_every``-th block has three bugs (TGL101, TGL201, TGL301), the others
    are the corrected code."""
    clean = _LSP_BLOCK
    for old, new in _LSP_FIXES:
        assert old in clean, old
        clean = clean.replace(old, new)
    parts = ['"""Generated by benchmarks/run.py: the language-server benchmark file."""\n'
             "import tensorflow as tf\n"]
    n_lines = 2
    i = 0
    while n_lines < min_lines:
        block = (_LSP_BLOCK if i % buggy_every == 0 else clean).replace("{i}", str(i))
        parts.append(block)
        n_lines += block.count("\n")
        i += 1
    return "".join(parts)


# -- the language server --------------------------------------------------------------------


class LspClient:
    """A minimal JSON-RPC client for a language server on stdio (Content-Length framing)."""

    def __init__(self, cmd: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.messages: "queue.Queue[tuple[float, dict]]" = queue.Queue()
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if length is None:
                continue
            body = stream.read(length)
            stamp = time.perf_counter()
            msg = json.loads(body)
            if "method" in msg and "id" in msg:  # a request from the server: accept it
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            self.messages.put((stamp, msg))

    def send(self, msg: dict) -> float:
        body = json.dumps(msg).encode("utf-8")
        stamp = time.perf_counter()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return stamp

    def request(self, method: str, params) -> float:
        self.next_id += 1
        return self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})

    def notify(self, method: str, params) -> float:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, pred: Callable[[dict], bool], timeout: float = 60.0) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching message from the language server")
            stamp, msg = self.messages.get(timeout=left)
            if pred(msg):
                return stamp, msg

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.wait_for(lambda m: m.get("id") == self.next_id and "method" not in m, timeout=10)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def _published(uri: str, version: Optional[int] = None) -> Callable[[dict], bool]:
    def pred(msg: dict) -> bool:
        if msg.get("method") != "textDocument/publishDiagnostics":
            return False
        p = msg.get("params") or {}
        return p.get("uri") == uri and (version is None or p.get("version") == version)

    return pred


def bench_lsp(runs: int, warmup: int = 2) -> dict:
    try:
        import importlib.util

        if importlib.util.find_spec("tfgradlint.lsp") is None:
            return {"skipped": "tfgradlint/lsp.py does not exist yet"}
        if importlib.util.find_spec("pygls") is None:
            return {"skipped": "pygls is not installed"}
    except ImportError as exc:
        return {"skipped": str(exc)}
    from tfgradlint import lsp as lsp_module

    debounce = float(getattr(lsp_module, "DEBOUNCE_SECONDS", 0.0))
    with tempfile.TemporaryDirectory(prefix="tgl-lsp-bench-") as tmp:
        root = Path(tmp)
        path = root / "model_zoo.py"
        text = lsp_source()
        path.write_text(text)
        uri = path.as_uri()
        client = LspClient([PY, "-m", "tfgradlint", "lsp"], root)
        try:
            client.request("initialize", {
                "processId": os.getpid(),
                "rootUri": root.as_uri(),
                "capabilities": {
                    "general": {"positionEncodings": ["utf-16"]},
                    "textDocument": {"publishDiagnostics": {"versionSupport": True},
                                     "synchronization": {"didSave": True}},
                },
            })
            client.wait_for(lambda m: m.get("id") == client.next_id and "result" in m, timeout=60)
            client.notify("initialized", {})
            version = 1
            t0 = client.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "python", "version": version, "text": text}})
            stamp, msg = client.wait_for(_published(uri, version), timeout=120)
            open_time = stamp - t0
            diagnostics = len(msg["params"]["diagnostics"])
            change, save = [], []
            for k in range(warmup + runs):
                version += 1
                edited = text + f"# edit {k}\n"
                t0 = client.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"text": edited}]})
                stamp, msg = client.wait_for(_published(uri, version), timeout=60)
                if k >= warmup:
                    change.append(stamp - t0)
                path.write_text(edited)
                t0 = client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
                stamp, msg = client.wait_for(_published(uri), timeout=60)
                if k >= warmup:
                    save.append(stamp - t0)
        finally:
            client.close()
    med_change = median(change)
    return {
        "lines": text.count("\n"),
        "diagnostics": diagnostics,
        "debounce": debounce,
        "open": open_time,
        "change": change,
        "save": save,
        "median_change": med_change,
        "median_relint": med_change - debounce if med_change is not None else None,
        "median_save": median(save),
    }


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    cmd: list[str]
    cwd: Path
    runs: int
    timeout: Optional[float] = None
    counter: Optional[Callable[[str], Counter]] = None
    prime: bool = False  # one untimed run first (a warm cache)
    count_cmd: Optional[list[str]] = None  # an untimed run whose output gives the findings
    # the exit codes of a run that worked (--exit-zero: 0 only; a missing module, a crash
    # or a bad option must not pass for a fast run)
    ok_codes: tuple[int, ...] = (0,)


def byte_compile_tfgradlint() -> Optional[str]:
    """Write the bytecode of the tfgradlint that ``python -m tfgradlint`` runs, as ``pip
    install`` does for a regular install. An editable install under PYTHONDONTWRITEBYTECODE=1
    (this workplace sets it) never writes it, and every process would compile each module
    again: about 0.1 s per process, not what an installed tfgradlint costs."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("tfgradlint")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = list(spec.submodule_search_locations)[0]
    compileall.compile_dir(folder, quiet=1)
    return folder


def tfgradlint_cmd(*args: str) -> list[str]:
    return [PY, "-m", "tfgradlint", "check", *args]


def run_set(tools: list[Tool], rounds: int, mem_interval: Optional[float], log) -> dict:
    """Alternate the tools round after round; each tool's runs and findings.

    The timed runs are not sampled: reading every process's memory map every 50 ms costs
    CPU beside the tool (more for a tool of several processes). The process tree's memory
    comes from one more, untimed, sampled run of each tool (``memory_run``)."""
    results: dict[str, dict] = {t.name: {"runs": []} for t in tools}
    for t in tools:
        if t.prime:
            log(f"  priming {t.name} ...")
            m = measure(t.cmd, t.cwd, timeout=t.timeout, mem_interval=None)
            results[t.name]["prime"] = {"wall": m.wall, "returncode": m.returncode}
    for k in range(rounds):
        for t in rotate(tools, k):
            if len(results[t.name]["runs"]) >= t.runs:
                continue
            m = measure(t.cmd, t.cwd, timeout=t.timeout, mem_interval=None)
            rec = asdict(m)
            out, err = rec.pop("stdout"), rec.pop("stderr")
            results[t.name]["runs"].append(rec)
            rec["ok"] = m.returncode in t.ok_codes and not m.timed_out
            if not rec["ok"]:
                rec["stderr_tail"] = err[-2000:]
            if t.counter and "counts" not in results[t.name] and not m.timed_out:
                results[t.name]["counts"] = t.counter(out)
            log(f"  round {k + 1}: {t.name:16} {fmt_s(m.wall):>9}  cpu {fmt_s(m.cpu):>9}  "
                f"peak {m.peak_mb:5.0f} MB  exit {m.returncode}{'  TIMED OUT' if m.timed_out else ''}")
    for t in tools:
        r = results[t.name]
        if mem_interval and t.name != "fixit":  # (Fixit: minutes a run; its memory is not a target)
            m = measure(t.cmd, t.cwd, timeout=t.timeout, mem_interval=mem_interval)
            r["memory_run"] = {"tree_mb": m.tree_mb, "maxrss_mb": m.maxrss_mb, "wall": m.wall}
            for rec in r["runs"]:
                rec["tree_mb"] = m.tree_mb
            log(f"  memory: {t.name:16} tree {m.tree_mb or 0:5.0f} MB (untimed, sampled run)")
        if t.count_cmd:
            m = measure(t.count_cmd, t.cwd, timeout=t.timeout, mem_interval=None)
            r["counts"] = t.counter(m.stdout) if t.counter else None
        counts = r.pop("counts", None)
        if counts is not None:
            r["findings"] = sum(counts.values())
            if t.name.startswith("tfgradlint"):
                r["by_code"] = dict(counts)
        r["cmd"] = " ".join(t.cmd)
        r["summary"] = tool_summary(r["runs"])
    return results


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]
        except Exception as exc:  # a missing tool is reported, not fatal
            return f"unavailable ({exc.__class__.__name__})"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            "tfgradlint": version([PY, "-m", "tfgradlint", "--version"]).split()[-1],
            "ruff": version(["ruff", "--version"]).split()[-1],
            "fixit": version(["fixit", "--version"]).split()[-1],
        },
        "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def build_sets(args, corpus: Path, cache_root: Path) -> dict:
    """The sets of files and each set's tools."""
    sets: dict[str, dict] = {}
    folders = package_folders(corpus)
    names = [f.name for f in folders]
    fixit_ok = not args.skip_fixit and shutil.which("fixit") is not None
    ruff_ok = shutil.which("ruff") is not None
    for set_name in ("tfp", "full"):
        if set_name not in args.only:
            continue
        dirs = [TFP] if set_name == "tfp" else names
        if not dirs or not (corpus / dirs[0]).is_dir():
            sys.exit(f"run.py: the corpus is missing in {corpus}: run benchmarks/build_corpus.py first")
        files = size = 0
        for d in dirs:
            f, s = tree_stats(corpus / d)
            files, size = files + f, size + s
        cache = cache_root / f"cache-{set_name}"
        common = ["--exit-zero", "--output-format", "concise", "--quiet"]
        tools = [
            Tool("tfgradlint cold", tfgradlint_cmd("--no-cache", *common, *dirs), corpus, args.runs,
                 counter=count_concise),
            Tool("tfgradlint warm", tfgradlint_cmd("--cache-dir", str(cache), *common, *dirs), corpus,
                 args.runs, counter=count_concise, prime=True),
        ]
        if ruff_ok:
            ruff = ["ruff", "check", "--no-cache", "--select", "E,F,B", "--exit-zero", "--quiet"]
            tools.append(Tool("ruff", [*ruff, *dirs], corpus, args.runs, counter=count_concise,
                              count_cmd=[*ruff, "--output-format", "concise", *dirs]))
        notes = []
        if fixit_ok and (set_name == "tfp" or args.fixit_full) and args.fixit_runs > 0:
            tools.append(Tool("fixit", ["fixit", "lint", *dirs], corpus, args.fixit_runs,
                              timeout=args.fixit_timeout, counter=count_fixit, ok_codes=(0, 1)))
        elif set_name == "tfp" or args.fixit_full:
            notes.append("Fixit skipped" + (" (not installed)" if shutil.which("fixit") is None else ""))
        sets[set_name] = {
            "description": "TensorFlow Probability 0.25.0" if set_name == "tfp"
            else f"the full corpus ({len(dirs)} packages)",
            "files": files, "mb": size / 1e6, "tools": tools, "notes": notes,
        }
    if "small" in args.only:
        tools = [
            Tool("python -c pass", [PY, "-c", "pass"], REPO, args.small_runs),
            Tool("tfgradlint", tfgradlint_cmd(SMALL_FILE), REPO, args.small_runs, counter=count_concise,
                 count_cmd=tfgradlint_cmd("--output-format", "concise", "--quiet", SMALL_FILE),
                 ok_codes=(1,)),  # the seed example has one finding
        ]
        if ruff_ok:
            tools.append(Tool("ruff", ["ruff", "check", "--no-cache", "--select", "E,F,B", "--exit-zero",
                                       "--quiet", SMALL_FILE], REPO, args.small_runs))
        sets["small"] = {"description": f"one file, whole process: {SMALL_FILE}", "files": 1,
                         "mb": (REPO / SMALL_FILE).stat().st_size / 1e6, "tools": tools, "notes": []}
    return sets


def compare_findings_run(targets: list[tuple[str, Path, list[str]]], cache_root: Path, timeout: float, log,
                         all_rules: bool = True) -> list[dict]:
    """tfgradlint's JSON findings on each target (label, folder to run in, paths): without the
    cache vs with it (cold, warm) vs ``--jobs 1`` and ``--jobs 2``.

    With ``all_rules`` every rule runs (``--select ALL --preview``): the default rules find
    almost nothing on released code, which would make "identical" a weak statement; the
    repository's fixtures (hundreds of findings) are compared too for the same reason."""
    out = []
    for label, cwd, paths in targets:
        cache = cache_root / f"cache-compare-{len(out)}"
        base = ["--output-format", "json", "--exit-zero"]
        if all_rules:
            base += ["--select", "ALL", "--preview"]
        variants = [
            ("--no-cache", ["--no-cache"]),
            ("cache, cold", ["--cache-dir", str(cache)]),
            ("cache, warm", ["--cache-dir", str(cache)]),
            ("--no-cache --jobs 1", ["--no-cache", "--jobs", "1"]),
            ("--no-cache --jobs 2", ["--no-cache", "--jobs", "2"]),
            ("cache, warm, --jobs 2", ["--cache-dir", str(cache), "--jobs", "2"]),
        ]
        res_set: dict = {"set": f"{label}, {'all rules' if all_rules else 'default rules'}",
                         "reference": variants[0][0], "variants": {}}
        reference = None
        for name, extra in variants:
            log(f"  compare on {label}: {name} ...")
            m = measure(tfgradlint_cmd(*extra, *base, *paths), cwd, timeout=timeout, mem_interval=None)
            if m.returncode != 0 or m.timed_out:
                why = (m.stderr.strip().splitlines() or ["timed out" if m.timed_out else f"exit {m.returncode}"])
                res_set["variants"][name] = {"unsupported": why[-1][:200]}
                if reference is None:
                    break  # nothing to compare with
                continue
            try:
                findings = json.loads(m.stdout or "[]")
            except json.JSONDecodeError as exc:
                res_set["variants"][name] = {"unsupported": f"output is not JSON: {exc}"}
                if reference is None:
                    break
                continue
            if reference is None:
                reference = findings
                res_set["reference_count"] = len(findings)
                res_set["reference_wall"] = m.wall
                continue
            res = compare_findings(reference, findings)
            res["wall"] = m.wall
            res_set["variants"][name] = res
        out.append(res_set)
    return out


def profile_run(corpus: Path, top: int, log) -> None:
    """Where a cold run's time goes: imports of a one-file run, and cProfile over TFP (serial)."""
    import pstats

    log("== python -X importtime -m tfgradlint check <small file> (top imports by cumulative time)")
    m = measure([PY, "-X", "importtime", "-m", "tfgradlint", "check", "--no-cache", SMALL_FILE], REPO,
                mem_interval=None)
    rows = []
    for line in m.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0].split(":")[1]), parts[2].rstrip()))
    total_us = sum(self_us for _, self_us, _ in rows)
    log(f"  {len(rows)} modules imported, {total_us / 1000:.0f} ms of import time in all")
    for cum, self_us, name in sorted(rows, reverse=True)[:top]:
        log(f"  {cum / 1000:8.1f} ms cumulative {self_us / 1000:7.1f} ms self  {name}")
    with tempfile.TemporaryDirectory(prefix="tgl-prof-") as tmp:
        out = Path(tmp) / "prof.out"
        argv = ["tfgradlint", "check", "--no-cache", "--jobs", "1", "--exit-zero", "--quiet",
                "--output-format", "concise", TFP]
        log("== cProfile (every thread: tfgradlint lints in a deep-stack thread): " + " ".join(argv))
        m = measure([PY, "-c", _PROFILE_DRIVER, str(out), *argv], corpus, mem_interval=None)
        log(f"  wall {fmt_s(m.wall)} under the profiler, exit {m.returncode}")
        if not out.is_file():
            log(m.stderr[-3000:])
            return
        import io

        main_stats = pstats.Stats(str(out) + ".main")
        waits = sum(v[2] for k, v in main_stats.stats.items() if k[2] == "<method 'acquire' of '_thread.lock' objects>")
        log(f"  main thread: {main_stats.total_tt:.2f} s profiled, of which {waits:.2f} s waiting for threads; "
            f"the threads (the lint), below: {pstats.Stats(str(out)).total_tt:.2f} s")
        for order in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(str(out), stream=buf).sort_stats(order).print_stats(top)
            log(buf.getvalue())
        buf = io.StringIO()
        main_stats.stream = buf
        main_stats.sort_stats("tottime").print_stats(8)
        log("  the main thread by own time:\n" + buf.getvalue())


# Profiles the main thread and every thread it starts (cProfile hooks one thread only), then
# writes the threads' merged statistics to argv[1] and the main thread's to argv[1] + ".main"
# (where the wait for the lint thread shows as ``acquire`` of a lock).
_PROFILE_DRIVER = """
import cProfile, pstats, runpy, sys, threading
out = sys.argv[1]
sys.argv = sys.argv[2:]
profiles = []
_run = threading.Thread.run
def run(self):
    p = cProfile.Profile()
    profiles.append(p)
    p.enable()
    try:
        _run(self)
    finally:
        p.disable()
threading.Thread.run = run
main = cProfile.Profile()
main.enable()
try:
    runpy.run_module("tfgradlint", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    main.disable()
pstats.Stats(main).dump_stats(out + ".main")
if profiles:
    stats = pstats.Stats(profiles[0])
    for p in profiles[1:]:
        stats.add(p)
    stats.dump_stats(out)
"""


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark tfgradlint against ruff and Fixit (issue 7).")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--runs", type=int, default=5, help="runs per tool and set (default 5)")
    ap.add_argument("--small-runs", type=int, default=None, help="runs for the one-file case (default 2 x --runs)")
    ap.add_argument("--only", nargs="+", default=["tfp", "full", "small", "lsp"],
                    choices=["tfp", "full", "small", "lsp"], help="which sets to run (default: all)")
    ap.add_argument("--fixit-runs", type=int, default=1, help="Fixit runs (default 1: it is slow)")
    ap.add_argument("--fixit-full", action="store_true", help="run Fixit on the full corpus too")
    ap.add_argument("--fixit-timeout", type=float, default=1200.0, help="seconds per Fixit run (default 1200)")
    ap.add_argument("--skip-fixit", action="store_true")
    ap.add_argument("--lsp-runs", type=int, default=None, help="didChange runs (default 2 x --runs)")
    ap.add_argument("--mem-interval", type=float, default=0.05,
                    help="seconds between samples of the process tree's memory (0: off)")
    ap.add_argument("--compare-findings", action="store_true",
                    help="also compare tfgradlint's findings on the full corpus: cache, --jobs")
    ap.add_argument("--compare-default-rules", action="store_true",
                    help="compare findings of the default rules only (default: --select ALL --preview)")
    ap.add_argument("--profile", action="store_true", help="only profile tfgradlint (importtime, cProfile)")
    ap.add_argument("--top", type=int, default=15, help="entries shown by --profile")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    args = ap.parse_args(argv)
    args.small_runs = args.small_runs or 2 * args.runs
    args.lsp_runs = args.lsp_runs or 2 * args.runs
    corpus = args.corpus.resolve()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    compiled = byte_compile_tfgradlint()
    if compiled:
        log(f"byte-compiled {compiled} (as pip install does; PYTHONDONTWRITEBYTECODE would otherwise "
            "make every run compile it again)")

    if args.profile:
        profile_run(corpus, args.top, log)
        return 0

    figures: dict = {"machine": machine_info(), "sets": {}, "settings": {
        "runs": args.runs, "small_runs": args.small_runs, "fixit_runs": 0 if args.skip_fixit else args.fixit_runs,
        "fixit_full": args.fixit_full, "mem_interval": args.mem_interval}}
    with tempfile.TemporaryDirectory(prefix="tgl-bench-") as tmp:
        cache_root = Path(tmp)
        sets = build_sets(args, corpus, cache_root)
        for set_name, data in sets.items():
            tools = data.pop("tools")
            log(f"== {set_name}: {data['description']}")
            rounds = max(t.runs for t in tools)
            data["tools"] = run_set(tools, rounds, args.mem_interval or None, log)
            warm, cold = data["tools"].get("tfgradlint warm"), data["tools"].get("tfgradlint cold")
            if warm and cold and warm.get("by_code") != cold.get("by_code"):
                data["notes"].append("tfgradlint warm's findings differ from cold's")
            figures["sets"][set_name] = data
        if "lsp" in args.only:
            log("== lsp")
            try:
                figures["lsp"] = bench_lsp(args.lsp_runs)
            except Exception as exc:  # report, do not lose the other figures
                figures["lsp"] = {"skipped": f"failed: {exc!r}"}
        if args.compare_findings:
            log("== compare findings")
            folders = [f.name for f in package_folders(corpus)]
            targets = [(f"the full corpus ({len(folders)} packages)", corpus, folders),
                       ("the repository's fixtures/", REPO, ["fixtures"])]
            figures["compare_findings"] = compare_findings_run(targets, cache_root, 1800.0, log,
                                                               all_rules=not args.compare_default_rules)
    figures["machine"]["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    figures["targets"] = evaluate_targets(target_values(figures))
    print(format_report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
