"""Pretrained configs of the registered ``*_aa`` models: Zhang's preprocessing, or a timm base model's."""

from __future__ import annotations

from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import get_pretrained_cfg

from ..errors import TimmAAError

PAPER_ID = "arXiv:1904.11486"


def zhang_cfg(**kwargs: Any) -> dict[str, Any]:
    """Pretrained config with Zhang's evaluation preprocessing (resize 256, center-crop 224, bilinear).

    Example:
        >>> zhang_cfg(classifier='fc')['crop_pct']
        0.875
    """
    cfg = dict(
        url="", num_classes=1000, input_size=(3, 224, 224), pool_size=(7, 7), crop_pct=0.875,
        crop_mode="center", interpolation="bilinear", mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
        first_conv="conv1", classifier="fc", paper_ids=PAPER_ID,
        paper_name="Making Convolutional Networks Shift-Invariant Again",
    )
    return {**cfg, **kwargs}


def base_cfg(base: str, *, weights: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Pretrained config copied from a timm base model's default (its preprocessing), without its weights, or with
    ``weights=True`` naming them (its Hub id, URL and licence: ``pretrained=True`` then loads timm's base weights).

    Example:
        >>> base_cfg('convnext_tiny')['classifier'], base_cfg('resnet18', weights=True)['hf_hub_id']
        ('head.fc', 'timm/resnet18.a1_in1k')
    """
    src = get_pretrained_cfg(base)
    if src is None:
        raise TimmAAError(f"timm has no pretrained config for {base!r}")
    keep = ("num_classes", "input_size", "pool_size", "crop_pct", "crop_mode", "interpolation", "mean", "std",
            "first_conv", "classifier", "test_input_size", "test_crop_pct", "fixed_input_size")
    if weights:
        keep += ("url", "hf_hub_id", "hf_hub_filename", "license", "origin_url")
    cfg = {k: getattr(src, k) for k in keep if getattr(src, k, None) is not None}
    return {"url": "", **cfg, "paper_ids": PAPER_ID, **kwargs}
