"""What a rule sees while it checks one module, and how it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import libcst as cst

if TYPE_CHECKING:  # pragma: no cover
    from tfgradlint.index import ModuleIndex
    from tfgradlint.project import ProjectIndex
    from tfgradlint.rules.base import Rule


@dataclass(frozen=True)
class FixSpec:
    """A fix as CST replacements; the engine turns it into text edits."""

    applicability: str  # "safe" | "unsafe"
    message: str
    replacements: Sequence[tuple[cst.CSTNode, Union[str, cst.CSTNode]]]


@dataclass
class Report:
    rule: "Rule"
    node: cst.CSTNode
    message: str
    end_node: Optional[cst.CSTNode] = None
    fix: Optional[FixSpec] = None
    subject: Optional[str] = None


@dataclass
class RuleContext:
    filename: str
    source: str
    module: cst.Module
    index: "ModuleIndex"
    # Cross-file facts of the run; ``whole_project`` is False when one file is linted
    # alone (an editor buffer, pre-commit with one file): project-wide rules stay silent.
    project: Optional["ProjectIndex"] = None
    whole_project: bool = False
    module_name: Optional[str] = None
    rule: Optional["Rule"] = None
    reports: list[Report] = field(default_factory=list)
    # Node -> CodeRange, computed per top-level statement (set by the engine; see ``position``).
    positions: Any = None

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        end_node: Optional[cst.CSTNode] = None,
        fix: Optional[FixSpec] = None,
        subject: Optional[str] = None,
    ) -> None:
        assert self.rule is not None
        self.reports.append(Report(self.rule, node, message, end_node, fix, subject))

    def code_for(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def position(self, node: cst.CSTNode):
        """The node's ``CodeRange`` (1-based lines, 0-based columns of the linted file), or
        None. Cheap: only the top-level statement around the node is measured."""
        if self.positions is None:
            from tfgradlint.engine import NodePositions

            self.positions = NodePositions(self.module, None, None)
        return self.positions.get(node)

    def reported(self, code: str) -> list[Report]:
        """Reports already made by rule ``code`` in this module (rules run in code order)."""
        return [r for r in self.reports if r.rule.code == code]
