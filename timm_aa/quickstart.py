"""The quick-start check behind ``scripts/quickstart.py``: conversion keeps weights, shifts move outputs less."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .convert.antialias import antialias
from .errors import TimmAAError
from .infra.bounds import check_values
from .loading import check_model_name, create_model_from_spec


@dataclass
class QuickstartResult:
    """What :func:`run_quickstart` found: the extra parameters (0: weights load unchanged) and the mean relative
    logit change under 1..8 pixel shifts, baseline and anti-aliased."""

    model: str
    filt_size: int
    pretrained: bool
    extra_parameters: int
    baseline: float
    antialiased: float


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


def run_quickstart(name: str, filt_size: int, seed: int, pretrained: bool = False) -> QuickstartResult:
    """Build ``name`` (random weights unless ``pretrained``), anti-alias a copy, load the baseline weights into it
    strictly, and measure both models' shift sensitivity on a smooth random image.

    Example:
        >>> result = run_quickstart('resnet18', filt_size=4, seed=0)
        >>> result.extra_parameters, result.antialiased < result.baseline  # weights load unchanged; shifts move less
        (0, True)
    """
    check_values({"model": name, "filt_size": filt_size, "seed": seed, "pretrained": pretrained})
    check_model_name(name)
    torch.manual_seed(seed)
    base = create_model_from_spec(name, pretrained=pretrained).eval()  # timm's weights, reached without hanging
    try:
        model = antialias(copy.deepcopy(base), filt_size=filt_size).eval()
    except TimmAAError as err:  # what antialias() cannot convert, in its own words (the arguments are checked above)
        raise TimmAAError(f"{name}: {err}") from None
    model.load_state_dict(base.state_dict(), strict=True)
    extra = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in base.parameters())
    # A smooth random image (low-pass noise), so that shifting it is not itself aliased.
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 30, 30), size=(232, 232), mode="bicubic")
    return QuickstartResult(name, filt_size, pretrained, extra, shift_sensitivity(base, x), shift_sensitivity(model, x))
