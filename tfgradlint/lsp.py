"""``tfgradlint lsp``: a language server on standard input/output (pygls).

- Diagnostics when a document is opened or saved (at once) and while it is edited (debounced,
  :data:`DEBOUNCE_SECONDS` after the last change). Each carries the rule's code, severity,
  range, ``codeDescription.href`` (the rule's page) and ``source`` "tfgradlint"; TGL003 (an
  unused suppression) is tagged *unnecessary*.
- Hover over a finding's range shows the rule's documentation (``tfgradlint rule CODE``).
- Code actions (quick fixes): the rule's fix where the finding has one, and "suppress with
  ``# noqa: CODE``" for the finding's line (added to the line's ``# noqa: ...`` list when it
  has one; not offered where a comment cannot go: a line that ends inside a string or with a
  backslash).
- Configuration is the document's own: the nearest ``pyproject.toml`` / ``tfgradlint.toml``
  above its path, re-read on every lint (a changed configuration file re-lints the open
  documents when the client reports it). A document that the configuration excludes gets no
  diagnostics. A bad configuration is shown once as an error message.
- One buffer at a time, as in single-file mode: rules that need the whole project are silent.
  Nothing is imported or run from the user's code, and TensorFlow is never imported.
- Positions: LibCST counts columns in code points; LSP's default is UTF-16 code units.
  The server takes the client's preferred ``positionEncoding`` (utf-8, utf-16 or utf-32) and
  converts every position, so characters outside the BMP are handled.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import sys
import tokenize
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tfgradlint import __version__
from tfgradlint.findings import Finding, Position

DEBOUNCE_SECONDS = 0.25
CONFIG_FILES = ("pyproject.toml", "tfgradlint.toml")
# Codes whose findings cannot be silenced by a line's noqa comment.
_NO_NOQA = frozenset({"TGL001", "TGL002", "TGL003"})
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

log = logging.getLogger(__name__)


# -- text and positions (no pygls needed) ---------------------------------------------------


class Text:
    """A document's text as Python and LSP count lines (\\n, \\r\\n, \\r only)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = _LINE_BREAK.split(text)  # bodies, without breaks; "" after a final break

    def body(self, row: int) -> Optional[str]:
        """Line ``row`` (1-based) without its break, or None beyond the end."""
        return self.lines[row - 1] if 1 <= row <= len(self.lines) else None


def units(text: str, encoding: str) -> int:
    """The length of ``text`` in the client's position units."""
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def to_client(text: Text, pos: Position, encoding: str) -> tuple[int, int]:
    """A 1-based code-point position -> (0-based line, character in client units)."""
    if pos.row < 1:
        return 0, 0
    if pos.row > len(text.lines):
        last = text.lines[-1]
        return len(text.lines) - 1, units(last, encoding)
    body = text.lines[pos.row - 1]
    column = min(max(pos.column - 1, 0), len(body))
    return pos.row - 1, units(body[:column], encoding)


def from_client(text: Text, line: int, character: int, encoding: str) -> Position:
    """(0-based line, character in client units) -> a 1-based code-point position."""
    if line >= len(text.lines):
        return Position(len(text.lines), len(text.lines[-1]) + 1)
    body = text.lines[max(line, 0)]
    count = 0
    for i, ch in enumerate(body):
        if count >= character:
            return Position(line + 1, i + 1)
        count += units(ch, encoding)
    return Position(line + 1, len(body) + 1)


def _comment_safe_rows(text: str) -> Optional[set[int]]:
    """1-based rows whose end may take a comment (they end with NL/NEWLINE), or None."""
    rows: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (tokenize.NL, tokenize.NEWLINE):
                rows.add(tok.start[0])
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    return rows


def noqa_edit(text: Text, row: int, code: str) -> Optional[tuple[Position, Position, str]]:
    """The edit that suppresses ``code`` on line ``row``: (start, end, new text), or None."""
    from tfgradlint.suppressions import parse_suppressions

    body = text.body(row)
    if body is None:
        return None
    safe = _comment_safe_rows(text.text)
    if safe is None or row not in safe:
        return None
    for directive in parse_suppressions(text.text).by_line.get(row, []):
        if directive.codes is None:
            return None  # a bare noqa already suppresses everything
        if code in directive.codes:
            return None
        at = Position(row, directive.end_column)
        return at, at, f", {code}"
    end = len(body.rstrip())
    return Position(row, end + 1), Position(row, len(body) + 1), f"  # noqa: {code}"


# -- the server -----------------------------------------------------------------------------


@dataclass
class DocState:
    version: Optional[int]
    text: Text
    findings: list[Finding] = field(default_factory=list)


def lint_text(text: str, path: str) -> tuple[list[Finding], list[str], Optional[str]]:
    """Lint one buffer as the command line would lint it alone.

    Returns (findings, internal errors, configuration error). Excluded files give nothing.
    """
    from tfgradlint import config
    from tfgradlint.config import ConfigError, Overrides, SettingsResolver
    from tfgradlint.runner import RunOptions, run

    # The configuration may have changed since the last lint: read it again (cheap).
    for cached in ("load_settings", "_config_file_in"):
        clear = getattr(getattr(config, cached, None), "cache_clear", None)
        if clear is not None:
            clear()
    try:
        p = Path(path)
        if p.is_file():
            from tfgradlint.discovery import discover

            resolver = SettingsResolver(Overrides())
            if not list(discover([p], resolver.for_path, force_exclude=True)):
                return [], [], None
        result = run(RunOptions(stdin_text=text, stdin_filename=path, single_file=True))
    except ConfigError as exc:
        return [], [], str(exc)
    except Exception as exc:  # a bug must not take the editor's server down
        return [], [f"{path}: internal error ({type(exc).__name__}: {exc})"], None
    return result.findings, result.errors, None


def serve() -> None:
    from tfgradlint import parsing

    # Each lint after an edit re-parses only the statements whose text changed (the others
    # come from the previous lints: tfgradlint/parsing.py ``parse_statements``), unless
    # TFGRADLINT_INCREMENTAL says otherwise.
    if "TFGRADLINT_INCREMENTAL" not in os.environ:
        parsing.INCREMENTAL = True
    try:
        server = _make_server()
    except ImportError as exc:
        print(
            f"tfgradlint: error: the language server needs pygls ({exc}); install tfgradlint[lsp]",
            file=sys.stderr,
        )
        sys.exit(2)
    server.start_io()


def _make_server():
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import to_fs_path

    class TfgradlintServer(LanguageServer):
        def __init__(self) -> None:
            super().__init__("tfgradlint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
            self.docs: dict[str, DocState] = {}
            self.pending: dict[str, asyncio.Task] = {}
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfgradlint-lint")
            self.shown_errors: set[str] = set()

        # -- helpers --------------------------------------------------------------------

        @property
        def encoding(self) -> str:
            enc = self.workspace.position_encoding
            return str(getattr(enc, "value", enc) or "utf-16")

        def path_for(self, uri: str) -> Optional[str]:
            path = to_fs_path(uri)
            if path:
                return path
            if uri.startswith("untitled:"):
                return str(Path.cwd() / "untitled.py")
            return None

        def wants(self, uri: str, language_id: Optional[str] = None) -> bool:
            path = self.path_for(uri)
            if path is None or path.endswith(".ipynb"):
                return False
            return path.endswith((".py", ".pyi")) or language_id == "python" or uri.startswith("untitled:")

        def schedule(self, uri: str, delay: float) -> None:
            old = self.pending.pop(uri, None)
            if old is not None and not old.done():
                old.cancel()
            self.pending[uri] = asyncio.get_running_loop().create_task(self.lint_later(uri, delay))

        async def lint_later(self, uri: str, delay: float) -> None:
            try:
                if delay:
                    await asyncio.sleep(delay)
                await self.lint_now(uri)
            except asyncio.CancelledError:
                pass

        async def lint_now(self, uri: str) -> Optional[DocState]:
            if uri not in self.docs:
                return None  # closed meanwhile
            doc = self.workspace.get_text_document(uri)
            version, source = doc.version, doc.source
            path = self.path_for(uri)
            if path is None:
                return None
            loop = asyncio.get_running_loop()
            findings, errors, config_error = await loop.run_in_executor(self.executor, lint_text, source, path)
            for err in errors:
                self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=err))
            if config_error and config_error not in self.shown_errors:
                self.shown_errors.add(config_error)
                self.window_show_message(
                    types.ShowMessageParams(type=types.MessageType.Error, message=f"tfgradlint: {config_error}")
                )
            if uri not in self.docs:
                return None  # closed while linting
            current = self.workspace.get_text_document(uri)
            if current.version != version:
                return None  # a newer lint follows
            state = DocState(version, Text(source), findings)
            self.docs[uri] = state
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(
                    uri=uri, version=version, diagnostics=[self.diagnostic(state, f) for f in findings]
                )
            )
            return state

        async def current_state(self, uri: str) -> Optional[DocState]:
            state = self.docs.get(uri)
            if state is None:
                return None
            version = self.workspace.get_text_document(uri).version
            if state.version == version:
                return state
            return await self.lint_now(uri)

        def range(self, state: DocState, start: Position, end: Position) -> "types.Range":
            s = to_client(state.text, start, self.encoding)
            e = to_client(state.text, max(start, end), self.encoding)
            return types.Range(types.Position(*s), types.Position(*e))

        def diagnostic(self, state: DocState, f: Finding) -> "types.Diagnostic":
            return types.Diagnostic(
                range=self.range(state, f.start, f.end),
                message=f.message,
                severity=types.DiagnosticSeverity.Error
                if f.severity == "error"
                else types.DiagnosticSeverity.Warning,
                code=f.code,
                code_description=types.CodeDescription(href=f.url) if f.url else None,
                source="tfgradlint",
                tags=[types.DiagnosticTag.Unnecessary] if f.code == "TGL003" else None,
                data={"name": f.name},
            )

        def text_edit(self, state: DocState, start: Position, end: Position, content: str) -> "types.TextEdit":
            return types.TextEdit(range=self.range(state, start, end), new_text=content)

        def workspace_edit(self, uri: str, state: DocState, edits: list) -> "types.WorkspaceEdit":
            caps = self.client_capabilities
            document_changes = bool(
                caps.workspace
                and caps.workspace.workspace_edit
                and caps.workspace.workspace_edit.document_changes
            )
            if document_changes:
                return types.WorkspaceEdit(
                    document_changes=[
                        types.TextDocumentEdit(
                            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=state.version),
                            edits=edits,
                        )
                    ]
                )
            return types.WorkspaceEdit(changes={uri: edits})

        def markdown_ok(self) -> bool:
            caps = self.client_capabilities
            hover = caps.text_document.hover if caps.text_document else None
            formats = hover.content_format if hover else None
            return not formats or types.MarkupKind.Markdown in formats

        def relint_all(self) -> None:
            for uri in list(self.docs):
                self.schedule(uri, 0)

    server = TfgradlintServer()

    @server.feature(types.INITIALIZED)
    async def initialized(ls: TfgradlintServer, params: types.InitializedParams) -> None:
        caps = ls.client_capabilities
        watched = caps.workspace.did_change_watched_files if caps.workspace else None
        if watched and watched.dynamic_registration:
            try:
                await ls.client_register_capability_async(
                    types.RegistrationParams(
                        registrations=[
                            types.Registration(
                                id="tfgradlint-config-watch",
                                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                                    watchers=[types.FileSystemWatcher(glob_pattern=f"**/{name}") for name in CONFIG_FILES]
                                ),
                            )
                        ]
                    )
                )
            except Exception as exc:  # the client may refuse; saving a config file still works
                log.debug("cannot watch configuration files: %s", exc)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: TfgradlintServer, params: types.DidChangeWatchedFilesParams) -> None:
        ls.shown_errors.clear()
        ls.relint_all()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: TfgradlintServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        if ls.wants(doc.uri, doc.language_id):
            ls.docs.setdefault(doc.uri, DocState(None, Text("")))
            ls.schedule(doc.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: TfgradlintServer, params: types.DidChangeTextDocumentParams) -> None:
        if params.text_document.uri in ls.docs:
            ls.schedule(params.text_document.uri, DEBOUNCE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    async def did_save(ls: TfgradlintServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri.endswith(CONFIG_FILES):
            ls.shown_errors.clear()
            ls.relint_all()
        elif uri in ls.docs:
            ls.schedule(uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: TfgradlintServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None and not task.done():
            task.cancel()
        if ls.docs.pop(uri, None) is not None:
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: TfgradlintServer, params: types.HoverParams) -> Optional[types.Hover]:
        from tfgradlint.rules import rule_by_code_or_name

        state = ls.docs.get(params.text_document.uri)
        if state is None or not state.findings:
            return None
        at = from_client(state.text, params.position.line, params.position.character, ls.encoding)
        hits = [f for f in state.findings if f.start <= at <= max(f.end, f.start)]
        if not hits:
            return None
        docs = []
        for f in hits:
            rule = rule_by_code_or_name(f.code)
            if rule is not None:
                doc = rule.documentation()
                if doc not in docs:
                    docs.append(doc)
        if not docs:
            return None
        first = min(hits, key=lambda f: (f.start, f.code))
        kind = types.MarkupKind.Markdown if ls.markdown_ok() else types.MarkupKind.PlainText
        return types.Hover(
            contents=types.MarkupContent(kind=kind, value="\n\n---\n\n".join(docs)),
            range=ls.range(state, first.start, first.end),
        )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    async def code_action(ls: TfgradlintServer, params: types.CodeActionParams) -> Optional[list[types.CodeAction]]:
        uri = params.text_document.uri
        if uri not in ls.docs:
            return None
        only = params.context.only
        if only and not any(str(k.value if hasattr(k, "value") else k).startswith("quickfix") for k in only):
            return None
        state = await ls.current_state(uri)
        if state is None:
            return None
        lo = from_client(state.text, params.range.start.line, params.range.start.character, ls.encoding)
        hi = from_client(state.text, params.range.end.line, params.range.end.character, ls.encoding)
        actions: list[types.CodeAction] = []
        noqa_rows: set[tuple[int, str]] = set()
        for f in state.findings:
            if f.start > hi or max(f.end, f.start) < lo:
                continue
            diag = ls.diagnostic(state, f)
            if f.fix is not None and f.fix.edits:
                edits = [ls.text_edit(state, e.start, e.end, e.content) for e in f.fix.edits]
                unsafe = f.fix.applicability != "safe"
                actions.append(
                    types.CodeAction(
                        title=f"Fix {f.code}: {f.fix.message}" + (" (unsafe)" if unsafe else ""),
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diag],
                        is_preferred=not unsafe,
                        edit=ls.workspace_edit(uri, state, edits),
                    )
                )
            if f.code in _NO_NOQA or (f.start.row, f.code) in noqa_rows:
                continue
            edit = noqa_edit(state.text, f.start.row, f.code)
            if edit is None:
                continue
            noqa_rows.add((f.start.row, f.code))
            actions.append(
                types.CodeAction(
                    title=f"Suppress {f.code} with # noqa: {f.code}",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diag],
                    edit=ls.workspace_edit(uri, state, [ls.text_edit(state, *edit)]),
                )
            )
        return actions

    return server
