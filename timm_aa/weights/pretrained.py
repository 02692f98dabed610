"""Pretrained configs for Zhang's released checkpoints, derived from the release table (``releases.py``).

Tags: ``zhang_lpf4_ft_in1k`` (his filter-4 models fine-tuned from the torchvision baselines, the best
ones and so the default of ``pretrained=True``) and ``zhang_lpf{2,3,4,5}_in1k`` (trained from scratch
with each filter size). Each config names the Hub repository ``<org>/<model>.<tag>``; ``<org>`` is
``timm-aa`` unless the environment variable ``TIMM_AA_HUB_ORG`` says otherwise (read at import). Where the
weights come from when that repository is missing: see ``sources.py``.
"""

from __future__ import annotations

import os
from typing import Any

from .releases import ORIGIN_URL, WEIGHTS_LICENSE, zhang_releases

HUB_ORG_ENV = "TIMM_AA_HUB_ORG"
DEFAULT_HUB_ORG = "timm-aa"


def hub_org() -> str:
    """The Hub organisation of our converted weights (``TIMM_AA_HUB_ORG`` or ``timm-aa``).

    Example:
        >>> hub_org()
        'timm-aa'
    """
    return os.environ.get(HUB_ORG_ENV, DEFAULT_HUB_ORG).strip("/") or DEFAULT_HUB_ORG


def zhang_pretrained_cfgs(family: str, base_cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{'<model>.<tag>': cfg}`` for every checkpoint Zhang released in ``family``, each model's fine-tuned
    one first (timm's default tag).

    Example:
        >>> list(zhang_pretrained_cfgs('alexnet', {}))[:2]
        ['alexnet_aa.zhang_lpf4_ft_in1k', 'alexnet_aa.zhang_lpf4_in1k']
    """
    cfgs = {}
    for release in zhang_releases(family):
        for file in release.files:
            how = "fine-tuned from the torchvision baseline" if file.finetuned else "trained from scratch"
            cfgs[f"{file.model}.{file.tag}"] = dict(
                base_cfg, hf_hub_id=f"{hub_org()}/{file.model}.{file.tag}", license=WEIGHTS_LICENSE,
                origin_url=ORIGIN_URL, description=f"Zhang's ImageNet-1k {release.arch} with a filter of size "
                                                   f"{file.filt_size}, {how} ({file.name}); converted.",
            )
    return cfgs
