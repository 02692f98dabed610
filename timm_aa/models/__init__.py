"""Registered anti-aliased models; importing this package registers them with timm."""

from __future__ import annotations

from typing import Any

from . import alexnet_aa, densenet_aa, efficientnet_aa, modern_aa, polyphase_aa, resnet_aa, vgg_aa
from ._factory import AA_DEFAULTS, deprecated_alias

__all__ = ["AA_DEFAULTS", "alexnet_aa", "densenet_aa", "efficientnet_aa", "modern_aa", "polyphase_aa", "resnet_aa",
           "vgg_aa"]


def __getattr__(name: str) -> Any:
    found = deprecated_alias(name)
    if found is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return found
