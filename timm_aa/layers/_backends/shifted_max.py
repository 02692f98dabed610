"""The stride-1 max-pool of MaxBlurPool on the CPU: running maxima of shifted views.

PyTorch's CPU ``max_pool2d`` at stride 1 is slow (32x64x112x112, 2x2: 314 ms NCHW, 124 ms channels_last on this
project's 2-core machine, against 87 and 97 ms here; ``benchmarks/bench_blurpool.py`` has the MaxBlurPool rows).
Same values as ``F.max_pool2d``, and the same gradient: each window's first maximum in row-major order takes
it. The CUDA path does not need it (the Triton kernel fuses the max into the blur).
"""

from __future__ import annotations

import torch

from .reference import circular_pads, gather_pad2d


class _AxisMax(torch.autograd.Function):
    """Running maximum over ``k`` neighbours along one dim (stride 1); the gradient goes to the first maximum."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, k: int) -> torch.Tensor:
        length = x.shape[dim] - k + 1
        out = x.narrow(dim, 0, length)
        for offset in range(1, k):
            out = torch.maximum(out, x.narrow(dim, offset, length))
        ctx.save_for_backward(x, out)
        ctx.dim, ctx.k = dim, k
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, out = ctx.saved_tensors
        dim, k, length = ctx.dim, ctx.k, out.shape[ctx.dim]
        grad = torch.zeros_like(x)
        rest = grad_out
        # multiplying by the mask is twice as fast as selecting, but 0 * NaN is NaN: select when a gradient is not
        # finite (a finite sum says all are: one cheap pass; an overflowing one only takes the slower, exact path)
        finite = bool(torch.isfinite(grad_out.sum()))
        for offset in range(k):
            if offset == k - 1:  # whatever is left belongs to the last candidate
                grad.narrow(dim, offset, length).add_(rest)
                break
            hit = x.narrow(dim, offset, length) == out
            if finite:
                grad.narrow(dim, offset, length).add_(rest * hit)
                rest = rest * hit.logical_not()
            else:
                grad.narrow(dim, offset, length).add_(torch.where(hit, rest, 0.0))
                rest = torch.where(hit, 0.0, rest)
        return grad, None, None


def shifted_max_pool(x: torch.Tensor, kernel_size: list[int], padding: list[int],
                     circular: bool = False) -> torch.Tensor:
    """``max_pool2d(x, kernel_size, stride=1, padding)`` as running maxima of shifted views (see the module).

    ``circular`` pads by wrapping instead of with -inf, keeping the map size.

    Example:
        >>> shifted_max_pool(torch.arange(9.).view(1, 1, 3, 3), [2, 2], [0, 0], False).flatten().tolist()
        [4.0, 5.0, 7.0, 8.0]
    """
    kh, kw = kernel_size[0], kernel_size[1]
    if circular:
        x = gather_pad2d(x, circular_pads(kernel_size, padding), "circular")
    elif padding[0] > 0 or padding[1] > 0:
        x = torch.nn.functional.pad(x, [padding[1], padding[1], padding[0], padding[0]], value=float("-inf"))
    # along W first, then H: ties resolve to the top row, then its leftmost column, as max_pool2d's do
    return _AxisMax.apply(_AxisMax.apply(x, 3, kw), 2, kh)
