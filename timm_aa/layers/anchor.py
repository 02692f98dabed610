"""Patch-grid anchoring: exact invariance to circular shifts for patchify models (ViT, Swin, Mixer, ...).

Re-implemented from the idea of polyphase anchoring (Ding et al., arXiv:2306.07470; Rojas-Gomez et al., CVPR 2024,
arXiv:2305.16316): choose the patch grid's offset, and the token order, by an argmax of a shift-equivariant score, so
that a shifted input gives the same tokens. Here both choices are one: the anchor is the ``patch_size`` window of the
input with the largest *contrast energy* (the sum over its pixels and channels of the squared deviation from the
window's mean), and the input is rolled circularly so that this window becomes the token at the grid's centre. A
circular shift of the input moves the anchor by the same amount, so the rolled image is the same tensor: everything
after it (patch embedding, position embeddings, windows, patch merging) sees identical values, and the logits are
exactly invariant, for any input size and any later layer.

Ties: a window's score is computed from its own pixels in a fixed order, so it moves with the image bit for bit;
equal maxima (two windows with the same contrast energy) are broken by the energy of a window three times larger
centred on each, then by raster order. A flat image ties everywhere and then has nothing to anchor, but every roll of
it is the same image. Only an image with two distinct windows that tie at both scales can be anchored differently
after a shift (never seen on natural or random images; the tests check digits on flat backgrounds).

The score is computed in float32 from a (B, 2, H, W) summary of the input (the channel sum and the sum of squares),
with box means at two scales: a few element-wise passes over the image, about 1% of a ViT-S/16 forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from torch import nn

from ..errors import TimmAAError
from .helpers import check_input, to_pair


def _box_sums(m: torch.Tensor, widths: tuple[int, ...], dim: int) -> dict[int, torch.Tensor]:
    """Circular box sums of ``m`` along ``dim``, ``out[w][u] = sum(m[u : u + w])`` (indices modulo the size), for each
    width in ``widths``: sums of power-of-two boxes built by doubling (each a roll and an add), so every position
    adds the same values in the same order and the sums move with ``m`` bit for bit under circular shifts."""
    powers = {1: m}
    width = 1
    while 2 * width <= max(widths):
        powers[2 * width] = powers[width] + torch.roll(powers[width], -width, dims=dim)
        width *= 2
    out = {}
    for w in widths:
        total, offset = None, 0
        for power in sorted(powers, reverse=True):
            if w - offset >= power:
                part = powers[power] if offset == 0 else torch.roll(powers[power], -offset, dims=dim)
                total = part if total is None else total + part
                offset += power
        out[w] = total
    return out


def _energy(stats: torch.Tensor, count: int, channels: int) -> torch.Tensor:
    """Contrast energy of windows from their sums (B, 2, H, W) over ``count`` pixels of ``sum_c x`` and
    ``sum_c x**2``: C times the variance of the window's values."""
    return stats[:, 1] / count - (stats[:, 0] / count).square() / channels


def lexicographic_argmax(scores: list[torch.Tensor]) -> torch.Tensor:
    """Flat index (B,) of the largest first score, ties broken by the next scores in turn, then by raster order.
    Each score is (B, H, W).

    Example:
        >>> a, b = torch.tensor([[[1., 3.], [3., 0.]]]), torch.tensor([[[9., 1.], [2., 9.]]])
        >>> lexicographic_argmax([a, b]).tolist()
        [2]
    """
    best = scores[0].flatten(1)
    for nxt in scores[1:]:
        nxt = nxt.flatten(1)
        best = torch.where(best == best.amax(dim=1, keepdim=True), nxt, torch.full_like(nxt, -float("inf")))
    return best.argmax(dim=1)


def _summary(x: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    return torch.stack([xf.sum(dim=1), xf.square().sum(dim=1)], dim=1)


def anchor_scores(x: torch.Tensor, patch_size: int | tuple[int, int] = 16) -> list[torch.Tensor]:
    """The anchor's scores, (B, H, W) each, in order of precedence, for the window whose top-left pixel is at each
    position: the contrast energy of the ``patch_size`` window; for ties, that of the window three patches wide
    centred on it; then a staircase of the raw energy ``sum_c x**2`` over its top-left power-of-two sub-windows
    (1, 2, 4, ... pixels wide), which tells apart the windows a small blob fits in.

    Example:
        >>> x = torch.zeros(1, 3, 8, 8); x[..., 5, 2] = 1.0
        >>> [tuple(s.shape) for s in anchor_scores(x, 2)]
        [(1, 8, 8), (1, 8, 8), (1, 8, 8)]
    """
    ph, pw = (p if s >= p else int(s) for p, s in zip(to_pair(patch_size, "patch_size"), x.shape[2:], strict=True))
    stairs = [2**j for j in range(min(ph, pw).bit_length())]
    rows = _box_sums(_summary(x), tuple({ph, *stairs}), dim=2)
    box = _box_sums(rows[ph], (pw,), dim=3)[pw]
    wide = box + torch.roll(box, ph, dims=2) + torch.roll(box, -ph, dims=2)  # [u - p, u + 2p) on each axis
    wide = wide + torch.roll(wide, pw, dims=3) + torch.roll(wide, -pw, dims=3)
    staircase = sum(_box_sums(rows[w][:, 1:], (w,), dim=3)[w][:, 0] for w in stairs)
    channels = x.shape[1]
    return [_energy(box, ph * pw, channels), _energy(wide, 9 * ph * pw, channels), staircase]


def patch_anchor_index(x: torch.Tensor, patch_size: int | tuple[int, int] = 16) -> torch.Tensor:
    """(B, 2) long: per sample, the (row, column) of the top-left pixel of its anchor window (the ``patch_size``
    window of largest contrast energy). Shift-equivariant: rolling ``x`` by (a, b) adds (a, b) modulo (H, W).

    Example:
        >>> x = torch.zeros(1, 1, 8, 8); x[0, 0, 5, 2] = 1.0
        >>> patch_anchor_index(x, 2).tolist()  # the four 2x2 windows holding it tie: the one it starts wins
        [[5, 2]]
    """
    check_input(x, "patch_anchor_index")
    return _unflatten(lexicographic_argmax(anchor_scores(x, patch_size)), x.shape[2], x.shape[3])


def _unflatten(flat: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 2) (row, column) of flat indices into (H, W), by lookup (no division by a size: exports with dynamic
    sizes)."""
    rows = torch.arange(height, device=flat.device)[:, None].expand(height, width).reshape(-1)
    cols = torch.arange(width, device=flat.device)[None, :].expand(height, width).reshape(-1)
    return torch.stack([rows[flat], cols[flat]], dim=1)


def anchor_target(size: tuple[int, int], patch_size: int | tuple[int, int]) -> tuple[int, int]:
    """Where the anchor's top-left pixel lands: the top-left of the centre token of the grid (for H // p tokens
    on an axis, token (H // p) // 2).

    Example:
        >>> anchor_target((224, 224), 16), anchor_target((40, 36), 4)
        ((112, 112), (20, 16))
    """
    patch = to_pair(patch_size, "patch_size")
    return (size[0] // patch[0] // 2 * patch[0], size[1] // patch[1] // 2 * patch[1])


def _roll_indices(index: torch.Tensor, size: tuple[int, int], target: tuple[int, int]) -> torch.Tensor:
    """(B, H * W) flat source index of each output pixel: output (i, j) reads input (i - t + row, j - t + col)."""
    height, width = size
    rows = _wrap(torch.arange(height, device=index.device) + (index[:, :1] - target[0]), height)
    cols = _wrap(torch.arange(width, device=index.device) + (index[:, 1:] - target[1]), width)
    return (rows[:, :, None] * width + cols[:, None, :]).flatten(1)


def _wrap(i: torch.Tensor, size: int) -> torch.Tensor:
    """``i % size`` for ``i`` in ``[-size, 2 * size)`` (by comparisons: exports with dynamic sizes)."""
    i = torch.where(i < 0, i + size, i)
    return torch.where(i >= size, i - size, i)


def roll_to_anchor(x: torch.Tensor, index: torch.Tensor, patch_size: int | tuple[int, int] = 16) -> torch.Tensor:
    """``x`` rolled circularly, each sample by its own amount, so that the pixel at ``index`` (B, 2) lands on
    :func:`anchor_target`. Gathers the same values (no arithmetic): bit-exact in any dtype.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> roll_to_anchor(x, torch.tensor([[3, 1]]), 2)[0, 0, 2, 2].item()  # target (2, 2) gets pixel (3, 1)
        13.0
    """
    n, c, h, w = x.shape
    flat = _roll_indices(index, (h, w), anchor_target((h, w), patch_size))
    return x.flatten(2).gather(2, flat[:, None, :].expand(n, c, h * w)).view(n, c, h, w)


def patch_anchor2d(x: torch.Tensor, patch_size: int | tuple[int, int] = 16) -> torch.Tensor:
    """Anchor the patch grid of ``x`` (N, C, H, W): roll each sample so its anchor window (largest contrast energy,
    see :func:`patch_anchor_index`) becomes the grid's centre token. The functional twin of :class:`PatchAnchor2d`.

    A circular shift of ``x`` gives the same output, exactly, at any size (not only multiples of ``patch_size``).

    Example:
        >>> x = torch.randn(2, 3, 32, 32)
        >>> torch.equal(patch_anchor2d(x, 4), patch_anchor2d(torch.roll(x, (5, -11), dims=(2, 3)), 4))
        True
    """
    return roll_to_anchor(x, patch_anchor_index(x, patch_size), patch_size)


@register_notrace_module
class PatchAnchor2d(nn.Module):
    """Anchor the patch grid to the input (APS-style, no parameters): roll each sample so its window of largest
    contrast energy becomes the grid's centre token; a patchify model after it is exactly invariant to circular
    shifts of its input.

    Example:
        >>> anchor = PatchAnchor2d(patch_size=4)
        >>> x = torch.randn(2, 3, 32, 32)
        >>> torch.equal(anchor(x), anchor(torch.roll(x, (3, 7), dims=(2, 3))))
        True
    """

    def __init__(self, patch_size: int | tuple[int, int] = 16) -> None:
        super().__init__()
        self.patch_size = tuple(to_pair(patch_size, "patch_size"))

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2) anchor (row, column) of each sample (as :func:`patch_anchor_index`)."""
        return patch_anchor_index(x, self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return roll_to_anchor(x, self.index(x), self.patch_size)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}"


def _soft_roll(x: torch.Tensor, weights: torch.Tensor, target: tuple[int, int]) -> torch.Tensor:
    """The mixture ``sum_u weights[u] * roll_to_anchor(x, u)`` (weights (B, H, W)), as one circular
    cross-correlation through the FFT (differentiable; used for LPS gradients only)."""
    h, w = x.shape[-2:]
    spec = torch.fft.rfft2(x.float()) * torch.fft.rfft2(weights.float()).conj()[:, None]
    mixed = torch.fft.irfft2(spec, s=(h, w))
    return torch.roll(mixed, shifts=target, dims=(2, 3)).to(x.dtype)


@register_notrace_module
class LearnedPatchAnchor2d(PatchAnchor2d):
    """Learned anchoring (LPS-style, Rojas-Gomez et al., NeurIPS 2022): the window score is
    ``log(contrast energy) + g(x)``, ``g`` a per-pixel 1x1-conv scorer averaged over the window, whose last layer
    starts at zero, so an untrained one anchors exactly as :class:`PatchAnchor2d` does. Eval takes the argmax (ties
    broken by the contrast energy, then as APS). Training samples the anchor by Gumbel-max and passes gradients to the
    scorer straight through the Gumbel-softmax mixture of all rolls (temperature ``tau``, annealed by the training
    loop); the forward value is the sampled roll itself.

    Example:
        >>> anchor = LearnedPatchAnchor2d(3, patch_size=4).eval()
        >>> x = torch.randn(2, 3, 32, 32)
        >>> torch.equal(anchor(x), PatchAnchor2d(4)(x))  # untrained, it anchors as APS does
        True
    """

    def __init__(self, in_chans: int, patch_size: int | tuple[int, int] = 16, hidden: int = 8,
                 tau: float = 1.0) -> None:
        super().__init__(patch_size)
        if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
            raise TimmAAError(f"in_chans must be a positive int, got {in_chans!r}")
        self.in_chans = in_chans
        self.tau = tau
        self.scorer = nn.Sequential(nn.Conv2d(in_chans, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))
        nn.init.zeros_(self.scorer[2].weight)
        nn.init.zeros_(self.scorer[2].bias)

    def logits(self, x: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """(B, H, W) learned window scores: ``log(energy) + mean of g over the window``."""
        learned = self.scorer(x).float()
        for dim, (k, size) in enumerate(zip(self.patch_size, x.shape[2:], strict=True), start=2):
            k = k if size >= k else int(size)  # (a guard, not a specialisation, under torch.export)
            learned = _box_sums(learned, (k,), dim)[k] / k
        return energy.clamp_min(1e-12).log() + learned[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "LearnedPatchAnchor2d", channels=self.in_chans)
        scores = anchor_scores(x, self.patch_size)
        logits = self.logits(x, scores[0])
        if not self.training:
            flat = lexicographic_argmax([logits, *scores])
        else:
            noisy = logits - torch.empty_like(logits).exponential_().log()  # + Gumbel(0, 1) noise
            flat = noisy.flatten(1).argmax(dim=1)
            soft = F.softmax(noisy.flatten(1) / self.tau, dim=1).view_as(logits)
        index = _unflatten(flat, x.shape[2], x.shape[3])
        out = roll_to_anchor(x, index, self.patch_size)
        if self.training:
            mixed = _soft_roll(x, soft, anchor_target(tuple(x.shape[2:]), self.patch_size))
            out = out + (mixed - mixed.detach())
        return out

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, {super().extra_repr()}, tau={self.tau}"
