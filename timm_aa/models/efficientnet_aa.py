"""Anti-aliased MobileNetV2 (Zhang's layout: the strided depthwise conv runs at stride 1, BlurPool
after its BN+ReLU6) and EfficientNet-B0, both from timm's EfficientNet family."""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_aa_model
from ._cfgs import base_cfg, zhang_cfg
from ._zhang_releases import zhang_pretrained_cfgs

default_cfgs = generate_default_cfgs({
    **zhang_pretrained_cfgs("mobilenet", zhang_cfg(first_conv="conv_stem", classifier="classifier")),
    "efficientnet_b0_aa": base_cfg("efficientnet_b0"),
})


@register_model
def mobilenetv2_100_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """MobileNetV2 1.0, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("mobilenetv2_100_aa", "mobilenetv2_100", pretrained, **kwargs)


@register_model
def efficientnet_b0_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """EfficientNet-B0 converted by ``antialias()``."""
    return build_aa_model("efficientnet_b0_aa", "efficientnet_b0", pretrained, **kwargs)
