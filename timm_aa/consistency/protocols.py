"""Per-batch shift-consistency measurements (Zhang 2019): each returns per-image results for aggregation.

``predict`` maps a normalised batch (B, 3, S, S) to logits. Inputs ``x`` are normalised (B, 3, R, R)
images; crops of size ``S`` are cut from them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .shifts import crop_at, roll_each

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
