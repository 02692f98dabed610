"""Zhang's checkpoints: from_zhang() reproduces his models' logits; bad checkpoints fail clearly."""

from __future__ import annotations

import hashlib

import antialiased_cnns
import pytest
import torch
from conftest import randomize_batchnorm

import timm_aa
from timm_aa.errors import TimmAAError
from timm_aa.weights import convert_zhang_state_dict, zhang_key_map

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d", "wide_resnet50_2", "densenet121",
         "mobilenet_v2", "vgg16", "vgg16_bn", "alexnet"]


@pytest.mark.slow
@pytest.mark.parametrize("filt_size", [2, 3, 4, 5])
@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_zhang(arch, filt_size):
    torch.manual_seed(filt_size)
    ref = randomize_batchnorm(getattr(antialiased_cnns, arch)(filter_size=filt_size), seed=filt_size)
    ours = timm_aa.from_zhang(ref.state_dict(), arch, filt_size=filt_size)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    scale = expected.abs().max().item()
    assert scale > 1e-3  # a real signal, not all zeros
    # Our blur sums in another order than Zhang's conv; with random BN statistics the logits of deep nets reach
    # ~1e5, so float32 rounding is allowed in proportion (test_logits_match_zhang_float64 shows exactness)
    assert (got - expected).abs().max().item() <= 1e-4 + 2e-6 * scale


@pytest.mark.slow
def test_logits_match_zhang_float64():
    """In float64 the deepest net equals Zhang's to rounding: the float32 gaps above are rounding, not layout."""
    ref = randomize_batchnorm(antialiased_cnns.resnet101(filter_size=4), seed=4).double()
    ours = timm_aa.from_zhang(ref.state_dict(), "resnet101", filt_size=4).double().eval()
    x = torch.randn(2, 3, 224, 224, dtype=torch.float64)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert (got - expected).abs().max().item() <= 1e-12 * expected.abs().max().item()


def test_checkpoint_file_wrapped_and_prefixed(tmp_path):
    ref = randomize_batchnorm(antialiased_cnns.resnet18(filter_size=3))
    path = tmp_path / "resnet18_lpf3.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}, "epoch": 89}, path)
    ours = timm_aa.from_zhang(path, "resnet18", filt_size=3)
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-4)


def test_num_classes_follows_the_checkpoint():
    ref = antialiased_cnns.resnet18(num_classes=10)
    assert timm_aa.from_zhang(ref.state_dict(), "resnet18").fc.out_features == 10


def test_key_map_renames_blurred_containers():
    sd = antialiased_cnns.resnet50(filter_size=4).state_dict()
    mapping = zhang_key_map(sd, "resnet50")
    assert mapping["layer2.0.conv3.1.weight"] == "layer2.0.conv3.weight"
    assert mapping["layer2.0.downsample.1.weight"] == "layer2.0.downsample.0.weight"
    assert mapping["layer2.0.downsample.2.running_var"] == "layer2.0.downsample.1.running_var"
    assert mapping["layer1.0.downsample.0.weight"] == "layer1.0.downsample.0.weight"
    assert not any(key.endswith(".filt") for key in mapping)
    vgg = convert_zhang_state_dict(antialiased_cnns.vgg11(filter_size=4).state_dict(), "vgg11")
    assert vgg["pre_logits.fc1.weight"].shape == (4096, 512, 7, 7)


def test_wrong_filter_size_names_the_key():
    sd = antialiased_cnns.resnet18(filter_size=4).state_dict()
    with pytest.raises(ValueError, match=r"'maxpool.1.filt' holds a 4x4 blur filter, but filt_size=3"):
        timm_aa.from_zhang(sd, "resnet18", filt_size=3)


def test_wrong_architecture_names_the_first_mismatching_key():
    sd = antialiased_cnns.resnet18(filter_size=4).state_dict()
    with pytest.raises(ValueError, match=r"does not fit resnet50 .*'layer1.0.conv1.weight'"):
        timm_aa.from_zhang(sd, "resnet50")
    with pytest.raises(ValueError, match="does not fit resnet34"):
        timm_aa.from_zhang(sd, "resnet34")


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown Zhang architecture 'resnet9'"):
        timm_aa.from_zhang({}, "resnet9")
    with pytest.raises(TimmAAError, match="no checkpoint file at 'nope.pth'"):
        timm_aa.from_zhang("nope.pth", "resnet18")
    with pytest.raises(TypeError, match="not a tensor"):
        timm_aa.from_zhang({"state_dict": {"fc.weight": [1, 2]}}, "resnet18")
    with pytest.raises(ValueError, match="no weight tensors"):
        timm_aa.from_zhang({}, "resnet18")
    with pytest.raises(TypeError, match="list"):
        timm_aa.from_zhang([1, 2], "resnet18")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "obj": object()}, path)
    with pytest.raises(TimmAAError, match="evil.pth: not his format .it holds pickled Python objects"):
        timm_aa.from_zhang(path, "resnet18")


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, bytes(range(256)) * 40])
def test_random_bytes_are_refused_by_name(tmp_path, content):
    path = tmp_path / "resnet18_lpf4.pth"
    path.write_bytes(content)
    with pytest.raises(TimmAAError, match=r"resnet18_lpf4.pth: not his format .*refused, nothing was loaded"):
        timm_aa.from_zhang(path, "resnet18")


def test_hash_in_the_name_is_checked(tmp_path):
    sd = antialiased_cnns.resnet18(filter_size=4).state_dict()
    path = tmp_path / "x.pth"
    torch.save({"state_dict": sd}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    good, bad = tmp_path / f"resnet18_lpf4-{digest[:8]}.pth", tmp_path / "resnet18_lpf4-0123abcd.pth"
    path.rename(good)
    bad.write_bytes(good.read_bytes())
    assert timm_aa.from_zhang(good, "resnet18").fc.out_features == 1000
    with pytest.raises(TimmAAError, match=rf"hash mismatch \(its SHA-256 begins {digest[:8]}, its name says 0123abcd"):
        timm_aa.from_zhang(bad, "resnet18")
