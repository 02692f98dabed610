"""What the alias-free conversions of CNNs (:mod:`.alias_free`) and of XCiT (:mod:`.alias_free_xcit`) share: the
activations they replace, and where a new layer is placed.

Example:
    >>> ACTS[torch.nn.GELU]
    'gelu'
"""

from __future__ import annotations

import torch
from timm.layers.activations import GELU as TimmGELU
from torch import nn

#: the activations with an alias-free polynomial form, and the function each approximates
ACTS = {nn.ReLU: "relu", nn.GELU: "gelu", TimmGELU: "gelu"}


def param_like(module: nn.Module, fallback: torch.Tensor | None) -> dict:
    """The device and dtype of ``module``'s first parameter (else of ``fallback``), for a layer that replaces it.

    Example:
        >>> param_like(torch.nn.Linear(2, 2).double(), None)['dtype']
        torch.float64
    """
    ref = next(module.parameters(), fallback)
    return {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
