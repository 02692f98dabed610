"""Export folders: ``model.safetensors`` + a ``config.json`` that timm and transformers both load.

timm's own ``save_config_for_hf`` records ``num_classes`` inside ``model_args``; transformers'
``TimmWrapper`` then passes ``num_classes`` twice and fails. We write timm's config without it
(``num_classes`` stays at the top level, where both libraries read it).
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

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"


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
    args = config.get("model_args", {})
    for key in ("num_classes", "pretrained_cfg", "pretrained_cfg_overlay"):
        args.pop(key, None)
    if not args:
        config.pop("model_args", None)
    return config


def save_weights(model: nn.Module, path: str, architecture: str | None = None) -> None:
    """Write the model's state dict as safetensors, with the architecture and model args in its metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    arch = architecture or (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "")
    metadata = {"format": "pt", "architecture": arch, "model_args": json.dumps(model_args_of(model))}
    save_file(state, path, metadata=metadata)


def replace_dir_atomic(tmp: str, final: str) -> None:
    """Move the complete folder ``tmp`` to ``final``, replacing an existing one only once ``tmp`` is ready."""
    if os.path.exists(final):
        old = final.rstrip("/") + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


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
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
    try:
        config = hub_config(model, label_names, provenance)
        save_weights(model, os.path.join(tmp, WEIGHTS_NAME), config["architecture"])
        with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
            json.dump(config, f, indent=2)
        if metrics is not None:
            with open(os.path.join(tmp, METRICS_NAME), "w") as f:
                json.dump(metrics, f, indent=2)
        replace_dir_atomic(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_export_state(folder: str) -> dict[str, torch.Tensor]:
    """The tensors of an export folder."""
    from safetensors.torch import load_file

    return load_file(os.path.join(folder, WEIGHTS_NAME))
