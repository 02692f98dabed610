"""The public API is small and documented: every public name has a docstring with an example, and every
docstring example in the package runs (doctest)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import math
import os
import pkgutil

import pytest
import torch

import timm_aa
import timm_aa.layers

MODULES = sorted(m.name for m in pkgutil.walk_packages(timm_aa.__path__, "timm_aa.")
                 if not m.name.endswith("triton_kernels"))  # Triton kernels: tests/test_backends.py


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
