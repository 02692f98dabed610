"""AliasFreeConv2d: a circular convolution whose stride is done by ideal (Fourier) downsampling.

It keeps the parameter names of ``nn.Conv2d`` (``weight``, ``bias``), so a converted model loads the state dict of
the model it came from; see :mod:`timm_aa.alias_free` for the model conversion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from torch import nn

from ..errors import TimmAAError
from .alias_free import AliasFreeDownsample2d
from .helpers import to_pair


def circular_pad2d(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """Pad ``x`` (..., H, W) circularly by ``(left, right, top, bottom)``, wrapping as often as needed (a 2x2 map
    padded by 3 repeats itself), i.e. read the map's periodic extension.

    Example:
        >>> circular_pad2d(torch.tensor([[1., 2.]]), (3, 3, 0, 0)).tolist()
        [[2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0]]
    """
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    if max(top, bottom) <= h and max(left, right) <= w:  # wraps at most once: torch's own circular padding
        return F.pad(x, pads, mode="circular") if any(pads) else x
    if top or bottom:
        x = x.index_select(-2, torch.arange(-top, h + bottom, device=x.device) % h)
    if left or right:
        x = x.index_select(-1, torch.arange(-left, w + right, device=x.device) % w)
    return x


@register_notrace_module  # wrap-around padding depends on the map's size: a leaf for timm's fx tracing
class AliasFreeConv2d(nn.Conv2d):
    """``nn.Conv2d`` made circular and alias-free: a stride-1 convolution over the map's periodic extension, then
    :class:`~timm_aa.layers.AliasFreeDownsample2d` for the ``stride``.

    The map keeps its size before subsampling: each axis pads ``padding`` before and ``(k - 1) * dilation - padding``
    after (a 3x3 with padding 1 pads (1, 1); ConvNeXt's 2x2 stride-2 downsampling, padding 0, pads (0, 1)), so the
    stride-1 result at every ``stride``-th pixel is what the strided convolution computed. Output size:
    ``ceil(H / stride)``. A 1x1 convolution without padding subsamples first (equal, and cheaper).

    Example:
        >>> conv = AliasFreeConv2d(3, 8, kernel_size=3, stride=2, padding=1)
        >>> conv(torch.randn(1, 3, 9, 9)).shape, conv.padding_mode, conv.stride
        (torch.Size([1, 8, 5, 5]), 'circular', (1, 1))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if isinstance(padding, str):
            raise TimmAAError(f"AliasFreeConv2d takes int paddings, got padding={padding!r}; give the pixels per side")
        super().__init__(in_channels, out_channels, kernel_size, stride=1, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, padding_mode="circular", device=device, dtype=dtype)
        pads = []
        for k, d, p in zip(self.kernel_size, self.dilation, self.padding, strict=True):
            after = (k - 1) * d - p
            if after < 0:
                raise TimmAAError(f"padding={self.padding} is larger than the kernel's reach {(k - 1) * d}: a circular "
                                  f"convolution needs padding <= (kernel_size - 1) * dilation")
            pads.append((p, after))
        (top, bottom), (left, right) = pads
        self.pads = (left, right, top, bottom)
        self.down_stride = to_pair(stride, "stride")
        self.down = AliasFreeDownsample2d(self.down_stride) if max(self.down_stride) > 1 else nn.Identity()
        self.downsample_first = self.kernel_size == (1, 1) and self.pads == (0, 0, 0, 0)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> AliasFreeConv2d:
        """Build from an ``nn.Conv2d`` (any stride and padding mode), sharing its parameters (no copy).

        Example:
            >>> conv = nn.Conv2d(96, 192, kernel_size=2, stride=2)
            >>> new = AliasFreeConv2d.from_conv(conv)
            >>> new.weight is conv.weight, new.pads, new.down_stride
            (True, (0, 1, 0, 1), [2, 2])
        """
        if not isinstance(conv, nn.Conv2d) or isinstance(conv, AliasFreeConv2d):
            raise TypeError(f"AliasFreeConv2d.from_conv takes an nn.Conv2d, got {type(conv).__name__}")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                  dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None, device="meta")
        new.weight = conv.weight
        new.bias = conv.bias
        new.train(conv.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample_first:
            return F.conv2d(self.down(x), self.weight, self.bias, 1, 0, self.dilation, self.groups)
        y = F.conv2d(circular_pad2d(x, self.pads), self.weight, self.bias, 1, 0, self.dilation, self.groups)
        return self.down(y)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}, down_stride={self.down_stride}"
