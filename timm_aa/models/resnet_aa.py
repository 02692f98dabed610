"""Anti-aliased ResNets in Zhang's exact layout, and ResNet-D.

Zhang's layout: stem conv stays strided; MaxPool(2, stride 1) + BlurPool; the strided 3x3 conv runs
at stride 1 with a BlurPool after its BN+ReLU; the projection shortcut is BlurPool + 1x1 conv.
Parameter names are timm's, so timm baseline weights load unchanged.
"""

from __future__ import annotations

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ..weights.pretrained import zhang_pretrained_cfgs
from ._builder import base_cfg, create_aa_model, zhang_cfg

_ZHANG = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
          "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2")

default_cfgs = generate_default_cfgs({
    **{k: v for name in _ZHANG for k, v in zhang_pretrained_cfgs(name, f"{name}_aa", zhang_cfg()).items()},
    "resnet50d_aa": base_cfg("resnet50d"),
})


def _zhang(name: str, pretrained: bool, kwargs: dict) -> nn.Module:
    return create_aa_model(f"{name}_aa", name, pretrained, zhang_stem=True, **kwargs)


@register_model
def resnet18_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-18, anti-aliased (Zhang's layout, filter 4 by default)."""
    return _zhang("resnet18", pretrained, kwargs)


@register_model
def resnet34_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-34, anti-aliased (Zhang's layout)."""
    return _zhang("resnet34", pretrained, kwargs)


@register_model
def resnet50_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-50, anti-aliased (Zhang's layout)."""
    return _zhang("resnet50", pretrained, kwargs)


@register_model
def resnet101_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-101, anti-aliased (Zhang's layout)."""
    return _zhang("resnet101", pretrained, kwargs)


@register_model
def resnet152_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-152, anti-aliased (Zhang's layout)."""
    return _zhang("resnet152", pretrained, kwargs)


@register_model
def resnext50_32x4d_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNeXt-50 32x4d, anti-aliased (Zhang's layout)."""
    return _zhang("resnext50_32x4d", pretrained, kwargs)


@register_model
def resnext101_32x8d_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNeXt-101 32x8d, anti-aliased (Zhang's layout)."""
    return _zhang("resnext101_32x8d", pretrained, kwargs)


@register_model
def wide_resnet50_2_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """Wide ResNet-50-2, anti-aliased (Zhang's layout)."""
    return _zhang("wide_resnet50_2", pretrained, kwargs)


@register_model
def wide_resnet101_2_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """Wide ResNet-101-2, anti-aliased (Zhang's layout)."""
    return _zhang("wide_resnet101_2", pretrained, kwargs)


@register_model
def resnet50d_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-50-D (deep stem, average-pool shortcut) converted by ``antialias()``."""
    return create_aa_model("resnet50d_aa", "resnet50d", pretrained, **kwargs)
