"""Anti-aliased MobileNetV2 (Zhang's layout: the strided depthwise conv runs at stride 1, BlurPool
after its BN+ReLU6) and EfficientNet-B0, both from timm's EfficientNet family."""

from __future__ import annotations

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ..weights.pretrained import zhang_pretrained_cfgs
from ._builder import base_cfg, create_aa_model, zhang_cfg

default_cfgs = generate_default_cfgs({
    **zhang_pretrained_cfgs("mobilenet_v2", "mobilenetv2_100_aa",
                            zhang_cfg(first_conv="conv_stem", classifier="classifier")),
    "efficientnet_b0_aa": base_cfg("efficientnet_b0"),
})


@register_model
def mobilenetv2_100_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """MobileNetV2 1.0, anti-aliased (Zhang's layout)."""
    return create_aa_model("mobilenetv2_100_aa", "mobilenetv2_100", pretrained, **kwargs)


@register_model
def efficientnet_b0_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """EfficientNet-B0 converted by ``antialias()``."""
    return create_aa_model("efficientnet_b0_aa", "efficientnet_b0", pretrained, **kwargs)
