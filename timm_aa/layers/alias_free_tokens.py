"""Alias-free layers for the token sequences of a vision transformer (Michaeli & Soudry, "Alias-Free ViT: Fractional
Shift Invariance via Linear Attention", NeurIPS 2025, arXiv:2510.22673; re-implemented from the paper and AFC).

Tokens are (B, P + N, C): ``P`` prefix tokens (a class token: one vector per image, no position) and the ``N = H * W``
patch tokens of an H x W grid, row-major. The patch tokens of an alias-free network are a strictly band-limited map
(see :mod:`timm_aa.layers.alias_free`), so a sum over the grid of a product of two such maps is the continuous
integral (Parseval: the product holds ``|k| < H``, which does not alias onto ``k = 0``), unchanged by any circular
shift of the map, fractional ones included. A per-token nonlinearity (a layer norm dividing each token by its own
deviation, a softmax's ``exp``) breaks the band limit; the layers here replace them:

- :func:`alias_free_token_norm` / :class:`AliasFreeTokenNorm`: the AFC layer norm (each token centred over its
  channels, all scaled by one deviation over channels and tokens) on the patch tokens; the prefix tokens keep the
  plain per-token layer norm, with the same weight and bias (a vector with no position has nothing to alias);
- :func:`alias_free_softmax`: a softmax over the tokens whose ``exp`` is its second-order Taylor polynomial
  ``1 + s + s**2 / 2`` (positive everywhere: ``((1 + s)**2 + 1) / 2 >= 1/2``), evaluated on the patch tokens' scores
  as :func:`~timm_aa.layers.alias_free_activation` does (on the 2x upsampled grid, low-passed back). Attention
  with these weights, ``weights @ v``, gives for any strictly band-limited ``v`` the continuous integral of
  ``p(s) v`` over ``p(s)``: invariant to fractional shifts of the grid.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import TimmAAError
from .alias_free import alias_free_activation
from .alias_free_norm import AliasFreeLayerNorm2d
from .spectral import _compute_dtype

#: the softmax's ``exp`` in :func:`alias_free_softmax`: its Taylor polynomial of degree 2, ``1 + s + s**2 / 2``
TAYLOR_EXP = (1.0, 1.0, 0.5)


def _check_tokens(x: torch.Tensor, token_dim: int, num_prefix_tokens: int, layer: str, what: str) -> None:
    """``x`` holds tokens along ``token_dim`` (1: (B, tokens, C), exactly 3 dimensions; -1: (..., tokens))."""
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and (x.dim() == 3 if token_dim == 1 else x.dim())):
        got = f"{x.dtype} {list(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TimmAAError(f"{layer} expects {what}, a floating-point tensor, got {got}")
    if not 0 <= num_prefix_tokens <= x.shape[token_dim]:
        raise TimmAAError(f"{layer}: num_prefix_tokens={num_prefix_tokens} is not in [0, {x.shape[token_dim]}] "
                          "(the tokens)")


def _normalise(x: torch.Tensor, dims: tuple[int, ...], weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float) -> torch.Tensor:
    """Centre each token over its channels, divide by the deviation over ``dims``, then the affine (16-bit inputs in
    float32). Written out, not ``F.layer_norm``: the ONNX TorchScript exporter cannot take a traced shape."""
    x32 = x.to(_compute_dtype(x))
    centred = x32 - x32.mean(-1, keepdim=True)
    out = centred * torch.rsqrt(centred.square().mean(dims, keepdim=True) + eps)
    out = out if weight is None else out * weight
    return (out if bias is None else out + bias).to(x.dtype)


def alias_free_token_norm(input: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                          eps: float = 1e-6, num_prefix_tokens: int = 0) -> torch.Tensor:
    """Layer norm of tokens (B, P + N, C): the patch tokens by the AFC layer norm (centred per token over C, divided
    by one standard deviation over all N tokens and C channels: :func:`~timm_aa.layers.alias_free_layer_norm2d` of the
    token map), the ``P = num_prefix_tokens`` first ones by the plain per-token layer norm; both then scaled by
    ``weight`` and shifted by ``bias`` (C,). The functional twin of :class:`AliasFreeTokenNorm`.

    Example:
        >>> x = torch.randn(2, 1 + 16, 8)
        >>> y = alias_free_token_norm(x, num_prefix_tokens=1)
        >>> torch.allclose(y[:, :1], torch.nn.functional.layer_norm(x[:, :1], (8,), eps=1e-6), atol=1e-6)  # class
        True
        >>> round(y[0, 1:].var(unbiased=False).item(), 4), y[0, 1:].mean(-1).abs().max().item() < 1e-6  # patches
        (1.0, True)
    """
    _check_tokens(input, 1, num_prefix_tokens, "alias_free_token_norm", "tokens (batch, tokens, channels)")
    patches = _normalise(input[:, num_prefix_tokens:], (1, 2), weight, bias, eps)
    if not num_prefix_tokens:
        return patches
    return torch.cat([_normalise(input[:, :num_prefix_tokens], (-1,), weight, bias, eps), patches], dim=1)


class AliasFreeTokenNorm(AliasFreeLayerNorm2d):
    """Layer norm of a transformer's tokens, alias-free on the patch tokens (see :func:`alias_free_token_norm`): the
    :class:`~timm_aa.layers.AliasFreeLayerNorm2d` of the token map, with prefix tokens.

    Named and shaped as ``nn.LayerNorm(C)`` (``weight``, ``bias``: (C,)), so its weights load with ``strict=True``.
    ``forward(x, num_prefix_tokens=0)``: how many leading tokens (a class token) are normed per token.

    Example:
        >>> norm = AliasFreeTokenNorm.from_norm(torch.nn.LayerNorm(8, eps=1e-6))
        >>> sorted(norm.state_dict()), norm(torch.randn(2, 1 + 9, 8), 1).shape
        (['bias', 'weight'], torch.Size([2, 10, 8]))
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_channels, eps, affine, "NHWC", device, dtype)

    @classmethod
    def from_norm(cls, norm: nn.LayerNorm) -> AliasFreeTokenNorm:  # type: ignore[override]
        """Build from an ``nn.LayerNorm`` over the channels, sharing its parameters (no copy).

        Example:
            >>> norm = torch.nn.LayerNorm(8)
            >>> AliasFreeTokenNorm.from_norm(norm).weight is norm.weight
            True
        """
        if not isinstance(norm, nn.LayerNorm) or len(norm.normalized_shape) != 1:
            raise TimmAAError(f"AliasFreeTokenNorm.from_norm takes an nn.LayerNorm over the channels, got {norm}")
        new = cls(norm.normalized_shape[0], norm.eps, affine=False)
        new.weight, new.bias = norm.weight, norm.bias
        return new

    def forward(self, x: torch.Tensor, num_prefix_tokens: int = 0) -> torch.Tensor:
        return alias_free_token_norm(x, self.weight, self.bias, self.eps, num_prefix_tokens)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


def alias_free_softmax(scores: torch.Tensor, grid: tuple[int, int], num_prefix_tokens: int = 0) -> torch.Tensor:
    """Attention weights over tokens (..., P + N), alias-free on the N = H x W patch tokens: the softmax with ``exp``
    replaced by ``p(s) = 1 + s + s**2 / 2`` (:data:`TAYLOR_EXP`), evaluated on the P prefix tokens as it is and on the
    patch tokens' score map by :func:`~timm_aa.layers.alias_free_activation` (on the 2x upsampled map, low-passed
    back), then divided by their sum.

    For a strictly band-limited map ``v`` (N, d) of the patch tokens, ``weights[P:] @ v`` is N times the continuous
    mean of ``p(s) v`` (``v`` sees only the low band of ``p(s)``), and ``weights[P:].sum()`` N times that of ``p(s)``
    (at least 1/2): the attention output is invariant to circular shifts of the grid by any real amount. The
    patch weights can dip below zero where the low-pass rings; their sum cannot.

    Example:
        >>> s = torch.tensor([[0.5, 0.0, 1.0, 0.0, -1.0]])  # a class token's score, then a 2x2 grid's
        >>> w = alias_free_softmax(s, (2, 2), num_prefix_tokens=1)
        >>> [round(v, 4) for v in w[0].tolist()]  # a 2-pixel axis keeps its mean only: p(0.5) = 1.625, then p(0) = 1
        [0.2889, 0.1778, 0.1778, 0.1778, 0.1778]
    """
    _check_tokens(scores, -1, num_prefix_tokens, "alias_free_softmax", "scores (..., tokens)")
    height, width = grid
    if height * width != scores.shape[-1] - num_prefix_tokens:
        raise TimmAAError(f"alias_free_softmax: a {height}x{width} grid needs {height * width} patch tokens after the "
                          f"{num_prefix_tokens} prefix tokens, got {scores.shape[-1] - num_prefix_tokens}")
    c0, c1, c2 = TAYLOR_EXP
    prefix, patches = scores[..., :num_prefix_tokens], scores[..., num_prefix_tokens:]
    batch = patches.shape[:-1]
    flat = patches.reshape(-1, 1, height, width)
    coefficients = torch.tensor(TAYLOR_EXP, dtype=flat.dtype, device=flat.device)
    weights = alias_free_activation(flat, coefficients).reshape(*batch, height * width)
    weights = torch.cat([c0 + prefix * (c1 + c2 * prefix), weights], dim=-1)
    return weights / weights.sum(-1, keepdim=True)
