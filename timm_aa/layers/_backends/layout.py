"""Which memory format a 4D tensor is in, as the blur paths tell them apart, and outputs allocated in it."""

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


def empty_like_layout(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """An uninitialised (N, C, h, w) tensor with ``x``'s dtype, device and :func:`memory_format_of`.

    Example:
        >>> empty_like_layout(torch.zeros(2, 3, 8, 8), 4, 4).shape
        torch.Size([2, 3, 4, 4])
    """
    return torch.empty((x.shape[0], x.shape[1], h, w), dtype=x.dtype, device=x.device,
                       memory_format=memory_format_of(x))
