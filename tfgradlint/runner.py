"""One run over many files: discover, read, settings per file, lint, collect.

The command line, the pre-commit hook and the language server all come through here (the
server with one in-memory buffer), so every entry point behaves the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from tfgradlint.config import Overrides, Settings, SettingsResolver
from tfgradlint.discovery import SourceFile, discover
from tfgradlint.engine import UnreadableSource, decode_source, lint_source, meta_finding
from tfgradlint.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from tfgradlint.project import ProjectIndex


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
    jobs: Optional[int] = None


@dataclass
class FileOutcome:
    source_file: SourceFile
    settings: Settings
    text: Optional[str]
    findings: list[Finding]


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files_checked: int = 0
    sources: dict[str, str] = field(default_factory=dict)
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


def _summary_phase(
    files: list[SourceFile],
    texts: dict[str, Optional[str]],
    resolver: SettingsResolver,
    options: RunOptions,
) -> "ProjectIndex":
    """Read the files (into ``texts``, for the lint loop) and build the project index.

    Files that cannot be read are left out here; the lint loop reports them.
    """
    from tfgradlint.project import ProjectFile, ProjectIndex

    linted_roots = [p for p in options.paths if p.is_dir()]
    project_files = []
    for sf in files:
        if sf.path.suffix not in (".py", ".pyi"):
            continue
        text = texts.get(sf.display)
        if text is None:
            try:
                text = decode_source(sf.path.read_bytes()).text
            except (OSError, UnreadableSource):
                continue
            texts[sf.display] = text
        root = resolver.for_path(sf.path).root
        project_files.append(ProjectFile(sf.display, sf.path, text, roots=[*linted_roots, root]))
    return ProjectIndex.build(project_files)


def run(options: RunOptions) -> RunResult:
    """Lint what ``options`` names; deep but valid code needs a deep stack (engine)."""
    from tfgradlint.engine import call_with_deep_stack

    return call_with_deep_stack(_run, options)


def _run(options: RunOptions) -> RunResult:
    from tfgradlint.rules import all_rules

    resolver = SettingsResolver(options.overrides, options.config_path)
    result = RunResult()
    instances = {cls.code: cls() for cls in all_rules()}

    if options.stdin_text is not None:
        name = options.stdin_filename or "-"
        files = [SourceFile(Path(name), name)]
        texts: dict[str, Optional[str]] = {name: options.stdin_text}
    else:
        files = list(discover(options.paths, resolver.for_path, force_exclude=options.force_exclude))
        texts = {}
    single = options.single_file
    if single is None:
        single = options.stdin_text is not None or (
            len(files) <= 1 and not any(p.is_dir() for p in options.paths)
        )
    result.whole_project = not single
    project = None
    if not single:
        # The summary phase: what each file exports, merged before any file is linted.
        project = _summary_phase(files, texts, resolver, options)
        result.project = project

    for sf in files:
        settings = resolver.for_path(sf.path if options.stdin_text is None else Path(sf.display).absolute())
        rel = _relative(sf.path, settings.root)
        enabled = settings.rule_codes(rel)
        findings: list[Finding] = []
        text = texts.get(sf.display)
        if text is None:
            try:
                data = sf.path.read_bytes()
                text = decode_source(data).text
            except FileNotFoundError:
                result.errors.append(f"{sf.display}: no such file or directory")
                continue
            except (OSError, UnreadableSource) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                if "TGL002" in enabled:
                    findings.append(meta_finding("TGL002", f"cannot read: {reason}", sf.display))
                result.findings.extend(findings)
                result.files_checked += 1
                result.outcomes.append(FileOutcome(sf, settings, None, findings))
                continue
        result.sources[sf.display] = text
        rules = [instances[c] for c in sorted(enabled) if c in instances]
        if sf.display.endswith(".ipynb"):
            # Code cells as one module; findings carry the cell (tfgradlint/notebook.py).
            from tfgradlint.notebook import lint_notebook

            lint = lint_notebook(
                text,
                sf.display,
                rules,
                enabled=enabled,
                project=project,
                whole_project=not single,
                sources=result.sources,
            )
        else:
            lint = lint_source(
                text,
                sf.display,
                rules,
                enabled=enabled,
                project=project,
                whole_project=not single,
                module_name=_module_name(sf.path, settings.root),
                extra_triggers=project.extra_triggers(sf.display, text) if project is not None else (),
            )
        result.errors.extend(lint.errors)
        result.findings.extend(lint.findings)
        result.files_checked += 1
        result.outcomes.append(FileOutcome(sf, settings, text, lint.findings))
    result.findings.sort(key=Finding.sort_key)
    return result
