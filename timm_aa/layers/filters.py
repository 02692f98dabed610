"""Binomial low-pass filters used by every anti-aliasing layer."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import TimmAAError
from .options import FILT_SIZES


def check_filt_size(filt_size: int) -> int:
    """Validate a blur filter size (an int in 1..7) and return it.

    Example:
        >>> check_filt_size(4)
        4
    """
    allowed = f"{FILT_SIZES[0]}..{FILT_SIZES[-1]}"
    if isinstance(filt_size, bool) or not isinstance(filt_size, int):
        raise TypeError(f"filt_size must be an int in {allowed}, got {filt_size!r}")
    if filt_size not in FILT_SIZES:
        raise TimmAAError(f"filt_size must be in {allowed}, got {filt_size}")
    return filt_size


def binomial_taps(filt_size: int) -> tuple[float, ...]:
    """The normalised binomial taps as Python floats (exact: the sums are powers of two).

    Example:
        >>> binomial_taps(4)
        (0.125, 0.375, 0.375, 0.125)
    """
    n = check_filt_size(filt_size) - 1
    return tuple(math.comb(n, i) / 2**n for i in range(n + 1))


def binomial_filter1d(filt_size: int, dtype: torch.dtype | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised 1D binomial filter: row ``filt_size - 1`` of Pascal's triangle over its sum.

    Every tap is a dyadic fraction, exact in every floating dtype (bfloat16 included). ``dtype`` defaults to
    torch's default dtype, ``device`` to the current default device (``with torch.device(...)`` included).

    Example:
        >>> binomial_filter1d(4)
        tensor([0.1250, 0.3750, 0.3750, 0.1250])
    """
    taps = torch.tensor(binomial_taps(filt_size), dtype=torch.float64, device="cpu")
    return taps.to(device=torch.empty(0, device=device).device, dtype=dtype or torch.get_default_dtype())


def binomial_filter2d(filt_size: int, dtype: torch.dtype | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised 2D binomial filter, the outer product of :func:`binomial_filter1d` with itself.

    Example:
        >>> binomial_filter2d(3).sum().item()
        1.0
    """
    taps = binomial_filter1d(filt_size, torch.float64, "cpu")
    return torch.outer(taps, taps).to(device=torch.empty(0, device=device).device,
                                      dtype=dtype or torch.get_default_dtype())


class BlurFilterModule(nn.Module):
    """Base for modules holding a binomial filter: ``taps`` (1D, a tuple) and the non-persistent 2D buffer ``filt``.

    ``init_non_persistent_buffers()`` recomputes it: loaders that build models on the meta device
    and skip non-persistent buffers (transformers' ``from_pretrained``) call it to restore the filter.
    """

    def _register_filter(self, filt_size: int, device: torch.device | str | None = None,
                         dtype: torch.dtype | None = None) -> None:
        self.filt_size = check_filt_size(filt_size)
        self.taps = list(binomial_taps(filt_size))  # what the kernels use
        self.register_buffer("filt", binomial_filter2d(filt_size, dtype, device), persistent=False)

    def init_non_persistent_buffers(self) -> None:
        """Recompute ``filt`` where it is (off the meta device: on the CPU), keeping its dtype."""
        device = self.filt.device if self.filt.device.type != "meta" else torch.device("cpu")
        self.filt = binomial_filter2d(self.filt_size, self.filt.dtype, device)
