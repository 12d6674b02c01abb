"""The data every stage passes on: findings, their positions, fixes and confirmations.

Lines and columns are 1-based everywhere outside LibCST (LibCST's columns are 0-based).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True, order=True)
class Position:
    row: int
    column: int

    def to_json(self) -> dict[str, int]:
        return {"row": self.row, "column": self.column}


@dataclass(frozen=True)
class Edit:
    """Replace the text between ``start`` and ``end`` (exclusive) with ``content``."""

    content: str
    start: Position
    end: Position

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "location": self.start.to_json(),
            "end_location": self.end.to_json(),
        }


@dataclass(frozen=True)
class Fix:
    applicability: str  # "safe" | "unsafe"
    message: str
    edits: tuple[Edit, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "applicability": self.applicability,
            "message": self.message,
            "edits": [e.to_json() for e in self.edits],
        }


@dataclass(frozen=True)
class Confirmation:
    status: str  # "confirmed" | "not-reproduced" | "inconclusive"
    evidence: str

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "evidence": self.evidence}


@dataclass
class Finding:
    code: str
    name: str
    severity: str  # "error" | "warning"
    message: str
    filename: str
    start: Position
    end: Position
    url: str = ""
    fix: Optional[Fix] = None
    cell: Optional[int] = None
    confirmation: Optional[Confirmation] = None
    # Which function the finding is about (for the runtime layer); not part of the JSON.
    subject: Optional[str] = field(default=None, compare=False)

    def message_with_confirmation(self) -> str:
        """The message, followed by the runtime confirmation when there is one."""
        if self.confirmation is None:
            return self.message
        return f"{self.message} [{self.confirmation.status}: {self.confirmation.evidence}]"

    def sort_key(self) -> tuple:
        return (self.filename, self.cell or 0, self.start, self.code)

    def identity(self) -> tuple:
        """What two ways of linting must agree on, as plain data: code, range, message, the
        fix's edits, subject (the identity checks of slicing and incremental parsing)."""
        fix = None
        if self.fix is not None:
            fix = (self.fix.applicability, self.fix.message, tuple(
                (e.content, e.start.row, e.start.column, e.end.row, e.end.column) for e in self.fix.edits
            ))
        return (self.code, self.start.row, self.start.column, self.end.row, self.end.column, self.message, fix,
                self.subject)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "filename": self.filename,
            "cell": self.cell,
            "location": self.start.to_json(),
            "end_location": self.end.to_json(),
            "fix": self.fix.to_json() if self.fix else None,
            "url": self.url,
            "confirmation": self.confirmation.to_json() if self.confirmation else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Finding":
        fix = data.get("fix")
        conf = data.get("confirmation")
        return cls(
            code=data["code"],
            name=data["name"],
            severity=data["severity"],
            message=data["message"],
            filename=data["filename"],
            start=Position(**data["location"]),
            end=Position(**data["end_location"]),
            url=data.get("url", ""),
            fix=Fix(
                fix["applicability"],
                fix["message"],
                tuple(
                    Edit(e["content"], Position(**e["location"]), Position(**e["end_location"]))
                    for e in fix["edits"]
                ),
            )
            if fix
            else None,
            cell=data.get("cell"),
            confirmation=Confirmation(**conf) if conf else None,
            subject=data.get("subject"),
        )
