"""Alias-free layers (Michaeli, Michaeli & Soudry, "Alias-Free Convnets: Fractional Shift Invariance via Polynomial
Activations", CVPR 2023, arXiv:2303.08085). Re-implemented from the paper.

A map of size N holds the frequencies ``|k| < N/2`` (and, for even N, the Nyquist bin ``k = N/2``). Every layer here
keeps its output *strictly* band-limited: it works in the Fourier domain (``torch.fft``) and keeps ``|k| < n/2``
only, dropping the Nyquist bin of even sizes. That is what makes a network of circular convolutions and these
layers exactly equivariant to circular shifts by any real amount, not only integers (and its globally pooled
logits invariant): a fractional shift multiplies a real image's Nyquist bin by the real factor ``cos(pi * tau)``,
which no layer that keeps that bin can commute with (upsampling moves it off the Nyquist, a variance squares it).

- :func:`alias_free_downsample2d` / :class:`AliasFreeDownsample2d`: ideal low-pass, then subsample;
- :func:`alias_free_activation` / :class:`AliasFreeActivation`: a degree-2 polynomial evaluated on the 2x upsampled
  map, then low-passed back (``x**2`` at most doubles the band, so on the 2x grid nothing aliases);
- :func:`alias_free_layer_norm2d` / :class:`AliasFreeLayerNorm2d`: a layer norm over channels *and* positions;
- :func:`fit_polynomial`: the polynomial that a new activation starts from.

They compute in float32 for float16, bfloat16 and float32 inputs and in float64 for float64 (the result has the
input's dtype), on CPU and CUDA, with autograd: maps up to ``MATRIX_MAX_SIZE`` pixels a side are resampled by two
real matmuls (the DFT's band-limited resampling matrices; faster than the FFTs on CPU at these sizes), larger ones
by ``torch.fft``.

Export (torch 2.14, onnxruntime; measured on these layers and on ``alias_free(resnet18)``, tests/test_alias_free.py):
``torch.export.export`` and ``torch.compile(fullgraph=True)`` work on both paths; ``torch.onnx.export`` (both
exporters) works on the matmul path, i.e. for maps up to ``MATRIX_MAX_SIZE``, and not on the FFT path (neither
exporter translates ``fft_rfft2``); ``torch.jit.script`` does not compile these modules.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TimmAAError
from .helpers import check_input, to_pair

LAYOUTS = ("NCHW", "NHWC")
APPROXIMATED = ("relu", "gelu")


def _check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise TimmAAError(f"layout must be 'NCHW' (channels first) or 'NHWC' (timm's channels-last blocks), "
                          f"got {layout!r}")
    return layout


def _to_nchw(x: torch.Tensor, layout: str, layer: str) -> torch.Tensor:
    if _check_layout(layout) == "NHWC":
        if isinstance(x, torch.Tensor) and x.dim() == 4:
            x = x.permute(0, 3, 1, 2)
    check_input(x, layer)
    return x


def _from_nchw(x: torch.Tensor, layout: str) -> torch.Tensor:
    return x.permute(0, 2, 3, 1) if layout == "NHWC" else x


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


MATRIX_MAX_SIZE = 256  # up to this many pixels a side (in and out), resample with two matmuls instead of FFTs


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
    by ``rfft2`` / ``irfft2`` above (the same operator: equal to float rounding).

    Example:
        >>> x = torch.tensor([[0., 1., 0., -1.]])  # a sine at k = 1: kept, and sampled on a finer grid
        >>> [round(v, 4) for v in spectral_resample(x[None], (1, 8))[0, 0].tolist()]
        [0.0, 0.7071, 1.0, 0.7071, 0.0, -0.7071, -1.0, -0.7071]
    """
    x = x.to(_compute_dtype(x))
    if x.numel() == 0:
        return x.new_zeros((*x.shape[:-2], *size))
    if max(*x.shape[-2:], *size) <= MATRIX_MAX_SIZE:
        return _resample_matmul(x, size)
    return _resample_fft(x, size)


def alias_free_downsample2d(input: torch.Tensor, stride: int | tuple[int, int] = 2) -> torch.Tensor:
    """Ideal (Fourier) low-pass, then subsample: the frequencies below the output grid's Nyquist, nothing else.

    The output has ``ceil(H / stride) x ceil(W / stride)`` pixels, as a strided convolution's. When the stride
    divides the size, it is the low-passed map at every ``stride``-th pixel; otherwise the low-passed map is
    sampled at spacing ``H / h`` (still exactly shift-equivariant: a shift by ``t`` becomes one by ``t * h / H``).
    The functional twin of :class:`AliasFreeDownsample2d`.

    Example:
        >>> x = torch.randn(1, 2, 8, 8)
        >>> torch.allclose(alias_free_downsample2d(x).mean((2, 3)), x.mean((2, 3)), atol=1e-6)  # keeps the mean
        True
        >>> alias_free_downsample2d(torch.randn(1, 2, 7, 9)).shape
        torch.Size([1, 2, 4, 5])
    """
    check_input(input, "alias_free_downsample2d")
    sy, sx = to_pair(stride, "stride")
    h, w = input.shape[-2:]
    return spectral_resample(input, (-(-h // sy), -(-w // sx))).to(input.dtype)


class AliasFreeDownsample2d(nn.Module):
    """Ideal low-pass, then subsample (see :func:`alias_free_downsample2d`). No parameters, no state.

    Example:
        >>> down = AliasFreeDownsample2d(stride=2)
        >>> x = torch.randn(1, 4, 16, 16)
        >>> y, y_shifted = down(x), down(torch.roll(x, 2, dims=3))  # a 2-pixel shift is a 1-pixel shift after it
        >>> torch.allclose(y_shifted, torch.roll(y, 1, dims=3), atol=1e-5)
        True
    """

    def __init__(self, stride: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.stride = to_pair(stride, "stride")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return alias_free_downsample2d(x, self.stride)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


def fit_polynomial(approximates: str = "relu", scale: float = 1.0) -> torch.Tensor:
    """Coefficients ``(c0, c1, c2)`` of the degree-2 polynomial closest to ``approximates`` ('relu' or 'gelu',
    the exact erf form) in mean square for inputs drawn from N(0, scale**2); float64, shape (3,).

    Example:
        >>> [round(c, 4) for c in fit_polynomial('relu').tolist()]  # 1/(2 sqrt(2 pi)) + x/2 + x**2/(2 sqrt(2 pi))
        [0.1995, 0.5, 0.1995]
        >>> [round(c, 4) for c in fit_polynomial('gelu').tolist()]
        [0.0705, 0.5, 0.2116]
    """
    if approximates not in APPROXIMATED:
        raise TimmAAError(f"approximates must be one of {APPROXIMATED}, got {approximates!r}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise TimmAAError(f"scale must be a positive number (the input's standard deviation), got {scale!r}")
    x = torch.linspace(-12 * scale, 12 * scale, 24_001, dtype=torch.float64)
    target = torch.relu(x) if approximates == "relu" else F.gelu(x)
    basis = torch.stack([torch.ones_like(x), x, x * x], dim=1)
    weight = torch.exp(-0.5 * (x / scale) ** 2)[:, None]
    return torch.linalg.solve(basis.T @ (weight * basis), basis.T @ (weight[:, 0] * target))


def alias_free_activation(input: torch.Tensor, coefficients: torch.Tensor, layout: str = "NCHW") -> torch.Tensor:
    """``c0 + c1 * u + c2 * u**2`` on the 2x upsampled map ``u``, low-passed and subsampled back to the input's size.

    ``coefficients`` is (3,) (one polynomial) or (C, 3) (one per channel). The input's Nyquist bins are dropped
    before upsampling, and the output keeps ``|k| < H/2``: for any input, the layer is exactly equivariant to
    circular shifts by real amounts. ``layout='NHWC'`` takes channels-last tensors (timm's ConvNeXt MLP).
    The functional twin of :class:`AliasFreeActivation`.

    Example:
        >>> line = torch.tensor([0., 1., 0., -1.]).repeat(1, 1, 4, 1)  # sin(pi x / 2) along W
        >>> alias_free_activation(line, torch.tensor([0., 0., 1.]))[0, 0, 0]  # its square: 1/2 - cos(pi x) / 2
        tensor([0.5000, 0.5000, 0.5000, 0.5000])

    (``cos(pi x)`` sits at the 4-pixel grid's Nyquist: dropped; a pointwise square would give ``[0, 1, 0, 1]``.)
    """
    x = _to_nchw(input, layout, "alias_free_activation")
    c = coefficients
    if c.shape not in ((3,), (x.shape[1], 3)):
        raise TimmAAError(f"coefficients must have shape (3,) or (channels, 3) = ({x.shape[1]}, 3), got "
                          f"{list(c.shape)}")
    h, w = x.shape[-2:]
    up = spectral_resample(x, (2 * h, 2 * w))
    c = c.to(up.dtype)
    c0, c1, c2 = (c.view(3, 1, 1, 1) if c.dim() == 1 else c.T.reshape(3, 1, -1, 1, 1)).unbind(0)
    out = spectral_resample(torch.addcmul(c0, up, torch.addcmul(c1, c2, up)), (h, w)).to(input.dtype)
    return _from_nchw(out, layout)


class AliasFreeActivation(nn.Module):
    """An alias-free polynomial activation (see :func:`alias_free_activation`) with learnable coefficients.

    ``coefficients`` is an ``nn.Parameter`` of shape (channels, 3), one polynomial per channel as in the paper's
    ConvNeXt (or (3,) with ``channels=None``), initialised by :func:`fit_polynomial` to the polynomial closest to
    ``approximates`` (ReLU: ``0.1995 + 0.5 x + 0.1995 x**2``) for inputs ~ N(0, ``scale**2``).

    Example:
        >>> act = AliasFreeActivation(8, approximates='relu')
        >>> act.coefficients.shape, [round(c, 4) for c in act.coefficients[0].tolist()]
        (torch.Size([8, 3]), [0.1995, 0.5, 0.1995])
        >>> act(torch.randn(2, 8, 6, 6)).shape
        torch.Size([2, 8, 6, 6])
    """

    def __init__(self, channels: int | None = None, approximates: str = "relu", scale: float = 1.0,
                 layout: str = "NCHW", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 0):
            raise TimmAAError(f"channels must be an int >= 0 (or None for one polynomial), got {channels!r}")
        self.channels, self.approximates, self.scale = channels, approximates, scale
        self.layout = _check_layout(layout)
        shape = (3,) if channels is None else (channels, 3)
        self.coefficients = nn.Parameter(torch.empty(shape, device=device, dtype=dtype or torch.get_default_dtype()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set the coefficients to :func:`fit_polynomial` of ``approximates`` (every channel alike)."""
        with torch.no_grad():
            self.coefficients.copy_(fit_polynomial(self.approximates, self.scale).expand_as(self.coefficients))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return alias_free_activation(x, self.coefficients, self.layout)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, approximates={self.approximates!r}, scale={self.scale}, layout={self.layout}"


def alias_free_layer_norm2d(input: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                            eps: float = 1e-6, layout: str = "NCHW") -> torch.Tensor:
    """Normalise each sample over channels *and* positions together (mean and biased variance over C, H, W), then
    scale and shift each channel by ``weight`` and ``bias`` (C,): ``nn.GroupNorm(1, C)``'s arithmetic.

    Both statistics are shift-invariant for strictly band-limited maps (the mean is the DC bin; the variance is the
    spectrum's energy, Parseval), unlike a layer norm over channels alone, which normalises each position on its own
    (a pointwise nonlinearity: it aliases). The functional twin of :class:`AliasFreeLayerNorm2d`.

    Example:
        >>> y = alias_free_layer_norm2d(torch.randn(2, 3, 5, 5) * 4 + 1)
        >>> abs(y[0].mean().item()) < 1e-6, round(y[0].var(unbiased=False).item(), 4)
        (True, 1.0)
    """
    x = _to_nchw(input, layout, "alias_free_layer_norm2d")
    if x.numel() == 0:
        return input.clone()
    return _from_nchw(F.group_norm(x, 1, weight, bias, eps), layout)


class AliasFreeLayerNorm2d(nn.Module):
    """Layer norm over channels and positions (see :func:`alias_free_layer_norm2d`) with a per-channel affine.

    Its parameters are named and shaped as timm's ``LayerNorm2d`` / ``LayerNorm`` (``weight``, ``bias``: (C,)),
    so their weights load with ``strict=True``; ``layout='NHWC'`` takes channels-last tensors (ConvNeXt blocks).

    Example:
        >>> norm = AliasFreeLayerNorm2d(8)
        >>> sorted(norm.state_dict()), norm.weight.shape
        (['bias', 'weight'], torch.Size([8]))
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True, layout: str = "NCHW",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.num_channels, self.eps, self.layout = num_channels, eps, _check_layout(layout)
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(num_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @classmethod
    def from_norm(cls, norm: nn.LayerNorm, layout: str = "NCHW") -> AliasFreeLayerNorm2d:
        """Build from a layer norm over channels (timm's ``LayerNorm2d``, or ``nn.LayerNorm`` in a channels-last
        block), sharing its parameters (no copy).

        Example:
            >>> import timm
            >>> norm = timm.layers.LayerNorm2d(96)
            >>> AliasFreeLayerNorm2d.from_norm(norm).weight is norm.weight
            True
        """
        if len(norm.normalized_shape) != 1:
            raise TimmAAError(f"a layer norm over channels has one normalized dimension, got {norm}")
        new = cls(norm.normalized_shape[0], norm.eps, affine=False, layout=layout)
        new.weight, new.bias = norm.weight, norm.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return alias_free_layer_norm2d(x, self.weight, self.bias, self.eps, self.layout)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, layout={self.layout}"
