"""Registered anti-aliased and alias-free models; importing this package registers them with timm."""

from __future__ import annotations

from . import (
    afc,
    alexnet_aa,
    densenet_aa,
    efficientnet_aa,
    modern_aa,
    polyphase_aa,
    resnet_aa,
    vgg_aa,
    vit_aps,
    vit_demo,
    xcit_afc,
)
from ._builders import AA_DEFAULTS, AFC_DEFAULTS

__all__ = ["AA_DEFAULTS", "AFC_DEFAULTS", "afc", "alexnet_aa", "densenet_aa", "efficientnet_aa", "modern_aa",
           "polyphase_aa", "resnet_aa", "vgg_aa", "vit_aps", "vit_demo", "xcit_afc"]
