"""Files we did not write are read with checks, and an export tells the next user what it was trained with (issue
20, cases 7, 8, 13 and 14). The scripts run in-process as ``python scripts/X.py`` runs them."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import timm
import torch
from conftest import run_script

from timm_aa.hub import write_export
from timm_aa.infra.layout import TRAINER_STATE as STATE_FILE

FAST = ["--model", "resnet18_aa", "--input-size", "32", "--crop-pct", "0.8", "--batch-size", "8", "--aug", "shift",
        "--no-progress"]


@pytest.fixture(scope="module")
def run(digits_folder, tmp_path_factory):
    """A finished run trained on 32x32 crops of 40x40 images (crop_pct 0.8), one epoch."""
    from train import main

    out = tmp_path_factory.mktemp("runs") / "pets"
    assert main([*FAST, "--data", str(digits_folder), "--output", str(out), "--epochs", "1"]) == 0
    return out


def _edited(run, tmp_path, edit):
    """A copy of the run's export with ``edit(config)`` applied to its config.json."""
    folder = tmp_path / "export"
    shutil.copytree(run / "export", folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _set(path, value):
    def edit(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def _every_loader(spec, digits_folder, tmp_path, capsys):
    """evaluate --model, train --model and --init-from, publish --model: each one line, exit 2."""
    runs = [("evaluate", ["--model", spec, "--data", str(digits_folder / "val"), "--resize", "40", "--crop", "32",
                          "--allow-random-weights"]),
            ("train", [*FAST[2:], "--model", spec, "--data", str(digits_folder), "--output", str(tmp_path / "t1")]),
            ("train", [*FAST, "--init-from", spec, "--data", str(digits_folder), "--output", str(tmp_path / "t2")]),
            ("publish", ["--model", spec.removeprefix("local-dir:"), "--output", str(tmp_path / "hub")])]
    errors = []
    for script, argv in runs:
        code, _, err = run_script(script, argv, capsys)
        assert code == 2, (script, err)
        errors.append(err)
    assert not any((tmp_path / n).exists() for n in ("t1", "t2", "hub"))
    return errors


@pytest.mark.parametrize("edit, message", [
    (_set("model_args.filt_size", 1), "contradicts itself: config.json describes 'resnet18_aa' with filt_size 1"),
    (_set("model_args.aa_layer", "aps"), "contradicts itself: config.json describes 'resnet18_aa' with aa_layer 'aps'"),
    (_set("pretrained_cfg.input_size", [3, "big", 32]), "pretrained_cfg.input_size item 1 must be an int in 1..4096"),
    (_set("pretrained_cfg.crop_pct", 2), "pretrained_cfg.crop_pct must be a finite number in [0.05, 1], got 2"),
    (_set("pretrained_cfg.mean", [0.5, 0.5]), "pretrained_cfg.mean has 2 values for 3 input channels"),
    (_set("num_classes", -1), "num_classes must be an int in 0..1000000, got -1"),
    (_set("model_args.filt_size", "4"), "model_args.filt_size must be an int in 1..7, got '4'"),
    (_set("architecture", "resnet18_aa_v9"), "architecture 'resnet18_aa_v9' is not a model timm knows"),
], ids=["filt_size", "aa_layer", "input_size", "crop_pct", "mean", "num_classes", "type", "architecture"])
def test_every_loader_checks_an_export_it_did_not_write(run, digits_folder, tmp_path, capsys, edit, message):
    """Case 7: evaluate and train loaded an export whose config.json contradicts its weights (filt_size 1, method
    aps) and reported other numbers without a warning; values out of type or range ended deep inside timm."""
    folder = _edited(run, tmp_path, edit)
    for err in _every_loader(f"local-dir:{folder}", digits_folder, tmp_path, capsys):
        assert message in err, err


def test_the_wrong_folder_an_offline_hub_id_and_an_unknown_model_are_one_line(run, digits_folder, tmp_path, capsys,
                                                                              monkeypatch):
    """Case 8: local-dir:RUN (the run instead of its export), hf-hub: offline and not cached, and an architecture
    that does not exist each ended in a traceback in train, evaluate and publish."""
    for err in _every_loader(f"local-dir:{run}", digits_folder, tmp_path, capsys):
        assert "is a training run folder; its model is in" in err and os.path.join(str(run), "export") in err, err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for err in _every_loader("hf-hub:nobody/resnet18_aa.none", digits_folder, tmp_path, capsys):
        assert "hf-hub:nobody/resnet18_aa.none: offline (HF_HUB_OFFLINE=1) and not in the Hub cache" in err, err
    for err in _every_loader("resnet18_aaa", digits_folder, tmp_path, capsys):
        assert "unknown model 'resnet18_aaa'; did you mean 'resnet18_aa'" in err, err


def test_a_checkpoint_state_with_wrong_values_is_one_line(run, digits_folder, tmp_path, capsys):
    """trainer_state.json reached our code and timm's scheduler unchecked."""
    shutil.copytree(run, tmp_path / "run")
    state_path = tmp_path / "run" / "checkpoints" / "epoch-0000" / STATE_FILE
    original = state_path.read_text()
    for field, value, message in (("epoch", "three", "epoch must be an int in 0..100000, got 'three'"),
                                  ("gumbel", {"tau0": "hot"}, "gumbel.tau0 must be a finite number")):
        state = json.loads(original)
        state[field] = value
        state_path.write_text(json.dumps(state))
        code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(tmp_path / "new"),
                                         "--resume", str(state_path.parent), "--epochs", "2"], capsys)
        assert code == 2 and message in err and str(state_path) in err, err


def test_an_export_carries_the_data_config_it_was_trained_with(run, tmp_path, capsys):
    """Case 13: an export of 32x32 crops of 40x40 images said 3x224x224 and crop_pct 0.875, so timm's
    resolve_model_data_config (and the card) preprocessed differently from training."""
    model = timm.create_model(f"local-dir:{run / 'export'}", pretrained=True)
    cfg = timm.data.resolve_model_data_config(model)
    assert cfg["input_size"] == (3, 32, 32) and cfg["crop_pct"] == 0.8 and cfg["crop_mode"] == "center"
    config = json.loads((run / "export" / "config.json").read_text())["pretrained_cfg"]
    assert "test_input_size" not in config and config["interpolation"] == cfg["interpolation"]
    code, _, err = run_script("publish", ["--model", str(run / "export"), "--output", str(tmp_path / "hub")], capsys)
    assert code == 0, err
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "**Input:** 3x32x32 (as trained and validated), resize to 40" in card


def test_a_dry_run_publish_names_the_model_by_architecture_and_run(run, tmp_path, capsys):
    """Case 14: without --repo-id the card was titled `export` and showed hf-hub:local/export."""
    code, _, err = run_script("publish", ["--model", str(run / "export"), "--output", str(tmp_path / "hub")], capsys)
    assert code == 0, err
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "\n# resnet18_aa.pets\n" in card and "hf-hub:your-org/resnet18_aa.pets" in card
    assert "model-index:\n- name: resnet18_aa.pets" in card
    torch.manual_seed(0)
    folder = write_export(timm.create_model("resnet18_aa", num_classes=2), str(tmp_path / "w" / "export"))
    code, _, err = run_script("publish", ["--model", folder, "--output", str(tmp_path / "hub2"), "--repo-id",
                                       "me/pets-aa"], capsys)
    assert code == 0 and "\n# pets-aa\n" in (tmp_path / "hub2" / "README.md").read_text()


def test_an_image_pil_refuses_for_any_reason_is_one_line(digits_folder, tmp_path, capsys, monkeypatch):
    """Images PIL refuses with other errors than OSError (a decompression bomb) ended in a traceback."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # every 48x48 digit is now a "decompression bomb"
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(tmp_path / "r")], capsys)
    assert code == 2 and "unreadable image(s)" in err, err
    code, _, err = run_script("evaluate", ["--model", "resnet18_aa", "--data", str(digits_folder / "val"),
                                           "--allow-random-weights", "--resize", "40", "--crop", "32"], capsys)
    assert code == 2 and "none of the 15 images" in err, err
