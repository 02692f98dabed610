"""Alias-free layers and models (AFC, Michaeli et al., CVPR 2023): the ideal low-pass, exact equivariance to
fractional circular shifts, weight compatibility, export; and the contrast with BlurPool and APS models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch
from conftest import randomize_batchnorm
from torch import nn

import timm_aa  # noqa: F401  (registers resnet18_aa / resnet18_aps)
import timm_aa.layers.spectral as spectral
from timm_aa.consistency import fractional_roll
from timm_aa.convert.alias_free import alias_free, new_parameter_names
from timm_aa.errors import TimmAAError
from timm_aa.layers import (
    AliasFreeActivation,
    AliasFreeConv2d,
    AliasFreeDownsample2d,
    AliasFreeLayerNorm2d,
    alias_free_activation,
    alias_free_downsample2d,
    alias_free_layer_norm2d,
    fit_polynomial,
)

SHIFTS = [(0.5, 0.5), (1.25, 1.25), (3.7, 3.7), (0.5, -3.7), (2.0, -5.0)]  # the last: integer amounts
RELU_FIT = [1 / (2 * math.sqrt(2 * math.pi)), 0.5, 1 / (2 * math.sqrt(2 * math.pi))]


def _shift(x: torch.Tensor, amount) -> torch.Tensor:
    return fractional_roll(x, torch.tensor([amount] * x.shape[0], dtype=torch.float64))


def _ideal_reference(x: np.ndarray, out: tuple[int, int], band: tuple[int, int] | None = None) -> np.ndarray:
    """numpy: zero every bin with |k| >= band / 2 (band: n_out), evaluate the trigonometric polynomial at
    m * n_in / n_out."""
    h, w = x.shape[-2:]
    band = band or out
    spec = np.fft.fft2(x)
    ky, kx = np.fft.fftfreq(h, 1 / h), np.fft.fftfreq(w, 1 / w)
    spec = spec * ((np.abs(ky)[:, None] < band[0] / 2) & (np.abs(kx)[None, :] < band[1] / 2))
    ty, tx = np.arange(out[0]) * h / out[0], np.arange(out[1]) * w / out[1]
    ey, ex = np.exp(2j * np.pi * np.outer(ty, ky) / h), np.exp(2j * np.pi * np.outer(kx, tx) / w)
    return np.real(ey @ spec @ ex) / (h * w)


@pytest.mark.parametrize("size,stride", [((8, 8), 2), ((12, 10), 2), ((9, 15), 3), ((7, 9), 2), ((16, 16), 4)])
@pytest.mark.parametrize("path", ["matmul", "fft"])
def test_downsample_is_the_ideal_low_pass(size, stride, path, monkeypatch):
    monkeypatch.setattr(spectral, "MATRIX_MAX_SIZE", 256 if path == "matmul" else 0)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    out = alias_free_downsample2d(x, stride)
    assert out.shape[-2:] == (-(-size[0] // stride), -(-size[1] // stride))
    np.testing.assert_allclose(out.numpy(), _ideal_reference(x.numpy(), out.shape[-2:]), atol=1e-12)
    if size[0] % stride == 0 and size[1] % stride == 0:  # divisible: the low-passed map at every stride-th pixel
        full = torch.from_numpy(_ideal_reference(x.numpy(), size, band=out.shape[-2:]))
        torch.testing.assert_close(out, full[..., ::stride, ::stride], atol=1e-12, rtol=0)


@pytest.mark.parametrize("size", [(16, 16), (15, 17), (12, 9)])
def test_layers_are_exactly_equivariant_to_fractional_shifts(size):
    x = torch.randn(2, 4, *size, dtype=torch.float64)  # white noise: every bin, the Nyquist bins included
    coeffs = torch.randn(4, 3, dtype=torch.float64)
    act = alias_free_activation(x, coeffs)
    down = lambda t: alias_free_downsample2d(t, 2)  # noqa: E731
    ratio = torch.tensor([-(-size[0] // 2) / size[0], -(-size[1] // 2) / size[1]], dtype=torch.float64)
    for amount in SHIFTS:
        shifted = _shift(x, amount)
        assert (alias_free_activation(shifted, coeffs) - _shift(act, amount)).abs().max() < 1e-12
        expected = fractional_roll(down(x), (torch.tensor(amount, dtype=torch.float64) * ratio).expand(2, 2))
        assert (down(shifted) - expected).abs().max() < 1e-12
        # the layer norm over C, H, W commutes with shifts of a strictly band-limited map (the activation's output)
        norm = alias_free_layer_norm2d(_shift(act, amount)) - _shift(alias_free_layer_norm2d(act), amount)
        assert norm.abs().max() < 1e-12
    # what the alias-free forms fix: a pointwise ReLU and timm's per-position layer norm alias
    ln = timm.layers.LayerNorm2d(4).double()
    assert (torch.relu(_shift(act, (0.5, 0.5))) - _shift(torch.relu(act), (0.5, 0.5))).abs().max() > 1e-2
    assert (ln(_shift(act, (0.5, 0.5))) - _shift(ln(act), (0.5, 0.5))).abs().max() > 1e-2


def test_activation_is_the_pointwise_polynomial_below_a_quarter_band():
    """A map with |k| < H/4 squares to |k| < H/2: nothing to drop, so the layer equals the plain polynomial."""
    h = w = 16
    spec = torch.zeros(1, 2, h, w, dtype=torch.complex128)
    for ky in range(-3, 4):
        for kx in range(-3, 4):
            spec[..., ky % h, kx % w] = torch.randn(2, dtype=torch.complex128)
    x = torch.fft.ifft2(spec).real * h * w
    c = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    torch.testing.assert_close(alias_free_activation(x, c), c[0] + c[1] * x + c[2] * x * x, atol=1e-11, rtol=0)


def test_fit_polynomial_closed_forms():
    # (a quadrature on a 0.001 grid: ReLU's kink costs it some 1e-8)
    torch.testing.assert_close(fit_polynomial("relu"), torch.tensor(RELU_FIT, dtype=torch.float64), atol=1e-6, rtol=0)
    a2 = 0.75 / (2 * math.sqrt(math.pi))  # E[gelu'']/2 for x ~ N(0, 1)
    gelu = torch.tensor([1 / (2 * math.sqrt(math.pi)) - a2, 0.5, a2], dtype=torch.float64)
    torch.testing.assert_close(fit_polynomial("gelu"), gelu, atol=1e-9, rtol=0)
    # ReLU is positively homogeneous: fitting for N(0, s^2) is the N(0, 1) fit rescaled, s * p(x / s)
    s = 3.0
    scaled = torch.tensor([RELU_FIT[0] * s, 0.5, RELU_FIT[2] / s], dtype=torch.float64)
    torch.testing.assert_close(fit_polynomial("relu", s), scaled, atol=1e-6, rtol=0)
    act = AliasFreeActivation(5, "gelu")
    assert act.coefficients.shape == (5, 3) and act.coefficients.dtype == torch.float32
    assert torch.equal(act.coefficients, fit_polynomial("gelu").float().expand(5, 3))
    assert AliasFreeActivation(None).coefficients.shape == (3,)


def test_dtypes_gradients_and_empty_inputs():
    x = torch.randn(2, 3, 10, 10)
    layers = [AliasFreeDownsample2d(2), AliasFreeActivation(3), AliasFreeLayerNorm2d(3),
              AliasFreeConv2d(3, 5, 3, stride=2, padding=1)]
    for layer in layers:
        ref = layer(x)
        for dtype in (torch.bfloat16, torch.float16):
            out = layer.to(dtype)(x.to(dtype))
            assert out.dtype == dtype and (out.float() - ref).abs().max() < 0.05 * ref.abs().max()
        layer.float()
        for shape in [(0, 3, 10, 10)] + ([(2, 0, 10, 10)] if not isinstance(layer, (AliasFreeConv2d,
                                                                                      AliasFreeActivation,
                                                                                      AliasFreeLayerNorm2d)) else []):
            assert layer(torch.zeros(shape)).shape == (shape[0], ref.shape[1] if shape[1] else 0, *ref.shape[2:])
    for fn in (alias_free_downsample2d, alias_free_layer_norm2d,
               lambda t: alias_free_activation(t, torch.ones(3))):
        assert fn(torch.zeros(2, 0, 6, 6)).shape[:2] == (2, 0) and fn(torch.zeros(0, 2, 6, 6)).shape[0] == 0
    plain = alias_free_downsample2d(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # computed in float32 under autocast too
        assert torch.equal(alias_free_downsample2d(x), plain)
    # float64 is computed in float64 (float32 inputs in float32)
    x64 = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    assert alias_free_downsample2d(x64).dtype == torch.float64
    assert (alias_free_downsample2d(x64) - alias_free_downsample2d(x64.float()).double()).abs().max() > 1e-12
    # gradients, to the input and to the coefficients
    small = x64[:, :, :4, :5].clone().requires_grad_(True)
    c = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(alias_free_activation, (small, c))
    assert torch.autograd.gradcheck(lambda t: alias_free_downsample2d(t, 2), (x64.requires_grad_(True),))


def test_layer_norm_centres_each_position_and_loads_timm_weights():
    """The paper's layer norm: the mean over channels at each position, the variance over C, H, W (a linear step,
    then one scalar per sample); so a ramp shared by all channels is removed exactly, as timm's layer norm does."""
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    timm_norm = timm.layers.LayerNorm2d(6).double()
    with torch.no_grad():
        timm_norm.weight.uniform_(0.5, 1.5)
        timm_norm.bias.normal_()
    norm = AliasFreeLayerNorm2d(6).double()
    norm.load_state_dict(timm_norm.state_dict(), strict=True)
    centred = x - x.mean(1, keepdim=True)
    want = centred / (centred.var((1, 2, 3), unbiased=False, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(norm(x), want * norm.weight.view(6, 1, 1) + norm.bias.view(6, 1, 1))
    ramp = torch.linspace(-3, 3, 7, dtype=torch.float64)  # the same at every channel: gone after centring
    torch.testing.assert_close(norm(x + ramp), norm(x))
    group = nn.GroupNorm(1, 6, eps=1e-6).double()  # mean over C, H, W: the ramp would stay
    assert (group(x + ramp) - group(x)).abs().max() > 0.1
    nhwc = AliasFreeLayerNorm2d.from_norm(timm_norm, layout="NHWC")
    torch.testing.assert_close(nhwc(x.permute(0, 2, 3, 1)), norm(x).permute(0, 2, 3, 1))
    assert nhwc.weight is timm_norm.weight
    plain = AliasFreeLayerNorm2d(6)
    half = plain(x.bfloat16())  # 16-bit inputs: statistics in float32
    assert half.dtype == torch.bfloat16 and (half.double() - plain.double()(x)).abs().max() < 5e-2


def test_alias_free_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 8)
    conv = nn.Conv2d(4, 6, 3, padding=1, padding_mode="circular")
    torch.testing.assert_close(AliasFreeConv2d.from_conv(conv)(x), conv(x))
    # a 2x2 map under a 7x7 kernel wraps several times: the circular convolution of the periodic map
    small = torch.randn(1, 4, 2, 2)
    dw = AliasFreeConv2d(4, 4, 7, padding=3, groups=4)
    tiled = dw(small.repeat(1, 1, 4, 4))[..., 4:6, 4:6]
    torch.testing.assert_close(dw(small), tiled)
    # strided: the stride-1 circular convolution, then the ideal downsampling; even kernels pad (0, 1)
    strided = AliasFreeConv2d.from_conv(nn.Conv2d(4, 6, 2, stride=2))
    assert strided.pads == (0, 1, 0, 1) and strided.stride == (1, 1)
    dense = nn.functional.conv2d(nn.functional.pad(x, (0, 1, 0, 1), mode="circular"), strided.weight, strided.bias)
    torch.testing.assert_close(strided(x), alias_free_downsample2d(dense, 2))
    one = AliasFreeConv2d(4, 6, 1, stride=2, bias=False)
    assert one.downsample_first
    dense = nn.functional.conv2d(x, one.weight)
    torch.testing.assert_close(one(x), alias_free_downsample2d(dense, 2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: alias_free_activation(torch.zeros(1, 3, 4, 4), torch.zeros(4, 3)), r"shape \(3,\) or \(channels, 3\)"),
    (lambda: AliasFreeLayerNorm2d(3, layout="NCWH"), "layout must be 'NCHW'"),
    (lambda: AliasFreeConv2d(3, 3, 3, padding=3), "padding=.* is larger than the kernel's reach"),
    (lambda: fit_polynomial("silu"), "approximates must be one of"),
    (lambda: alias_free_downsample2d(torch.zeros(1, 3, 4, 4), 0), "stride must be an int >= 1"),
    (lambda: fractional_roll(torch.zeros(3, 4, 4), torch.zeros(3, 2)), r"expects a 4D \(N, C, H, W\) input"),
])
def test_bad_arguments(call, message):
    with pytest.raises(TimmAAError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("call, message", [
    (lambda: alias_free_activation(torch.zeros(1, 3, 4, 4), [0.0, 0.0, 1.0]), "coefficients must be a torch.Tensor"),
    (lambda: fractional_roll(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 2)), "floating-point"),
])
def test_bad_argument_types(call, message):
    """Integer images would be rounded back silently after the phase shift; lists have no shape."""
    with pytest.raises(TypeError, match=message):
        call()


def _small_afc() -> nn.Module:
    return nn.Sequential(AliasFreeConv2d(3, 8, 3, stride=2, padding=1), AliasFreeLayerNorm2d(8),
                         AliasFreeActivation(8), AliasFreeDownsample2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_export():
    """torch.export and ONNX (the matmul path; maps up to MATRIX_MAX_SIZE) give the module's numbers."""
    ort = pytest.importorskip("onnxruntime")
    import io

    model, x = _small_afc(), torch.randn(2, 3, 16, 16)
    ref = model(x)
    torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), ref)
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, dynamo=False)
    session = ort.InferenceSession(buffer.getvalue())
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=1e-5)


# --- models -----------------------------------------------------------------------------------------------------


def _calibrated(model: nn.Module, size: int) -> nn.Module:
    """Random BatchNorm affine parameters with running statistics measured on noise (train-mode pass), in eval.

    A polynomial activation is not positively homogeneous: with statistics unrelated to the activations (random
    running variances), the squares compound layer after layer and overflow float32.
    """
    randomize_batchnorm(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
        if isinstance(m, (AliasFreeLayerNorm2d, nn.LayerNorm)) and m.weight is not None:
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(1)))
    return model.eval()


def _max_relative_difference(model: nn.Module, size: int, dtype: torch.dtype, shifts=SHIFTS) -> list[float]:
    model = model.to(dtype).eval()
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(dtype)  # not band-limited
    batch = torch.cat([x] + [_shift(x, s) for s in shifts])
    with torch.no_grad():
        out = model(batch)
    return [((o - out[0]).abs().max() / out[0].abs().max()).item() for o in out[1:]]


def _afc(name: str, **kwargs) -> nn.Module:
    """The registered alias-free model (``resnet18_afc``, ``convnext_tiny_afc``), every residual branch switched on."""
    torch.manual_seed(0)
    kwargs = dict(zero_init_last=False) if name.startswith("resnet") else dict(ls_init_value=1.0, **kwargs)
    return timm.create_model(f"{name}_afc", **kwargs)


@pytest.mark.parametrize("name, kwargs, size", [
    pytest.param("resnet18", {}, 96, marks=pytest.mark.slow),
    ("resnet18", {}, 40),  # the demo's crops: 40 -> 20 -> 10 -> 10 -> 5 -> 3 -> 2, none a multiple of 32
    pytest.param("convnext_tiny", dict(depths=(1, 1, 1, 1)), 96, marks=pytest.mark.slow),
])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
def test_alias_free_logits_are_invariant_to_fractional_shifts(name, kwargs, size, dtype, tol):
    """Issue 19, acceptance 1, on the registered models: random weights, eval mode, white-noise input; real and
    integer circular shifts."""
    model = _calibrated(_afc(name, **kwargs), size)
    diffs = _max_relative_difference(model, size, dtype)
    assert max(diffs) <= tol, diffs


@pytest.mark.slow
def test_the_real_convnext_tiny_is_invariant():
    model = _calibrated(_afc("convnext_tiny"), 64)
    assert len(model.stages[2].blocks) == 9
    diffs = _max_relative_difference(model, 64, torch.float32, shifts=SHIFTS[2:])
    assert max(diffs) <= 1e-4, diffs


@pytest.mark.parametrize("name", ["resnet18_aa", "resnet18_aps"])
def test_blurpool_and_aps_models_are_not_invariant_to_fractional_shifts(name):
    """The contrast: at 96x96 APS is exact for integer shifts (a multiple of its stride), BlurPool is not; neither is
    for fractional ones (relative logit differences of 1e-2 and more)."""
    torch.manual_seed(0)
    model = randomize_batchnorm(timm.create_model(name))
    diffs = _max_relative_difference(model, 96, torch.float64)
    fractional, integer = diffs[:-1], diffs[-1]
    assert min(fractional) > 5e-3, diffs
    assert (integer < 1e-9) if name.endswith("_aps") else (integer > 5e-3), diffs


def test_conversion_keeps_parameter_names_and_is_idempotent():
    base = timm.create_model("convnext_tiny", depths=(1, 1, 1, 1))
    model = alias_free(timm.create_model("convnext_tiny", depths=(1, 1, 1, 1)))
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert result.unexpected_keys == [] and result.missing_keys == new_parameter_names(model)
    assert result.missing_keys == [f"stages.{i}.blocks.0.mlp.act.coefficients" for i in range(4)]
    assert [model.stages[i].blocks[0].mlp.act.coefficients.shape[0] for i in range(4)] == [384, 768, 1536, 3072]
    assert model.stages[0].blocks[0].norm.layout == "NHWC" and model.stem[1].layout == "NCHW"
    modules = dict(model.named_modules())
    assert dict(alias_free(model).named_modules()) == modules  # converting twice changes nothing
    r18d = alias_free(timm.create_model("resnet18d"))  # deep stem, average-pool shortcut
    assert isinstance(r18d.layer2[0].downsample[0], AliasFreeDownsample2d)
    assert r18d.eval()(torch.randn(1, 3, 40, 40)).shape == (1, 1000)


def test_unconvertible_models_are_refused_unchanged():
    model = timm.create_model("resnet18", act_layer="silu")
    before = {n: type(m) for n, m in model.named_modules()}
    with pytest.raises(TimmAAError, match=r"^act1: SiLU has no alias-free form"):
        alias_free(model)
    assert {n: type(m) for n, m in model.named_modules()} == before
    with pytest.raises(TimmAAError, match="global 'max' pooling"):
        alias_free(timm.create_model("resnet18", global_pool="max"))


def test_converted_models_train_trace_and_build_on_meta():
    model = alias_free(timm.create_model("resnet18", num_classes=4)).train()
    model(torch.randn(4, 3, 40, 40)).logsumexp(1).mean().backward()
    assert model.act1.coefficients.grad.abs().sum() > 0 and model.conv1.weight.grad.abs().sum() > 0
    features = timm.models.create_feature_extractor(model.eval(), return_nodes=["layer2", "layer4"])  # fx
    assert [f.shape for f in features(torch.randn(1, 3, 64, 64)).values()] == [(1, 128, 8, 8), (1, 512, 2, 2)]
    with torch.device("meta"):
        meta = alias_free(timm.create_model("convnext_tiny", depths=(1, 1, 1, 1)))
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    assert meta(torch.empty(2, 3, 64, 64, device="meta")).shape == (2, 1000)
