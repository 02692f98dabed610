"""Issue 30, "finite or refused": a run whose loss or weights stop being finite stops in one line naming the epoch,
the step and the likely cause, and saves nothing of the diverged state, in one process or two."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from timm_aa.errors import TimmAAError
from timm_aa.training import TrainConfig, train
from timm_aa.training import loop as training_loop

TINY = dict(model="test_resnet", epochs=2, batch_size=4, input_size=32, crop_pct=0.8, aug="shift", warmup_epochs=0,
            max_train_batches=3, progress=False, log_epochs=False)


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads make these tiny steps 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _saved(out) -> list[str]:
    """What the run left that holds weights: its checkpoints and its export."""
    checkpoints = sorted(os.listdir(out / "checkpoints")) if (out / "checkpoints").is_dir() else []
    return checkpoints + (["export"] if (out / "export").exists() else [])


def _poison(after_calls: int, what: str):
    """A ``build_model`` that breaks the model after ``after_calls`` training forwards: ``loss`` makes that forward's
    logits NaN; ``weights`` sets ``fc.bias`` to inf after that forward (the loss of that step stays finite)."""
    build = training_loop.build_model

    def build_model(cfg, num_classes):
        model, fresh = build(cfg, num_classes)
        calls = [0]

        def hook(module, args, output):
            if not module.training:
                return output
            calls[0] += 1
            if calls[0] == after_calls and what == "loss":
                return output * float("nan")
            if calls[0] == after_calls and what == "weights":
                module.fc.bias.data.fill_(float("inf"))
            return output

        model.register_forward_hook(hook)
        return model, fresh

    return build_model


@pytest.mark.parametrize("settings, cause", [
    (dict(lr=float("inf")), "lr"),
    (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(model="resnet18_lps", gumbel_tau0=0.0, gumbel_min=0.0), "tau"),
])
@pytest.mark.parametrize("route", ["config", "past the config's checks"])
def test_the_reported_non_finite_settings_never_train_or_export(digits_folder, tmp_path, one_thread, settings, cause,
                                                                route):
    """The reported case (`--lr inf`, `--weight-decay nan`, LPS `--gumbel-tau0 0 --gumbel-min 0`: exit 0, 102 of 122
    exported tensors non-finite) through the library: refused up front, or stopped by the loop when the values get
    past the config's checks (set on it afterwards); nothing saved either way."""
    out = tmp_path / "run"
    with pytest.raises(TimmAAError) as err:
        if route == "config":
            cfg = TrainConfig(**{**TINY, "data": str(digits_folder), "output": str(out), **settings})
        else:
            cfg = TrainConfig(**{**TINY, "data": str(digits_folder), "output": str(out), "model": settings.get(
                "model", TINY["model"])})
            for name, value in settings.items():
                setattr(cfg, name, value)
        train(cfg)
    assert "\n" not in str(err.value) and cause in str(err.value), err.value
    assert _saved(out) == []


def test_finite_settings_that_diverge_stop_at_the_step_naming_the_likely_cause(digits_folder, tmp_path, one_thread):
    """Settings inside the bounds table's ranges (lr and weight decay at most 10) can still diverge: SGD at lr 10 with
    weight decay 10 flips and grows every weight on each update."""
    out = tmp_path / "run"
    with pytest.raises(TimmAAError, match=r"^training diverged at epoch 0, step \d: the loss is NaN or infinite; "
                                          r"likely cause: too much weight decay") as err:
        train(TrainConfig(**{**TINY, "max_train_batches": None, "opt": "sgd", "lr": 10.0, "weight_decay": 10.0,
                             "data": str(digits_folder), "output": str(out)}))
    assert "lr=10.0" in str(err.value) and "nothing of this state was saved" in str(err.value)
    assert _saved(out) == [] and not out.exists()  # a first run that diverged in its first epoch leaves nothing


@pytest.mark.parametrize("what, message", [
    ("loss", "training diverged at epoch 1, step 5: the loss is NaN or infinite"),
    ("weights", "training diverged at epoch 1, step 6: 2 parameters and buffers hold NaN or infinite values "
                "(e.g. 'fc.bias')"),
])
def test_a_divergence_keeps_the_earlier_checkpoints_and_saves_nothing_after(digits_folder, tmp_path, monkeypatch,
                                                                            one_thread, what, message):
    """Epoch 0 (3 steps) is checkpointed; in epoch 1 the loss of the 2nd step is NaN (stopped at that step), or
    ``fc.bias`` turns inf in its last step with a finite loss (stopped before validation; the EMA is checked too)."""
    monkeypatch.setattr(training_loop, "build_model", _poison(5 if what == "loss" else 6, what))
    out = tmp_path / "run"
    with pytest.raises(TimmAAError) as err:
        train(TrainConfig(**TINY, data=str(digits_folder), output=str(out), ema=True))
    assert str(err.value).startswith(message), err.value
    assert _saved(out) == ["epoch-0000"]


def test_a_resumed_checkpoint_that_holds_nan_is_refused(digits_folder, tmp_path, one_thread):
    """A checkpoint of the diverged state (written before this check, or edited) is not trained on or exported."""
    from safetensors.torch import load_file, save_file

    out = tmp_path / "run"
    train(TrainConfig(**{**TINY, "epochs": 1}, data=str(digits_folder), output=str(out)))
    weights = out / "checkpoints" / "epoch-0000" / "model.safetensors"
    state = load_file(str(weights))
    state["fc.weight"][0, 0] = float("nan")
    save_file(state, str(weights), metadata={"format": "pt"})
    with pytest.raises(TimmAAError, match=r"^checkpoint '.*epoch-0000': 1 of \d+ tensors hold NaN or infinite "
                                          r"values \(e.g. 'fc.weight'\)"):
        train(TrainConfig(**TINY, data=str(digits_folder), output=str(tmp_path / "next"),
                          resume=str(out / "checkpoints" / "epoch-0000")))
    assert _saved(tmp_path / "next") == []


def test_the_script_says_it_in_one_line_in_flag_terms(digits_folder, tmp_path, capsys, monkeypatch, one_thread):
    from train import main  # scripts/ is on sys.path via conftest

    monkeypatch.setattr(training_loop, "build_model", _poison(2, "loss"))
    code = main(["--model", "test_resnet", "--input-size", "32", "--crop-pct", "0.8", "--batch-size", "4", "--aug",
                 "shift", "--no-progress", "--warmup-epochs", "0", "--epochs", "1", "--data", str(digits_folder),
                 "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and [line for line in err.splitlines() if line.startswith("error: ")] == [err.strip()], err
    assert "error: training diverged at epoch 0, step 2: the loss is NaN or infinite; likely cause: too high a " \
           "learning rate (--lr 0.001, " in err and "--weight-decay 0.05; --opt adamw)" in err, err
    assert _saved(tmp_path / "run") == []


@pytest.mark.parametrize("settings, tau, cause", [
    (dict(lr=float("inf")), None, "lr=inf is not a finite number"),
    (dict(weight_decay=float("nan")), None, "weight_decay=nan is not a finite number"),
    (dict(gumbel_tau0=1e-6, gumbel_min=0.0), 1e-6, "the LPS temperature 1e-06 is too close to 0"),
    (dict(mixed_precision="fp16"), None, "float16 overflows above 65504: use mixed_precision=bf16"),
    (dict(lr=1.0, weight_decay=5.0), None, "too much weight decay (lr x weight_decay = 5"),
    (dict(lr=3.0), None, "too high a learning rate (lr=3.0, 1.5 at this step)"),
])
def test_the_likely_cause_is_named_with_the_values_in_use(settings, tau, cause):
    from timm_aa.training.divergence import likely_cause

    cfg = TrainConfig()
    for name, value in settings.items():  # set after validation: the loop's last guard sees what a bounds check missed
        setattr(cfg, name, value)
    text = likely_cause(cfg, lr=1.5, tau=tau)
    assert text.startswith(cause), text
    assert "(values in use: lr=" in text and "at this step; weight_decay=" in text
    assert ("LPS temperature" in text) == (tau is not None)
    assert ("mixed_precision=fp16" in text) == (settings.get("mixed_precision") == "fp16")


RANKS = """
import os, sys
import torch
from accelerate.launchers import debug_launcher
from timm_aa.errors import TimmAAError
from timm_aa.training import TrainConfig, train
from timm_aa.training import loop

def run(data, output):
    rank = torch.distributed.get_rank()  # a PartialState made here would come before the Accelerator
    build = loop.build_model

    def build_model(cfg, num_classes):  # rank 1 only: the logits of its 5th training forward are NaN
        model, fresh = build(cfg, num_classes)
        calls = [0]
        def hook(module, args, out):
            calls[0] += module.training
            return out * float("nan") if module.training and rank == 1 and calls[0] == 5 else out
        model.register_forward_hook(hook)
        return model, fresh

    loop.build_model = build_model
    try:
        train(TrainConfig(model="test_resnet", data=data, output=output, epochs=2, batch_size=2, input_size=32,
                          crop_pct=0.8, aug="shift", warmup_epochs=0, max_train_batches=3, progress=False))
        message = "finished"
    except TimmAAError as err:
        message = str(err)
    with open(os.path.join(os.path.dirname(output), f"rank{rank}.txt"), "w") as f:
        f.write(message)

if __name__ == "__main__":
    debug_launcher(run, args=(sys.argv[1], sys.argv[2]), num_processes=2)
"""


@pytest.mark.slow
def test_two_processes_stop_together_when_one_sees_nan(digits_folder, tmp_path):
    """Rank 1's loss turns NaN in epoch 1; rank 0's stays finite. Both stop at the same step with the same line (no
    process is left waiting in a collective: the run ends within the timeout), and nothing after epoch 0 is saved."""
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    out = tmp_path / "ranks" / "run"
    r = subprocess.run([sys.executable, str(script), str(digits_folder), str(out)], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    messages = [(tmp_path / "ranks" / f"rank{rank}.txt").read_text() for rank in (0, 1)]
    assert messages[0] == messages[1], messages
    assert messages[0].startswith("training diverged at epoch 1, step 5: the loss is NaN or infinite (in 1 of 2 "
                                  "processes); likely cause"), messages
    assert _saved(out) == ["epoch-0000"]
