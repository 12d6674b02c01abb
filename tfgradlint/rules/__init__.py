"""The rule registry: every ``Rule`` subclass with a code in this package's modules.

Adding a rule is adding a module here (one rule or one tight family per module); nothing
else needs to change except the generated metadata table (below).

Two views of the rules:

- ``all_rules()``: the classes. Importing them imports every rule module and LibCST
  (about 0.2 s): only what parses a file, prints documentation or fixes needs them.
- ``rule_infos()`` / ``rule_info(code)`` / ``runtime_rules()``: what selecting rules,
  the prefilter and the tool's own findings need (code, name, severity, default, triggers,
  needs_project), read from ``tfgradlint/data/rules.json`` without importing a rule module.
  ``runtime_rules()`` gives objects the engine can run: their ``check`` imports the rule's
  module the first time a file actually needs it.

The table is generated from the classes (``python scripts/gen_rule_metadata.py``) and
carries a hash of this package's sources: when a rule module changed since the table was
written, the table is not used and the classes are imported instead (correct, only slower),
and tests/test_lazy_imports.py fails until the table is regenerated. The classes are also
used whenever they are already imported, or when ``all_rules`` was replaced (tests do that).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Optional

from tfgradlint.rules.base import Invalid, Rule, Valid

if TYPE_CHECKING:  # pragma: no cover
    from tfgradlint.context import RuleContext

__all__ = [
    "Invalid",
    "Rule",
    "RuleInfo",
    "Valid",
    "all_rules",
    "rule_by_code_or_name",
    "rule_info",
    "rule_infos",
    "runtime_rules",
]

TABLE_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "rules.json")
TABLE_VERSION = 1


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    found: dict[str, type[Rule]] = {}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name == "base" or mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Rule) and obj.code and obj.__module__ == module.__name__:
                if obj.code in found:
                    raise RuntimeError(f"two rules with code {obj.code}")
                found[obj.code] = obj
    return tuple(found[c] for c in sorted(found))


_ALL_RULES = all_rules


def rule_by_code_or_name(key: str) -> type[Rule] | None:
    key_upper = key.upper()
    for r in all_rules():
        if r.code == key_upper or r.name == key.lower():
            return r
    return None


# -- metadata without imports -----------------------------------------------------------------


@dataclass(frozen=True)
class RuleInfo:
    """What is known of a rule without importing its module."""

    code: str
    name: str
    severity: str
    default: str
    triggers: tuple[str, ...]
    needs_project: bool
    module: str
    qualname: str

    @classmethod
    def of(cls, rule: type[Rule]) -> "RuleInfo":
        return cls(
            code=rule.code,
            name=rule.name,
            severity=rule.severity,
            default=rule.default,
            triggers=tuple(rule.triggers),
            needs_project=bool(rule.needs_project),
            module=rule.__module__,
            qualname=rule.__qualname__,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "default": self.default,
            "triggers": list(self.triggers),
            "needs_project": self.needs_project,
            "module": self.module,
            "qualname": self.qualname,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RuleInfo":
        return cls(
            code=data["code"],
            name=data["name"],
            severity=data["severity"],
            default=data["default"],
            triggers=tuple(data["triggers"]),
            needs_project=bool(data["needs_project"]),
            module=data["module"],
            qualname=data["qualname"],
        )


class LazyRule:
    """A rule the engine can run, known from the metadata table: its module is imported,
    and its class instantiated, at the first ``check`` (a file that passed the prefilter)."""

    __slots__ = ("info", "code", "name", "severity", "default", "triggers", "needs_project", "_impl")

    def __init__(self, info: RuleInfo) -> None:
        self.info = info
        self.code = info.code
        self.name = info.name
        self.severity = info.severity
        self.default = info.default
        self.triggers = info.triggers
        self.needs_project = info.needs_project
        self._impl: Optional[Rule] = None

    def rule_class(self) -> type[Rule]:
        obj: Any = importlib.import_module(self.info.module)
        for part in self.info.qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def check(self, ctx: "RuleContext") -> None:
        impl = self._impl
        if impl is None:
            impl = self._impl = self.rule_class()()
        impl.check(ctx)

    def __repr__(self) -> str:
        return f"<LazyRule {self.code} {self.name}>"


def sources_hash() -> Optional[str]:
    """A hash of this package's sources (names and contents), or None when unreadable."""
    folder = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.blake2b(digest_size=16)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
        for name in names:
            with open(os.path.join(folder, name), "rb") as fh:
                data = fh.read()
            h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    except OSError:
        return None
    return h.hexdigest()


def metadata_table() -> dict[str, Any]:
    """The table as ``scripts/gen_rule_metadata.py`` writes it (imports every rule)."""
    return {
        "version": TABLE_VERSION,
        "sources_hash": sources_hash(),
        "rules": [RuleInfo.of(r).to_json() for r in _ALL_RULES()],
    }


@lru_cache(maxsize=1)
def _table() -> Optional[tuple[RuleInfo, ...]]:
    """The generated table, or None when it is missing, malformed or stale."""
    try:
        with open(TABLE_PATH, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("version") != TABLE_VERSION:
            return None
        current = sources_hash()
        if current is None or data.get("sources_hash") != current:
            return None
        return tuple(RuleInfo.from_json(r) for r in data["rules"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _classes_in_use() -> Optional[tuple[type[Rule], ...]]:
    """The classes, when using them costs nothing more (already imported) or when
    ``all_rules`` was replaced (tests register extra rules that way)."""
    fn = globals()["all_rules"]
    if fn is not _ALL_RULES or _ALL_RULES.cache_info().currsize:
        return tuple(fn())
    return None


_infos_of_classes: dict[tuple, tuple[RuleInfo, ...]] = {}


def rule_infos() -> tuple[RuleInfo, ...]:
    """Every rule's metadata, in code order; imports no rule module when the table is fresh."""
    classes = _classes_in_use()
    if classes is None:
        table = _table()
        if table is not None:
            return table
        classes = tuple(_ALL_RULES())
    key = tuple((c, c.code, c.name, c.severity, c.default, tuple(c.triggers), c.needs_project) for c in classes)
    infos = _infos_of_classes.get(key)
    if infos is None:
        infos = _infos_of_classes[key] = tuple(RuleInfo.of(c) for c in classes)
    return infos


def rule_info(key: str) -> Optional[RuleInfo]:
    """A rule's metadata by code or name."""
    key_upper, key_lower = key.upper(), key.lower()
    for r in rule_infos():
        if r.code == key_upper or r.name == key_lower:
            return r
    return None


def runtime_rules(codes: Optional[frozenset[str]] = None) -> list[Any]:
    """Rule objects for the engine (``codes``: only these), in code order: instances of the
    classes when they are in use, else ``LazyRule``s from the table."""
    classes = _classes_in_use()
    if classes is None and _table() is None:
        classes = tuple(_ALL_RULES())
    if classes is not None:
        return [c() for c in classes if codes is None or c.code in codes]
    return [LazyRule(i) for i in _table() or () if codes is None or i.code in codes]


def rules_signature() -> str:
    """Which rule implementations a run uses (for the cache key): module and class per code."""
    return "|".join(f"{i.code}:{i.module}.{i.qualname}" for i in rule_infos())
