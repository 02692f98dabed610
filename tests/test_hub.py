"""Hub integration: pretrained tags, offline Hub cache loading in timm and transformers, cards, publishing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import timm
import torch
from hub_server import FakeHub
from safetensors.torch import load_file

import timm_aa
from timm_aa.hub import CardInfo, VerificationError, prepare_folder, write_export
from timm_aa.hub.publish import Source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISH = os.path.join(ROOT, "scripts", "publish.py")
ORG = "test-org"


def test_pretrained_tags():
    tags = timm.list_pretrained("*_aa*")
    assert "resnet50_aa.zhang_lpf4_ft_in1k" in tags and "resnet18_aa.zhang_lpf3_in1k" in tags
    assert "alexnet_aa.zhang_lpf5_in1k" in tags and "mobilenetv2_100_aa.zhang_lpf2_in1k" in tags
    cfg = timm.models.get_pretrained_cfg("resnet50_aa")  # the default tag = pretrained=True's choice
    assert cfg.tag == "zhang_lpf4_ft_in1k" and cfg.hf_hub_id == "timm-aa/resnet50_aa.zhang_lpf4_ft_in1k"
    assert cfg.license == "cc-by-nc-sa-4.0" and cfg.paper_ids == "arXiv:1904.11486"
    assert cfg.crop_pct == 0.875 and cfg.interpolation == "bilinear" and cfg.origin_url
    assert timm.create_model("resnet18_aa.zhang_lpf3_in1k")._model_args["filt_size"] == 3
    with pytest.raises(ValueError, match="filter size 3, but filt_size=5"):
        timm.create_model("resnet18_aa.zhang_lpf3_in1k", pretrained=True, filt_size=5)


def _cache_repo(cache: str, repo_id: str, folder: str) -> None:
    """Lay ``folder`` out as a snapshot of ``repo_id`` in an HF_HUB_CACHE."""
    base = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    snapshot = os.path.join(base, "snapshots", "c" * 40)
    shutil.copytree(folder, snapshot)
    os.makedirs(os.path.join(base, "refs"), exist_ok=True)
    with open(os.path.join(base, "refs", "main"), "w") as f:
        f.write("c" * 40)


OFFLINE_SCRIPT = r"""
import json, sys, numpy as np, torch, timm, timm_aa
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification, pipeline

repo, weights = sys.argv[1], load_file(sys.argv[2])
out = {}
for name, model in [("default", timm.create_model("resnet50_aa", pretrained=True)),
                    ("hf-hub", timm.create_model(f"hf-hub:{repo}", pretrained=True))]:
    sd = model.state_dict()
    out[name] = all(torch.equal(sd[k], weights[k]) for k in weights) and sd.keys() == weights.keys()
model = model.eval()
x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
hf = AutoModelForImageClassification.from_pretrained(repo).eval()
with torch.no_grad():
    out["hf_diff"] = (hf(pixel_values=x).logits - model(x)).abs().max().item()
image = Image.fromarray((np.random.default_rng(0).random((256, 300, 3)) * 255).astype("uint8"))
top = pipeline("image-classification", model=repo)(image, top_k=1)[0]
cfg = timm.data.resolve_model_data_config(model)
with torch.no_grad():
    logits = model(timm.data.create_transform(**cfg, is_training=False)(image)[None])
out["pipeline_label"], out["timm_label"] = top["label"], model.pretrained_cfg["label_names"][logits.argmax().item()]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_offline_hub_cache_loads_in_timm_and_transformers(tmp_path):
    torch.manual_seed(0)
    model = timm.create_model("resnet50_aa")
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    labels = [f"class_{i}" for i in range(1000)]
    export = write_export(model, str(tmp_path / "export"), label_names=labels)
    repo = f"{ORG}/resnet50_aa.zhang_lpf4_ft_in1k"
    cache = str(tmp_path / "hub-cache")
    _cache_repo(cache, repo, export)
    env = {**os.environ, "HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1", "TIMM_AA_HUB_ORG": ORG,
           "HF_HOME": str(tmp_path / "hf-home")}
    r = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, repo, os.path.join(export, "model.safetensors")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["default"] and out["hf-hub"]
    assert out["hf_diff"] <= 1e-5
    assert out["pipeline_label"] == out["timm_label"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    torch.manual_seed(1)
    model = timm.create_model("resnet18_aa", num_classes=3, filt_size=3)
    folder = str(tmp_path_factory.mktemp("exp") / "export")
    write_export(model, folder, label_names=["cat", "dog", "fox"],
                 metrics={"val/top1": 91.5, "val/consistency": 88.25, "epochs": 3})
    return folder


def test_prepare_folder_card_and_round_trip(export_dir, tmp_path):
    prepared = prepare_folder(export_dir, str(tmp_path / "hub"), CardInfo("me/resnet18_aa.pets", dataset="pets"))
    assert prepared.diffs["timm"] <= 1e-5 and prepared.diffs["transformers"] <= 1e-5
    assert sorted(os.listdir(prepared.folder)) == [".timm-aa-publish.json", ".timm-aa.lock", "README.md",
                                                   "config.json", "model.safetensors"]
    card = (tmp_path / "hub" / "README.md").read_text()
    for text in ("library_name: timm", "pipeline_tag: image-classification", "model-index", "value: 91.5",
                 "shift-consistency", "hf-hub:me/resnet18_aa.pets", "from_pretrained('me/resnet18_aa.pets')",
                 "filter size 3", "zhang2019shiftinvar", "license: apache-2.0"):
        assert text in card, text
    config = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert "num_classes" not in config["model_args"] and config["model_args"]["filt_size"] == 3
    assert "tag" not in config["pretrained_cfg"]  # not Zhang's weights


def test_card_metrics_from_a_consistency_report(export_dir, tmp_path):
    report = {"schema": "timm-aa/consistency/1", "results": [
        {"model": "local-dir:x", "architecture": "resnet18_aa", "protocol": "random", "consistency": 90.0,
         "accuracy": 80.0, "num_images": 100, "resize": 256, "crop": 224, "passes": 5},
        {"model": "local-dir:x", "architecture": "resnet18_aa", "protocol": "circular", "consistency": 95.0,
         "accuracy": 80.0, "num_images": 100, "resize": 256, "crop": 224, "passes": 5}]}
    path = tmp_path / "consistency.json"
    path.write_text(json.dumps(report))
    prepare_folder(export_dir, str(tmp_path / "hub"), CardInfo("me/r18"), eval_json=str(path))
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "shift-consistency-circular" in card and "value: 95.0" in card and "value: 80.0" in card


def test_unreproducible_model_is_refused(tmp_path):
    """antialias() on a plain timm name: config.json would rebuild the un-blurred model."""
    model = timm_aa.antialias(timm.create_model("resnet18", num_classes=3))
    with pytest.raises(VerificationError, match="does not reproduce"):
        prepare_folder(Source(model), str(tmp_path / "hub"), CardInfo("me/x"))
    assert not (tmp_path / "hub").exists()


def _publish(args, hub_url, token="hf_SECRETtoken123456", tmp_path=None):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_ENDPOINT=hub_url, HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(tmp_path / "hf-home"),
               HF_HUB_DISABLE_XET="1")
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, PUBLISH, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_push_one_commit_force_and_refusals(export_dir, tmp_path):
    token = "hf_SECRETtoken123456"
    args = ["--model", export_dir, "--output", str(tmp_path / "hub"), "--repo-id", "me/resnet18_aa.pets"]
    with FakeHub() as hub:
        r = _publish(args, hub.url, tmp_path=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        assert token not in r.stdout + r.stderr
        assert len(hub.commits) == 1
        commit = hub.commits[0]
        assert commit["repo"] == "me/resnet18_aa.pets"
        assert sorted(commit["files"]) == ["README.md", "config.json", "model.safetensors"]
        for name, data in commit["files"].items():
            assert data == (tmp_path / "hub" / name).read_bytes()
        writes = [q for q in hub.requests if any(k in q["path"] for k in ("/repos/create", "/preupload/", "/commit/"))]
        assert len(writes) == 3 and all(q["headers"].get("authorization") == f"Bearer {token}" for q in writes)

        again = _publish(args, hub.url, tmp_path=tmp_path)
        assert again.returncode == 2 and "already has model.safetensors" in again.stderr
        assert len(hub.commits) == 1 and token not in again.stdout + again.stderr

        forced = _publish([*args, "--force", "--revision", "main"], hub.url, tmp_path=tmp_path)
        assert forced.returncode == 0, forced.stderr[-3000:]
        assert len(hub.commits) == 2

        before = len(hub.requests)
        dry = _publish(args, hub.url, token=None, tmp_path=tmp_path)
        assert dry.returncode == 0 and "dry run (no token)" in dry.stdout
        assert len(hub.requests) == before  # nothing sent without a token


def test_publish_bad_input(tmp_path):
    with FakeHub() as hub:
        (tmp_path / "not-an-export").mkdir()
        r = _publish(["--model", str(tmp_path / "not-an-export"), "--output", str(tmp_path / "o")], hub.url,
                     tmp_path=tmp_path)
        assert r.returncode == 2 and "not an export folder" in r.stderr
        r = _publish(["--model", "resnet18x_aa", "--output", str(tmp_path / "o")], hub.url, tmp_path=tmp_path)
        assert r.returncode == 2 and "did you mean" in r.stderr
        assert hub.requests == []


@pytest.mark.slow
def test_convert_zhang_script(tmp_path):
    antialiased_cnns = pytest.importorskip("antialiased_cnns")
    from conftest import randomize_batchnorm

    ref = randomize_batchnorm(antialiased_cnns.resnet18(filter_size=3))
    path = tmp_path / "resnet18_lpf3.pth"  # a name without his hash suffix: nothing to check it against
    torch.save({"state_dict": ref.state_dict()}, path)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_zhang.py"), str(path), "--output",
                        str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    diff = float(re.search(r"vs antialiased-cnns ([0-9.e+-]+)", r.stdout).group(1))
    assert diff <= 1e-5  # the fast blur sums in another order than Zhang's conv: float32 rounding only
    folder = tmp_path / "out" / "resnet18_aa.zhang_lpf3_in1k"
    config = json.loads((folder / "config.json").read_text())
    assert config["pretrained_cfg"]["tag"] == "zhang_lpf3_in1k" and config["model_args"]["filt_size"] == 3
    assert config["pretrained_cfg"]["license"] == "cc-by-nc-sa-4.0"
    ours = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-4)
    assert load_file(str(folder / "model.safetensors")).keys() == ours.state_dict().keys()
    bad = tmp_path / "notzhang.pth"
    bad.write_bytes(b"x")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_zhang.py"), str(bad), "--output",
                        str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "not named like Zhang's" in r.stderr
