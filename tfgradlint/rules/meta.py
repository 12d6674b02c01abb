"""TGL0xx: the tool's own diagnostics. The engine emits these; they have no ``check``."""

from __future__ import annotations

from tfgradlint.rules.base import Invalid, Rule, Valid


class InvalidSyntax(Rule):
    code = "TGL001"
    name = "invalid-syntax"
    triggers = ()
    summary = "The file does not parse."
    what = (
        "Reports a file that LibCST cannot parse, with the parser's line and reason. "
        "The other files of the run are still linted. Only files that tfgradlint has to "
        "analyse are parsed: a file that mentions none of the rules' trigger strings "
        "(`custom_gradient`, `GradientTape`, `RegisterGradient`, `gradient_override_map`, "
        "`recompute_grad`, ...) cannot hold a gradient bug and is skipped unparsed, so its "
        "syntax errors are left to Python and to general linters. The same holds for a file "
        "whose trigger strings are all in docstrings, comments or code that cannot reach "
        "TensorFlow: nothing in it is analysed, so it is not compiled either; and in a file "
        "with something to analyse, for the top-level statements and methods that cannot "
        "matter to any rule: only the code tfgradlint reads is compiled."
    )
    why = "A file that does not parse cannot be checked; it would also fail at import."
    example = "def f(:\n    pass\n"

    def check(self, ctx) -> None:
        return None


class UnreadableFile(Rule):
    code = "TGL002"
    name = "unreadable-file"
    triggers = ()
    summary = "The file cannot be read or decoded."
    what = (
        "Reports a file that cannot be read (permissions), decoded (bad encoding), that holds "
        "NUL bytes, that is too large, or a notebook whose JSON is broken."
    )
    why = "Nothing in the file can be checked."

    def check(self, ctx) -> None:
        return None


class UnusedSuppression(Rule):
    code = "TGL003"
    name = "unused-suppression"
    severity = "warning"
    default = "off"
    triggers = ()
    summary = "A `# noqa: TGLxxx` suppresses nothing."
    what = "Reports a `# noqa` code (or a file-level `# tfgradlint: noqa` code) that matched no finding."
    why = "Stale suppressions hide the next real finding on that line."
    example = "x = 1  # noqa: TGL101\n"
    instead = "x = 1\n"
    valid = (Valid("x = 1  # noqa: E501\n"),)
    invalid = (Invalid("x = 1  # noqa: TGL101\n", line=1, message_contains=("TGL101",)),)

    def check(self, ctx) -> None:
        return None
