"""Which memory format a 4D tensor is in, as the blur paths (PyTorch and the CPU kernel) tell them apart."""

from __future__ import annotations

import torch


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for channels_last-only tensors, else ``torch.contiguous_format``.

    A tensor that is both (one channel, or 1x1 maps) counts as NCHW; one that is neither too.

    Example:
        >>> memory_format_of(torch.zeros(1, 3, 4, 4).contiguous(memory_format=torch.channels_last))
        torch.channels_last
    """
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format
