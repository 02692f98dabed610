"""The one factory of the registered ``*_aa`` models, like timm's ``_create_resnet``.

``<base>_<suffix>`` is timm's ``<base>`` built with our pretrained config, then converted by ``antialias()``
(no parameters added, so timm's and our weights load into the same keys); a family whose base timm lacks
(AlexNet) gives its own ``model_cls``. Family defaults are plain dicts merged under the caller's kwargs.
The resolved anti-aliasing arguments (the filter size a pretrained tag implies included) are recorded in
timm's model-args record ``model._model_args``, which ``timm.create_model`` extends with the caller's kwargs
and timm's Hub export writes to ``config.json``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import timm
from timm.models import PretrainedCfg, build_model_with_cfg, load_pretrained, register_model
from timm.models._builder import resolve_pretrained_cfg
from torch import nn

from ..antialias import antialias
from ..errors import TimmAAError
from ..weights.releases import parse_zhang_tag, zhang_file, zhang_releases
from ..weights.sources import zhang_weights

#: the anti-aliasing arguments every registered model takes, and their defaults
AA_DEFAULTS: dict[str, Any] = dict(filt_size=4, pad_mode="reflect", method="blur", stem=False, stem_max_pool=None)


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


def _build(
    variant: str,
    base: str | None,
    pretrained: bool,
    kwargs: dict[str, Any],
    model_cls: Callable[..., nn.Module] | None = None,
    feature_cfg: dict[str, Any] | None = None,
) -> nn.Module:
    kwargs = dict(kwargs)
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=kwargs.pop("pretrained_cfg", None),
                                 pretrained_cfg_overlay=kwargs.pop("pretrained_cfg_overlay", None))
    keys = ("pad_mode",) if model_cls is not None else ("pad_mode", "method", "stem", "stem_max_pool")
    aa = dict(filt_size=_filt_size(variant, cfg, kwargs.pop("filt_size", None), pretrained),
              **{k: kwargs.pop(k, AA_DEFAULTS[k]) for k in keys})
    if pretrained:
        cfg = _with_weights(variant, cfg, kwargs.get("cache_dir"))
    if model_cls is not None:
        model = build_model_with_cfg(model_cls, variant, pretrained, pretrained_cfg=cfg, feature_cfg=feature_cfg,
                                     **aa, **kwargs)
    else:
        late_load = pretrained and aa["method"] == "lps"  # LPS adds scorers: its weights fit only after conversion
        if late_load and kwargs.get("features_only"):
            raise TimmAAError(f"{variant}: pretrained LPS weights cannot load into a features_only model")
        model = timm.models.model_entrypoint(base)(pretrained=pretrained and not late_load, pretrained_cfg=cfg,
                                                   **kwargs)
        antialias(model, aa["method"], **{k: v for k, v in aa.items() if k != "method"})
        if late_load:
            load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get("in_chans", 3))
    if aa.get("stem_max_pool") is None:
        aa.pop("stem_max_pool", None)
    model._model_args = aa
    return model


def _create_aa(variant: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``variant`` = timm's ``variant.rsplit('_', 1)[0]`` anti-aliased; ``model_cls`` (and its
    ``feature_cfg``) instead for a family timm lacks. Used by every registered entrypoint.

    Example:
        >>> _create_aa('resnet18_aa', stem_max_pool=2, num_classes=10).fc.out_features
        10
    """
    model_cls, feature_cfg = kwargs.pop("model_cls", None), kwargs.pop("feature_cfg", None)
    base = None if model_cls is not None else variant.rsplit("_", 1)[0]
    return _build(variant, base, pretrained, kwargs, model_cls, feature_cfg)


def register_aa(variant: str, module: str, doc: str, **defaults: Any) -> Callable[..., nn.Module]:
    """Register the timm entrypoint ``variant`` of ``module`` (whose ``default_cfgs`` hold its configs),
    building ``_create_aa(variant, pretrained, **defaults, **kwargs)``; the caller's kwargs win.

    Example:
        >>> # register_aa('resnet18_aa', __name__, 'ResNet-18, anti-aliased.', stem_max_pool=2)
    """

    def entrypoint(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return _create_aa(variant, pretrained, **{**defaults, **kwargs})

    entrypoint.__name__ = entrypoint.__qualname__ = variant
    entrypoint.__module__, entrypoint.__doc__ = module, doc
    setattr(sys.modules[module], variant, entrypoint)
    return register_model(entrypoint)


def register_zhang_family(family: str, module: str, **defaults: Any) -> None:
    """Register every model of ``family`` in Zhang's release table (``weights/releases.py``).

    Example:
        >>> # register_zhang_family('vgg', __name__)
    """
    for release in zhang_releases(family):
        register_aa(release.model, module, f"{release.title}, anti-aliased in Zhang's layout (filter 4 by default; "
                                           f"his weights: pretrained=True or a zhang_* tag).", **defaults)


def create_aa_model(
    variant: str, base: str, pretrained: bool = False, *, zhang_stem: bool = False, **kwargs: Any
) -> nn.Module:
    """Deprecated (importing it warns): use ``timm.create_model(variant, ...)``; kept for one release.

    Example:
        >>> # create_aa_model('resnet18_aa', 'resnet18', zhang_stem=True)  ->  timm.create_model('resnet18_aa')
    """
    return _build(variant, base, pretrained, {"stem_max_pool": 2, **kwargs} if zhang_stem else kwargs)
