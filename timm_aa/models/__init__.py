"""Registered anti-aliased models; importing this package registers them with timm."""

from . import alexnet_aa, densenet_aa, efficientnet_aa, modern_aa, polyphase_aa, resnet_aa, vgg_aa
from ._builder import create_aa_model

__all__ = ["alexnet_aa", "create_aa_model", "densenet_aa", "efficientnet_aa", "modern_aa", "polyphase_aa",
           "resnet_aa", "vgg_aa"]
