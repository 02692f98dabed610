"""Export folders: ``model.safetensors`` + a ``config.json`` that timm and transformers both load.

timm's own ``save_config_for_hf`` records ``num_classes`` inside ``model_args``; transformers'
``TimmWrapper`` then passes ``num_classes`` twice and fails. We write timm's config without it
(``num_classes`` stays at the top level, where both libraries read it).

The weights file records the architecture and model args too (safetensors metadata), so that a
``config.json`` that no longer describes the weights is caught (:func:`check_export`) instead of
rebuilding a different model around them.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from safetensors.torch import save_file
from torch import nn

from ..errors import TimmAAError
from ..infra.checkpoint import read_safetensors_header
from ..infra.finite import check_finite_weights
from ..infra.fs import file_mode, write_json
from ..infra.layout import CONFIG, METRICS, WEIGHTS
from ..infra.timm_private import save_config_for_hf
from ..models import AA_DEFAULTS, AFC_DEFAULTS
from .config import read_config, recorded_model_args

PROVENANCE_KEYS = ("tag", "description", "origin_url", "license", "notes")
DATA_KEYS = ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std")


def model_args_of(model: nn.Module) -> dict[str, Any]:
    """The anti-aliasing (or alias-free) arguments a registered model was built with (empty for other models), read
    from timm's model-args record ``model._model_args``.

    Example:
        >>> import timm, timm_aa
        >>> model_args_of(timm.create_model('resnet18_aa', filt_size=3))
        {'filt_size': 3, 'pad_mode': 'reflect', 'aa_layer': 'blur', 'stem': False, 'stem_max_pool': 2}
        >>> model_args_of(timm.create_model('resnet18_afc', num_classes=3))
        {'act_scale': 2.0}
    """
    args = getattr(model, "_model_args", None) or {}
    return {k: args[k] for k in (*AA_DEFAULTS, *AFC_DEFAULTS) if k in args}


def hub_config(model: nn.Module, label_names: list[str] | None = None, provenance: dict[str, Any] | None = None,
               data_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """timm's Hub config for ``model``, without ``model_args.num_classes`` (see module docstring).

    The source config's provenance (tag, description, license, ...) describes the weights the model
    was created with, not the ones being exported: it is dropped, and ``provenance`` written instead.
    ``data_config`` (timm's: input size, crop_pct, crop mode, interpolation, mean, std) is what the weights were
    trained and validated with; it replaces the source's, whose test-time sizes then no longer apply.

    Example:
        >>> import timm, timm_aa
        >>> config = hub_config(timm.create_model('resnet18_aa'), data_config=dict(input_size=(3, 40, 40)))
        >>> config['architecture'], config['pretrained_cfg']['input_size'], config['model_args']['filt_size']
        ('resnet18_aa', [3, 40, 40], 4)
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, CONFIG)
        model_config = {"label_names": list(label_names)} if label_names else None
        save_config_for_hf(model, path, model_config=model_config, model_args=model_args_of(model))
        with open(path) as f:
            config = json.load(f)
    pretrained_cfg = config.get("pretrained_cfg", {})
    for key in PROVENANCE_KEYS:
        pretrained_cfg.pop(key, None)
    pretrained_cfg.update(provenance or {})
    if data_config:
        for key in ("test_input_size", "test_crop_pct"):
            pretrained_cfg.pop(key, None)
        pretrained_cfg.update({k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()
                               if k in DATA_KEYS})
    args = _normalised_args(config.get("model_args"))
    if args:
        config["model_args"] = args
    else:
        config.pop("model_args", None)
    return config


def save_weights(model: nn.Module, path: str, architecture: str | None = None) -> None:
    """Write the model's state dict as safetensors, with the architecture and model args in its metadata.

    Example:
        >>> import timm, timm_aa, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'w.safetensors')
        >>> save_weights(timm.create_model('resnet18_aa', filt_size=3), path)
        >>> from timm_aa.infra.checkpoint import read_safetensors_header
        >>> read_safetensors_header(path)['model_args']
        '{"filt_size": 3, "pad_mode": "reflect", "aa_layer": "blur", "stem": false, "stem_max_pool": 2}'
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    arch = architecture or (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "")
    try:
        args = json.dumps(model_args_of(model))
    except TypeError:
        raise TimmAAError(f"{arch or type(model).__name__} was built with an aa_layer that is not a name "
                          f"({model_args_of(model).get('aa_layer')!r}), which a file cannot record: build it with "
                          "aa_layer='blur', 'blurpc', 'aps' or 'lps' to export it") from None
    save_file(state, path, metadata={"format": "pt", "architecture": arch, "model_args": args})
    os.chmod(path, file_mode())  # safetensors writes 0600 whatever the umask


def write_export(model: nn.Module, folder: str, *, label_names: list[str] | None = None,
                 metrics: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
                 data_config: dict[str, Any] | None = None) -> str:
    """Write ``model.safetensors``, ``config.json`` (and ``metrics.json``) into the new or empty ``folder``; the
    tools write into a staging folder of the output they own and install it (:mod:`timm_aa.infra.ownership`).

    Example:
        >>> import timm, timm_aa, tempfile
        >>> path = write_export(timm.create_model('resnet18_aa', num_classes=2), tempfile.mkdtemp() + '/x')
        >>> sorted(os.listdir(path))
        ['config.json', 'model.safetensors']
    """
    check_finite_weights(model.state_dict(), f"the model to export to {folder!r}")  # never a diverged model
    os.makedirs(folder, exist_ok=True)
    if os.listdir(folder):
        raise ValueError(f"write_export writes into a new or empty folder, {folder!r} is not")  # a bug of ours
    config = hub_config(model, label_names, provenance, data_config)
    save_weights(model, os.path.join(folder, WEIGHTS), config["architecture"])
    write_json(config, os.path.join(folder, CONFIG))
    if metrics is not None:
        write_json(metrics, os.path.join(folder, METRICS))
    return folder


def _normalised_args(args: Any) -> dict[str, Any]:
    args = dict(args) if isinstance(args, dict) else {}
    for key in ("num_classes", "pretrained_cfg", "pretrained_cfg_overlay"):
        args.pop(key, None)
    return args


def check_export(folder: str) -> dict[str, Any]:
    """:func:`read_config`, then its architecture and model args checked against those recorded in the folder's
    ``model.safetensors``; return the config. A disagreement (a config edited, or copied from another model) is a
    TimmAAError naming both, since timm would build the config's model around the weights. Every loader of an
    export folder runs it (evaluate, train's ``model``/``init_from``, publish).

    Weights files without that record (not written by :func:`save_weights`) are not checked.

    Example:
        >>> import timm, timm_aa
        >>> folder = write_export(timm.create_model('resnet18_aa', num_classes=2), tempfile.mkdtemp() + '/x')
        >>> check_export(folder)['architecture']
        'resnet18_aa'
    """
    config = read_config(folder)
    weights_path = os.path.join(folder, WEIGHTS)
    meta = read_safetensors_header(weights_path)
    if "architecture" not in meta:
        return config
    recorded_args = _normalised_args(recorded_model_args(weights_path, meta))
    configured_args = _normalised_args(config.get("model_args"))
    differ = {k: v for k, v in recorded_args.items() if configured_args.get(k, "(unset)") != v}
    if config.get("architecture") != meta["architecture"] or differ:  # timm adds args of its own: a superset is fine
        same_arch = config.get("architecture") == meta["architecture"]
        says = ", ".join(f"{k} {configured_args.get(k, '(unset)')!r}" for k in differ) if same_arch else ""
        was = ", ".join(f"{k} {v!r}" for k, v in differ.items()) if same_arch else ""
        raise TimmAAError(
            f"{folder!r} contradicts itself: {CONFIG} describes {config.get('architecture')!r}"
            f"{' with ' + says if says else ''}, but {WEIGHTS} was written for {meta['architecture']!r}"
            f"{' with ' + was if was else ''}; re-export the model, or make {CONFIG} match the weights"
        )
    return config
