"""Anti-aliased ResNets in Zhang's exact layout (the models of his release table), and ResNet-D. The layout, and
why timm's baseline weights load unchanged: README.md, "Registered models".
"""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_aa_model
from ._cfgs import base_cfg, zhang_cfg
from ._zhang_releases import zhang_pretrained_cfgs

#: Zhang's ResNet stem: a dense 2x2 max-pool (timm's pools 3x3 with padding 1), then BlurPool
ZHANG_RESNET = dict(stem_max_pool=2)

default_cfgs = generate_default_cfgs({
    **zhang_pretrained_cfgs("resnet", zhang_cfg()),
    "resnet50d_aa": base_cfg("resnet50d"),
})


@register_model
def resnet18_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-18, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("resnet18_aa", "resnet18", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def resnet34_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-34, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("resnet34_aa", "resnet34", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def resnet50_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-50, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("resnet50_aa", "resnet50", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def resnet101_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-101, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("resnet101_aa", "resnet101", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def resnet152_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-152, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("resnet152_aa", "resnet152", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def resnext50_32x4d_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNeXt-50 32x4d, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("resnext50_32x4d_aa", "resnext50_32x4d", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def resnext101_32x8d_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNeXt-101 32x8d, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("resnext101_32x8d_aa", "resnext101_32x8d", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def wide_resnet50_2_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Wide ResNet-50-2, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("wide_resnet50_2_aa", "wide_resnet50_2", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def wide_resnet101_2_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Wide ResNet-101-2, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("wide_resnet101_2_aa", "wide_resnet101_2", pretrained, **dict(ZHANG_RESNET, **kwargs))


@register_model
def resnet50d_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-50-D (deep stem, average-pool shortcut) converted by ``antialias()``."""
    return build_aa_model("resnet50d_aa", "resnet50d", pretrained, **kwargs)
