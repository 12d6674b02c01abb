"""``# noqa`` comments: per line, and ``# tfgradlint: noqa`` for a whole file.

- ``# noqa`` (bare) on a finding's first line suppresses every finding starting there.
- ``# noqa: TGL101, TGL203`` suppresses those codes (a prefix such as ``TGL1`` works too).
- ``# tfgradlint: noqa`` / ``# tfgradlint: noqa: TGL1`` in the file's first comment block
  suppresses for the whole file.
Codes of other tools in the same comment (``# noqa: E501, TGL101``) are left alone.
"""

from __future__ import annotations

import bisect
import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Optional

_NOQA = re.compile(
    r"#\s*(?P<file>tfgradlint:\s*)?noqa(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*))?",
    re.IGNORECASE,
)


@dataclass
class Directive:
    line: int
    column: int  # 1-based column of the '#'
    end_column: int
    codes: Optional[tuple[str, ...]]  # None = bare noqa (everything)
    file_level: bool
    used: set[str] = field(default_factory=set)

    def matches(self, code: str) -> bool:
        if self.codes is None:
            return True
        return any(code.startswith(c) for c in self.codes)


@dataclass
class Suppressions:
    by_line: dict[int, list[Directive]] = field(default_factory=dict)
    file_level: list[Directive] = field(default_factory=list)

    def suppresses(self, code: str, line: int) -> bool:
        """True (and marks the directive used) when ``code`` at ``line`` is suppressed."""
        hit = False
        for d in self.file_level + self.by_line.get(line, []):
            if d.matches(code):
                d.used.add(code)
                hit = True
        return hit

    def unused(self) -> list[tuple[Directive, list[str]]]:
        """Directives (or codes in them) that suppressed nothing; TGL codes only."""
        out = []
        for d in self.file_level + [d for ds in self.by_line.values() for d in ds]:
            if d.codes is None:
                continue  # a bare noqa may serve other linters
            unused = [c for c in d.codes if c.startswith("TGL") and not any(u.startswith(c) for u in d.used)]
            if unused:
                out.append((d, unused))
        return sorted(out, key=lambda item: (item[0].line, item[0].column))


# Whitespace and comments before the first token of code (a backslash is code here).
_LEADING = re.compile(r"(?:[ \t\r\n]+|#[^\r\n]*)*")
_NOQA_WORD = re.compile("noqa", re.IGNORECASE)


def _noqa_comments(source: str) -> Optional[list[tuple[int, int, str, bool]]]:
    """``_comments`` restricted to the comments that mention noqa, from the comment spans
    the slicing layout found (tfgradlint/slicing.py: its tokenizer sees the same comments
    as ``tokenize`` in a module that compiles) instead of tokenizing the whole file. None
    when the layout is not at hand (the caller tokenizes)."""
    from tfgradlint.slicing import analysed_if_known

    lay = analysed_if_known(source)
    if lay is None:
        return None
    first_code = _LEADING.match(source).end()
    if source.startswith("\\", first_code):
        return None  # a line continuation before any code: leave it to tokenize
    starts, ends = lay.noncode_starts, lay.noncode_ends
    out = []
    last = -1
    line, pos = 1, 0  # the line of offset ``pos``
    for m in _NOQA_WORD.finditer(source):
        i = bisect.bisect_right(starts, m.start()) - 1
        if i <= last or i < 0:
            continue
        a, b = starts[i], ends[i]
        if m.end() > b or source[a] != "#":
            continue  # in code or in a string
        last = i
        line += source.count("\n", pos, a)
        pos = a
        col = a - (source.rfind("\n", 0, a) + 1)
        out.append((line, col, source[a:b], a < first_code))
    return out


def _comments(source: str) -> list[tuple[int, int, str, bool]]:
    """(line, col0, text, in_leading_block) for each comment."""
    out = []
    leading = True
    try:
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        for tok in tokens:
            if tok.type == tokenize.COMMENT:
                out.append((tok.start[0], tok.start[1], tok.string, leading))
            elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
                leading = False
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # Fall back to a line scan; a '#' inside a string may be misread, which only
        # matters for a file that LibCST parsed but tokenize did not.
        for i, line in enumerate(source.splitlines(), 1):
            pos = line.find("#")
            if pos >= 0:
                out.append((i, pos, line[pos:], False))
    return out


def parse_suppressions(source: str) -> Suppressions:
    sup = Suppressions()
    if "noqa" not in source.lower():
        return sup
    comments = _noqa_comments(source)
    if comments is None:
        comments = _comments(source)
    for line, col, text, leading in comments:
        for m in _NOQA.finditer(text):
            codes = None
            if m.group("codes"):
                codes = tuple(c.upper() for c in re.split(r"[\s,]+", m.group("codes")) if c)
            is_file = bool(m.group("file"))
            d = Directive(line, col + m.start() + 1, col + m.end() + 1, codes, is_file)
            if is_file:
                if leading:
                    sup.file_level.append(d)
            else:
                sup.by_line.setdefault(line, []).append(d)
    return sup
