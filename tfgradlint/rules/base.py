"""What a rule is: its identity, its documentation, its own examples, and ``check``.

A rule is a small class. ``check`` queries the module index (``ctx.index``) and calls
``ctx.report(node, message)``; the engine turns nodes into positions, applies suppressions
and formats the result. Each rule carries ``valid`` and ``invalid`` examples that the test
suite runs (tests/test_rule_examples.py), so a rule cannot drift from its documentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from tfgradlint.context import RuleContext


@dataclass(frozen=True)
class Valid:
    """Code on which the rule must report nothing."""

    code: str
    preview: bool = False


@dataclass(frozen=True)
class Invalid:
    """Code on which the rule must report exactly once per entry of ``lines``.

    ``line`` is the 1-based line of the anchor's start; ``lines`` for several findings.
    ``message_contains`` are substrings the message must contain.
    ``fixed`` is the expected source after applying this rule's fix (when it has one).
    """

    code: str
    line: int = 0
    lines: Sequence[int] = ()
    message_contains: Sequence[str] = ()
    fixed: Optional[str] = None
    project: bool = True

    def expected_lines(self) -> list[int]:
        return sorted(self.lines) if self.lines else [self.line]


class Rule:
    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    severity: ClassVar[str] = "error"  # "error" | "warning"
    default: ClassVar[str] = "on"  # "on" | "off" | "preview"
    # The rule runs only on files containing at least one of these strings.
    triggers: ClassVar[tuple[str, ...]] = ("custom_gradient",)
    # Needs the whole project (cross-file facts); silent when one file is linted alone.
    needs_project: ClassVar[bool] = False

    summary: ClassVar[str] = ""
    what: ClassVar[str] = ""
    why: ClassVar[str] = ""
    example: ClassVar[str] = ""
    instead: ClassVar[str] = ""
    fix_safety: ClassVar[str] = "This rule has no automatic fix."
    tensorflow_error: ClassVar[str] = ""

    valid: ClassVar[Sequence[Valid]] = ()
    invalid: ClassVar[Sequence[Invalid]] = ()

    def check(self, ctx: "RuleContext") -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        """The rule's documentation as Markdown (``tfgradlint rule`` prints it)."""
        parts = [f"# {cls.code} {cls.name}", ""]
        meta = f"Severity: {cls.severity}. "
        meta += {
            "on": "Enabled by default.",
            "off": "Off by default (enable with --select/--extend-select).",
            "preview": "Preview rule: off unless --preview (or selected by its code).",
        }[cls.default]
        if cls.needs_project:
            meta += " Needs the whole project: silent when a single file is linted."
        parts += [meta, ""]
        for title, text in (
            ("What it does", cls.what or cls.summary),
            ("Why is this bad?", cls.why),
            ("TensorFlow's own error", cls.tensorflow_error),
            ("Example", _code_block(cls.example)),
            ("Use instead", _code_block(cls.instead)),
            ("Fix safety", cls.fix_safety),
        ):
            if text:
                parts += [f"## {title}", "", text.strip(), ""]
        return "\n".join(parts).rstrip() + "\n"


def _code_block(code: str) -> str:
    code = code.strip("\n")
    if not code:
        return ""
    return "```python\n" + _dedent(code) + "\n```"


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip("\n")
