"""The fast BlurPool / MaxBlurPool paths give the reference numbers (pad, then depthwise conv; F.max_pool2d).

Each path is reached on purpose: the CPU kernel (``path`` = "kernel") and, with it switched off, the PyTorch
paths (``path`` = "pytorch"): small maps (two matrix products), NCHW on CPU (vertical conv on a
channels-last view, then a matrix product, in chunks), channels_last and other layouts (zero-padded conv
plus border corrections), odd sizes where the conv yields one row or column short.
"""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch
import torch.nn.functional as F

from timm_aa.layers import (
    BlurPool2d,
    MaxBlurPool2d,
    binomial_filter2d,
    binomial_taps,
    dense_max_pool2d,
    native,
    reference_blur_pool2d,
    separable_blur_pool2d,
)
from timm_aa.layers import max_blur_pool as max_blur_pool_module
from timm_aa.layers import pad2d as reference_pad
from timm_aa.layers import reference as reference_module
from timm_aa.layers import rows_first as rows_first_module
from timm_aa.layers import separable as separable_module

# (H, W): matrix path (<= 16), NCHW view path (> 16), channels_last direct path (> 32), odd/uneven sizes
SIZES = [(7, 12), (17, 40), (33, 34), (57, 41), (111, 36)]
LAYOUTS = ["nchw", "channels_last", "strided"]


@pytest.fixture(autouse=True)
def _fast_paths_only(monkeypatch):
    """Small inference inputs go to pad-then-conv on CPU (faster there); these tests are about the fast paths."""
    monkeypatch.setattr(separable_module, "REFERENCE_BYTES", 0)
    monkeypatch.setattr(separable_module, "REFERENCE_BYTES_CHANNELS_LAST", 0)


@pytest.fixture(params=["kernel", "pytorch"])
def path(request, monkeypatch):
    """Run a test on the CPU kernel, then on the PyTorch paths that run without it (no compiler, other dtypes)."""
    if request.param == "pytorch":
        monkeypatch.setattr(native, "kernel", lambda: None)
    elif native.compiler_path() is None:
        pytest.skip("no C compiler on this machine: the CPU kernel cannot be built")
    else:
        assert native.kernel() is not None, "the CPU kernel did not build with this machine's C compiler"
    return request.param


def test_small_inference_inputs_take_the_reference_path(monkeypatch):
    monkeypatch.undo()
    monkeypatch.setattr(native, "kernel", lambda: None)  # without the kernel
    calls = []
    monkeypatch.setattr(reference_module, "pad2d", lambda *a: calls.append(1) or reference_pad(*a))
    x = torch.randn(2, 3, 40, 40)
    separable_blur_pool2d(x, binomial_taps(4), (2, 2))
    assert calls == [1]
    separable_blur_pool2d(x.requires_grad_(True), binomial_taps(4), (2, 2))  # training: the fast path
    assert calls == [1]


def layout(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if name == "strided":  # neither NCHW- nor channels_last-contiguous
        return x.transpose(2, 3).contiguous().transpose(2, 3)[:, :, :, :]
    return x


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fmt", LAYOUTS)
@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros", "circular"])
def test_forward_matches_reference(size, fmt, pad_mode, path):
    x = layout(torch.randn(2, 3, *size), fmt)
    for filt_size in (2, 3, 4, 5, 7):
        for stride in [(2, 2), (3, 3), (2, 1), (1, 2)]:
            got = separable_blur_pool2d(x, binomial_taps(filt_size), stride, pad_mode)
            want = reference_blur_pool2d(x, binomial_filter2d(filt_size), list(stride), pad_mode)
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6,
                                       msg=f"filter {filt_size}, stride {stride}")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fmt", LAYOUTS)
@pytest.mark.parametrize("pad_mode", ["reflect", "zeros", "circular"])
def test_gradient_matches_reference(size, fmt, pad_mode, path):
    for filt_size, stride in [(4, (2, 2)), (3, (2, 2)), (5, (3, 2))]:
        x = layout(torch.randn(2, 3, *size, dtype=torch.float64), fmt).requires_grad_(True)
        want_out = reference_blur_pool2d(x, binomial_filter2d(filt_size, torch.float64), list(stride), pad_mode)
        grad_out = torch.randn_like(want_out)
        (want,) = torch.autograd.grad(want_out, x, grad_out)
        (got,) = torch.autograd.grad(separable_blur_pool2d(x, binomial_taps(filt_size), stride, pad_mode), x,
                                     grad_out)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_gradcheck_each_path(path):
    for size in [(6, 5), (18, 21), (35, 34)]:
        for fmt in ("nchw", "channels_last"):
            x = layout(torch.randn(1, 2, *size, dtype=torch.float64), fmt).requires_grad_(True)
            assert torch.autograd.gradcheck(lambda t: separable_blur_pool2d(t, binomial_taps(4), (2, 2)), (x,))


def test_channels_last_in_channels_last_out(path):
    x = torch.randn(2, 8, 40, 40).contiguous(memory_format=torch.channels_last)
    assert BlurPool2d(8)(x).is_contiguous(memory_format=torch.channels_last)


def test_chunked_paths_equal_unchunked(monkeypatch):
    monkeypatch.setattr(native, "kernel", lambda: None)  # the chunks are the PyTorch paths'
    x = torch.randn(4, 6, 40, 36)
    blur, max_blur = BlurPool2d(6), MaxBlurPool2d(6, 3, 2, 1)
    want = blur(x), max_blur(x)
    monkeypatch.setattr(rows_first_module, "CHUNK_ELEMENTS", 500)  # many chunks of a few images
    monkeypatch.setattr(max_blur_pool_module, "CHUNK_ELEMENTS", 20000)  # one sample a chunk
    torch.testing.assert_close(blur(x), want[0], rtol=0, atol=0)
    torch.testing.assert_close(max_blur(x), want[1], rtol=0, atol=0)
    xg = x.clone().requires_grad_(True)
    max_blur(xg).sum().backward()
    xr = x.clone().requires_grad_(True)
    reference_blur_pool2d(F.max_pool2d(xr, 3, 1, 1), binomial_filter2d(4), [2, 2]).sum().backward()
    torch.testing.assert_close(xg.grad, xr.grad)


@pytest.mark.parametrize("kernel,padding", [(2, 0), (3, 1), (3, 0), ((2, 3), (1, 1))])
def test_dense_max_pool_matches_max_pool(kernel, padding):
    k = list(kernel) if isinstance(kernel, tuple) else [kernel, kernel]
    p = list(padding) if isinstance(padding, tuple) else [padding, padding]
    x = torch.randn(2, 3, 13, 10, requires_grad=True)  # continuous values: no ties
    got = dense_max_pool2d(x, k, p)
    want = F.max_pool2d(x, k, 1, p)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    g = torch.randn_like(want)
    torch.testing.assert_close(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0])


@pytest.mark.parametrize("kernel,padding", [(2, 0), (3, 1)])
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_dense_max_pool_gradient_with_ties_equals_max_pool(kernel, padding, fmt):
    """Windows with several equal maxima (ReLU zeros, small integers): the gradient goes where max_pool2d's does."""
    x = layout(torch.randint(0, 3, (2, 3, 12, 11)).float(), fmt).requires_grad_(True)
    got = dense_max_pool2d(x, [kernel, kernel], [padding, padding])
    want = F.max_pool2d(x, kernel, 1, padding)
    g = torch.randn_like(want)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0])


def test_bfloat16_close_to_float32():
    x = torch.randn(2, 4, 40, 40)
    for fmt in ("nchw", "channels_last"):
        xb = layout(x, fmt).bfloat16()
        got = separable_blur_pool2d(xb, binomial_taps(4), (2, 2)).float()
        torch.testing.assert_close(got, separable_blur_pool2d(x, binomial_taps(4), (2, 2)), rtol=0, atol=3e-2)


@pytest.mark.parametrize("module", ["timm_aa.layers.axis_plan", "timm_aa.layers.separable",
                                    "timm_aa.layers.max_blur_pool", "timm_aa.layers.blur_pool",
                                    "timm_aa.layers.filters", "timm_aa.layers.reference",
                                    "timm_aa.layers.native", "timm_aa.layers.layout"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), extraglobs={"torch": torch, "math": __import__("math")})
    assert result.failed == 0 and result.attempted > 0


def test_direct_path_on_nchw_as_used_on_cuda(monkeypatch):
    """CUDA takes the zero-padded conv path for NCHW too; force it on CPU to check it there."""
    monkeypatch.setattr(native, "kernel", lambda: None)
    monkeypatch.setattr(separable_module, "_rows_first", lambda x, stride: False)
    for size in [(33, 34), (57, 41)]:
        x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
        for pad_mode in ("reflect", "zeros", "circular"):
            got = separable_blur_pool2d(x, binomial_taps(4), (2, 2), pad_mode)
            want = reference_blur_pool2d(x, binomial_filter2d(4, torch.float64), [2, 2], pad_mode)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
            g = torch.randn_like(want)
            torch.testing.assert_close(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0])


def test_double_backward(path):
    """Gradient penalties differentiate the gradient: the backward op has its own (linear) backward."""
    for fmt in ("nchw", "channels_last"):
        x = layout(torch.randn(1, 2, 35, 34, dtype=torch.float64), fmt).requires_grad_(True)
        fn = lambda t: separable_blur_pool2d(t, binomial_taps(4), (2, 2))  # noqa: E731
        assert torch.autograd.gradgradcheck(fn, (x,))
    x = torch.randn(1, 2, 12, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: MaxBlurPool2d(2).double()(t), (x,))
