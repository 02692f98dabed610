"""BlurConv2d: a strided convolution whose subsampling is done by a BlurPool.

It keeps the parameter names of ``nn.Conv2d`` (``weight``, ``bias``), so a converted model loads
the state dict of the model it came from with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

from .blur_pool import BlurPool2d
from .options import DEFAULT_FILT_SIZE, DEFAULT_PAD_MODE


class BlurConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose ``stride`` is done by a BlurPool (``blur``) before or after the stride-1 convolution.

    Takes ``nn.Conv2d``'s arguments with its defaults (``stride=1``: blur without subsampling); the blur's own
    settings are keyword-only: ``filt_size``, ``blur_pad_mode`` (how the blur pads; ``padding_mode`` stays the
    convolution's) and ``blur_first``. ``blur_first=True`` blurs and subsamples the input, then convolves (cheap;
    exact for 1x1 convolutions, whose result equals the other order); ``blur_first=False`` convolves densely,
    then blurs and subsamples the result (the paper's order).

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
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        filt_size: int = DEFAULT_FILT_SIZE,
        blur_pad_mode: str = DEFAULT_PAD_MODE,
        blur_first: bool = False,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=1, padding=padding, dilation=dilation,
            groups=groups, bias=bias, padding_mode=padding_mode, device=device, dtype=dtype,
        )
        self.blur_first = blur_first
        channels = in_channels if blur_first else out_channels
        self.blur = BlurPool2d(channels, filt_size=filt_size, stride=stride, pad_mode=blur_pad_mode, device=device,
                               dtype=dtype)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, filt_size: int = DEFAULT_FILT_SIZE, blur_pad_mode: str = DEFAULT_PAD_MODE,
                  blur_first: bool = False, pool: nn.Module | None = None) -> BlurConv2d:
        """Build from a strided ``nn.Conv2d``, sharing its parameters (no copy).

        ``pool`` replaces the BlurPool by another subsampler of the same stride (e.g. a polyphase pool).

        Example:
            >>> BlurConv2d.from_conv(nn.Conv2d(3, 8, 3, stride=2, padding=1)).blur.stride
            [2, 2]
        """
        if type(conv) is not nn.Conv2d:
            raise TypeError(f"BlurConv2d.from_conv takes a plain nn.Conv2d, got {type(conv).__name__}")
        new = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
            padding_mode=conv.padding_mode, device="meta", filt_size=filt_size, blur_pad_mode=blur_pad_mode,
            blur_first=blur_first,
        )
        new.weight = conv.weight
        new.bias = conv.bias
        channels = conv.in_channels if blur_first else conv.out_channels
        new.blur = pool if pool is not None else BlurPool2d(
            channels, filt_size=filt_size, stride=conv.stride, pad_mode=blur_pad_mode, device=conv.weight.device,
            dtype=conv.weight.dtype)
        new.train(conv.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur_first:
            return self._conv_forward(self.blur(x), self.weight, self.bias)
        return self.blur(self._conv_forward(x, self.weight, self.bias))
