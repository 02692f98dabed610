"""Finite or refused: which tensors of a model or a weights file hold a NaN or an infinity, in one pass.

Every loader and the training loop ask this before they use, measure or save weights, so a diverged model is never
loaded, measured, checkpointed or exported.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import TimmAAError


def non_finite(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors of ``tensors`` that hold a NaN or an infinity, in their order.

    One pass over the tensors and one device synchronisation; integer tensors are finite by construction.

    Example:
        >>> non_finite({'w': torch.ones(2), 'b': torch.tensor([0.0, float('nan')]), 'n': torch.tensor(3)})
        ['b']
    """
    names = [name for name, t in tensors.items() if torch.is_floating_point(t) or torch.is_complex(t)]
    if not names:
        return []
    flags = [torch.isfinite(tensors[name]).all() for name in names]
    finite = torch.stack([f.to(flags[0].device) for f in flags]).tolist()  # one synchronisation
    return [name for name, ok in zip(names, finite, strict=True) if not ok]


def check_finite_weights(tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise TimmAAError naming ``where`` and how many tensors are non-finite, when any is.

    Example:
        >>> check_finite_weights({'w': torch.ones(2)}, 'w.safetensors')
        >>> check_finite_weights({'w': torch.ones(2), 'b': torch.full((2,), float('inf'))}, 'w.safetensors')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: w.safetensors: 1 of 2 tensors hold NaN or infinite values (e.g. 'b'): these \
weights are unusable (a training run that diverged?); use weights saved before it diverged
    """
    bad = non_finite(tensors)
    if bad:
        raise TimmAAError(f"{where}: {len(bad)} of {len(tensors)} tensors hold NaN or infinite values (e.g. "
                          f"{bad[0]!r}): these weights are unusable (a training run that diverged?); use weights "
                          "saved before it diverged")
