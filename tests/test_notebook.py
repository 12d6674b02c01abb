"""Jupyter notebooks: code cells linted as one module, IPython syntax neutralised, findings
reported per cell (``cell`` = 1-based index among code cells, line and column in the cell)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfgradlint.notebook import neutralise, parse_notebook, split_lines
from tfgradlint.runner import RunOptions, run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "fixtures" / "notebooks"

CG = """import tensorflow as tf

@tf.custom_gradient
def weight_constraint(w):
    def grad(dy):
        return tf.clip_by_norm(dy, 1.0)
    return w, grad
"""


def _notebook(*cells, language="python", nbformat=4) -> str:
    """cells: source strings (code) or ("markdown", text)."""
    items = []
    for cell in cells:
        kind, src = cell if isinstance(cell, tuple) else ("code", cell)
        items.append({"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True)})
        if kind == "code":
            items[-1].update(outputs=[], execution_count=None)
    meta = {"language_info": {"name": language}}
    if nbformat == 3:
        for item in items:
            item["input"] = item.pop("source")
        return json.dumps({"worksheets": [{"cells": items}], "metadata": meta, "nbformat": 3})
    return json.dumps({"cells": items, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}, indent=1)


def _lint(tmp_path: Path, text: str, *, name="nb.ipynb", select=None):
    from tfgradlint.config import Overrides

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run(RunOptions(paths=[path], overrides=Overrides(select=select)))
    assert not result.errors, result.errors
    return result


def _where(result):
    return [(f.code, f.cell, f.start.row, f.start.column) for f in result.findings]


# -- neutralising IPython syntax --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%matplotlib inline\nimport tensorflow as tf\n", "pass\nimport tensorflow as tf\n"),
        ("!pip install -q tensorflow\n", "pass\n"),
        ("!!ls\n", "pass\n"),
        ("x = !ls *.py\n", "x = None\n"),
        ("a, b = %sx ls\n", "a, b = None\n"),
        ("tf.custom_gradient?\n", "pass\n"),
        ("?tf.GradientTape\n", "pass\n"),
        ("tf.GradientTape??\n", "pass\n"),
        ("/print 1\n,f a b\n;f a\n", "pass\npass\npass\n"),
        ("for i in range(3):\n    !echo $i\n", "for i in range(3):\n    pass\n"),
        ("!pip install \\\n   tensorflow \\\n   keras\nx = 1\n", "pass\n\n\nx = 1\n"),
        ("%%time\nx = f()\n", "\nx = f()\n"),
        ("%%capture out\nx = f()\n", "\nx = f()\n"),
        ("%%bash\necho hi\nls\n", "\n\n\n"),
        ("%%writefile x.py\nimport os\n", "\n\n"),
        # Not magics: inside a string, a bracket, or continuing a modulo.
        ('s = """\n%not a magic\n!nor this\n"""\n', 's = """\n%not a magic\n!nor this\n"""\n'),
        ("y = (1\n  % 2)\n!ls\n", "y = (1\n  % 2)\npass\n"),
        ("f(a\n  , b)\n", "f(a\n  , b)\n"),
        ("x = a if b else c  # why?\n", "x = a if b else c  # why?\n"),
    ],
)
def test_neutralise(source, expected):
    assert "".join(neutralise(split_lines(source))) == expected
    assert len(neutralise(split_lines(source))) == len(split_lines(source))


def test_parse_counts_code_cells_only_and_maps_lines():
    nb = parse_notebook(_notebook(("markdown", "# title"), "a = 1\nb = 2", ("markdown", "text"), "%time c = 3\nd = 4\n"))
    assert [c.number for c in nb.cells] == [1, 2]
    assert nb.virtual_source == "a = 1\nb = 2\npass\nd = 4\n"
    assert nb.line_map[1:] == [(1, 1), (1, 2), (2, 1), (2, 2)]


# -- linting notebooks ------------------------------------------------------------------------


def test_bad_notebook_fixture():
    result = run(RunOptions(paths=[NOTEBOOKS / "bad.ipynb"]))
    assert _where(result) == [("TGL201", 4, 3, 1)]
    (f,) = result.findings
    assert f.end.row == 3 and f.end.column == 84
    assert "weight_constraint" in f.message and "kernel" in f.message
    assert f.fix is None
    display = f.filename
    assert result.sources[f"{display}#cell4"].startswith("%%time\n")


@pytest.mark.parametrize("name", ["good.ipynb", "noqa.ipynb", "r_kernel.ipynb"])
def test_clean_notebook_fixtures(name):
    from tfgradlint.config import Overrides

    result = run(RunOptions(paths=[NOTEBOOKS / name], overrides=Overrides(extend_select=("TGL003",))))
    assert result.findings == []


def test_broken_notebook_fixture_gives_tgl002():
    result = run(RunOptions(paths=[NOTEBOOKS / "broken.ipynb"]))
    assert _where(result) == [("TGL002", None, 17, 5)]
    assert "invalid JSON at line 17, column 5" in result.findings[0].message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2]", "the top level is not a JSON object"),
        ('{"nbformat": 4}', "no 'cells' list"),
        ('{"cells": [{"source": "x"}]}', "cell 1 has no cell_type"),
        ('{"cells": [{"cell_type": "code", "source": 3}]}', "neither a string nor a list of strings"),
    ],
)
def test_not_a_notebook_gives_tgl002(tmp_path, text, reason):
    result = _lint(tmp_path, text)
    assert [f.code for f in result.findings] == ["TGL002"]
    assert reason in result.findings[0].message


def test_positions_map_to_later_cells(tmp_path):
    text = _notebook(
        CG,
        ("markdown", "## Training"),
        "%load_ext autoreload\nmodel = build()\nfor layer in model.layers:\n    layer.kernel = tf.Variable(weight_constraint(layer.kernel))",
        "!nvidia-smi\nv = tf.Variable(weight_constraint(w))\n",
    )
    result = _lint(tmp_path, text)
    assert _where(result) == [("TGL201", 2, 4, 5), ("TGL202", 3, 2, 5)]


def test_noqa_in_a_cell(tmp_path):
    text = _notebook(
        CG,
        "v = tf.Variable(weight_constraint(w))  # noqa: TGL202\nu = tf.Variable(weight_constraint(w))",
        "x = 1  # noqa: TGL201",
    )
    result = _lint(tmp_path, text, select=("TGL2", "TGL003"))
    assert _where(result) == [("TGL202", 2, 2, 5), ("TGL003", 3, 1, 8)]


def test_file_level_noqa_in_the_first_cell(tmp_path):
    text = _notebook("# tfgradlint: noqa: TGL2\n" + CG, "v = tf.Variable(weight_constraint(w))")
    assert _lint(tmp_path, text).findings == []


def test_syntax_error_in_a_cell_gives_tgl001_in_that_cell(tmp_path):
    text = _notebook(CG, "x = 1", "def f(:\n    pass")
    result = _lint(tmp_path, text)
    # LibCST places this error on the line after the '(' (as for a file); the message's
    # line numbers count within the cell too.
    assert [(f.code, f.cell, f.start.row) for f in result.findings] == [("TGL001", 3, 2)]
    assert "error at 2:4" in result.findings[0].message
    assert result.findings[0].message.endswith("(line 2, column 1)")


def test_nbformat_3(tmp_path):
    text = _notebook(CG, "v = tf.Variable(weight_constraint(w))", nbformat=3)
    assert _where(_lint(tmp_path, text)) == [("TGL202", 2, 1, 5)]


def test_other_kernel_languages_are_skipped(tmp_path):
    text = _notebook(CG, "v = tf.Variable(weight_constraint(w))", language="julia")
    assert _lint(tmp_path, text).findings == []


def test_notebook_without_triggers_or_code_cells(tmp_path):
    assert _lint(tmp_path, _notebook(("markdown", "just text"))).findings == []
    assert _lint(tmp_path, _notebook("!ls\nx = 1")).findings == []


# -- the command line -------------------------------------------------------------------------


def test_command_line_reports_cells(run_cli):
    res = run_cli("check", "--output-format", "concise", "fixtures/notebooks", cwd=ROOT)
    assert res.returncode == 1, res.stderr
    lines = [line for line in res.stdout.splitlines() if ": TGL" in line]
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["fixtures/notebooks/bad.ipynb:cell", "4:3:1:"],
        ["fixtures/notebooks/broken.ipynb:17:5:", "TGL002"],
    ]
    assert lines[0].startswith("fixtures/notebooks/bad.ipynb:cell 4:3:1: TGL201 ")


def test_command_line_json_and_code_frame(run_cli):
    res = run_cli("check", "--output-format", "json", "fixtures/notebooks/bad.ipynb", cwd=ROOT)
    (item,) = json.loads(res.stdout)
    assert (item["cell"], item["location"], item["end_location"]) == (4, {"row": 3, "column": 1}, {"row": 3, "column": 84})
    full = run_cli("check", "--output-format", "full", "fixtures/notebooks/bad.ipynb", cwd=ROOT)
    assert "  1 | %%time" in full.stdout
    assert "  3 | model.layers[0].kernel = tf.Variable(" in full.stdout


def test_command_line_reads_a_notebook_from_stdin(run_cli):
    text = (NOTEBOOKS / "bad.ipynb").read_text()
    res = run_cli("check", "--output-format", "concise", "-", "--stdin-filename", "nb.ipynb", input=text)
    assert res.returncode == 1, res.stderr
    assert res.stdout.startswith("nb.ipynb:cell 4:3:1: TGL201 ")
