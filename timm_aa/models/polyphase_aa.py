"""ResNets with polyphase downsampling: APS (``*_aps``) and LPS (``*_lps``), circular padding throughout.

In eval mode they are exactly invariant to circular shifts of inputs whose sides are multiples of 32; how, what
other sizes get, what ``filt_size`` adds and what LPS learns: docs/layers.md, "Beyond BlurPool".
"""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_aa_model
from ._cfgs import base_cfg

default_cfgs = generate_default_cfgs({
    f"{depth}_{method}": base_cfg(depth) for depth in ("resnet18", "resnet50") for method in ("aps", "lps")
})

#: polyphase defaults: no blur, circular padding, the stem converted too (exact circular-shift invariance)
APS = dict(aa_layer="aps", filt_size=1, pad_mode="circular", stem=True)
LPS = dict(APS, aa_layer="lps")


@register_model
def resnet18_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-18 with adaptive polyphase sampling, circular padding (exact circular-shift invariance)."""
    return build_aa_model("resnet18_aps", "resnet18", pretrained, **dict(APS, **kwargs))


@register_model
def resnet50_aps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-50 with adaptive polyphase sampling, circular padding (exact circular-shift invariance)."""
    return build_aa_model("resnet50_aps", "resnet50", pretrained, **dict(APS, **kwargs))


@register_model
def resnet18_lps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-18 with learnable polyphase sampling, circular padding (exact in eval mode)."""
    return build_aa_model("resnet18_lps", "resnet18", pretrained, **dict(LPS, **kwargs))


@register_model
def resnet50_lps(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-50 with learnable polyphase sampling, circular padding (exact in eval mode)."""
    return build_aa_model("resnet50_lps", "resnet50", pretrained, **dict(LPS, **kwargs))
