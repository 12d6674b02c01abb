"""Baselines: adopt tfgradlint on legacy code, then report only new findings.

``--write-baseline FILE`` records the current findings; ``--baseline FILE`` drops the
findings recorded there and reports the rest. The file is JSON, meant to be committed:

    {
      "tfgradlint-baseline": 1,
      "findings": [
        {"file": "pkg/ops.py", "code": "TGL201", "fingerprint": "3f1c...", "line": 15,
         "message": "..."}
      ]
    }

A finding is matched by (file, code, fingerprint); ``line`` and ``message`` are for people
reading the file and are not compared. The fingerprint hashes the code, the text of the
finding's first line with its whitespace normalised, and an occurrence counter (the n-th
finding of that code on an identical line in that file), so it survives lines inserted or
removed elsewhere, re-indentation and edits to other lines, but not an edit of the line
itself. File names are stored relative to the baseline file's folder (``/`` separated), so
the baseline works from any current folder. Each recorded finding absorbs one finding.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from tfgradlint.findings import Finding

VERSION = 1
_KEY = "tfgradlint-baseline"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SPACE = re.compile(r"\s+")


class BaselineError(Exception):
    """A baseline file that cannot be read or written (the message is one line)."""


# -- fingerprints ---------------------------------------------------------------------------


class _Lines:
    """Source lines per file (and per notebook cell), read lazily when not given."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources
        self.cache: dict[str, list[str]] = {}

    def get(self, key: str, filename: str) -> list[str]:
        if key not in self.cache:
            text = self.sources.get(key)
            if text is None and key == filename:
                try:
                    with open(filename, encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                except OSError:
                    text = None
            self.cache[key] = _LINE_BREAK.split(text) if text is not None else []
        return self.cache[key]


def _line_text(f: Finding, lines: _Lines) -> Optional[str]:
    key = f.filename if f.cell is None else f"{f.filename}#cell{f.cell}"
    rows = lines.get(key, f.filename)
    if 1 <= f.start.row <= len(rows):
        return _SPACE.sub(" ", rows[f.start.row - 1]).strip()
    return None


def fingerprints(findings: Sequence[Finding], sources: Mapping[str, str]) -> list[str]:
    """One fingerprint per finding (same order), stable under unrelated line shifts."""
    lines = _Lines(sources)
    order = sorted(range(len(findings)), key=lambda i: findings[i].sort_key())
    seen: Counter = Counter()
    out = [""] * len(findings)
    for i in order:
        f = findings[i]
        text = _line_text(f, lines)
        # Without the line (an unreadable file), the message stands in for it.
        basis = f"line:{text}" if text is not None else f"message:{f.message}"
        key = (f.filename, f.code, basis)
        occurrence = seen[key]
        seen[key] += 1
        digest = hashlib.sha256(f"{f.code}\0{basis}\0{occurrence}".encode("utf-8", "surrogatepass"))
        out[i] = digest.hexdigest()[:32]
    return out


def _relative_to(filename: str, base: Path) -> str:
    if filename == "-":
        return filename
    absolute = os.path.abspath(filename)
    try:
        rel = os.path.relpath(absolute, os.path.abspath(base))
    except ValueError:  # another drive (Windows)
        rel = absolute
    return rel.replace(os.sep, "/")


def _entries(baseline_path: Path, findings: Sequence[Finding], sources: Mapping[str, str]) -> list[dict[str, Any]]:
    base = baseline_path.parent
    prints = fingerprints(findings, sources)
    out = []
    for f, fp in zip(findings, prints):
        entry: dict[str, Any] = {
            "file": _relative_to(f.filename, base),
            "code": f.code,
            "fingerprint": fp,
            "line": f.start.row,
            "message": f.message,
        }
        if f.cell is not None:
            entry["cell"] = f.cell
        out.append(entry)
    out.sort(key=lambda e: (e["file"], e.get("cell") or 0, e["line"], e["code"], e["fingerprint"]))
    return out


# -- the file -------------------------------------------------------------------------------


def write_baseline_file(path: Path, findings: Sequence[Finding], sources: Mapping[str, str]) -> None:
    """Record ``findings`` in ``path`` (written atomically)."""
    path = Path(path)
    data = {_KEY: VERSION, "findings": _entries(path, findings, sources)}
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError as exc:
        raise BaselineError(f"cannot write baseline file {path}: {exc.strerror or exc}") from None


def read_baseline_file(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise BaselineError(f"baseline file {path} not found (create it with --write-baseline)") from None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline file {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: not a tfgradlint baseline (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or _KEY not in data:
        raise BaselineError(f"{path}: not a tfgradlint baseline (no {_KEY!r} key)")
    if data[_KEY] != VERSION:
        raise BaselineError(f"{path}: baseline version {data[_KEY]!r} is not supported (expected {VERSION})")
    entries = data.get("findings")
    if not isinstance(entries, list):
        raise BaselineError(f"{path}: not a tfgradlint baseline ('findings' is not a list)")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("file", "code", "fingerprint")
        ):
            raise BaselineError(
                f"{path}: not a tfgradlint baseline (finding {i + 1} lacks a string 'file', 'code' or 'fingerprint')"
            )
    return entries


def filter_with_baseline(path: Path, findings: Sequence[Finding], sources: Mapping[str, str]) -> list[Finding]:
    """The findings that ``path`` does not record (each record absorbs one finding)."""
    path = Path(path)
    known = Counter((e["file"], e["code"], e["fingerprint"]) for e in read_baseline_file(path))
    base = path.parent
    kept = []
    for f, fp in zip(findings, fingerprints(findings, sources)):
        key = (_relative_to(f.filename, base), f.code, fp)
        if known[key] > 0:
            known[key] -= 1
            continue
        kept.append(f)
    return kept
