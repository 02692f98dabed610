"""scripts/train.py and timm_aa.training against untrusted checkpoints and bad settings (issue 14, points 3, 5
and 9): a pickled payload in a checkpoint never runs, explicit values are never replaced by defaults, and an
output or input size that cannot work is refused before training starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import load_file

from timm_aa.hub import save_weights
from timm_aa.infra.layout import EMA_WEIGHTS as EMA_FILE
from timm_aa.infra.layout import TRAINER_STATE as STATE_FILE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "scripts", "train.py")
FAST = ["--model", "resnet18_aa", "--input-size", "32", "--crop-pct", "0.8", "--batch-size", "8", "--aug", "shift",
        "--no-progress"]


def _train(argv, capsys):
    """scripts/train.py in-process: (exit code, stdout, stderr)."""
    from train import main  # scripts/ is on sys.path via conftest

    code = main(argv)
    out, err = capsys.readouterr()
    if code == 2:
        assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1 and "Traceback" not in err
    return code, out, err


def _subprocess(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, TRAIN, *args], capture_output=True, text=True, env=env, timeout=600)


class Payload:
    """Unpickling this runs a shell command: what a malicious checkpoint file would carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.slow
def test_a_checkpoint_never_runs_pickled_code(digits_folder, tmp_path):
    """Issue 14, point 3: accelerate unpickles custom_checkpoint_*.pkl in full; we never let it read one, keep our
    own state as JSON / safetensors, and refuse files that hold more than tensors."""
    out = tmp_path / "run"
    first = _subprocess([*FAST, "--data", str(digits_folder), "--output", str(out), "--epochs", "1", "--ema"])
    assert first.returncode == 0, first.stderr[-3000:]
    ckpt = out / "checkpoints" / "epoch-0000"
    state = json.loads((ckpt / STATE_FILE).read_text())
    assert {"epoch", "global_step", "metrics", "scheduler", "gumbel"} <= state.keys()
    assert load_file(str(ckpt / EMA_FILE)) and not list(ckpt.glob("custom_checkpoint_*"))

    marker = tmp_path / "pwned"
    torch.save(Payload(marker), ckpt / "custom_checkpoint_0.pkl")  # what accelerate would unpickle in full
    resume = [*FAST, "--data", str(digits_folder), "--output", str(out), "--resume", str(ckpt), "--epochs", "2",
              "--ema"]
    refused = _subprocess(resume)
    assert refused.returncode == 2 and "holds custom_checkpoint_0.pkl" in refused.stderr, refused.stderr[-2000:]
    assert not marker.exists()
    (ckpt / "custom_checkpoint_0.pkl").unlink()
    resumed = _subprocess(resume)
    assert resumed.returncode == 0 and "resumed from" in resumed.stderr, resumed.stderr[-3000:]

    for name in ("random_states_0.pkl", "optimizer.bin"):  # read with weights_only=True: refused, not run
        original = (ckpt / name).read_bytes()
        torch.save(Payload(marker), ckpt / name)
        r = _subprocess([*FAST, "--data", str(digits_folder), "--output", str(tmp_path / name), "--resume", str(ckpt),
                         "--epochs", "2"])
        assert r.returncode == 2 and f"--resume {ckpt}: cannot load the checkpoint" in r.stderr, r.stderr[-2000:]
        assert not marker.exists(), name
        (ckpt / name).write_bytes(original)


@pytest.mark.parametrize("flag, value, message", [
    ("--epochs", "0", "--epochs 0: must be an int in 1..100000"),
    ("--batch-size", "0", "--batch-size 0: must be an int in 1..65536"),
    ("--lr", "-0.1", "--lr -0.1: must be a finite number in [0, 10]"),
    ("--grad-accum", "0", "--grad-accum 0: must be an int in 1..1024"),
])
@pytest.mark.parametrize("mode", ["train", "demo"])
def test_an_explicit_zero_is_refused_not_replaced(digits_folder, tmp_path, capsys, flag, value, message, mode):
    """Issue 14, point 5: `a.epochs or 10` turned --epochs 0 into 10 epochs."""
    data = ["--data", str(digits_folder)] if mode == "train" else []
    code, _, err = _train([*data, "--output", str(tmp_path / "run"), flag, value], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.slow
def test_lr_zero_is_honoured(digits_folder, tmp_path, capsys):
    """--lr 0 trains with a learning rate of 0 (BatchNorm statistics still move); it used to mean 1e-3."""
    torch.manual_seed(0)
    init = timm.create_model("resnet18_aa", num_classes=3)
    save_weights(init, str(tmp_path / "init.safetensors"))
    code, out, err = _train([*FAST, "--data", str(digits_folder), "--output", str(tmp_path / "run"), "--epochs", "1",
                             "--lr", "0", "--init-from", str(tmp_path / "init.safetensors")], capsys)
    assert code == 0, err
    trained = load_file(str(tmp_path / "run" / "export" / "model.safetensors"))
    for name, param in init.named_parameters():
        assert torch.equal(trained[name], param.detach()), name
    assert not torch.equal(trained["bn1.running_mean"], init.bn1.running_mean)  # it did train


def test_an_unwritable_output_is_refused_before_training(digits_folder, unwritable, capsys):
    code, _, err = _train([*FAST, "--data", str(digits_folder), "--output", str(unwritable / "run")], capsys)
    assert code == 2 and f"--output {unwritable / 'run'} is not writable" in err


def test_a_user_export_folder_in_the_output_is_refused_before_training(digits_folder, tmp_path, capsys):
    (tmp_path / "run" / "export").mkdir(parents=True)
    (tmp_path / "run" / "export" / "thesis.tex").write_text("mine")
    code, _, err = _train([*FAST, "--data", str(digits_folder), "--output", str(tmp_path / "run")], capsys)
    assert code == 2 and "export/thesis.tex" in err
    assert os.listdir(tmp_path / "run") == ["export"]


@pytest.mark.parametrize("flag, value, message", [
    ("--opt", "adamq", "--opt adamq: Optimizer adamq not found in registry"),
    ("--sched", "plateau", "--sched plateau: Plateau LR only supports step per epoch."),
])
def test_unknown_optimizer_or_schedule_is_one_line(digits_folder, tmp_path, capsys, flag, value, message):
    code, _, err = _train([*FAST, "--data", str(digits_folder), "--output", str(tmp_path / "run"), flag, value],
                          capsys)
    assert code == 2 and message in err, err


def test_a_vit_at_an_input_size_it_cannot_take_is_one_line(digits_folder, tmp_path, capsys):
    code, _, err = _train(["--model", "vit_tiny_patch16_224", "--input-size", "32", "--batch-size", "8", "--data",
                           str(digits_folder), "--output", str(tmp_path / "run"), "--no-progress"], capsys)
    assert code == 2
    assert "--input-size 32: vit_tiny_patch16_224 cannot take 32x32 images" in err and "224x224" in err
