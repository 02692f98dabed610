"""The wheel ships the model card template inside the package, and nothing at the top level but timm_aa."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from timm_aa.hub.card import template_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_template_is_found_from_the_package():
    with open(template_path()) as f, open(os.path.join(ROOT, "hub_cards", "model_card.md")) as g:
        assert f.read() == g.read()  # the shipped template is the repository's hub_cards/ source


@pytest.mark.slow
def test_the_wheel_ships_the_card_template_inside_the_package(tmp_path):
    source = tmp_path / "src"  # a copy, so that the build leaves nothing in the working tree
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "runs", "out", "build", "*.egg-info", "__pycache__", ".*_cache", "docs", "benchmarks"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("timm_aa-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top_level = next(n for n in names if n.endswith("top_level.txt"))
        assert z.read(top_level).decode().split() == ["timm_aa"]
        assert z.read("timm_aa/hub/cards/model_card.md") == open(os.path.join(ROOT, "hub_cards", "model_card.md"),
                                                                  "rb").read()
    assert not [n for n in names if n.startswith("hub_cards/")]


WHEEL_CHECK = """
import os, sys, tempfile
import torch
import timm_aa
from timm_aa.hub.card import template_path
from timm_aa.layers._backends import choose, native
root = sys.argv[1]
assert timm_aa.__file__.startswith(root), timm_aa.__file__  # the unpacked wheel, not the source tree
assert native.SOURCE.is_file() and str(native.SOURCE).startswith(root)
assert native.kernel() is not None, "the CPU kernel did not build from the installed package"
print(choose(torch.zeros(1, 1, 4, 4)), os.path.isfile(template_path()))
"""


@pytest.mark.slow
def test_the_installed_wheel_builds_and_uses_the_cpu_kernel(tmp_path):
    """Issue 20: the wheel lacked blur_kernel.c, so every non-editable CPU install silently ran the reference (3-14x
    slower). Built and unpacked outside the source tree, the package compiles its kernel and chooses it."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "runs", "out", "build", "*.egg-info", "__pycache__", ".*_cache", "docs", "benchmarks", "tests"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("timm_aa-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        shipped = set(z.namelist())
        z.extractall(site)
    tracked = subprocess.run(["git", "ls-files", "timm_aa"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    data = [f for f in tracked if not f.endswith(".py") and not os.path.islink(os.path.join(ROOT, f))]
    assert data and [f for f in data if f not in shipped] == []  # every file the package opens ships
    env = {**os.environ, "PYTHONPATH": str(site), "TIMM_AA_CACHE": str(tmp_path / "cache")}
    env.pop("TIMM_AA_BACKEND", None)
    r = subprocess.run([sys.executable, "-c", WHEEL_CHECK, str(site)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["native", "True"]
