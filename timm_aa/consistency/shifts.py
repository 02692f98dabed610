"""Seeded crop offsets and circular shifts, and the crops they cut.

Offsets for pass ``p`` come from ``torch.Generator().manual_seed(stream_seed(seed, p, stream))``, one
stream per protocol, so every model of a run sees exactly the same crops.
"""

from __future__ import annotations

import torch

RANDOM_STREAM, CIRCULAR_STREAM = 0, 1


def stream_seed(seed: int, pass_index: int, stream: int) -> int:
    """The generator seed for one protocol's draws in one pass.

    Example:
        >>> stream_seed(0, 1, RANDOM_STREAM)
        2
    """
    return seed * 10_007 + pass_index * 2 + stream


def draw_offsets(seed: int, pass_index: int, count: int, max_offset: int) -> torch.Tensor:
    """``count`` rows of two crop offsets ``(y1, x1, y2, x2)``, each uniform in ``[0, max_offset]``.

    Example:
        >>> draw_offsets(0, 0, 3, 32).shape
        torch.Size([3, 4])
    """
    gen = torch.Generator().manual_seed(stream_seed(seed, pass_index, RANDOM_STREAM))
    return torch.randint(0, max_offset + 1, (count, 4), generator=gen)


def draw_shifts(seed: int, pass_index: int, count: int, max_shift: int) -> torch.Tensor:
    """``count`` rows of two circular shifts ``(dy1, dx1, dy2, dx2)``, each uniform in ``[-max_shift, max_shift)``.

    Example:
        >>> bool((draw_shifts(0, 0, 100, 32).abs() <= 32).all())
        True
    """
    gen = torch.Generator().manual_seed(stream_seed(seed, pass_index, CIRCULAR_STREAM))
    return torch.randint(-max_shift, max_shift, (count, 4), generator=gen)


def crop_at(x: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``size x size`` from each image of ``x`` (B, C, H, W) at its ``(y, x)`` row of ``offsets`` (B, 2).

    Example:
        >>> crop_at(torch.zeros(2, 3, 8, 8), torch.tensor([[0, 1], [2, 3]]), 4).shape
        torch.Size([2, 3, 4, 4])
    """
    if bool((offsets == offsets[0]).all()):  # one offset for the batch: a view, no copy
        oy, ox = int(offsets[0, 0]), int(offsets[0, 1])
        return x[:, :, oy : oy + size, ox : ox + size]
    pairs = zip(x, offsets.tolist(), strict=True)
    return torch.stack([img[:, oy : oy + size, ox : ox + size] for img, (oy, ox) in pairs])


def roll_each(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circularly shift each image of ``x`` by its ``(dy, dx)`` row of ``shifts`` (B, 2).

    Example:
        >>> roll_each(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([[0, 1]])).flatten().tolist()
        [1.0, 0.0, 3.0, 2.0]
    """
    pairs = zip(x, shifts.tolist(), strict=True)
    return torch.stack([torch.roll(img, (dy, dx), dims=(1, 2)) for img, (dy, dx) in pairs])
