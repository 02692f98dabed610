"""Zhang's computation, kept as the reference: pad, then a strided depthwise convolution.

The fast paths (:mod:`.separable`) are tested against it; TorchScript and small CPU inference inputs use it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .padding import blur_pads, pad2d


def reference_blur_pool2d(
    x: torch.Tensor,
    filt: torch.Tensor,
    stride: list[int],
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Pad ``x`` by ``pad_mode``, then a strided depthwise convolution with the 2D ``filt`` (Zhang's computation).

    Example:
        >>> from timm_aa.layers import binomial_filter2d
        >>> reference_blur_pool2d(torch.randn(2, 8, 7, 5), binomial_filter2d(4), [2, 2]).shape
        torch.Size([2, 8, 4, 3])
    """
    k = filt.shape[-1]
    if k == 1:
        return x[:, :, :: stride[0], :: stride[1]] * filt.to(dtype=x.dtype).reshape(())
    channels = x.shape[1]
    weight = filt.to(dtype=x.dtype).view(1, 1, k, k).expand(channels, 1, k, k)
    return F.conv2d(pad2d(x, blur_pads(k), pad_mode), weight, stride=stride, groups=channels)
