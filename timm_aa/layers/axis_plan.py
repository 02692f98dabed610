"""One axis of a blur pool as a matrix: padding, taps and subsampling folded into (ceil(n / stride), n).

Built in plain Python and cached; under ``torch.compile`` they are traced (to constants) instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

Taps = tuple[float, ...]
T = TypeVar("T")


def cached(fn: Callable[..., T]) -> Callable[..., T]:
    """``functools.lru_cache`` in eager mode; under ``torch.compile`` the plain function, traced into the graph.

    Example:
        >>> cached(lambda n: n + 1)(1)
        2
    """
    memo = functools.lru_cache(maxsize=512)(fn)

    @functools.wraps(fn)
    def call(*args: object) -> T:
        return fn(*args) if torch.compiler.is_compiling() else memo(*args)

    return call


def pad_source(p: int, n: int, mode: str) -> int | None:
    """The index that padded position ``p`` (``-before <= p < n + after``) reads, or None for a zero.

    Reflect padding reflects as often as needed (period ``2 * (n - 1)``; a 1-pixel axis replicates).

    Example:
        >>> [pad_source(p, 3, 'reflect') for p in range(-2, 5)]
        [2, 1, 0, 1, 2, 1, 0]
    """
    if 0 <= p < n:
        return p
    if mode == "zeros":
        return None
    if mode == "circular":
        return p % n
    if mode == "replicate" or n == 1:
        return min(max(p, 0), n - 1)
    q = p % (2 * (n - 1))
    return q if q < n else 2 * (n - 1) - q


@cached
def axis_entries(n: int, taps: Taps, stride: int, mode: str) -> tuple[tuple[float, ...], ...]:
    """Rows of the axis matrix as tuples of floats.

    Example:
        >>> axis_entries(4, (0.5, 0.5), 2, 'reflect')
        ((0.5, 0.5, 0.0, 0.0), (0.0, 0.0, 0.5, 0.5))
    """
    before = (len(taps) - 1) // 2
    rows = []
    for i in range(math.ceil(n / stride)):
        row = [0.0] * n
        for j, tap in enumerate(taps):
            src = pad_source(stride * i + j - before, n, mode)
            if src is not None:
                row[src] += tap
        rows.append(tuple(row))
    return tuple(rows)


@cached
def axis_matrix(n: int, taps: Taps, stride: int, mode: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The (ceil(n / stride), n) matrix that pads by ``mode``, filters with ``taps`` and subsamples one axis.

    Example:
        >>> axis_matrix(4, (0.5, 0.5), 2, 'reflect', torch.device('cpu'), torch.float32).tolist()
        [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    return torch.tensor(axis_entries(n, taps, stride, mode), dtype=torch.float64).to(device=device, dtype=dtype)


def interior(n: int, k: int, stride: int) -> tuple[int, int]:
    """Output positions ``[first, end)`` whose filter window lies inside an axis of length ``n``.

    Example:
        >>> interior(56, 4, 2)
        (1, 27)
    """
    before = (k - 1) // 2
    first = -(-before // stride)
    end = (n - k + before) // stride + 1 if n - k + before >= 0 else 0
    return first, max(end, first)


def conv_length(n: int, k: int, stride: int) -> int:
    """Output length of a depthwise conv with symmetric zero padding ``(k - 1) // 2`` (<= ceil(n / stride)).

    Example:
        >>> conv_length(111, 4, 2), math.ceil(111 / 2)
        (55, 56)
    """
    return (n + 2 * ((k - 1) // 2) - k) // stride + 1


@cached
def border_correction(n: int, taps: Taps, stride: int, mode: str) -> tuple[tuple[int, ...], tuple[int, ...],
                                                                            tuple[tuple[float, ...], ...]]:
    """``exact - zero_padded`` of one axis, which is non-zero on border rows only: (rows, cols, block).

    ``zero_padded`` is the matrix a zero-padded depthwise conv applies, without the rows it does not
    produce (those past :func:`conv_length`).

    Example:
        >>> border_correction(56, (0.125, 0.375, 0.375, 0.125), 2, 'reflect')
        ((0, 27), (1, 54), ((0.125, 0.0), (0.0, 0.125)))
    """
    exact = axis_entries(n, taps, stride, mode)
    zero = axis_entries(n, taps, stride, "zeros")
    length = conv_length(n, len(taps), stride)
    delta = [[e - (z if i < length else 0.0) for e, z in zip(erow, zrow, strict=True)]
             for i, (erow, zrow) in enumerate(zip(exact, zero, strict=True))]
    rows = tuple(i for i, row in enumerate(delta) if any(row))
    cols = tuple(j for j in range(n) if any(row[j] for row in delta))
    return rows, cols, tuple(tuple(delta[i][j] for j in cols) for i in rows)


@dataclass(frozen=True)
class AxisPlan:
    """One axis, ready to run: ``exact = zero_padded + delta`` where ``delta`` is ``block`` at (rows, cols).

    ``zero_padded`` is what a depthwise conv with symmetric zero padding computes, in its first
    ``conv_len`` rows (the rest are zero).
    """

    exact: torch.Tensor
    zero_padded: torch.Tensor
    conv_len: int
    rows: torch.Tensor
    cols: torch.Tensor
    block: torch.Tensor
    has_border: bool


@cached
def axis_plan(n: int, taps: Taps, stride: int, mode: str, device: torch.device, dtype: torch.dtype) -> AxisPlan:
    """The :class:`AxisPlan` of one axis, on ``device`` in ``dtype`` (cached).

    Example:
        >>> plan = axis_plan(56, (0.125, 0.375, 0.375, 0.125), 2, 'reflect', torch.device('cpu'), torch.float32)
        >>> plan.conv_len, plan.rows.tolist(), plan.cols.tolist()
        (28, [0, 27], [1, 54])
    """
    length = conv_length(n, len(taps), stride)
    rows, cols, block = border_correction(n, taps, stride, mode)
    zero = axis_matrix(n, taps, stride, "zeros", device, dtype)
    zero = torch.cat([zero[:length], torch.zeros_like(zero[length:])])
    index = functools.partial(torch.tensor, dtype=torch.long, device=device)
    block_t = torch.tensor(block, dtype=torch.float64).reshape(len(rows), len(cols)).to(device=device, dtype=dtype)
    return AxisPlan(axis_matrix(n, taps, stride, mode, device, dtype), zero, length, index(rows), index(cols),
                    block_t, bool(rows))


@cached
def depthwise_weight(taps_h: Taps, taps_w: Taps, channels: int, device: torch.device,
                     dtype: torch.dtype) -> torch.Tensor:
    """The (channels, 1, kh, kw) depthwise weight ``outer(taps_h, taps_w)``.

    Example:
        >>> depthwise_weight((0.5, 0.5), (1.0,), 3, torch.device('cpu'), torch.float32).shape
        torch.Size([3, 1, 2, 1])
    """
    filt = torch.outer(torch.tensor(taps_h, dtype=torch.float64), torch.tensor(taps_w, dtype=torch.float64))
    return filt.to(device=device, dtype=dtype).expand(channels, 1, len(taps_h), len(taps_w)).contiguous()


@cached
def band_blocks(n: int, taps: Taps, stride: int, mode: str, width: int,
                adjoint: bool) -> tuple[tuple[int, int, int, int], ...]:
    """Split the axis matrix into dense blocks ``(r0, r1, c0, c1)`` holding all its non-zeros.

    Forward (``adjoint=False``): output rows in groups of ``width``, each with the input columns it reads.
    Adjoint: input columns in groups of ``2 * width``, each with the output rows that touch them. Matrix
    products over the blocks skip the zeros a banded matrix is mostly made of.

    Example:
        >>> band_blocks(8, (0.5, 0.5), 2, 'reflect', 2, False)
        ((0, 2, 0, 4), (2, 4, 4, 8))
    """
    rows = axis_entries(n, taps, stride, mode)
    n_out = len(rows)
    blocks = []
    if adjoint:
        for c0 in range(0, n, 2 * width):
            c1 = min(c0 + 2 * width, n)
            hit = [i for i in range(n_out) if any(rows[i][c0:c1])]
            blocks.append((min(hit), max(hit) + 1, c0, c1) if hit else (0, 0, c0, c1))
    else:
        for r0 in range(0, n_out, width):
            r1 = min(r0 + width, n_out)
            hit = [j for j in range(n) if any(rows[i][j] for i in range(r0, r1))]
            blocks.append((r0, r1, min(hit), max(hit) + 1))
    return tuple(blocks)
