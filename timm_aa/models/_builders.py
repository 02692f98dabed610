"""The one factory of the registered models, as timm's ``_create_resnet`` is for its ResNets.

:func:`build_aa_model` builds timm's ``base`` (passed by name) with our pretrained config and converts it with
``antialias()``, which adds no parameters, so timm's and our weights load into the same keys; a family timm lacks
(AlexNet) passes its class instead. :func:`build_afc_model` is the same idea for the alias-free ``*_afc`` models: timm's
base (with its own weights when pretrained), converted by ``alias_free()``. The resolved conversion arguments (the
filter size a pretrained tag implies included) are recorded in timm's model-args record ``model._model_args``,
which ``timm.create_model`` extends with the caller's kwargs and timm's Hub export writes to ``config.json``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import timm
from timm.models import PretrainedCfg, build_model_with_cfg, load_pretrained, resolve_pretrained_cfg
from torch import nn

from ..convert.alias_free import alias_free, new_parameter_names
from ..convert.antialias import antialias
from ..errors import TimmAAError
from ..layers.options import DEFAULT_AA_LAYER, DEFAULT_FILT_SIZE, DEFAULT_PAD_MODE
from ._zhang_releases import parse_zhang_tag, zhang_file
from ._zhang_sources import zhang_weights

#: the anti-aliasing arguments every registered model takes, and their defaults (``aa_layer`` as in antialias())
AA_DEFAULTS: dict[str, Any] = dict(filt_size=DEFAULT_FILT_SIZE, pad_mode=DEFAULT_PAD_MODE, aa_layer=DEFAULT_AA_LAYER,
                                   stem=False, stem_max_pool=None)
#: the alias-free conversion's arguments every ``*_afc`` model takes, and their defaults (as in alias_free())
AFC_DEFAULTS: dict[str, Any] = dict(act_scale=1.0)


def _pretrained_cfg(variant: str, kwargs: dict[str, Any]) -> PretrainedCfg:
    """``variant``'s pretrained config, with the caller's ``pretrained_cfg`` / ``pretrained_cfg_overlay`` (popped)."""
    return resolve_pretrained_cfg(variant, pretrained_cfg=kwargs.pop("pretrained_cfg", None),
                                  pretrained_cfg_overlay=kwargs.pop("pretrained_cfg_overlay", None))


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


def build_aa_model(variant: str, base: str | type[nn.Module], pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``variant``: timm's model ``base`` converted by ``antialias()`` with the anti-aliasing arguments of
    :data:`AA_DEFAULTS` found in ``kwargs``, or, for a family timm lacks, the class ``base`` (which takes
    ``filt_size`` and ``pad_mode`` itself). The other ``kwargs`` go to timm. Every registered entrypoint calls it.

    Example:
        >>> model = build_aa_model('resnet18_aa', 'resnet18', stem_max_pool=2, filt_size=3, num_classes=10)
        >>> model.maxpool, model.fc.out_features
        (MaxBlurPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0], filt_size=3, pad_mode='reflect'), 10)
    """
    cfg = _pretrained_cfg(variant, kwargs)
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
            load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get("in_chans", 3),
                            filter_fn=_keep_new_scorers)
    if aa.get("stem_max_pool") is None:
        aa.pop("stem_max_pool", None)
    model._model_args = aa
    return model


def _keep_new_scorers(state_dict: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """timm's ``filter_fn`` for pretrained weights loaded into an LPS model: the timm family's own checkpoint filter
    first (a ViT's resamples its position embedding to the model's size), then the model's own (fresh) scorers for
    those the weights lack (a timm base's)."""
    family_filter = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if family_filter is not None:
        state_dict = family_filter(state_dict, model)
    own = model.state_dict()
    return {**{k: own[k] for k in own if ".scorer." in k and k not in state_dict}, **state_dict}


def _keep_fitted_coefficients(state_dict: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """timm's ``filter_fn``: weights without the alias-free ``coefficients`` (a timm base's) keep the model's own."""
    own = model.state_dict()
    return {**{k: own[k] for k in new_parameter_names(model) if k not in state_dict}, **state_dict}


def build_afc_model(variant: str, base: str, pretrained: bool = False, *,
                    base_filter: Callable[[dict[str, Any], nn.Module], dict[str, Any]] | None = None,
                    **kwargs: Any) -> nn.Module:
    """Build ``variant``: timm's model ``base`` converted by ``alias_free()`` with the arguments of
    :data:`AFC_DEFAULTS` found in ``kwargs``; the other ``kwargs`` go to timm. With ``pretrained``, the weights
    ``variant``'s config names load after the conversion (which keeps every parameter name): ours fill every
    parameter, a timm base's every one but the activations' ``coefficients``, which keep their fitted values.
    A ``features_only`` model loads them before the conversion (timm's feature wrapper renames modules): a timm
    base's weights only. ``base_filter``: the base family's checkpoint filter, applied first (timm's XCiT filter
    drops the position encoding's weights from a model without one).

    Example:
        >>> model = build_afc_model('resnet18_afc', 'resnet18', num_classes=10, act_scale=2.0)
        >>> type(model.act1).__name__, model.fc.out_features, model._model_args
        ('AliasFreeActivation', 10, {'act_scale': 2.0})
    """
    cfg = _pretrained_cfg(variant, kwargs)
    args = {k: kwargs.pop(k, v) for k, v in AFC_DEFAULTS.items()}
    late_load = pretrained and not kwargs.get("features_only")
    model = timm.models.model_entrypoint(base)(pretrained=pretrained and not late_load, pretrained_cfg=cfg, **kwargs)
    alias_free(model, **args)
    if late_load:
        filter_fn = _keep_fitted_coefficients if base_filter is None else (
            lambda state_dict, model: _keep_fitted_coefficients(base_filter(state_dict, model), model))
        load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get("in_chans", 3), filter_fn=filter_fn)
    model._model_args = args
    return model
