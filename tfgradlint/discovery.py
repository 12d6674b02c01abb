"""Which files a run lints: paths expanded, excludes and ``.gitignore`` respected.

Default excludes (virtual environments, build folders, ``site-packages``, ...) apply to what
is found while walking folders, not to a path named on the command line, unless
``--force-exclude`` (pre-commit passes every staged file by name).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from tfgradlint.config import Settings, path_matches

SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")


@dataclass(frozen=True)
class SourceFile:
    path: Path  # as given or found (may be relative)
    display: str  # the name shown in reports


class _GitIgnore:
    """``.gitignore`` files from a folder up to its repository's top, cached per folder."""

    def __init__(self) -> None:
        self._specs: dict[Path, list] = {}

    def _spec_for(self, directory: Path) -> list:
        if directory in self._specs:
            return self._specs[directory]
        specs: list = []
        parent = directory.parent
        if parent != directory and not (directory / ".git").exists():
            specs = list(self._spec_for(parent))
        gi = directory / ".gitignore"
        if gi.is_file():
            try:
                import pathspec

                lines = gi.read_text(encoding="utf-8", errors="replace").splitlines()
                specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines)))
            except Exception:  # a broken .gitignore must not stop the run
                pass
        self._specs[directory] = specs
        return specs

    def ignored(self, path: Path, is_dir: bool) -> bool:
        path = path.resolve()
        for base, spec in self._spec_for(path.parent):
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + ("/" if is_dir else "")):
                return True
        return False


def discover(
    paths: list[Path],
    settings_for: Callable[[Path], Settings],
    *,
    force_exclude: bool = False,
    suffixes: tuple[str, ...] = SOURCE_SUFFIXES,
) -> Iterator[SourceFile]:
    """Yield the files to lint, each once, in a stable order."""
    gitignore = _GitIgnore()
    seen: set[Path] = set()

    def excluded(path: Path, settings: Settings, is_dir: bool) -> bool:
        try:
            rel = path.resolve().relative_to(settings.root.resolve()).as_posix()
        except ValueError:
            rel = path.name
        for pattern in settings.excludes():
            if path_matches(rel, pattern) or path_matches(path.name, pattern):
                return True
        return settings.respect_gitignore and gitignore.ignored(path, is_dir)

    for given in paths:
        if given.is_file() or not given.exists():
            # A missing path is reported by the engine (TGL002), not silently dropped.
            if force_exclude and given.exists() and excluded(given, settings_for(given), False):
                continue
            key = given.resolve()
            if key not in seen:
                seen.add(key)
                yield SourceFile(given, _display(given))
            continue
        for found in _walk(given, settings_for, excluded, suffixes):
            key = found.resolve()
            if key not in seen:
                seen.add(key)
                yield SourceFile(found, _display(found))


def _walk(root: Path, settings_for, excluded, suffixes) -> Iterator[Path]:
    stack = [root]
    while stack:
        directory = stack.pop()
        settings = settings_for(directory)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                if not excluded(path, settings, True):
                    subdirs.append(path)
            elif entry.name.endswith(suffixes) and not excluded(path, settings, False):
                yield path
        stack.extend(reversed(subdirs))


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel
