"""Small random models of timm's 19 patchify families, made to depend on their input (shared by the patchify tests)."""

from __future__ import annotations

import math
from typing import Any

import timm
import torch
from conftest import randomize_batchnorm
from timm.models.convmixer import ConvMixer
from timm.models.mlp_mixer import MlpMixer

#: one small model per family: (timm name or class, kwargs, input size)
FAMILIES: dict[str, tuple[Any, dict[str, Any], int]] = {
    "vision_transformer": ("test_vit", dict(img_size=64), 64),
    "deit": ("deit_tiny_distilled_patch16_224", dict(img_size=64, depth=2), 64),
    "eva": ("eva02_tiny_patch14_224", dict(img_size=56, depth=2, num_classes=10), 56),
    "beit": ("beit_base_patch16_224", dict(img_size=64, embed_dim=64, depth=2, num_heads=2), 64),
    "cait": ("cait_xxs24_224", dict(img_size=64, depth=2, embed_dim=64, num_heads=2), 64),
    "convit": ("convit_tiny", dict(img_size=64, depth=2, embed_dim=64, num_heads=4, local_up_to_layer=1), 64),
    "convmixer": (ConvMixer, dict(dim=32, depth=2, patch_size=4, kernel_size=3, num_classes=10), 64),
    "mlp_mixer": (MlpMixer, dict(img_size=64, patch_size=8, num_blocks=2, embed_dim=64, num_classes=10), 64),
    "hiera": ("hiera_tiny_224", dict(img_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 1, 1, 1)), 64),
    "vision_transformer_sam": ("samvit_base_patch16", dict(img_size=64, embed_dim=64, depth=2, num_heads=2,
                                                           window_size=2, global_attn_indexes=(1,), num_classes=10,
                                                           neck_chans=16), 64),
    "swin_transformer": ("swin_tiny_patch4_window7_224", dict(img_size=64, window_size=4, depths=(1, 1),
                                                              num_heads=(1, 2), embed_dim=16), 64),
    "swin_transformer_v2": ("swinv2_tiny_window8_256", dict(img_size=64, window_size=4, depths=(1, 1),
                                                            num_heads=(1, 2), embed_dim=16), 64),
    "swin_transformer_v2_cr": ("swinv2_cr_tiny_224", dict(img_size=(64, 64), window_size=4, depths=(1, 1),
                                                          num_heads=(1, 2), embed_dim=16), 64),
    "vision_transformer_relpos": ("test_vit_relpos", dict(img_size=64), 64),
    "tnt": ("tnt_s_patch16_224", dict(img_size=64, depth=2, embed_dim=64, inner_dim=16, num_heads_outer=2,
                                      num_heads_inner=2), 64),
    "naflexvit": ("naflexvit_base_patch16_gap", dict(embed_dim=64, depth=2, num_heads=2), 64),
    "deepseek_vit": ("deepseek_vit_412m", dict(embed_dim=64, depth=2, num_heads=2), 56),
    "gemma4_vit": ("gemma4_vit_167m", dict(embed_dim=64, depth=2, num_heads=2), 48),
    "qwen3_vit": ("qwen3_vit_88m", dict(embed_dim=64, depth=2, num_heads=2), 64),
}


def redraw_constants(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Make a random model pass its input on: linear and conv weights re-drawn at unit gain (timm's 0.02-std
    initialisation fades a signal), every parameter whose entries are all equal (zero-initialised heads, biases,
    tokens, layer scales, norm weights) re-drawn, batch norms randomised; returned in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / math.sqrt(fan_in))
        for p in model.parameters():
            if p.numel() and p.dtype.is_floating_point and p.min() == p.max():
                if p.dim() >= 2:
                    p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
                elif p.max() != 0:  # layer scales, norm weights
                    p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
                else:
                    p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    return randomize_batchnorm(model, seed)


def family_model(family: str, **overrides: Any) -> tuple[torch.nn.Module, int]:
    """(random model of ``family`` in eval mode that depends on its input, its input size)."""
    name, kwargs, size = FAMILIES[family]
    kwargs = {**kwargs, **overrides}
    model = timm.create_model(name, **kwargs) if isinstance(name, str) else name(**kwargs)
    return redraw_constants(model), size


def structured_images(batch: int, size: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """Images whose batch members differ in what a pooled network sees: per-image colour offsets and contrast, a
    smooth random layout (bilinear from 4x4) and pixel noise; no two windows tie on their anchor scores."""
    gen = torch.Generator().manual_seed(seed)
    offset = torch.randn(batch, channels, 1, 1, generator=gen)
    scale = torch.rand(batch, 1, 1, 1, generator=gen) * 1.5 + 0.5
    layout = torch.nn.functional.interpolate(torch.randn(batch, channels, 4, 4, generator=gen), size=(size, size),
                                             mode="bilinear", align_corners=False)
    return offset + scale * (layout + 0.5 * torch.randn(batch, channels, size, size, generator=gen))
