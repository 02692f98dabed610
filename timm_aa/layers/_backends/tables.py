"""One axis of a blur pool as a gather table: padding, taps and subsampling folded together.

Along one axis of length ``n`` a blur pool is a (ceil(n / stride), n) matrix. Each output position reads a few
input positions (the filter's taps, with padding resolved to the input positions it copies); the transposed
matrix (the backward pass) is read the same way. :func:`gather_table` lists, for each output position, those
input indices and their weights: the CPU kernel and the Triton kernels both take these tables, so reflect,
replicate, circular and zero padding, odd and tiny sizes and any stride are one code path.
"""

from __future__ import annotations

import functools
import math

import torch

from .reference import pad_index

Taps = tuple[float, ...]


@functools.lru_cache(maxsize=512)  # called by the kernels inside the ops: never traced by torch.compile
def axis_entries(n: int, taps: Taps, stride: int, mode: str) -> tuple[tuple[float, ...], ...]:
    """Rows of the axis matrix as tuples of floats: Zhang's padding, ``(k - 1) // 2`` before, ``k // 2`` after.

    Example:
        >>> axis_entries(4, (0.5, 0.5), 2, 'reflect')
        ((0.5, 0.5, 0.0, 0.0), (0.0, 0.0, 0.5, 0.5))
    """
    before, after = (len(taps) - 1) // 2, len(taps) // 2
    # what each padded position reads (the reference's own padding rule; zero padding reads nothing)
    source = pad_index(n, before, after, mode, torch.device("cpu")).tolist() if mode != "zeros" else \
        [p if 0 <= p < n else None for p in range(-before, n + after)]
    rows = []
    for i in range(math.ceil(n / stride)):
        row = [0.0] * n
        for j, tap in enumerate(taps):
            if source[stride * i + j] is not None:
                row[source[stride * i + j]] += tap
        rows.append(tuple(row))
    return tuple(rows)


@functools.lru_cache(maxsize=512)
def gather_table(n: int, taps: Taps, stride: int, mode: str, adjoint: bool, dtype: torch.dtype,
                 device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (m, rows) int32 and weights (m, rows) of each row's non-zeros in an axis matrix (or its transpose).

    Rows with fewer than ``m`` non-zeros are filled with weight 0 (at their first index, or 0 for an empty row);
    kernels skip zero weights, so a NaN there does not leak into the row.

    Example:
        >>> idx, w = gather_table(4, (0.5, 0.5), 2, 'reflect', False, torch.float64)
        >>> idx.tolist(), w.tolist()
        ([[0, 2], [1, 3]], [[0.5, 0.5], [0.5, 0.5]])
    """
    rows = axis_entries(n, taps, stride, mode)
    if adjoint:
        rows = tuple(zip(*rows, strict=True))
    entries = [[(j, v) for j, v in enumerate(row) if v != 0.0] or [(0, 0.0)] for row in rows]
    m = max(len(e) for e in entries)
    idx = [[e[a][0] if a < len(e) else e[0][0] for e in entries] for a in range(m)]
    weight = [[e[a][1] if a < len(e) else 0.0 for e in entries] for a in range(m)]
    return (torch.tensor(idx, dtype=torch.int32, device=device),
            torch.tensor(weight, dtype=torch.float64).to(device=device, dtype=dtype))
