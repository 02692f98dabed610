"""The alias-free XCiT (Michaeli & Soudry, NeurIPS 2025; issue 29, acceptance 2): each part equivariant (or the
class token invariant) under fractional circular shifts of a band-limited map, timm's part not; the registered
``xcit_nano_12_p16_224_afc`` invariant within 1e-6 relative in float64; timm's weights, timm's API, export."""

from __future__ import annotations

import math
import threading
import warnings

import pytest
import timm
import torch
from timm.layers import Mlp
from timm.models._manipulate import checkpoint
from timm.models.vision_transformer import Attention
from timm.models.xcit import LPI, XCA, ClassAttentionBlock, ConvPatchEmbed
from torch import nn

import timm_aa  # noqa: F401  (registers the models)
from timm_aa.consistency import fractional_roll
from timm_aa.convert.alias_free import alias_free, new_parameter_names
from timm_aa.convert.alias_free_xcit import AliasFreeXcit, alias_free_xcit
from timm_aa.errors import TimmAAError
from timm_aa.hub import model_args_of, verify_folder, write_export
from timm_aa.layers import AliasFreeActivation, AliasFreeTokenNorm, alias_free_downsample2d, alias_free_softmax
from timm_aa.layers.spectral import spectral_resample

NAME, BASE = "xcit_nano_12_p16_224_afc", "xcit_nano_12_p16_224"
DIGITS = "xcit_nano_4_p8_40_afc"  # the digits demo's size: patches of 8, 4 blocks, 40 px
SHIFTS = [(0.5, 0.5), (1.25, 1.25), (-3.7, -3.7), (16.25, 16.25), (0.5, -3.7), (3.0, 7.0)]  # the last: integers
SMALL = dict(embed_dim=32, num_heads=4, depth=2)  # the nano's layout, narrower and shallower
F64 = dict(dtype=torch.float64)


def _band_limited(batch: int, channels: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """White noise low-passed to |k| < side / 2 (no Nyquist bin): a fractional shift of it is exact."""
    noise = torch.randn(batch, channels, 2 * h, 2 * w, generator=torch.Generator().manual_seed(seed), **F64)
    return alias_free_downsample2d(noise, 2) * 2


def _shift(x: torch.Tensor, amount: tuple[float, float], scale: float = 1.0) -> torch.Tensor:
    return fractional_roll(x, torch.tensor([amount], **F64).expand(x.shape[0], 2) * scale)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


def _grid(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _equivariance_error(layer, x: torch.Tensor, shifts=SHIFTS[:4]) -> float:
    """max over shifts of |layer(shift(x)) - shift(layer(x))| / max|layer(x)|, for a layer on (B, C, H, W) maps."""
    out = layer(x)
    return max(_relative(layer(_shift(x, s)), _shift(out, s)) for s in shifts)


def _randomized(model: nn.Module, size: int, seed: int = 0) -> nn.Module:
    """Weights whose every path matters: unit-gain linear layers, a unit class token, layer scales in [0.5, 1] (the
    nano's start at 1.0 but its 0.02-std linear layers make the class token nearly input-blind), norm affines drawn,
    BatchNorm statistics measured on noise (a polynomial activation is not homogeneous); eval mode."""
    gen = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("coefficients"):
                continue
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            elif name.endswith("cls_token"):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif "gamma" in name:
                p.copy_(torch.rand(p.shape, generator=gen) * 0.5 + 0.5)
            elif p.dim() == 1 and "norm" in name:
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5 if name.endswith("weight") else
                        torch.randn(p.shape, generator=gen) * 0.2)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype))
    return model.eval()


def _small_afc(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return alias_free(timm.create_model(BASE, **{**SMALL, **kwargs}))


# --- each part ----------------------------------------------------------------------------------------------------


def test_patch_embedding_is_equivariant():
    """Strided convs + BN + GELU: circular convs with ideal downsampling and polynomial activations shift the token map
    by shift / 16 exactly; timm's zero-padded strided convs and pointwise GELU do not."""
    torch.manual_seed(0)
    embed = ConvPatchEmbed(64, 16, 3, 32).double()
    model = _randomized(alias_free(timm.create_model(BASE, **SMALL)).double(), 64)
    x = _band_limited(2, 3, 64, 64)
    for layer, tol in ((model.patch_embed, 1e-12), (_randomized(embed, 64), None)):
        tokens, grid = layer(x)
        assert grid == (4, 4)
        errors = [_relative(_grid(layer(_shift(x, s))[0], 4, 4), _shift(_grid(tokens, 4, 4), s, 1 / 16))
                  for s in SHIFTS]
        assert max(errors) < tol if tol else min(errors) > 1e-2, errors


def test_token_norm_is_equivariant_and_keeps_timms_parameters():
    x = _band_limited(2, 8, 6, 6)
    timm_norm = nn.LayerNorm(8, eps=1e-6).double()
    with torch.no_grad():
        timm_norm.weight.uniform_(0.5, 1.5)
        timm_norm.bias.normal_()
    norm = AliasFreeTokenNorm.from_norm(timm_norm)
    assert norm.weight is timm_norm.weight and sorted(norm.state_dict()) == ["bias", "weight"]
    as_map = lambda layer: lambda m: _grid(layer(_tokens(m)), 6, 6)  # noqa: E731
    assert _equivariance_error(as_map(norm), x) < 1e-12
    assert _equivariance_error(as_map(timm_norm), x) > 1e-2  # each token divided by its own deviation: aliases
    tokens = _tokens(x)
    centred = tokens - tokens.mean(-1, keepdim=True)
    want = centred / (centred.square().mean((1, 2), keepdim=True) + 1e-6).sqrt() * timm_norm.weight + timm_norm.bias
    torch.testing.assert_close(norm(tokens), want)
    cls = torch.randn(2, 1, 8, **F64)  # a prefix token: timm's layer norm, the same weights
    both = norm(torch.cat([cls, tokens], 1), 1)
    torch.testing.assert_close(both, torch.cat([timm_norm(cls), want], 1))
    torch.testing.assert_close(norm(cls, 1), timm_norm(cls))


def test_xca_is_equivariant_and_softmax_self_attention_is_not():
    """XCA normalises q and k along the tokens and mixes channels by a softmax of inner products over the grid: all
    invariant (Parseval), so XCA commutes with fractional shifts as timm wrote it. Token self-attention's softmax is a
    pointwise function of each token pair: it does not."""
    torch.manual_seed(0)
    x = _band_limited(2, 16, 6, 6)
    xca, attention = XCA(16, num_heads=4).double().eval(), Attention(16, num_heads=4).double().eval()
    with torch.no_grad():
        xca.temperature.uniform_(0.5, 3.0)
    assert xca.qkv(_tokens(x)).shape[-1] == 48  # the normalisation runs over dim -1 of (B, heads, C/h, N): tokens
    as_map = lambda layer: lambda m: _grid(layer(_tokens(m)), 6, 6)  # noqa: E731
    with torch.no_grad():
        assert _equivariance_error(as_map(xca), x) < 1e-12
        assert _equivariance_error(as_map(attention), x) > 1e-3


def test_lpi_and_mlp_are_equivariant():
    """LPI's depthwise convs pad circularly and its GELU is the polynomial; the MLP's GELU works on the token grid."""
    model = _randomized(_small_afc().double(), 32)
    block = model.blocks[0]
    assert isinstance(block.local_mp.act, AliasFreeActivation) and block.local_mp.conv1.padding_mode == "circular"
    assert block.mlp.act.layout == "NHWC" and block.mlp.act.coefficients.shape == (128, 3)
    torch.manual_seed(0)
    timm_lpi, timm_mlp = LPI(32).double().eval(), Mlp(32, 128).double().eval()
    x = _band_limited(2, 32, 6, 6)
    with torch.no_grad():
        lpi = lambda layer: lambda m: _grid(layer(_tokens(m), 6, 6), 6, 6)  # noqa: E731
        assert _equivariance_error(lpi(block.local_mp), x) < 1e-12
        assert _equivariance_error(lpi(timm_lpi), x) > 1e-2
        mlp = lambda layer: lambda m: layer(m.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # noqa: E731
        assert _equivariance_error(mlp(block.mlp), x) < 1e-12
        assert _equivariance_error(mlp(timm_mlp), x) > 1e-2
        whole = lambda layer: lambda m: _grid(layer(_tokens(m), 6, 6), 6, 6)  # noqa: E731
        assert _equivariance_error(whole(block), x) < 1e-12


def test_alias_free_softmax_is_the_continuous_taylor_softmax():
    """weights @ v = (p(s0) v0 + N <p(s) v>) / (p(s0) + N <p(s)>), <.> the mean over the continuous grid, computed
    here pointwise on a 3x finer grid (p(s) v holds |k| < 3N/2 < 3N: no aliasing there)."""
    torch.manual_seed(0)
    s, v = _band_limited(2, 3, 5, 6), _band_limited(2, 3, 5, 6, seed=1)  # 3 heads' scores and one value channel
    s0, v0 = torch.randn(2, 3, 1, **F64), torch.randn(2, 3, 1, **F64)
    weights = alias_free_softmax(torch.cat([s0, s.flatten(2)], -1), (5, 6), num_prefix_tokens=1)
    got = (weights * torch.cat([v0, v.flatten(2)], -1)).sum(-1)
    p = lambda t: 1 + t + t * t / 2  # noqa: E731
    fine_s, fine_v = spectral_resample(s, (15, 18)), spectral_resample(v, (15, 18))
    numerator = p(s0[..., 0]) * v0[..., 0] + 30 * (p(fine_s) * fine_v).mean((-2, -1))
    torch.testing.assert_close(got, numerator / (p(s0[..., 0]) + 30 * p(fine_s).mean((-2, -1))), atol=1e-12, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, **F64))
    with pytest.raises(TimmAAError, match="a 5x5 grid needs 25 patch tokens"):
        alias_free_softmax(weights, (5, 5), num_prefix_tokens=1)


@pytest.mark.parametrize("tokens_norm", [False, True])
def test_class_attention_is_invariant_and_timms_is_not(tokens_norm):
    """The class token's attention over the tokens: timm's softmax (exp of each token's score) changes under a
    fractional shift; the alias-free softmax gives the same class token, and the patch tokens stay equivariant
    (``tokens_norm=True``, the larger XCiTs': the second norm on every token too)."""
    model = _randomized(_small_afc(tokens_norm=tokens_norm).double(), 32)
    block = model.cls_attn_blocks[0]
    assert block.tokens_norm == tokens_norm
    torch.manual_seed(0)
    timm_block = ClassAttentionBlock(32, 4, qkv_bias=True, tokens_norm=tokens_norm).double().eval()
    timm_block.load_state_dict(block.state_dict())
    x = _band_limited(2, 32, 6, 6)
    cls = torch.randn(2, 1, 32, **F64)

    def run(layer, m, grid=True):
        out = layer(torch.cat([cls, _tokens(m)], 1), *((6, 6),) * grid)
        return out[:, 0], _grid(out[:, 1:], 6, 6)

    with torch.no_grad():
        ours, timms = run(block, x), run(timm_block, x, grid=False)
        for s in SHIFTS[:4]:
            cls_shifted, patches_shifted = run(block, _shift(x, s))
            assert _relative(cls_shifted, ours[0]) < 1e-12
            assert _relative(patches_shifted, _shift(ours[1], s)) < 1e-12
            assert _relative(run(timm_block, _shift(x, s), grid=False)[0], timms[0]) > 1e-3
    assert isinstance(block.mlp.act, nn.GELU)  # on the class token alone (one vector): nothing to alias


# --- the model ----------------------------------------------------------------------------------------------------


def _logit_differences(model: nn.Module, size: int, shifts=SHIFTS) -> tuple[list[float], float]:
    """Relative logit differences under each shift (worst image), and how much the logits vary across images."""
    x = _band_limited(2, 3, size, size, seed=2).to(next(model.parameters()).dtype)
    with torch.no_grad():  # one batch (float64 depthwise convolutions are slow on CPU: few images)
        out = model(torch.cat([x] + [_shift(x, s) for s in shifts])).view(1 + len(shifts), 2, -1)
    diffs = [((o - out[0]).abs().amax(1) / out[0].abs().amax(1)).max().item() for o in out[1:]]
    return diffs, _relative(out[0, 1], out[0, 0])


@pytest.mark.parametrize("name, size", [(NAME, 64), pytest.param(DIGITS, 40, marks=pytest.mark.slow)])
def test_the_registered_model_is_invariant_in_float64(name, size):
    """Acceptance 2: random weights, float64, a band-limited input, shifts of 0.5, 1.25, -3.7 and 16.25 pixels (and
    mixed, and integer): within 1e-6 relative (measured: a few 1e-15), while the logits vary by tens of percent from
    image to image. The digits model's 40 px give odd maps: 40 -> 20 -> 10 -> 5x5 tokens."""
    torch.manual_seed(0)
    model = _randomized(timm.create_model(name, dtype=torch.float64), size)
    diffs, spread = _logit_differences(model, size)
    assert max(diffs) < 1e-6, diffs
    assert spread > 0.05, spread


def test_the_unconverted_xcit_is_not_invariant():
    torch.manual_seed(0)
    model = _randomized(timm.create_model(BASE, dtype=torch.float64), 64)
    diffs, spread = _logit_differences(model, 64, SHIFTS[:4])
    assert min(diffs) > 1e-2 and spread > 0.05, (diffs, spread)


@pytest.mark.slow
def test_the_registered_model_is_invariant_at_224():
    torch.manual_seed(0)
    model = _randomized(timm.create_model(NAME, dtype=torch.float64), 224)
    diffs, spread = _logit_differences(model, 224)
    assert max(diffs) < 1e-6 and spread > 0.05, (diffs, spread)
    model.float()
    diffs, _ = _logit_differences(model, 224)
    assert max(diffs) < 1e-4, diffs


def test_float32_and_avg_pooling_and_tokens():
    """float32 within 1e-4; global_pool='avg' (the mean of the patch tokens) invariant too; '' gives the tokens."""
    torch.manual_seed(0)
    model = _randomized(_small_afc(global_pool="avg"), 40)
    diffs, spread = _logit_differences(model.double(), 40)
    assert max(diffs) < 1e-9 and spread > 0.05, (diffs, spread)
    diffs, _ = _logit_differences(model.float(), 40)
    assert max(diffs) < 1e-4, diffs
    tokens = _small_afc(num_classes=0, global_pool="").eval()
    assert tokens(torch.randn(2, 3, 64, 64)).shape == (2, 1 + 16, 32)


# --- conversion, weights ------------------------------------------------------------------------------------------


def test_timms_weights_load_all_but_the_position_encoding():
    """The base's state dict into the converted model: exactly the position encoding's two keys are left over, and
    exactly the activations' coefficients are missing (3 in the patch embedding, 2 per block)."""
    torch.manual_seed(0)
    base = timm.create_model(BASE)
    model = timm.create_model(NAME)
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert result.unexpected_keys == ["pos_embed.token_projection.weight", "pos_embed.token_projection.bias"]
    assert result.missing_keys == new_parameter_names(model) and len(result.missing_keys) == 3 + 2 * 12
    assert model.pos_embed is None and "pos_embed" not in dict(model.named_children())


def test_pretrained_loads_the_bases_weights_and_keeps_the_fitted_coefficients(tmp_path):
    """pretrained=True (a local file in place of the Hub's): every base weight but the position encoding loads, the
    coefficients keep the GELU fit; num_classes, in_chans and features_only as timm does them."""
    torch.manual_seed(0)
    base = timm.create_model(BASE, depth=2)
    path = str(tmp_path / "xcit.pth")
    torch.save(base.state_dict(), path)
    load = dict(pretrained=True, pretrained_cfg_overlay=dict(file=path), depth=2)
    model = timm.create_model(NAME, **load)
    state, new = model.state_dict(), new_parameter_names(model)
    assert sorted(set(base.state_dict()) - set(state)) == ["pos_embed.token_projection.bias",
                                                           "pos_embed.token_projection.weight"]
    assert [k for k in state if k not in new and not torch.equal(state[k], base.state_dict()[k])] == []
    fitted = torch.tensor([0.0705, 0.5, 0.2116])  # fit_polynomial('gelu')
    assert all(torch.allclose(state[k], fitted.expand_as(state[k]), atol=1e-4) for k in new)
    small = timm.create_model(NAME, num_classes=4, in_chans=1, **load)
    assert small.head.out_features == 4
    conv = "patch_embed.proj.0.0.weight"
    torch.testing.assert_close(small.state_dict()[conv], base.state_dict()[conv].sum(1, keepdim=True))
    features = timm.create_model(NAME, features_only=True, out_indices=(0, 1), **load)
    assert torch.equal(features.model.blocks[1].mlp.fc1.weight, base.blocks[1].mlp.fc1.weight)
    assert isinstance(features.model, AliasFreeXcit) and features.model.pos_embed is None


def test_conversion_is_idempotent_and_refuses_what_it_cannot_convert():
    model = _small_afc()
    modules = dict(model.named_modules())
    assert dict(alias_free(model).named_modules()) == modules
    assert alias_free_xcit(model) is model
    silu = timm.create_model(BASE, act_layer=nn.SiLU, **SMALL)
    before = {n: type(m) for n, m in silu.named_modules()}
    with pytest.raises(TimmAAError, match=r"^patch_embed\.proj\.1: SiLU has no alias-free form"):
        alias_free(silu)
    assert {n: type(m) for n, m in silu.named_modules()} == before and silu.pos_embed is not None
    with pytest.raises(TimmAAError, match="num_prefix_tokens=2 is not in"):
        model.norm(torch.randn(1, 1, 32), 2)


# --- timm's API, export, threads ----------------------------------------------------------------------------------


def test_timm_api():
    assert NAME in timm.list_models("*_afc") and NAME not in timm.list_models(module="xcit")
    cfg = timm.models.get_pretrained_cfg(NAME)
    assert cfg.paper_ids == "arXiv:2510.22673" and cfg.hf_hub_id == timm.models.get_pretrained_cfg(BASE).hf_hub_id
    model = timm.create_model(NAME, num_classes=5, img_size=64, act_scale=2.0, **SMALL).eval()
    assert model_args_of(model) == {"act_scale": 2.0} and model.patch_embed.img_size == (64, 64)
    assert model.blocks[0].mlp.act.scale == 2.0
    x = torch.randn(2, 3, 64, 48)
    out = model(x)
    assert out.shape == (2, 5)
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), out)
    assert model.forward_features(x).shape == (2, 1 + 4 * 3, 32)
    final, maps = model.forward_intermediates(x)
    torch.testing.assert_close(model.forward_head(final), out)
    assert [m.shape for m in maps] == [(2, 32, 4, 3)] * 2
    tokens = model.forward_intermediates(x, indices=[0], output_fmt="NLC", norm=True, intermediates_only=True)
    assert tokens[0].shape == (2, 12, 32)
    first = model.forward_intermediates(x, indices=[0], stop_early=True, intermediates_only=True)
    torch.testing.assert_close(first[0], maps[0])
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    features = timm.create_model(NAME, features_only=True, out_indices=(0, 1), **SMALL).eval()
    assert [f.shape for f in features(x)] == [(2, 32, 4, 3)] * 2
    assert features.feature_info.channels() == [32, 32] and features.feature_info.reduction() == [16, 16]
    digits = timm.create_model(DIGITS, num_classes=10).eval()
    assert (len(digits.blocks), digits.patch_embed.patch_size, digits.embed_dim) == (4, 8, 128)
    assert digits.forward_features(torch.randn(1, 3, 40, 40)).shape == (1, 1 + 5 * 5, 128)
    assert timm.models.get_pretrained_cfg(DIGITS).input_size == (3, 40, 40)


def test_gradient_checkpointing_gives_the_same_numbers(monkeypatch):
    import timm_aa.convert.alias_free_xcit as module

    model = _small_afc().train()
    x = torch.randn(2, 3, 48, 48)
    out = model(x)
    out.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    calls = []
    monkeypatch.setattr(module, "checkpoint", lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    model.zero_grad()
    model.set_grad_checkpointing(True)
    again = model(x)
    again.square().sum().backward()
    assert len(calls) == 2 + 2  # every block and class-attention block
    torch.testing.assert_close(again, out)
    assert all(torch.allclose(p.grad, grads[n], atol=1e-6) for n, p in model.named_parameters())


def test_training_reaches_every_parameter():
    model = _small_afc(num_classes=3).train()
    nn.functional.cross_entropy(model(torch.randn(4, 3, 40, 40)), torch.tensor([0, 1, 2, 0])).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_meta_device_and_dtype():
    model = timm.create_model(NAME, device="meta", dtype=torch.bfloat16)
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    assert [k for k, t in tensors.items() if not t.is_meta or t.dtype != torch.bfloat16 and t.is_floating_point()] == []
    assert model(torch.empty(2, 3, 224, 224, device="meta", dtype=torch.bfloat16)).shape == (2, 1000)


def test_threads_share_one_model():
    """One model, four threads, different inputs: each gets the serial result bit for bit (no per-call state)."""
    model = _small_afc().eval()
    inputs = [torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    with torch.no_grad():
        serial = [model(x) for x in inputs]
    results: dict[int, torch.Tensor] = {}

    def work(i: int) -> None:
        with torch.no_grad():
            for _ in range(3):
                results[i] = model(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(results[i], serial[i]) for i in range(4))


def test_torch_export():
    model = _small_afc(depth=1).eval()
    x = torch.randn(2, 3, 32, 32)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=16)},))
    with torch.no_grad():
        for batch in (1, 3):
            y = torch.randn(batch, 3, 32, 32)
            torch.testing.assert_close(program.module()(y), model(y), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dynamo", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["torchscript", "dynamo"])
def test_onnx_export_runs_in_onnxruntime(dynamo, tmp_path):
    """Both exporters, a dynamic batch at a fixed size (the resampling matrices are constants of the graph)."""
    ort = pytest.importorskip("onnxruntime")
    if dynamo:
        pytest.importorskip("onnxscript")
    model = _small_afc(depth=1).eval()
    path = str(tmp_path / "xcit_afc.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(model, (torch.randn(2, 3, 48, 48),), path, dynamo=True, verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=16)},))
        else:
            torch.onnx.export(model, (torch.randn(2, 3, 48, 48),), path, dynamo=False, input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}})
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, 3, 48, 48)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert abs(got - want).max() <= 1e-4 * abs(want).max()


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_onnx_export_of_the_full_model(dynamo, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = timm.create_model(NAME).eval()
    path = str(tmp_path / "xcit_nano_afc.onnx")
    x = torch.randn(2, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), path, dynamo=dynamo, **({} if dynamo else dict(input_names=["x"])))
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert abs(got - want).max() <= 1e-4 * abs(want).max()


def test_export_round_trips_through_timm_and_transformers(tmp_path):
    """Trained coefficients and act_scale travel: local-dir: rebuilds the model, and transformers loads it too
    (what scripts/publish.py checks; the digits model, for time)."""
    torch.manual_seed(0)
    model = timm.create_model(DIGITS, num_classes=3, act_scale=1.5).eval()
    with torch.no_grad():
        model.blocks[0].mlp.act.coefficients.normal_(0, 0.3)
    folder = write_export(model, str(tmp_path / "export"), data_config=dict(input_size=(3, 40, 40)))
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert isinstance(loaded, AliasFreeXcit) and loaded._model_args["act_scale"] == 1.5
    assert torch.equal(loaded.blocks[0].mlp.act.coefficients, model.blocks[0].mlp.act.coefficients)
    assert verify_folder(folder, model) == {"timm": 0.0, "transformers": 0.0}

