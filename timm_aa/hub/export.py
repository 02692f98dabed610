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
import shutil
import tempfile
from typing import Any

import torch
from safetensors.torch import save_file
from timm.models._hub import save_config_for_hf
from torch import nn

from .._io import check_replaceable, replace_dir, write_json
from ..errors import TimmAAError
from ..loading import read_safetensors_header

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"
EXPORT_FILES = (WEIGHTS_NAME, CONFIG_NAME, METRICS_NAME)


def model_args_of(model: nn.Module) -> dict[str, Any]:
    """The anti-aliasing arguments a registered ``*_aa`` model was built with (empty for other models), read
    from timm's model-args record ``model._model_args``.

    Example:
        >>> import timm, timm_aa
        >>> model_args_of(timm.create_model('resnet18_aa', filt_size=3))
        {'filt_size': 3, 'pad_mode': 'reflect', 'method': 'blur', 'stem': False, 'stem_max_pool': 2}
    """
    from ..models import AA_DEFAULTS

    args = getattr(model, "_model_args", None) or {}
    return {k: args[k] for k in AA_DEFAULTS if k in args}


PROVENANCE_KEYS = ("tag", "description", "origin_url", "license", "notes")


def hub_config(
    model: nn.Module, label_names: list[str] | None = None, provenance: dict[str, Any] | None = None
) -> dict[str, Any]:
    """timm's Hub config for ``model``, without ``model_args.num_classes`` (see module docstring).

    The source config's provenance (tag, description, license, ...) describes the weights the model
    was created with, not the ones being exported: it is dropped, and ``provenance`` written instead.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, CONFIG_NAME)
        model_config = {"label_names": list(label_names)} if label_names else None
        save_config_for_hf(model, path, model_config=model_config, model_args=model_args_of(model))
        with open(path) as f:
            config = json.load(f)
    pretrained_cfg = config.get("pretrained_cfg", {})
    for key in PROVENANCE_KEYS:
        pretrained_cfg.pop(key, None)
    pretrained_cfg.update(provenance or {})
    args = _normalised_args(config.get("model_args"))
    if args:
        config["model_args"] = args
    else:
        config.pop("model_args", None)
    return config


def save_weights(model: nn.Module, path: str, architecture: str | None = None) -> None:
    """Write the model's state dict as safetensors, with the architecture and model args in its metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    arch = architecture or (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "")
    metadata = {"format": "pt", "architecture": arch, "model_args": json.dumps(model_args_of(model))}
    save_file(state, path, metadata=metadata)


def write_export(
    model: nn.Module,
    folder: str,
    label_names: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
) -> str:
    """Write ``model.safetensors``, ``config.json`` (and ``metrics.json``) to ``folder``, atomically.

    Example:
        >>> import timm, timm_aa, tempfile
        >>> path = write_export(timm.create_model('resnet18_aa', num_classes=2), tempfile.mkdtemp() + '/x')
        >>> sorted(os.listdir(path))
        ['config.json', 'model.safetensors']
    """
    folder = os.path.abspath(folder)
    check_export_target(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
    try:
        config = hub_config(model, label_names, provenance)
        save_weights(model, os.path.join(tmp, WEIGHTS_NAME), config["architecture"])
        write_json(config, os.path.join(tmp, CONFIG_NAME))
        if metrics is not None:
            write_json(metrics, os.path.join(tmp, METRICS_NAME))
        replace_dir(tmp, folder, allowed=EXPORT_FILES)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def check_export_target(folder: str) -> None:
    """Raise TimmAAError if ``folder`` exists and is not an export folder (it holds other files than ours),
    since :func:`write_export` replaces the whole folder.

    Example:
        >>> check_export_target('/nonexistent/export')
    """
    check_replaceable(folder, EXPORT_FILES)


def _normalised_args(args: Any) -> dict[str, Any]:
    args = dict(args) if isinstance(args, dict) else {}
    for key in ("num_classes", "pretrained_cfg", "pretrained_cfg_overlay"):
        args.pop(key, None)
    return args


def check_export(folder: str) -> dict[str, Any]:
    """Read an export folder's ``config.json`` and check it against the architecture and model args recorded in
    its ``model.safetensors``; return the config. A disagreement (a config edited, or copied from another
    model) is a TimmAAError naming both, since timm would build the config's model around the weights.

    Weights files without that record (not written by :func:`save_weights`) are not checked.

    Example:
        >>> import timm, timm_aa
        >>> folder = write_export(timm.create_model('resnet18_aa', num_classes=2), tempfile.mkdtemp() + '/x')
        >>> check_export(folder)['architecture']
        'resnet18_aa'
    """
    config_path, weights_path = os.path.join(folder, CONFIG_NAME), os.path.join(folder, WEIGHTS_NAME)
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except OSError as err:
        raise TimmAAError(f"{folder!r} is not an export folder: cannot read {CONFIG_NAME} ({err.strerror})") from None
    except ValueError as err:
        raise TimmAAError(f"{config_path!r} is not a timm config ({err})") from None
    meta = read_safetensors_header(weights_path)
    if "architecture" not in meta:
        return config
    try:
        recorded_args = _normalised_args(json.loads(meta.get("model_args") or "{}"))
    except ValueError:
        raise TimmAAError(f"{weights_path!r} has corrupt model_args metadata: re-export the model") from None
    configured_args = _normalised_args(config.get("model_args"))
    differ = {k: v for k, v in recorded_args.items() if configured_args.get(k, "(unset)") != v}
    if config.get("architecture") != meta["architecture"] or differ:  # timm adds args of its own: a superset is fine
        same_arch = config.get("architecture") == meta["architecture"]
        says = ", ".join(f"{k} {configured_args.get(k, '(unset)')!r}" for k in differ) if same_arch else ""
        was = ", ".join(f"{k} {v!r}" for k, v in differ.items()) if same_arch else ""
        raise TimmAAError(
            f"{folder!r} contradicts itself: {CONFIG_NAME} describes {config.get('architecture')!r}"
            f"{' with ' + says if says else ''}, but {WEIGHTS_NAME} was written for {meta['architecture']!r}"
            f"{' with ' + was if was else ''}; re-export the model, or make {CONFIG_NAME} match the weights"
        )
    return config


def load_export_state(folder: str) -> dict[str, torch.Tensor]:
    """The tensors of an export folder."""
    from safetensors.torch import load_file

    return load_file(os.path.join(folder, WEIGHTS_NAME))
