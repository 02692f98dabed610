"""BlurPool on NCHW CPU tensors: a vertical depthwise conv on a channels-last view, then banded matrix products.

In NCHW memory the rows of an image are contiguous, so a depthwise conv over the (N*C, W, 1, H) view with
channels-last strides (image columns act as channels) runs the vertical pass vectorised, without a copy. The
horizontal pass is the exact axis matrix (padding folded in) applied as dense blocks along its band. Both run
a cache-sized chunk of images at a time, and so does the backward (the transposed construction).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .axis_plan import AxisPlan, Taps, axis_matrix, band_blocks, cached, depthwise_weight

CHUNK_ELEMENTS = 1 << 20  # intermediate elements per chunk: keeps it in cache and under malloc's mmap threshold
BLOCK = 16  # output columns per block of the horizontal matrix


def _columns_as_channels(t: torch.Tensor) -> torch.Tensor:
    """(B, H, W) contiguous -> (B, W, 1, H) with channels-last strides: the same memory, no copy."""
    return t.transpose(1, 2).unsqueeze(2)


def conv_input_grad(grad_out: torch.Tensor, like: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int],
                    padding: tuple[int, int], groups: int) -> torch.Tensor:
    """Gradient of ``conv2d(input, weight)`` w.r.t. an input shaped and laid out like ``like``.

    ``torch.nn.grad.conv2d_input`` passes a stride-0 stand-in for the input, which sends oneDNN to its slow
    NCHW path for channels-last data; ``like`` (an unread tensor) keeps the layout.

    Example:
        >>> w = torch.ones(3, 1, 2, 2)
        >>> conv_input_grad(torch.ones(1, 3, 2, 2), torch.empty(1, 3, 4, 4), w, (2, 2), (0, 0), 3).shape
        torch.Size([1, 3, 4, 4])
    """
    return torch.ops.aten.convolution_backward(grad_out, like, weight, None, list(stride), list(padding), [1, 1],
                                               False, [0, 0], groups, (True, False, False))[0]


@cached
def _blocks(n: int, taps: Taps, stride: int, mode: str, adjoint: bool, device: torch.device,
            dtype: torch.dtype) -> tuple[tuple[int, int, int, int, torch.Tensor], ...]:
    exact = axis_matrix(n, taps, stride, mode, device, dtype)
    return tuple((r0, r1, c0, c1, exact[r0:r1, c0:c1].contiguous())
                 for r0, r1, c0, c1 in band_blocks(n, taps, stride, mode, BLOCK, adjoint) if r1 > r0)


def _vertical(images: torch.Tensor, taps: Taps, stride: int) -> torch.Tensor:
    """Zero-padded vertical pass of (B, H, W): (B, conv_len, W)."""
    w = images.shape[-1]
    weight = depthwise_weight((1.0,), taps, w, images.device, images.dtype)
    rows = F.conv2d(_columns_as_channels(images), weight, stride=(1, stride), padding=(0, (len(taps) - 1) // 2),
                    groups=w)
    return rows.squeeze(2).transpose(1, 2)


def _vertical_adjoint(t: torch.Tensor, taps: Taps, stride: int, h: int) -> torch.Tensor:
    """Adjoint of :func:`_vertical`: (B, conv_len, W) -> (B, H, W)."""
    b, _, w = t.shape
    weight = depthwise_weight((1.0,), taps, w, t.device, t.dtype)
    like = _columns_as_channels(t.new_empty(b, h, w))
    grad = conv_input_grad(_columns_as_channels(t.contiguous()), like, weight, (1, stride),
                           (0, (len(taps) - 1) // 2), w)
    return grad.squeeze(2).transpose(1, 2)


def _banded(a: torch.Tensor, blocks: tuple, out: torch.Tensor, adjoint: bool) -> None:
    """``out = a @ M.T`` (forward) or ``a @ M`` (adjoint) for 2D ``a``, one dense block of M at a time."""
    for r0, r1, c0, c1, block in blocks:
        if adjoint:
            out[:, c0:c1] = a[:, r0:r1] @ block
        else:
            out[:, r0:r1] = a[:, c0:c1] @ block.t()


def _chunks(total: int, per_image: int) -> range:
    return range(0, total, max(1, CHUNK_ELEMENTS // max(1, per_image)))


def rows_then_columns(x: torch.Tensor, ph: AxisPlan, pw: AxisPlan, taps: Taps, stride: tuple[int, int],
                      mode: str) -> torch.Tensor:
    """Zero-padded vertical pass, then the exact horizontal matrix: (N, C, conv_len, W_out)."""
    n, c, h, w = x.shape
    images = x.reshape(n * c, h, w)
    w_out = pw.exact.shape[0]
    out = x.new_empty(n * c, ph.conv_len, w_out)
    blocks = _blocks(w, taps, stride[1], mode, False, x.device, x.dtype)
    step = _chunks(n * c, ph.conv_len * w).step
    for start in range(0, n * c, step):
        rows = _vertical(images[start: start + step], taps, stride[0])
        _banded(rows.reshape(-1, w), blocks, out[start: start + step].view(-1, w_out), adjoint=False)
    return out.view(n, c, ph.conv_len, w_out)


def rows_then_columns_adjoint(grad_out: torch.Tensor, ph: AxisPlan, taps: Taps, stride: tuple[int, int],
                              mode: str, shape: list[int]) -> torch.Tensor:
    """Adjoint of :func:`rows_then_columns` plus the border rows: (N, C, H_out, W_out) -> (N, C, H, W)."""
    n, c, h, w = shape
    g = grad_out.contiguous().view(n * c, -1, grad_out.shape[-1])
    grad = grad_out.new_empty(n * c, h, w)
    blocks = _blocks(w, taps, stride[1], mode, True, grad_out.device, grad_out.dtype)
    step = _chunks(n * c, g.shape[1] * w).step
    for start in range(0, n * c, step):
        part = g[start: start + step]
        t = part.new_empty(part.shape[0], part.shape[1], w)
        _banded(part.reshape(-1, part.shape[-1]), blocks, t.view(-1, w), adjoint=True)
        chunk = _vertical_adjoint(t[:, : ph.conv_len], taps, stride[0], h)
        if ph.has_border:
            rows = torch.tensordot(t.index_select(1, ph.rows), ph.block, dims=([1], [0])).transpose(1, 2)
            chunk.index_add_(1, ph.cols, rows)
        grad[start: start + step] = chunk
    return grad.view(n, c, h, w)
