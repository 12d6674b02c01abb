"""Parsing only the statements that matter (tfgradlint/slicing.py) changes no finding.

Every check lints the same text twice, whole (``slicing=False``: the reference) and sliced,
with every rule on, and compares code, position, end, message and fix edits. The corpus
comparison (TensorFlow, Keras, TFP, benchmarks/corpus) is scripts/compare_slicing.py.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Optional

import pytest

from tfgradlint import slicing
from tfgradlint.config import select_rules
from tfgradlint.engine import lint_source
from tfgradlint.project import summarize
from tfgradlint.rules import all_rules

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CODES = select_rules(("ALL",), (), (), True)
RULES = [cls() for cls in all_rules() if cls.code in CODES]


def _data(result) -> tuple:
    return [f.identity() for f in result.findings], result.errors


def _both(text: str, filename: str = "example.py", project: bool = True, extra=()) -> tuple:
    whole = _data(lint_source(text, filename, RULES, enabled=CODES, whole_project=project,
                              extra_triggers=extra, slicing=False))
    sliced = _data(lint_source(text, filename, RULES, enabled=CODES, whole_project=project,
                               extra_triggers=extra, slicing=True))
    return whole, sliced


FIXTURE_FILES = sorted(FIXTURES.rglob("*.py"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_findings_identical(path):
    text = path.read_text(encoding="utf-8")
    whole, sliced = _both(text, str(path))
    assert sliced == whole


def _examples():
    for cls in all_rules():
        for i, ex in enumerate(list(cls.valid) + list(cls.invalid)):
            yield f"{cls.code}-{i}", ex.code
        for name in ("example", "instead"):
            text = getattr(cls, name, None)
            if text:
                yield f"{cls.code}-{name}", text


EXAMPLES = list(_examples())


@pytest.mark.parametrize("text", [t for _, t in EXAMPLES], ids=[k for k, _ in EXAMPLES])
def test_rule_examples_identical(text):
    for project in (True, False):
        whole, sliced = _both(text, project=project)
        assert sliced == whole


# -- fixtures mixed with code that should not matter (or does, through its names) ------------


def _distractors(names: list[str], rng: random.Random) -> list[str]:
    """Top-level statements that reuse ``names``: rebindings, references from elsewhere,
    strings and comments naming the triggers, global declarations, module-level loops."""
    out = [
        "def _unrelated(a, b=1):\n    c = [a for a in range(b)]\n    return a + b\n",
        "class _Plain(object):\n    '''tf.custom_gradient and tf.GradientTape in a docstring'''\n\n"
        "    def method(self, x):\n        return x  # GradientTape\n",
        "_TEXT = 'custom_gradient GradientTape recompute_grad RegisterGradient'\n",
        "# tf.custom_gradient, tf.GradientTape(), gradient_override_map\n_N = 3\n",
        "if __name__ == '__main__':\n    print('main')\n",
        "x = (1 +\n     2)  # a continuation\ny = x; z = [\n  'a',\n]\n",
        "@staticmethod\n# a comment between\ndef _decorated(a):\n    return a\n",
        "try:\n    import numpy as _np\nexcept ImportError:  # pragma: no cover\n    _np = None\n"
        "else:\n    pass\nfinally:\n    pass\n",
        "s = f'{1 + 2} custom_gradient {\"q\"}'\n",
        "t = '''\ndef not_code():\n    pass\n'''\n",
    ]
    for name in rng.sample(names, min(len(names), 6)):
        out += [
            f"def _user_of_{name}(v):\n    return {name}(v)\n",
            f"{name}_alias = {name}\n",
            f"class _Caller_{name}(object):\n    def call(self, v):\n        return self.{name}(v)\n",
            f"def _set_{name}():\n    global {name}\n    {name} = None\n",
            f"for {name} in range(2):\n    pass\n",
            f"_values = [{name} for {name} in range(2)]\n",
            f"{name} = {name}\n",
            f"if __name__ == '__main__':\n    {name}(1)\n",
            f"_doc = '{name}'\n",
            f"def _getattr_{name}(o):\n    return getattr(o, '{name}')\n",
        ]
    return out


def _top_level_chunks(text: str) -> list[str]:
    lay = slicing.layout(text)
    if lay is None or not lay.statements:
        return [text]
    starts = [st.start for st in lay.statements] + [len(text)]
    head = text[: starts[0]]
    chunks = [text[a:b] for a, b in zip(starts, starts[1:])]
    if head:
        chunks[0] = head + chunks[0]
    return [c if c.endswith("\n") else c + "\n" for c in chunks]


MIXED = [p for p in FIXTURE_FILES if p.parent.name in ("rules", "seed", "project")]


@pytest.mark.parametrize("path", MIXED, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixtures_mixed_with_distractors_identical(path):
    text = path.read_text(encoding="utf-8")
    names = sorted(set(re.findall(r"^(?:def|class)\s+(\w+)|^(\w+)\s*=", text, re.M)) - {("", "")})
    names = sorted({a or b for a, b in names})
    if not names:
        names = ["f"]
    rng = random.Random(path.name)
    chunks = _top_level_chunks(text)
    for variant in range(4):
        extra = _distractors(names, rng)
        rng.shuffle(extra)
        pieces = list(chunks)
        for d in extra[: 4 + 3 * variant]:
            pieces.insert(rng.randrange(len(pieces) + 1), d)
        if variant == 3:
            pieces = [p.replace("\n", "\r\n") for p in pieces]
        mixed = "".join(pieces)
        compile(mixed, str(path), "exec")  # still a valid module
        whole, sliced = _both(mixed, str(path))
        assert sliced == whole, f"variant {variant}:\n{mixed}"


def _method_distractors(indent: str, methods: list[str], attrs: list[str], rng: random.Random) -> list[str]:
    """Class-body statements that reuse a class's method and attribute names."""
    out = [
        "def _extra(self):\n    return 1\n",
        'def _documented(self):\n    """uses tf.custom_gradient and tf.GradientTape"""\n    return None\n',
        "@property\ndef _prop(self):\n    return self\n",
        "_class_attr = 3\n",
        "def _with_global(self):\n    global _G\n    _G = 1\n",
    ]
    for m in rng.sample(methods, min(len(methods), 3)):
        out += [
            f"def _calls_{m}(self, x):\n    return self.{m}(x)\n",
            f"def {m}(self, *args):\n    return None\n",
            f"{m}_alias = {m}\n",
            f"def _named_{m}(self):\n    return getattr(self, '{m}')\n",
        ]
    for a in rng.sample(attrs, min(len(attrs), 3)):
        out += [
            f"def _sets_{a}(self, v):\n    self.{a} = v\n",
            f"def _sets_{a}_pair(self, v):\n    self.{a}, self._other = v, v\n",
            f"def _uses_{a}(self):\n    return self.{a}\n",
        ]
    return ["".join(indent + line if line.strip() else line for line in d.splitlines(True)) for d in out]


def _with_class_distractors(text: str, rng: random.Random) -> Optional[str]:
    """``text`` with statements inserted into the bodies of its top-level classes."""
    lay = slicing.layout(text)
    if lay is None:
        return None
    inserts: list[tuple[int, str]] = []
    for st in lay.statements:
        if st.kind != "class":
            continue
        units = slicing.class_units(text, lay, st)
        if not units:
            continue
        line = text[units[0].start :]
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        body = text[units[0].start : units[-1].end]
        methods = sorted({u.name for u in units if u.kind == "def" and u.name})
        attrs = sorted(set(re.findall(r"self\.(\w+)", body)))
        extra = _method_distractors(indent, methods or ["call"], attrs or ["w"], rng)
        rng.shuffle(extra)
        points = [u.start for u in units] + [units[-1].end]
        for d in extra[: rng.randint(2, 7)]:
            inserts.append((rng.choice(points), d))
    if not inserts:
        return None
    out = text
    for at, d in sorted(inserts, key=lambda x: -x[0]):
        if at > 0 and out[at - 1] != "\n":
            d = "\n" + d
        out = out[:at] + d + out[at:]
    return out


@pytest.mark.parametrize("path", MIXED, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_classes_mixed_with_methods_identical(path):
    text = path.read_text(encoding="utf-8")
    rng = random.Random("classes-" + path.name)
    for variant in range(6):
        mixed = _with_class_distractors(text, rng)
        if mixed is None:
            return
        compile(mixed, str(path), "exec")  # still a valid module
        whole, sliced = _both(mixed, str(path))
        assert sliced == whole, f"variant {variant}:\n{mixed}"


# -- the project summaries ---------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_summaries_identical(path):
    text = path.read_text(encoding="utf-8")
    whole = summarize(text, str(path), slicing=False)
    sliced = summarize(text, str(path), slicing=True)
    assert (sliced and sliced.to_dict()) == (whole and whole.to_dict())


def test_summary_with_distractors_identical():
    text = (
        "import tensorflow as tf\nfrom tensorflow import custom_gradient as cg\n"
        "def helper(x):\n    import os\n    return x\n"
        "@cg\ndef f(x):\n    return x, lambda dy: dy\n"
        "def g(x, y=1):\n    return x\n"
        "h = tf.custom_gradient(g)\n"
        "class K:\n    from os import path\n"
        "class L:\n    pass\n"
        "tf.RegisterGradient('A')(helper)\n"
        "__all__ = ['f', 'h']\n"
    )
    whole = summarize(text, "m.py", slicing=False)
    sliced = summarize(text, "m.py", slicing=True)
    assert whole is not None and sliced.to_dict() == whole.to_dict()


@pytest.mark.parametrize("path", sorted((FIXTURES / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_findings_identical(path, monkeypatch):
    from tfgradlint import engine
    from tfgradlint.notebook import lint_notebook

    text = path.read_text(encoding="utf-8")
    out = []
    for sliced in (False, True):
        monkeypatch.setattr(engine, "SLICING", sliced)
        result = lint_notebook(text, str(path), RULES, enabled=CODES, whole_project=True, sources={})
        out.append(_data(result))
    assert out[1] == out[0]


# -- lint work done ahead of the project index (engine.lint_ahead) ---------------------------


@pytest.fixture(autouse=True)
def _no_work_ahead_left_behind(monkeypatch):
    """Each test here has its own store of work done ahead: what one leaves in it must not be
    taken by a lint of the same text in another test (which would then not parse)."""
    from tfgradlint import engine

    monkeypatch.setattr(engine, "_AHEAD", {})
    monkeypatch.setattr(engine, "_AHEAD_CHARS", [0])


@pytest.mark.parametrize("path", MIXED, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_lint_ahead_changes_nothing_and_is_used_once(path, monkeypatch):
    from tfgradlint import engine, parsing

    text = path.read_text(encoding="utf-8")
    fresh = _data(lint_source(text, str(path), RULES, enabled=CODES, whole_project=True))
    left = engine.lint_ahead(text, RULES, CODES)
    parses = []
    real_parse = parsing.parse_module
    monkeypatch.setattr(parsing, "parse_module", lambda code: parses.append(code) or real_parse(code))
    assert _data(lint_source(text, str(path), RULES, enabled=CODES, whole_project=True)) == fresh
    if left == "rules":
        assert parses == []  # the tree built ahead was used
        assert text not in engine._AHEAD  # and forgotten
        # a second lint parses again, with the same findings
        assert _data(lint_source(text, str(path), RULES, enabled=CODES, whole_project=True)) == fresh
        assert parses


def test_lint_ahead_is_not_used_when_the_project_adds_triggers(monkeypatch):
    """Extra trigger words (names the project index knows) change the plan: the work done
    ahead, planned without them, is dropped."""
    from tfgradlint import engine

    text = (
        "import tensorflow as tf\nfrom pkg.ops import scaled\n\n\n"
        "def unrelated(x):\n    return scaled(x)\n\n\n"
        "def train(w):\n    with tf.GradientTape() as tape:\n        y = w * 2\n"
        "    return tape.gradient(y, w)\n"
    )
    fresh = _data(lint_source(text, "t.py", RULES, enabled=CODES, whole_project=True, extra_triggers=["scaled"]))
    used = []
    real = engine._lint_plan
    monkeypatch.setattr(engine, "_lint_plan", lambda env, plan, active, result, ahead=None: (
        used.append(ahead), real(env, plan, active, result, ahead))[1])
    assert engine.lint_ahead(text, RULES, CODES) == "rules"
    again = _data(lint_source(text, "t.py", RULES, enabled=CODES, whole_project=True, extra_triggers=["scaled"]))
    assert again == fresh and used == [None]
    assert text not in engine._AHEAD
    # without extra triggers, the same text takes the work done ahead
    assert engine.lint_ahead(text, RULES, CODES) == "rules"
    lint_source(text, "t.py", RULES, enabled=CODES, whole_project=True)
    assert used[-1] is not None


def test_lint_ahead_holds_a_bounded_amount(monkeypatch):
    from tfgradlint import engine

    monkeypatch.setattr(engine, "_AHEAD", {})
    monkeypatch.setattr(engine, "_AHEAD_CHARS", [0])
    texts = [
        f"import tensorflow as tf\n\n\ndef f{i}(w):\n    with tf.GradientTape() as tape:\n"
        f"        y = w * {i}\n    return tape.gradient(y, w)\n"
        for i in range(6)
    ]
    size = max(len(t) for t in texts)
    monkeypatch.setattr(engine, "AHEAD_MAX_CHARS", 3 * size)
    for t in texts:
        assert engine.lint_ahead(t, RULES, CODES) == "rules"
    assert 1 <= len(engine._AHEAD) <= 3
    assert engine._AHEAD_CHARS[0] == sum(a.chars for a in engine._AHEAD.values()) <= 3 * size
    assert list(engine._AHEAD) == texts[-len(engine._AHEAD):]  # the oldest went first


def test_what_lint_ahead_calls_nothing_lints_to_nothing():
    """The runner does not send a file for linting when its work ahead said "nothing" (and
    TGL003 is off or it has no noqa): its lint would find nothing."""
    from tfgradlint import engine

    codes = frozenset(c for c in CODES if c != "TGL003")
    texts = [p.read_text(encoding="utf-8") for p in FIXTURE_FILES] + [t for _, t in EXAMPLES]
    texts.append('"""with tf.GradientTape() as tape: ..."""\nimport tensorflow as tf\nx = 1  # noqa: TGL301\n')
    seen = 0
    for text in texts:
        if engine.lint_ahead(text, RULES, codes) == "nothing":
            seen += 1
            result = lint_source(text, "t.py", RULES, enabled=codes, whole_project=True)
            assert not result.findings and not result.errors, text
    assert seen >= 5
