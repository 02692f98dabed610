"""BlurPool and MaxBlurPool as ``torch.library`` custom ops around the fast backends, and the two entry points
the layers call (:func:`blur_pool`, :func:`max_blur_pool`), which pick the backend (see the package docstring).

The ops have fake (meta) implementations with the real output strides, and their own backward: the blur's is
the same op with the transposed tables (and the backward's backward is the forward again: the op is linear);
MaxBlurPool's recomputes the max. ``torch.compile`` keeps them whole and calls the eager kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import backend_for, exporting, reference
from .layout import empty_like_layout, memory_format_of
from .tables import Taps

CHUNK_ELEMENTS = 1 << 21  # CPU MaxBlurPool: samples per chunk so the dense max-pooled map stays in cache


def _kernels(x: torch.Tensor):
    """The module of the backend that runs ``x`` (the Triton module is imported on first use)."""
    if backend_for(x) == "triton":
        from . import triton_kernels

        return triton_kernels
    from . import native

    return native


@torch.library.custom_op("timm_aa::blur_pool2d", mutates_args=())
def _blur_op(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    return _kernels(x).blur(x, tuple(taps), (stride[0], stride[1]), pad_mode)


@_blur_op.register_fake
def _(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    return empty_like_layout(x, -(-x.shape[2] // stride[0]), -(-x.shape[3] // stride[1]))


@torch.library.custom_op("timm_aa::blur_pool2d_adjoint", mutates_args=())
def _adjoint_op(grad: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str,
                size: list[int]) -> torch.Tensor:
    return _kernels(grad).blur(grad, tuple(taps), (stride[0], stride[1]), pad_mode, adjoint=True,
                               size=(size[0], size[1]))


@_adjoint_op.register_fake
def _(grad: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str, size: list[int]) -> torch.Tensor:
    return empty_like_layout(grad, size[0], size[1])


def _blur_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    x, taps, stride, pad_mode = inputs
    ctx.args = (taps, stride, pad_mode, [x.shape[2], x.shape[3]])


def _blur_grad(ctx, grad: torch.Tensor):
    return _adjoint_op(grad.contiguous(memory_format=memory_format_of(grad)), *ctx.args), None, None, None


def _adjoint_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    ctx.args = inputs[1:4]


def _adjoint_grad(ctx, grad: torch.Tensor):
    return _blur_op(grad, *ctx.args), None, None, None, None  # the adjoint of the adjoint is the forward


_blur_op.register_autograd(_blur_grad, setup_context=_blur_setup)
_adjoint_op.register_autograd(_adjoint_grad, setup_context=_adjoint_setup)


@torch.library.custom_op("timm_aa::max_blur_pool2d", mutates_args=())
def _max_blur_op(x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float],
                 stride: list[int], pad_mode: str) -> torch.Tensor:
    from . import triton_kernels

    return triton_kernels.max_blur(x, (kernel_size[0], kernel_size[1]), (padding[0], padding[1]), tuple(taps),
                                   (stride[0], stride[1]), pad_mode)


@_max_blur_op.register_fake
def _(x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float], stride: list[int],
      pad_mode: str) -> torch.Tensor:
    circular = pad_mode == "circular"
    mh = reference.dense_size(x.shape[2], kernel_size[0], padding[0], circular)
    mw = reference.dense_size(x.shape[3], kernel_size[1], padding[1], circular)
    return empty_like_layout(x, -(-mh // stride[0]), -(-mw // stride[1]))


@torch.library.custom_op("timm_aa::max_blur_pool2d_backward", mutates_args=())
def _max_blur_backward_op(grad: torch.Tensor, x: torch.Tensor, kernel_size: list[int], padding: list[int],
                          taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    from . import triton_kernels

    return triton_kernels.max_blur_backward(grad, x, (kernel_size[0], kernel_size[1]), (padding[0], padding[1]),
                                            tuple(taps), (stride[0], stride[1]), pad_mode)


@_max_blur_backward_op.register_fake
def _(grad: torch.Tensor, x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float],
      stride: list[int], pad_mode: str) -> torch.Tensor:
    return empty_like_layout(x, x.shape[2], x.shape[3])


def _max_blur_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[0])
    ctx.args = inputs[1:]


def _max_blur_grad(ctx, grad: torch.Tensor):
    (x,) = ctx.saved_tensors
    return _max_blur_backward_op(grad, x, *ctx.args), None, None, None, None, None


def _max_blur_backward_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[1])
    ctx.args = inputs[2:]


def _max_blur_backward_grad(ctx, grad_grad: torch.Tensor):
    """The backward is linear in its gradient: its adjoint picks each window's maximum position, then blurs."""
    (x,) = ctx.saved_tensors
    kernel_size, padding, taps, stride, pad_mode = ctx.args
    if pad_mode == "circular":
        pads = reference.circular_pads(kernel_size, padding)
        x, grad_grad = reference.gather_pad2d(x, pads, "circular"), reference.gather_pad2d(grad_grad, pads, "circular")
        padding = [0, 0]
    dense, where = F.max_pool2d(x, kernel_size, 1, padding, return_indices=True)
    picked = grad_grad.flatten(2).gather(2, where.flatten(2)).view_as(dense)
    return _blur_op(picked, taps, stride, pad_mode), None, None, None, None, None, None


_max_blur_op.register_autograd(_max_blur_grad, setup_context=_max_blur_setup)
_max_blur_backward_op.register_autograd(_max_blur_backward_grad, setup_context=_max_blur_backward_setup)


def blur_pool(x: torch.Tensor, taps: Taps, stride: tuple[int, int], pad_mode: str = "reflect") -> torch.Tensor:
    """Blur ``x`` with ``outer(taps, taps)`` and subsample by ``stride`` on the backend that takes ``x``.

    Example:
        >>> blur_pool(torch.randn(2, 8, 7, 5), (0.125, 0.375, 0.375, 0.125), (2, 2), 'reflect').shape
        torch.Size([2, 8, 4, 3])
    """
    if len(taps) == 1:  # no blur: subsample (into the input's layout)
        out = reference.blur_pool(x, list(taps), list(stride), pad_mode)
        return out if exporting() else out.contiguous(memory_format=memory_format_of(x))
    if backend_for(x) == "reference":
        return reference.blur_pool(x, list(taps), list(stride), pad_mode)
    return _blur_op(x, list(taps), list(stride), pad_mode)


def max_blur_pool(x: torch.Tensor, kernel_size: tuple[int, int], padding: tuple[int, int], taps: Taps,
                  stride: tuple[int, int], pad_mode: str) -> torch.Tensor:
    """Max-pool ``x`` at stride 1, then :func:`blur_pool`: fused on the GPU, chunked in cache on the CPU.

    Example:
        >>> max_blur_pool(torch.randn(1, 4, 9, 9), (2, 2), (0, 0), (0.5, 0.5), (2, 2), 'reflect').shape
        torch.Size([1, 4, 4, 4])
    """
    backend = backend_for(x)
    k, p = list(kernel_size), list(padding)
    if backend == "triton":
        return _max_blur_op(x, k, p, list(taps), list(stride), pad_mode)
    circular = pad_mode == "circular"
    if backend == "reference" or torch.compiler.is_compiling():  # the compiler writes a fast max-pool itself
        return blur_pool(reference.dense_max_pool(x, k, p, circular), taps, stride, pad_mode)
    from .shifted_max import shifted_max_pool

    step = max(1, CHUNK_ELEMENTS // max(1, x[0].numel()))
    layout = memory_format_of(x)
    parts = [blur_pool(shifted_max_pool(part, k, p, circular).contiguous(memory_format=layout), taps, stride, pad_mode)
             for part in torch.split(x, step)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)
