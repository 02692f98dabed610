"""Band-limited resampling of periodic 2D maps: the ideal low-pass (down) and interpolation (up) the alias-free
layers are built from (:mod:`timm_aa.layers.alias_free`).

A map of N samples holds the frequencies ``|k| < N/2`` and, for even N, the Nyquist bin ``k = N/2``. Resampling
from N to n samples here keeps ``|k| < min(N, n) / 2`` only: never a Nyquist bin, of either grid.
"""

from __future__ import annotations

import functools
import math

import torch

MATRIX_MAX_SIZE = 256  # up to this many pixels a side (in and out), resample with two matmuls instead of FFTs


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def band_limit(n_in: int, n_out: int) -> int:
    """The highest frequency a resampling from ``n_in`` to ``n_out`` samples keeps: ``|k| < min(n_in, n_out) / 2``.

    Example:
        >>> band_limit(8, 4), band_limit(7, 4), band_limit(4, 8)  # (an even size loses its Nyquist bin, 2)
        (1, 1, 1)
    """
    return (min(n_in, n_out) - 1) // 2


def resampling_matrix(n_in: int, n_out: int, dtype: torch.dtype = torch.float64,
                      device: torch.device | None = None) -> torch.Tensor:
    """The real (n_out, n_in) matrix of :func:`spectral_resample` along one axis: a periodic Dirichlet kernel,
    ``A[m, n] = (1 + 2 * sum_{k=1..K} cos(2 pi k (m / n_out - n / n_in))) / n_in``, ``K = band_limit(n_in, n_out)``.

    Example:
        >>> resampling_matrix(2, 4)  # 2 -> 4 samples keeps only the mean (the Nyquist bin k = 1 is dropped)
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000],
                [0.5000, 0.5000],
                [0.5000, 0.5000]], dtype=torch.float64)
    """
    t = (torch.arange(n_out, dtype=torch.float64)[:, None] / n_out
         - torch.arange(n_in, dtype=torch.float64)[None, :] / n_in)
    k = torch.arange(1, band_limit(n_in, n_out) + 1, dtype=torch.float64)
    kernel = 1 + 2 * torch.cos(2 * math.pi * t[..., None] * k).sum(-1)
    return (kernel / n_in).to(device=device, dtype=dtype)


def _resample_fft(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h_in, w_in = x.shape[-2:]
    h, w = size
    ky, kx = band_limit(h_in, h), band_limit(w_in, w)
    # norm='forward' on both transforms scales by 1 / (H_in W_in) once: the h*w / (H_in W_in) a resampling needs
    spec = torch.fft.rfft2(x, norm="forward")[..., : kx + 1]
    rows = [spec[..., : ky + 1, :], spec[..., h_in - ky :, :]]
    if h > 2 * ky + 1:
        rows.insert(1, spec.new_zeros((*spec.shape[:-2], h - 2 * ky - 1, kx + 1)))
    return torch.fft.irfft2(torch.cat(rows, dim=-2), s=(h, w), norm="forward")  # zero-pads the columns past kx


@functools.lru_cache(maxsize=256)
def _cached_matrix(n_in: int, n_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():  # a normal tensor, usable later with autograd
        return resampling_matrix(n_in, n_out, dtype, device)


def _matrix(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    if torch.compiler.is_compiling():  # traced (torch.compile, torch.export): a constant of the graph, not cached
        return resampling_matrix(n_in, n_out, like.dtype, like.device)
    return _cached_matrix(n_in, n_out, like.dtype, like.device)


def _resample_matmul(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return _matrix(x.shape[-2], size[0], x) @ (x @ _matrix(x.shape[-1], size[1], x).T)


def spectral_resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample the periodic, band-limited interpolation of ``x`` (..., H, W) onto an (h, w) grid over the same
    period, keeping only the frequencies ``|k| < min(H, h) / 2`` on each axis (so neither grid's Nyquist bin).

    Down (h < H) this is the ideal low-pass and subsampling, up (h > H) the ideal (zero-padded spectrum)
    interpolation. Computed in float32 (float64 for float64 inputs) and returned in that dtype: with two matmuls by
    :func:`resampling_matrix` while every side is at most ``MATRIX_MAX_SIZE`` (faster on CPU, and ONNX-exportable),
    by ``rfft2`` / ``irfft2`` above (the same operator: equal to float rounding); autocast does not lower it.

    Example:
        >>> x = torch.tensor([[0., 1., 0., -1.]])  # a sine at k = 1: kept, and sampled on a finer grid
        >>> [round(v, 4) for v in spectral_resample(x[None], (1, 8))[0, 0].tolist()]
        [0.0, 0.7071, 1.0, 0.7071, 0.0, -0.7071, -1.0, -0.7071]
    """
    x = x.to(_compute_dtype(x))
    if x.numel() == 0:
        return x.new_zeros((*x.shape[:-2], *size))
    device = x.device.type
    if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):  # would lower the matmuls
        with torch.autocast(device, enabled=False):
            return _resample(x, size)
    return _resample(x, size)


def _resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if max(*x.shape[-2:], *size) <= MATRIX_MAX_SIZE:
        return _resample_matmul(x, size)
    return _resample_fft(x, size)
