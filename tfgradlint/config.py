"""Configuration: ``[tool.tfgradlint]`` in pyproject.toml or ``tfgradlint.toml``.

The nearest configuration file to a linted file wins; the command line beats files. Every
key, value and rule code is validated: a mistake is one clear ``ConfigError`` naming the key
and the file (the command exits 2), never a traceback.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OUTPUT_FORMATS = ("concise", "full", "json", "json-lines", "sarif", "github", "junit", "pylint")

_LIST_KEYS = ("select", "extend-select", "ignore", "exclude", "extend-exclude")
_BOOL_KEYS = ("preview", "fix", "unsafe-fixes", "respect-gitignore")
_KNOWN_KEYS = set(_LIST_KEYS) | set(_BOOL_KEYS) | {
    "per-file-ignores",
    "output-format",
    "cache-dir",
    "runtime",
}
_RUNTIME_KEYS = {"timeout": (int, float), "python": (str,), "memory-limit-mb": (int,)}

DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".bzr",
    ".venv",
    "venv",
    ".env",
    "env",
    ".tox",
    ".nox",
    ".eggs",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tfgradlint_cache",
    ".ipynb_checkpoints",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "__pypackages__",
)


class ConfigError(Exception):
    """A configuration or usage mistake; the message is shown as one line, exit 2."""


@dataclass(frozen=True)
class Settings:
    select: Optional[tuple[str, ...]] = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    preview: bool = False
    exclude: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    fix: bool = False
    unsafe_fixes: bool = False
    output_format: str = "full"
    respect_gitignore: bool = True
    cache_dir: Optional[str] = None
    runtime: tuple[tuple[str, Any], ...] = ()
    # Where the configuration came from (None: defaults only) and the folder it governs.
    source: Optional[Path] = None
    root: Path = field(default_factory=Path.cwd)

    def rule_codes(self, relpath: Optional[str] = None) -> frozenset[str]:
        """The codes enabled for a file (its per-file-ignores applied)."""
        codes = select_rules(self.select, self.extend_select, self.ignore, self.preview)
        if relpath is not None and self.per_file_ignores:
            for pattern, ignored in self.per_file_ignores:
                if path_matches(relpath, pattern):
                    codes = codes - select_rules(ignored, (), (), True, strict_preview=False)
        return codes

    def excludes(self) -> tuple[str, ...]:
        base = self.exclude if self.exclude else DEFAULT_EXCLUDES
        return tuple(base) + tuple(self.extend_exclude)

    def cache_key(self) -> str:
        return repr(
            (
                sorted(self.rule_codes()),
                self.per_file_ignores,
                self.preview,
            )
        )

    def runtime_option(self, key: str, default: Any = None) -> Any:
        return dict(self.runtime).get(key, default)


def path_matches(relpath: str, pattern: str) -> bool:
    """Glob match against the relative path or any of its trailing parts."""
    relpath = relpath.replace(os.sep, "/")
    if fnmatch.fnmatch(relpath, pattern):
        return True
    parts = relpath.split("/")
    if "/" not in pattern:
        return any(fnmatch.fnmatch(p, pattern) for p in parts)
    return any(fnmatch.fnmatch("/".join(parts[i:]), pattern) for i in range(len(parts)))


def _matches(selector: str, rule: type) -> bool:
    sel = selector.strip()
    if sel.upper() == "ALL":
        return True
    if sel.lower() == rule.name:
        return True
    return rule.code.startswith(sel.upper()) and sel.upper().startswith("TGL")


def validate_selectors(selectors: Iterable[str], where: str) -> None:
    from tfgradlint.rules import rule_infos

    rules = rule_infos()
    for sel in selectors:
        if not isinstance(sel, str) or not any(_matches(sel, r) for r in rules):
            raise ConfigError(f"unknown rule code or name {sel!r} in {where}")


def select_rules(
    select: Optional[Iterable[str]],
    extend_select: Iterable[str],
    ignore: Iterable[str],
    preview: bool,
    strict_preview: bool = True,
) -> frozenset[str]:
    """Resolve selectors to rule codes.

    Without ``select`` the rules that are on by default run (and preview rules with
    ``preview``). A prefix or ``ALL`` selects preview rules only with ``preview``; an exact
    code or name always selects its rule.
    """
    from tfgradlint.rules import rule_infos as all_rules  # metadata only: no rule module imported

    def chosen(selectors: Iterable[str]) -> set[str]:
        out = set()
        for rule in all_rules():
            for sel in selectors:
                if not _matches(sel, rule):
                    continue
                exact = sel.upper() == rule.code or sel.lower() == rule.name
                if rule.default == "preview" and strict_preview and not (preview or exact):
                    continue
                out.add(rule.code)
        return out

    if select is None:
        codes = {
            r.code for r in all_rules() if r.default == "on" or (r.default == "preview" and preview)
        }
    else:
        codes = chosen(select)
    codes |= chosen(extend_select)
    ignored = set()
    for rule in all_rules():
        if any(_matches(sel, rule) for sel in ignore):
            ignored.add(rule.code)
    return frozenset(codes - ignored)


# -- reading files ---------------------------------------------------------------------------


def _table_from(path: Path) -> Optional[dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("tfgradlint") if isinstance(tool, dict) else None
        return table if isinstance(table, dict) else None
    # tfgradlint.toml: top level, or a [tool.tfgradlint] table
    if isinstance(data.get("tool"), dict) and "tfgradlint" in data["tool"]:
        return data["tool"]["tfgradlint"]
    return data


def settings_from_table(table: dict[str, Any], path: Path) -> Settings:
    """Validate a configuration table and turn it into Settings."""
    where = str(path)
    unknown = set(table) - _KNOWN_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{where}: unknown key {key!r} in [tool.tfgradlint]")
    kwargs: dict[str, Any] = {"source": path, "root": path.parent}
    for key in _LIST_KEYS:
        if key in table:
            value = table[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: {key!r} must be a list of strings")
            if key in ("select", "extend-select", "ignore"):
                validate_selectors(value, f"{key!r} ({where})")
            kwargs[key.replace("-", "_")] = tuple(value)
    for key in _BOOL_KEYS:
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"{where}: {key!r} must be true or false")
            kwargs[key.replace("-", "_")] = table[key]
    if "output-format" in table:
        if table["output-format"] not in OUTPUT_FORMATS:
            raise ConfigError(
                f"{where}: 'output-format' must be one of {', '.join(OUTPUT_FORMATS)}, "
                f"not {table['output-format']!r}"
            )
        kwargs["output_format"] = table["output-format"]
    if "cache-dir" in table:
        if not isinstance(table["cache-dir"], str):
            raise ConfigError(f"{where}: 'cache-dir' must be a string")
        kwargs["cache_dir"] = str((path.parent / table["cache-dir"]))
    if "per-file-ignores" in table:
        pfi = table["per-file-ignores"]
        if not isinstance(pfi, dict):
            raise ConfigError(f"{where}: 'per-file-ignores' must be a table of pattern = [codes]")
        items = []
        for pattern, codes in pfi.items():
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise ConfigError(f"{where}: per-file-ignores[{pattern!r}] must be a list of codes")
            validate_selectors(codes, f"per-file-ignores[{pattern!r}] ({where})")
            items.append((pattern, tuple(codes)))
        kwargs["per_file_ignores"] = tuple(items)
    if "runtime" in table:
        rt = table["runtime"]
        if not isinstance(rt, dict):
            raise ConfigError(f"{where}: 'runtime' must be a table")
        for key, value in rt.items():
            if key not in _RUNTIME_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r} in [tool.tfgradlint.runtime]")
            if not isinstance(value, _RUNTIME_KEYS[key]) or isinstance(value, bool):
                raise ConfigError(f"{where}: runtime.{key} has the wrong type ({value!r})")
        kwargs["runtime"] = tuple(sorted(rt.items()))
    return Settings(**kwargs)


@lru_cache(maxsize=4096)
def _config_file_in(directory: Path) -> Optional[Path]:
    for name in ("tfgradlint.toml", "pyproject.toml"):
        candidate = directory / name
        if candidate.is_file():
            if name == "pyproject.toml":
                if _table_from(candidate) is None:
                    continue
            return candidate
    return None


def find_config_file(start: Path) -> Optional[Path]:
    """The nearest configuration file at or above ``start`` (a folder)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        found = _config_file_in(directory)
        if found is not None:
            return found
    return None


@lru_cache(maxsize=256)
def load_settings(path: Optional[Path]) -> Settings:
    if path is None:
        return Settings()
    table = _table_from(path) or {}
    return settings_from_table(table, path)


@dataclass(frozen=True)
class Overrides:
    """Options given on the command line; they beat configuration files."""

    select: Optional[tuple[str, ...]] = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    preview: Optional[bool] = None
    fix: Optional[bool] = None
    unsafe_fixes: Optional[bool] = None
    output_format: Optional[str] = None
    respect_gitignore: Optional[bool] = None
    cache_dir: Optional[str] = None

    def apply(self, settings: Settings) -> Settings:
        changes: dict[str, Any] = {}
        if self.select is not None:
            changes["select"] = self.select
        if self.extend_select:
            changes["extend_select"] = settings.extend_select + self.extend_select
        if self.ignore:
            changes["ignore"] = settings.ignore + self.ignore
        for name in ("preview", "fix", "unsafe_fixes", "output_format", "respect_gitignore", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        return replace(settings, **changes) if changes else settings


class SettingsResolver:
    """Settings for each linted file: the nearest configuration, then the command line.

    One resolver serves one run: it remembers each folder's configuration file (a run over
    a project asks for every folder) and gives the same ``Settings`` object to every folder
    under one file (so that what is worked out per settings is worked out once)."""

    def __init__(self, overrides: Overrides, config_path: Optional[Path] = None) -> None:
        self.overrides = overrides
        if config_path is not None and not config_path.is_file():
            raise ConfigError(f"{config_path}: configuration file not found")
        self.fixed = load_settings(config_path.resolve()) if config_path else None
        self._nearest: dict[str, Optional[Path]] = {}
        self._reals: dict[str, str] = {}
        self._applied: dict[int, tuple[Settings, Settings]] = {}

    def for_path(self, path: Path) -> Settings:
        full = os.path.abspath(path)
        return self.for_folder(full if os.path.isdir(full) else os.path.dirname(full))

    def for_folder(self, folder: str) -> Settings:
        """The settings of the files in ``folder`` (an absolute path)."""
        if self.fixed is not None:
            base = self.fixed
        else:
            base = load_settings(self._config_in(self._real(folder)))
        hit = self._applied.get(id(base))
        if hit is None or hit[0] is not base:
            hit = self._applied[id(base)] = (base, self.overrides.apply(base))
        return hit[1]

    def _real(self, folder: str) -> str:
        """``os.path.realpath(folder)``: its parent's, when known, and its name unless it is
        a symbolic link (a walk asks for a folder after its parent)."""
        real = self._reals.get(folder)
        if real is None:
            parent, name = os.path.split(folder)
            known = self._reals.get(parent)
            if known is not None and name and name not in (".", "..") and not os.path.islink(folder):
                real = os.path.join(known, name)
            else:
                real = os.path.realpath(folder)
            self._reals[folder] = real
        return real

    def _config_in(self, real: str) -> Optional[Path]:
        """``find_config_file`` of a resolved folder, remembered."""
        found = self._nearest.get(real, _UNKNOWN)
        if found is _UNKNOWN:
            found = _config_file_in(Path(real))
            if found is None:
                parent = os.path.dirname(real)
                found = self._config_in(parent) if parent != real else None
            self._nearest[real] = found
        return found  # type: ignore[return-value]


_UNKNOWN: Any = object()
