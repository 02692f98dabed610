"""A ViT the size of the digits demo (40 px crops, 4 px patches: 10x10 tokens) and its anchored twin, for the evidence
of docs/layers.md ("Patchify models"): trained identically, they differ only in the anchoring.

``vit_micro_patch4_40`` is timm's ``VisionTransformer`` (depth 4, width 64, 2 heads, 0.2M parameters; no weights);
``vit_micro_patch4_40_aps`` is it converted by ``antialias(model, 'aps', pad_mode='circular', stem=True)``.
"""

from __future__ import annotations

from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import generate_default_cfgs, register_model
from timm.models.vision_transformer import _create_vision_transformer
from torch import nn

from ._builders import build_aa_model
from .polyphase_aa import APS
from .vit_aps import ANCHOR_PAPERS

#: the demo-size ViT's architecture (timm's VisionTransformer arguments)
MICRO = dict(img_size=40, patch_size=4, embed_dim=64, depth=4, num_heads=2)

_CFG = dict(url="", num_classes=1000, input_size=(3, 40, 40), pool_size=None, crop_pct=1.0, interpolation="bicubic",
            mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, first_conv="patch_embed.proj", classifier="head",
            fixed_input_size=True)
default_cfgs = generate_default_cfgs({
    "vit_micro_patch4_40": dict(_CFG),
    "vit_micro_patch4_40_aps": dict(_CFG, **ANCHOR_PAPERS),
})


@register_model
def vit_micro_patch4_40(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ViT for 40 px inputs, 4 px patches, depth 4, width 64 (the demo's baseline transformer; no weights)."""
    return _create_vision_transformer("vit_micro_patch4_40", pretrained=pretrained, **dict(MICRO, **kwargs))


@register_model
def vit_micro_patch4_40_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """``vit_micro_patch4_40`` with its patch grid anchored (exact circular-shift invariance)."""
    return build_aa_model("vit_micro_patch4_40_aps", "vit_micro_patch4_40", pretrained, **dict(APS, **kwargs))
