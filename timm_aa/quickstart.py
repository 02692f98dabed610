"""The quick-start check behind ``scripts/quickstart.py``: conversion keeps weights, shifts move outputs less."""

from __future__ import annotations

import copy

import timm
import torch

from .antialias import antialias


def shift_sensitivity(model: torch.nn.Module, x: torch.Tensor, max_shift: int = 8) -> float:
    """Mean relative change of the logits when the input is shifted by 1..``max_shift`` pixels diagonally.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.AdaptiveAvgPool2d(1))
        >>> round(shift_sensitivity(net.eval(), torch.rand(1, 3, 40, 40)), 2) < 0.1
        True
    """
    size = x.shape[-1] - max_shift
    with torch.inference_mode():
        ref = model(x[..., :size, :size])
        changes = [
            ((model(x[..., s : s + size, s : s + size]) - ref).norm() / ref.norm()).item()
            for s in range(1, max_shift + 1)
        ]
    return sum(changes) / len(changes)


def run_quickstart(name: str = "resnet50", filt_size: int = 4, seed: int = 0) -> dict[str, float]:
    """Build ``name``, anti-alias a copy, load the baseline weights strictly, and print shift sensitivities."""
    torch.manual_seed(seed)
    base = timm.create_model(name).eval()
    model = antialias(copy.deepcopy(base), filt_size=filt_size).eval()
    model.load_state_dict(base.state_dict(), strict=True)
    extra = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in base.parameters())
    print(f"{name}: converted with filt_size={filt_size}; baseline weights load strictly; extra parameters: {extra}")
    # A smooth random image (low-pass noise), so that shifting it is not itself aliased.
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 30, 30), size=(232, 232), mode="bicubic")
    out = {"baseline": shift_sensitivity(base, x), "anti-aliased": shift_sensitivity(model, x)}
    for label, value in out.items():
        print(f"  {label:>13}: mean relative logit change under 1..8 px shifts = {value:.4f}")
    return out
