"""Shared builder for registered ``*_aa`` models: a timm base architecture run through ``antialias()``.

The base entrypoint builds the model (with ``num_classes``, ``in_chans``, ``features_only`` and
pretrained loading handled by timm, using *our* pretrained config), then ``antialias()`` converts
it. Conversion adds no parameters, so weights saved from an ``*_aa`` model and timm baseline
weights both load into the same keys.
"""

from __future__ import annotations

from typing import Any

import timm
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import PretrainedCfg, get_pretrained_cfg, load_pretrained
from timm.models._builder import resolve_pretrained_cfg
from torch import nn

from ..antialias import antialias
from ..weights.pretrained import parse_zhang_tag

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
    cfg.update(kwargs)
    return cfg


def base_cfg(base: str, **kwargs: Any) -> dict[str, Any]:
    """Pretrained config copied from a timm base model's default (its preprocessing), without its weights.

    Example:
        >>> base_cfg('convnext_tiny')['classifier']
        'head.fc'
    """
    src = get_pretrained_cfg(base)
    if src is None:
        raise ValueError(f"timm has no pretrained config for {base!r}")
    keep = ("num_classes", "input_size", "pool_size", "crop_pct", "crop_mode", "interpolation", "mean", "std",
            "first_conv", "classifier", "test_input_size", "test_crop_pct", "fixed_input_size")
    cfg = {k: getattr(src, k) for k in keep if getattr(src, k, None) is not None}
    cfg.update(url="", paper_ids=PAPER_ID)
    cfg.update(kwargs)
    return cfg


def resolve_aa_cfg(variant: str, kwargs: dict[str, Any], pretrained: bool = False) -> tuple[PretrainedCfg, int]:
    """Pop the pretrained config (and ``filt_size``) from ``kwargs``; a Zhang tag sets the default filter
    size, and loading its weights with another ``filt_size`` is an error.

    Example:
        >>> resolve_aa_cfg('resnet18_aa', {'pretrained_cfg': 'zhang_lpf3_in1k'})[1]
        3
    """
    cfg = resolve_pretrained_cfg(
        variant,
        pretrained_cfg=kwargs.pop("pretrained_cfg", None),
        pretrained_cfg_overlay=kwargs.pop("pretrained_cfg_overlay", None),
    )
    filt_size = kwargs.pop("filt_size", None)
    tagged = parse_zhang_tag(cfg.tag)
    if pretrained and tagged and filt_size is not None and filt_size != tagged[0]:
        raise ValueError(f"{variant}.{cfg.tag} has filter size {tagged[0]}, but filt_size={filt_size} was given")
    return cfg, filt_size if filt_size is not None else tagged[0] if tagged else 4


def create_aa_model(
    variant: str,
    base: str,
    pretrained: bool = False,
    *,
    zhang_stem: bool = False,
    pad_mode: str = "reflect",
    method: str = "blur",
    stem: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build timm's ``base`` with ``variant``'s pretrained config, then anti-alias it.

    ``filt_size`` defaults to the pretrained tag's filter size (4 for untagged configs).

    Example:
        >>> model = create_aa_model('resnet18_aa', 'resnet18', zhang_stem=True, num_classes=10)
        >>> model.fc.out_features
        10
    """
    cfg, filt_size = resolve_aa_cfg(variant, kwargs, pretrained)
    # LPS adds parameters: its weights only fit after conversion, so load them ourselves afterwards
    late_load = pretrained and method == "lps"
    if late_load and kwargs.get("features_only"):
        raise ValueError(f"{variant}: pretrained LPS weights cannot load into a features_only model")
    model = timm.models.model_entrypoint(base)(pretrained=pretrained and not late_load, pretrained_cfg=cfg, **kwargs)
    antialias(model, filt_size=filt_size, pad_mode=pad_mode, stem=stem, method=method,
              stem_max_pool=2 if zhang_stem else None)
    model.aa_args = dict(filt_size=filt_size, pad_mode=pad_mode)
    if method != "blur":
        model.aa_args.update(method=method, stem=stem)
    if late_load:
        load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get("in_chans", 3))
    return model
