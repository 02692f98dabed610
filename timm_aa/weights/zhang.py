"""Convert checkpoints of Zhang's ``antialiased-cnns`` package into our ``*_aa`` models.

His models and ours run the same layers in the same order; only the names differ (his BlurPools
are entries of ``nn.Sequential`` containers and shift their indices, ours are not) and his VGG
classifier is linear where timm's is convolutional. So the mapping pairs his tensors with ours in
registration order, checking each pair's kind (``weight``, ``bias``, ``running_mean``, ...) and
shape, and drops his blur filters (``*.filt``) after checking their size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import timm
import torch
from torch import nn

from ..errors import TimmAAError
from .checkpoint import check_hash, read_zhang_checkpoint, unwrap_state_dict
from .releases import zhang_release

StateDict = Mapping[str, torch.Tensor]


def zhang_model_name(arch: str) -> str:
    """Our registered model name for Zhang's architecture name.

    Example:
        >>> zhang_model_name('mobilenet_v2')
        'mobilenetv2_100_aa'
    """
    return zhang_release(arch).model


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _check_filters(sd: StateDict, filt_size: int) -> None:
    for key, value in sd.items():
        if _kind(key) == "filt" and tuple(value.shape[-2:]) != (filt_size, filt_size):
            raise TimmAAError(
                f"checkpoint key {key!r} holds a {value.shape[-2]}x{value.shape[-1]} blur filter, "
                f"but filt_size={filt_size} was requested"
            )


def _our_state(arch: str, filt_size: int, kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        model = timm.create_model(zhang_model_name(arch), filt_size=filt_size, **kwargs)
    return model.state_dict()


def zhang_key_map(
    state_dict: StateDict, arch: str, filt_size: int = 4, **model_kwargs: Any
) -> dict[str, str]:
    """Map each tensor key of Zhang's checkpoint to our model's key (blur filters and counters left out).

    ``model_kwargs`` (e.g. ``num_classes``) are those of the target model.
    Raises ``TimmAAError`` naming the first key that does not fit.

    Example:
        >>> import antialiased_cnns
        >>> sd = antialiased_cnns.resnet18(filter_size=4).state_dict()
        >>> zhang_key_map(sd, 'resnet18')['layer2.0.conv2.1.weight']
        'layer2.0.conv2.weight'
    """
    sd = unwrap_state_dict(state_dict)
    _check_filters(sd, filt_size)
    ours = _our_state(arch, filt_size, model_kwargs)
    theirs_keys = [k for k in sd if _kind(k) not in ("filt", "num_batches_tracked")]
    our_keys = [k for k in ours if _kind(k) != "num_batches_tracked"]
    mapping = {}
    for theirs, mine in zip(theirs_keys, our_keys, strict=False):  # a length mismatch is reported below
        a, b = sd[theirs], ours[mine]
        if _kind(theirs) != _kind(mine) or a.numel() != b.numel() or (a.dim() == b.dim() and a.shape != b.shape):
            raise TimmAAError(
                f"checkpoint does not fit {arch} (filt_size={filt_size}): its key {theirs!r} "
                f"{tuple(a.shape)} meets {mine!r} {tuple(b.shape)} of {zhang_model_name(arch)}"
            )
        mapping[theirs] = mine
    if len(theirs_keys) != len(our_keys):
        extra = theirs_keys[len(our_keys)] if len(theirs_keys) > len(our_keys) else None
        missing = our_keys[len(theirs_keys)] if extra is None else None
        what = f"has an extra key {extra!r}" if extra else f"lacks the tensor for our key {missing!r}"
        raise TimmAAError(f"checkpoint does not fit {arch} (filt_size={filt_size}): it {what}")
    return mapping


def convert_zhang_state_dict(
    state_dict: StateDict, arch: str, filt_size: int = 4, **model_kwargs: Any
) -> dict[str, torch.Tensor]:
    """Zhang's state dict renamed (and reshaped where needed) to our model's keys, ready for a strict load.

    Example:
        >>> import antialiased_cnns
        >>> sd = convert_zhang_state_dict(antialiased_cnns.resnet18().state_dict(), 'resnet18')
        >>> 'maxpool.1.filt' in sd, 'layer2.0.conv2.weight' in sd
        (False, True)
    """
    sd = unwrap_state_dict(state_dict)
    mapping = zhang_key_map(sd, arch, filt_size, **model_kwargs)
    ours = _our_state(arch, filt_size, model_kwargs)
    out = {mine: sd[theirs].reshape(ours[mine].shape) for theirs, mine in mapping.items()}
    inverse = {mine: theirs for theirs, mine in mapping.items()}
    for key, value in ours.items():  # BN step counters: his where present, else zero
        if _kind(key) == "num_batches_tracked":
            sibling = inverse.get(key[: -len("num_batches_tracked")] + "running_mean")
            theirs = sibling[: -len("running_mean")] + "num_batches_tracked" if sibling else None
            out[key] = sd[theirs].clone() if theirs in sd else torch.zeros((), dtype=value.dtype)
    return out


def from_zhang(
    checkpoint: str | os.PathLike | StateDict, arch: str, filt_size: int = 4, **kwargs: Any
) -> nn.Module:
    """Our ``*_aa`` model with the weights of one of Zhang's checkpoints, loaded strictly.

    ``checkpoint`` is a path to his ``.pth`` or a state dict, bare or wrapped in ``{'state_dict': ...}``. A
    file is read with ``weights_only=True`` and refused when its SHA-256 does not start with the hash prefix
    in its name (``...-cad66808.pth``). ``kwargs`` go to ``timm.create_model``.

    Example:
        >>> import antialiased_cnns
        >>> model = from_zhang(antialiased_cnns.resnet18(filter_size=3).state_dict(), 'resnet18', filt_size=3)
    """
    name = zhang_model_name(arch)
    if isinstance(checkpoint, (str, os.PathLike)):
        if not os.path.isfile(checkpoint):
            raise TimmAAError(f"no checkpoint file at {os.fspath(checkpoint)!r}")
        check_hash(checkpoint)
        checkpoint = read_zhang_checkpoint(checkpoint, wrapped=False)
    sd = unwrap_state_dict(checkpoint)
    weights = [v for k, v in sd.items() if _kind(k) == "weight"]
    if not weights:
        raise TimmAAError(f"checkpoint has no weight tensors (keys: {list(sd)[:5]})")
    kwargs.setdefault("num_classes", weights[-1].shape[0])  # the classifier comes last in every arch
    converted = convert_zhang_state_dict(sd, arch, filt_size, **kwargs)
    model = timm.create_model(name, filt_size=filt_size, **kwargs)
    model.load_state_dict(converted, strict=True)
    return model.eval()
