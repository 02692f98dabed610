"""BlurConv2d: a strided convolution whose subsampling is done by a BlurPool.

It keeps the parameter names of ``nn.Conv2d`` (``weight``, ``bias``), so a converted model loads
the state dict of the model it came from with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

from .blur_pool import BlurPool2d, _pair


class BlurConv2d(nn.Conv2d):
    """Convolution at stride 1 plus a BlurPool of the original stride, before or after it.

    ``blur_first=True`` blurs and subsamples the input, then convolves (cheap; exact for 1x1
    convolutions, whose result equals the ``blur_first=False`` order). ``blur_first=False``
    convolves densely, then blurs and subsamples the result (the paper's order).

    Example:
        >>> conv = BlurConv2d(64, 128, kernel_size=1, stride=2, bias=False, blur_first=True)
        >>> conv(torch.randn(1, 64, 56, 56)).shape
        torch.Size([1, 128, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 2,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        filt_size: int = 4,
        pad_mode: str = "reflect",
        blur_first: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=1, padding=padding, dilation=dilation,
            groups=groups, bias=bias, padding_mode=padding_mode, device=device, dtype=dtype,
        )
        self.blur_first = blur_first
        channels = in_channels if blur_first else out_channels
        self.blur = BlurPool2d(channels, filt_size=filt_size, stride=_pair(stride, "stride"), pad_mode=pad_mode)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, filt_size: int = 4, pad_mode: str = "reflect",
                  blur_first: bool = False, pool: nn.Module | None = None) -> BlurConv2d:
        """Build from a strided ``nn.Conv2d``, sharing its parameters (no copy).

        ``pool`` replaces the BlurPool by another subsampler of the same stride (e.g. a polyphase pool).

        Example:
            >>> BlurConv2d.from_conv(nn.Conv2d(3, 8, 3, stride=2, padding=1)).stride
            (1, 1)
        """
        if type(conv) is not nn.Conv2d:
            raise TypeError(f"BlurConv2d.from_conv takes a plain nn.Conv2d, got {type(conv).__name__}")
        new = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
            padding_mode=conv.padding_mode, filt_size=filt_size, pad_mode=pad_mode, blur_first=blur_first,
            device="meta",
        )
        new.weight = conv.weight
        new.bias = conv.bias
        if pool is not None:
            new.blur = pool
        new.blur.to(device=conv.weight.device)
        new.train(conv.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur_first:
            return self._conv_forward(self.blur(x), self.weight, self.bias)
        return self.blur(self._conv_forward(x, self.weight, self.bias))
