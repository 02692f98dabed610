"""Validation during training: top-1 on the center crop and random-shift consistency, across processes.

Offsets are drawn per image (indexed by the dataset position, see ``timm_aa.consistency.shifts``), so
the numbers do not depend on the batch size or the number of processes, and every val image is
counted exactly once (``gather_for_metrics``).
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from ..consistency import center_crop, draw_offsets, random_agreement


def evaluate_model(
    model: nn.Module,
    loader: DataLoader,
    accelerator: Accelerator,
    crop: int,
    num_items: int,
    *,
    seed: int = 0,
    passes: int = 1,
) -> dict[str, float]:
    """``{'top1', 'consistency', 'num_samples', 'num_unique_samples'}`` over the whole validation set.

    Example:
        >>> from accelerate import Accelerator
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> images, labels = torch.rand(4, 3, 40, 40), torch.tensor([0, 1, 0, 1])
        >>> loader = DataLoader(TensorDataset(images, labels, torch.arange(4)), batch_size=2)
        >>> net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
        >>> metrics = evaluate_model(net, loader, Accelerator(), crop=32, num_items=4)
        >>> metrics['num_samples'], metrics['num_unique_samples']
        (4, 4)
    """
    model.eval()
    batches = []  # per batch, gathered from every process: (hit, same, idx)
    tables = None
    with torch.inference_mode():
        for x, y, idx in loader:
            if tables is None:
                tables = [draw_offsets(seed, p, num_items, x.shape[-1] - crop) for p in range(passes)]
            hit = model(center_crop(x, crop)).argmax(1) == y
            same = torch.stack(
                [random_agreement(model, x, t[idx.cpu()].to(x.device), crop) for t in tables], 1
            )
            batches.append([t.cpu() for t in accelerator.gather_for_metrics((hit, same, idx))])
    correct, agree, seen = (torch.cat(column) for column in zip(*batches, strict=True))
    return {
        "top1": 100.0 * correct.double().mean().item(),
        "consistency": 100.0 * agree.double().mean().item(),
        "num_samples": int(seen.numel()),
        "num_unique_samples": int(seen.unique().numel()),
    }
