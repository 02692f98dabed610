"""Fast BlurPool for separable filters: Zhang's numbers without his padded copy.

``pad, then depthwise conv`` (Zhang's, timm's and kornia's BlurPool) spends much of its time copying the
input into a padded buffer. Here the padding is never materialised. Per channel the op is ``Y = Mh X Mw^T``
with exact per-axis matrices (:mod:`.axis_plan`: taps, padding and subsampling folded together).

- CPU, float32/float64, with a C compiler: :mod:`.native`, one pass over the input (forward and backward).

Otherwise (CUDA, half precision, no compiler) ``M = zero_padded + delta``, ``delta`` non-zero on border rows:

- default (channels_last, CUDA): one depthwise conv with zero padding computes ``Mz_h X Mz_w^T``; two small
  corrections add ``delta_h X Mw^T`` and ``Mz_h X delta_w^T`` on the border rows and columns.
- NCHW on CPU: :mod:`.rows_first` (vertical conv on a channels-last view, banded matrix products).
- small maps: the two matrix products directly (:func:`matrix_blur_pool2d`).
- CPU inference with a padded copy under 32 MiB: pad-then-conv, which is as fast there.

The backward is the same construction transposed, ``G_X = Mh^T G_Y Mw``. Forward and backward are custom ops,
so ``torch.compile(fullgraph=True)`` keeps them whole. Every path gives the values of ``pad2d`` followed by a
strided depthwise convolution (tests check 1e-6 forward and the gradients).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import native
from .axis_plan import Taps, axis_matrix, axis_plan, depthwise_weight, interior
from .layout import memory_format_of
from .reference import reference_blur_pool2d
from .rows_first import conv_input_grad, rows_then_columns, rows_then_columns_adjoint


def along_rows(matrix: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Apply ``matrix`` (m, H) along dim 2 of ``t`` (N, C, H, W) as one matrix product: (N, C, m, W).

    Example:
        >>> along_rows(torch.ones(1, 3), torch.ones(2, 4, 3, 5)).shape
        torch.Size([2, 4, 1, 5])
    """
    return torch.tensordot(matrix, t, dims=([1], [2])).permute(1, 2, 0, 3)


def _grow(out: torch.Tensor, h_out: int, w_out: int) -> torch.Tensor:
    """Zero-extend ``out`` to (h_out, w_out): the added rows/columns are border ones, corrected afterwards."""
    dh, dw = h_out - out.shape[-2], w_out - out.shape[-1]
    return F.pad(out, [0, dw, 0, dh]) if dh or dw else out


def _forward(x: torch.Tensor, taps: Taps, stride: tuple[int, int], mode: str) -> torch.Tensor:
    """``Y = Mh X Mw^T`` per channel: the CPU kernel, else a fast zero-padded pass and border corrections."""
    if native.usable(x):
        return native.apply(x, taps, stride, mode)
    n, c, h, w = x.shape
    ph = axis_plan(h, taps, stride[0], mode, x.device, x.dtype)
    pw = axis_plan(w, taps, stride[1], mode, x.device, x.dtype)
    if _rows_first(x, stride):
        out = _grow(rows_then_columns(x, ph, pw, taps, stride, mode), ph.exact.shape[0], pw.exact.shape[0])
    else:
        weight = depthwise_weight(taps, taps, c, x.device, x.dtype)
        out = F.conv2d(x, weight, stride=stride, padding=(len(taps) - 1) // 2, groups=c)
        out = _grow(out, ph.exact.shape[0], pw.exact.shape[0])
        if pw.has_border:
            strip = x.index_select(3, pw.cols) @ pw.block.t()  # (N, C, H, |rows|)
            out.index_add_(3, pw.rows, along_rows(ph.zero_padded, strip))
    if ph.has_border:
        out.index_add_(2, ph.rows, along_rows(ph.block, x.index_select(2, ph.cols)) @ pw.exact.t())
    return out.contiguous(memory_format=memory_format_of(x))


def _backward(grad_out: torch.Tensor, shape: list[int], layout: torch.memory_format, rows_first: bool, taps: Taps,
              stride: tuple[int, int], mode: str) -> torch.Tensor:
    """The adjoint ``G_X = Mh^T G_Y Mw``, built the same way as :func:`_forward`."""
    n, c, h, w = shape
    if native.usable(grad_out):
        return native.apply(grad_out, taps, stride, mode, adjoint=True, size=(h, w)).contiguous(memory_format=layout)
    ph = axis_plan(h, taps, stride[0], mode, grad_out.device, grad_out.dtype)
    pw = axis_plan(w, taps, stride[1], mode, grad_out.device, grad_out.dtype)
    if rows_first:
        return rows_then_columns_adjoint(grad_out, ph, taps, stride, mode, shape)
    weight = depthwise_weight(taps, taps, c, grad_out.device, grad_out.dtype)
    grad_out = grad_out.contiguous(memory_format=layout)
    g = grad_out[:, :, : ph.conv_len, : pw.conv_len]
    like = torch.empty(shape, dtype=grad_out.dtype, device=grad_out.device, memory_format=layout)
    pad = (len(taps) - 1) // 2
    grad = conv_input_grad(g, like, weight, stride, (pad, pad), c)
    if ph.has_border:
        grad.index_add_(2, ph.cols, along_rows(ph.block.t(), grad_out.index_select(2, ph.rows) @ pw.exact))
    if pw.has_border:
        strip = along_rows(ph.zero_padded.t(), grad_out.index_select(3, pw.rows))  # (N, C, H, |rows|)
        grad.index_add_(3, pw.cols, strip @ pw.block)
    return grad.contiguous(memory_format=layout)


# Custom ops: torch.compile keeps them whole (fullgraph works) and runs the eager kernels above inside the graph.
@torch.library.custom_op("timm_aa::separable_blur_pool2d", mutates_args=())
def _blur_op(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    return _forward(x, tuple(taps), (stride[0], stride[1]), pad_mode)


@_blur_op.register_fake
def _blur_op_fake(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    n, c, h, w = x.shape
    size = (n, c, (h + stride[0] - 1) // stride[0], (w + stride[1] - 1) // stride[1])
    return torch.empty(size, dtype=x.dtype, device=x.device, memory_format=memory_format_of(x))


@torch.library.custom_op("timm_aa::separable_blur_pool2d_backward", mutates_args=())
def _blur_op_backward(grad_out: torch.Tensor, shape: list[int], channels_last: bool, rows_first: bool,
                      taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return _backward(grad_out, shape, layout, rows_first, tuple(taps), (stride[0], stride[1]), pad_mode)


@_blur_op_backward.register_fake
def _blur_op_backward_fake(grad_out: torch.Tensor, shape: list[int], channels_last: bool, rows_first: bool,
                           taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=grad_out.dtype, device=grad_out.device, memory_format=layout)


def _setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
    x, taps, stride, pad_mode = inputs
    channels_last = memory_format_of(x) == torch.channels_last
    ctx.args = (list(x.shape), channels_last, _rows_first(x, stride), taps, stride, pad_mode)


def _blur_op_grad(ctx, grad_out: torch.Tensor):
    return _blur_op_backward(grad_out, *ctx.args), None, None, None


def _setup_backward_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
    ctx.args = inputs[4:]


def _blur_op_backward_grad(ctx, grad_grad: torch.Tensor):
    # the backward is linear in grad_out, and its adjoint is the forward: double backward works too
    return _blur_op(grad_grad, *ctx.args), None, None, None, None, None, None


_blur_op.register_autograd(_blur_op_grad, setup_context=_setup_context)
_blur_op_backward.register_autograd(_blur_op_backward_grad, setup_context=_setup_backward_context)


def _rows_first(x: torch.Tensor, stride: tuple[int, int]) -> bool:
    """NCHW on CPU: vertical conv on a channels-last view, then one matrix product (see the module docstring)."""
    return x.device.type == "cpu" and x.is_contiguous() and stride[1] > 1


def separable_blur_pool2d(x: torch.Tensor, taps: Taps, stride: tuple[int, int] | list[int],
                          pad_mode: str = "reflect") -> torch.Tensor:
    """Blur ``x`` (N, C, H, W) with ``outer(taps, taps)`` and subsample by ``stride``, padding by ``pad_mode``.

    Same values as padding with :func:`~timm_aa.layers.pad2d` and a strided depthwise convolution,
    faster: see the module docstring. Returns channels_last output for channels_last input.

    Example:
        >>> separable_blur_pool2d(torch.randn(2, 8, 7, 5), (0.125, 0.375, 0.375, 0.125), (2, 2)).shape
        torch.Size([2, 8, 4, 3])
    """
    stride = (int(stride[0]), int(stride[1]))
    k = len(taps)
    if k == 1:
        return x[:, :, :: stride[0], :: stride[1]] * taps[0] ** 2
    if native.usable(x):  # CPU float32/float64: the kernel, through the custom op when autograd needs it
        grad = torch.is_grad_enabled() and x.requires_grad
        return _blur_op(x, list(taps), list(stride), pad_mode) if grad else native.apply(x, taps, stride, pad_mode)
    h, w = x.shape[-2:]
    top, bottom = interior(h, k, stride[0])
    left, right = interior(w, k, stride[1])
    channels_last = memory_format_of(x) == torch.channels_last
    if _reference_is_faster(x, k, channels_last):
        return reference_blur_pool2d(x, depthwise_weight(taps, taps, 1, x.device, x.dtype)[0, 0], list(stride),
                                     pad_mode)
    small = max(h, w) <= (SMALL_MAP_CHANNELS_LAST if channels_last else SMALL_MAP)
    if small or bottom <= top or right <= left:  # small maps (or no interior): the exact matrices do it all
        return matrix_blur_pool2d(x, taps, stride, pad_mode, channels_last)
    return _blur_op(x, list(taps), list(stride), pad_mode)


SMALL_MAP, SMALL_MAP_CHANNELS_LAST = 16, 32  # up to these sizes two matrix products beat the convolution
# CPU inference only: padded copies under glibc's mmap threshold (32 MiB) come from the reused heap and stay in
# cache, and pad-then-conv is then as fast as anything here (NCHW's reflect pad only while small: 20 MiB).
# Measured on the project's 2-core CPU (benchmarks/bench_blurpool.py); training always takes the fast path.
REFERENCE_BYTES, REFERENCE_BYTES_CHANNELS_LAST = 20 * 2**20, 32 * 2**20


def _reference_is_faster(x: torch.Tensor, k: int, channels_last: bool) -> bool:
    if x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad) or torch.compiler.is_compiling():
        return False
    n, c, h, w = x.shape
    padded = n * c * (h + k - 1) * (w + k - 1) * x.element_size()
    if channels_last:
        return padded < REFERENCE_BYTES_CHANNELS_LAST and max(h, w) > 14
    return padded < REFERENCE_BYTES


def matrix_blur_pool2d(x: torch.Tensor, taps: Taps, stride: tuple[int, int], pad_mode: str,
                       channels_last: bool = False) -> torch.Tensor:
    """``Mh @ x @ Mw^T`` per channel with the exact :func:`axis_matrix` of each axis (padding folded in).

    Example:
        >>> matrix_blur_pool2d(torch.randn(2, 8, 7, 5), (0.5, 0.5), (2, 2), 'reflect').shape
        torch.Size([2, 8, 4, 3])
    """
    n, c, h, w = x.shape
    mh = axis_matrix(h, taps, stride[0], pad_mode, x.device, x.dtype)
    mw = axis_matrix(w, taps, stride[1], pad_mode, x.device, x.dtype)
    if channels_last:  # (N, H, W, C) memory: rows of W*C, then W runs of C
        t = torch.matmul(mh, x.permute(0, 2, 3, 1).reshape(n, h, w * c))
        out = torch.matmul(mw, t.view(n * mh.shape[0], w, c))
        return out.view(n, mh.shape[0], mw.shape[0], c).permute(0, 3, 1, 2)
    t = (x.reshape(n * c * h, w) @ mw.t()).view(n * c, h, mw.shape[0])
    return torch.matmul(mh, t).view(n, c, mh.shape[0], mw.shape[0])
