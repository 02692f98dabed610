"""Anti-aliased DenseNets in Zhang's layout: MaxPool(3, s1, p1) + BlurPool stem, BlurPool transitions."""

from __future__ import annotations

from timm.models import generate_default_cfgs

from ..weights.pretrained import zhang_pretrained_cfgs
from ._cfgs import zhang_cfg
from ._factory import register_zhang_family

default_cfgs = generate_default_cfgs(zhang_pretrained_cfgs("densenet", zhang_cfg(first_conv="features.conv0",
                                                                                 classifier="classifier")))

register_zhang_family("densenet", __name__)
