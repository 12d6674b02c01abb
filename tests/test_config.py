"""Configuration files: keys, validation, nearest file wins, command line beats files."""

from __future__ import annotations

import json
import textwrap

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


def codes(proc):
    return [f["code"] for f in json.loads(proc.stdout)]


def test_pyproject_ignore_and_cli_extend_select(run_cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.tfgradlint]\nignore = ["TGL202"]\n')
    (tmp_path / "bad.py").write_text(BUGGY)
    assert codes(run_cli("check", "bad.py", "--output-format", "json", cwd=tmp_path)) == []
    proc = run_cli("check", "bad.py", "--output-format", "json", "--select", "TGL202", cwd=tmp_path)
    # ignore in the file still applies on top of a command-line select
    assert codes(proc) == []


def test_nearest_config_wins(run_cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.tfgradlint]\nignore = ["TGL202"]\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "tfgradlint.toml").write_text('select = ["TGL2"]\n')
    (sub / "bad.py").write_text(BUGGY)
    (tmp_path / "bad.py").write_text(BUGGY)
    proc = run_cli("check", ".", "--output-format", "json", cwd=tmp_path)
    got = sorted((f["filename"], f["code"]) for f in json.loads(proc.stdout))
    assert got == [("sub/bad.py", "TGL202")]


def test_pyproject_without_table_is_skipped(run_cli, tmp_path):
    (tmp_path / "tfgradlint.toml").write_text('ignore = ["TGL202"]\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (sub / "bad.py").write_text(BUGGY)
    assert codes(run_cli("check", "sub", "--output-format", "json", cwd=tmp_path)) == []


def test_per_file_ignores_exclude_and_output_format(run_cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.tfgradlint]
        output-format = "concise"
        extend-exclude = ["generated"]
        [tool.tfgradlint.per-file-ignores]
        "tests/*" = ["TGL2"]
        """))
    for rel in ("tests/test_x.py", "generated/g.py", "src/m.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(BUGGY)
    proc = run_cli("check", ".", cwd=tmp_path)
    assert proc.returncode == 1
    lines = [l for l in proc.stdout.splitlines() if "TGL" in l]
    assert len(lines) == 1 and lines[0].startswith("src/m.py:9:5: TGL202")


def test_bad_configuration_is_one_clear_line(run_cli, tmp_path):
    (tmp_path / "bad.py").write_text(BUGGY)
    cases = {
        '[tool.tfgradlint]\nselcet = ["TGL1"]\n': "unknown key 'selcet'",
        '[tool.tfgradlint]\nselect = ["TGL999"]\n': "unknown rule code or name 'TGL999'",
        '[tool.tfgradlint]\npreview = "yes"\n': "'preview' must be true or false",
        '[tool.tfgradlint]\noutput-format = "xml"\n': "'output-format' must be one of",
        '[tool.tfgradlint\n': "invalid TOML",
        '[tool.tfgradlint.runtime]\ntimeuot = 3\n': "unknown key 'timeuot'",
    }
    for text, expected in cases.items():
        (tmp_path / "pyproject.toml").write_text(text)
        proc = run_cli("check", "bad.py", cwd=tmp_path)
        assert proc.returncode == 2, text
        assert expected in proc.stderr, (text, proc.stderr)
        assert "pyproject.toml" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_explicit_config_option(run_cli, tmp_path):
    (tmp_path / "bad.py").write_text(BUGGY)
    (tmp_path / "other.toml").write_text('ignore = ["TGL202"]\n')
    assert codes(run_cli("check", "bad.py", "--config", "other.toml", "--output-format", "json", cwd=tmp_path)) == []
    proc = run_cli("check", "bad.py", "--config", "missing.toml", cwd=tmp_path)
    assert proc.returncode == 2


def test_resolver_gives_one_settings_object_per_file_and_follows_links(tmp_path):
    """What a run works out per settings (rule sets, exclude matchers, cache keys) is worked
    out once per configuration file, not once per folder; a folder reached through a
    symbolic link takes the configuration above its real location."""
    import os

    from tfgradlint.config import Overrides, SettingsResolver, find_config_file

    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "pyproject.toml").write_text('[tool.tfgradlint]\nignore = ["TGL202"]\n')
    deep = tmp_path / "proj" / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "tfgradlint.toml").write_text('select = ["TGL2"]\n')
    (tmp_path / "other" / "inner").mkdir()
    os.symlink(tmp_path / "other" / "inner", deep / "link")

    resolver = SettingsResolver(Overrides(ignore=("TGL301",)))
    top = resolver.for_folder(str(tmp_path / "proj"))
    assert resolver.for_folder(str(deep)) is top
    assert resolver.for_path(deep / "x.py") is top
    assert top.ignore == ("TGL202", "TGL301")
    linked = resolver.for_folder(str(deep / "link"))
    assert linked.select == ("TGL2",)
    assert resolver.for_folder(str(deep / "link")) is linked
    for folder in (tmp_path / "proj", deep, deep / "link", tmp_path):
        expected = find_config_file(folder)
        assert resolver._config_in(resolver._real(str(folder))) == expected
