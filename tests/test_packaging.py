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
