"""Start the real language server with two extra rules, for tests that need what no
production rule offers yet or what must stay silent in an editor:

- TGL901 ``test-rename`` (fixable, safe): reports every name ``old_name`` and renames it to
  ``new_name``; used to test quick fixes, including positions after non-BMP characters.
- TGL902 ``test-project-wide`` (needs_project): reports every module; the editor (single-file
  mode) must never show it.

Run as ``python tests/data/lsp_server_with_test_rules.py``.
"""

from __future__ import annotations

import libcst as cst

import tfgradlint.rules as registry
from tfgradlint.context import FixSpec
from tfgradlint.rules.base import Rule


class _Rename(Rule):
    code = "TGL901"
    name = "test-rename"
    severity = "warning"
    triggers = ("old_name",)
    summary = "Test rule: `old_name` is renamed to `new_name`."
    what = "Reports `old_name` (a test rule)."
    fix_safety = "The fix is safe."

    def check(self, ctx) -> None:
        class Visitor(cst.CSTVisitor):
            def visit_Name(self, node: cst.Name) -> None:
                if node.value == "old_name":
                    ctx.report(
                        node,
                        "'old_name' is the old name; use 'new_name'",
                        fix=FixSpec("safe", "rename 'old_name' to 'new_name'", [(node, "new_name")]),
                    )

        ctx.module.visit(Visitor())


class _ProjectWide(Rule):
    code = "TGL902"
    name = "test-project-wide"
    triggers = ("old_name",)
    needs_project = True
    summary = "Test rule that needs the whole project."

    def check(self, ctx) -> None:
        ctx.report(ctx.module.body[0], "project-wide finding")


_original = registry.all_rules


def _all_rules():
    return tuple(_original()) + (_Rename, _ProjectWide)


registry.all_rules = _all_rules

if __name__ == "__main__":
    from tfgradlint.lsp import serve

    serve()
