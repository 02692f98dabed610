"""MaxBlurPool: max-pool densely (stride 1), then BlurPool (Zhang's replacement for strided max-pooling)."""

from __future__ import annotations

import torch
import torch.fx

from .._deprecation import warn_deprecated
from ..errors import TimmAAError
from ._backends import ops, reference
from .filters import BlurFilterModule, binomial_taps, check_filt_size
from .helpers import check_input, check_pad_mode, to_pair


def _check_padding(padding: int | tuple[int, int], kernel_size: tuple[int, int]) -> tuple[int, int]:
    pad = to_pair(padding, "padding", minimum=0)
    if any(2 * p > k for p, k in zip(pad, kernel_size, strict=True)):
        raise TimmAAError(f"padding must be at most half of kernel_size {kernel_size}, got {padding!r}")
    return pad


def _check_window(x: torch.Tensor, kernel: tuple[int, int], padding: tuple[int, int], pad_mode: str,
                  layer: str) -> None:
    """The max-pool window must fit the (padded) map, as ``nn.MaxPool2d`` requires; circular padding wraps."""
    if pad_mode == "circular":
        return
    h, w = x.shape[2], x.shape[3]
    if h + 2 * padding[0] < kernel[0] or w + 2 * padding[1] < kernel[1]:
        raise TimmAAError(f"{layer}: a {kernel[0]}x{kernel[1]} max-pool window (padding {padding[0]}, {padding[1]}) "
                          f"does not fit a {h}x{w} map; feed larger inputs (or pad_mode='circular')")


def max_blur_pool2d(
    input: torch.Tensor,
    kernel_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    filt_size: int = 4,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Max-pool ``input`` with ``kernel_size`` and ``padding`` at stride 1, then blur (``filt_size``) and subsample
    by ``stride`` (default: ``kernel_size``, as ``nn.MaxPool2d``). The functional twin of :class:`MaxBlurPool2d`.

    Example:
        >>> max_blur_pool2d(torch.randn(1, 4, 112, 112)).shape
        torch.Size([1, 4, 56, 56])
        >>> max_blur_pool2d(torch.randn(1, 4, 112, 112), 3, 2, 1).shape   # like nn.MaxPool2d(3, 2, 1)
        torch.Size([1, 4, 56, 56])
    """
    if isinstance(kernel_size, (torch.Tensor, float)) or (
            isinstance(kernel_size, (tuple, list)) and any(isinstance(v, float) for v in kernel_size)):
        return _legacy_max_blur_pool2d(input, kernel_size, stride, padding, filt_size, pad_mode)
    check_input(input, "max_blur_pool2d")
    kernel = to_pair(kernel_size, "kernel_size")
    pad, mode = _check_padding(padding, kernel), check_pad_mode(pad_mode)
    _check_window(input, kernel, pad, mode, "max_blur_pool2d")
    return ops.max_blur_pool(input, kernel, pad, binomial_taps(check_filt_size(filt_size)),
                             to_pair(kernel if stride is None else stride, "stride"), mode)


def _legacy_max_blur_pool2d(x: torch.Tensor, filt, kernel_size, stride, padding, pad_mode: str) -> torch.Tensor:
    """The 0.1 signature ``max_blur_pool2d(x, filt, kernel_size, stride, padding, pad_mode)``."""
    warn_deprecated("max_blur_pool2d(x, filt, kernel_size, stride, padding)",
                    "max_blur_pool2d(x, kernel_size, stride, padding, filt_size=K)", stacklevel=4)
    check_input(x, "max_blur_pool2d")
    kernel = to_pair(kernel_size, "kernel_size")
    pad = _check_padding(padding, kernel)
    dense = reference.dense_max_pool(x, list(kernel), list(pad), pad_mode == "circular")
    from .blur_pool import _legacy_blur_pool2d

    return _legacy_blur_pool2d(dense, filt, stride, pad_mode, warn=False)


def _max_blur_pool_module(x: torch.Tensor, kernel_size: tuple[int, int], padding: tuple[int, int],
                          taps: tuple[float, ...], stride: tuple[int, int], pad_mode: str) -> torch.Tensor:
    """What :class:`MaxBlurPool2d` runs: one call, a leaf in fx graphs (``torch.fx.wrap``), checks included."""
    check_input(x, "MaxBlurPool2d")
    _check_window(x, kernel_size, padding, pad_mode, "MaxBlurPool2d")
    return ops.max_blur_pool(x, kernel_size, padding, taps, stride, pad_mode)


torch.fx.wrap("_max_blur_pool_module")


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
        filt_size: int = 4,
        pad_mode: str = "reflect",
        *,
        channels: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = list(to_pair(kernel_size, "kernel_size"))
        self.stride = list(to_pair(self.kernel_size if stride is None else stride, "stride"))
        self.padding = list(_check_padding(padding, (self.kernel_size[0], self.kernel_size[1])))
        self.pad_mode = check_pad_mode(pad_mode)
        self._register_filter(filt_size, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript compiles the reference
            dense = reference.dense_max_pool(x, self.kernel_size, self.padding, self.pad_mode == "circular")
            return reference.conv_blur_pool(dense, self.filt, self.stride, self.pad_mode)
        return self._run(x)

    @torch.jit.unused
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return _max_blur_pool_module(x, (self.kernel_size[0], self.kernel_size[1]), (self.padding[0], self.padding[1]),
                                     self.taps, (self.stride[0], self.stride[1]), self.pad_mode)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"filt_size={self.filt_size}, pad_mode={self.pad_mode!r}"
        )
