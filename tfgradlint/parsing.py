"""LibCST parsing for linting: the same trees as ``libcst.parse_module``, built faster.

Every LibCST node validates itself when it is constructed (``CSTNode.__post_init__``): useful
for trees built by hand, redundant for the parser's own output, which is valid by
construction (LibCST's own source says so next to ``__post_init__``). While
:func:`parse_module` runs, that check is skipped: about 12% of the parse on TensorFlow's
``*_grad.py`` modules, and the trees are equal (``deep_equals``; tests/test_parsing.py).
Any other code constructing nodes at the same moment (another thread of the language
server) is not affected in what it builds, only unchecked; fixes are re-parsed and compiled
before anything is written (tfgradlint/fixes.py).

:func:`parse_statements` builds the same tree a statement at a time, reusing the statements
of recent parses whose text is unchanged (the language server re-lints a buffer after every
edit; the comment above it says what is reused and when it falls back).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

if TYPE_CHECKING:
    import libcst as cst

_LOCK = threading.Lock()
# [the number of parses running]: a node built meanwhile skips its validation
_SKIPPING = [0]
_INSTALLED: Optional[bool] = None


@contextmanager
def _unvalidated() -> Iterator[bool]:
    """Node construction without validation inside (False: this LibCST's nodes could not be
    given the constructors below, and validate)."""
    if not _install_constructors():
        yield False
        return
    with _LOCK:
        _SKIPPING[0] += 1
    try:
        yield True
    finally:
        with _LOCK:
            _SKIPPING[0] -= 1


# LibCST's nodes are frozen dataclasses: their generated ``__init__`` sets each field with
# ``object.__setattr__`` and then validates the node (``__post_init__``). The parser builds
# hundreds of thousands of nodes; the constructors below, installed once, set the same
# fields straight through their slots (or instance dict) and validate unless a parse is
# running: LibCST's parse about 10% faster again, the trees equal. A class whose dataclass
# signature they would not reproduce exactly (or any surprise) keeps LibCST's own.


def _install_constructors() -> bool:
    global _INSTALLED
    if _INSTALLED is None:
        with _LOCK:
            if _INSTALLED is None:
                try:
                    _INSTALLED = _install()
                except Exception:  # only an optimisation
                    _INSTALLED = False
    return _INSTALLED


def _install() -> bool:
    import dataclasses
    import inspect

    from libcst._nodes.base import CSTNode

    if not callable(CSTNode.__dict__.get("__post_init__")):
        return False
    classes, todo = [], [CSTNode]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in classes:
                classes.append(sub)
                todo.append(sub)
    made = {}
    for cls in classes:
        init = cls.__dict__.get("__init__")
        if not dataclasses.is_dataclass(cls) or init is None or init.__code__.co_filename != "<string>":
            continue
        if getattr(init, "_tfgradlint", False):
            return True  # installed already (an import of this module again)
        fast = _constructor(cls)
        if fast is not None and _shape(fast) == _shape(init):
            made[cls] = fast
    for cls, fast in made.items():
        _ORIGINAL_INITS[cls] = cls.__dict__["__init__"]
        cls.__init__ = fast  # type: ignore[misc]
    return bool(made)


# class -> the constructor the dataclass made (tests compare the two)
_ORIGINAL_INITS: dict[type, Any] = {}


def _shape(fn: Any) -> tuple:
    """A function's parameters: names, which are keyword-only, defaults (what
    ``inspect.signature`` compares but the annotations, at a fraction of its cost)."""
    code = fn.__code__
    n = code.co_argcount + code.co_kwonlyargcount
    return (code.co_varnames[:n], code.co_argcount, code.co_flags & 0x0C, fn.__defaults__, fn.__kwdefaults__)


def _constructor(cls: type) -> Any:
    """``cls.__init__`` as the dataclass made it, fields set directly (None: unsure)."""
    import dataclasses

    # (the dataclass's own marker of a field with a default factory, where it has one)
    factory = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", dataclasses.MISSING)
    ns: dict[str, Any] = {"_MISSING": factory, "_SKIPPING": _SKIPPING}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    uses_dict = False
    for f in dataclasses.fields(cls):
        slot = None
        for klass in cls.__mro__:
            found = klass.__dict__.get(f.name)
            if found is not None and type(found).__name__ == "member_descriptor":
                slot = found
                break
        if slot is not None:
            ns[f"_set_{f.name}"] = slot.__set__
            setter = f"_set_{f.name}(self, {{}})"
        elif any(hasattr(klass.__dict__.get(f.name), "__set__") for klass in cls.__mro__):
            return None  # a descriptor of another kind: not the instance dict
        else:
            uses_dict = True
            setter = f"_dict[{f.name!r}] = {{}}"
        if f.default is not dataclasses.MISSING:
            ns[f"_default_{f.name}"] = f.default
            default = f"_default_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            ns[f"_factory_{f.name}"] = f.default_factory
            default = "_MISSING"
        else:
            default = ""
        if f.init:
            param = f"{f.name}={default}" if default else f.name
            (keyword if f.kw_only else positional).append(param)
            if default == "_MISSING":
                body.append(f"if {f.name} is _MISSING: {f.name} = _factory_{f.name}()")
            body.append(setter.format(f.name))
        elif default == "_MISSING":
            body.append(setter.format(f"_factory_{f.name}()"))
        elif default:
            body.append(setter.format(default))
    if uses_dict:
        body.insert(0, "_dict = self.__dict__")
    body.append("if not _SKIPPING[0]: self.__post_init__()")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}):\n" + "".join(f"    {line}\n" for line in body)
    exec(source, ns)
    ns["__init__"]._tfgradlint = True
    return ns["__init__"]


def parse_module(text: str) -> "cst.Module":
    """``libcst.parse_module(text)`` without the per-node validation (same exceptions)."""
    import libcst as cst

    with _unvalidated():
        return cst.parse_module(text)


# -- a module a statement at a time ---------------------------------------------------------
#
# ``parse_statements(text, lines)``: ``lines`` are the first lines (the first decorator or
# keyword, at column 0) of the module's top-level statements, in order (slicing's layout).
# The text is cut into chunks at the start of those lines: chunk 0 from the start of the
# text (the module header and the first statement), chunk k from statement k's first line
# to statement k+1's, the last to the end. Each chunk is parsed alone and remembered by its
# exact text (and whether it is the last). The last chunk is parsed as it is: it ends the
# text, as in the whole module. Any other is parsed followed by a line ``pass``, standing
# for the next statement (at column 0, as it is): the chunk's trailing comments and blank
# lines are split between its indented blocks' footers and the next statement's leading
# lines as in the whole module (a chunk parsed alone would end with a module footer, which
# LibCST builds differently: it drops indented lines it expects a block to have taken).
# What the parse of a chunk gives, and where it goes in the whole module's tree:
#
# - its statement: the same node, except that a chunk after the first starts with code, so
#   its statement has no leading lines: those (the comments and blank lines before it) end
#   the previous chunk, as the leading lines of its ``pass``;
# - the module header (chunk 0), the module footer and ``has_trailing_newline`` (the last
#   chunk);
# - ``default_indent``: LibCST takes the first indented block's indentation, which affects
#   the nodes (``IndentedBlock.indent`` is None when it is the default). The whole module's
#   is that of the first chunk with an indented block; every chunk with one must agree, a
#   chunk without one does not depend on it. ``default_newline``: every chunk must agree.
#
# Anything else (a chunk that is not one statement, a statement line that does not start at
# column 0, a chunk LibCST rejects, a lone carriage return, a form feed, a byte-order mark)
# parses the whole text instead. scripts/compare_incremental.py and
# tests/test_incremental.py check that the tree is ``deep_equals`` the whole parse.

# Whether the engine parses a statement at a time (tfgradlint/engine.py ``_lint_plan``): the
# language server turns it on (tfgradlint/lsp.py; TFGRADLINT_INCREMENTAL=1/0 decides when
# set). The command line parses each file once: nothing to reuse, and a file's statements
# one by one are slower than at once (TFP cold, one job: 1.50 s against 1.40 s, medians).
INCREMENTAL = os.environ.get("TFGRADLINT_INCREMENTAL", "0") not in ("0", "false", "no", "off", "")

# The chunks remembered at once, in characters of their text (the least recently used go
# first). A chunk's tree, with the positions the engine remembers, takes about 85 bytes a
# character: about 85 MB at most (the language-server benchmark's module: 72,000 characters
# of statements kept, 6 MB).
CACHE_MAX_CHARS = 1_000_000
_CACHE: "OrderedDict[tuple[str, bool], ParsedChunk]" = OrderedDict()
_CACHE_CHARS = [0]
_CACHE_LOCK = threading.Lock()
_LINE_BREAK = re.compile(r"\n")
_NO_BLOCK_INDENT = "    "  # LibCST's default_indent for a module without an indented block


_NEXT = "pass\n"  # stands for the statement after a chunk (see above)


class ParsedChunk:
    """One chunk's parse (see above): ``node`` (None when the chunk is not one statement),
    ``after``, the lines after it that lead the next statement (the last chunk: the module
    footer). For the engine's next lints, by the module's (default indent, default newline),
    as they depend on them: ``positions``, the statement's positions (tfgradlint/engine.py
    ``NodePositions``); ``codes``, its code; ``fixed``, the code of the statement after node
    replacements (``fixed_code``)."""

    __slots__ = ("text", "last", "module", "node", "after", "has_block", "positions", "codes", "fixed")

    def __init__(self, text: str, last: bool) -> None:
        import libcst as cst

        self.text = text
        self.last = last
        self.module = module = cst.parse_module(text if last else text + _NEXT)
        body = module.body
        self.node: Optional[cst.BaseStatement] = None
        self.after: Sequence[cst.EmptyLine] = ()
        if last:
            if len(body) == 1:
                self.node = body[0]
                self.after = module.footer
        elif (
            len(body) == 2
            and not module.footer
            and isinstance(body[1], cst.SimpleStatementLine)
            and len(body[1].body) == 1
            and isinstance(body[1].body[0], cst.Pass)
        ):
            self.node = body[0]
            self.after = body[1].leading_lines
        self.has_block = self.node is not None and _has_indented_block(self.node)
        self.positions: dict = {}
        self.codes: dict = {}
        self.fixed: dict = {}

    def code(self, module: "cst.Module") -> str:
        """``module.code_for_node(self.node)``, remembered."""
        key = (module.default_indent, module.default_newline)
        found = self.codes.get(key)
        if found is None:
            found = self.codes[key] = module.code_for_node(self.node)
        return found

    def fixed_code(self, module: "cst.Module", items, make) -> str:
        """The code of ``self.node`` after the node replacements ``items`` ((node, new) pairs,
        nodes below the statement): ``make()``, remembered for the next lints. The same
        items are the same nodes (by identity: they are this statement's) replaced by equal
        ones (``deep_equals``): their code is the same."""
        key = (module.default_indent, module.default_newline, tuple(id(n) for n, _ in items))
        for old_items, code in self.fixed.get(key, ()):
            if all(_same_replacement(a[1], b[1]) for a, b in zip(old_items, items)):
                return code
        code = make()
        found = self.fixed.get(key, ())
        # a few per replaced nodes (a fix changes with the code around it only)
        self.fixed[key] = (found + ((tuple(items), code),))[-4:]
        return code


def _same_replacement(a: object, b: object) -> bool:
    import libcst as cst

    if a is b:
        return True
    if isinstance(a, cst.CSTNode) and isinstance(b, cst.CSTNode):
        return a.deep_equals(b)
    if isinstance(a, cst.FlattenSentinel) and isinstance(b, cst.FlattenSentinel):
        return len(a.nodes) == len(b.nodes) and all(x.deep_equals(y) for x, y in zip(a.nodes, b.nodes))
    return False


def _has_indented_block(node: "cst.CSTNode") -> bool:
    """``node`` (a statement) has an indented block (the tokenizer's INDENT)."""
    import libcst as cst

    from tfgradlint.walk import iter_children

    if isinstance(node, cst.IndentedBlock):
        return True
    if isinstance(node, (cst.SimpleStatementLine, cst.BaseSuite, cst.BaseExpression, cst.Decorator, cst.Parameters)):
        return False  # blocks are in compound statements' suites only
    return any(_has_indented_block(child) for child in iter_children(node))


def cache_clear() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE_CHARS[0] = 0


def cache_size() -> tuple[int, int]:
    """(chunks, characters) remembered."""
    with _CACHE_LOCK:
        return len(_CACHE), _CACHE_CHARS[0]


def _remember(chunk: ParsedChunk) -> None:
    size = len(chunk.text)
    if size > CACHE_MAX_CHARS:
        return
    key = (chunk.text, chunk.last)
    with _CACHE_LOCK:
        if key in _CACHE:
            return
        while _CACHE and _CACHE_CHARS[0] + size > CACHE_MAX_CHARS:
            _, old = _CACHE.popitem(last=False)
            _CACHE_CHARS[0] -= len(old.text)
        _CACHE[key] = chunk
        _CACHE_CHARS[0] += size


def _chunk(text: str, last: bool, remember: bool) -> ParsedChunk:
    key = (text, last)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    chunk = ParsedChunk(text, last)  # validation is off (the caller)
    if remember and chunk.node is not None:
        _remember(chunk)
    return chunk


def chunk_starts(text: str, lines: Sequence[int]) -> Optional[list[int]]:
    """The offsets where the chunks start (the first is 0), or None when a statement line
    does not start with code at column 0 (or ``lines`` is not increasing)."""
    if not lines:
        return None
    want = iter(lines)
    target = next(want)
    starts = [0]
    line = 1
    offset = 0
    if target < 1:
        return None
    matches = _LINE_BREAK.finditer(text)
    while True:
        while line < target:
            m = next(matches, None)
            if m is None:
                return None
            offset = m.end()
            line += 1
        if line != target or offset >= len(text) or text[offset] in " \t\r\n#\\":
            return None
        if target != lines[0]:
            starts.append(offset)
        nxt = next(want, None)
        if nxt is None:
            return starts
        if nxt <= target:
            return None
        target = nxt


def parse_statements(
    text: str, lines: Sequence[int], *, remember: bool = True
) -> tuple["cst.Module", Optional[list[ParsedChunk]]]:
    """The tree of ``parse_module(text)`` (equal: ``deep_equals``), a top-level statement at
    a time, reusing the statements of recent parses whose chunk of text is the same (see
    above). ``lines``: each top-level statement's first line. Also the chunk of each
    statement of the module's body (None when the whole text was parsed at once).
    ``remember`` False: reuse, but remember nothing new. Raises as ``parse_module``."""
    chunks = _chunks(text, lines, remember)
    if chunks is None:
        return parse_module(text), None
    module = _assemble(chunks)
    if module is None:
        return parse_module(text), None
    return module, chunks


def _chunks(text: str, lines: Sequence[int], remember: bool) -> Optional[list[ParsedChunk]]:
    if len(lines) < 2 or "\f" in text or text.startswith("\ufeff"):
        return None
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None
    starts = chunk_starts(text, lines)
    if starts is None or len(starts) != len(lines):
        return None
    ends = starts[1:] + [len(text)]
    out = []
    used: set[int] = set()
    with _unvalidated():
        for a, b in zip(starts, ends):
            last = b == len(text)
            try:
                chunk = _chunk(text[a:b], last, remember)
                if id(chunk) in used:
                    # the same text twice: each statement its own nodes (identities matter)
                    chunk = ParsedChunk(chunk.text, last)
            except Exception:  # a chunk LibCST rejects (or nests too deeply): the whole text
                return None
            if chunk.node is None:
                return None
            used.add(id(chunk))
            out.append(chunk)
    return out


def _assemble(chunks: Sequence[ParsedChunk]) -> Optional["cst.Module"]:
    with _unvalidated():
        return _assemble_unvalidated(chunks)


def _assemble_unvalidated(chunks: Sequence[ParsedChunk]) -> Optional["cst.Module"]:
    import libcst as cst

    first, last = chunks[0].module, chunks[-1].module
    if not chunks[-1].last:
        return None
    newline = first.default_newline
    indent: Optional[str] = None
    body = []
    previous: Optional[ParsedChunk] = None
    for chunk in chunks:
        m = chunk.module
        if m.default_newline != newline:
            return None
        if chunk.has_block:
            if indent is None:
                indent = m.default_indent
            elif m.default_indent != indent:
                return None
        node = chunk.node
        if previous is not None:
            if m.header or node.leading_lines:  # type: ignore[union-attr]
                return None
            lead = previous.after
            if lead:
                node = node.with_changes(leading_lines=lead)  # type: ignore[union-attr]
        body.append(node)
        previous = chunk
    return cst.Module(
        body=tuple(body),
        header=first.header,
        footer=chunks[-1].after,
        encoding=first.encoding,
        default_indent=_NO_BLOCK_INDENT if indent is None else indent,
        default_newline=newline,
        has_trailing_newline=last.has_trailing_newline,
    )
