"""Registered anti-aliased models; importing this package registers them with timm."""

from __future__ import annotations

from .._deprecation import moved_names
from . import alexnet_aa, densenet_aa, efficientnet_aa, modern_aa, polyphase_aa, resnet_aa, vgg_aa
from ._factory import AA_DEFAULTS

__all__ = ["AA_DEFAULTS", "alexnet_aa", "densenet_aa", "efficientnet_aa", "modern_aa", "polyphase_aa", "resnet_aa",
           "vgg_aa"]


__getattr__ = moved_names(__name__, {
    "create_aa_model": ("timm_aa.models._factory", "create_aa_model", "timm.create_model(name, ...)"),
})
