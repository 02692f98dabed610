"""Anti-aliased DenseNets in Zhang's layout: MaxPool(3, s1, p1) + BlurPool stem, BlurPool transitions."""

from __future__ import annotations

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ..weights.pretrained import zhang_pretrained_cfgs
from ._builder import create_aa_model, zhang_cfg

_CFG = zhang_cfg(first_conv="features.conv0", classifier="classifier")
default_cfgs = generate_default_cfgs({
    k: v for depth in (121, 161, 169, 201)
    for k, v in zhang_pretrained_cfgs(f"densenet{depth}", f"densenet{depth}_aa", _CFG).items()
})


@register_model
def densenet121_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """DenseNet-121, anti-aliased (Zhang's layout)."""
    return create_aa_model("densenet121_aa", "densenet121", pretrained, **kwargs)


@register_model
def densenet161_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """DenseNet-161, anti-aliased (Zhang's layout)."""
    return create_aa_model("densenet161_aa", "densenet161", pretrained, **kwargs)


@register_model
def densenet169_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """DenseNet-169, anti-aliased (Zhang's layout)."""
    return create_aa_model("densenet169_aa", "densenet169", pretrained, **kwargs)


@register_model
def densenet201_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """DenseNet-201, anti-aliased (Zhang's layout)."""
    return create_aa_model("densenet201_aa", "densenet201", pretrained, **kwargs)
