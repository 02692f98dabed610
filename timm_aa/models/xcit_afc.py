"""The alias-free XCiT (Michaeli & Soudry, "Alias-Free ViT: Fractional Shift Invariance via Linear Attention",
NeurIPS 2025, arXiv:2510.22673): timm's ``xcit_nano_12_p16_224`` converted by ``alias_free()``
(:mod:`timm_aa.convert.alias_free_xcit`), exactly invariant (in eval mode) to circular shifts of the input by fractional
amounts as well as integers.

Every parameter keeps timm's name; the position encoding is gone (its ``pos_embed.token_projection`` weights are the
only ones of timm's model that do not load) and the polynomial activations add one ``coefficients`` (C, 3) tensor
each (27 in the nano: three in the patch embedding, two per block). ``pretrained=True`` loads timm's weights of the
base model (its default tag) into every other parameter; the coefficients keep their fitted values, so the model
starts from a polynomial approximation of the base network (and a Taylor-softmax class attention, without the
position encoding) and needs fine-tuning before its accuracy means anything.

``xcit_nano_4_p8_40_afc`` is a small sibling for the digits demo (40 px crops: patches of 8, 4 blocks), trained from
scratch.

With no position encoding, any input size works (``img_size`` only sets the recorded default); a side that is not a
multiple of 16 gives ``ceil(side / 16)`` tokens, still exactly invariant.
"""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from timm.models.xcit import checkpoint_filter_fn
from torch import nn

from ._builders import build_afc_model
from ._cfgs import base_cfg

AF_VIT_PAPER = dict(paper_ids="arXiv:2510.22673",
                    paper_name="Alias-Free ViT: Fractional Shift Invariance via Linear Attention")

#: ``xcit_nano_4_p8_40_afc``'s layout: the nano's width (128, 4 heads), 4 blocks, patches of 8 px, 40 px inputs
DIGITS = dict(depth=4, img_size=40)

default_cfgs = generate_default_cfgs({
    "xcit_nano_12_p16_224_afc": base_cfg("xcit_nano_12_p16_224", weights=True, fixed_input_size=False,
                                         **AF_VIT_PAPER),
    "xcit_nano_4_p8_40_afc": base_cfg("xcit_nano_12_p8_224", input_size=(3, 40, 40), fixed_input_size=False,
                                      **AF_VIT_PAPER),
})


@register_model
def xcit_nano_12_p16_224_afc(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """XCiT-nano/16, alias-free (alias-free patch embedding, activations and layer norms, circular convolutions, no
    position encoding, Taylor-softmax class attention); ``pretrained=True`` loads timm's ``xcit_nano_12_p16_224``
    weights into every parameter but the activations' coefficients."""
    return build_afc_model("xcit_nano_12_p16_224_afc", "xcit_nano_12_p16_224", pretrained,
                      base_filter=checkpoint_filter_fn, **kwargs)


@register_model
def xcit_nano_4_p8_40_afc(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """A small alias-free XCiT for the digits demo's 40 px crops (5x5 tokens): ``xcit_nano_12_p8_224``'s layout with 4
    blocks, converted as ``xcit_nano_12_p16_224_afc`` is; no pretrained weights (timm has none of this depth)."""
    return build_afc_model("xcit_nano_4_p8_40_afc", "xcit_nano_12_p8_224", pretrained, base_filter=checkpoint_filter_fn,
                      **dict(DIGITS, **kwargs))
