"""Anti-aliased VGGs in Zhang's layout: every MaxPool(2, 2) becomes MaxPool(2, stride 1) + BlurPool."""

from __future__ import annotations

from timm.models import generate_default_cfgs

from ..weights.pretrained import zhang_pretrained_cfgs
from ._cfgs import zhang_cfg
from ._factory import register_zhang_family

default_cfgs = generate_default_cfgs(zhang_pretrained_cfgs("vgg", zhang_cfg(first_conv="features.0",
                                                                            classifier="head.fc")))

register_zhang_family("vgg", __name__)
