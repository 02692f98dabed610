"""Anti-aliased ResNets in Zhang's exact layout (the models of his release table), and ResNet-D.

Zhang's layout: stem conv stays strided; MaxPool(2, stride 1) + BlurPool; the strided 3x3 conv runs
at stride 1 with a BlurPool after its BN+ReLU; the projection shortcut is BlurPool + 1x1 conv.
Parameter names are timm's, so timm baseline weights load unchanged.
"""

from __future__ import annotations

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ..weights.pretrained import zhang_pretrained_cfgs
from ._cfgs import base_cfg, zhang_cfg
from ._factory import _create_aa, register_zhang_family

#: Zhang's ResNet stem: a dense 2x2 max-pool (timm's pools 3x3 with padding 1), then BlurPool
ZHANG_RESNET = dict(stem_max_pool=2)

default_cfgs = generate_default_cfgs({
    **zhang_pretrained_cfgs("resnet", zhang_cfg()),
    "resnet50d_aa": base_cfg("resnet50d"),
})

register_zhang_family("resnet", __name__, **ZHANG_RESNET)


@register_model
def resnet50d_aa(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-50-D (deep stem, average-pool shortcut) converted by ``antialias()``."""
    return _create_aa("resnet50d_aa", pretrained, **kwargs)
