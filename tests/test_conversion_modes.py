"""A conversion keeps each new layer in the train/eval mode of the module it replaces (issue 30, 20): an eval model
stays deterministic after ``antialias()`` or ``alias_free()``."""

from __future__ import annotations

import pytest
import timm
import torch
from conftest import randomize_batchnorm

import timm_aa
from timm_aa.layers import LPSPool2d

FAMILIES = ["resnet18", "regnetx_002", "mobilenetv3_small_050"]


def _in_training(model: torch.nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if m.training]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("aa_layer", ["blur", "blurpc", "aps", "lps"])
def test_antialias_of_an_eval_model_is_an_eval_model_and_deterministic(family, aa_layer):
    torch.manual_seed(0)
    model = timm_aa.antialias(randomize_batchnorm(timm.create_model(family, num_classes=5)), aa_layer)
    assert _in_training(model) == []
    if aa_layer == "lps":  # scorers that choose: in training mode they would sample a new phase mix per call
        assert any(isinstance(m, LPSPool2d) for m in model.modules())
        for m in model.modules():
            if isinstance(m, LPSPool2d):
                torch.nn.init.normal_(m.scorer[2].weight, std=1.0)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("aa_layer", ["blur", "lps"])
def test_antialias_keeps_the_mode_of_each_replaced_module(aa_layer):
    """A training model stays in training; a part kept in eval (a frozen block) gets its new layers in eval."""
    model = timm.create_model("resnet18", num_classes=5).train()
    model.layer3.eval()
    timm_aa.antialias(model, aa_layer)
    assert [n for n in _in_training(model) if n.startswith("layer3")] == []
    assert sorted(set(n for n, m in model.named_modules() if not m.training)) == sorted(
        n for n, _ in model.named_modules() if n.startswith("layer3"))


@pytest.mark.parametrize("family", ["resnet18", "convnext_atto"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_alias_free_keeps_the_models_mode(family, mode):
    model = timm.create_model(family, num_classes=5).train(mode == "train")
    timm_aa.alias_free(model)
    if mode == "eval":
        assert _in_training(model) == []
        x = torch.randn(1, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(model(x), model(x))
    else:
        assert [n for n, m in model.named_modules() if not m.training] == []
