"""Training with accelerate: 2-process gloo, SIGKILL + resume equality, --init-from exactness, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import timm
import torch
from conftest import randomize_batchnorm
from safetensors.torch import load_file

from timm_aa.hub import save_weights
from timm_aa.training import TrainConfig, build_model
from timm_aa.training.trackers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "scripts", "train.py")
FAST = ["--model", "resnet18_aa", "--input-size", "32", "--crop-pct", "0.8", "--batch-size", "8", "--aug", "shift",
        "--no-progress", "--lr", "1e-3"]


def _run(args, env=None, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, TRAIN, *args], capture_output=True, text=True, env=env, timeout=600, **kw)


def test_single_process_run_exports_and_logs(digits_folder, tmp_path):
    out = tmp_path / "run"
    r = _run([*FAST, "--data", str(digits_folder), "--output", str(out), "--epochs", "2", "--ema"])
    assert r.returncode == 0, r.stderr[-3000:]
    export = out / "export"
    assert sorted(os.listdir(export)) == ["config.json", "metrics.json", "model.safetensors"]
    config = json.loads((export / "config.json").read_text())
    assert config["architecture"] == "resnet18_aa" and config["num_classes"] == 3
    assert config["label_names"] == ["0", "1", "2"] and "num_classes" not in config.get("model_args", {})
    records = [r for r in read_metrics(str(out)) if "val/top1" in r]
    assert len(records) == 2 and all(r["val/num_unique_samples"] == 15 for r in records)
    assert "val_ema/top1" in records[-1]
    model = timm.create_model(f"local-dir:{export}", pretrained=True)
    assert model.fc.out_features == 3
    assert [os.path.basename(p) for p in sorted((out / "checkpoints").iterdir())] == ["epoch-0000", "epoch-0001"]


@pytest.mark.slow
def test_two_gloo_processes_see_every_val_image_once(digits_folder, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", TRAIN, *FAST,
           "--data", str(digits_folder), "--output", str(out), "--epochs", "1"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    record = [m for m in read_metrics(str(out)) if "val/top1" in m][-1]
    assert record["val/num_samples"] == record["val/num_unique_samples"] == 15  # 15 is odd: padding is dropped


RANK_SCRIPT = """
import json, os, sys
from accelerate import PartialState
from accelerate.launchers import debug_launcher
from timm_aa.training import TrainConfig, train

def run(data, output):
    result = train(TrainConfig(model="resnet18_aa", data=data, output=output, epochs=1, batch_size=4,
                               input_size=32, crop_pct=0.8, aug="shift", progress=False))
    with open(os.path.join(output, f"rank{PartialState().process_index}.json"), "w") as f:
        json.dump(result["history"], f)

if __name__ == "__main__":
    debug_launcher(run, args=(sys.argv[1], sys.argv[2]), num_processes=2)
"""


@pytest.mark.slow
def test_both_ranks_report_the_same_metrics(digits_folder, tmp_path):
    """accelerate's debug_launcher (2 gloo processes), in a fresh interpreter: forking this one is unsafe."""
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "ranks"
    r = subprocess.run([sys.executable, str(script), str(digits_folder), str(out)], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    rank0 = json.loads((out / "rank0.json").read_text())
    rank1 = json.loads((out / "rank1.json").read_text())
    assert rank0 == rank1 and rank0[0]["val/num_unique_samples"] == 15


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_weights(digits_folder, tmp_path):
    args = [*FAST, "--data", str(digits_folder), "--epochs", "3", "--ema", "--seed", "3"]
    full = _run([*args, "--output", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr[-3000:]

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, TRAIN, *args, "--output", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "checkpoints" / "epoch-0000" / "trainer_state.json"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into epoch 1
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "export").exists()
    done = sorted(os.listdir(out / "checkpoints"))
    assert "epoch-0002" not in done

    resumed = _run([*args, "--output", str(out), "--resume", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr  # logged
    a = load_file(str(tmp_path / "full" / "export" / "model.safetensors"))
    b = load_file(str(out / "export" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_init_from_copies_every_tensor(tmp_path):
    base = randomize_batchnorm(timm.create_model("resnet18", num_classes=3), seed=5)
    path = tmp_path / "base.safetensors"
    save_weights(base, str(path))
    model, fresh = build_model(TrainConfig(model="resnet18_aa", init_from=str(path)), num_classes=3)
    assert fresh == []
    ours, ref = model.state_dict(), base.state_dict()
    assert ours.keys() == ref.keys()
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key
    model, fresh = build_model(TrainConfig(model="resnet18_aa", init_from=str(path)), num_classes=5)
    assert fresh == ["fc.weight", "fc.bias"]
    assert torch.equal(model.state_dict()["layer4.1.bn2.running_var"], ref["layer4.1.bn2.running_var"])


def test_init_from_that_does_not_fit(tmp_path):
    path = tmp_path / "r34.safetensors"
    save_weights(timm.create_model("resnet34", num_classes=3), str(path))
    with pytest.raises(ValueError, match="resnet18_aa|do not fit|lack"):
        build_model(TrainConfig(model="resnet18_aa", init_from=f"resnet18:{path}"), num_classes=3)
    path50 = tmp_path / "r50.safetensors"
    save_weights(timm.create_model("resnet50", num_classes=3), str(path50))
    with pytest.raises(ValueError, match="do not fit: 'conv1.weight'|do not fit"):
        build_model(TrainConfig(model="resnet18_aa", init_from=str(path50)), num_classes=3)


def _bad(args, tmp_path):
    fast = FAST[2:] if "--model" in args else FAST  # FAST starts with --model resnet18_aa
    r = _run([*fast, "--epochs", "1", *args])
    assert r.returncode == 2, (r.stdout[-2000:], r.stderr[-2000:])
    return r.stderr


def test_bad_data(digits_folder, tmp_path):
    (tmp_path / "nosplits" / "a").mkdir(parents=True)
    assert "needs train/ and val/" in _bad(["--data", str(tmp_path / "nosplits"), "--output", str(tmp_path / "o")],
                                          tmp_path)
    assert "no data directory" in _bad(["--data", str(tmp_path / "missing"), "--output", str(tmp_path / "o")],
                                       tmp_path)
    broken = tmp_path / "broken"
    for split in ("train", "val"):
        for cls, digit in (("x", "0"), ("y", "1")):  # two classes: one is refused before the images are read
            (broken / split / cls).mkdir(parents=True)
            for name in sorted(os.listdir(digits_folder / split / digit))[:9]:
                (broken / split / cls / name).write_bytes((digits_folder / split / digit / name).read_bytes())
    (broken / "train" / "x" / "bad.png").write_bytes(b"not a png")
    err = _bad(["--data", str(broken), "--output", str(tmp_path / "o2")], tmp_path)
    assert "unreadable image" in err and "bad.png" in err


def test_bad_model_and_resume(digits_folder, tmp_path):
    err = _bad(["--data", str(digits_folder), "--output", str(tmp_path / "o"), "--model", "resnet18_aaa"], tmp_path)
    assert "did you mean 'resnet18_aa'" in err
    err = _bad(["--data", str(digits_folder), "--output", str(tmp_path / "o"), "--resume", "latest"], tmp_path)
    assert "cannot be resumed: it has no timm-aa marker" in err
    err = _bad(["--data", str(digits_folder), "--output", str(tmp_path / "o"), "--resume", str(tmp_path / "nope")],
               tmp_path)
    assert "no checkpoint folder" in err


@pytest.mark.slow
def test_existing_checkpoints_are_never_overwritten(digits_folder, tmp_path):
    out = tmp_path / "run"
    assert _run([*FAST, "--data", str(digits_folder), "--output", str(out), "--epochs", "1"]).returncode == 0
    ckpt = out / "checkpoints" / "epoch-0000"
    before = {p.name: p.stat().st_mtime_ns for p in ckpt.iterdir()}
    err = _bad(["--data", str(digits_folder), "--output", str(out)], tmp_path)
    assert "holds an earlier run's results" in err and "--overwrite" in err
    state = (ckpt / "trainer_state.json").read_text()
    (ckpt / "trainer_state.json").write_text("{broken")
    err = _bad(["--data", str(digits_folder), "--output", str(out), "--resume", str(ckpt)], tmp_path)
    assert "trainer_state.json' is not JSON" in err
    (ckpt / "trainer_state.json").write_text(json.dumps({"epoch": 0, "global_step": 5}))
    err = _bad(["--data", str(digits_folder), "--output", str(out), "--resume", str(ckpt)], tmp_path)
    assert "written by an older timm-aa" in err
    (ckpt / "trainer_state.json").write_text(state)
    (ckpt / "model.safetensors").write_bytes(b"garbage")
    err = _bad(["--data", str(digits_folder), "--output", str(out), "--resume", str(ckpt), "--epochs", "2"], tmp_path)
    assert "cannot be resumed: checkpoints/epoch-0000/model.safetensors changed since timm-aa wrote it" in err
    err = _bad(["--data", str(digits_folder), "--output", str(tmp_path / "new"), "--resume", str(ckpt), "--epochs",
                "2"], tmp_path)
    assert f"--resume {ckpt}: cannot load the checkpoint" in err
    assert set(before) == {p.name for p in ckpt.iterdir()}
