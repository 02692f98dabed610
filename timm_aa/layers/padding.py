"""Padding that never fails on small feature maps.

``torch.nn.functional.pad`` refuses reflect padding wider than the map (a 1x1 map, or a 2x2 map
with a filter of 4) and circular padding wider than the map. :func:`pad2d` falls back to an
index-based pad in those cases: reflect padding continues by repeated reflection (period
``2 * (n - 1)``, the same values torch gives wherever torch works) and a 1-pixel axis is
replicated; circular padding wraps as many times as needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD_MODES = ("reflect", "replicate", "zeros", "circular")


def check_pad_mode(pad_mode: str) -> str:
    """Validate a padding mode name and return it.

    Example:
        >>> check_pad_mode('reflect')
        'reflect'
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    return pad_mode


def _pad_index(n: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    idx = torch.arange(-before, n + after, device=device)
    if mode == "circular":
        return torch.remainder(idx, n)
    if mode == "replicate" or n == 1:
        return idx.clamp(0, n - 1)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx < n, idx, period - idx)


def pad2d(x: torch.Tensor, pads: list[int], mode: str) -> torch.Tensor:
    """Pad the last two dims by ``pads = [left, right, top, bottom]`` with any map size >= 1.

    Example:
        >>> pad2d(torch.ones(1, 1, 1, 1), [1, 2, 1, 2], 'reflect').shape
        torch.Size([1, 1, 4, 4])
    """
    if mode == "zeros":
        return F.pad(x, pads, mode="constant", value=0.0)
    h, w = x.shape[-2], x.shape[-1]
    left, right, top, bottom = pads[0], pads[1], pads[2], pads[3]
    if mode == "reflect":
        fits = max(left, right) < w and max(top, bottom) < h
    elif mode == "circular":
        fits = max(left, right) <= w and max(top, bottom) <= h
    else:
        fits = True
    if fits:
        return F.pad(x, pads, mode=mode)
    x = x.index_select(-2, _pad_index(h, top, bottom, mode, x.device))
    return x.index_select(-1, _pad_index(w, left, right, mode, x.device))


def blur_pads(filt_size: int) -> list[int]:
    """Zhang's asymmetric padding ``[left, right, top, bottom]`` for a filter size.

    Example:
        >>> blur_pads(4)
        [1, 2, 1, 2]
    """
    before, after = (filt_size - 1) // 2, filt_size // 2
    return [before, after, before, after]
