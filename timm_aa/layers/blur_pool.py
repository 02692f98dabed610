"""BlurPool: low-pass filter, then subsample (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019).

Padding is Zhang's: ``(k - 1) // 2`` before and ``k // 2`` after on each axis, so the output is
``ceil(H / stride) x ceil(W / stride)`` for every input size, even filter sizes included.
"""

from __future__ import annotations

import torch

from .filters import BlurFilterModule
from .padding import check_pad_mode
from .reference import reference_blur_pool2d
from .separable import separable_blur_pool2d


def _pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair[0], pair[1]


def blur_pool2d(
    x: torch.Tensor,
    filt: torch.Tensor | tuple[float, ...],
    stride: list[int],
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Blur ``x`` (N, C, H, W) with ``filt``, then subsample by ``stride``.

    ``filt`` is either 1D taps (a tensor or a tuple of floats), meaning the separable filter
    ``outer(taps, taps)`` (the fast path of
    :func:`~timm_aa.layers.separable.separable_blur_pool2d`), or any 2D (k, k) filter
    (:func:`reference_blur_pool2d`). Both give the same numbers for a separable filter.

    Example:
        >>> from timm_aa.layers import binomial_filter1d
        >>> blur_pool2d(torch.randn(2, 8, 7, 5), binomial_filter1d(4), [2, 2]).shape
        torch.Size([2, 8, 4, 3])
    """
    if isinstance(filt, tuple):
        return separable_blur_pool2d(x, filt, stride, pad_mode)
    if filt.dim() == 1:
        return separable_blur_pool2d(x, tuple(filt.tolist()), stride, pad_mode)
    return reference_blur_pool2d(x, filt, stride, pad_mode)


class BlurPool2d(BlurFilterModule):
    """Anti-aliased downsampling: binomial blur of size ``filt_size``, then subsample by ``stride``.

    ``stride=1`` blurs only; ``stride`` may differ per axis, e.g. ``(1, 2)``. Adds no parameters and
    keeps no persistent state (the filter buffer is not saved in ``state_dict``).

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
    ) -> None:
        super().__init__()
        self.channels = channels
        self.stride = list(_pair(stride, "stride"))
        self.pad_mode = check_pad_mode(pad_mode)
        self._register_filter(filt_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"BlurPool2d expects a 4D (N, C, H, W) input, got shape {list(x.shape)}")
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(f"BlurPool2d was built for {self.channels} channels, got {x.shape[1]}")
        if x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"BlurPool2d needs maps of at least 1x1, got shape {list(x.shape)}")
        if torch.jit.is_scripting():  # TorchScript cannot compile the fast path
            return reference_blur_pool2d(x, self.filt, self.stride, self.pad_mode)
        return self._fast(x)

    @torch.jit.unused
    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        return separable_blur_pool2d(x, self.taps, self.stride, self.pad_mode)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filt_size={self.filt_size}, stride={self.stride}, pad_mode={self.pad_mode!r}"
