"""The cache: each file's findings and cross-file summary, so that a warm run re-lints nothing.

Where: ``--cache-dir``, else the configuration's ``cache-dir``, else ``.tfgradlint_cache/`` in
the project root (the folder of the configuration file, or the current folder). One store
file per tool fingerprint (``v<FORMAT>-<fingerprint>.bin``): a different version of
tfgradlint (or an edited checkout) never reads another's results.

What a store holds, per file (by absolute path):

- ``(mtime_ns, size, mode)`` and the content hash (BLAKE2b of the bytes) of the version last read.
  The cheap check (as Ruff's): when the file's stat is unchanged, its content is taken as
  unchanged without reading it, unless the file had been modified less than ``RACY_NS``
  before it was read (a write in the same timestamp tick could keep the stat: git's "racy
  clean" problem); then the content is hashed again.
- its project summary (tfgradlint/project.py) for that content, display name and roots;
- its findings (with fixes) under a key made of everything they depend on: the content hash,
  the tool fingerprint, the file's effective settings and enabled codes, its display name
  and module root, whether the run is whole-project, and a fingerprint of the merged project
  index (tfgradlint/runner.py computes the keys).

and, per set of files linted together, the merged project index (its summaries and module
names), so that a warm run does not read any file.

A store is written atomically (a temporary file, then ``os.replace``); when another run wrote
the store meanwhile, the two are merged. A store that is missing, truncated, corrupt, from
another format or tool version, or that fails its checksum is ignored (and rebuilt), never
trusted and never fatal: the payload is a checksummed pickle of plain data (dicts, lists,
strings, numbers, bytes), loaded with an unpickler that refuses every class.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

FORMAT = 1
MAGIC = b"TGLCACHE"
DEFAULT_DIR_NAME = ".tfgradlint_cache"
# A file modified less than this before it was read is hashed again on the next run.
RACY_NS = 2_000_000_000
# Results kept per file (different settings, single-file vs whole-project runs, ...).
MAX_RESULTS = 4
# Merged project indexes kept (different sets of files linted).
MAX_PROJECTS = 4
# Store files of other tool versions older than this are removed.
STALE_STORE_SECONDS = 7 * 24 * 3600
KEEP_OTHER_STORES = 2

_HEADER = len(MAGIC) + 2 + 32 + 32  # magic, format, fingerprint, checksum (hex)


@lru_cache(maxsize=1)
def tool_fingerprint() -> str:
    """The tool's version, the interpreter, and the stat of every file of the package.

    A released version is enough in principle; the files' stat also covers a development
    checkout (an edited rule must not be served stale findings)."""
    from tfgradlint import __version__

    package = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{__version__}|{sys.implementation.name}|{sys.version_info[:3]}|{FORMAT}".encode())
    for folder, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".py", ".json")):
                full = os.path.join(folder, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                h.update(f"{os.path.relpath(full, package)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def content_hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def digest(*parts: Any) -> str:
    """A short stable hash of ``repr(parts)`` (cache keys)."""
    return hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def default_cache_dir(cache_dir: Optional[os.PathLike] = None) -> Path:
    """The cache folder for a run started in the current folder (``tfgradlint clean``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    from tfgradlint.config import ConfigError, Overrides, SettingsResolver

    try:
        settings = SettingsResolver(Overrides()).for_path(Path.cwd())
    except ConfigError:
        return Path.cwd() / DEFAULT_DIR_NAME
    return settings_cache_dir(settings)


def settings_cache_dir(settings: Any) -> Path:
    """The configured ``cache-dir``, else the configuration file's folder, else the current
    folder (settings without a file are shared: their ``root`` is not the current folder)."""
    if getattr(settings, "cache_dir", None):
        return Path(settings.cache_dir)
    if getattr(settings, "source", None) is None:
        return Path.cwd() / DEFAULT_DIR_NAME
    return Path(settings.root) / DEFAULT_DIR_NAME


def _is_ours(name: str) -> bool:
    return (name.startswith("v") and name.endswith(".bin")) or name.startswith(".tmp-") or name in (
        "CACHEDIR.TAG",
        ".gitignore",
    )


def clean(cache_dir: Optional[os.PathLike] = None) -> Optional[str]:
    """Remove the cache; the folder removed, or None when there was none.

    Only the cache's own files are removed: a folder that holds anything else (a wrong
    ``--cache-dir``) keeps it and is not removed."""
    folder = default_cache_dir(cache_dir)
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    removed = False
    for name in names:
        if _is_ours(name):
            try:
                os.remove(folder / name)
                removed = True
            except OSError:
                pass
    try:
        os.rmdir(folder)
        removed = True
    except OSError:
        pass
    return str(folder) if removed else None


class _PlainUnpickler(pickle.Unpickler):
    """Loads plain data only: a cache file can never make the linter create an object."""

    def find_class(self, module: str, name: str) -> Any:  # pragma: no cover - defensive
        raise pickle.UnpicklingError(f"cache: refusing {module}.{name}")


def _loads(payload: bytes) -> Any:
    return _PlainUnpickler(io.BytesIO(payload)).load()


class Cache:
    """One store, loaded at the start of a run and saved at its end."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.fingerprint = tool_fingerprint()
        self.path = self.directory / f"v{FORMAT}-{self.fingerprint[:20]}.bin"
        self.entries: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.touched: set[str] = set()
        self.dirty = False
        self._loaded_stat: Optional[tuple[int, int, int]] = None
        # Why the store was not used (tests and --verbose diagnostics).
        self.rejected: Optional[str] = None

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path) -> "Cache":
        cache = cls(directory)
        data, stat = cache._read_store()
        if data is not None:
            cache.entries, cache.projects = data
            cache._loaded_stat = stat
        return cache

    def _read_store(self) -> tuple[Optional[tuple[dict, dict]], Optional[tuple[int, int, int]]]:
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                blob = fh.read()
        except OSError:
            return None, None
        stat = (st.st_mtime_ns, st.st_size, st.st_ino)
        data = self._decode(blob)
        return data, stat

    def _decode(self, blob: bytes) -> Optional[tuple[dict, dict]]:
        try:
            if len(blob) < _HEADER or not blob.startswith(MAGIC):
                self.rejected = "not a tfgradlint cache"
                return None
            pos = len(MAGIC)
            fmt = blob[pos : pos + 2]
            fp = blob[pos + 2 : pos + 34].decode("ascii")
            checksum = blob[pos + 34 : pos + 66].decode("ascii")
            payload = blob[_HEADER:]
            if fmt != b"%02d" % FORMAT or fp != self.fingerprint[:32].ljust(32, "-"):
                self.rejected = "another format or tool version"
                return None
            if hashlib.blake2b(payload, digest_size=16).hexdigest() != checksum:
                self.rejected = "checksum mismatch (truncated or corrupt)"
                return None
            data = _loads(payload)
            if (
                not isinstance(data, dict)
                or data.get("format") != FORMAT
                or not isinstance(data.get("entries"), dict)
                or not isinstance(data.get("projects"), dict)
            ):
                self.rejected = "unexpected contents"
                return None
            return data["entries"], data["projects"]
        except Exception as exc:  # anything wrong with the file: ignore it
            self.rejected = f"unreadable ({type(exc).__name__})"
            return None

    def _encode(self) -> bytes:
        payload = pickle.dumps(
            {"format": FORMAT, "entries": self.entries, "projects": self.projects},
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        checksum = hashlib.blake2b(payload, digest_size=16).hexdigest()
        header = MAGIC + b"%02d" % FORMAT + self.fingerprint[:32].ljust(32, "-").encode() + checksum.encode()
        return header + payload

    # -- files -----------------------------------------------------------------------------

    def _entry(self, key: str) -> Optional[dict[str, Any]]:
        e = self.entries.get(key)
        return e if isinstance(e, dict) else None

    def trusted_hash(self, key: str, st: os.stat_result) -> Optional[bytes]:
        """The file's content hash when its stat says it is unchanged (no read needed)."""
        e = self._entry(key)
        if e is None or not e.get("t"):
            return None
        if e.get("m") != st.st_mtime_ns or e.get("z") != st.st_size or e.get("p") != st.st_mode:
            return None
        h = e.get("h")
        return h if isinstance(h, bytes) else None

    def record(self, key: str, st: Optional[os.stat_result], chash: bytes, read_ns: int) -> None:
        """The file was read (stat taken before the read): remember its stat and hash."""
        e = self._entry(key)
        trusted = st is not None and st.st_mtime_ns < read_ns - RACY_NS
        m = st.st_mtime_ns if st is not None else None
        z = st.st_size if st is not None else None
        p = st.st_mode if st is not None else None
        if e is not None and e.get("h") == chash:
            if e.get("m") != m or e.get("z") != z or e.get("p") != p or e.get("t") != trusted:
                e["m"], e["z"], e["p"], e["t"] = m, z, p, trusted
                self._touch(key)
            else:
                self.touched.add(key)
            return
        self.entries[key] = {"m": m, "z": z, "p": p, "t": trusted, "h": chash, "s": None, "r": {}}
        self._touch(key)

    def seen(self, key: str) -> None:
        self.touched.add(key)

    def summary(self, key: str, chash: bytes, skey: Any) -> tuple[bool, Any]:
        """(found, summary data or None) for the file's content under summary key ``skey``."""
        e = self._entry(key)
        if e is None or e.get("h") != chash:
            return False, None
        s = e.get("s")
        if isinstance(s, tuple) and len(s) == 2 and s[0] == skey:
            return True, s[1]
        return False, None

    def store_summary(self, key: str, chash: bytes, skey: Any, data: Any) -> None:
        e = self._entry(key)
        if e is None or e.get("h") != chash:
            return
        e["s"] = (skey, data)
        self._touch(key)

    def result(self, key: str, chash: bytes, rkey: str) -> Optional[Any]:
        e = self._entry(key)
        if e is None or e.get("h") != chash:
            return None
        r = e.get("r")
        if not isinstance(r, dict):
            return None
        return r.get(rkey)

    def store_result(self, key: str, chash: bytes, rkey: str, value: Any) -> None:
        e = self._entry(key)
        if e is None or e.get("h") != chash:
            return
        r = e.get("r")
        if not isinstance(r, dict):
            r = e["r"] = {}
        r.pop(rkey, None)
        r[rkey] = value
        while len(r) > MAX_RESULTS:
            r.pop(next(iter(r)))
        self._touch(key)

    def _touch(self, key: str) -> None:
        self.touched.add(key)
        self.dirty = True

    # -- merged project indexes -------------------------------------------------------------

    def project(self, pkey: str) -> Optional[dict[str, Any]]:
        p = self.projects.get(pkey)
        return p if isinstance(p, dict) else None

    def store_project(self, pkey: str, value: dict[str, Any]) -> None:
        self.projects.pop(pkey, None)
        self.projects[pkey] = value
        while len(self.projects) > MAX_PROJECTS:
            self.projects.pop(next(iter(self.projects)))
        self.dirty = True

    # -- saving -----------------------------------------------------------------------------

    def save(self) -> None:
        """Write the store if anything changed; errors are ignored (the cache is optional)."""
        if not self.dirty:
            return
        try:
            self._prepare_directory()
            self._merge_with_disk()
            self._prune()
            blob = self._encode()
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".bin")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.remove(tmp)
                except OSError:
                    pass
                raise
            self.dirty = False
            self._remove_stale_stores()
        except (OSError, pickle.PicklingError, RecursionError, TypeError, ValueError):
            pass

    def _prepare_directory(self) -> None:
        if self.directory.is_dir():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n# tfgradlint's cache: `tfgradlint clean` removes it.\n"),
            (".gitignore", "# Automatically created by tfgradlint.\n*\n"),
        ):
            try:
                with open(self.directory / name, "x", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError:
                pass

    def _merge_with_disk(self) -> None:
        """Another run may have written the store since it was loaded: keep its entries for
        the files this run did not see."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if (st.st_mtime_ns, st.st_size, st.st_ino) == self._loaded_stat:
            return
        data, _ = self._read_store()
        if data is None:
            return
        entries, projects = data
        for key, e in entries.items():
            if key not in self.touched:
                self.entries[key] = e
        for pkey, p in projects.items():
            if pkey not in self.projects:
                self.projects[pkey] = p
        while len(self.projects) > MAX_PROJECTS:
            self.projects.pop(next(iter(self.projects)))

    def _prune(self) -> None:
        """Forget files that no longer exist (among those this run did not see)."""
        for key in [k for k in self.entries if k not in self.touched]:
            if not os.path.exists(key):
                del self.entries[key]

    def _remove_stale_stores(self) -> None:
        """Stores of other tool versions: the most recent ``KEEP_OTHER_STORES`` are kept
        (two installations used in turn), none older than ``STALE_STORE_SECONDS``; leftover
        temporary files older than an hour are removed."""
        now = time.time()
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        stores = []
        for name in names:
            full = self.directory / name
            if name == self.path.name or not _is_ours(name) or name in ("CACHEDIR.TAG", ".gitignore"):
                continue
            try:
                age = now - os.stat(full).st_mtime
                if name.startswith(".tmp-"):
                    if age > 3600:
                        os.remove(full)
                elif age > STALE_STORE_SECONDS:
                    os.remove(full)
                else:
                    stores.append((age, full))
            except OSError:
                pass
        for _, full in sorted(stores)[KEEP_OTHER_STORES:]:
            try:
                os.remove(full)
            except OSError:
                pass
