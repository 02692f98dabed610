"""Vision transformers exactly invariant to circular shifts: timm's ViT-Ti/S, DeiT-Ti, EVA-02-Ti and Swin-T with their
patch grid anchored to the input (``antialias(model, 'aps', pad_mode='circular', stem=True)``,
timm_aa/convert/patchify.py).

Anchoring adds no parameters: ``pretrained=True`` loads timm's weights of the base model (its default tag), and the
model computes the base network on the anchored (circularly rolled) image; fine-tune before trusting its accuracy
(docs/layers.md, "Patchify models").
"""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_aa_model
from ._cfgs import base_cfg
from .polyphase_aa import APS

ANCHOR_PAPERS = dict(paper_ids="arXiv:2306.07470, arXiv:2305.16316",
                     paper_name="Reviving Shift Equivariance in Vision Transformers; "
                                "Making Vision Transformers Truly Shift-Equivariant")

default_cfgs = generate_default_cfgs({
    f"{base}_aps": base_cfg(base, weights=True, **ANCHOR_PAPERS)
    for base in ("vit_tiny_patch16_224", "vit_small_patch16_224", "deit_tiny_patch16_224", "eva02_tiny_patch14_224",
                 "swin_tiny_patch4_window7_224")
})


@register_model
def vit_tiny_patch16_224_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ViT-Ti/16 with its patch grid anchored (exact circular-shift invariance); timm's weights when pretrained."""
    return build_aa_model("vit_tiny_patch16_224_aps", "vit_tiny_patch16_224", pretrained, **dict(APS, **kwargs))


@register_model
def vit_small_patch16_224_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ViT-S/16 with its patch grid anchored (exact circular-shift invariance); timm's weights when pretrained."""
    return build_aa_model("vit_small_patch16_224_aps", "vit_small_patch16_224", pretrained, **dict(APS, **kwargs))


@register_model
def deit_tiny_patch16_224_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DeiT-Ti/16 with its patch grid anchored (exact circular-shift invariance); timm's weights when pretrained."""
    return build_aa_model("deit_tiny_patch16_224_aps", "deit_tiny_patch16_224", pretrained, **dict(APS, **kwargs))


@register_model
def eva02_tiny_patch14_224_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """EVA-02-Ti/14 (MIM-pretrained, no head) with its patch grid anchored; timm's weights when pretrained."""
    return build_aa_model("eva02_tiny_patch14_224_aps", "eva02_tiny_patch14_224", pretrained, **dict(APS, **kwargs))


@register_model
def swin_tiny_patch4_window7_224_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Swin-T with its patch grid anchored (exact circular-shift invariance); timm's weights when pretrained."""
    return build_aa_model("swin_tiny_patch4_window7_224_aps", "swin_tiny_patch4_window7_224", pretrained,
                     **dict(APS, **kwargs))
