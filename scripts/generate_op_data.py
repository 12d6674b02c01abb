#!/usr/bin/env python
"""Regenerate tfgradlint/data/op_types.json from the installed TensorFlow.

    python scripts/generate_op_data.py            # write the package data file
    python scripts/generate_op_data.py --stdout   # print the JSON instead
    python scripts/generate_op_data.py -o FILE    # write FILE

Sources (TensorFlow's own registries, after ``import tensorflow``):

- op types: every OpDef in the process-wide C++ op registry
  (``TF_GetAllOpList``), united with the names exported as ``tf.raw_ops``;
- gradients: the keys of ``tensorflow.python.framework.ops.gradient_registry`` (the
  registry ``tf.RegisterGradient`` and ``tf.no_gradient`` write to). ``import tensorflow``
  imports nearly all ``*_grad`` modules; every other non-test module of the tensorflow
  package whose source registers gradients is imported as well, so the list is complete.
  Op types registered as not differentiable (gradient function None) are listed
  separately too (they are also in ``ops_with_gradient``: a registration exists).

The output is deterministic (sorted lists, fixed key order), so tests/test_opdata.py can
compare a fresh run with the shipped file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tfgradlint" / "data" / "op_types.json"

_REGISTERS = re.compile(r"\b(RegisterGradient|NotDifferentiable|no_gradient|NoGradient)\(\s*[\"']")
_TEST_PARTS = ("kernel_tests", "testing", "test_util", "compiler/tests")


def _is_test_module(rel: str) -> bool:
    name = os.path.basename(rel)
    if name.endswith("_test.py") or name.startswith("test_") or name.endswith("_test_util.py"):
        return True
    return any(part in rel.replace(os.sep, "/") for part in _TEST_PARTS)


def _import_gradient_modules(tf_root: str) -> list[str]:
    """Import the non-test tensorflow modules that register gradients and are not loaded."""
    imported = []
    for dirpath, dirnames, filenames in os.walk(tf_root):
        dirnames.sort()
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = os.path.join(dirpath, filename)
            rel = os.path.relpath(path, tf_root)
            if _is_test_module(rel):
                continue
            try:
                with open(path, encoding="utf-8") as handle:
                    source = handle.read()
            except (OSError, UnicodeDecodeError):
                continue
            if not _REGISTERS.search(source):
                continue
            module = "tensorflow." + rel[: -len(".py")].replace(os.sep, ".")
            if module.endswith(".__init__"):
                module = module[: -len(".__init__")]
            if module in sys.modules:
                continue
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - optional modules may need extra deps
                continue
            imported.append(module)
    return imported


def collect() -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api
    from tensorflow.python.framework import ops

    _import_gradient_modules(os.path.dirname(tf.__file__))

    buffer = c_api.TF_GetAllOpList()
    try:
        op_list = op_def_pb2.OpList()
        op_list.ParseFromString(c_api.TF_GetBuffer(buffer))
    finally:
        c_api.TF_DeleteBuffer(buffer)
    op_types = {op.name for op in op_list.op}
    op_types.update(name for name in dir(tf.raw_ops) if not name.startswith("_"))

    registry = ops.gradient_registry
    with_gradient = {str(name) for name in registry.list()}
    not_differentiable = {name for name in with_gradient if registry.lookup(name) is None}

    return {
        "tensorflow_version": tf.__version__,
        "generated_by": "scripts/generate_op_data.py",
        "op_types": sorted(op_types),
        "ops_with_gradient": sorted(with_gradient),
        "ops_not_differentiable": sorted(not_differentiable),
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args(argv)
    text = render(collect())
    if args.stdout:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
