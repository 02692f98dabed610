"""pretrained=True for Zhang's tags: Hub, then his file on disk, then his URL; converted, cached, one clear error.

A local HTTP server stands in for the Hub and for his S3 bucket; his files are made here exactly as he made
them (``torch.save({'state_dict': ...})`` of his package's model) and named with the real SHA-256 prefix of
the bytes written, and the release table is pointed at those names.
"""

from __future__ import annotations

import dataclasses
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
from hub_server import FakeHub
from PIL import Image
from safetensors.torch import save_file

import timm_aa
from timm_aa.errors import TimmAAError
from timm_aa.models import _zhang_releases as releases
from timm_aa.models._zhang_releases import ZHANG_URL_ENV
from timm_aa.models._zhang_sources import ZHANG_DIR_ENV, converted_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "resnet18_aa"
HUB_REPO = f"timm-aa/{MODEL}.zhang_lpf4_ft_in1k"
URL_PATH = "/weights_v0.1/"


@dataclasses.dataclass
class His:
    """One of Zhang's files as he released it: his model, the file's bytes, its exact name."""

    model: torch.nn.Module
    data: bytes
    filt_size: int
    finetuned: bool

    @property
    def prefix(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:8]

    @property
    def name(self) -> str:
        return f"resnet18_lpf{self.filt_size}{'_finetune' if self.finetuned else ''}-{self.prefix}.pth"

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x)


def _his(filt_size: int, finetuned: bool, seed: int) -> His:
    torch.manual_seed(seed)
    model = randomize_batchnorm(antialiased_cnns.resnet18(filter_size=filt_size), seed=seed)
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict()}, buf)
    return His(model, buf.getvalue(), filt_size, finetuned)


@pytest.fixture(scope="module")
def his_ft() -> His:
    return _his(4, True, seed=1)


@pytest.fixture(scope="module")
def his_lpf3() -> His:
    return _his(3, False, seed=2)


X = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))


def _max_diff(model: torch.nn.Module, his: His) -> float:
    with torch.no_grad():
        return (model.eval()(X) - his.logits(X)).abs().max().item()


class World:
    """Hub and S3 stand-in, a temporary torch hub folder and Hub cache, and the release table pointed at files."""

    def __init__(self, hub: FakeHub, tmp_path, monkeypatch) -> None:
        self.hub, self.tmp, self.mp = hub, tmp_path, monkeypatch
        self.checkpoints = str(tmp_path / "torch" / "hub" / "checkpoints")

    def release(self, *files: His) -> None:
        """Point the release table's resnet18 entries at these files' hash prefixes."""
        table = []
        for row in releases.ZHANG_RELEASES:
            if row.arch == "resnet18":
                ft = next((f.prefix for f in files if f.finetuned), row.finetuned)
                scratch = {**row.scratch, **{f.filt_size: f.prefix for f in files if not f.finetuned}}
                row = dataclasses.replace(row, finetuned=ft, scratch=scratch)
            table.append(row)
        self.mp.setattr(releases, "ZHANG_RELEASES", tuple(table))

    def put(self, his: His, folder: str | None = None, data: bytes | None = None) -> str:
        folder = folder or self.checkpoints
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, his.name)
        with open(path, "wb") as f:
            f.write(his.data if data is None else data)
        return path

    def serve(self, his: His, code: int = 200, data: bytes | None = None) -> None:
        self.hub.routes[URL_PATH + his.name] = (code, his.data if data is None else data)

    def requests(self, kind: str | None = None) -> list[str]:
        paths = [r["path"] for r in self.hub.requests]
        if kind == "hub":
            return [p for p in paths if "/resolve/" in p]
        if kind == "url":
            return [p for p in paths if p.startswith(URL_PATH)]
        return paths

    def offline(self) -> None:
        from huggingface_hub import constants

        self.mp.setenv("HF_HUB_OFFLINE", "1")
        self.mp.setattr(constants, "HF_HUB_OFFLINE", True)

    def env(self) -> dict[str, str]:
        """The same world for a subprocess."""
        env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
        env.update(HF_ENDPOINT=self.hub.url, HF_HUB_CACHE=str(self.tmp / "hf"), HF_HOME=str(self.tmp / "hf-home"),
                   TORCH_HOME=str(self.tmp / "torch"), HF_HUB_DISABLE_XET="1", OMP_NUM_THREADS="1",
                   **{ZHANG_URL_ENV: self.hub.url + URL_PATH})
        return env


@pytest.fixture
def world(tmp_path, monkeypatch):
    from huggingface_hub import constants

    with FakeHub() as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        monkeypatch.setenv(ZHANG_URL_ENV, hub.url + URL_PATH)
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", ZHANG_DIR_ENV):
            monkeypatch.delenv(name, raising=False)
        yield World(hub, tmp_path, monkeypatch)


def test_release_table_is_his(world):
    """Every file his package downloads is in our table under the same name and URL, and nothing else is."""
    import importlib

    his = {}
    for module in ("alexnet", "densenet", "mobilenet", "resnet", "vgg"):
        his.update(importlib.import_module(f"antialiased_cnns.{module}").model_urls)
    world.mp.delenv(ZHANG_URL_ENV)
    ours = {f.url for r in releases.ZHANG_RELEASES for f in r.files}
    assert ours == set(his.values()) and len(ours) == 59
    tags = {f"{f.model}.{f.tag}" for r in releases.ZHANG_RELEASES for f in r.files}
    listed = set(timm.list_pretrained("*_aa*")) - set(timm.list_pretrained("mobilenetv4*"))
    assert listed == tags  # every tag timm lists has a file behind it
    cfg = timm.models.get_pretrained_cfg("resnet50_aa")
    assert cfg.hf_hub_id == "timm-aa/resnet50_aa.zhang_lpf4_ft_in1k" and "cad66808" in cfg.description


def test_hub_is_tried_first(world, his_ft):
    world.release(his_ft)
    ours = timm_aa.from_zhang(his_ft.model.state_dict(), "resnet18")
    buf = {k: v.contiguous() for k, v in ours.state_dict().items()}
    path = world.tmp / "hub.safetensors"
    save_file(buf, str(path))
    world.hub.files[HUB_REPO] = {"model.safetensors": path.read_bytes()}
    world.serve(his_ft, 403)
    model = timm.create_model(MODEL, pretrained=True)
    assert _max_diff(model, his_ft) <= 1e-4
    assert world.requests("hub") and not world.requests("url")  # his URL was never needed
    assert not os.path.exists(converted_path(releases.zhang_file(MODEL, "zhang_lpf4_ft_in1k")))


def test_his_file_in_the_torch_hub_folder_then_the_cache(world, his_ft):
    world.release(his_ft)
    world.put(his_ft)
    model = timm.create_model(MODEL, pretrained=True)
    assert _max_diff(model, his_ft) <= 1e-4
    assert world.requests("hub") and not world.requests("url")  # the Hub (404), then his file: no URL
    cached = converted_path(releases.zhang_file(MODEL, "zhang_lpf4_ft_in1k"))
    assert os.path.isfile(cached) and not [f for f in os.listdir(os.path.dirname(cached)) if f.startswith(".tmp")]
    os.unlink(os.path.join(world.checkpoints, his_ft.name))
    before = len(world.hub.requests)
    again = timm.create_model(MODEL, pretrained=True)
    assert len(world.hub.requests) == before  # the second load makes no network request
    assert _max_diff(again, his_ft) <= 1e-4


def test_his_file_in_the_zhang_dir_with_a_new_head(world, his_ft):
    world.release(his_ft)
    folder = str(world.tmp / "his-files")
    world.put(his_ft, folder)
    world.mp.setenv(ZHANG_DIR_ENV, folder)
    model = timm.create_model(MODEL, pretrained=True, num_classes=7)
    assert model.fc.out_features == 7
    ref = his_ft.model.state_dict()
    assert torch.equal(model.state_dict()["layer4.1.bn2.running_var"], ref["layer4.1.bn2.running_var"])
    assert torch.equal(model.state_dict()["layer3.0.downsample.0.weight"], ref["layer3.0.downsample.1.weight"])


def test_his_url_downloads_checks_and_caches(world, his_ft):
    world.release(his_ft)
    world.serve(his_ft)
    model = timm.create_model(MODEL, pretrained=True)
    assert _max_diff(model, his_ft) <= 1e-4
    assert world.requests("url") == [URL_PATH + his_ft.name]
    before = len(world.hub.requests)
    timm.create_model(MODEL, pretrained=True)
    assert len(world.hub.requests) == before
    leftovers = [f for _, _, files in os.walk(world.tmp / "torch") for f in files if f.startswith(".tmp")]
    assert leftovers == []


def _error(**kwargs) -> str:
    with pytest.raises(TimmAAError) as info:
        timm.create_model(MODEL, pretrained=True, **kwargs)
    assert info.value.__cause__ is None and info.value.__context__ is None  # no Hub-client traceback under it
    return str(info.value)


def test_all_failing_gives_one_clear_error(world, his_ft):
    world.release(his_ft)
    world.serve(his_ft, 403)
    message = _error()
    assert f"timm-aa/{MODEL}.zhang_lpf4_ft_in1k: 404 (no such repository)" in message
    assert f"{os.path.join(world.checkpoints, his_ft.name)}: not found" in message
    assert f"{world.hub.url}{URL_PATH}{his_ft.name}: HTTP 403" in message
    assert f"put his file {his_ft.name} into {world.checkpoints}" in message
    assert "timm_aa.from_zhang(path, 'resnet18', filt_size=4)" in message and "Traceback" not in message
    assert not os.path.exists(converted_path(releases.zhang_file(MODEL, "zhang_lpf4_ft_in1k")))


def test_corrupted_files_are_refused_never_loaded(world, his_ft):
    world.release(his_ft)
    corrupt = bytearray(his_ft.data)
    corrupt[len(corrupt) // 2] ^= 0xFF
    world.put(his_ft, data=bytes(corrupt))
    world.serve(his_ft, 200, bytes(corrupt))
    message = _error()
    assert message.count("hash mismatch") == 2 and "refused" in message
    assert not os.path.exists(converted_path(releases.zhang_file(MODEL, "zhang_lpf4_ft_in1k")))


def test_files_not_in_his_format_are_refused(world, his_ft):
    for payload in ({"weights": his_ft.model.state_dict()}, {"state_dict": {"fc.weight": torch.zeros(2, 2)}},
                    {"state_dict": {}, "obj": object()}):
        buf = io.BytesIO()
        torch.save(payload, buf)
        fake = dataclasses.replace(his_ft, data=buf.getvalue())
        world.release(fake)
        world.put(fake)
        message = _error()
        assert f"{fake.name}: not his format" in message, message
        os.unlink(os.path.join(world.checkpoints, fake.name))


def test_offline_error_is_fast_and_names_the_fix(world, his_ft):
    world.release(his_ft)
    world.offline()
    start = time.perf_counter()
    message = _error()
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed
    assert world.requests() == []  # no network attempt at all
    assert "offline (HF_HUB_OFFLINE=1) and not in the Hub cache" in message
    assert "skipped: offline" in message and f"put his file {his_ft.name}" in message
    world.put(his_ft)  # his file on disk works offline
    assert _max_diff(timm.create_model(MODEL, pretrained=True), his_ft) <= 1e-4
    assert world.requests() == []


def test_without_a_network_it_fails_in_seconds_and_says_hf_hub_offline(world, his_ft):
    """Issue 20, case 12: on an air-gapped machine (HF_HUB_OFFLINE unset) the Hub client's retries took 27 s before
    our error. One bounded request finds there is no network; the Hub cache, his file on disk still work."""
    from huggingface_hub import constants

    world.release(his_ft)
    world.mp.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: as without a network
    start = time.perf_counter()
    message = _error()
    assert time.perf_counter() - start < 3.0
    assert "no network (http://127.0.0.1:9 did not answer" in message and "HF_HUB_OFFLINE=1" in message, message
    assert "skipped: no network" in message and not world.requests("url")  # his URL is not tried either
    world.put(his_ft)
    assert _max_diff(timm.create_model(MODEL, pretrained=True), his_ft) <= 1e-4


def test_pretrained_cfg_tag_picks_the_filter(world, his_lpf3):
    world.release(his_lpf3)
    world.serve(his_lpf3)
    model = timm.create_model(MODEL, pretrained=True, pretrained_cfg="zhang_lpf3_in1k")
    assert model._model_args["filt_size"] == 3 and model.pretrained_cfg["tag"] == "zhang_lpf3_in1k"
    assert _max_diff(model, his_lpf3) <= 1e-4
    with pytest.raises(TimmAAError, match="filter size 3, but filt_size=4"):
        timm.create_model(f"{MODEL}.zhang_lpf3_in1k", pretrained=True, filt_size=4)


def test_init_from_a_zhang_tag(world, his_ft):
    from timm_aa.training import TrainConfig, build_model

    world.release(his_ft)
    world.put(his_ft)
    model, fresh = build_model(TrainConfig(model=MODEL, init_from=f"{MODEL}.zhang_lpf4_ft_in1k"), num_classes=3)
    assert fresh == ["fc.weight", "fc.bias"]
    ref = timm.create_model(MODEL, pretrained=True).state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items() if not k.startswith("fc."))


def _images(root, splits=("train", "val")) -> str:
    gen = torch.Generator().manual_seed(0)
    for split in splits:
        for label in ("a", "b"):
            os.makedirs(root / split / label, exist_ok=True)
            for i in range(3):
                pixels = (torch.rand(48, 48, 3, generator=gen) * 255).to(torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")
    return str(root)


# the scripts run as they do for users, with the release table pointed at the test's file
WRAPPER = r"""
import dataclasses, os, runpy, sys
from timm_aa.models import _zhang_releases as releases
prefix, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(script))  # as `python scripts/train.py` does
releases.ZHANG_RELEASES = tuple(dataclasses.replace(r, finetuned=prefix) if r.arch == "resnet18" else r
                                for r in releases.ZHANG_RELEASES)
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.slow
def test_train_script_init_from_a_zhang_tag(world, his_ft):
    world.serve(his_ft)
    data = _images(world.tmp / "data")
    args = ["--model", MODEL, "--init-from", f"{MODEL}.zhang_lpf4_ft_in1k", "--data", data, "--output",
            str(world.tmp / "run"), "--epochs", "1", "--input-size", "32", "--batch-size", "6", "--no-progress"]
    r = subprocess.run([sys.executable, "-c", WRAPPER, his_ft.prefix, os.path.join(ROOT, "scripts", "train.py"),
                        *args], capture_output=True, text=True, env=world.env(), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "classifier left freshly initialised" in r.stderr  # a log line
    assert world.requests("url") == [URL_PATH + his_ft.name]
    assert os.listdir(os.path.join(world.checkpoints, "timm_aa")) == [
        f"{MODEL}.zhang_lpf4_ft_in1k-{his_ft.prefix}.safetensors"]


def test_evaluate_script_pretrained(world, his_ft, capsys):
    import evaluate

    world.release(his_ft)
    world.put(his_ft)
    data = _images(world.tmp / "eval", splits=("val",))
    out = world.tmp / "out"
    tag = f"{MODEL}.zhang_lpf4_ft_in1k"
    cached = converted_path(releases.zhang_file(MODEL, "zhang_lpf4_ft_in1k"))
    rc = evaluate.main(["--model", tag, "--pretrained", "--data", os.path.join(data, "val"), "--resize", "64",
                        "--crop", "56", "--passes", "1", "--batch-size", "6", "--output", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rc = evaluate.main(["--model", f"{MODEL}:{cached}", "--data", os.path.join(data, "val"), "--resize", "64",
                        "--crop", "56", "--passes", "1", "--batch-size", "6", "--output", str(world.tmp / "out2"),
                        "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rows = [json.loads((folder / "consistency.json").read_text())["results"][0] for folder in (out, world.tmp / "out2")]
    assert rows[0]["weights"] == "pretrained"
    assert rows[0]["consistency"] == rows[1]["consistency"] and rows[0]["accuracy"] == rows[1]["accuracy"]
    os.unlink(cached)
    os.unlink(os.path.join(world.checkpoints, his_ft.name))
    world.offline()
    capsys.readouterr()  # the log lines of the runs above
    rc = evaluate.main(["--model", tag, "--pretrained", "--data", os.path.join(data, "val"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: no pretrained weights for") and "Traceback" not in err
