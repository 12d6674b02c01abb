"""The rule registry: every ``Rule`` subclass with a code in this package's modules.

Adding a rule is adding a module here (one rule or one tight family per module); nothing
else needs to change.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from tfgradlint.rules.base import Invalid, Rule, Valid

__all__ = ["Invalid", "Rule", "Valid", "all_rules", "rule_by_code_or_name"]


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


def rule_by_code_or_name(key: str) -> type[Rule] | None:
    key_upper = key.upper()
    for r in all_rules():
        if r.code == key_upper or r.name == key.lower():
            return r
    return None
