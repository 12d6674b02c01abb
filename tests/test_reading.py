"""Reading files: bytes as the interpreter decodes them, read in few calls, and a run's
memory handling (what it freezes from the cyclic collector it gives back)."""

from __future__ import annotations

import codecs
import gc
import io
import os
import tokenize
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfgradlint import runner
from tfgradlint.engine import UnreadableSource, decode_source


def _reference(data: bytes):
    """What decode_source did before its fast path: tokenize.detect_encoding, then decode."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        return "cannot determine the encoding"
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8-sig" if bom else encoding), encoding
    except (UnicodeDecodeError, LookupError):
        return "cannot decode"


def _mine(data: bytes):
    try:
        d = decode_source(data)
    except UnreadableSource as exc:
        return "cannot determine the encoding" if "determine" in str(exc) else "cannot decode"
    return d.text, d.encoding


LINES = [
    b"", b"x = 1", b"# -*- coding: latin-1 -*-", b"# coding=utf-8", b"#!/usr/bin/env python",
    b"# vim: set fileencoding=cp1252 :", b"# coding: nope", b"s = '\xc3\xa9'", b"s = '\xe9'", b"   ",
    b"# just a comment", b"\xef\xbb\xbf# bom", b"x = 1\r# coding: latin-1", b"#coding:utf-8",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=4), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_decoding_agrees_with_the_interpreters_rules(lines, newline, final):
    data = newline.join(lines) + (newline if final else b"")
    if b"\x00" in data:
        return
    assert _mine(data) == _reference(data)


def test_unreadable_bytes_say_why():
    with pytest.raises(UnreadableSource, match="NUL"):
        decode_source(b"x = 1\x00\n")
    with pytest.raises(UnreadableSource, match="cannot determine the encoding"):
        decode_source(b"\xe9 = 1\n")
    with pytest.raises(UnreadableSource, match="cannot decode as utf-8"):
        decode_source(b"x = 1\ny = 2\nz = '\xe9'\n")


def test_read_bytes_reads_a_file_that_grew_since_its_stat(tmp_path):
    p = tmp_path / "a.py"
    p.write_bytes(b"x = 1\n" * 50_000)
    assert runner._read_bytes(str(p), 10) == p.read_bytes()  # stat'ed when it was smaller
    assert runner._read_bytes(str(p), 300_000) == p.read_bytes()
    (tmp_path / "empty.py").write_bytes(b"")
    assert runner._read_bytes(str(tmp_path / "empty.py"), 0) == b""
    with pytest.raises(IsADirectoryError):
        runner._read_bytes(str(tmp_path), 0)
    with pytest.raises(FileNotFoundError):
        runner._read_bytes(str(tmp_path / "missing.py"), 0)


def test_a_big_run_gives_back_what_it_froze(tmp_path, monkeypatch):
    """A run over many files freezes what it has read (the collector would walk it again
    and again), and unfreezes it at its end: a program that runs tfgradlint many times
    (the language server, a test suite) must not keep every run's objects."""
    monkeypatch.setattr(runner, "FREEZE_MIN_FILES", 3)
    for i in range(4):
        (tmp_path / f"m{i}.py").write_text("import tensorflow as tf\nx = tf.GradientTape()\n")
    frozen = []
    real_freeze = gc.freeze
    monkeypatch.setattr(gc, "freeze", lambda: (frozen.append(True), real_freeze())[1])
    before, threshold = gc.get_freeze_count(), gc.get_threshold()
    result = runner.run(runner.RunOptions(paths=[tmp_path], no_cache=True, jobs=1))
    assert result.files_checked == 4
    assert frozen and gc.get_freeze_count() == before and gc.get_threshold() == threshold
    # a small run freezes nothing
    frozen.clear()
    monkeypatch.setattr(runner, "FREEZE_MIN_FILES", 1000)
    runner.run(runner.RunOptions(paths=[tmp_path], no_cache=True, jobs=1))
    assert not frozen
