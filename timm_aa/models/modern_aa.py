"""Modern timm CNNs converted by ``antialias()``: ConvNeXt, MobileNetV3, RegNetY."""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_aa_model
from ._cfgs import base_cfg

default_cfgs = generate_default_cfgs({
    "convnext_tiny_aa": base_cfg("convnext_tiny"),
    "mobilenetv3_large_100_aa": base_cfg("mobilenetv3_large_100"),
    "regnety_016_aa": base_cfg("regnety_016"),
})


@register_model
def convnext_tiny_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ConvNeXt-Tiny converted by ``antialias()`` (blur after each strided downsampling conv)."""
    return build_aa_model("convnext_tiny_aa", "convnext_tiny", pretrained, **kwargs)


@register_model
def mobilenetv3_large_100_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """MobileNetV3-Large 1.0 converted by ``antialias()``."""
    return build_aa_model("mobilenetv3_large_100_aa", "mobilenetv3_large_100", pretrained, **kwargs)


@register_model
def regnety_016_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """RegNetY-1.6GF converted by ``antialias()``."""
    return build_aa_model("regnety_016_aa", "regnety_016", pretrained, **kwargs)
