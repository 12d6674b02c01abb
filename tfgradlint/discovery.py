"""Which files a run lints: paths expanded, excludes and ``.gitignore`` respected.

Default excludes (virtual environments, build folders, ``site-packages``, ...) apply to what
is found while walking folders, not to a path named on the command line, unless
``--force-exclude`` (pre-commit passes every staged file by name).

The walk works on strings: each folder's real path is its parent's plus its name (only a
symbolic link is resolved), so no path is resolved per file; the exclude globs of a
configuration are compiled once (``config.path_matches`` semantics).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from tfgradlint.config import Settings

SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")


@dataclass(frozen=True)
class SourceFile:
    path: Path  # as given or found (may be relative)
    display: str  # the name shown in reports


class _GitIgnore:
    """``.gitignore`` files from a folder up to its repository's top, cached per folder."""

    def __init__(self) -> None:
        self._specs: dict[str, list] = {}

    def _spec_for(self, directory: str) -> list:
        if directory in self._specs:
            return self._specs[directory]
        specs: list = []
        parent = os.path.dirname(directory)
        if parent != directory and not os.path.exists(os.path.join(directory, ".git")):
            specs = list(self._spec_for(parent))
        gi = os.path.join(directory, ".gitignore")
        if os.path.isfile(gi):
            try:
                import pathspec

                lines = Path(gi).read_text(encoding="utf-8", errors="replace").splitlines()
                specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines)))
            except Exception:  # a broken .gitignore must not stop the run
                pass
        self._specs[directory] = specs
        return specs

    def ignored(self, real: str, is_dir: bool) -> bool:
        """``real``: the path resolved (absolute, symbolic links followed)."""
        for base, spec in self._spec_for(os.path.dirname(real)):
            rel = _relative_to(real, base)
            if rel is None:
                continue
            if spec.match_file(rel + ("/" if is_dir else "")):
                return True
        return False


def _relative_to(real: str, base: str) -> Optional[str]:
    """``Path(real).relative_to(base).as_posix()`` for resolved paths, or None."""
    if real == base:
        return "."
    prefix = base if base.endswith(os.sep) else base + os.sep
    if not real.startswith(prefix):
        return None
    return real[len(prefix) :].replace(os.sep, "/")


class _Excludes:
    """``any(path_matches(rel, p) or path_matches(name, p) for p in patterns)``, with the
    globs compiled once (config.path_matches: a glob without ``/`` matches any part)."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        norm = os.path.normcase
        self.any_part = self._compile([norm(p) for p in patterns if "/" not in p])
        self.with_slash = [re.compile(fnmatch.translate(norm(p))) for p in patterns if "/" in p]

    @staticmethod
    def _compile(patterns: list[str]) -> Optional["re.Pattern[str]"]:
        if not patterns:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))

    def __call__(self, rel: str, name: str) -> bool:
        norm = os.path.normcase
        rel = norm(rel.replace(os.sep, "/"))
        name = norm(name)
        parts = rel.split("/")
        if self.any_part is not None:
            # the whole path, each part, and the name (path_matches(name, p) is a match of it)
            if self.any_part.match(rel) or self.any_part.match(name):
                return True
            for part in parts:
                if self.any_part.match(part):
                    return True
        for pat in self.with_slash:
            if pat.match(rel) or pat.match(name):
                return True
            for i in range(1, len(parts)):
                if pat.match("/".join(parts[i:])):
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
    seen: set[str] = set()
    roots: dict[Path, str] = {}
    matchers: dict[tuple[str, ...], _Excludes] = {}

    def excluded(real: str, name: str, settings: Settings, is_dir: bool) -> bool:
        root = roots.get(settings.root)
        if root is None:
            root = roots[settings.root] = os.path.realpath(settings.root)
        rel = _relative_to(real, root)
        if rel is None:
            rel = name
        patterns = settings.excludes()
        matcher = matchers.get(patterns)
        if matcher is None:
            matcher = matchers[patterns] = _Excludes(patterns)
        if matcher(rel, name):
            return True
        return settings.respect_gitignore and gitignore.ignored(real, is_dir)

    for given in paths:
        if given.is_file() or not given.exists():
            # A missing path is reported by the engine (TGL002), not silently dropped.
            real = os.path.realpath(given)
            if force_exclude and given.exists() and excluded(real, given.name, settings_for(given), False):
                continue
            if real not in seen:
                seen.add(real)
                yield SourceFile(given, display_name(given))
            continue
        for found, real, display in _walk(given, settings_for, excluded, suffixes):
            if real not in seen:
                seen.add(real)
                yield SourceFile(found, display)


def _walk(root: Path, settings_for, excluded, suffixes) -> Iterator[tuple[Path, str, str]]:
    """(path, real path, display name) of the source files under ``root``, folders in name
    order, depth first."""
    root_display = display_name(root)
    stack = [(root, os.path.realpath(root), _folder_display(root, root_display))]
    while stack:
        directory, real_dir, shown = stack.pop()
        settings = settings_for(directory)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
                real = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real_dir, name)
            except OSError:
                continue
            if is_dir:
                if not excluded(real, name, settings, True):
                    path = Path(entry.path)
                    subdirs.append((path, real, _folder_display(path, None if shown is None else _join(shown, name))))
            elif name.endswith(suffixes) and not excluded(real, name, settings, False):
                path = Path(entry.path)
                yield path, real, (_join(shown, name) if shown is not None else str(path))
        stack.extend(reversed(subdirs))


def _folder_display(path: Path, display: Optional[str]) -> Optional[str]:
    """The display prefix of a folder's files: its path relative to the current folder, or
    None when it lies outside (then files show their path as found)."""
    if display is None:
        display = display_name(path)
    rel = display
    return None if rel.startswith("..") or os.path.isabs(rel) else rel


def _join(prefix: str, name: str) -> str:
    return name if prefix == "." else prefix + os.sep + name


def display_name(path: Path) -> str:
    """How a path is shown in reports: relative to the current folder when below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel
