"""Model specs: ARCH:FILE.safetensors, broken safetensors files refused clearly."""

from __future__ import annotations

import os

import pytest
import timm
import torch
from conftest import randomize_batchnorm

from timm_aa.errors import TimmAAError
from timm_aa.hub import save_weights
from timm_aa.loading import carries_weights, create_model_from_spec, split_weights_spec


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """resnet18_aa with filter 3 and random BN statistics, saved with its architecture and model args."""
    model = randomize_batchnorm(timm.create_model("resnet18_aa", num_classes=4, filt_size=3), seed=3)
    path = str(tmp_path_factory.mktemp("w") / "w.safetensors")
    save_weights(model, path)
    return model, path


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_arch_colon_file(weights):
    model, path = weights
    loaded = create_model_from_spec(f"resnet18_aa:{path}")
    assert loaded.fc.out_features == 4 and loaded._model_args["filt_size"] == 3  # the file's model args apply
    assert _same(loaded, model)
    assert _same(create_model_from_spec(path), model)  # the metadata names the architecture
    baseline = create_model_from_spec(f"resnet18:{path}")  # a plain ResNet-18 takes the same tensors
    assert not _same(baseline, model)


def test_spec_syntax():
    assert split_weights_spec("resnet50_aa:runs/w.safetensors") == ("resnet50_aa", "runs/w.safetensors")
    assert split_weights_spec("resnet50_aa.zhang_lpf3_in1k:/w.safetensors") == ("resnet50_aa.zhang_lpf3_in1k",
                                                                                 "/w.safetensors")
    for spec in ("hf-hub:org/name@main", "local-dir:/x", "C:\\w\\x.safetensors", "resnet50_aa", "/a:b/w.safetensors"):
        assert split_weights_spec(spec) is None, spec
    assert carries_weights("resnet18_aa:w.safetensors") and not carries_weights("resnet18_aa.zhang_lpf4_ft_in1k")


@pytest.mark.parametrize("content", ["empty", "random", "truncated"])
def test_broken_safetensors_get_one_clear_error(weights, tmp_path, content):
    data = open(weights[1], "rb").read()
    broken = {"empty": b"", "random": os.urandom(4096), "truncated": data[: len(data) // 2]}[content]
    path = tmp_path / "w.safetensors"
    path.write_bytes(broken)
    for spec in (str(path), f"resnet18_aa:{path}"):
        with pytest.raises(TimmAAError, match=r"is not a readable safetensors file .*save_weights") as info:
            create_model_from_spec(spec)
        assert str(path) in str(info.value) and info.value.__cause__ is None


def test_bad_specs(tmp_path):
    with pytest.raises(TimmAAError, match="no checkpoint file at"):
        create_model_from_spec(f"resnet18_aa:{tmp_path / 'nope.safetensors'}")
    pth = tmp_path / "w.pth"
    pth.write_bytes(b"x")
    with pytest.raises(TimmAAError, match="must be .safetensors .*timm_aa.from_zhang"):
        create_model_from_spec(f"resnet18_aa:{pth}")
    with pytest.raises(TimmAAError, match="did you mean 'resnet18_aa'"):
        create_model_from_spec("resnet18aa")
    with pytest.raises(TimmAAError, match="no model folder"):
        create_model_from_spec(f"local-dir:{tmp_path / 'none'}")
