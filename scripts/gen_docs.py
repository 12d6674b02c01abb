"""Regenerate docs/rules/<CODE>.md and the rule table in README.md from the rules themselves.

    python scripts/gen_docs.py          # write
    python scripts/gen_docs.py --check  # exit 1 if anything is out of date (tests run this)
"""

from __future__ import annotations

import sys
from pathlib import Path

from tfgradlint.rules import all_rules

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- rules-table:begin -->", "<!-- rules-table:end -->"


def rule_table() -> str:
    rows = ["| Code | Name | Severity | Default | Fix | What it finds |", "|---|---|---|---|---|---|"]
    for r in all_rules():
        fix = "no" if r.fix_safety.startswith("This rule has no") or "no automatic fix" in r.fix_safety.lower() or "no fix" in r.fix_safety.lower() else "yes"
        summary = r.summary.replace("|", "\\|")
        rows.append(f"| [{r.code}](docs/rules/{r.code}.md) | `{r.name}` | {r.severity} | {r.default} | {fix} | {summary} |")
    return "\n".join(rows)


def expected_files() -> dict[Path, str]:
    out = {ROOT / "docs" / "rules" / f"{r.code}.md": r.documentation() for r in all_rules()}
    readme = (ROOT / "README.md").read_text()
    if BEGIN in readme and END in readme:
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        out[ROOT / "README.md"] = f"{head}{BEGIN}\n{rule_table()}\n{END}{tail}"
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in expected_files().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if check and stale:
        print("out of date (run python scripts/gen_docs.py):", *[str(p.relative_to(ROOT)) for p in stale], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
