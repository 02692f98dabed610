"""MaxBlurPool: max-pool densely (stride 1), then BlurPool (Zhang's replacement for strided max-pooling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .blur_pool import _pair, blur_pool2d, reference_blur_pool2d
from .filters import BlurFilterModule
from .padding import check_pad_mode

CHUNK_ELEMENTS = 1 << 21  # per chunk of samples: the dense max-pooled map stays in cache


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
        for offset in range(k):
            if offset == k - 1:  # whatever is left belongs to the last candidate
                grad.narrow(dim, offset, length).add_(rest)
                break
            hit = x.narrow(dim, offset, length) == out
            grad.narrow(dim, offset, length).add_(rest * hit)
            rest = rest * hit.logical_not()
        return grad, None, None


def dense_max_pool2d(x: torch.Tensor, kernel_size: list[int], padding: list[int],
                     circular: bool = False) -> torch.Tensor:
    """``max_pool2d(x, kernel_size, stride=1, padding)`` as running maxima of shifted views.

    Same values as ``F.max_pool2d``, and the same gradient (each window's first maximum in row-major order
    takes it), many times faster on CPU, whose stride-1 max-pool kernel is slow. ``circular`` pads by
    wrapping instead of with -inf, keeping the map size.

    Example:
        >>> dense_max_pool2d(torch.arange(9.).view(1, 1, 3, 3), [2, 2], [0, 0]).flatten().tolist()
        [4.0, 5.0, 7.0, 8.0]
    """
    x = _pad_for_max(x, kernel_size, padding, circular)
    # along W first, then H: ties resolve to the top row, then its leftmost column, as max_pool2d's do
    return _AxisMax.apply(_AxisMax.apply(x, 3, kernel_size[1]), 2, kernel_size[0])


def _pad_for_max(x: torch.Tensor, kernel_size: list[int], padding: list[int], circular: bool) -> torch.Tensor:
    """Pad for a stride-1 max-pool: by wrapping (keeping the map size) if ``circular``, else with -inf."""
    if circular:
        kh, kw = kernel_size[0], kernel_size[1]
        return F.pad(x, [padding[1], kw - 1 - padding[1], padding[0], kh - 1 - padding[0]], mode="circular")
    if padding[0] > 0 or padding[1] > 0:
        return F.pad(x, [padding[1], padding[1], padding[0], padding[0]], value=float("-inf"))
    return x


def _max_pool_stride1(x: torch.Tensor, kernel_size: list[int], padding: list[int], circular: bool) -> torch.Tensor:
    return F.max_pool2d(_pad_for_max(x, kernel_size, padding, circular), kernel_size, 1)


def max_blur_pool2d(
    x: torch.Tensor,
    filt: torch.Tensor | tuple[float, ...],
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Max-pool ``x`` at stride 1, then blur with ``filt`` (as in :func:`blur_pool2d`) and subsample by ``stride``.

    Works a chunk of samples at a time, so the dense max-pooled map never leaves the cache.

    Example:
        >>> from timm_aa.layers import binomial_filter1d
        >>> max_blur_pool2d(torch.randn(1, 4, 112, 112), binomial_filter1d(4), [2, 2], [2, 2], [0, 0]).shape
        torch.Size([1, 4, 56, 56])
    """
    if torch.compiler.is_compiling():  # the compiler generates a fast max-pool (forward and backward) itself
        return blur_pool2d(_max_pool_stride1(x, kernel_size, padding, pad_mode == "circular"), filt, stride, pad_mode)
    step = max(1, CHUNK_ELEMENTS // max(1, x[0].numel()))
    chunks = [blur_pool2d(dense_max_pool2d(part, kernel_size, padding, pad_mode == "circular"), filt, stride, pad_mode)
              for part in torch.split(x, step)]
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


class MaxBlurPool2d(BlurFilterModule):
    """Anti-aliased max-pooling: ``MaxPool2d(kernel_size, stride=1, padding)`` then ``BlurPool2d(stride)``.

    Its output has the size of ``MaxPool2d(kernel_size, stride, padding)`` on the same input, except with
    ``pad_mode='circular'``: the max-pool then pads circularly to keep the map size (ceil(H / stride) out).

    Example:
        >>> pool = MaxBlurPool2d(64, kernel_size=2, stride=2)
        >>> pool(torch.randn(1, 64, 112, 112)).shape
        torch.Size([1, 64, 56, 56])
    """

    def __init__(
        self,
        channels: int | None = None,
        kernel_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] = 2,
        padding: int | tuple[int, int] = 0,
        filt_size: int = 4,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = list(_pair(kernel_size, "kernel_size"))
        self.stride = list(_pair(stride, "stride"))
        pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
        if len(pad) != 2 or any(p < 0 or 2 * p > k for p, k in zip(pad, self.kernel_size, strict=True)):
            raise ValueError(f"padding must be >= 0 and at most half of kernel_size, got {padding!r}")
        self.padding = [int(p) for p in pad]
        self.pad_mode = check_pad_mode(pad_mode)
        self._register_filter(filt_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript cannot compile the fast path
            x = _max_pool_stride1(x, self.kernel_size, self.padding, self.pad_mode == "circular")
            return reference_blur_pool2d(x, self.filt, self.stride, self.pad_mode)
        return self._fast(x)

    @torch.jit.unused
    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        return max_blur_pool2d(x, self.taps, self.kernel_size, self.stride, self.padding, self.pad_mode)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, filt_size={self.filt_size}, pad_mode={self.pad_mode!r}"
        )
