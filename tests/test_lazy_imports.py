"""Lazy imports: LibCST and the rule modules only when a file passes the prefilter; never
TensorFlow. The metadata table they are selected from matches the rule classes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED3 = ROOT / "fixtures" / "seed" / "example3_weight_constraint.py"

PROBE = textwrap.dedent(
    """
    import json, sys
    from tfgradlint.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    mods = sorted(m for m in sys.modules if m == "libcst" or m.startswith(("libcst.", "tensorflow", "keras", "tfgradlint.rules.")))
    print("MODULES=" + json.dumps({"exit": code, "modules": mods}), file=sys.stderr)
    """
)


def _modules(*args, cwd: Path) -> tuple[int, list[str]]:
    """Run the command in a fresh interpreter; the modules it imported."""
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [x for x in r.stderr.splitlines() if x.startswith("MODULES=")]
    assert line, r.stderr
    data = json.loads(line[-1][len("MODULES="):])
    return data["exit"], data["modules"]


def _libcst(mods: list[str]) -> bool:
    return any(m == "libcst" or m.startswith("libcst.") for m in mods)


def _rule_modules(mods: list[str]) -> list[str]:
    return [m for m in mods if m.startswith("tfgradlint.rules.") and m != "tfgradlint.rules.base"]


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "plain.py").write_text("import numpy as np\n\n\ndef f(x):\n    return np.sum(x)  # noqa: E501\n")
    (tmp_path / "other.py").write_text("import tensorflow as tf\n\nx = tf.constant(1.0)\n")
    return tmp_path


def test_files_without_triggers_do_not_import_libcst(tree):
    code, mods = _modules("check", "--no-cache", ".", cwd=tree)
    assert code == 0
    assert not _libcst(mods), mods
    assert not [m for m in mods if m.startswith(("tensorflow", "keras"))]
    assert not _rule_modules(mods), mods


def test_selection_and_preview_do_not_import_rules(tree):
    code, mods = _modules("check", "--no-cache", "--select", "TGL1,tape-reused", "--ignore", "TGL101",
                          "--preview", "--extend-select", "TGL4", ".", cwd=tree)
    assert code == 0
    assert not _libcst(mods) and not _rule_modules(mods), mods


def test_warm_run_does_not_import_libcst(tree):
    shutil.copy(SEED3, tree / "train.py")
    code, mods = _modules("check", ".", cwd=tree)  # cold: parses train.py
    assert code == 1 and _libcst(mods)
    assert not [m for m in mods if m.startswith(("tensorflow", "keras"))]
    code, mods = _modules("check", ".", cwd=tree)  # warm: findings from the cache
    assert code == 1
    assert not _libcst(mods), mods
    # one file alone (pre-commit): its own results (project-wide rules are silent alone)
    code, mods = _modules("check", "--output-format", "full", "train.py", cwd=tree)
    assert code == 1 and _libcst(mods)
    code, mods = _modules("check", "--output-format", "full", "train.py", cwd=tree)
    assert code == 1 and not _libcst(mods), mods


def test_importtime_of_a_warm_run(tree):
    """The same, as ``python -X importtime`` sees it."""
    shutil.copy(SEED3, tree / "train.py")
    cmd = [sys.executable, "-X", "importtime", "-m", "tfgradlint", "check", "train.py"]
    subprocess.run(cmd, cwd=tree, capture_output=True, timeout=300)
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    imported = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")]
    assert imported and "tfgradlint.cli" in imported
    assert not [m for m in imported if m == "libcst" or m.startswith(("libcst.", "tensorflow"))]


def test_a_triggered_file_imports_only_what_it_needs(tree):
    (tree / "tapes.py").write_text(
        "import tensorflow as tf\n\n\ndef step(x):\n    with tf.GradientTape() as t:\n        y = x * x\n"
        "    return t.gradient(y, x)\n"
    )
    code, mods = _modules("check", "--no-cache", "tapes.py", cwd=tree)
    assert code == 0 and _libcst(mods)
    assert not [m for m in mods if m.startswith(("tensorflow", "keras"))]


# -- the metadata table -------------------------------------------------------------------------


def test_metadata_table_is_up_to_date():
    from tfgradlint.rules import TABLE_PATH, metadata_table

    with open(TABLE_PATH, encoding="utf-8") as fh:
        stored = json.load(fh)
    assert stored == json.loads(json.dumps(metadata_table())), (
        "tfgradlint/data/rules.json is stale: run `python scripts/gen_rule_metadata.py`"
    )


def test_metadata_matches_the_classes():
    from tfgradlint.rules import RuleInfo, _table, all_rules

    table = _table()
    assert table is not None, "the table is stale: run `python scripts/gen_rule_metadata.py`"
    assert list(table) == [RuleInfo.of(c) for c in all_rules()]


def test_selection_is_the_same_from_the_table_and_the_classes(monkeypatch):
    import tfgradlint.rules as rules_pkg
    from tfgradlint.config import select_rules

    cases = [
        (None, (), (), False),
        (None, (), (), True),
        (("ALL",), (), (), False),
        (("ALL",), (), (), True),
        (("TGL1",), ("TGL3",), ("TGL101",), False),
        (("tape-used-twice", "TGL2"), (), (), False),
        (None, ("TGL003",), ("TGL2",), True),
    ]
    from_classes = [select_rules(*c) for c in cases]
    monkeypatch.setattr(rules_pkg, "_classes_in_use", lambda: None)
    assert rules_pkg._table() is not None
    assert [select_rules(*c) for c in cases] == from_classes


def test_stale_table_falls_back_to_the_classes(monkeypatch, tmp_path):
    import tfgradlint.rules as rules_pkg

    stale = tmp_path / "rules.json"
    data = json.loads(Path(rules_pkg.TABLE_PATH).read_text())
    data["sources_hash"] = "0" * 32
    data["rules"] = data["rules"][:3]
    stale.write_text(json.dumps(data))
    monkeypatch.setattr(rules_pkg, "TABLE_PATH", str(stale))
    rules_pkg._table.cache_clear()
    try:
        assert rules_pkg._table() is None
        monkeypatch.setattr(rules_pkg, "_classes_in_use", lambda: None)
        assert [i.code for i in rules_pkg.rule_infos()] == [c.code for c in rules_pkg.all_rules()]
        assert len(rules_pkg.runtime_rules()) == len(rules_pkg.all_rules())
    finally:
        rules_pkg._table.cache_clear()


def test_lazy_rule_imports_its_module_on_first_check():
    from tfgradlint.engine import lint_source
    from tfgradlint.rules import LazyRule, _table, all_rules

    table = _table()
    assert table is not None
    lazy = [LazyRule(i) for i in table if i.default == "on"]
    real = [c() for c in all_rules() if c.default == "on"]
    text = SEED3.read_text()
    got = lint_source(text, "t.py", lazy, enabled=frozenset(r.code for r in lazy))
    want = lint_source(text, "t.py", real, enabled=frozenset(r.code for r in real))
    assert [f.to_json() for f in got.findings] == [f.to_json() for f in want.findings]
    assert got.findings and all(r.rule_class() is type(x) for r, x in zip(lazy, real))


def test_runtime_rules_use_replaced_classes(monkeypatch):
    """Tests register extra rules by replacing all_rules: they are run, not the table's."""
    import tfgradlint.rules as rules_pkg
    from tfgradlint.rules import Rule

    class Extra(Rule):
        code = "TGL999"
        name = "extra"

        def check(self, ctx):
            return None

    real = rules_pkg.all_rules()
    monkeypatch.setattr(rules_pkg, "all_rules", lambda: real + (Extra,))
    assert "TGL999" in [r.code for r in rules_pkg.runtime_rules()]
    assert rules_pkg.rule_info("extra").code == "TGL999"
    assert rules_pkg.rules_signature().endswith("TGL999:" + Extra.__module__ + "." + Extra.__qualname__)


def test_meta_findings_from_metadata():
    from tfgradlint.engine import meta_finding

    f = meta_finding("TGL002", "cannot read: x", "a.py")
    assert (f.code, f.name, f.severity) == ("TGL002", "unreadable-file", "error")
