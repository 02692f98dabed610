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
from ..infra.layout import CONFIG, EXPORT, TRAINER_STATE
from ..infra.rules import boolean, check_fields, integer, items, mapping, number, optional, text
from ..layers.options import AA_LAYERS, FILT_SIZES, PAD_MODE_ALIASES, PAD_MODES

_FIX = "re-export the model, or correct the file"
#: the anti-aliasing (and alias-free) arguments a registered model records (config.json, safetensors metadata)
MODEL_ARGS_RULES = {
    "filt_size": optional(integer(FILT_SIZES[0], FILT_SIZES[-1])),
    "pad_mode": optional(text((*PAD_MODES, *PAD_MODE_ALIASES))),
    "aa_layer": optional(text(tuple(AA_LAYERS))),
    "stem": optional(boolean),
    "stem_max_pool": optional(integer(1)),
    "act_scale": optional(number(0, 1e6, low_open=True)),
}


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
    check_fields(f"{path} (metadata model_args)", args, MODEL_ARGS_RULES, "write the file again")
    return args


#: an export folder's config.json
CONFIG_RULES = {
    "architecture": text(),
    "num_classes": optional(integer(0)),
    "label_names": optional(items(text())),
    "pretrained_cfg": optional(mapping),
    "pretrained_cfg.input_size": optional(items(integer(1), 3)),
    "pretrained_cfg.crop_pct": optional(number(0, 1, low_open=True)),
    "pretrained_cfg.crop_mode": optional(text(("center", "squash", "border"))),
    "pretrained_cfg.interpolation": optional(text(("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"))),
    "pretrained_cfg.mean": optional(items(number(-1e3, 1e3))),
    "pretrained_cfg.std": optional(items(number(0, 1e3, low_open=True))),
    **{f"pretrained_cfg.{k}": optional(text()) for k in ("tag", "description", "origin_url", "license")},
    "model_args": optional(mapping),
    **{f"model_args.{k}": rule for k, rule in MODEL_ARGS_RULES.items()},
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
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except OSError as err:
        if os.path.isfile(os.path.join(folder, EXPORT, CONFIG)):
            raise TimmAAError(f"{folder!r} is a training run folder; its model is in {os.path.join(folder, EXPORT)!r}"
                              ": name that folder instead") from None
        if os.path.isfile(os.path.join(folder, TRAINER_STATE)):
            raise TimmAAError(f"{folder!r} is a training checkpoint, not an export: resume it with resume=..., or use "
                              "its run's export folder") from None
        raise TimmAAError(f"{folder!r} is not an export folder: cannot read {CONFIG} ({err.strerror})") from None
    except ValueError as err:
        raise TimmAAError(f"{config_path!r} is not a timm config ({err})") from None
    check_fields(config_path, config, CONFIG_RULES, _FIX)
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
