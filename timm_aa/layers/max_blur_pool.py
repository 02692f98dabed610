"""MaxBlurPool: max-pool densely (stride 1), then BlurPool (Zhang's replacement for strided max-pooling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .blur_pool import _pair, blur_pool2d
from .filters import BlurFilterModule
from .padding import check_pad_mode


def max_blur_pool2d(
    x: torch.Tensor,
    filt: torch.Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Max-pool ``x`` at stride 1, then blur with ``filt`` and subsample by ``stride``.

    Example:
        >>> from timm_aa.layers import binomial_filter2d
        >>> max_blur_pool2d(torch.randn(1, 4, 112, 112), binomial_filter2d(4), [2, 2], [2, 2], [0, 0]).shape
        torch.Size([1, 4, 56, 56])
    """
    if pad_mode == "circular":  # pad the max-pool circularly too, keeping the map size
        pads = [padding[1], kernel_size[1] - 1 - padding[1], padding[0], kernel_size[0] - 1 - padding[0]]
        x = F.max_pool2d(F.pad(x, pads, mode="circular"), kernel_size, stride=1)
    else:
        x = F.max_pool2d(x, kernel_size, stride=1, padding=padding)
    return blur_pool2d(x, filt, stride, pad_mode)


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
        return max_blur_pool2d(x, self.filt, self.kernel_size, self.stride, self.padding, self.pad_mode)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, filt_size={self.filt_size}, pad_mode={self.pad_mode!r}"
        )
