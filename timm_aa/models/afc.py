"""Alias-free models (AFC: Michaeli, Michaeli & Soudry, CVPR 2023): timm's ResNet-18 and ConvNeXt-Tiny converted by
``alias_free()``, exactly invariant (in eval mode) to circular shifts of the input by fractional amounts as well as
integers.

Every parameter keeps timm's name; the only new ones are the polynomial activations' ``coefficients`` (one (C, 3)
tensor per activation, fitted to ReLU or GELU). ``pretrained=True`` loads timm's weights of the base model (its
default tag) into every other parameter; the coefficients keep their fitted starting values, so the model computes
a polynomial approximation of the base network and needs fine-tuning before its accuracy means anything.

``act_scale`` is the standard deviation of the inputs the polynomials are fitted for (``fit_polynomial``):
ConvNeXt's activation follows a layer norm and a linear layer (1.0), but a BasicBlock's second activation takes the
residual stream, which the polynomial squares block after block. ``resnet18_afc`` defaults to 2.0 (ReLU fit
``0.399 + 0.5 x + 0.0997 x**2``): on the demo's digits (AdamW 2e-3, batch 64, from scratch) it reached 92% training
accuracy in 30 steps, while 1.0 stayed at chance (loss 2.3-4.3).
"""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builders import build_afc_model
from ._cfgs import base_cfg

AFC_PAPER = dict(paper_ids="arXiv:2303.08085",
                 paper_name="Alias-Free Convnets: Fractional Shift Invariance via Polynomial Activations")

#: resnet18_afc's polynomial fit, for the residual stream's larger inputs (see the module's notes)
RESNET_AFC = dict(act_scale=2.0)

default_cfgs = generate_default_cfgs({
    "resnet18_afc": base_cfg("resnet18", weights=True, **AFC_PAPER),
    "convnext_tiny_afc": base_cfg("convnext_tiny", weights=True, **AFC_PAPER),
})


@register_model
def resnet18_afc(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-18, alias-free (polynomial activations fitted for ``act_scale=2``, ideal downsampling, circular
    convolutions); ``pretrained=True`` loads timm's ``resnet18`` weights into every parameter but the activations'
    coefficients."""
    return build_afc_model("resnet18_afc", "resnet18", pretrained, **dict(RESNET_AFC, **kwargs))


@register_model
def convnext_tiny_afc(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ConvNeXt-Tiny, alias-free (the paper's model and layer norm); ``pretrained=True``
    loads timm's ``convnext_tiny`` weights into every parameter but the activations' coefficients."""
    return build_afc_model("convnext_tiny_afc", "convnext_tiny", pretrained, **kwargs)
