"""Round-trip check of a Hub folder: timm (``local-dir:``) and transformers must reproduce the source logits."""

from __future__ import annotations

import os

import timm
import torch
from torch import nn

from ..errors import TimmAAError


class VerificationError(TimmAAError):
    """A Hub folder does not reproduce its source model."""


def verify_folder(folder: str, source: nn.Module, atol: float = 1e-5) -> dict[str, float]:
    """Load ``folder`` with timm and with transformers; return each one's max abs logit difference to
    ``source``, raising :class:`VerificationError` when one exceeds ``atol`` or fails to load.

    Example:
        >>> import tempfile, timm, timm_aa
        >>> from timm_aa.hub import write_export
        >>> model = timm.create_model('resnet18_aa', num_classes=2)
        >>> verify_folder(write_export(model, tempfile.mkdtemp() + '/x'), model)
        {'timm': 0.0, 'transformers': 0.0}
    """
    source = source.eval()
    cfg = getattr(source, "pretrained_cfg", None) or {}
    size = tuple(cfg.get("input_size", (3, 224, 224)))
    x = torch.randn((2, *size), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = source(x)
    diffs = {}
    try:
        loaded = timm.create_model(f"local-dir:{os.path.abspath(folder)}", pretrained=True).eval()
        with torch.inference_mode():
            diffs["timm"] = (loaded(x) - expected).abs().max().item()
    except Exception as err:
        raise VerificationError(f"timm cannot load {folder!r}: {type(err).__name__}: {err}") from err
    try:
        from transformers import AutoModelForImageClassification

        hf = AutoModelForImageClassification.from_pretrained(os.path.abspath(folder)).eval()
        with torch.inference_mode():
            diffs["transformers"] = (hf(pixel_values=x).logits - expected).abs().max().item()
    except Exception as err:
        raise VerificationError(f"transformers cannot load {folder!r}: {type(err).__name__}: {err}") from err
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    if bad:
        raise VerificationError(f"{folder!r} does not reproduce the source model: max abs logit differences {bad} "
                                f"exceed {atol}")
    return diffs
