"""Zhang's checkpoints in our models' keys: the key map from his ``antialiased-cnns`` state dicts to our ``*_aa``
models (needed to build a pretrained model from his file, and by the converter in :mod:`timm_aa.weights`).

His models and ours run the same layers in the same order; only the names differ (his BlurPools
are entries of ``nn.Sequential`` containers and shift their indices, ours are not) and his VGG
classifier is linear where timm's is convolutional. So the mapping pairs his tensors with ours in
registration order, checking each pair's kind (``weight``, ``bias``, ``running_mean``, ...) and
shape, and drops his blur filters (``*.filt``) after checking their size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import timm
import torch

from ..errors import TimmAAError
from ..infra.checkpoint import unwrap_state_dict
from ..layers.options import DEFAULT_FILT_SIZE
from ._zhang_releases import zhang_release

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


def _fit(sd: StateDict, arch: str, filt_size: int,
         model_kwargs: dict[str, Any]) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The key map of an unwrapped state dict onto our model, and our model's state (built once, on meta)."""
    _check_filters(sd, filt_size)
    with torch.device("meta"):
        model = timm.create_model(zhang_model_name(arch), filt_size=filt_size, **model_kwargs)
    ours = model.state_dict()
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
        what = (f"has an extra key {theirs_keys[len(our_keys)]!r}" if len(theirs_keys) > len(our_keys) else
                f"lacks the tensor for our key {our_keys[len(theirs_keys)]!r}")
        raise TimmAAError(f"checkpoint does not fit {arch} (filt_size={filt_size}): it {what}")
    return mapping, ours


def zhang_key_map(
    state_dict: StateDict, arch: str, filt_size: int = DEFAULT_FILT_SIZE, **model_kwargs: Any
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
    return _fit(unwrap_state_dict(state_dict), arch, filt_size, model_kwargs)[0]


def convert_zhang_state_dict(
    state_dict: StateDict, arch: str, filt_size: int = DEFAULT_FILT_SIZE, **model_kwargs: Any
) -> dict[str, torch.Tensor]:
    """Zhang's state dict renamed (and reshaped where needed) to our model's keys, ready for a strict load.

    Example:
        >>> import antialiased_cnns
        >>> sd = convert_zhang_state_dict(antialiased_cnns.resnet18().state_dict(), 'resnet18')
        >>> 'maxpool.1.filt' in sd, 'layer2.0.conv2.weight' in sd
        (False, True)
    """
    sd = unwrap_state_dict(state_dict)
    mapping, ours = _fit(sd, arch, filt_size, model_kwargs)
    out = {mine: sd[theirs].reshape(ours[mine].shape) for theirs, mine in mapping.items()}
    inverse = {mine: theirs for theirs, mine in mapping.items()}
    for key, value in ours.items():  # BN step counters: his where present, else zero
        if _kind(key) == "num_batches_tracked":
            sibling = inverse.get(key[: -len("num_batches_tracked")] + "running_mean")
            theirs = sibling[: -len("running_mean")] + "num_batches_tracked" if sibling else None
            out[key] = sd[theirs].clone() if theirs in sd else torch.zeros((), dtype=value.dtype)
    return out


