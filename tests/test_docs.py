"""The documentation holds: every public name has a docstring with an example, every docstring example in the
package runs (doctest), and docs/reliability.md names an existing test for each bad input it lists."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import math
import os
import pkgutil
import re

import pytest
import torch

import timm_aa
import timm_aa.layers
from timm_aa.layers._backends import HAS_TRITON

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = sorted(m.name for m in pkgutil.walk_packages(timm_aa.__path__, "timm_aa.")
                 if HAS_TRITON or not m.name.endswith("triton_kernels"))  # examples in Triton's interpreter


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, extraglobs={"torch": torch, "math": math, "os": os}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("package", [timm_aa, timm_aa.layers], ids=["timm_aa", "timm_aa.layers"])
def test_public_names_are_documented_with_an_example(package):
    missing = []
    for name in package.__all__:
        obj = getattr(package, name)
        if inspect.ismodule(obj):
            continue
        if not name or name.startswith("_") or ">>>" not in (inspect.getdoc(obj) or ""):
            missing.append(name)
    assert missing == []


def _tests_in(path: str) -> set[str]:
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def test_every_test_named_in_the_reliability_table_exists():
    with open(os.path.join(ROOT, "docs", "reliability.md")) as f:
        named = re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", f.read())
    assert len(named) > 30
    missing = [f"{path}::{name}" for path, name in named if name not in _tests_in(path)]
    assert missing == []


def test_every_row_of_the_fault_tables_names_a_test():
    with open(os.path.join(ROOT, "docs", "reliability.md")) as f:
        faults = f.read().split("## Bad inputs and faults", 1)[1]
    rows = [line for line in faults.splitlines() if line.startswith("| ") and not line.startswith("| input or fault")]
    assert len(rows) > 30
    assert [r for r in rows if "tests/test_" not in r.rstrip(" |").rsplit("|", 1)[-1]] == []


def test_no_example_is_a_comment_and_nothing_is_deprecated():
    """Issue 21: commented ``>>> #`` examples counted as examples; shims kept names no user had alive."""
    import pathlib

    files = sorted(pathlib.Path(ROOT, "timm_aa").rglob("*.py"))
    assert [str(p) for p in files if ">>> #" in p.read_text()] == []
    assert [str(p) for p in files if "DeprecationWarning" in p.read_text() or "_deprecation" in p.read_text()] == []
