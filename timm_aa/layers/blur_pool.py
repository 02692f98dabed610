"""BlurPool: low-pass filter, then subsample (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019).

Padding is Zhang's: ``(k - 1) // 2`` before and ``k // 2`` after on each axis, so the output is
``ceil(H / stride) x ceil(W / stride)`` for every input size, even filter sizes included.
"""

from __future__ import annotations

import torch
import torch.fx

from .._deprecation import warn_deprecated
from ..errors import TimmAAError
from ._backends import ops, reference
from .filters import BlurFilterModule, binomial_taps, check_filt_size
from .helpers import check_input, check_pad_mode, to_pair


def blur_pool2d(
    input: torch.Tensor,
    filt_size: int = 4,
    stride: int | tuple[int, int] = 2,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Blur ``input`` (N, C, H, W) with the binomial filter of size ``filt_size``, then subsample by ``stride``.

    The functional twin of :class:`BlurPool2d` (same arguments, same defaults). Output:
    ``ceil(H / stride) x ceil(W / stride)``; channels_last in, channels_last out.

    Example:
        >>> blur_pool2d(torch.randn(2, 8, 7, 5)).shape
        torch.Size([2, 8, 4, 3])
        >>> blur_pool2d(torch.randn(1, 3, 6, 6), filt_size=3, stride=(1, 2), pad_mode='zeros').shape
        torch.Size([1, 3, 6, 3])
    """
    if isinstance(filt_size, (torch.Tensor, tuple, list)):
        return _legacy_blur_pool2d(input, filt_size, stride, pad_mode)
    check_input(input, "blur_pool2d")
    return ops.blur_pool(input, binomial_taps(check_filt_size(filt_size)), to_pair(stride, "stride"),
                         check_pad_mode(pad_mode))


def _legacy_blur_pool2d(x: torch.Tensor, filt, stride, pad_mode: str, warn: bool = True) -> torch.Tensor:
    """The 0.1 signature ``blur_pool2d(x, filt, stride, pad_mode)`` with 1D taps or a 2D filter."""
    if warn:
        warn_deprecated("blur_pool2d(x, filt, ...) with a filter tensor or taps",
                        "blur_pool2d(x, filt_size=K) (the binomial filter's size)", stacklevel=4)
    check_input(x, "blur_pool2d")
    stride, pad_mode = to_pair(stride, "stride"), check_pad_mode(pad_mode)
    if isinstance(filt, torch.Tensor) and filt.dim() == 2:
        return reference.conv_blur_pool(x, filt, list(stride), pad_mode)
    taps = tuple(float(t) for t in (filt.tolist() if isinstance(filt, torch.Tensor) else filt))
    return ops.blur_pool(x, taps, stride, pad_mode)


def _blur_pool_module(x: torch.Tensor, taps: tuple[float, ...], stride: tuple[int, int], pad_mode: str,
                      channels: int | None) -> torch.Tensor:
    """What :class:`BlurPool2d` runs: one call, a leaf in fx graphs (``torch.fx.wrap``), checks included."""
    check_input(x, "BlurPool2d")
    if channels is not None and x.shape[1] != channels:
        raise TimmAAError(f"BlurPool2d was built for {channels} channels, got {x.shape[1]}")
    return ops.blur_pool(x, taps, stride, pad_mode)


torch.fx.wrap("_blur_pool_module")


class BlurPool2d(BlurFilterModule):
    """Anti-aliased downsampling: binomial blur of size ``filt_size``, then subsample by ``stride``.

    A drop-in for ``timm.layers.BlurPool2d`` and Zhang's ``BlurPool`` with his exact numbers. Where it differs
    from timm's: the default filter is 4 (Zhang's pretrained default; timm: 3), even filters pad asymmetrically
    as Zhang's do (timm's pad symmetrically, so a 56x56 map comes out 29x29 for filters 2, 4, 6; here 28x28),
    reflect padding works on maps of any size (timm's fails on 1x1 maps), and ``stride`` may differ per axis.
    ``pad_mode``: 'reflect', 'replicate', 'zeros' (timm's 'constant' is accepted) or 'circular'. ``channels`` is
    optional and only checked. No parameters; the filter buffer ``filt`` is not saved in ``state_dict``.
    Runs on the fastest backend for the input (Triton on CUDA, a C kernel on CPU; see ``timm_aa.layers``).

    Example:
        >>> pool = BlurPool2d(64, filt_size=4, stride=2)
        >>> pool(torch.randn(1, 64, 56, 56)).shape
        torch.Size([1, 64, 28, 28])
    """

    def __init__(
        self,
        channels: int | None = None,
        filt_size: int = 4,
        stride: int | tuple[int, int] = 2,
        pad_mode: str = "reflect",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.stride = list(to_pair(stride, "stride"))
        self.pad_mode = check_pad_mode(pad_mode)
        self._register_filter(filt_size, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript compiles the reference (pad by gathering, then conv)
            return reference.conv_blur_pool(x, self.filt, self.stride, self.pad_mode)
        return self._run(x)

    @torch.jit.unused
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return _blur_pool_module(x, self.taps, (self.stride[0], self.stride[1]), self.pad_mode, self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filt_size={self.filt_size}, stride={self.stride}, pad_mode={self.pad_mode!r}"
