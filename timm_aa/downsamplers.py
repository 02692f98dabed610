"""What ``antialias()`` puts where a network subsamples: a BlurPool (``method='blur'``), or a polyphase
pool (``'aps'``, ``'lps'``), optionally after a stride-1 blur."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .layers import BlurPool2d, MaxBlurPool2d, check_filt_size, check_pad_mode
from .layers.polyphase import APSPool2d, LPSPool2d, _PolyphasePool

METHODS = ("blur", "aps", "lps")


def _square_stride(stride) -> int:
    pair = (stride, stride) if isinstance(stride, int) else tuple(stride)
    if pair[0] != pair[1]:
        raise ValueError(f"polyphase sampling needs the same stride on both axes, got {pair}")
    return int(pair[0])


@dataclass(frozen=True)
class Downsampling:
    """Method and settings of one conversion.

    Example:
        >>> Downsampling('aps', filt_size=1).make(64, 2)
        APSPool2d(stride=2, follows_other=False)
    """

    method: str = "blur"
    filt_size: int = 4
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        check_filt_size(self.filt_size)
        check_pad_mode(self.pad_mode)

    def make(self, channels: int | None, stride) -> nn.Module:
        """The module that subsamples by ``stride`` a map of ``channels`` channels."""
        if self.method == "blur":
            return BlurPool2d(channels, filt_size=self.filt_size, stride=stride, pad_mode=self.pad_mode)
        s = _square_stride(stride)
        if self.method == "aps":
            pool: nn.Module = APSPool2d(s)
        else:
            if channels is None:
                raise ValueError("LPS needs the channel count of every map it subsamples")
            pool = LPSPool2d(channels, s)
        if self.filt_size == 1:
            return pool
        return nn.Sequential(BlurPool2d(channels, filt_size=self.filt_size, stride=1, pad_mode=self.pad_mode), pool)

    def make_follower(self, stride) -> nn.Module:
        """A subsampler for a shortcut; polyphase ones are linked to their main branch by :func:`link`."""
        if self.method == "blur":
            return self.make(None, stride)
        pool = APSPool2d(_square_stride(stride))
        if self.filt_size == 1:
            return pool
        return nn.Sequential(BlurPool2d(None, filt_size=self.filt_size, stride=1, pad_mode=self.pad_mode), pool)

    def make_max(self, channels: int | None, kernel_size, stride, padding) -> nn.Module:
        """Replacement of ``MaxPool2d(kernel_size, stride, padding)``: dense max-pool, then subsampling."""
        if self.method == "blur":
            return MaxBlurPool2d(None, kernel_size, stride, padding, filt_size=self.filt_size, pad_mode=self.pad_mode)
        dense = MaxBlurPool2d(None, kernel_size, 1, padding, filt_size=1, pad_mode=self.pad_mode)
        return nn.Sequential(dense, self.make(channels, stride))


def polyphase_of(module: nn.Module) -> _PolyphasePool | None:
    """The polyphase pool inside a downsampler, if any."""
    found = [m for m in module.modules() if isinstance(m, _PolyphasePool)]
    return found[-1] if found else None
