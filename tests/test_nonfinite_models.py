"""Issue 30, "finite or refused": weights holding NaN or infinities are never loaded, exported or measured, and a model
whose logits are not finite (or of one class) is never reported as 100% consistent."""

from __future__ import annotations

import os

import pytest
import timm
import torch
from conftest import run_script
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import timm_aa.loading
from timm_aa.consistency import ConsistencySettings, ModelEntry, evaluate_consistency
from timm_aa.data import ImageSource
from timm_aa.errors import TimmAAError
from timm_aa.loading import create_model_from_spec
from timm_aa.weights.export import write_export


@pytest.fixture
def nan_export(tmp_path):
    """An export of ``test_resnet`` (3 classes) whose ``fc.weight`` holds a NaN and ``bn1.running_var`` an inf; its
    config and metadata untouched, as a diverged run wrote them."""
    folder = write_export(timm.create_model("test_resnet", num_classes=3), str(tmp_path / "export"))
    weights = os.path.join(folder, "model.safetensors")
    with safe_open(weights, "pt") as f:
        metadata = f.metadata()
    state = load_file(weights)
    state["fc.weight"][0, 0] = float("nan")
    state["bn1.running_var"][1] = float("inf")
    save_file(state, weights, metadata=metadata)
    return folder, len(state)


def test_every_way_of_loading_non_finite_weights_is_refused_naming_the_file(nan_export, monkeypatch):
    folder, count = nan_export
    weights = os.path.join(folder, "model.safetensors")
    monkeypatch.setattr(timm_aa.loading, "hub_download", lambda repo_id, files, revision=None: folder)
    for spec, where in [(f"local-dir:{folder}", weights), (weights, weights), (f"test_resnet:{weights}", weights),
                        ("hf-hub:org/diverged", "hf-hub:org/diverged (model.safetensors)")]:
        with pytest.raises(TimmAAError) as err:
            create_model_from_spec(spec)
        assert str(err.value).startswith(f"{where}: 2 of {count} tensors hold NaN or infinite values (e.g. "), spec


def test_evaluate_and_publish_refuse_a_diverged_export_in_one_line(nan_export, digits_folder, tmp_path, capsys):
    """The reported case: evaluate.py on the export of a diverged run printed `random 100.00`."""
    folder, _ = nan_export
    code, out, err = run_script("evaluate", ["--model", f"local-dir:{folder}", "--data", str(digits_folder / "val"),
                                             "--resize", "40", "--crop", "32", "--no-progress"], capsys)
    assert code == 2 and "model.safetensors: 2 of" in err and "100.00" not in out, err
    code, _, err = run_script("publish", ["--model", f"local-dir:{folder}", "--output", str(tmp_path / "hub")], capsys)
    assert code == 2 and "model.safetensors: 2 of" in err and not (tmp_path / "hub").exists(), err


def test_a_model_holding_nan_is_never_exported(tmp_path):
    model = timm.create_model("test_resnet", num_classes=3)
    model.fc.bias.data[0] = float("-inf")
    with pytest.raises(TimmAAError, match=r"the model to export to '.*x': 1 of \d+ tensors hold NaN or infinite "
                                          r"values \(e.g. 'fc.bias'\)"):
        write_export(model, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def _uniform_images(colours):
    images = [Image.new("RGB", (48, 48), c) for c in colours]
    return ImageSource("uniform", [f"im{i}" for i in range(len(images))], [0, 1] * (len(images) // 2), ["a", "b"],
                       lambda i: images[i])


def test_logits_that_overflow_are_refused_naming_the_model_and_the_images():
    """Finite weights whose logits overflow for bright images (the mean colour gives about 0 after normalisation)."""
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
    with torch.no_grad():
        net[2].weight.fill_(3e38)
    source = _uniform_images([(255, 255, 255), (124, 116, 104), (250, 250, 250), (124, 116, 104)])
    settings = ConsistencySettings(resize=40, crop=32, passes=1, batch_size=4)
    with pytest.raises(TimmAAError, match=r"^model 'overflow' gives NaN or infinite logits for 2 of the first 4 "
                                          r"images: its weights are broken"):
        evaluate_consistency([ModelEntry("overflow", net)], source, settings, progress=False)


def test_a_one_class_classifier_is_not_measured():
    """One logit: the top-1 class never changes, so it would be 100% consistent."""
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1))
    settings = ConsistencySettings(resize=40, crop=32, passes=1)
    with pytest.raises(TimmAAError, match=r"^model 'single' gives logits of shape \(2, 1\): consistency needs a "
                                          r"classifier of two classes or more"):
        evaluate_consistency([ModelEntry("single", net)], _uniform_images([(0, 0, 0), (9, 9, 9)]), settings,
                             progress=False)
