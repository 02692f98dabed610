"""MaxBlurPool: max-pool densely (stride 1), then BlurPool (Zhang's replacement for strided max-pooling)."""

from __future__ import annotations

import torch

from ..errors import TimmAAError
from ._backends import ops
from .filters import BlurFilterModule, binomial_taps
from .helpers import check_pad_mode, to_pair
from .options import DEFAULT_FILT_SIZE, DEFAULT_PAD_MODE


def _check_padding(padding: int | tuple[int, int], kernel_size: list[int]) -> list[int]:
    pad = to_pair(padding, "padding", minimum=0)
    if any(2 * p > k for p, k in zip(pad, kernel_size, strict=True)):
        raise TimmAAError(f"padding must be at most half of kernel_size {tuple(kernel_size)}, got {padding!r}")
    return pad


def max_blur_pool2d(
    input: torch.Tensor,
    kernel_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    filt_size: int = DEFAULT_FILT_SIZE,
    pad_mode: str = DEFAULT_PAD_MODE,
) -> torch.Tensor:
    """Max-pool ``input`` with ``kernel_size`` and ``padding`` at stride 1, then blur (``filt_size``) and subsample
    by ``stride`` (default: ``kernel_size``, as ``nn.MaxPool2d``). The functional twin of :class:`MaxBlurPool2d`.

    Example:
        >>> max_blur_pool2d(torch.randn(1, 4, 112, 112), 3, 2, 1).shape   # like nn.MaxPool2d(3, 2, 1)
        torch.Size([1, 4, 56, 56])
        >>> max_blur_pool2d(torch.arange(16.).view(1, 1, 4, 4), filt_size=2)[0, 0]  # max of 2x2, blur of 2x2
        tensor([[ 7.5000,  8.5000],
                [11.5000, 12.5000]])
    """
    kernel = to_pair(kernel_size, "kernel_size")
    return ops.max_blur_pool(input, kernel, _check_padding(padding, kernel), list(binomial_taps(filt_size)),
                             to_pair(kernel if stride is None else stride, "stride"), check_pad_mode(pad_mode))


class MaxBlurPool2d(BlurFilterModule):
    """Anti-aliased max-pooling: ``MaxPool2d(kernel_size, stride=1, padding)``, then ``BlurPool2d(stride)``.

    Takes ``nn.MaxPool2d``'s first three arguments in its order (``stride`` defaults to ``kernel_size``), and
    gives the size ``nn.MaxPool2d(kernel_size, stride, padding)`` gives, except with ``pad_mode='circular'``:
    the max-pool then pads circularly and keeps the map size (``ceil(H / stride)`` out). Zhang's ResNet stem is
    ``MaxBlurPool2d(2, 2)``. On CUDA one Triton kernel does max, blur and subsampling (no dense max map).

    Example:
        >>> pool = MaxBlurPool2d(kernel_size=2, stride=2)
        >>> pool(torch.randn(1, 64, 112, 112)).shape
        torch.Size([1, 64, 56, 56])
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        filt_size: int = DEFAULT_FILT_SIZE,
        pad_mode: str = DEFAULT_PAD_MODE,
        *,
        channels: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.stride = to_pair(self.kernel_size if stride is None else stride, "stride")
        self.padding = _check_padding(padding, self.kernel_size)
        self.pad_mode = check_pad_mode(pad_mode)
        self._register_filter(filt_size, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.max_blur_pool(x, self.kernel_size, self.padding, self.taps, self.stride, self.pad_mode,
                                 layer="MaxBlurPool2d", channels=self.channels)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"filt_size={self.filt_size}, pad_mode={self.pad_mode!r}"
        )
