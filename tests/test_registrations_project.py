"""TGL403 and TGL404: registrations across the files of a run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import FIXTURES, lint_text

from tfgradlint.config import Overrides
from tfgradlint.runner import RunOptions, run

RULES = FIXTURES / "rules"
CODES = ("TGL403", "TGL404")


def _lint(name: str, project: bool = True):
    text = (RULES / name).read_text()
    return [(f.code, f.start.row) for f in lint_text(text, select=list(CODES), project=project) if f.code in CODES]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("TGL403_bad.py", [("TGL403", 15), ("TGL403", 21)]),
        ("TGL403_good.py", []),
        ("TGL404_bad.py", [("TGL404", 7), ("TGL404", 17), ("TGL404", 22)]),
        ("TGL404_good.py", []),
    ],
)
def test_fixture_lines(name, expected):
    assert _lint(name) == expected


def test_tgl403_is_silent_for_a_single_file():
    assert _lint("TGL403_bad.py", project=False) == []


def test_tgl404_in_file_checks_also_run_for_a_single_file():
    assert _lint("TGL404_bad.py", project=False) == [("TGL404", 7), ("TGL404", 17), ("TGL404", 22)]


def test_messages():
    text = (RULES / "TGL403_bad.py").read_text()
    msgs = [f.message for f in lint_text(text, select=["TGL403"])]
    assert "'SignSte'" in msgs[0] and "did you mean 'SignSTE'?" in msgs[0] and "'Sign'" in msgs[0]
    text = (RULES / "TGL404_bad.py").read_text()
    msgs = [f.message for f in lint_text(text, select=["TGL404"])]
    assert "'MaxPoolGrad'" in msgs[0] and "built-in" in msgs[0]
    assert "twice" in msgs[1]
    assert msgs[2].startswith("no_gradient('Relu')")


def _project(tmp_path: Path, files: dict[str, str]):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    result = run(RunOptions(paths=[tmp_path], overrides=Overrides(select=CODES)))
    assert result.errors == []
    return sorted(
        (Path(f.filename).resolve().relative_to(tmp_path.resolve()).as_posix(), f.start.row, f.code)
        for f in result.findings
    )


REG = """\
import tensorflow as tf

@tf.RegisterGradient("SteGrad")
def _ste(op, grad):
    return grad
"""

USE = """\
import tensorflow as tf

def f(x):
    with tf.compat.v1.get_default_graph().gradient_override_map({"Sign": "SteGrad"}):
        return tf.sign(x)
"""


def test_tgl403_sees_registrations_in_other_files(tmp_path):
    assert _project(tmp_path, {"grads.py": REG, "use.py": USE}) == []
    assert _project(tmp_path / "b", {"use.py": USE, "other.py": "x = 1\n"}) == [("use.py", 4, "TGL403")]


def test_tgl403_silent_when_any_registration_name_is_dynamic(tmp_path):
    dynamic = "import tensorflow as tf\ndef reg(name, fn):\n    tf.RegisterGradient(name)(fn)\n"
    assert _project(tmp_path, {"dyn.py": dynamic, "use.py": USE}) == []


def test_tgl404_cross_file_duplicates_only_when_imported_together(tmp_path):
    # two independent scripts: never imported into one process
    assert _project(tmp_path / "a", {"train_a.py": REG, "train_b.py": REG}) == []
    # one imports the other: the importer's registration is the second one
    importer = "import grads  # noqa: F401\n" + REG
    assert _project(tmp_path / "b", {"grads.py": REG, "main.py": importer}) == [("main.py", 4, "TGL404")]
    # a package imports both
    assert _project(
        tmp_path / "c",
        {"pkg/__init__.py": "from . import a, b\n", "pkg/a.py": REG, "pkg/b.py": REG},
    ) == [("pkg/b.py", 3, "TGL404")]


def test_tgl404_ignores_conditional_registrations_across_files(tmp_path):
    guarded = "import grads\nimport tensorflow as tf\nif not registered:\n    tf.RegisterGradient('SteGrad')(f)\n"
    assert _project(tmp_path, {"grads.py": REG, "main.py": guarded}) == []


def test_tgl404_built_in_names_in_tensorflow_itself_are_the_built_in_ones(tmp_path):
    files = {
        "tensorflow/__init__.py": "",
        "tensorflow/python/__init__.py": "",
        "tensorflow/python/ops/__init__.py": "",
        "tensorflow/python/ops/nn_grad.py": (
            "from tensorflow.python.framework import ops\n\n@ops.RegisterGradient('Relu')\n"
            "def _relu_grad(op, grad):\n    return grad\n"
        ),
    }
    assert _project(tmp_path, files) == []
    # the same file alone (an editor): still recognised as TensorFlow's own source
    result = run(
        RunOptions(paths=[tmp_path / "tensorflow/python/ops/nn_grad.py"], overrides=Overrides(select=CODES))
    )
    assert result.findings == []
