"""Output formats. Each module has ``write(findings, out, ctx)``; nothing else prints findings."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Optional, TextIO

from tfgradlint.findings import Finding

# format name -> module in this package
FORMATS = {
    "concise": "text",
    "full": "text",
    "json": "json_format",
    "json-lines": "json_format",
    "sarif": "sarif",
    "github": "github",
    "junit": "junit",
    "pylint": "pylint",
}


@dataclass
class ReportContext:
    format: str
    # file name -> its text, for code frames (read lazily when missing)
    sources: dict[str, str] = field(default_factory=dict)
    statistics: bool = False
    quiet: bool = False
    files_checked: int = 0
    fixed: int = 0
    unsafe_fixes_hidden: int = 0
    unsafe_fixes: bool = False  # --unsafe-fixes: unsafe fixes are offered ([*]) too
    show_fixes: bool = False
    fixed_findings: list[Finding] = field(default_factory=list)
    color: bool = False

    def source_lines(self, filename: str) -> Optional[list[str]]:
        if filename not in self.sources:
            try:
                with open(filename, encoding="utf-8", errors="replace") as fh:
                    self.sources[filename] = fh.read()
            except OSError:
                return None
        return self.sources[filename].splitlines()


def writer(fmt: str) -> Callable[[list[Finding], TextIO, ReportContext], None]:
    module = importlib.import_module(f"{__name__}.{FORMATS[fmt]}")
    return module.write
