"""The language server end to end: pytest-lsp drives ``python -m tfgradlint lsp`` over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tfgradlint.lsp import Text, from_client, noqa_edit, to_client
from tfgradlint.findings import Position

ROOT = Path(__file__).resolve().parent.parent
SEED3 = (ROOT / "fixtures" / "seed" / "example3_weight_constraint.py").read_text()
TEST_RULES_SERVER = ROOT / "tests" / "data" / "lsp_server_with_test_rules.py"
SERVER = [sys.executable, "-m", "tfgradlint", "lsp"]
# TGL201 in the seed example: line 15 (0-based 14), the whole assignment (83 characters).
SEED3_RANGE = types.Range(types.Position(14, 0), types.Position(14, 83))


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _prepare(lsp: LanguageClient) -> None:
    """Record every published diagnostics message (pytest-lsp's waiters can miss one that
    arrives right after another) and answer ``client/registerCapability`` as an editor does
    (pytest-lsp has no default for it)."""
    lsp.registrations = []
    lsp.published = []

    @lsp.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(client: LanguageClient, params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)

    default = lsp.protocol.fm.features.pop(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    @lsp.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def record(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        client.published.append(params)
        default(params)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=_env()))
async def client(lsp_client: LanguageClient, tmp_path: Path):
    _prepare(lsp_client)
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=tmp_path.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=tmp_path.as_uri(), name="ws")],
        )
    )
    yield
    await lsp_client.shutdown_session()


async def _start(command, capabilities, root: Path, env=None) -> tuple[LanguageClient, types.InitializeResult]:
    lsp = await ClientServerConfig(server_command=command, server_env=env or _env()).start()
    _prepare(lsp)
    result = await lsp.initialize_session(types.InitializeParams(capabilities=capabilities, root_uri=root.as_uri()))
    return lsp, result


async def _stop(lsp: LanguageClient) -> None:
    await lsp.shutdown_session()
    await lsp.stop()


async def _diagnostics(
    lsp: LanguageClient, uri: str, since: int, version: int | None = None, timeout: float = 120
) -> types.PublishDiagnosticsParams:
    """The first diagnostics for ``uri`` (and ``version``) published after message ``since``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for params in lsp.published[since:]:
            if params.uri == uri and (version is None or params.version == version):
                return params
        if loop.time() > deadline:
            raise AssertionError(f"no diagnostics for {uri} (version {version}) within {timeout} s")
        await asyncio.sleep(0.01)


async def _open(lsp: LanguageClient, path: Path, text: str, version: int = 1) -> types.PublishDiagnosticsParams:
    uri = path.as_uri()
    since = len(lsp.published)
    lsp.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text))
    )
    return await _diagnostics(lsp, uri, since, version)


def _change(lsp: LanguageClient, path: Path, text: str, version: int) -> None:
    lsp.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def _apply(text: str, edits: list[types.TextEdit], encoding: str = "utf-16") -> str:
    """Apply LSP text edits (client units) to ``text``, last edit first."""
    t = Text(text)

    def offset(p: types.Position) -> int:
        pos = from_client(t, p.line, p.character, encoding)
        lines = text.splitlines(keepends=True)
        return sum(len(line) for line in lines[: pos.row - 1]) + pos.column - 1

    out = text
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        out = out[: offset(e.range.start)] + e.new_text + out[offset(e.range.end) :]
    return out


def _edits(action: types.CodeAction, uri: str) -> list[types.TextEdit]:
    edit = action.edit
    assert edit is not None
    if edit.document_changes:
        (change,) = edit.document_changes
        assert change.text_document.uri == uri
        return list(change.edits)
    return list(edit.changes[uri])


# -- diagnostics ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_diagnostics_on_open(client: LanguageClient, tmp_path: Path):
    params = await _open(client, tmp_path / "train.py", SEED3)
    (diag,) = params.diagnostics
    assert diag.code == "TGL201"
    assert diag.source == "tfgradlint"
    assert diag.severity == types.DiagnosticSeverity.Error
    assert diag.range == SEED3_RANGE
    assert diag.code_description.href.endswith("/TGL201.md")
    assert "weight_constraint" in diag.message and "kernel" in diag.message
    assert params.version == 1


@pytest.mark.asyncio
async def test_change_is_debounced_and_save_relints(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "train.py"
    params = await _open(client, path, "import tensorflow as tf\n")
    assert not params.diagnostics
    # A burst of edits: only the last version is linted and published.
    lines = SEED3.splitlines(keepends=True)
    since = len(client.published)
    for version in range(2, 2 + len(lines)):
        _change(client, path, "".join(lines[: version - 1]), version)
    last = 1 + len(lines)
    params = await _diagnostics(client, path.as_uri(), since, last)
    assert [d.code for d in params.diagnostics] == ["TGL201"]
    # Debounced: 21 edits in a burst give one lint (a few at most on a very slow machine).
    assert len([p for p in client.published[since:] if p.uri == path.as_uri()]) <= 3
    # Saving lints again at once.
    since = len(client.published)
    client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri=path.as_uri())))
    params = await _diagnostics(client, path.as_uri(), since)
    assert [d.code for d in params.diagnostics] == ["TGL201"]
    # Closing clears the diagnostics.
    since = len(client.published)
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=path.as_uri())))
    params = await _diagnostics(client, path.as_uri(), since)
    assert not params.diagnostics


@pytest.mark.asyncio
async def test_hover_shows_the_rule_documentation(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "train.py"
    await _open(client, path, SEED3)
    hover = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(path.as_uri()), types.Position(14, 20))
    )
    assert hover is not None
    assert hover.contents.kind == types.MarkupKind.Markdown
    assert hover.contents.value.startswith("# TGL201 custom-gradient-output-to-weight")
    assert "## Why is this bad?" in hover.contents.value
    assert hover.range == SEED3_RANGE
    nothing = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(path.as_uri()), types.Position(0, 3))
    )
    assert nothing is None


@pytest.mark.asyncio
async def test_noqa_code_action_suppresses(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "train.py"
    uri = path.as_uri()
    params = await _open(client, path, SEED3)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=types.Range(types.Position(14, 5), types.Position(14, 5)),
            context=types.CodeActionContext(diagnostics=list(params.diagnostics)),
        )
    )
    assert [a.title for a in actions] == ["Suppress TGL201 with # noqa: TGL201"]
    (action,) = actions
    assert action.kind == types.CodeActionKind.QuickFix
    assert list(action.diagnostics) == list(params.diagnostics)
    (edit,) = _edits(action, uri)
    assert edit.range == types.Range(types.Position(14, 83), types.Position(14, 83))
    assert edit.new_text == "  # noqa: TGL201"
    fixed = _apply(SEED3, [edit])
    assert fixed.splitlines()[14].endswith("(10, 10))))  # noqa: TGL201")
    since = len(client.published)
    _change(client, path, fixed, 2)
    params = await _diagnostics(client, uri, since, 2)
    assert not params.diagnostics


@pytest.mark.asyncio
async def test_fix_code_action_of_a_real_rule(client: LanguageClient, tmp_path: Path):
    text = (ROOT / "fixtures" / "rules" / "TGL119_bad.py").read_text()
    path = tmp_path / "prelu.py"
    uri = path.as_uri()
    params = await _open(client, path, text)
    (diag,) = params.diagnostics
    assert diag.code == "TGL119"
    assert diag.range == types.Range(types.Position(22, 29), types.Position(22, 39))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=types.Range(types.Position(22, 31), types.Position(22, 31)),
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    assert [a.title for a in actions] == [
        "Fix TGL119: Pass tf.convert_to_tensor(self.slope)",
        "Suppress TGL119 with # noqa: TGL119",
    ]
    assert actions[0].is_preferred
    fixed = _apply(text, _edits(actions[0], uri))
    assert "return soft_prelu(x, tf.convert_to_tensor(self.slope))\n" in fixed
    since = len(client.published)
    _change(client, path, fixed, 2)
    params = await _diagnostics(client, uri, since, 2)
    assert not params.diagnostics


@pytest.mark.asyncio
async def test_noqa_code_action_extends_an_existing_noqa(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "train.py"
    lines = SEED3.splitlines(keepends=True)
    lines[14] = lines[14].rstrip("\n") + "  # noqa: E501\n"
    text = "".join(lines)
    await _open(client, path, text)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(path.as_uri()),
            range=SEED3_RANGE,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    (edit,) = _edits(actions[0], path.as_uri())
    assert _apply(text, [edit]).splitlines()[14].endswith("(10, 10))))  # noqa: E501, TGL201")


@pytest.mark.asyncio
async def test_workspace_configuration_is_honoured(client: LanguageClient, tmp_path: Path):
    project = tmp_path / "project"
    (project / "build").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.tfgradlint]\nignore = ["TGL201"]\n')
    params = await _open(client, project / "train.py", SEED3)
    assert not params.diagnostics
    # Files the configuration excludes (build/ by default, generated/ here) get nothing either.
    other = tmp_path / "other"
    (other / "tfgradlint.toml").parent.mkdir()
    (other / "tfgradlint.toml").write_text('extend-exclude = ["generated"]\n')
    for folder in ("build", "generated"):
        (other / folder).mkdir()
        (other / folder / "gen.py").write_text(SEED3)
        params = await _open(client, other / folder / "gen.py", SEED3)
        assert not params.diagnostics, folder
    # And the same text elsewhere is reported.
    params = await _open(client, other / "train.py", SEED3)
    assert [d.code for d in params.diagnostics] == ["TGL201"]


@pytest.mark.asyncio
async def test_configuration_change_relints_open_documents(client: LanguageClient, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    path = project / "train.py"
    params = await _open(client, path, SEED3)
    assert [d.code for d in params.diagnostics] == ["TGL201"]
    assert [r.method for r in client.registrations] == [types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    config = project / "tfgradlint.toml"
    config.write_text('ignore = ["TGL201"]\n')
    since = len(client.published)
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams([types.FileEvent(uri=config.as_uri(), type=types.FileChangeType.Created)])
    )
    params = await _diagnostics(client, path.as_uri(), since)
    assert not params.diagnostics


@pytest.mark.asyncio
async def test_project_wide_rules_are_silent_in_the_editor(client: LanguageClient):
    from tfgradlint.runner import RunOptions, run

    path = ROOT / "fixtures" / "project" / "pkg" / "graph_mode.py"
    whole = run(RunOptions(paths=[ROOT / "fixtures" / "project"]))
    assert any(f.code == "TGL403" and f.filename.endswith("graph_mode.py") for f in whole.findings)
    params = await _open(client, path, path.read_text())
    assert "TGL403" not in [d.code for d in params.diagnostics]


@pytest.mark.asyncio
async def test_bad_configuration_is_shown_once(client: LanguageClient, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.tfgradlint]\nselect = ["NOPE1"]\n')
    params = await _open(client, project / "train.py", SEED3)
    assert not params.diagnostics
    assert any("NOPE1" in m.message and "pyproject.toml" in m.message for m in client.messages)
    assert all(m.type == types.MessageType.Error for m in client.messages)


# -- fixes, encodings, single-file mode (with test rules) -----------------------------------

EMOJI_TEXT = 's = "\U0001f600\U0001f600"; y = old_name\n'


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("encodings", "expected", "column"),
    [
        (None, "utf-16", 16),  # the default: each emoji is two UTF-16 code units
        (["utf-32"], "utf-32", 14),  # code points
        (["utf-8", "utf-16"], "utf-8", 20),  # four bytes each
    ],
)
async def test_fix_code_action_and_position_encodings(tmp_path: Path, encodings, expected, column):
    caps = client_capabilities("visual-studio-code")
    if encodings is not None:
        caps.general = types.GeneralClientCapabilities(position_encodings=encodings)
    lsp, result = await _start([sys.executable, str(TEST_RULES_SERVER)], caps, tmp_path)
    try:
        assert result.capabilities.position_encoding == expected
        path = tmp_path / "m.py"
        params = await _open(lsp, path, EMOJI_TEXT)
        # TGL902 needs the whole project: silent in the editor.
        (diag,) = params.diagnostics
        assert diag.code == "TGL901"
        assert diag.severity == types.DiagnosticSeverity.Warning
        assert diag.range == types.Range(types.Position(0, column), types.Position(0, column + 8))
        actions = await lsp.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(path.as_uri()),
                range=diag.range,
                context=types.CodeActionContext(diagnostics=[diag]),
            )
        )
        titles = [a.title for a in actions]
        assert titles == ["Fix TGL901: rename 'old_name' to 'new_name'", "Suppress TGL901 with # noqa: TGL901"]
        assert actions[0].is_preferred
        (edit,) = _edits(actions[0], path.as_uri())
        assert edit.range == diag.range and edit.new_text == "new_name"
        assert _apply(EMOJI_TEXT, [edit], expected) == 's = "\U0001f600\U0001f600"; y = new_name\n'
    finally:
        await _stop(lsp)


@pytest.mark.asyncio
async def test_server_never_imports_tensorflow(tmp_path: Path):
    """A fake ``tensorflow`` first on the path kills the process if anything imports it."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os\nos._exit(97)\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(fake.parent), str(ROOT)]))
    lsp, _ = await _start(SERVER, client_capabilities("neovim"), tmp_path, env)
    try:
        params = await _open(lsp, tmp_path / "train.py", SEED3)
        assert [d.code for d in params.diagnostics] == ["TGL201"]
        hover = await lsp.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier((tmp_path / "train.py").as_uri()), types.Position(14, 1))
        )
        assert hover is not None
        assert lsp._server.returncode is None
    finally:
        await _stop(lsp)


# -- units ----------------------------------------------------------------------------------


# -- re-lints after edits: unchanged statements are reused (tfgradlint/parsing.py) ----------

_BLOCK = """

@tf.custom_gradient
def scale{i}(x, y):
    z = x * y

    def grad(dy):
        return dy * y

    return z, grad


class Dense{i}(tf.keras.layers.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], 4))

    def call(self, x):
        return scale{i}(x, self.w)
"""


def _expected(text: str, path: Path) -> list[tuple]:
    """The findings of ``text`` linted in this process, parsed at once, as diagnostics."""
    from tfgradlint import parsing
    from tfgradlint.lsp import lint_text

    assert parsing.INCREMENTAL is False
    findings, errors, _ = lint_text(text, str(path))
    assert not errors
    return sorted((f.code, f.start.row - 1, f.start.column - 1, f.end.row - 1, f.end.column - 1, f.message)
                  for f in findings)


def _got(params: types.PublishDiagnosticsParams) -> list[tuple]:
    return sorted((d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character,
                   d.message) for d in params.diagnostics)


@pytest.mark.asyncio
async def test_relints_after_edits_match_a_fresh_lint(client: LanguageClient, tmp_path: Path):
    from tfgradlint.fixes import apply_edits
    from tfgradlint.lsp import lint_text

    path = tmp_path / "layers.py"
    uri = path.as_uri()
    text = "import tensorflow as tf\n" + "".join(_BLOCK.replace("{i}", str(i)) for i in range(4))
    params = await _open(client, path, text)
    assert _got(params) == _expected(text, path)
    assert len(params.diagnostics) == 8
    edits = [
        text + "# appended\n",
        "# a header\n\n" + text,
        text.replace("return dy * y\n", "return dy * y, dy * x\n", 1),  # one bug fixed
        text.replace("class Dense2", "class Other2").replace("    z = x * y\n", "    z = x * y  # product\n", 3),
        "# a header\n\n" + text.replace("def build(self, shape):", "def build(self, input_shape):", 1),
    ]
    for version, edited in enumerate(edits, start=2):
        since = len(client.published)
        _change(client, path, edited, version)
        params = await _diagnostics(client, uri, since, version)
        assert _got(params) == _expected(edited, path), version
    # The fix of a finding in a statement that came from an earlier lint: the same edit.
    edited = edits[-1]
    findings, _, _ = lint_text(edited, str(path))
    target = [f for f in findings if f.code == "TGL101"][-1]
    diag = [d for d in params.diagnostics if d.code == "TGL101" and d.range.start.line == target.start.row - 1]
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=diag[0].range,
            context=types.CodeActionContext(diagnostics=diag),
        )
    )
    fixes = [a for a in actions if a.title.startswith("Fix TGL101")]
    assert fixes and target.fix is not None
    assert _apply(edited, _edits(fixes[0], uri)) == apply_edits(edited, target.fix.edits)


def test_position_conversion_round_trips():
    t = Text("a\U0001f600b\r\nx\u00e9y\n")
    assert to_client(t, Position(1, 3), "utf-16") == (0, 3)
    assert to_client(t, Position(1, 3), "utf-32") == (0, 2)
    assert to_client(t, Position(1, 3), "utf-8") == (0, 5)
    assert to_client(t, Position(2, 3), "utf-8") == (1, 3)
    for enc in ("utf-8", "utf-16", "utf-32"):
        for pos in (Position(1, 1), Position(1, 2), Position(1, 3), Position(1, 4), Position(2, 4)):
            assert from_client(t, *to_client(t, pos, enc), enc) == pos
    # Beyond the end: clamped to the end of the text.
    assert to_client(t, Position(9, 1), "utf-16") == (2, 0)


def test_noqa_edit_is_not_offered_where_a_comment_cannot_go():
    text = Text('x = f("""\nabc""")\ny = a + \\\n    b\nz = 1  # noqa: E501\nw = 2  # a comment\n')
    assert noqa_edit(text, 1, "TGL201") is None  # ends inside a string
    assert noqa_edit(text, 3, "TGL201") is None  # backslash continuation
    assert noqa_edit(text, 5, "TGL201") == (Position(5, 20), Position(5, 20), ", TGL201")
    assert noqa_edit(text, 6, "TGL201") == (Position(6, 19), Position(6, 19), "  # noqa: TGL201")
