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
    seed: int = 0,
    passes: int = 1,
) -> dict[str, float]:
    """``{'top1', 'consistency', 'num_samples'}`` over the whole validation set.

    Example:
        >>> # metrics = evaluate_model(model, val_loader, accelerator, crop=224, num_items=len(val_set))
    """
    model.eval()
    correct, agree, seen = [], [], []
    tables = None
    with torch.inference_mode():
        for x, y, idx in loader:
            if tables is None:
                max_offset = x.shape[-1] - crop
                tables = [draw_offsets(seed, p, num_items, max_offset) for p in range(passes)]
            hit = model(center_crop(x, crop)).argmax(1) == y
            same = torch.stack(
                [random_agreement(model, x, t[idx.cpu()].to(x.device), crop) for t in tables], 1
            )
            hit, same, idx = accelerator.gather_for_metrics((hit, same, idx))
            correct.append(hit.cpu())
            agree.append(same.cpu())
            seen.append(idx.cpu())
    seen_all = torch.cat(seen)
    return {
        "top1": 100.0 * torch.cat(correct).double().mean().item(),
        "consistency": 100.0 * torch.cat(agree).double().mean().item(),
        "num_samples": int(seen_all.numel()),
        "num_unique_samples": int(seen_all.unique().numel()),
    }
