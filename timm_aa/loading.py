"""Create a model from what a user types: a timm name, ``hf-hub:``/``local-dir:``, or a safetensors file.

Used by the evaluation, training and publishing tools so they all accept the same model specs.
"""

from __future__ import annotations

import difflib
import json
import os
from typing import Any

import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from . import models as _registered  # noqa: F401  (registers the *_aa models)
from .errors import TimmAAError


def suggest_models(name: str, n: int = 5) -> list[str]:
    """The registered timm model names closest to ``name``.

    Example:
        >>> suggest_models('resnet50aa')[0]
        'resnet50_aa'
    """
    return difflib.get_close_matches(name, timm.list_models(), n=n, cutoff=0.6)


def check_model_name(name: str) -> str:
    """Return ``name`` (with or without a ``.tag``) if timm knows it, else raise ``ValueError`` with suggestions.

    Example:
        >>> check_model_name('resnet18_aa')
        'resnet18_aa'
    """
    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        close = suggest_models(arch)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise TimmAAError(f"unknown model {name!r}{hint}")
    return name


def _classifier_outputs(arch: str, state: dict[str, torch.Tensor]) -> int | None:
    cfg = timm.models.get_pretrained_cfg(arch)
    head = getattr(cfg, "classifier", None) if cfg else None
    heads = head if isinstance(head, (list, tuple)) else [head]
    for h in heads:
        if h and f"{h}.weight" in state:
            return int(state[f"{h}.weight"].shape[0])
    return None


def _safetensors_arch(path: str) -> tuple[str, dict[str, Any]]:
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "architecture" not in meta:
        raise TimmAAError(
            f"{path!r} has no 'architecture' in its metadata; name it as ARCH@{path} (e.g. resnet50_aa@{path})"
        )
    return meta["architecture"], json.loads(meta.get("model_args", "{}"))


def load_checkpoint_model(arch: str, path: str, **kwargs: Any) -> nn.Module:
    """``arch`` with the weights of a safetensors file, loaded strictly (``num_classes`` follows the file).

    Example:
        >>> # load_checkpoint_model('resnet18_aa', 'out/export/model.safetensors')
    """
    if not os.path.isfile(path):
        raise TimmAAError(f"no checkpoint file at {path!r}")
    if not path.endswith(".safetensors"):
        raise TimmAAError(f"checkpoints must be .safetensors files, got {path!r}")
    state = load_file(path)
    check_model_name(arch)
    num_classes = _classifier_outputs(arch.split(".", 1)[0], state)
    if num_classes is not None:
        kwargs.setdefault("num_classes", num_classes)
    model = timm.create_model(arch, **kwargs)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:3]
        raise TimmAAError(f"weights in {path!r} do not fit {arch}: {' '.join(first)}") from None
    return model


def carries_weights(spec: str) -> bool:
    """Whether a model spec names its own weights (``hf-hub:``, ``local-dir:``, a safetensors file) rather
    than a bare architecture.

    Example:
        >>> carries_weights('local-dir:/x'), carries_weights('resnet50_aa@w.safetensors'), carries_weights('resnet50')
        (True, True, False)
    """
    return spec.startswith(("hf-hub:", "local-dir:")) or "@" in spec or spec.endswith(".safetensors")


def create_model_from_spec(spec: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Create a model from a spec, the way every timm-aa tool reads a model argument.

    - ``resnet50_aa`` or ``resnet50.a1_in1k``: a timm name (``pretrained`` loads timm's weights);
    - ``hf-hub:org/repo`` or ``local-dir:/path``: timm's Hub / folder loading (always with weights);
    - ``/path/model.safetensors`` (with ``architecture`` in its metadata) or ``ARCH@/path/model.safetensors``.

    Example:
        >>> create_model_from_spec('resnet18_aa', num_classes=3).fc.out_features
        3
    """
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"a model spec must be a non-empty string, got {spec!r}")
    if spec.startswith(("hf-hub:", "local-dir:")):
        if spec.startswith("local-dir:") and not os.path.isdir(spec[len("local-dir:"):]):
            raise TimmAAError(f"no model folder at {spec[len('local-dir:'):]!r}")
        return timm.create_model(spec, pretrained=True, **kwargs)
    if "@" in spec:
        arch, path = spec.split("@", 1)
        return load_checkpoint_model(arch, path, **kwargs)
    if spec.endswith(".safetensors"):
        if not os.path.isfile(spec):
            raise TimmAAError(f"no checkpoint file at {spec!r}")
        arch, model_args = _safetensors_arch(spec)
        return load_checkpoint_model(arch, spec, **{**model_args, **kwargs})
    check_model_name(spec)
    return timm.create_model(spec, pretrained=pretrained, **kwargs)
