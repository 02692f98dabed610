"""Patch-grid anchoring: exact invariance to circular shifts for patchify models (ViT, Swin, Mixer, ...).

Re-implemented from the idea of polyphase anchoring (Ding et al., arXiv:2306.07470; Rojas-Gomez et al., CVPR 2024,
arXiv:2305.16316): choose the patch grid's offset, and the token order, by an argmax of a shift-equivariant score, so
that a shifted input gives the same tokens. Here both choices are one: the anchor is the ``patch_size`` window of the
input with the largest *contrast energy* (the squared deviations of its values, all pixels and channels, from their
mean, summed), and the input is rolled circularly so that this window becomes the token at the grid's centre. A circular
shift of the input moves the anchor by the same amount, so the rolled image is the same tensor: everything after it
(patch embedding, position embeddings, windows, patch merging) sees identical values, and the logits are exactly
invariant, for any input size and any later layer.

Exactness in floating point: every window's sums are built from the same values in the same order wherever the
window sits (box sums by doubling on a circularly extended map: roll-free slices and adds), so the scores move with
the image bit for bit. Ties (equal maxima, e.g. a small blob on a flat background fits in several windows, or
blocky digits) are broken among the :data:`TIE_CANDIDATES` best windows by, in turn: the contrast energy of the window
three patches wide centred on each; a staircase of the raw energy ``sum_c x**2`` over its top-left 1, 2, 4, ...
pixel-wide sub-windows (which tells the windows a blob fits in apart); the smallest flat index. A flat image ties
everywhere, but every roll of it is the same image. What is left (two distinct windows equal on all three scores, or
more than 64 tied windows) was never seen on natural, random or digit images (tests/test_patchify.py).

Cost: a float32 (B, 2, H, W) summary of the input (the channel sum and the sum of squares), box sums by doubling
(2 log2(p) adds), a top-k and a few gathers: about 3% of a ViT-S/16 forward pass (benchmarks/bench_models.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from torch import nn

from .helpers import check_count, check_input, to_pair
from .polyphase import GumbelTau, zero_scorer

#: how many of the best windows the tie-breaks compare
TIE_CANDIDATES = 64


def _doublings(m: torch.Tensor, width: int, dim: int) -> dict[int, torch.Tensor]:
    """Circular box sums of ``m`` along ``dim`` for the power-of-two widths up to ``width``: ``out[w]`` holds
    ``sum(m[u : u + w])`` (indices modulo the size) at every ``u`` in ``[0, size + width - w)``. Built by doubling on
    the circularly extended map (slices and adds), so every position adds the same values in the same order."""
    ext = torch.cat([m, m.narrow(dim, 0, width - 1)], dim=dim) if width > 1 else m
    sums = {1: ext}
    w = 1
    while 2 * w <= width:
        length = sums[w].shape[dim] - w
        sums[2 * w] = sums[w].narrow(dim, 0, length) + sums[w].narrow(dim, w, length)
        w *= 2
    return sums


def _box(sums: dict[int, torch.Tensor], width: int, dim: int, size: int) -> torch.Tensor:
    """The circular box sum of ``width`` at positions ``[0, size)``, from :func:`_doublings`: its binary parts added
    from the widest, ``sum(m[u : u + 8]) + sum(m[u + 8 : u + 12]) + ...``."""
    total, offset = None, 0
    for power in sorted(sums, reverse=True):
        if width - offset >= power:
            part = sums[power].narrow(dim, offset, size)
            total, offset = part if total is None else total + part, offset + power
    return total


def _clamp(patch: tuple[int, int], x: torch.Tensor) -> tuple[int, int]:
    """The window: the patch, or half the image where the patch is larger (a window as large as the image would score
    every position alike). A guard, not a specialisation, under torch.export."""
    return tuple(p if size >= p else max(1, int(size) // 2) for p, size in zip(patch, x.shape[2:], strict=True))


def _energy(stats: torch.Tensor, count: int, channels: int) -> torch.Tensor:
    """Contrast energy of windows from their sums (B, 2, ...) over ``count`` pixels of ``sum_c x`` and
    ``sum_c x**2``: the sum of the squared deviations from the window's mean (``count * C`` times the variance of
    the window's values). Not ``addcmul``: its ``value`` must be a constant, and under the TorchScript ONNX exporter
    ``count`` is a traced size."""
    return stats[:, 1] - stats[:, 0].square() / (count * channels)


def _unflatten(flat: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of flat indices into (H, W), by lookup (no division by a size: exports with dynamic sizes)."""
    rows = torch.arange(height, device=flat.device)[:, None].expand(height, width).reshape(-1)
    cols = torch.arange(width, device=flat.device)[None, :].expand(height, width).reshape(-1)
    return rows[flat], cols[flat]


def _wrap(i: torch.Tensor, size: int) -> torch.Tensor:
    """``i % size`` for ``i`` in ``[-size, 2 * size)`` (by comparisons: exports with dynamic sizes)."""
    i = torch.where(i < 0, i + size, i)
    return torch.where(i >= size, i - size, i)


def _gather(maps: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``maps`` (B, K, H, W) at per-sample positions (B, N): (B, K, N); positions wrap around."""
    height, width = maps.shape[-2:]
    flat = _wrap(rows, height) * width + _wrap(cols, width)
    return maps.flatten(2).gather(2, flat[:, None, :].expand(-1, maps.shape[1], -1))


class _Scores:
    """The anchor's scores for one input: the contrast energy of the window at every position, and, at chosen
    candidate positions, the tie-breaks (see the module's docstring)."""

    def __init__(self, x: torch.Tensor, patch: tuple[int, int]) -> None:
        self.patch = _clamp(patch, x)
        self.size = tuple(x.shape[2:])
        self.channels = x.shape[1]
        xf = x.detach().float()  # a choice of index: no gradient flows through the scores
        stats = torch.stack([xf.sum(dim=1), xf.square().sum(dim=1)], dim=1)  # (B, 2, H, W)
        (ph, pw), (h, w) = self.patch, self.size
        self.rows = _doublings(stats, ph, dim=2)
        self.box = _box(_doublings(_box(self.rows, ph, 2, h), pw, dim=3), pw, 3, w)  # (B, 2, H, W) window sums
        self.energy = _energy(self.box, ph * pw, self.channels)

    def tie_breaks(self, rows: torch.Tensor, cols: torch.Tensor) -> list[torch.Tensor]:
        """(B, N) scores of the windows at (rows, cols): the 3-patch-wide contrast energy, the staircase. Each is one
        gather per map, summed over a trailing axis of the same length for every window (the same order)."""
        (ph, pw), h = self.patch, self.size[0]
        n, k = rows.shape
        steps = torch.tensor([-1, 0, 1], device=rows.device)
        near_r = (rows[:, :, None, None] + ph * steps[:, None]).expand(n, k, 3, 3).reshape(n, -1)
        near_c = (cols[:, :, None, None] + pw * steps[None, :]).expand(n, k, 3, 3).reshape(n, -1)
        wide = _gather(self.box, near_r, near_c).view(n, 2, k, 9).sum(dim=-1)
        stairs = 0
        for w, sums in self.rows.items():
            if w <= min(ph, pw):
                squares = sums[:, 1:].narrow(2, 0, h)  # (B, 1, H, W): sums of sum_c x**2 over w rows
                span = torch.arange(w, device=rows.device)
                at_r = rows[:, :, None].expand(n, k, w).reshape(n, -1)
                at_c = (cols[:, :, None] + span).reshape(n, -1)
                stairs = stairs + _gather(squares, at_r, at_c).view(n, k, w).sum(dim=-1)
        return [_energy(wide, 9 * ph * pw, self.channels), stairs]

    def choose(self, primary: torch.Tensor, others: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
        """(B, 2) (row, column) of the best window by ``primary`` (B, H, W), ties broken by the ``others`` maps,
        then the tie-breaks, then the smallest flat index, among the :data:`TIE_CANDIDATES` best."""
        h, w = self.size
        values, flat = primary.flatten(1).topk(min(TIE_CANDIDATES, h * w), dim=1)
        rows, cols = _unflatten(flat, h, w)
        levels = [values, *(o.flatten(1).gather(1, flat) for o in others), *self.tie_breaks(rows, cols), -flat.float()]
        best = levels[0]
        for nxt in levels[1:]:
            best = torch.where(best == best.amax(dim=1, keepdim=True), nxt, torch.full_like(nxt, -float("inf")))
        pick = best.argmax(dim=1, keepdim=True)
        return torch.cat([rows.gather(1, pick), cols.gather(1, pick)], dim=1)


def patch_anchor_index(x: torch.Tensor, patch_size: int | tuple[int, int] = 16) -> torch.Tensor:
    """(B, 2) long: per sample, the (row, column) of the top-left pixel of its anchor window (the ``patch_size``
    window of largest contrast energy; ties as the module's docstring says). Shift-equivariant: rolling ``x`` by
    (a, b) adds (a, b) modulo (H, W).

    Example:
        >>> x = torch.zeros(1, 1, 8, 8); x[0, 0, 5, 2] = 1.0
        >>> patch_anchor_index(x, 2).tolist()  # the four 2x2 windows holding it tie: the one it starts wins
        [[5, 2]]
    """
    check_input(x, "patch_anchor_index")
    scores = _Scores(x, tuple(to_pair(patch_size, "patch_size")))
    return scores.choose(scores.energy)


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
class LearnedPatchAnchor2d(GumbelTau, PatchAnchor2d):
    """Learned anchoring (LPS-style, Rojas-Gomez et al., NeurIPS 2022): the window score is
    ``log(contrast energy) + g(x)``, ``g`` a per-pixel 1x1-conv scorer averaged over the window, whose last layer
    starts at zero, so an untrained one anchors exactly as :class:`PatchAnchor2d` does. Eval takes the argmax (ties
    broken by the contrast energy, then as APS does). Training samples the anchor by Gumbel-max and passes gradients
    to the scorer straight through the Gumbel-softmax mixture of all rolls (temperature ``tau``, annealed by the
    training loop); the forward value is the sampled roll itself.

    Example:
        >>> anchor = LearnedPatchAnchor2d(3, patch_size=4).eval()
        >>> x = torch.randn(2, 3, 32, 32)
        >>> torch.equal(anchor(x), PatchAnchor2d(4)(x))  # untrained, it anchors as APS does
        True
    """

    def __init__(self, in_chans: int, patch_size: int | tuple[int, int] = 16, hidden: int = 8,
                 tau: float = 1.0) -> None:
        super().__init__(patch_size)
        self.in_chans = check_count(in_chans, "in_chans")
        self.tau = tau
        self.scorer = zero_scorer(in_chans, hidden)

    def logits(self, x: torch.Tensor, scores: _Scores) -> torch.Tensor:
        """(B, H, W) learned window scores: ``log(contrast energy) + mean of g over the window``."""
        (ph, pw), (h, w) = scores.patch, scores.size
        learned = _box(_doublings(self.scorer(x).float(), ph, dim=2), ph, 2, h)
        learned = _box(_doublings(learned, pw, dim=3), pw, 3, w)[:, 0] / (ph * pw)
        return scores.energy.clamp_min(1e-12).log() + learned

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "LearnedPatchAnchor2d", channels=self.in_chans)
        scores = _Scores(x, self.patch_size)
        logits = self.logits(x, scores)
        if not self.training:
            return roll_to_anchor(x, scores.choose(logits, (scores.energy,)), self.patch_size)
        noisy = logits - torch.empty_like(logits).exponential_().log()  # + Gumbel(0, 1) noise: a sample
        rows, cols = _unflatten(noisy.flatten(1).argmax(dim=1), x.shape[2], x.shape[3])
        out = roll_to_anchor(x, torch.stack([rows, cols], dim=1), self.patch_size)
        soft = F.softmax(noisy.flatten(1) / self.tau, dim=1).view_as(logits)
        mixed = _soft_roll(x, soft, anchor_target(tuple(x.shape[2:]), self.patch_size))
        return out + (mixed - mixed.detach())  # the sampled roll's values, the mixture's gradients

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, {super().extra_repr()}, tau={self.tau}"
