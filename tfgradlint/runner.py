"""One run over many files: discover, read, settings per file, cache, lint, collect.

The command line, the pre-commit hook and the language server all come through here (the
server with one in-memory buffer), so every entry point behaves the same.

The steps of a run over files (DESIGN.md "The pipeline"):

1. discover the files; each file's settings (memoised per folder);
2. stat every file: the cache says which are unchanged without reading them
   (tfgradlint/cache.py); the others are read and hashed;
3. the project index (whole-project runs): what each file exports, merged before any file
   is linted (tfgradlint/project.py). When the same files with the same contents were
   indexed before, the merged index comes from the cache and no file is read; otherwise
   every file is read and the summaries come from the cache, from worker processes, or are
   computed here;
4. each file's findings: from the cache when its key matches (content, settings, tool,
   project fingerprint...), else linted: files that may need parsing go to worker
   processes (``--jobs``, largest first), the others are done here (the prefilter answers
   at once);
5. the results in file order (output is deterministic whatever ``--jobs`` is), the cache
   saved atomically.

LibCST and the rule modules are imported only where a file passes the prefilter (the rules
are ``tfgradlint.rules.LazyRule``s until then), so a warm run, or a run over files without
trigger strings, never imports them (a cold run over 100+ files starts its workers' zygote
early, which imports them in its own process); TensorFlow is never imported.

In parallel (tfgradlint/workers.py), each file that may need analysis is *prepared* by one
worker while this process is still reading (its project summary, and its statement layout,
which slicing.analysed keeps), and later linted by the same worker, which then has nothing
to redo; a worker with nothing left of its own takes the smallest files of another.
Each file's text is searched once for every word any step looks for (``_File.words``).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from tfgradlint.config import Overrides, Settings, SettingsResolver
from tfgradlint.discovery import SourceFile, discover
from tfgradlint.engine import UnreadableSource, decode_source, lint_source, meta_finding
from tfgradlint.findings import Finding
from tfgradlint.workers import WorkerDied, WorkerPool

if TYPE_CHECKING:  # pragma: no cover
    from tfgradlint.cache import Cache
    from tfgradlint.project import ProjectIndex

# Worker processes only when at least this much work may need analysis (forking is cheap,
# but each worker imports LibCST: about 0.1 s).
PARALLEL_MIN_FILES = 4
PARALLEL_MIN_BYTES = 96 * 1024
# A cold run over at least this many files starts its workers before reading.
EARLY_START_FILES = 100
# Bump when what a cached result depends on changes shape.
KEY_VERSION = 1


@dataclass
class RunOptions:
    paths: list[Path] = field(default_factory=lambda: [Path(".")])
    overrides: Overrides = field(default_factory=Overrides)
    config_path: Optional[Path] = None
    force_exclude: bool = False
    # Lint this text instead of reading files (editors, ``-``); named ``stdin_filename``.
    stdin_text: Optional[str] = None
    stdin_filename: Optional[str] = None
    # Force single-file mode (project-wide rules silent), as for an editor buffer.
    single_file: Optional[bool] = None
    no_cache: bool = False
    cache_dir: Optional[Path] = None
    # Worker processes: None or 0 = one per core, 1 = serial.
    jobs: Optional[int] = None


@dataclass
class FileOutcome:
    source_file: SourceFile
    settings: Settings
    # The text linted; None when the file could not be read, or when its findings (none)
    # came from the cache without reading it.
    text: Optional[str]
    findings: list[Finding]


class Sources(MutableMapping):
    """File name -> text, for code frames, baselines and fixes. Files served from the
    cache without being read are listed too and read on first access."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._lazy: dict[str, Path] = {}

    def add_lazy(self, name: str, path: Path) -> None:
        if name not in self._texts:
            self._lazy[name] = path

    def __getitem__(self, name: str) -> str:
        try:
            return self._texts[name]
        except KeyError:
            pass
        path = self._lazy.get(name)
        if path is None:
            raise KeyError(name)
        text = _read_text(path)
        if text is None:
            text = ""  # gone or unreadable since it was linted: no code frame
        self._texts[name] = text
        del self._lazy[name]
        return text

    def __setitem__(self, name: str, text: str) -> None:
        self._texts[name] = text
        self._lazy.pop(name, None)

    def __delitem__(self, name: str) -> None:
        if name in self._texts:
            del self._texts[name]
        else:
            del self._lazy[name]

    def __contains__(self, name: object) -> bool:
        return name in self._texts or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        yield from list(self._texts)
        yield from [n for n in self._lazy if n not in self._texts]

    def __len__(self) -> int:
        return len(self._texts) + len(self._lazy)

    def __repr__(self) -> str:
        return f"Sources({len(self._texts)} read, {len(self._lazy)} not read)"


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files_checked: int = 0
    sources: MutableMapping = field(default_factory=dict)
    outcomes: list[FileOutcome] = field(default_factory=list)
    # Whether project-wide rules ran (not a single file alone); fixes re-lint the same way.
    whole_project: bool = False
    # The project-wide index of the run (None for a single file): tfgradlint/project.py.
    project: Optional["ProjectIndex"] = None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _module_name(path: Path, root: Path) -> Optional[str]:
    rel = _relative(path, root)
    if rel.startswith("/") or not rel.endswith((".py", ".pyi")):
        return None
    parts = rel.rsplit(".", 1)[0].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or None


def _absolute(path: Path, cwd: Optional[str] = None) -> str:
    """``os.path.abspath(path)``; ``cwd``: the current folder, when the caller asked for it
    already (a run asks once, not once per file)."""
    p = os.fspath(path)
    if not os.path.isabs(p):
        p = os.path.join(cwd if cwd is not None else os.getcwd(), p)
    return os.path.normpath(p)


def _read_bytes(path: str, size: int) -> bytes:
    """The file's bytes (``Path.read_bytes`` with fewer calls: ``size``, its size when it was
    stat'ed, is the first read's length)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        want = size + 1  # one byte more: a file that grew since is read to its end
        while True:
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            want = max(want, 1 << 16)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _read_text(path: Path) -> Optional[str]:
    try:
        return decode_source(path.read_bytes()).text
    except (OSError, UnreadableSource):
        return None


def run(options: RunOptions) -> RunResult:
    """Lint what ``options`` names; deep but valid code needs a deep stack (engine)."""
    from tfgradlint.engine import call_with_deep_stack

    if options.stdin_text is not None:
        return call_with_deep_stack(_run_stdin, options)
    return _Run(options).execute()


# -- one text (editors, standard input) -----------------------------------------------------


def _run_stdin(options: RunOptions) -> RunResult:
    from tfgradlint.rules import runtime_rules

    resolver = SettingsResolver(options.overrides, options.config_path)
    result = RunResult()
    name = options.stdin_filename or "-"
    sf = SourceFile(Path(name), name)
    text = options.stdin_text or ""
    single = options.single_file if options.single_file is not None else True
    project = None
    if not single:
        from tfgradlint.project import ProjectFile, ProjectIndex

        root = resolver.for_path(Path(name).absolute()).root
        roots = [*(p for p in options.paths if p.is_dir()), root]
        project = ProjectIndex.build([ProjectFile(name, Path(name), text, roots=roots)])
        result.project = project
    result.whole_project = not single
    settings = resolver.for_path(Path(sf.display).absolute())
    enabled = settings.rule_codes(_relative(sf.path, settings.root))
    rules = runtime_rules(enabled)
    result.sources[name] = text
    findings, errors, extra_sources = _lint_one(
        text,
        name,
        rules,
        enabled,
        _module_name(sf.path, settings.root),
        not single,
        project,
        project.extra_triggers(name, text) if project is not None else (),
        name.endswith(".ipynb"),
    )
    result.sources.update(extra_sources)
    result.errors.extend(errors)
    result.findings.extend(findings)
    result.files_checked = 1
    result.outcomes.append(FileOutcome(sf, settings, text, findings))
    result.findings.sort(key=Finding.sort_key)
    return result


def _lint_one(
    text: str,
    display: str,
    rules: list,
    enabled: frozenset[str],
    module_name: Optional[str],
    whole_project: bool,
    project: Optional["ProjectIndex"],
    extra_triggers,
    notebook: bool,
) -> tuple[list[Finding], list[str], dict[str, str]]:
    """Lint one text (here or in a worker): findings, internal errors, cell sources."""
    extra_sources: dict[str, str] = {}
    try:
        if notebook:
            # Code cells as one module; findings carry the cell (tfgradlint/notebook.py).
            from tfgradlint.notebook import lint_notebook

            lint = lint_notebook(
                text,
                display,
                rules,
                enabled=enabled,
                project=project,
                whole_project=whole_project,
                sources=extra_sources,
            )
        else:
            lint = lint_source(
                text,
                display,
                rules,
                enabled=enabled,
                project=project,
                whole_project=whole_project,
                module_name=module_name,
                extra_triggers=extra_triggers,
            )
    except RecursionError:
        return [], [f"{display}: gave up: the code is nested too deeply"], extra_sources
    except Exception as exc:  # a bug in the engine must not stop the run
        return [], [f"{display}: internal error ({type(exc).__name__}: {exc})"], extra_sources
    return lint.findings, lint.errors, extra_sources


# -- a run over files -------------------------------------------------------------------------


class _File:
    """One discovered file through the run."""

    __slots__ = (
        "sf",
        "settings",
        "key",
        "stat",
        "missing",
        "error",
        "chash",
        "text",
        "enabled",
        "rkey",
        "findings",
        "errors",
        "extra_sources",
        "notebook",
        "done",
        "words",
        "in_project",
    )

    def __init__(self, sf: SourceFile, cwd: Optional[str] = None) -> None:
        self.sf = sf
        self.settings: Settings
        self.key = _absolute(sf.path, cwd)
        self.stat: Optional[os.stat_result] = None
        self.missing = False
        self.error: Optional[str] = None  # cannot be read: TGL002's reason
        self.chash: Optional[bytes] = None
        self.text: Optional[str] = None
        self.enabled: frozenset[str] = frozenset()
        self.rkey: Optional[str] = None
        self.findings: list[Finding] = []
        self.errors: list[str] = []
        self.extra_sources: dict[str, str] = {}
        self.notebook = sf.display.endswith(".ipynb")
        self.done = False
        # which of the run's searched words (triggers, summary triggers) the text has; None
        # until the file is read
        self.words: Optional[frozenset[str]] = None
        # a Python module (the project index's files), not a notebook
        self.in_project = os.path.splitext(self.key)[1] in (".py", ".pyi")


def _finding_data(f: Finding) -> dict[str, Any]:
    data = f.to_json()
    data["subject"] = f.subject
    return data


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Run:
    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.resolver = SettingsResolver(options.overrides, options.config_path)
        self.result = RunResult(sources=Sources())
        self.cache: Optional["Cache"] = None
        self.pool: Optional[WorkerPool] = None
        self.jobs = options.jobs if options.jobs else default_jobs()
        self._settings_by_dir: dict[str, Settings] = {}
        self._settings_keys: dict[int, tuple[Settings, str]] = {}
        self._enabled: dict[tuple[int, Optional[str]], frozenset[str]] = {}
        # display -> (task, position) of a summary a worker computes
        self._summary_tasks: dict[str, tuple[Any, int]] = {}
        # display -> the task doing the file's lint work ahead (its worker keeps what it
        # did: the file's layout and parsed plan)
        self._ahead_tasks: dict[str, Any] = {}
        self._ahead_items: dict[str, int] = {}  # display -> its place in that task's answer
        self._rules: Optional[dict[str, Any]] = None
        self._common_keys: dict[tuple, str] = {}
        self._linted_roots: Optional[list[Path]] = None
        self._triggers: dict[frozenset[str], tuple[str, ...]] = {}
        self._abs_roots: dict[Path, tuple[str, ...]] = {}
        self._built = False  # the project index is built: no more summaries to compute
        self._scan: Optional[_WordScan] = None
        # files waiting to be sent to the workers, by kind of work, and their bytes
        self._to_summarize: list[_File] = []
        self._to_summarize_bytes = 0
        self._to_ahead: list[_File] = []
        self._to_ahead_bytes = 0
        self._prepare_bytes = 0  # of every file queued for preparation
        self._prepare_files = 0
        self._parallel = False  # whether the workers may be started (enough work: see read)
        self._reads = 0

    # -- settings ----------------------------------------------------------------------------

    def settings_for(self, path: Path) -> Settings:
        """The settings of a folder, or of a file (its folder's): one lookup per folder,
        shared by discovery and the files."""
        full = os.path.abspath(path)
        folder = full if os.path.isdir(full) else os.path.dirname(full)
        return self.settings_in(folder)

    def settings_in(self, folder: str) -> Settings:
        s = self._settings_by_dir.get(folder)
        if s is None:
            s = self._settings_by_dir[folder] = self.resolver.for_folder(folder)
        return s

    def settings_key(self, s: Settings) -> str:
        hit = self._settings_keys.get(id(s))
        if hit is None or hit[0] is not s:
            hit = self._settings_keys[id(s)] = (s, s.cache_key())
        return hit[1]

    def enabled_for(self, f: _File) -> frozenset[str]:
        s = f.settings
        rel = _relative(f.sf.path, s.root) if s.per_file_ignores else None
        k = (id(s), rel)
        codes = self._enabled.get(k)
        if codes is None:
            codes = self._enabled[k] = s.rule_codes(rel)
        return codes

    def triggers_for(self, enabled: frozenset[str]) -> tuple[str, ...]:
        """The distinct trigger strings of the enabled rules."""
        found = self._triggers.get(enabled)
        if found is None:
            found = self._triggers[enabled] = tuple(
                sorted({t for r in self.rules_for(enabled) for t in r.triggers})
            )
        return found

    def rules_for(self, enabled: frozenset[str]) -> list:
        if self._rules is None:
            from tfgradlint.rules import runtime_rules

            self._rules = {r.code: r for r in runtime_rules()}
        return [self._rules[c] for c in sorted(enabled) if c in self._rules]

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> RunResult:
        # A run over a folder allocates in bursts (files, texts, the index, the answers):
        # fewer young collections meanwhile; set back at the end.
        threshold = gc.get_threshold()
        if self.options.single_file is not True and any(p.is_dir() for p in self.options.paths):
            gc.set_threshold(20_000, 20, 20)
        try:
            return self._execute()
        finally:
            gc.set_threshold(*threshold)

    def _execute(self) -> RunResult:
        options = self.options
        result = self.result
        if not options.no_cache:
            self.cache = self._open_cache()
        # A cold run over many files: the workers' warm-up (LibCST and the rules, in their
        # zygote: tfgradlint/workers.py) runs beside this process's discovery and reading,
        # from the moment the run is known to be big.
        early = options.single_file is not True and (self.cache is None or not self.cache.entries)
        files = []
        cwd = os.getcwd()
        for sf in discover(options.paths, self.settings_for, force_exclude=options.force_exclude):
            f = _File(sf, cwd)
            f.settings = self.settings_in(os.path.dirname(f.key))
            files.append(f)
            if early and len(files) == EARLY_START_FILES:
                self._maybe_start_pool(self.jobs)
        single = options.single_file
        if single is None:
            single = len(files) <= 1 and not any(p.is_dir() for p in options.paths)
        self.whole_project = not single
        result.whole_project = self.whole_project
        frozen = False
        try:
            self._stat_and_check(files)
            if self.whole_project and len(files) >= FREEZE_MIN_FILES:
                # What the run holds for its whole length (its files, their texts) out of the
                # cyclic collector's sight until it ends: each full collection would walk it
                # all again (0.05 s a time on 8,000 files).
                gc.freeze()
                frozen = True
            project, project_fp = self._project_phase(files) if self.whole_project else (None, None)
            result.project = project
            self._findings_phase(files, project, project_fp)
        finally:
            if frozen:
                gc.unfreeze()
            if self.pool is not None:
                self.pool.close()
                self.pool = None
        self._collect(files)
        if self.cache is not None:
            self.cache.save()
        return result

    def _open_cache(self) -> Optional["Cache"]:
        from tfgradlint.cache import Cache, settings_cache_dir

        folder = self.options.cache_dir
        if folder is None:
            first = self.options.paths[0] if self.options.paths else Path(".")
            folder = settings_cache_dir(self.resolver.for_path(first if first.exists() else Path.cwd()))
        return Cache.open(Path(folder))

    def _maybe_start_pool(self, work: int) -> bool:
        if self.pool is None and self.jobs > 1 and work > 1:
            self.pool = WorkerPool.start(min(self.jobs, work), _worker_warm_up)
            if self.pool is None:
                self.jobs = 1  # no processes to be had here: everything in this process
        return self.pool is not None

    # 2. stat, the cache's cheap check, reading what must be read

    def _stat_and_check(self, files: list[_File]) -> None:
        unknown = 0
        for f in files:
            try:
                f.stat = os.stat(f.sf.path)
            except FileNotFoundError:
                f.missing = True
                continue
            except OSError:
                f.stat = None  # reading will say why
            if self.cache is not None and f.stat is not None:
                f.chash = self.cache.trusted_hash(f.key, f.stat)
                if f.chash is not None:
                    self.cache.seen(f.key)
                    continue
            unknown += 1
        # Workers prepare files while this process reads, when the run may be big enough.
        self._parallel = self.whole_project and self.jobs > 1 and unknown >= PARALLEL_MIN_FILES
        for f in files:
            if not f.missing and f.chash is None:
                self.read(f)

    def words_in(self, text: str) -> frozenset[str]:
        """Which of the words the steps of the run look for ``text`` has: the rules'
        triggers and the project summary's."""
        if self._scan is None:
            from tfgradlint import project as project_mod

            self.rules_for(frozenset())
            assert self._rules is not None
            words = {t for r in self._rules.values() for t in r.triggers}
            words.update(getattr(project_mod, "SUMMARY_TRIGGERS", ()))
            self._scan = _WordScan(words)
        return self._scan.search(text)

    def read(self, f: _File) -> None:
        """Read and hash the file (stat taken before the read: see Cache.record)."""
        if f.text is not None or f.error is not None or f.missing:
            return
        read_ns = time.time_ns()
        try:
            data = _read_bytes(f.key, f.stat.st_size if f.stat is not None else 0)
        except FileNotFoundError:
            f.missing = True
            return
        except OSError as exc:
            f.error = exc.strerror or str(exc)
            return
        if self.cache is not None:
            from tfgradlint.cache import content_hash

            chash = content_hash(data)
        else:
            chash = b"-"  # no cache: nothing to compare with
        try:
            f.text = decode_source(data).text
        except UnreadableSource as exc:
            f.error = str(exc)
            return
        f.chash = chash
        f.words = self.words_in(f.text)
        if self.cache is not None:
            self.cache.record(f.key, f.stat, chash, read_ns)
        if self._parallel and not self._built:
            self._want_prepared(f)
            self._reads += 1
            if self.pool is not None and self._reads % POLL_EVERY == 0:
                self.pool.poll()  # a worker done with its tasks gets the next ones

    # 3. the project index

    def _summary_candidate(self, f: _File) -> bool:
        from tfgradlint import project as project_mod

        words = f.words if f.words is not None else self.words_in(f.text or "")
        return f.in_project and any(t in words for t in getattr(project_mod, "SUMMARY_TRIGGERS", ()))

    def _want_prepared(self, f: _File) -> None:
        """Queue ``f`` for the workers when it may need analysis: its summary (unless cached)
        and the part of its lint that the project index does not change (engine.lint_ahead).
        Summaries go first: the runner needs them all to build the index, and builds it while
        the workers go on with the lints' part."""
        if f.text is None or f.notebook:
            return
        summary = self._summary_candidate(f)
        if summary and self.cache is not None and f.chash is not None:
            found, _ = self.cache.summary(f.key, f.chash, self._summary_key(f))
            if found:
                summary = False
        f.enabled = self.enabled_for(f)
        ahead = _may_parse(f.text, self.triggers_for(f.enabled), f.enabled, None, f.words)
        if not summary and not ahead:
            return
        size = len(f.text)
        if summary:
            self._to_summarize.append(f)
            self._to_summarize_bytes += size
        if ahead:
            self._to_ahead.append(f)
            self._to_ahead_bytes += size
        self._prepare_bytes += size
        self._prepare_files += 1
        if self.pool is None:
            if self._prepare_files < PARALLEL_MIN_FILES or self._prepare_bytes < PARALLEL_MIN_BYTES:
                return
            if not self._maybe_start_pool(self.jobs):
                self._parallel = False
                self._to_summarize, self._to_ahead = [], []
                self._to_summarize_bytes = self._to_ahead_bytes = 0
                return
        if self._to_summarize_bytes >= BATCH_BYTES or self._to_ahead_bytes >= BATCH_BYTES:
            self._flush_prepared()

    def _flush_prepared(self) -> None:
        """Send the files queued so far to the workers: their summaries as an urgent task for
        the least loaded worker (the runner needs them all to build the project index), the
        part of their lints the index does not change as a task for the first worker free
        (done while the index is built)."""
        if self.pool is None or not (self._to_summarize or self._to_ahead):
            return
        self.pool.collect(block=False)  # each worker's unfinished work, as of now
        summaries = None
        if self._to_summarize:
            items = [(g.sf.display, str(g.sf.path), g.text, [str(r) for r in self._roots_of(g)])
                     for g in self._to_summarize]
            summaries = self.pool.submit(None, _worker_summarize, items, cost=self._to_summarize_bytes, urgent=True)
            for i, g in enumerate(self._to_summarize):
                self._summary_tasks[g.sf.display] = (summaries, i)
            self._to_summarize, self._to_summarize_bytes = [], 0
        if self._to_ahead:
            # for the first worker free (how long a file's plan takes is hard to guess), the
            # summarising one if it can (the files' layouts are there)
            items = [(g.text, tuple(sorted(g.enabled))) for g in self._to_ahead]
            task = self.pool.submit_later(_worker_lint_ahead, items, cost=self._to_ahead_bytes, near=summaries)
            for i, g in enumerate(self._to_ahead):
                self._ahead_tasks[g.sf.display] = task
                self._ahead_items[g.sf.display] = i
            self._to_ahead, self._to_ahead_bytes = [], 0

    def _project_files(self, files: list[_File]) -> list[_File]:
        return [f for f in files if f.in_project and not f.missing and f.error is None]

    def _roots_of(self, f: _File) -> list[Path]:
        if self._linted_roots is None:
            self._linted_roots = [p for p in self.options.paths if p.is_dir()]
        return [*self._linted_roots, f.settings.root]

    def _summary_key(self, f: _File) -> tuple:
        root = f.settings.root
        roots = self._abs_roots.get(root)
        if roots is None:
            roots = self._abs_roots[root] = tuple(os.path.abspath(r) for r in self._roots_of(f))
        return (f.sf.display, roots)

    def _project_key(self, pfiles: list[_File]) -> str:
        from tfgradlint.cache import digest, tool_fingerprint

        shown = {f.key for f in pfiles}
        packages: dict[str, bool] = {}
        for f in pfiles:
            folder = os.path.dirname(f.key)
            while folder not in packages:
                init = os.path.join(folder, "__init__.py")
                is_package = init in shown or os.path.isfile(init) or os.path.isfile(init + "i")
                packages[folder] = is_package
                parent = os.path.dirname(folder)
                if not is_package or parent == folder:
                    break
                folder = parent
        return digest(
            "project",
            KEY_VERSION,
            tool_fingerprint(),
            [(f.sf.display, f.key, f.chash, self._summary_key(f)[1]) for f in pfiles],
            sorted(packages.items()),
        )

    def _project_phase(self, files: list[_File]) -> tuple["ProjectIndex", str]:
        pfiles = self._project_files(files)
        if self.cache is not None and all(f.chash is not None for f in pfiles):
            memo = self.cache.project(self._project_key(pfiles))
            if memo is not None:
                try:
                    fp = memo["fp"]
                    summaries = dict(memo["summaries"])
                    modules = memo["modules"]
                    if isinstance(fp, str) and isinstance(modules, dict) and all(isinstance(v, dict) for v in summaries.values()):
                        # built when first used (a warm run with nothing to lint never does)
                        rebuild = lambda: self._build_project(files)[0]  # noqa: E731
                        return _LazyProject(summaries, modules, rebuild), fp  # type: ignore[return-value]
                except Exception:  # a malformed memo: rebuild
                    pass
        return self._build_project(files)

    def _build_project(self, files: list[_File]) -> tuple["ProjectIndex", str]:
        from tfgradlint.engine import call_with_deep_stack
        from tfgradlint.project import FileSummary, ProjectFile, ProjectIndex

        # Every file's text is needed to decide which files to summarise.
        for f in self._project_files(files):
            self.read(f)
        pfiles = self._project_files(files)
        facts: dict[str, tuple[list[str], bool]] = {}
        if self.pool is not None:
            self._flush_prepared()
            # what the index needs of every file, worked out here while the workers prepare
            from tfgradlint.project import _has_star_import, module_candidates

            packages: dict[str, bool] = {}
            for f in pfiles:
                if f.text is not None:
                    facts[f.sf.display] = (
                        module_candidates(f.key, self._roots_of(f), packages),
                        _has_star_import(f.text),
                    )
        by_display = {f.sf.display: f for f in pfiles}
        computed: dict[str, Any] = {}

        def summarizer(pf: "ProjectFile"):
            f = by_display.get(pf.display)
            skey = self._summary_key(f) if f is not None else None
            if f is not None and self.cache is not None and f.chash is not None:
                found, data = self.cache.summary(f.key, f.chash, skey)
                if found:
                    return FileSummary.from_dict(data) if data is not None else None
            entry = self._summary_tasks.pop(pf.display, None)
            s = _NOT_DONE
            if entry is not None:
                task, i = entry
                try:
                    s = task.result()[i]
                except Exception:  # the worker died or failed: summarised here
                    s = _NOT_DONE
            if s is _NOT_DONE:
                s = _default_summarizer()(pf)
            if f is not None:
                computed[pf.display] = (f, skey, s)
            return s

        project_files = [
            ProjectFile(
                f.sf.display,
                f.sf.path,
                f.text,
                roots=self._roots_of(f),
                summary_candidate=self._summary_candidate(f) if f.text is not None else None,
                module_names=facts[f.sf.display][0] if f.sf.display in facts else None,
                star_import=facts[f.sf.display][1] if f.sf.display in facts else None,
            )
            for f in pfiles
        ]
        project = call_with_deep_stack(
            ProjectIndex.build, project_files, summarizer, self.pool.poll if self.pool is not None else None
        )
        self._built = True
        self._summary_tasks.clear()
        fp = project_fingerprint(project) if self.cache is not None else ""
        if self.cache is not None:
            for f, skey, s in computed.values():
                if f.chash is not None:
                    self.cache.store_summary(f.key, f.chash, skey, s.to_dict() if s is not None else None)
            if all(f.chash is not None for f in pfiles):
                pkey = self._project_key(pfiles)
                self.cache.store_project(
                    pkey,
                    {
                        "summaries": {d: s.to_dict() for d, s in project.summaries.items()},
                        "modules": {d: (list(m[0]), bool(m[1])) for d, m in project.modules.items()},
                        "fp": fp,
                    },
                )
        return project, fp

    # 4. findings

    def _result_key(self, f: _File, project_fp: Optional[str]) -> str:
        """What a file's findings depend on: its content, name and module root, the tool and
        its rules, the file's effective settings and enabled codes, whole-project or not,
        and (whole-project runs) everything other files contribute: ``project_fp``."""
        from tfgradlint.cache import digest, tool_fingerprint

        s = f.settings
        common_key = (id(s), f.enabled)
        common = self._common_keys.get(common_key)
        if common is None:
            from tfgradlint.rules import rules_signature

            common = digest(
                "result",
                KEY_VERSION,
                tool_fingerprint(),
                rules_signature(),
                str(s.root),
                self.settings_key(s),
                sorted(f.enabled),
                self.whole_project,
                project_fp,
            )
            self._common_keys[common_key] = common
        return digest(common, f.chash, f.sf.display, f.key, f.notebook)

    def _findings_phase(self, files: list[_File], project: Optional["ProjectIndex"], project_fp: Optional[str]) -> None:
        from tfgradlint.findings import Finding as _Finding

        todo: list[_File] = []
        for f in files:
            if f.missing:
                continue
            f.enabled = self.enabled_for(f)
            if self.cache is not None and f.chash is not None and f.error is None:
                f.rkey = self._result_key(f, project_fp)
                hit = self.cache.result(f.key, f.chash, f.rkey)
                if hit is not None:
                    try:
                        data, extra = hit
                        f.findings = [_Finding.from_json(d) for d in data]
                        f.extra_sources = dict(extra)
                        f.done = True
                        continue
                    except Exception:  # malformed: lint again
                        f.findings, f.extra_sources = [], {}
            todo.append(f)
        for f in todo:
            self.read(f)
            if f.missing:
                continue
            if f.error is not None:
                f.done = True
                if "TGL002" in f.enabled:
                    f.findings = [meta_finding("TGL002", f"cannot read: {f.error}", f.sf.display)]
        todo = [f for f in todo if not f.done and not f.missing]
        self._lint(todo, project)
        if self.cache is not None:
            for f in todo:
                if f.done and not f.errors and f.chash is not None:
                    if f.rkey is None:
                        f.rkey = self._result_key(f, project_fp)
                    self.cache.store_result(
                        f.key, f.chash, f.rkey, ([_finding_data(x) for x in f.findings], dict(f.extra_sources))
                    )

    def _lint(self, todo: list[_File], project: Optional["ProjectIndex"]) -> None:
        from tfgradlint.engine import call_with_deep_stack

        if not todo:
            return
        project = _real_project(project)
        whole = self.whole_project
        extra: dict[str, list[str]] = {}
        heavy: list[_File] = []
        light: list[_File] = []
        for f in todo:
            assert f.text is not None
            if project is not None and not f.notebook:
                extra[f.sf.display] = project.extra_triggers(f.sf.display, f.text)
            if _may_parse(f.text, self.triggers_for(f.enabled), f.enabled, extra.get(f.sf.display), f.words):
                heavy.append(f)
            else:
                light.append(f)
        size = sum(len(f.text or "") for f in heavy)
        if self.pool is not None and not self.pool.alive():
            self.pool.close()  # every worker died preparing files: lint here
            self.pool, self.jobs = None, 1
        parallel = (
            self.pool is not None
            or (len(heavy) >= PARALLEL_MIN_FILES and size >= PARALLEL_MIN_BYTES)
        ) and self._maybe_start_pool(len(heavy))

        def lint_here(batch: list[_File]) -> None:
            for f in batch:
                f.findings, f.errors, f.extra_sources = _lint_one(
                    f.text or "",
                    f.sf.display,
                    self.rules_for(f.enabled),
                    f.enabled,
                    _module_name(f.sf.path, f.settings.root),
                    whole,
                    project,
                    extra.get(f.sf.display, ()),
                    f.notebook,
                )
                f.done = True

        if not parallel:
            call_with_deep_stack(lint_here, todo)
            return
        # lint_source returns at once, with nothing, for a module whose text has none of the
        # enabled rules' trigger strings, no extra trigger and (TGL003) no noqa: exactly what
        # _may_parse says (tests/test_jobs.py checks it); notebooks still go through (a
        # broken notebook is TGL002).
        for f in light:
            if not f.notebook:
                f.findings, f.errors, f.extra_sources, f.done = [], [], {}, True
        here = [f for f in light if not f.done]
        crashed = self._lint_in_workers(heavy, project, extra, lambda: call_with_deep_stack(lint_here, here))
        if crashed and self.pool is not None:
            self.pool.close()  # (its threads gone, this process may fork again)
            self.pool = None
        for f in crashed:
            # A worker died: each of its files alone in a fresh process, so that one file
            # cannot take the others down.
            f.findings, f.errors, f.extra_sources = _isolated_lint(f, whole, project, extra.get(f.sf.display, ()))
            f.done = True

    def _lint_in_workers(
        self,
        heavy: list[_File],
        project: Optional["ProjectIndex"],
        extra: dict[str, list[str]],
        meanwhile: Callable[[], None],
    ) -> list[_File]:
        """Lint ``heavy`` in the workers and run ``meanwhile`` here once they have work; the
        files whose worker died.

        A file whose plan a worker parsed ahead (engine.lint_ahead) is linted there, as soon
        as that work is done: its lint is the rules alone, and the worker lets go of its
        tree. The others (nothing done ahead, or extra trigger words from the project) go to
        the first worker free."""
        import pickle

        pool = self.pool
        assert pool is not None
        pool.broadcast(_worker_set_project, pickle.dumps(project) if project is not None else b"")
        if not pool.alive():
            return list(heavy)
        # the files of each task that did their lint's work ahead, in the order sent
        ahead: dict[int, tuple[Any, list[_File]]] = {}
        others: list[_File] = []
        for f in heavy:
            task = self._ahead_tasks.get(f.sf.display)
            if task is None or extra.get(f.sf.display):
                others.append(f)
            else:
                ahead.setdefault(id(task), (task, []))[1].append(f)
        running: list[tuple[Any, list[_File]]] = []
        crashed: list[_File] = []

        def later(files: list[_File]) -> None:
            chunk: list[_File] = []
            size = 0
            for f in sorted(files, key=lambda f: -len(f.text or "")):
                chunk.append(f)
                size += len(f.text or "")
                if size >= BATCH_BYTES:
                    running.append((self._submit_lint(None, chunk, extra), chunk))
                    chunk, size = [], 0
            if chunk:
                running.append((self._submit_lint(None, chunk, extra), chunk))

        def ready() -> None:
            for key, (task, files) in list(ahead.items()):
                if task.done:
                    del ahead[key]
                    if task.ok and pool.is_alive(task.worker):
                        files = [f for f in files if not _nothing_to_lint(f, task, self._ahead_items)]
                        if files:
                            running.append((self._submit_lint(task.worker, files, extra), files))
                    else:  # (the work ahead failed, or its worker died: all of it again)
                        later(files)

        later(others)
        ready()
        meanwhile()
        while running or ahead:
            pool.collect(block=True)
            ready()
            still: list[tuple[Any, list[_File]]] = []
            for task, chunk in running:
                if not task.done:
                    still.append((task, chunk))
                    continue
                try:
                    answers = task.result()
                except WorkerDied:
                    crashed.extend(chunk)
                    continue
                except Exception as exc:
                    for f in chunk:
                        f.errors = [f"{f.sf.display}: internal error in a worker ({type(exc).__name__}: {exc})"]
                        f.done = True
                    continue
                for f, (findings, errors, extra_sources) in zip(chunk, answers):
                    f.findings, f.errors, f.extra_sources, f.done = findings, errors, extra_sources, True
            running[:] = still
        return crashed

    def _submit_lint(self, worker: Optional[int], chunk: list[_File], extra: dict[str, list[str]]) -> Any:
        """A lint task for ``worker``, or (None) for the first worker free."""
        assert self.pool is not None
        tasks = [
            (
                f.text,
                f.sf.display,
                tuple(sorted(f.enabled)),
                _module_name(f.sf.path, f.settings.root),
                self.whole_project,
                tuple(extra.get(f.sf.display, ())),
                f.notebook,
            )
            for f in chunk
        ]
        cost = sum(len(f.text or "") for f in chunk)
        if worker is None:
            return self.pool.submit_later(_worker_lint_many, tasks, cost=cost)
        return self.pool.submit(worker, _worker_lint_many, tasks, cost=cost)

    # 5. results in file order

    def _collect(self, files: list[_File]) -> None:
        result = self.result
        sources = result.sources
        for f in files:
            if f.missing:
                result.errors.append(f"{f.sf.display}: no such file or directory")
                continue
            result.files_checked += 1
            if f.error is not None:
                result.outcomes.append(FileOutcome(f.sf, f.settings, None, f.findings))
                result.findings.extend(f.findings)
                continue
            if f.text is None and f.findings:
                self.read(f)  # code frames, fixes, baselines need the text
            if f.text is not None:
                sources[f.sf.display] = f.text
            elif isinstance(sources, Sources):
                sources.add_lazy(f.sf.display, f.sf.path)
            sources.update(f.extra_sources)
            result.errors.extend(f.errors)
            result.findings.extend(f.findings)
            result.outcomes.append(FileOutcome(f.sf, f.settings, f.text, f.findings))
        result.findings.sort(key=Finding.sort_key)


_NOT_DONE = object()
# From this many files on, a run freezes what it has read (see _Run.execute).
FREEZE_MIN_FILES = 1000
# While reading, the workers' answers are looked at every this many files read.
POLL_EVERY = 32
# Work is sent to workers in tasks of about this many bytes of source (largest files alone).
BATCH_BYTES = 48 * 1024


def _nothing_to_lint(f: "_File", task: Any, items: dict[str, int]) -> bool:
    """Whether ``f``'s work ahead found its lint has nothing to do (no rule triggered, or no
    statement that can matter: engine.lint_ahead's "nothing"), so that its lint would find
    nothing and need not be sent: then its (empty) results are set here. Not so when
    unused suppressions are reported (TGL003) and it has a noqa comment."""
    try:
        left = task.value[items[f.sf.display]]
    except (KeyError, IndexError, TypeError):
        return False
    if left != "nothing" or ("TGL003" in f.enabled and "noqa" in (f.text or "")):
        return False
    f.findings, f.errors, f.extra_sources, f.done = [], [], {}, True
    return True


class _LazyProject:
    """The project index of a cached run, built on first use from the cached summaries.

    It stands for a ``ProjectIndex`` (attribute access is forwarded): a warm run with
    nothing to lint does not import tfgradlint/project.py at all."""

    def __init__(self, summaries: dict[str, Any], modules: dict[str, Any], rebuild: Callable[[], Any]) -> None:
        self._data: Optional[tuple[dict, dict]] = (summaries, modules)
        self._rebuild: Optional[Callable[[], Any]] = rebuild
        self._index: Optional["ProjectIndex"] = None

    def materialize(self) -> "ProjectIndex":
        if self._index is None:
            from tfgradlint.project import FileSummary, ProjectIndex

            assert self._data is not None and self._rebuild is not None
            summaries, modules = self._data
            try:
                self._index = ProjectIndex(
                    {d: FileSummary.from_dict(s) for d, s in summaries.items()},
                    {d: (list(m[0]), bool(m[1])) for d, m in modules.items()},
                )
            except Exception:  # a malformed cache entry: index the files again
                self._index = self._rebuild()
            self._data = self._rebuild = None
        return self._index

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_data", "_index", "_rebuild"):
            raise AttributeError(name)
        return getattr(self.materialize(), name)

    def __reduce__(self):  # pickled (workers) as the real index
        return (_identity, (self.materialize(),))


def _identity(x: Any) -> Any:
    return x


def _real_project(project: Any) -> Optional["ProjectIndex"]:
    return project.materialize() if isinstance(project, _LazyProject) else project


def _default_summarizer() -> Callable:
    """The summarizer ProjectIndex.build uses by default (the same function everywhere)."""
    from tfgradlint import project as project_mod

    fn = getattr(project_mod, "_summarize_file", None)
    if fn is None:  # pragma: no cover - depends on project.py's internals

        def fn(pf):
            return project_mod.summarize(pf.text or "", pf.display)

    return fn


def project_fingerprint(project: "ProjectIndex") -> str:
    """What every file's findings may depend on from other files: the merged summaries and
    module names, canonically serialised (equal indexes, equal fingerprints)."""
    import json

    from tfgradlint.cache import digest

    def default(o: Any) -> Any:
        if isinstance(o, (set, frozenset)):
            return sorted(o, key=repr)
        if hasattr(o, "to_dict"):
            return o.to_dict()
        return repr(o)

    data = {
        "summaries": {d: s.to_dict() for d, s in project.summaries.items()},
        "modules": {d: [list(m[0]), bool(m[1])] for d, m in project.modules.items()},
    }
    return digest("project-fp", json.dumps(data, sort_keys=True, default=default))


def _may_parse(
    text: str,
    triggers: tuple[str, ...],
    enabled: frozenset[str],
    extra: Optional[list[str]],
    words: Optional[frozenset[str]] = None,
) -> bool:
    """Whether lint_source may get past its prefilter (scheduling only: the engine decides).
    ``words``: the trigger words ``text`` has, when already searched (``_Run.words_in``)."""
    if extra:
        return True
    if "TGL003" in enabled and "noqa" in text:
        return True
    if words is not None:
        return any(t in words for t in triggers)
    return any(t in text for t in triggers)


class _WordScan:
    """Which of some words a text contains, in fewer passes over it: every TensorFlow
    gradient API name the rules look for contains "radient", so one search for it stands
    for all of those (most files have none); each word is then checked where it may be."""

    KEY = "radient"

    def __init__(self, words: set[str]) -> None:
        self.keyed = tuple(sorted(w for w in words if self.KEY in w))
        self.alone = tuple(sorted(w for w in words if self.KEY not in w))

    def search(self, text: str) -> frozenset[str]:
        found = [w for w in self.alone if w in text]
        if self.keyed and self.KEY in text:
            found.extend(w for w in self.keyed if w in text)
        return frozenset(found)



# -- worker processes -------------------------------------------------------------------------


_WORKER: dict[str, Any] = {}


def _worker_rules(codes: tuple[str, ...]) -> list:
    rules = _WORKER.get("rules")
    if rules is None:
        from tfgradlint.rules import runtime_rules

        rules = _WORKER["rules"] = {r.code: r for r in runtime_rules()}
    return [rules[c] for c in codes if c in rules]


# Linted once by each worker as it starts, so that the modules a lint imports on first use
# are imported (and compiled, where no bytecode is cached) before the real work arrives.
_WARM_UP_SOURCE = """\
import tensorflow as tf


@tf.custom_gradient
def f(x, y):
    def grad(dy):
        return dy
    return x * y, grad


def g(w, v):
    with tf.GradientTape() as tape:
        z = f(x=w, y=w)
    v.assign(f(w, w))
    return tape.gradient(z, w)


@tf.RegisterGradient("WarmUp")
def _warm_up(op, grad):
    return grad


h = tf.recompute_grad(g)
with tf.compat.v1.get_default_graph().gradient_override_map({"Round": "WarmUp"}):
    pass
"""


def _worker_warm_up() -> None:
    """Import LibCST and the rules, lint a small text: run once in the workers' zygote
    (tfgradlint/workers.py), so that every worker starts warm."""
    if _WORKER.get("warm"):
        return
    _WORKER["warm"] = True
    try:
        from tfgradlint.engine import call_with_deep_stack

        _worker_rules(())
        rules = list(_WORKER["rules"].values())
        codes = frozenset(r.code for r in rules)
        call_with_deep_stack(_lint_one, _WARM_UP_SOURCE, "warm_up.py", rules, codes, None, False, None, (), False)
    except Exception:  # pragma: no cover - only an optimisation
        pass
    # What every worker inherits (modules, classes, LibCST's constructors) lives as long as
    # the worker: out of the cyclic collector's sight, which would walk it at every full
    # collection. (A worker is forked from the zygote, a process of its own.)
    gc.collect()
    gc.freeze()
    # A worker allocates in bursts (trees, summaries) and lives for one run: collections
    # at each 700 allocations cost more than the cycles they find.
    gc.set_threshold(20_000, 20, 20)


def _worker_set_project(blob: bytes) -> None:
    """The project index the following lint tasks use (b"": none)."""
    import pickle

    _WORKER["project"] = pickle.loads(blob) if blob else None


def _worker_summarize(items: list[tuple[str, str, str, list[str]]]) -> list:
    """Each file's project summary (its statement layout stays in this worker:
    slicing.analysed)."""
    from tfgradlint.engine import call_with_deep_stack
    from tfgradlint.project import ProjectFile

    summarize = _default_summarizer()

    def many() -> list:
        return [summarize(ProjectFile(display, Path(path), text, roots=[Path(r) for r in roots]))
                for display, path, text, roots in items]

    return call_with_deep_stack(many)


def _worker_lint_ahead(items: list[tuple[str, tuple[str, ...]]]) -> list:
    """What each file's lint has left to do (engine.lint_ahead, for the rules ``codes``);
    what it did stays in this worker for the file's lint."""
    from tfgradlint.engine import call_with_deep_stack, lint_ahead

    def many() -> list:
        out: list = []
        for text, codes in items:
            left = None
            try:
                left = lint_ahead(text, _worker_rules(codes), frozenset(codes))
            except Exception:  # only an optimisation: the lint does it all
                pass
            out.append(left)
        return out

    return call_with_deep_stack(many)


def _worker_lint(task: tuple) -> tuple[list[Finding], list[str], dict[str, str]]:
    from tfgradlint.engine import call_with_deep_stack

    text, display, codes, module_name, whole, extra, notebook = task
    try:
        rules = _worker_rules(codes)
    except Exception as exc:
        return [], [f"{display}: internal error in a worker ({type(exc).__name__}: {exc})"], {}
    return call_with_deep_stack(
        _lint_one, text, display, rules, frozenset(codes), module_name, whole, _WORKER.get("project"), extra, notebook
    )


def _worker_lint_many(tasks: list[tuple]) -> list:
    return [_worker_lint(task) for task in tasks]


def _isolated_lint(f: _File, whole: bool, project: Optional["ProjectIndex"], extra) -> tuple:
    """Lint one file in a fresh single-worker process; a crash is an internal error."""
    import pickle

    task_error = f"{f.sf.display}: internal error: the worker process linting this file died"
    pool = WorkerPool.start(1)  # no warm-up: one file
    if pool is None:
        return [], [task_error], {}
    try:
        pool.submit(0, _worker_set_project, pickle.dumps(project) if project is not None else b"")
        task = pool.submit(
            0,
            _worker_lint,
            (
                f.text,
                f.sf.display,
                tuple(sorted(f.enabled)),
                _module_name(f.sf.path, f.settings.root),
                whole,
                tuple(extra),
                f.notebook,
            ),
        )
        try:
            return task.result()
        except Exception:
            return [], [task_error], {}
    finally:
        pool.close()
