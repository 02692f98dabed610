"""Per-batch shift-consistency measurements: each returns per-image results for aggregation.

Zhang (ICML 2019): random crops, diagonal sweeps, circular shifts; after Michaeli et al. (CVPR 2023): fractional
circular shifts and the worst case over a grid of shifts or crop offsets (an image is consistent only if no shift
changes its top-1 class). ``predict`` maps a normalised batch (B, 3, S, S) to logits. Inputs ``x`` are normalised
(B, 3, R, R) images; crops of size ``S`` are cut from them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .shifts import crop_at, fractional_roll, roll_each

Predict = Callable[[torch.Tensor], torch.Tensor]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The centred ``size x size`` crop (offset ``(R - S) // 2`` on each axis).

    Example:
        >>> center_crop(torch.zeros(1, 3, 256, 256), 224).shape
        torch.Size([1, 3, 224, 224])
    """
    oy, ox = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[:, :, oy : oy + size, ox : ox + size]


def random_agreement(predict: Predict, x: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Whether the top-1 class agrees between two crops per image; ``offsets`` rows are ``(y1, x1, y2, x2)``.

    Example:
        >>> net = lambda t: t.mean((2, 3))
        >>> random_agreement(net, torch.rand(2, 3, 8, 8), torch.zeros(2, 4, dtype=torch.long), 4).tolist()
        [True, True]
    """
    first = predict(crop_at(x, offsets[:, :2], size)).argmax(1)
    second = predict(crop_at(x, offsets[:, 2:], size)).argmax(1)
    return first == second


def circular_agreement(predict: Predict, crops: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Whether the top-1 class agrees between two circular shifts of each crop; rows ``(dy1, dx1, dy2, dx2)``.

    Example:
        >>> net = lambda t: t.mean((2, 3))
        >>> circular_agreement(net, torch.rand(2, 3, 4, 4), torch.tensor([[1, 2, 3, 0]] * 2)).tolist()
        [True, True]
    """
    first = predict(roll_each(crops, shifts[:, :2])).argmax(1)
    second = predict(roll_each(crops, shifts[:, 2:])).argmax(1)
    return first == second


def fractional_agreement(predict: Predict, crops: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Whether the top-1 class agrees between two fractional circular shifts of each crop (Fourier phase shifts,
    :func:`~timm_aa.consistency.fractional_roll`); real rows ``(dy1, dx1, dy2, dx2)``. Integer rows give exactly
    :func:`circular_agreement`'s result.

    Example:
        >>> net = lambda t: t.mean((2, 3))  # the mean is the DC bin: no shift changes it
        >>> fractional_agreement(net, torch.rand(2, 3, 4, 4), torch.tensor([[0.5, 1.25, 3.7, 0.]] * 2)).tolist()
        [True, True]
    """
    first = predict(fractional_roll(crops, shifts[:, :2])).argmax(1)
    second = predict(fractional_roll(crops, shifts[:, 2:])).argmax(1)
    return first == second


def shift_grid(max_shift: int, steps: int = 1) -> torch.Tensor:
    """Every shift ``(dy, dx)`` in ``[-max_shift, max_shift]**2`` with step ``1 / steps``, (0, 0) first: the
    adversarial protocol's grid, ``(2 * max_shift * steps + 1)**2`` rows (float64).

    Example:
        >>> grid = shift_grid(1, steps=2)
        >>> len(grid), grid[0].tolist(), grid[1].tolist()
        (25, [0.0, 0.0], [-1.0, -1.0])
    """
    axis = torch.arange(-max_shift * steps, max_shift * steps + 1, dtype=torch.float64) / steps
    grid = torch.cartesian_prod(axis, axis)
    return torch.cat([grid.new_zeros(1, 2), grid[(grid != 0).any(1)]])


def crop_grid(max_offset: int) -> torch.Tensor:
    """Every crop offset ``(y, x)`` in ``[0, max_offset]**2``, the centre ``(max_offset // 2, ...)`` first: the
    adversarial-crop protocol's grid, ``(max_offset + 1)**2`` rows.

    Example:
        >>> grid = crop_grid(32)
        >>> len(grid), grid[0].tolist()
        (1089, [16, 16])
    """
    axis = torch.arange(max_offset + 1)
    grid = torch.cartesian_prod(axis, axis)
    centre = (grid == max_offset // 2).all(1)
    return torch.cat([grid[centre], grid[~centre]])


def _sweep(predict: Predict, views: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], count: int,
           grid: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Top-1 class of each of ``count`` images at each grid row, (count, G): ``views(images, rows)`` makes the
    inputs, ``batch_size`` (image, row) pairs per forward pass."""
    size = len(grid)
    preds = torch.empty(count * size, dtype=torch.long)
    for start in range(0, count * size, batch_size):
        pairs = torch.arange(start, min(start + batch_size, count * size))
        preds[start : start + len(pairs)] = predict(views(pairs // size, grid[pairs % size])).argmax(1).cpu()
    return preds.view(count, size)


def adversarial_shifts(predict: Predict, crops: torch.Tensor, grid: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Top-1 class of each crop (B, 3, S, S) at every circular shift of ``grid`` (G, 2) (fractional rows as Fourier
    phase shifts), (B, G); the shifted copies of many images go through the model ``batch_size`` at a time.

    Example:
        >>> net = lambda t: t.mean((2, 3))
        >>> preds = adversarial_shifts(net, torch.rand(2, 3, 8, 8), shift_grid(1, steps=2), batch_size=16)
        >>> preds.shape, bool((preds == preds[:, :1]).all())  # the mean: the same class at every shift
        (torch.Size([2, 25]), True)
    """
    return _sweep(predict, lambda images, rows: fractional_roll(crops[images], rows), len(crops), grid, batch_size)


def adversarial_crops(predict: Predict, x: torch.Tensor, offsets: torch.Tensor, size: int,
                      batch_size: int) -> torch.Tensor:
    """Top-1 class of each image (B, 3, R, R) cropped ``size x size`` at every offset (G, 2), (B, G), in batches
    of ``batch_size`` crops.

    Example:
        >>> net = lambda t: t[:, :, 0, 0]  # the top-left pixel: moves with the crop
        >>> adversarial_crops(net, torch.rand(2, 3, 6, 6), crop_grid(2), 4, batch_size=8).shape
        torch.Size([2, 9])
    """
    return _sweep(predict, lambda images, rows: crop_at(x[images], rows, size), len(x), offsets, batch_size)


def diagonal_sweep(
    predict: Predict, x: torch.Tensor, size: int, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability of ``target`` and top-1 class at each diagonal offset ``(o, o)``, ``o = 0..R-S``.

    Returns ``(probs, preds)``, both (B, R - S + 1).

    Example:
        >>> net = lambda t: t.mean((2, 3))
        >>> probs, preds = diagonal_sweep(net, torch.rand(2, 3, 6, 6), 4, torch.tensor([0, 1]))
        >>> probs.shape
        torch.Size([2, 3])
    """
    probs, preds = [], []
    for o in range(x.shape[-1] - size + 1):
        logits = predict(x[:, :, o : o + size, o : o + size]).float()
        probs.append(logits.softmax(1).gather(1, target[:, None])[:, 0])
        preds.append(logits.argmax(1))
    return torch.stack(probs, 1), torch.stack(preds, 1)
