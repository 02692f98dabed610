"""scripts/convert_zhang.py on a folder of his files, then scripts/publish.py on each result (dry run, no token)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time

import antialiased_cnns
import pytest
import timm
import torch
from conftest import randomize_batchnorm

import timm_aa  # noqa: F401  (registers the models)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERT = os.path.join(ROOT, "scripts", "convert_zhang.py")
PUBLISH = os.path.join(ROOT, "scripts", "publish.py")


def _his_file(folder, arch: str, filt_size: int, finetuned: bool, seed: int) -> torch.nn.Module:
    """His model saved as he saved it, under his naming with the real hash prefix of the bytes."""
    model = randomize_batchnorm(getattr(antialiased_cnns, arch)(filter_size=filt_size), seed=seed)
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict()}, buf)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()[:8]
    (folder / f"{arch}_lpf{filt_size}{'_finetune' if finetuned else ''}-{digest}.pth").write_bytes(buf.getvalue())
    return model


def _run(script, *args, env=None):
    env = {**{k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}, **(env or {})}
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env, timeout=600)


def test_help_is_fast():
    start = time.perf_counter()
    r = _run(CONVERT, "--help")
    assert r.returncode == 0 and "--output" in r.stdout
    assert time.perf_counter() - start < 1.0


@pytest.mark.slow
def test_folder_of_his_files_then_publish_each_dry_run(tmp_path):
    his = tmp_path / "his"
    his.mkdir()
    refs = {"resnet18_aa.zhang_lpf4_ft_in1k": _his_file(his, "resnet18", 4, True, seed=1),
            "resnet18_aa.zhang_lpf3_in1k": _his_file(his, "resnet18", 3, False, seed=2)}
    (his / "resnet18_lpf2-0123abcd.pth").write_bytes(b"not the file he released")  # hash mismatch
    noise = os.urandom(3000)
    (his / f"resnet18_lpf5-{hashlib.sha256(noise).hexdigest()[:8]}.pth").write_bytes(noise)  # right hash, not his
    out = tmp_path / "converted"
    r = _run(CONVERT, str(his), "--output", str(out), "--no-progress")
    assert r.returncode == 2, r.stderr[-3000:]
    ok = [line for line in r.stdout.splitlines() if line.startswith("ok ")]
    failed = [line for line in r.stderr.splitlines() if line.startswith("FAILED ")]
    assert len(ok) == 2 and len(failed) == 2, (r.stdout, r.stderr)
    assert all(float(line.split("antialiased-cnns ")[1].rstrip(")")) <= 1e-4 for line in ok)
    assert any("resnet18_lpf2-0123abcd.pth" in f and "hash mismatch" in f for f in failed)
    assert any("resnet18_lpf5-" in f and "not his format" in f for f in failed)
    assert r.stderr.strip().splitlines()[-1] == "error: 2 of 4 files were not converted (see above)"
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == sorted(refs)

    again = _run(CONVERT, str(his / next(f for f in os.listdir(his) if "lpf3" in f)), "--output", str(out))
    assert again.returncode == 2 and "exists (--overwrite replaces it)" in again.stderr

    x = torch.randn(1, 3, 96, 96)
    for name, ref in refs.items():
        folder = out / name
        provenance = json.loads((folder / "metrics.json").read_text())["provenance"]
        assert provenance["released_file"] is False  # made here, not his release: the card must not claim it is
        r = _run(PUBLISH, "--model", str(folder), "--output", str(tmp_path / "hub" / name), "--repo-id",
                 f"timm-aa/{name}", env={"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1"})
        assert r.returncode == 0 and "dry run (no token)" in r.stdout, r.stderr[-3000:]
        card = (tmp_path / "hub" / name / "README.md").read_text()
        assert "license: cc-by-nc-sa-4.0" in card and name in card
        published = timm.create_model(f"local-dir:{tmp_path / 'hub' / name}", pretrained=True).eval()
        with torch.no_grad():
            assert (published(x) - ref(x)).abs().max().item() <= 1e-4
