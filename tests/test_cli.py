"""The command line: exit codes, selection, output formats, stdin, rule docs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


BUGGY = textwrap.dedent(
    """\
    import tensorflow as tf

    @tf.custom_gradient
    def constrain(w):
        def grad(dy):
            return dy
        return w, grad

    v = tf.Variable(constrain(tf.zeros((3,))))
    """
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_exit_codes(run_cli, tmp_path):
    write(tmp_path, "clean.py", "import tensorflow as tf\nx = tf.constant(1.0)\n")
    assert run_cli("check", tmp_path / "clean.py").returncode == 0
    bad = write(tmp_path, "bad.py", BUGGY)
    assert run_cli("check", bad).returncode == 1
    assert run_cli("check", bad, "--exit-zero").returncode == 0
    assert run_cli("check", bad, "--select", "NOPE").returncode == 2
    assert run_cli("check", bad, "--output-format", "nope").returncode == 2


def test_bare_paths_mean_check_and_default_is_current_folder(run_cli, tmp_path):
    write(tmp_path, "pkg/bad.py", BUGGY)
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 1
    assert "pkg/bad.py:9:5: TGL202" in proc.stdout
    proc = run_cli(tmp_path / "pkg", "--output-format", "concise")
    assert proc.returncode == 1 and "TGL202" in proc.stdout


def test_select_ignore_by_code_prefix_and_name(run_cli, tmp_path):
    bad = write(tmp_path, "bad.py", BUGGY)
    for args in (["--ignore", "TGL202"], ["--ignore", "TGL2"], ["--ignore", "variable-severs-gradient"],
                 ["--select", "TGL1"]):
        proc = run_cli("check", bad, *args, "--output-format", "json")
        assert json.loads(proc.stdout) == [], args
        assert proc.returncode == 0
    proc = run_cli("check", bad, "--select", "TGL1", "--extend-select", "TGL202", "--output-format", "json")
    assert [f["code"] for f in json.loads(proc.stdout)] == ["TGL202"]


def test_json_fields_and_positions(run_cli, tmp_path):
    bad = write(tmp_path, "bad.py", BUGGY)
    proc = run_cli("check", bad, "--output-format", "json")
    [f] = json.loads(proc.stdout)
    assert set(f) >= {"code", "name", "severity", "message", "filename", "cell", "location",
                      "end_location", "fix", "url", "confirmation"}
    assert f["code"] == "TGL202" and f["name"] == "variable-severs-gradient"
    assert f["location"] == {"row": 9, "column": 5}
    assert f["end_location"] == {"row": 9, "column": 43}
    lines = run_cli("check", bad, "--output-format", "json-lines").stdout.splitlines()
    assert [json.loads(line)["code"] for line in lines] == ["TGL202"]


def test_output_file_statistics_quiet(run_cli, tmp_path):
    bad = write(tmp_path, "bad.py", BUGGY)
    out = tmp_path / "report.json"
    proc = run_cli("check", bad, "--output-format", "json", "--output-file", out)
    assert proc.returncode == 1 and proc.stdout == ""
    assert json.loads(out.read_text())[0]["code"] == "TGL202"
    proc = run_cli("check", bad, "--statistics", "--output-format", "concise")
    assert "TGL202" in proc.stdout.splitlines()[-2] or any(
        line.strip().startswith("1\tTGL202") for line in proc.stdout.splitlines())
    proc = run_cli("check", bad, "--quiet", "--output-format", "concise")
    assert proc.stdout.strip().splitlines() == [f"{bad}:9:5: TGL202 " + proc.stdout.split(" TGL202 ", 1)[1].strip()]


def test_stdin_with_filename(run_cli, tmp_path):
    proc = run_cli("check", "-", "--stdin-filename", "pkg/ops.py", "--output-format", "json", input=BUGGY)
    assert proc.returncode == 1
    [f] = json.loads(proc.stdout)
    assert f["filename"] == "pkg/ops.py" and f["code"] == "TGL202"


def test_rule_and_rules_commands(run_cli):
    proc = run_cli("rule", "TGL201")
    assert proc.returncode == 0
    assert "# TGL201 custom-gradient-output-to-weight" in proc.stdout
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix safety"):
        assert section in proc.stdout
    assert run_cli("rule", "custom-gradient-output-to-weight").stdout == proc.stdout
    assert run_cli("rule", "TGL999").returncode == 2
    rules = json.loads(run_cli("rules", "--output-format", "json").stdout)
    codes = [r["code"] for r in rules]
    assert codes == sorted(codes) and "TGL201" in codes
    assert {r["default"] for r in rules} <= {"on", "off", "preview"}


def test_broken_file_next_to_good_ones(run_cli, tmp_path):
    # A file being edited: it uses custom_gradient (so it must be analysed) and does not parse.
    write(tmp_path, "a_bad_syntax.py", "import tensorflow as tf\n@tf.custom_gradient\ndef f(:\n    pass\n")
    write(tmp_path, "b_buggy.py", BUGGY)
    (tmp_path / "c_undecodable.py").write_bytes(b"# coding: utf-8\nx = '\xff'\n")
    (tmp_path / "d_nul.py").write_bytes(b"x = 1\x00\n")
    # LibCST's grammar accepts str + bytes concatenation; its node checks and CPython do not
    write(tmp_path, "e_str_bytes.py", "import tensorflow as tf\nx = 'a' b'b'\ntape = tf.GradientTape()\n")
    proc = run_cli("check", tmp_path, "--output-format", "json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    got = sorted((os.path.basename(f["filename"]), f["code"]) for f in data)
    assert got == [("a_bad_syntax.py", "TGL001"), ("b_buggy.py", "TGL202"),
                   ("c_undecodable.py", "TGL002"), ("d_nul.py", "TGL002"), ("e_str_bytes.py", "TGL001")]
    mixed = next(f for f in data if f["filename"].endswith("e_str_bytes.py"))
    assert "bytes" in mixed["message"] and mixed["location"]["row"] == 2
    assert "internal error" not in proc.stderr


def test_missing_path_is_an_error_not_a_crash(run_cli, tmp_path):
    proc = run_cli("check", tmp_path / "nope.py")
    assert proc.returncode == 2
    assert "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_static_linting_never_imports_tensorflow(tmp_path):
    bad = write(tmp_path, "bad.py", BUGGY + "import os\nopen('marker', 'w').write('executed')\n")
    code = textwrap.dedent(
        f"""
        import sys
        from tfgradlint.cli import main
        try:
            main([{str(bad)!r}, "--output-format", "json"])
        except SystemExit as exc:
            code = exc.code
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        assert "keras" not in sys.modules, "keras was imported"
        print("exit", code)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "exit 1" in proc.stdout
    assert not (tmp_path / "marker").exists(), "the linted file was executed"


def test_python_dash_m_and_console_script_agree(run_cli):
    proc = run_cli("--version")
    assert proc.returncode == 0 and "tfgradlint" in proc.stdout


def test_the_process_exits_at_once_with_everything_written(tmp_path):
    """``python -m tfgradlint`` skips Python's teardown (cli.entry): the exit code, a large
    report on a pipe and an --output-file are still complete."""
    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    cmd = [sys.executable, "-m", "tfgradlint", "check", "--no-cache", str(fixtures)]
    piped = subprocess.run([*cmd, "--output-format", "json"], capture_output=True, text=True)
    assert piped.returncode == 1, piped.stderr
    data = json.loads(piped.stdout)
    assert len(data) > 100
    out = tmp_path / "report.json"
    written = subprocess.run([*cmd, "--output-format", "json", "--output-file", str(out)],
                             capture_output=True, text=True)
    assert written.returncode == 1 and written.stdout == ""
    assert json.loads(out.read_text()) == data
    clean = subprocess.run([*cmd[:-1], str(fixtures / "seed"), "--select", "TGL403", "--quiet"],
                           capture_output=True, text=True)
    assert (clean.returncode, clean.stdout) == (0, "")
    assert subprocess.run([*cmd, "--exit-zero", "--quiet"], capture_output=True).returncode == 0
    bad = subprocess.run([*cmd, "--select", "NOPE1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "NOPE1" in bad.stderr
