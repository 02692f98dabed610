"""docs/reliability.md names a test for each bad input it lists: every test it names must exist."""

from __future__ import annotations

import ast
import doctest
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


MODULES = ["timm_aa.cli", "timm_aa._io", "timm_aa.errors", "timm_aa.input_check", "timm_aa.data.sources",
           "timm_aa.hub.card", "timm_aa.hub.card_info", "timm_aa.hub.export", "timm_aa.hub.output", "timm_aa.hub.push",
           "timm_aa.consistency.settings", "timm_aa.consistency.report", "timm_aa.consistency.evaluate",
           "timm_aa.training.config", "timm_aa.training.demo_recipe", "timm_aa.training.checkpoints",
           "timm_aa.quickstart"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
