"""Anti-aliased VGGs in Zhang's layout: every MaxPool(2, 2) becomes MaxPool(2, stride 1) + BlurPool."""

from __future__ import annotations

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ..weights.pretrained import zhang_pretrained_cfgs
from ._builder import create_aa_model, zhang_cfg

_CFG = zhang_cfg(first_conv="features.0", classifier="head.fc")
default_cfgs = generate_default_cfgs({
    k: v for depth in (11, 13, 16, 19) for bn in ("", "_bn")
    for k, v in zhang_pretrained_cfgs(f"vgg{depth}{bn}", f"vgg{depth}{bn}_aa", _CFG).items()
})


def _vgg(name: str, pretrained: bool, kwargs: dict) -> nn.Module:
    return create_aa_model(f"{name}_aa", name, pretrained, **kwargs)


@register_model
def vgg11_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-11, anti-aliased (Zhang's layout)."""
    return _vgg("vgg11", pretrained, kwargs)


@register_model
def vgg11_bn_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-11 with batch norm, anti-aliased (Zhang's layout)."""
    return _vgg("vgg11_bn", pretrained, kwargs)


@register_model
def vgg13_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-13, anti-aliased (Zhang's layout)."""
    return _vgg("vgg13", pretrained, kwargs)


@register_model
def vgg13_bn_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-13 with batch norm, anti-aliased (Zhang's layout)."""
    return _vgg("vgg13_bn", pretrained, kwargs)


@register_model
def vgg16_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-16, anti-aliased (Zhang's layout)."""
    return _vgg("vgg16", pretrained, kwargs)


@register_model
def vgg16_bn_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-16 with batch norm, anti-aliased (Zhang's layout)."""
    return _vgg("vgg16_bn", pretrained, kwargs)


@register_model
def vgg19_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-19, anti-aliased (Zhang's layout)."""
    return _vgg("vgg19", pretrained, kwargs)


@register_model
def vgg19_bn_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """VGG-19 with batch norm, anti-aliased (Zhang's layout)."""
    return _vgg("vgg19_bn", pretrained, kwargs)
