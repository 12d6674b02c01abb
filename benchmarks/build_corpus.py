"""Build the benchmark corpus: the ``.py`` files of published TensorFlow wheels, one folder each.

    python benchmarks/build_corpus.py                 # everything, into benchmarks/corpus/
    python benchmarks/build_corpus.py --only tensorflow-probability
    python benchmarks/build_corpus.py --force         # rebuild folders that exist

Wheels come from the package index with ``pip download --no-deps`` (kept in
``<corpus>/.wheels/``); only their ``.py`` files are unpacked. The installed ``tensorflow`` and
``keras`` packages are copied (``.py`` files only) from site-packages, so every tool lints the
same files from the same place. Nothing here is committed (``/benchmarks/corpus/`` is in
``.gitignore``).

Idempotent: a package folder that is complete (it holds ``.complete``) is left alone. The
versions used, file counts and sizes are printed and written to ``<corpus>/manifest.json``.

The corpus root gets an empty ``.git`` folder. It marks the corpus as a project of its own, so
the tools do not apply this repository's ``.gitignore`` (which ignores the corpus) or its
configuration: tfgradlint, ruff and Fixit all stop looking upwards there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE / "corpus"
MARKER = ".complete"
TFP = "tensorflow-probability"


@dataclass(frozen=True)
class Wheel:
    """A published wheel: ``folder`` in the corpus, ``requirement`` for ``pip download``."""

    folder: str
    requirement: str

    @property
    def name(self) -> str:
        return self.requirement.split("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.split("==")[1]


@dataclass(frozen=True)
class Installed:
    """An installed package, copied from site-packages: ``folder`` in the corpus, ``module``."""

    folder: str
    module: str


# Pinned so that figures from different days lint the same files.
WHEELS = [
    Wheel(TFP, "tensorflow-probability==0.25.0"),
    Wheel("tf-keras", "tf-keras==2.21.0"),
    Wheel("dm-sonnet", "dm-sonnet==2.0.2"),
    Wheel("larq", "larq==0.14.0"),
    Wheel("tensorflow-model-optimization", "tensorflow-model-optimization==0.8.1"),
    Wheel("tensorflow-compression", "tensorflow-compression==2.14.1"),
    Wheel("keras-hub", "keras-hub==0.32.0"),
    # "and similar wheels" (issue 7): these bring the corpus to ~8,000 files / ~100 MB.
    Wheel("tf-models-official", "tf-models-official==2.20.0"),
    Wheel("tf-agents", "tf-agents==0.19.0"),
    Wheel("gpflow", "gpflow==2.11.2"),
    Wheel("tensorflow-addons", "tensorflow-addons==0.23.0"),
]
INSTALLED = [Installed("tensorflow", "tensorflow"), Installed("keras", "keras")]
ALL_FOLDERS = [w.folder for w in WHEELS] + [i.folder for i in INSTALLED]


# -- pure helpers (tested in tests/test_benchmark_script.py) --------------------------------


def normalize(name: str) -> str:
    """A distribution name as wheel file names spell it (PEP 427): ``tf-keras`` -> ``tf_keras``."""
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheel(wheels_dir: Path, name: str, version: str) -> Optional[Path]:
    """The wheel of ``name==version`` already in ``wheels_dir``, or None."""
    if not wheels_dir.is_dir():
        return None
    prefix = f"{normalize(name)}-{version}-"
    for path in sorted(wheels_dir.iterdir()):
        if path.suffix == ".whl" and path.name.lower().startswith(prefix):
            return path
    return None


def wheel_py_members(names: Iterable[str]) -> list[tuple[str, str]]:
    """(member, destination) for the ``.py`` files of a wheel, destinations relative.

    Metadata (``*.dist-info/``) is left out; ``*.data/purelib/`` and ``*.data/platlib/`` are
    unpacked where pip installs them (the top level); other ``*.data/`` parts (scripts,
    headers) are left out, as are unsafe names (absolute, ``..``).
    """
    out = []
    for member in names:
        if not member.endswith(".py") or member.endswith("/"):
            continue
        parts = member.split("/")
        if member.startswith("/") or ".." in parts or "\\" in member:
            continue
        top = parts[0]
        if top.endswith(".dist-info"):
            continue
        if top.endswith(".data"):
            if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
                parts = parts[2:]
            else:
                continue
        out.append((member, "/".join(parts)))
    return out


def unpack_wheel(wheel: Path, dest: Path) -> tuple[int, int]:
    """Unpack the ``.py`` files of ``wheel`` under ``dest``; (files, bytes)."""
    files = size = 0
    with zipfile.ZipFile(wheel) as zf:
        for member, rel in wheel_py_members(zf.namelist()):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = zf.read(member)
            target.write_bytes(data)
            files += 1
            size += len(data)
    return files, size


def copy_py_tree(src: Path, dest: Path) -> tuple[int, int]:
    """Copy the ``.py`` files under ``src`` to ``dest`` (structure kept, caches skipped)."""
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel = Path(dirpath).relative_to(src)
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            source = Path(dirpath) / fn
            if not source.is_file():
                continue
            target = dest / rel / fn
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            files += 1
            size += target.stat().st_size
    return files, size


def tree_stats(root: Path) -> tuple[int, int]:
    """(number of ``.py`` files, their bytes) under ``root``."""
    files = size = 0
    for dirpath, _dirs, filenames in os.walk(root):
        for fn in filenames:
            if fn.endswith(".py"):
                files += 1
                size += os.path.getsize(os.path.join(dirpath, fn))
    return files, size


def format_rows(rows: list[dict]) -> str:
    """The printed table: package, version, files, MB, and a total line."""
    lines = [f"{'package':32} {'version':12} {'files':>6} {'MB':>7}"]
    for r in rows:
        lines.append(f"{r['folder']:32} {r['version']:12} {r['files']:6d} {r['bytes'] / 1e6:7.1f}")
    total_files = sum(r["files"] for r in rows)
    total_bytes = sum(r["bytes"] for r in rows)
    lines.append(f"{'total':32} {'':12} {total_files:6d} {total_bytes / 1e6:7.1f}")
    return "\n".join(lines)


def package_folders(corpus: Path) -> list[Path]:
    """The complete package folders of a built corpus, in the build order."""
    return [corpus / f for f in ALL_FOLDERS if (corpus / f / MARKER).is_file()]


# -- building -------------------------------------------------------------------------------


def installed_dir(module: str) -> Path:
    """The installed package's folder, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"build_corpus: {module} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def installed_version(module: str) -> str:
    dists = importlib.metadata.packages_distributions().get(module) or [module]
    for dist in dists:
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def download(wheel: Wheel, wheels_dir: Path) -> Path:
    found = find_wheel(wheels_dir, wheel.name, wheel.version)
    if found is not None:
        return found
    wheels_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(wheels_dir), wheel.requirement]
    print(f"  pip download --no-deps {wheel.requirement}", flush=True)
    subprocess.run(cmd, check=True)
    found = find_wheel(wheels_dir, wheel.name, wheel.version)
    if found is None:
        raise SystemExit(f"build_corpus: pip downloaded no wheel for {wheel.requirement}")
    return found


def _fresh(folder: Path) -> Path:
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _finish(tmp: Path, folder: Path, record: dict) -> None:
    (tmp / MARKER).write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def build(corpus: Path, only: Optional[set[str]] = None, force: bool = False) -> list[dict]:
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / ".git").mkdir(exist_ok=True)  # a project boundary for every tool (docstring)
    wheels_dir = corpus / ".wheels"
    rows = []
    for wheel in WHEELS:
        if only and wheel.folder not in only:
            continue
        folder = corpus / wheel.folder
        if (folder / MARKER).is_file() and not force:
            record = json.loads((folder / MARKER).read_text())
            print(f"{wheel.folder}: exists ({record['source']})", flush=True)
        else:
            print(f"{wheel.folder}:", flush=True)
            path = download(wheel, wheels_dir)
            tmp = _fresh(folder)
            files, size = unpack_wheel(path, tmp)
            record = {"folder": wheel.folder, "version": wheel.version, "pin": wheel.requirement,
                      "source": path.name, "files": files, "bytes": size}
            _finish(tmp, folder, record)
        rows.append(record)
    for inst in INSTALLED:
        if only and inst.folder not in only:
            continue
        folder = corpus / inst.folder
        pin = installed_version(inst.module)
        if (folder / MARKER).is_file() and not force:
            record = json.loads((folder / MARKER).read_text())
            print(f"{inst.folder}: exists ({record['source']})", flush=True)
            if record["pin"] != pin:
                print(f"  note: copied from {record['pin']}, now installed {pin}: use --force to recopy")
        else:
            src = installed_dir(inst.module)
            print(f"{inst.folder}: copying from {src}", flush=True)
            tmp = _fresh(folder)
            files, size = copy_py_tree(src, tmp / inst.module)
            record = {"folder": inst.folder, "version": pin.split("==")[-1], "pin": pin,
                      "source": f"installed {pin} ({src})", "files": files, "bytes": size}
            _finish(tmp, folder, record)
        rows.append(record)
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="where to build (default: benchmarks/corpus)")
    ap.add_argument("--only", action="append", choices=ALL_FOLDERS, help="build only this package (repeatable)")
    ap.add_argument("--force", action="store_true", help="rebuild folders that exist")
    args = ap.parse_args(argv)
    rows = build(args.corpus, set(args.only) if args.only else None, args.force)
    print()
    print(format_rows(rows))
    print()
    print("pins: " + " ".join(r["pin"] for r in rows))
    manifest = args.corpus / "manifest.json"
    old = json.loads(manifest.read_text()) if manifest.is_file() else {}
    old.update({r["folder"]: r for r in rows})
    manifest.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
