"""Whether a model takes images of a given size: one forward pass of a blank image before the real work.

Vision transformers built for 224x224 assert on other sizes, deep CNNs fail on tiny ones: found up front,
it is one clear error instead of a traceback from deep inside the model, minutes into a run.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import TimmAAError, first_line


def check_input_size(model: nn.Module, size: int, setting: str, name: str | None = None) -> None:
    """Run a blank ``(1, 3, size, size)`` image through ``model`` (eval mode, no gradients); if the model
    cannot take it, raise TimmAAError naming ``setting`` (how the size was chosen, e.g. ``'input_size=32'``).

    Example:
        >>> import timm
        >>> check_input_size(timm.create_model('resnet18'), 64, 'input_size=64')
        >>> check_input_size(timm.create_model('vit_tiny_patch16_224'), 32, 'input_size=32')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: input_size=32: vit_tiny_patch16_224 cannot take 32x32 images (AssertionError: \
Input height (32) doesn't match model (224).); use a size it takes (its own is 224x224)
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = name or cfg.get("architecture") or type(model).__name__
    param = next(model.parameters(), None)
    x = torch.zeros(1, 3, size, size, device=param.device if param is not None else "cpu",
                    dtype=param.dtype if param is not None and param.is_floating_point() else torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except (AssertionError, RuntimeError, ValueError) as err:
        own = cfg.get("input_size")
        hint = f" (its own is {own[-2]}x{own[-1]})" if own else ""
        detail = first_line(err)
        raise TimmAAError(f"{setting}: {name} cannot take {size}x{size} images ({type(err).__name__}: {detail}); "
                          f"use a size it takes{hint}") from err
    finally:
        model.train(was_training)
