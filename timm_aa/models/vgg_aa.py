"""Anti-aliased VGGs in Zhang's layout: every MaxPool(2, 2) becomes MaxPool(2, stride 1) + BlurPool."""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_aa_model
from ._cfgs import zhang_cfg
from ._zhang_releases import zhang_pretrained_cfgs

default_cfgs = generate_default_cfgs(zhang_pretrained_cfgs("vgg", zhang_cfg(first_conv="features.0",
                                                                            classifier="head.fc")))


@register_model
def vgg11_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-11, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg11_aa", "vgg11", pretrained, **kwargs)


@register_model
def vgg11_bn_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-11 with batch norm, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg11_bn_aa", "vgg11_bn", pretrained, **kwargs)


@register_model
def vgg13_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-13, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg13_aa", "vgg13", pretrained, **kwargs)


@register_model
def vgg13_bn_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-13 with batch norm, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg13_bn_aa", "vgg13_bn", pretrained, **kwargs)


@register_model
def vgg16_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-16, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg16_aa", "vgg16", pretrained, **kwargs)


@register_model
def vgg16_bn_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-16 with batch norm, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg16_bn_aa", "vgg16_bn", pretrained, **kwargs)


@register_model
def vgg19_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-19, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg19_aa", "vgg19", pretrained, **kwargs)


@register_model
def vgg19_bn_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-19 with batch norm, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("vgg19_bn_aa", "vgg19_bn", pretrained, **kwargs)
