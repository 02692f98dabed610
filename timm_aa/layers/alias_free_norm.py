"""The shift-commuting layer norm of alias-free networks (Michaeli et al., CVPR 2023: centred per position over
channels, scaled over channels *and* positions), with the parameters of timm's channel layer norms."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import TimmAAError
from .alias_free import check_layout, from_nchw, to_nchw
from .spectral import _compute_dtype


def alias_free_layer_norm2d(input: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                            eps: float = 1e-6, layout: str = "NCHW") -> torch.Tensor:
    """The paper's layer norm: subtract the mean over channels at each position, divide by the standard deviation
    over channels *and* positions (biased), then scale and shift each channel by ``weight`` and ``bias`` (C,).

    The centring is linear and the same at every position (it commutes with any shift); the scale is one number per
    sample, shift-invariant for strictly band-limited maps (the spectrum's energy, Parseval). timm's layer norm
    divides each position by its own deviation instead: a pointwise nonlinearity, which aliases. 16-bit inputs are
    normalised in float32. The functional twin of :class:`AliasFreeLayerNorm2d`.

    Example:
        >>> y = alias_free_layer_norm2d(torch.randn(2, 3, 5, 5) * 4 + torch.arange(5.))  # a ramp along W
        >>> y[0].mean(0).abs().max().item() < 1e-6, round(y[0].var(unbiased=False).item(), 4)
        (True, 1.0)
    """
    x = to_nchw(input, layout, "alias_free_layer_norm2d")
    if x.numel() == 0:
        return input.clone()
    x = x.to(_compute_dtype(x))
    centred = x - x.mean(1, keepdim=True)
    # one (B, C, 1, 1) factor for the scale and the weight, one fused pass for the affine: half the memory traffic
    norm = torch.linalg.vector_norm(centred, dim=(1, 2, 3), keepdim=True)
    scale = torch.rsqrt(norm.square() / centred[0].numel() + eps)
    if weight is not None:
        scale = scale * weight.to(centred).view(-1, 1, 1)
    out = centred * scale if bias is None else torch.addcmul(bias.to(centred).view(-1, 1, 1), centred, scale)
    return from_nchw(out.to(input.dtype), layout)


class AliasFreeLayerNorm2d(nn.Module):
    """Layer norm centred per position, scaled over channels and positions (see :func:`alias_free_layer_norm2d`),
    with a per-channel affine.

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
        self.num_channels, self.eps, self.layout = num_channels, eps, check_layout(layout)
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
