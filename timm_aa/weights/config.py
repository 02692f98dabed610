"""An export folder's ``config.json`` and the model args a weights file records, read and checked: every value our
code or timm uses, by type and range, before anything uses it (a wrong one is one line naming the file, the field
and the fix).
"""

from __future__ import annotations

import json
import os
from typing import Any

import timm

from ..errors import TimmAAError
from ..infra.bounds import BOUNDS, MAX_CLASSES, MAX_SIDE
from ..infra.fs import read_json
from ..infra.hub_names import http_url, license_id, name_form
from ..infra.layout import CONFIG, EXPORT, TRAINER_STATE
from ..infra.rules import boolean, check_fields, free_text, integer, items, mapping, number, optional, text

_FIX = "re-export the model, or correct the file"
GLOBAL_POOLS = ("", "avg", "max", "avgmax", "catavgmax", "fast", "fastavg", "fastmax", "fastavgmax", "fastcatavgmax",
                "token", "map", "avgmaxc")  # timm's SelectAdaptivePool2d and its transformers' pool types


def _side_or_pair(v: Any) -> str | None:
    side = integer(1, MAX_SIDE)
    wrong = side(v) if not isinstance(v, list) else items(side, 2)(v)
    return wrong and f"must be an int or a pair of ints in 1..{MAX_SIDE}"


#: every argument an export may record in ``model_args`` (config.json, safetensors metadata): ours (the conversions'
#: arguments, in the bounds table) and those timm's export records itself; any other key is refused
MODEL_ARGS_RULES = {
    **{k: optional(BOUNDS[k]) for k in ("filt_size", "pad_mode", "aa_layer", "act_scale")},
    "stem": optional(boolean),
    "stem_max_pool": optional(integer(1, 7)),
    "in_chans": optional(integer(1, 64)),
    "global_pool": optional(text(GLOBAL_POOLS)),
    "img_size": optional(_side_or_pair),
    "dynamic_img_size": optional(boolean),
}


def _check_model_args(where: str, args: Any, fix: str, prefix: str = "model_args.") -> None:
    check_fields(where, {"model_args": args}, {"model_args": mapping}, fix)
    unknown = sorted(set(args) - set(MODEL_ARGS_RULES))
    if unknown:
        raise TimmAAError(f"{where}: {prefix}{unknown[0]} is not an argument timm-aa exports (it takes "
                          f"{', '.join(MODEL_ARGS_RULES)}); {fix}")
    data = {prefix.rstrip("."): args} if prefix else args
    check_fields(where, data, {prefix + k: rule for k, rule in MODEL_ARGS_RULES.items()}, fix)


def recorded_model_args(path: str, meta: dict[str, str]) -> dict[str, Any]:
    """The model args the safetensors file ``path`` records in its metadata ``meta``, checked as those of an
    export's config.json.

    Example:
        >>> recorded_model_args('w.safetensors', {'model_args': '{"filt_size": 9}'})
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: w.safetensors (metadata model_args): filt_size must be an int in 1..7, got 9; \
write the file again
    """
    try:
        args = json.loads(meta.get("model_args") or "{}")
    except ValueError:
        raise TimmAAError(f"{path!r} has corrupt model_args metadata: write the file again") from None
    _check_model_args(f"{path} (metadata model_args)", args, "write the file again", prefix="")
    return args


#: an export folder's config.json
CONFIG_RULES = {
    "architecture": text(),
    "num_classes": optional(BOUNDS["num_classes"]),
    "label_names": optional(items(text(), max_items=MAX_CLASSES)),
    "pretrained_cfg": optional(mapping),
    "pretrained_cfg.input_size": optional(items(integer(1, MAX_SIDE), 3)),
    "pretrained_cfg.crop_pct": optional(BOUNDS["crop_pct"]),
    "pretrained_cfg.crop_mode": optional(text(("center", "squash", "border"))),
    "pretrained_cfg.interpolation": optional(text(("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"))),
    "pretrained_cfg.mean": optional(items(number(-1e3, 1e3))),
    "pretrained_cfg.std": optional(items(number(0, 1e3, low_open=True))),
    "pretrained_cfg.tag": optional(name_form), "pretrained_cfg.description": optional(free_text()),
    "pretrained_cfg.origin_url": optional(http_url), "pretrained_cfg.license": optional(license_id),
    "model_args": optional(mapping),
}


def read_config(folder: str) -> dict[str, Any]:
    """An export folder's ``config.json``, every value our code or timm uses checked (type and range); a folder
    that is not an export (a training run, a checkpoint) is named as what it is.

    Example:
        >>> read_config('/nonexistent')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: '/nonexistent' is not an export folder: cannot read config.json (No such file or \
directory)
    """
    config_path = os.path.join(folder, CONFIG)
    try:
        config = read_json(config_path, "the config", _FIX)
    except OSError as err:
        if os.path.isfile(os.path.join(folder, EXPORT, CONFIG)):
            raise TimmAAError(f"{folder!r} is a training run folder; its model is in {os.path.join(folder, EXPORT)!r}"
                              ": name that folder instead") from None
        if os.path.isfile(os.path.join(folder, TRAINER_STATE)):
            raise TimmAAError(f"{folder!r} is a training checkpoint, not an export: resume it with resume=..., or use "
                              "its run's export folder") from None
        raise TimmAAError(f"{folder!r} is not an export folder: cannot read {CONFIG} ({err.strerror})") from None
    check_fields(config_path, config, CONFIG_RULES, _FIX)
    _check_model_args(config_path, config.get("model_args") or {}, _FIX)
    pretrained_cfg = config.get("pretrained_cfg") or {}
    channels = (pretrained_cfg.get("input_size") or [3])[0]
    for key in ("mean", "std"):
        if key in pretrained_cfg and len(pretrained_cfg[key]) not in (1, channels):
            raise TimmAAError(f"{config_path}: pretrained_cfg.{key} has {len(pretrained_cfg[key])} values for "
                              f"{channels} input channels; {_FIX}")
    names, classes = config.get("label_names"), config.get("num_classes")
    if names and classes is not None and len(names) != classes:
        raise TimmAAError(f"{config_path}: label_names has {len(names)} names for num_classes {classes}; {_FIX}")
    if not timm.is_model(config["architecture"]):
        raise TimmAAError(f"{config_path}: architecture {config['architecture']!r} is not a model timm knows (after "
                          "import timm_aa): import the package that registers it, or correct the file")
    return config
