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


def check_device(name: str, setting: str = "device") -> torch.device:
    """The torch device ``name`` names, if this machine has it; else one TimmAAError naming ``setting``, the value
    and what to use instead (never torch's own traceback from the first tensor moved there).

    Example:
        >>> check_device('cpu')
        device(type='cpu')
        >>> check_device('gpu')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: device='gpu' is not a torch device name: use cpu, cuda or cuda:N
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise TimmAAError(f"{setting}={name!r} is not a torch device name: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise TimmAAError(f"{setting}={name!r}: this machine has no CUDA GPU that torch {torch.__version__} can "
                              "use: use device='cpu'")
        if device.index is not None and device.index >= count:
            raise TimmAAError(f"{setting}={name!r}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise TimmAAError(f"{setting}={name!r}: this machine has no MPS device: use device='cpu'")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise TimmAAError(f"{setting}={name!r}: timm-aa runs on cpu, cuda or mps devices")
    return device
