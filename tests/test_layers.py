"""BlurPool2d / MaxBlurPool2d / BlurConv2d: sizes, values against Zhang, timm and kornia; dtypes, formats, JIT."""

from __future__ import annotations

import math

import antialiased_cnns
import kornia
import numpy as np
import pytest
import timm.layers
import torch
from torch import nn

from timm_aa.errors import TimmAAError
from timm_aa.layers import (
    BlurConv2d,
    BlurPool2d,
    MaxBlurPool2d,
    binomial_filter1d,
    binomial_filter2d,
    blur_pool2d,
    max_blur_pool2d,
)
from timm_aa.layers._backends.reference import gather_pad2d, pad2d

FILTERS = range(1, 8)
SIZES = range(1, 10)
ZHANG_PAD = {"reflect": "reflect", "replicate": "replicate", "zeros": "zero"}
NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def test_binomial_filters_are_pascal_rows():
    assert binomial_filter1d(1).tolist() == [1.0]
    assert torch.allclose(binomial_filter1d(5), torch.tensor([1.0, 4, 6, 4, 1]) / 16)
    assert torch.allclose(binomial_filter1d(7) * 64, torch.tensor([1.0, 6, 15, 20, 15, 6, 1]))
    for k in FILTERS:
        assert binomial_filter2d(k).sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("filt_size", FILTERS)
@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros"])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_blurpool_matches_zhang(filt_size, pad_mode, stride):
    ours = BlurPool2d(3, filt_size=filt_size, stride=stride, pad_mode=pad_mode)
    ref = antialiased_cnns.BlurPool(3, pad_type=ZHANG_PAD[pad_mode], filt_size=filt_size, stride=stride)
    compared = 0
    for h in SIZES:
        for w in SIZES:
            x = torch.randn(2, 3, h, w)
            try:
                expected = ref(x)
            except RuntimeError:  # his reflect padding fails on maps smaller than the padding
                assert pad_mode == "reflect" and min(h, w) <= filt_size // 2
                continue
            torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)
            compared += 1
    expected_count = (len(SIZES) - filt_size // 2) ** 2 if pad_mode == "reflect" else len(SIZES) ** 2
    assert compared == expected_count


@pytest.mark.parametrize("filt_size", FILTERS)
@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros", "circular"])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (1, 2), (3, 2)])
def test_blurpool_output_size_every_input(filt_size, pad_mode, stride):
    pool = BlurPool2d(None, filt_size=filt_size, stride=stride, pad_mode=pad_mode)
    for h in SIZES:
        for w in SIZES:
            y = pool(torch.randn(1, 2, h, w))
            assert y.shape == (1, 2, math.ceil(h / stride[0]), math.ceil(w / stride[1]))
            assert torch.isfinite(y).all()


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad2d_matches_numpy_on_every_size(mode):
    """Small maps use the documented fallback: numpy's reflect / edge / wrap, however wide the padding."""
    for h in SIZES:
        for w in SIZES:
            for pads in ([1, 2, 1, 2], [3, 3, 3, 3], [0, 1, 2, 0]):
                x = torch.randn(1, 1, h, w, dtype=torch.float64)
                expected = np.pad(x.numpy(), ((0, 0), (0, 0), (pads[2], pads[3]), (pads[0], pads[1])), NUMPY_PAD[mode])
                np.testing.assert_array_equal(pad2d(x, pads, mode).numpy(), expected)
                np.testing.assert_array_equal(gather_pad2d(x, pads, mode).numpy(), expected)


def test_blur_of_constant_map_is_constant_on_tiny_maps():
    for pad_mode in ["reflect", "replicate", "circular"]:
        for k in FILTERS:
            y = BlurPool2d(None, k, 2, pad_mode)(torch.full((1, 1, 1, 2), 3.0))
            torch.testing.assert_close(y, torch.full_like(y, 3.0))


@pytest.mark.parametrize("filt_size", [3, 5, 7])
def test_odd_filters_match_timm_blurpool(filt_size):
    x = torch.randn(2, 4, 9, 12)
    ref = timm.layers.BlurPool2d(4, filt_size=filt_size, stride=2)
    torch.testing.assert_close(BlurPool2d(4, filt_size, 2)(x), ref(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("filt_size", [3, 5])
def test_odd_filters_match_kornia_blurpool_zero_padding(filt_size):
    x = torch.randn(2, 4, 10, 11)
    ref = kornia.filters.BlurPool2D(kernel_size=filt_size, stride=2)
    torch.testing.assert_close(BlurPool2d(4, filt_size, 2, pad_mode="zeros")(x), ref(x), rtol=0, atol=1e-6)


def test_functional_twins_take_the_modules_arguments():
    x = torch.randn(2, 3, 11, 6)
    assert torch.equal(blur_pool2d(x, 5, (2, 1), "replicate"), BlurPool2d(3, 5, (2, 1), "replicate")(x))
    assert torch.equal(blur_pool2d(x), BlurPool2d()(x))
    assert torch.equal(max_blur_pool2d(x, 3, 2, 1, 5, "zeros"), MaxBlurPool2d(3, 2, 1, 5, "zeros")(x))
    assert torch.equal(max_blur_pool2d(x), MaxBlurPool2d()(x))


def test_max_blur_pool_reads_like_max_pool():
    """MaxBlurPool2d(k, s, p) takes nn.MaxPool2d's arguments in its order; stride defaults to kernel_size."""
    x = torch.randn(1, 2, 17, 14)
    for args in [(3, 2, 1), (2,), (3,), (2, 1)]:
        assert MaxBlurPool2d(*args)(x).shape == nn.MaxPool2d(*args)(x).shape


def test_timm_spellings_are_accepted():
    x = torch.randn(1, 2, 9, 9)
    assert torch.equal(BlurPool2d(2, 3, pad_mode="constant")(x), BlurPool2d(2, 3, pad_mode="zeros")(x))
    pool = BlurPool2d(2, 3, device="meta", dtype=torch.bfloat16)
    assert pool.filt.device.type == "meta" and pool.filt.dtype == torch.bfloat16
    with torch.device("meta"):
        assert MaxBlurPool2d().filt.is_meta and BlurConv2d(2, 4, 3, 2).blur.filt.is_meta


def test_filter_buffer_is_not_persistent():
    assert BlurPool2d(8).state_dict() == {}
    assert MaxBlurPool2d().state_dict() == {}
    assert set(BlurConv2d(3, 8, 3, stride=2).state_dict()) == {"weight", "bias"}


def test_gradcheck():
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    for pool in (BlurPool2d(2, 4, 2).double(), BlurPool2d(2, 3, 2, "circular").double()):
        assert torch.autograd.gradcheck(pool, (x,))
    tiny = torch.randn(1, 2, 2, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(BlurPool2d(2, 6, 2).double(), (tiny,))


def test_batch1_nonsquare_and_channels_last():
    pool = BlurPool2d(16, 4, 2)
    x = torch.randn(1, 16, 13, 30)
    y = pool(x)
    assert y.shape == (1, 16, 7, 15)
    y_cl = pool(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    x = torch.randn(2, 8, 14, 14)
    pool = BlurPool2d(8, 4, 2)
    y = pool(x.to(dtype))
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), pool(x), rtol=0, atol=2e-2)


def test_torchscript():
    x = torch.randn(2, 3, 9, 7)
    for module in (BlurPool2d(3, 4, 2), MaxBlurPool2d(3, 2, 1), BlurConv2d(3, 5, 3, 2, 1),
                   MaxBlurPool2d(2, 2, pad_mode="circular"), BlurPool2d(3, 5, (1, 2), "replicate")):
        scripted = torch.jit.script(module)
        torch.testing.assert_close(scripted(x), module(x))
        torch.testing.assert_close(scripted(x[:, :, :1, :2]), module(x[:, :, :1, :2]))


@pytest.mark.parametrize("kernel,padding", [(2, 0), (3, 1), (3, 0)])
@pytest.mark.parametrize("filt_size", [1, 3, 4, 5])
def test_maxblurpool_matches_zhang_and_maxpool_size(kernel, padding, filt_size):
    x = torch.randn(2, 6, 17, 12)
    ours = MaxBlurPool2d(kernel, 2, padding, filt_size=filt_size)
    ref = nn.Sequential(nn.MaxPool2d(kernel, 1, padding), antialiased_cnns.BlurPool(6, filt_size=filt_size, stride=2))
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
    assert ours(x).shape == nn.MaxPool2d(kernel, 2, padding)(x).shape


def test_blurconv_orders_agree_for_pointwise_and_share_parameters():
    conv = nn.Conv2d(8, 4, 1, stride=2)
    first = BlurConv2d.from_conv(conv, blur_first=True)
    after = BlurConv2d.from_conv(conv, blur_first=False)
    assert first.weight is conv.weight and first.bias is conv.bias and first.stride == (1, 1)
    x = torch.randn(2, 8, 15, 10)
    torch.testing.assert_close(first(x), after(x), rtol=0, atol=1e-5)
    assert first(x).shape == conv(x).shape


def test_blurconv_size_equals_strided_conv():
    for k, p in [(3, 1), (2, 0), (4, 1), (7, 3)]:
        conv = nn.Conv2d(3, 4, k, stride=2, padding=p)
        for h in range(k, k + 5):
            x = torch.randn(1, 3, h, h + 1)
            assert BlurConv2d.from_conv(conv)(x).shape == conv(x).shape


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(filt_size=0), TimmAAError),
        (dict(filt_size=8), TimmAAError),
        (dict(filt_size="4"), TypeError),
        (dict(filt_size=4.0), TypeError),
        (dict(pad_mode="symmetric"), TimmAAError),
        (dict(stride=0), TimmAAError),
        (dict(stride=(2, 2, 2)), TimmAAError),
    ],
)
def test_bad_arguments_name_the_value(kwargs, error):
    with pytest.raises(error, match=repr(next(iter(kwargs.values()))).strip("'")):
        BlurPool2d(4, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="4 channels, got 3"):
        BlurPool2d(4)(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"4D .* got shape \[3, 8, 8\]"):
        BlurPool2d(3)(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match=r"at least 1x1, got shape \[2, 3, 0, 8\]"):
        BlurPool2d(3)(torch.randn(2, 3, 0, 8))
    with pytest.raises(TypeError, match="Conv2dSame"):
        BlurConv2d.from_conv(timm.layers.Conv2dSame(3, 4, 3, stride=2))
    with pytest.raises(ValueError, match="padding"):
        MaxBlurPool2d(kernel_size=2, padding=2)
    with pytest.raises(TimmAAError, match=r"a 2x2 max-pool window \(padding 0, 0\) does not fit a 1x1 map"):
        MaxBlurPool2d(2, 2)(torch.randn(1, 3, 1, 1))
    assert MaxBlurPool2d(2, 2, pad_mode="circular")(torch.randn(1, 3, 1, 1)).shape == (1, 3, 1, 1)


def test_filter_is_restored_after_meta_device_construction():
    """transformers builds on the meta device and calls init_non_persistent_buffers() to restore filters."""
    with torch.device("meta"):
        pool, maxpool = BlurPool2d(3, 4, 2), MaxBlurPool2d(2, 2)
    for module in (pool, maxpool):
        module.to_empty(device="cpu")
        module.init_non_persistent_buffers()
        torch.testing.assert_close(module.filt, binomial_filter2d(4))


@pytest.mark.parametrize("name", ["resnet18_aa", "resnet18_aps", "resnet18_lps"])
def test_models_take_a_batch_of_zero(name):
    """Issue 20, case 9: a batch of 0 crashed resnet18_aa, _aps and _lps where timm's resnet18 returns (0, classes)."""
    model = timm.create_model(name, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(0, 3, 64, 64)).shape == timm.create_model("resnet18", num_classes=3)(
            torch.randn(0, 3, 64, 64)).shape == (0, 3)
