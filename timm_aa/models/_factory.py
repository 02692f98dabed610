"""The one factory of the registered ``*_aa`` models, as timm's ``_create_resnet`` is for its ResNets.

:func:`create_aa` builds timm's ``base`` (passed by name) with our pretrained config and converts it with
``antialias()``, which adds no parameters, so timm's and our weights load into the same keys; a family timm lacks
(AlexNet) passes its class instead. The resolved anti-aliasing arguments (the filter size a pretrained tag implies
included) are recorded in timm's model-args record ``model._model_args``, which ``timm.create_model`` extends with
the caller's kwargs and timm's Hub export writes to ``config.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import timm
from timm.models import PretrainedCfg, build_model_with_cfg, load_pretrained
from timm.models._builder import resolve_pretrained_cfg
from torch import nn

from ..antialias import antialias
from ..errors import TimmAAError
from ..weights.releases import parse_zhang_tag, zhang_file
from ..weights.sources import zhang_weights

#: the anti-aliasing arguments every registered model takes, and their defaults (``aa_layer`` as in antialias())
AA_DEFAULTS: dict[str, Any] = dict(filt_size=4, pad_mode="reflect", aa_layer="blur", stem=False, stem_max_pool=None)


def _filt_size(variant: str, cfg: PretrainedCfg, given: int | None, pretrained: bool) -> int:
    tagged = parse_zhang_tag(cfg.tag)
    if pretrained and tagged and given is not None and given != tagged[0]:
        raise TimmAAError(f"{variant}.{cfg.tag} has filter size {tagged[0]}, but filt_size={given} was given; "
                          f"drop filt_size, or pick the tag zhang_lpf{given}_in1k where Zhang released one")
    return given if given is not None else tagged[0] if tagged else AA_DEFAULTS["filt_size"]


def _with_weights(variant: str, cfg: PretrainedCfg, cache_dir: Any) -> PretrainedCfg:
    """A Zhang tag's config pointing at a local safetensors file (Hub, his file, or his URL; see weights/sources);
    other configs, and those naming their own source (``hf-hub:``, ``local-dir:``, a file), unchanged."""
    file = zhang_file(variant, cfg.tag)
    if file is None or cfg.source or cfg.file or cfg.state_dict:
        return cfg
    return dataclasses.replace(cfg, file=zhang_weights(file, cfg.hf_hub_id, cache_dir))


def create_aa(variant: str, base: str | type[nn.Module], pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``variant``: timm's model ``base`` converted by ``antialias()`` with the anti-aliasing arguments of
    :data:`AA_DEFAULTS` found in ``kwargs``, or, for a family timm lacks, the class ``base`` (which takes
    ``filt_size`` and ``pad_mode`` itself). The other ``kwargs`` go to timm. Every registered entrypoint calls it.

    Example:
        >>> model = create_aa('resnet18_aa', 'resnet18', stem_max_pool=2, filt_size=3, num_classes=10)
        >>> model.maxpool, model.fc.out_features
        (MaxBlurPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0], filt_size=3, pad_mode='reflect'), 10)
    """
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=kwargs.pop("pretrained_cfg", None),
                                 pretrained_cfg_overlay=kwargs.pop("pretrained_cfg_overlay", None))
    converted = isinstance(base, str)
    keys = ("pad_mode", "aa_layer", "stem", "stem_max_pool") if converted else ("pad_mode",)
    aa = dict(filt_size=_filt_size(variant, cfg, kwargs.pop("filt_size", None), pretrained),
              **{k: kwargs.pop(k, AA_DEFAULTS[k]) for k in keys})
    if pretrained:
        cfg = _with_weights(variant, cfg, kwargs.get("cache_dir"))
    if not converted:
        model = build_model_with_cfg(base, variant, pretrained, pretrained_cfg=cfg,
                                     feature_cfg=dict(flatten_sequential=True), **aa, **kwargs)
    else:
        late_load = pretrained and aa["aa_layer"] == "lps"  # LPS adds scorers: its weights fit only after conversion
        if late_load and kwargs.get("features_only"):
            raise TimmAAError(f"{variant}: pretrained LPS weights cannot load into a features_only model")
        model = timm.models.model_entrypoint(base)(pretrained=pretrained and not late_load, pretrained_cfg=cfg,
                                                   **kwargs)
        antialias(model, aa["aa_layer"], **{k: v for k, v in aa.items() if k != "aa_layer"})
        if late_load:
            load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get("in_chans", 3))
    if aa.get("stem_max_pool") is None:
        aa.pop("stem_max_pool", None)
    model._model_args = aa
    return model
