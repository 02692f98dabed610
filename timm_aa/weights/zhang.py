"""Our ``*_aa`` models from Zhang's checkpoints (:func:`from_zhang`), checked against his package.

The key map itself lives with the models (:mod:`timm_aa.models._zhang_keys`): building a pretrained model needs it.
"""

from __future__ import annotations

import os
from typing import Any

import timm
import torch
from torch import nn

from ..errors import TimmAAError
from ..infra.checkpoint import check_hash, read_zhang_checkpoint, unwrap_state_dict
from ..layers.options import DEFAULT_FILT_SIZE
from ..models._zhang_keys import StateDict, convert_zhang_state_dict, zhang_model_name
from ..models._zhang_releases import ZhangFile


def from_zhang(
    checkpoint: str | os.PathLike | StateDict, arch: str, filt_size: int = DEFAULT_FILT_SIZE, **kwargs: Any
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
    weights = [v for k, v in sd.items() if k.rsplit(".", 1)[-1] == "weight"]
    if not weights:
        raise TimmAAError(f"checkpoint has no weight tensors (keys: {list(sd)[:5]})")
    kwargs.setdefault("num_classes", weights[-1].shape[0])  # the classifier comes last in every arch
    converted = convert_zhang_state_dict(sd, arch, filt_size, **kwargs)
    model = timm.create_model(name, filt_size=filt_size, **kwargs)
    model.load_state_dict(converted, strict=True)
    return model.eval()


def verify_against_zhang(file: ZhangFile, state: dict[str, torch.Tensor], model: nn.Module,
                         atol: float = 1e-4) -> float:
    """Max abs logit difference between our converted model and his package's model with the same weights."""
    import antialiased_cnns

    ref = getattr(antialiased_cnns, file.arch)(filter_size=file.filt_size)
    ref.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = (ref.eval()(x) - model.eval()(x)).abs().max().item()
    if not diff <= atol:
        raise TimmAAError(f"converted logits differ from antialiased_cnns by {diff:.3g} > {atol}")
    return diff
