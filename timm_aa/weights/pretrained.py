"""Pretrained configs for Zhang's released checkpoints, converted to our models and hosted on the Hub.

Tags: ``zhang_lpf4_ft_in1k`` (his filter-4 models fine-tuned from the torchvision baselines, the best
ones and so the default of ``pretrained=True``) and ``zhang_lpf{2,3,4,5}_in1k`` (trained from scratch
with each filter size). Repositories are ``<org>/<model>.<tag>``; ``<org>`` is ``timm-aa`` unless the
environment variable ``TIMM_AA_HUB_ORG`` says otherwise (read at import).
"""

from __future__ import annotations

import os
import re
from typing import Any

HUB_ORG_ENV = "TIMM_AA_HUB_ORG"
DEFAULT_HUB_ORG = "timm-aa"
ORIGIN_URL = "https://github.com/adobe/antialiased-cnns"
WEIGHTS_LICENSE = "cc-by-nc-sa-4.0"

_FROM_SCRATCH = ("resnet18", "resnet34", "resnet50", "resnet101", "densenet121", "mobilenet_v2", "vgg16",
                 "vgg16_bn", "alexnet")
# Zhang's architecture name -> filter sizes he released models trained from scratch with.
ZHANG_RELEASES: dict[str, tuple[int, ...]] = {
    **{arch: (2, 3, 4, 5) for arch in _FROM_SCRATCH},
    **{arch: () for arch in ("resnet152", "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2",
                             "wide_resnet101_2", "densenet161", "densenet169", "densenet201", "vgg11", "vgg13",
                             "vgg19", "vgg11_bn", "vgg13_bn", "vgg19_bn")},
}
_TAG = re.compile(r"^zhang_lpf(\d)(_ft)?_in1k$")


def hub_org() -> str:
    """The Hub organisation of our converted weights (``TIMM_AA_HUB_ORG`` or ``timm-aa``).

    Example:
        >>> hub_org()
        'timm-aa'
    """
    return os.environ.get(HUB_ORG_ENV, DEFAULT_HUB_ORG).strip("/") or DEFAULT_HUB_ORG


def zhang_tag(filt_size: int, finetuned: bool) -> str:
    """Our pretrained tag for one of Zhang's checkpoints.

    Example:
        >>> zhang_tag(4, finetuned=True), zhang_tag(3, finetuned=False)
        ('zhang_lpf4_ft_in1k', 'zhang_lpf3_in1k')
    """
    return f"zhang_lpf{filt_size}{'_ft' if finetuned else ''}_in1k"


def parse_zhang_tag(tag: str | None) -> tuple[int, bool] | None:
    """``(filt_size, finetuned)`` of a Zhang tag, or ``None`` for other tags.

    Example:
        >>> parse_zhang_tag('zhang_lpf5_in1k')
        (5, False)
    """
    match = _TAG.match(tag or "")
    return (int(match.group(1)), bool(match.group(2))) if match else None


def zhang_pretrained_cfgs(arch: str, model_name: str, base_cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{'<model>.<tag>': cfg}`` for every checkpoint Zhang released for ``arch``, the fine-tuned one first."""
    entries = [(4, True)] + [(k, False) for k in sorted(ZHANG_RELEASES[arch], key=lambda k: (k != 4, k))]
    cfgs = {}
    for filt_size, finetuned in entries:
        tag = zhang_tag(filt_size, finetuned)
        how = "fine-tuned from the torchvision baseline" if finetuned else "trained from scratch"
        cfgs[f"{model_name}.{tag}"] = dict(
            base_cfg, hf_hub_id=f"{hub_org()}/{model_name}.{tag}", license=WEIGHTS_LICENSE, origin_url=ORIGIN_URL,
            description=f"Zhang's ImageNet-1k {arch} with a filter of size {filt_size}, {how}; converted.",
        )
    return cfgs
