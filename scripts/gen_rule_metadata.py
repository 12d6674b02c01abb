"""Write tfgradlint/data/rules.json: the rules' metadata, read without importing them.

    python scripts/gen_rule_metadata.py          # after adding or changing a rule
    python scripts/gen_rule_metadata.py --check  # exit 1 when the table is stale

Selecting rules, the prefilter and the tool's own findings read this table, so that a run
over files without trigger strings (or a warm run) never imports the rule modules or LibCST
(tfgradlint/rules/__init__.py). A stale table is never used: the rule classes are imported
instead, and tests/test_lazy_imports.py says to run this script.
"""

from __future__ import annotations

import json
import sys

from tfgradlint.rules import TABLE_PATH, metadata_table


def render() -> str:
    return json.dumps(metadata_table(), indent=1) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    try:
        with open(TABLE_PATH, encoding="utf-8") as fh:
            current = fh.read()
    except OSError:
        current = None
    if "--check" in argv:
        if current != text:
            print(f"{TABLE_PATH} is stale: run python scripts/gen_rule_metadata.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        with open(TABLE_PATH, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {TABLE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
