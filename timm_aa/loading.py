"""Create a model from what a user types: a timm name, ``hf-hub:``/``local-dir:``, a safetensors file, or
``ARCH:FILE.safetensors``.
"""

from __future__ import annotations

import difflib
import os
from contextlib import nullcontext
from typing import Any

import timm
import torch
from safetensors.torch import load_file
from torch import nn

from . import models as _registered  # noqa: F401  (registers the *_aa models)
from .errors import TimmAAError, first_line
from .infra.checkpoint import read_safetensors_header
from .infra.finite import check_finite_weights
from .infra.hub_access import hub_download
from .infra.hub_names import parse_hub_spec
from .infra.layout import CONFIG, WEIGHTS
from .weights.config import recorded_model_args
from .weights.export import check_export
from .weights.timm_weights import timm_weights_access

_TIMM_SOURCES = ("hf-hub", "hf_hub", "local-dir")  # timm's own prefixes: not ARCH:FILE


def check_model_name(name: str) -> str:
    """Return ``name`` (with or without a ``.tag``) if timm knows it, else raise ``TimmAAError`` with suggestions.

    Example:
        >>> check_model_name('resnet18_aa')
        'resnet18_aa'
        >>> check_model_name('resnet50aa')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: unknown model 'resnet50aa'; did you mean 'resnet50_aa', ...?
    """
    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
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


def load_checkpoint_model(arch: str, path: str, **kwargs: Any) -> nn.Module:
    """``arch`` with the weights of a safetensors file, loaded strictly (``num_classes`` follows the file).

    The anti-aliasing arguments recorded in the file (``model_args``) apply when it was saved from ``arch``.

    Example:
        >>> import tempfile, timm
        >>> from timm_aa.hub import save_weights
        >>> path = os.path.join(tempfile.mkdtemp(), 'w.safetensors')
        >>> save_weights(timm.create_model('resnet18_aa', num_classes=3, filt_size=3), path)
        >>> model = load_checkpoint_model('resnet18_aa', path)
        >>> model.fc.out_features, model._model_args['filt_size']
        (3, 3)
    """
    meta = read_safetensors_header(path)
    check_model_name(arch)
    saved_from = (meta.get("architecture") or "").split(".", 1)[0]
    if saved_from == arch.split(".", 1)[0]:
        kwargs = {**recorded_model_args(path, meta), **kwargs}
    state = load_file(path)
    check_finite_weights(state, path)
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


def split_weights_spec(spec: str) -> tuple[str, str] | None:
    """``(arch, file)`` of an ``ARCH:FILE.safetensors`` spec, else ``None``.

    Example:
        >>> split_weights_spec('resnet50_aa:runs/w.safetensors'), split_weights_spec('hf-hub:org/name@main')
        (('resnet50_aa', 'runs/w.safetensors'), None)
    """
    head, sep, tail = spec.partition(":")
    if sep and head not in _TIMM_SOURCES and len(head) > 1 and "/" not in head and "\\" not in head:
        return head, tail
    return None


def carries_weights(spec: str) -> bool:
    """Whether a model spec names its own weights (``hf-hub:``, ``local-dir:``, a safetensors file, or
    ``ARCH:FILE``) rather than a bare architecture.

    Example:
        >>> carries_weights('local-dir:/x'), carries_weights('resnet50_aa:w.safetensors'), carries_weights('resnet50')
        (True, True, False)
    """
    return ":" in spec or spec.endswith(".safetensors")


def _export_model(folder: str, shown: str, **kwargs: Any) -> nn.Module:
    """The model of an export folder, after :func:`~timm_aa.weights.export.check_export` (config values, and config
    against weights); what timm then refuses is one line too."""
    arch = check_export(folder)["architecture"]
    try:
        return timm.create_model(f"local-dir:{folder}", pretrained=True, **kwargs)
    except TypeError as err:  # model_args the architecture does not take
        raise TimmAAError(f"{shown}: its config.json's model_args do not fit {arch} ({first_line(err)})") from None
    except RuntimeError as err:  # weights of other shapes
        raise TimmAAError(f"{shown}: its weights do not fit {arch} ({first_line(err)})") from None


def create_model_from_spec(spec: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Create a model from a spec, the way every timm-aa tool reads a model argument.

    - ``resnet50_aa`` or ``resnet50.a1_in1k``: a timm name (``pretrained`` loads its weights; for the
      ``*_aa`` models, Zhang's, see :func:`timm_aa.weights.zhang_weights`; timm's own through
      :func:`~timm_aa.weights.timm_weights.timm_weights_access`, which fails in seconds without a network);
    - ``local-dir:/path`` or ``hf-hub:org/repo[@revision]``: an export folder (its ``config.json`` and
      ``model.safetensors``, checked against each other first), always with its weights; the repo id and revision
      are checked first (a revision with ``..`` segments would reach the Hub cache as a path);
    - ``/path/model.safetensors`` (with ``architecture`` in its metadata) or ``ARCH:/path/model.safetensors``.

    Example:
        >>> create_model_from_spec('resnet18_aa', num_classes=3).fc.out_features
        3
        >>> create_model_from_spec('local-dir:/nonexistent')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no model folder at '/nonexistent'
    """
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"a model spec must be a non-empty string, got {spec!r}")
    if spec.startswith("local-dir:"):
        folder = spec[len("local-dir:"):]
        if not os.path.isdir(folder):
            raise TimmAAError(f"no model folder at {folder!r}")
        return _finite(_export_model(folder, spec, **kwargs), os.path.join(folder, WEIGHTS))
    if spec.startswith(("hf-hub:", "hf_hub:")):
        repo_id, revision = parse_hub_spec(spec)
        folder = hub_download(repo_id, [CONFIG, WEIGHTS], revision=revision)
        return _finite(_export_model(folder, spec, **kwargs), f"{spec} ({WEIGHTS})")
    split = split_weights_spec(spec)
    if split is not None:
        return load_checkpoint_model(*split, **kwargs)  # the file's tensors checked there
    if spec.endswith(".safetensors"):
        arch = read_safetensors_header(spec).get("architecture")
        if not arch:
            raise TimmAAError(f"{spec!r} has no 'architecture' in its metadata; name it as ARCH:{spec} (e.g. "
                              f"resnet50_aa:{spec})")
        return load_checkpoint_model(arch, spec, **kwargs)  # with the file's model_args
    check_model_name(spec)
    with timm_weights_access(spec) if pretrained else nullcontext():
        model = timm.create_model(spec, pretrained=pretrained, **kwargs)
    return _finite(model, f"the pretrained weights of {spec}") if pretrained else model


def _finite(model: nn.Module, where: str) -> nn.Module:
    """``model``, after one pass over its tensors: weights holding NaN or infinities are refused, naming ``where``."""
    check_finite_weights(model.state_dict(), where)
    return model
