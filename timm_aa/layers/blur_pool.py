"""BlurPool: low-pass filter, then subsample (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019).

Padding is Zhang's: ``(k - 1) // 2`` before and ``k // 2`` after on each axis, so the output is
``ceil(H / stride) x ceil(W / stride)`` for every input size, even filter sizes included.
"""

from __future__ import annotations

import torch

from ._backends import ops
from .filters import BlurFilterModule, binomial_taps
from .helpers import check_pad_mode, to_pair
from .options import DEFAULT_FILT_SIZE, DEFAULT_PAD_MODE


def blur_pool2d(
    input: torch.Tensor,
    filt_size: int = DEFAULT_FILT_SIZE,
    stride: int | tuple[int, int] = 2,
    pad_mode: str = DEFAULT_PAD_MODE,
) -> torch.Tensor:
    """Blur ``input`` (N, C, H, W) with the binomial filter of size ``filt_size``, then subsample by ``stride``.

    The functional twin of :class:`BlurPool2d` (same arguments, same defaults). Output:
    ``ceil(H / stride) x ceil(W / stride)``; channels_last in, channels_last out.

    Example:
        >>> blur_pool2d(torch.randn(2, 8, 7, 5)).shape
        torch.Size([2, 8, 4, 3])
        >>> blur_pool2d(torch.ones(1, 1, 4, 4), filt_size=3, stride=(1, 2), pad_mode='zeros')[0, 0]
        tensor([[0.5625, 0.7500],
                [0.7500, 1.0000],
                [0.7500, 1.0000],
                [0.5625, 0.7500]])
    """
    return ops.blur_pool(input, list(binomial_taps(filt_size)), to_pair(stride, "stride"), check_pad_mode(pad_mode))


class BlurPool2d(BlurFilterModule):
    """Anti-aliased downsampling: binomial blur of size ``filt_size``, then subsample by ``stride``.

    A drop-in for ``timm.layers.BlurPool2d`` and Zhang's ``BlurPool`` with his exact numbers. Where it differs
    from timm's: the default filter is 4 (Zhang's pretrained default; timm: 3), even filters pad asymmetrically
    as Zhang's do (timm's pad symmetrically, so a 56x56 map comes out 29x29 for filters 2, 4, 6; here 28x28),
    reflect padding works on maps of any size (timm's fails on 1x1 maps), and ``stride`` may differ per axis.
    ``pad_mode``: 'reflect', 'replicate', 'zeros' (timm's 'constant' is accepted) or 'circular'. ``channels`` is
    optional and only checked. No parameters; the filter buffer ``filt`` is not saved in ``state_dict``.

    Example:
        >>> pool = BlurPool2d(64, filt_size=4, stride=2)
        >>> pool(torch.randn(1, 64, 56, 56)).shape
        torch.Size([1, 64, 28, 28])
    """

    def __init__(
        self,
        channels: int | None = None,
        filt_size: int = DEFAULT_FILT_SIZE,
        stride: int | tuple[int, int] = 2,
        pad_mode: str = DEFAULT_PAD_MODE,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.stride = to_pair(stride, "stride")
        self.pad_mode = check_pad_mode(pad_mode)
        self._register_filter(filt_size, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.blur_pool(x, self.taps, self.stride, self.pad_mode, layer="BlurPool2d", channels=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filt_size={self.filt_size}, stride={self.stride}, pad_mode={self.pad_mode!r}"
