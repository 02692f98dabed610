"""Anti-aliased DenseNets in Zhang's layout: MaxPool(3, s1, p1) + BlurPool stem, BlurPool transitions."""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_aa_model
from ._cfgs import zhang_cfg
from ._zhang_releases import zhang_pretrained_cfgs

default_cfgs = generate_default_cfgs(zhang_pretrained_cfgs("densenet", zhang_cfg(first_conv="features.conv0",
                                                                                 classifier="classifier")))


@register_model
def densenet121_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet-121, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("densenet121_aa", "densenet121", pretrained, **kwargs)


@register_model
def densenet161_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet-161, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("densenet161_aa", "densenet161", pretrained, **kwargs)


@register_model
def densenet169_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet-169, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("densenet169_aa", "densenet169", pretrained, **kwargs)


@register_model
def densenet201_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet-201, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("densenet201_aa", "densenet201", pretrained, **kwargs)
