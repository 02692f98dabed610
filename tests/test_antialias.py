"""antialias(): conversion of timm CNNs, weight preservation, placement and error cases."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
from torch import nn

from timm_aa import antialias
from timm_aa.convert.antialias import find_downsampling
from timm_aa.layers import BlurConv2d, BlurPool2d, MaxBlurPool2d

MODELS = [
    "resnet50", "resnet50d", "resnext50_32x4d", "densenet121", "vgg11_bn", "mobilenetv2_100",
    "mobilenetv3_large_100", "efficientnet_b0", "regnety_016", "convnext_tiny", "cspresnet50", "dla34",
    "res2net50_26w_4s", "resnet18", "seresnext26d_32x4d", "ghostnet_100", "efficientnet_lite0", "tf_efficientnet_b0",
    "resnetv2_50", "hrnet_w18_small", "repvgg_a0", "mixnet_s",
]


def _count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


FAST_MODELS = ("resnet18", "mobilenetv2_100", "dla34")  # the rest of the families: the slow set


@pytest.mark.parametrize("name", [m if m in FAST_MODELS else pytest.param(m, marks=pytest.mark.slow) for m in MODELS])
def test_convert_keeps_weights_and_trains(name):
    base = timm.create_model(name)
    model = antialias(copy.deepcopy(base))
    assert model.load_state_dict(base.state_dict(), strict=True)
    assert _count_params(model) == _count_params(base)
    assert list(model.state_dict()) == list(base.state_dict())
    remaining = find_downsampling(model)
    assert len(remaining) <= 1, [s.name for s in remaining]  # only the stem stays strided
    assert any(isinstance(m, (BlurPool2d, MaxBlurPool2d, BlurConv2d)) for m in model.modules())

    x = torch.randn(2, 3, 96, 96)
    model.train()
    out = model(x)
    assert out.shape == base(x).shape
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    base.eval(), model.eval()
    with torch.no_grad():
        assert model.forward_features(x).shape == base.forward_features(x).shape


def test_resnet_placement_follows_the_paper():
    model = antialias(timm.create_model("resnet50"))
    block = model.layer2[0]
    assert block.conv2.stride == (1, 1) and isinstance(block.aa, BlurPool2d) and block.aa.stride == [2, 2]
    assert isinstance(block.downsample[0], BlurConv2d) and block.downsample[0].blur_first
    assert isinstance(model.maxpool, MaxBlurPool2d) and model.maxpool.kernel_size == [3, 3]
    assert model.conv1.stride == (2, 2)  # the stem stays strided
    basic = antialias(timm.create_model("resnet18")).layer3[0]
    assert basic.conv1.stride == (1, 1) and isinstance(basic.aa, BlurPool2d)


def test_blur_goes_after_norm_and_activation_in_efficientnet_blocks():
    model = antialias(timm.create_model("efficientnet_b0"))
    block = model.blocks[1][0]
    assert block.conv_dw.stride == (1, 1) and isinstance(block.aa, BlurPool2d)
    out = {}
    block.bn2.register_forward_hook(lambda m, i, o: out.setdefault("bn2", o))
    block.aa.register_forward_hook(lambda m, i, o: out.setdefault("aa_in", i[0]))
    model.eval()(torch.randn(1, 3, 64, 64))
    assert out["aa_in"] is out["bn2"]  # aa consumes the BN+activation output


def test_other_pools_and_convs():
    densenet = antialias(timm.create_model("densenet121"))
    assert isinstance(densenet.features.transition1.pool, BlurPool2d)
    assert isinstance(densenet.features.pool0, MaxBlurPool2d) and densenet.features.pool0.padding == [1, 1]
    convnext = antialias(timm.create_model("convnext_tiny"))
    assert isinstance(convnext.stages[1].downsample[1], BlurConv2d)
    assert not convnext.stages[1].downsample[1].blur_first
    res2net = antialias(timm.create_model("res2net50_26w_4s"))
    pool = res2net.layer2[0].pool
    assert isinstance(pool, nn.Sequential) and pool[0].stride == 1 and isinstance(pool[1], BlurPool2d)


def test_conv_subclass_gets_a_post_blur_hook():
    model = antialias(timm.create_model("tf_efficientnet_b0"), filt_size=3)
    x = torch.randn(1, 3, 67, 67)
    assert model(x).shape == (1, 1000)
    base = timm.create_model("tf_efficientnet_b0")
    assert model.forward_features(x).shape[-2:] == base.forward_features(x).shape[-2:]


def test_stem_option():
    model = antialias(timm.create_model("resnet18"), stem=True)
    assert isinstance(model.conv1, BlurConv2d) and model.conv1.stride == (1, 1)
    assert find_downsampling(model) == []


def test_settings_reach_every_layer():
    model = antialias(timm.create_model("resnet18"), filt_size=5, pad_mode="circular")
    layers = [m for m in model.modules() if isinstance(m, (BlurPool2d, MaxBlurPool2d))]
    assert layers and all(m.filt_size == 5 and m.pad_mode == "circular" for m in layers)


def test_converting_twice_is_a_noop():
    model = antialias(timm.create_model("resnet18")).eval()
    before = repr(model)
    x = torch.randn(1, 3, 64, 64)
    y = model(x)
    assert antialias(model) is model
    assert repr(model) == before
    torch.testing.assert_close(model(x), y)


def test_vit_is_rejected_with_a_reason():
    vit = timm.create_model("vit_tiny_patch16_224")
    with pytest.raises(ValueError, match="vision transformers"):
        antialias(vit)


def test_model_without_downsampling_is_rejected():
    with pytest.raises(ValueError, match="no strided convolution or pooling"):
        antialias(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2)))
    with pytest.raises(ValueError, match="no strided"):
        antialias(nn.Linear(3, 4))


def test_bad_arguments():
    with pytest.raises(TypeError, match="str"):
        antialias("resnet50")
    with pytest.raises(ValueError, match="9"):
        antialias(timm.create_model("resnet18"), filt_size=9)
    with pytest.raises(ValueError, match="'mirror'"):
        antialias(timm.create_model("resnet18"), pad_mode="mirror")
