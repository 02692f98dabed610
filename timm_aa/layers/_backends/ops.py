"""The two calls every BlurPool and MaxBlurPool makes (:func:`blur_pool`, :func:`max_blur_pool`), and the
``torch.library`` custom ops that run the fast backends.

Each call checks its input, asks :func:`~timm_aa.layers._backends.choose` once, and passes the backend it named
down to the op, which runs that backend's kernel. Both calls are leaves of fx graphs (``torch.fx.wrap``) that
TorchScript compiles too (scripted, they run the reference), so ``torch.jit.script(torch.fx.symbolic_trace(m))``
works as it does for timm's models (TorchScript takes no keyword-only arguments: theirs are positional).

The ops have fake (meta) implementations with the real output strides and their own backward (the blur's is the
blur's adjoint; MaxBlurPool's recomputes the max); ``torch.compile`` keeps them whole and calls the eager kernels.
"""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F

from ...errors import TimmAAError
from ..helpers import check_input
from . import native, reference
from .choice import choose
from .layout import empty_like_layout, memory_format_of

CHUNK_ELEMENTS = 1 << 21  # CPU MaxBlurPool: samples per chunk so the dense max-pooled map stays in cache


def _kernels(backend: str):
    """The module of a fast backend (the Triton module is imported on first use)."""
    if backend == "triton":
        from . import triton_kernels

        return triton_kernels
    return native


@torch.library.custom_op("timm_aa::blur_pool2d", mutates_args=())
def _blur_op(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str, backend: str,
             size: list[int]) -> torch.Tensor:
    """The blur pool of ``x``, or with ``size = [H, W]`` its adjoint (transpose) onto an H x W map."""
    adjoint_size = (size[0], size[1]) if size else None
    return _kernels(backend).blur(x, tuple(taps), (stride[0], stride[1]), pad_mode, adjoint_size)


@_blur_op.register_fake
def _(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str, backend: str,
      size: list[int]) -> torch.Tensor:
    return empty_like_layout(x, *(size or (-(-x.shape[2] // stride[0]), -(-x.shape[3] // stride[1]))))


def _blur_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    x, taps, stride, pad_mode, backend, size = inputs
    # the blur is linear: the backward of the forward is the adjoint onto x's size, the adjoint's is the forward
    ctx.args = (taps, stride, pad_mode, backend, [] if size else [x.shape[2], x.shape[3]])


def _blur_grad(ctx, grad: torch.Tensor):
    return _blur_op(grad.contiguous(memory_format=memory_format_of(grad)), *ctx.args), None, None, None, None, None


_blur_op.register_autograd(_blur_grad, setup_context=_blur_setup)


@torch.library.custom_op("timm_aa::max_blur_pool2d", mutates_args=())
def _max_blur_op(x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float],
                 stride: list[int], pad_mode: str) -> torch.Tensor:
    from . import triton_kernels

    return triton_kernels.max_blur(x, (kernel_size[0], kernel_size[1]), (padding[0], padding[1]), tuple(taps),
                                   (stride[0], stride[1]), pad_mode)


def _max_blur_size(x: torch.Tensor, kernel_size: list[int], padding: list[int], stride: list[int],
                   pad_mode: str) -> tuple[int, int]:
    mh, mw = reference.dense_size(x, kernel_size, padding, pad_mode == "circular")
    return -(-mh // stride[0]), -(-mw // stride[1])


@_max_blur_op.register_fake
def _(x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float], stride: list[int],
      pad_mode: str) -> torch.Tensor:
    return empty_like_layout(x, *_max_blur_size(x, kernel_size, padding, stride, pad_mode))


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
    return _blur_op(picked, taps, stride, pad_mode, "triton", []), None, None, None, None, None, None


_max_blur_op.register_autograd(_max_blur_grad, setup_context=_max_blur_setup)
_max_blur_backward_op.register_autograd(_max_blur_backward_grad, setup_context=_max_blur_backward_setup)


def blur_pool(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str, layer: str = "blur_pool2d",
              channels: int | None = None) -> torch.Tensor:
    """Blur ``x`` with ``outer(taps, taps)`` and subsample by ``stride``, on the backend :func:`choose` names.

    ``layer`` names the caller in error messages; ``channels``, when given, is the channel count ``x`` must have.

    Example:
        >>> blur_pool(torch.ones(2, 8, 7, 5), [0.25, 0.5, 0.25], [2, 2], 'zeros')[0, 0]
        tensor([[0.5625, 0.7500, 0.5625],
                [0.7500, 1.0000, 0.7500],
                [0.7500, 1.0000, 0.7500],
                [0.5625, 0.7500, 0.5625]])
    """
    if torch.jit.is_scripting():  # TorchScript compiles the reference (pad by gathering, then conv)
        return reference.blur_pool(x, taps, stride, pad_mode)
    return _eager_blur_pool(x, taps, stride, pad_mode, layer, channels)


@torch.jit.unused
def _eager_blur_pool(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str, layer: str,
                     channels: int | None) -> torch.Tensor:
    check_input(x, layer, channels)
    if x.numel() == 0:  # a batch of 0 or 0 channels: the shape is all there is (kept in the autograd graph)
        return empty_like_layout(x, -(-x.shape[2] // stride[0]), -(-x.shape[3] // stride[1])) + x.sum()
    return _blur(x, taps, stride, pad_mode, choose(x))


def _blur(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str, backend: str) -> torch.Tensor:
    if backend == "reference" or len(taps) == 1:  # one tap: no blur, a subsampling (in the input's layout)
        return reference.blur_pool(x, taps, stride, pad_mode)
    return _blur_op(x, taps, stride, pad_mode, backend, [])


def max_blur_pool(x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float],
                  stride: list[int], pad_mode: str, layer: str = "max_blur_pool2d",
                  channels: int | None = None) -> torch.Tensor:
    """Max-pool ``x`` at stride 1, then :func:`blur_pool`: fused on the GPU, chunked in cache on the CPU.

    Example:
        >>> max_blur_pool(torch.arange(16.).view(1, 1, 4, 4), [2, 2], [0, 0], [0.5, 0.5], [2, 2], 'reflect')
        tensor([[[[ 7.5000,  8.5000],
                  [11.5000, 12.5000]]]])
    """
    if torch.jit.is_scripting():
        return reference.max_blur_pool(x, kernel_size, padding, taps, stride, pad_mode)
    return _eager_max_blur_pool(x, kernel_size, padding, taps, stride, pad_mode, layer, channels)


@torch.jit.unused
def _eager_max_blur_pool(x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float],
                         stride: list[int], pad_mode: str, layer: str, channels: int | None) -> torch.Tensor:
    check_input(x, layer, channels)
    h, w = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if pad_mode != "circular" and (h < kernel_size[0] or w < kernel_size[1]):  # as nn.MaxPool2d requires
        raise TimmAAError(f"{layer}: a {kernel_size[0]}x{kernel_size[1]} max-pool window (padding {padding[0]}, "
                          f"{padding[1]}) does not fit a {x.shape[2]}x{x.shape[3]} map; feed larger inputs "
                          "(or pad_mode='circular')")
    if x.numel() == 0:
        return empty_like_layout(x, *_max_blur_size(x, kernel_size, padding, stride, pad_mode)) + x.sum()
    backend = choose(x)
    if backend == "triton":
        return _max_blur_op(x, kernel_size, padding, taps, stride, pad_mode)
    circular = pad_mode == "circular"
    if backend == "reference" or torch.compiler.is_compiling():  # compiled: the compiler writes a fast max-pool
        return _blur(reference.dense_max_pool(x, kernel_size, padding, circular), taps, stride, pad_mode, backend)
    from .shifted_max import shifted_max_pool

    step = max(1, CHUNK_ELEMENTS // max(1, x[0].numel()))
    layout = memory_format_of(x)
    parts = [_blur(shifted_max_pool(part, kernel_size, padding, circular).contiguous(memory_format=layout), taps,
                   stride, pad_mode, backend) for part in torch.split(x, step)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


torch.fx.wrap("blur_pool")
torch.fx.wrap("max_blur_pool")
