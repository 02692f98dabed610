"""Alias-free layers (Michaeli, Michaeli & Soudry, "Alias-Free Convnets: Fractional Shift Invariance via Polynomial
Activations", CVPR 2023, arXiv:2303.08085). Re-implemented from the paper.

A map of size N holds the frequencies ``|k| < N/2`` (and, for even N, the Nyquist bin ``k = N/2``). Every layer here
keeps its output *strictly* band-limited: it resamples through the DFT spectrum
(:func:`~timm_aa.layers.spectral.spectral_resample`) keeping ``|k| < n/2`` only, dropping the Nyquist bin of even
sizes. That is what makes a network of circular convolutions and these
layers exactly equivariant to circular shifts by any real amount, not only integers (and its globally pooled
logits invariant): a fractional shift multiplies a real image's Nyquist bin by the real factor ``cos(pi * tau)``,
which no layer that keeps that bin can commute with (upsampling moves it off the Nyquist, a variance squares it).

- :func:`alias_free_downsample2d` / :class:`AliasFreeDownsample2d`: ideal low-pass, then subsample;
- :func:`alias_free_activation` / :class:`AliasFreeActivation`: a degree-2 polynomial evaluated on the 2x upsampled
  map, then low-passed back (``x**2`` at most doubles the band, so on the 2x grid nothing aliases);
- :func:`fit_polynomial`: the polynomial that a new activation starts from;
- and, in their own files, :class:`~timm_aa.layers.AliasFreeLayerNorm2d` (a layer norm over channels *and*
  positions) and :class:`~timm_aa.layers.AliasFreeConv2d` (a circular convolution whose stride is this downsampling).

They compute in float32 for float16, bfloat16 and float32 inputs and in float64 for float64 (the result has the
input's dtype), on CPU and CUDA, with autograd: maps up to ``spectral.MATRIX_MAX_SIZE`` pixels a side are resampled
by two real matmuls (the DFT's band-limited resampling matrices; faster than the FFTs on CPU at these sizes),
larger ones by ``torch.fft``.

Export (torch 2.14, onnxruntime; measured on these layers and on ``alias_free(resnet18)``, tests/test_alias_free.py):
``torch.export.export`` and ``torch.compile(fullgraph=True)`` work on both paths; ``torch.onnx.export`` (both
exporters) works on the matmul path, i.e. for maps up to ``MATRIX_MAX_SIZE`` (256), and not on the FFT path (neither
exporter translates ``fft_rfft2``); ``torch.jit.script`` does not compile these modules.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from torch import nn

from ..errors import TimmAAError
from .helpers import check_input, to_pair
from .spectral import spectral_resample

LAYOUTS = ("NCHW", "NHWC")
APPROXIMATED = ("relu", "gelu")


def check_layout(layout: str) -> str:
    """Validate a data layout name: ``'NCHW'`` (channels first) or ``'NHWC'`` (timm's channels-last blocks).

    Example:
        >>> check_layout('NHWC')
        'NHWC'
    """
    if layout not in LAYOUTS:
        raise TimmAAError(f"layout must be 'NCHW' (channels first) or 'NHWC' (timm's channels-last blocks), "
                          f"got {layout!r}")
    return layout


def to_nchw(x: torch.Tensor, layout: str, layer: str) -> torch.Tensor:
    """``x`` as an (N, C, H, W) view (permuted from ``layout``), checked as ``layer``'s input.

    Example:
        >>> to_nchw(torch.zeros(2, 5, 6, 3), 'NHWC', 'AliasFreeActivation').shape
        torch.Size([2, 3, 5, 6])
    """
    if check_layout(layout) == "NHWC" and isinstance(x, torch.Tensor) and x.dim() == 4:
        x = x.permute(0, 3, 1, 2)
    check_input(x, layer)
    return x


def from_nchw(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The inverse of :func:`to_nchw`: an (N, C, H, W) tensor back in ``layout``.

    Example:
        >>> from_nchw(torch.zeros(2, 3, 5, 6), 'NHWC').shape
        torch.Size([2, 5, 6, 3])
    """
    return x.permute(0, 2, 3, 1) if layout == "NHWC" else x


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


@register_notrace_module  # shape-dependent Python (band limits, sizes): a leaf for timm's fx tracing
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
    x = to_nchw(input, layout, "alias_free_activation")
    c = coefficients
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"coefficients must be a torch.Tensor of shape (3,) or (channels, 3), got {type(c).__name__}")
    if c.shape not in ((3,), (x.shape[1], 3)):
        raise TimmAAError(f"coefficients must have shape (3,) or (channels, 3) = ({x.shape[1]}, 3), got "
                          f"{list(c.shape)}")
    h, w = x.shape[-2:]
    up = spectral_resample(x, (2 * h, 2 * w))
    c = c.to(up)  # the input's device, float32 (float64) like the upsampled map
    c0, c1, c2 = (c.view(3, 1, 1, 1) if c.dim() == 1 else c.T.reshape(3, 1, -1, 1, 1)).unbind(0)
    # lowpass(c0 + c1 * up) = c0 + c1 * lowpass(x) (linear, and up holds x's band): only the square needs the 2x grid
    linear = torch.addcmul(c0, c1, spectral_resample(x, (h, w)))
    out = torch.addcmul(linear, c2, spectral_resample(up * up, (h, w))).to(input.dtype)
    return from_nchw(out, layout)


@register_notrace_module
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
        self.layout = check_layout(layout)
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
