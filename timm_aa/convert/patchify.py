"""Patchify models made exactly invariant to circular shifts: the patch grid and token order anchored to the input.

``antialias(model, 'aps')`` on one of timm's patchify families (:data:`PATCHIFY_FAMILIES`: ViT, DeiT, EVA, BEiT,
CaiT, ConViT, ConvMixer, MLP-Mixer/gMLP/ResMLP, Hiera, SAM's ViT, Swin, SwinV2, SwinV2-CR, ViT with relative
positions, TNT, NaFlexViT and the DeepSeek, Gemma 4 and Qwen3 vision towers) anchors the module that first takes
the image, its patch embedding (:func:`anchor_site` names it per family): that module's class is swapped for a
subclass (``Anchored*``) that rolls the image with :class:`~timm_aa.layers.PatchAnchor2d` (APS-style, no parameters)
or :class:`~timm_aa.layers.LearnedPatchAnchor2d` (LPS) before running the original forward. Parameter names do not
change, so timm's state dict loads with ``strict=True`` (APS); the anchor sits inside the patch embedding, so
``forward``, ``forward_features``, ``forward_intermediates`` and ``features_only`` models all get it. Intermediate
features come out in the anchored frame (invariant to a shift, not moving with it): the anchor of an input is
``model.<embed>.anchor.index(x)`` (docs/layers.md, "Patchify models").
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import PatchEmbed
from timm.models.gemma4_vit import Gemma4PatchEmbed
from timm.models.hiera import PatchEmbed as HieraPatchEmbed
from timm.models.naflexvit import NaFlexEmbeds
from timm.models.swin_transformer_v2_cr import PatchEmbed as SwinV2CrPatchEmbed
from timm.models.tnt import PixelEmbed
from torch import nn

from ..errors import TimmAAError
from ..infra.timm_private import FeatureGetterNet
from ..layers import LearnedPatchAnchor2d, PatchAnchor2d
from .downsamplers import Downsampling
from .padding import pad_circularly

#: timm's patchify families (the last part of the model classes' module names), which ``antialias()`` anchors
PATCHIFY_FAMILIES = (
    "vision_transformer", "deit", "eva", "beit", "cait", "convit", "convmixer", "mlp_mixer", "hiera",
    "vision_transformer_sam", "swin_transformer", "swin_transformer_v2", "swin_transformer_v2_cr",
    "vision_transformer_relpos", "tnt", "naflexvit", "deepseek_vit", "gemma4_vit", "qwen3_vit",
)
#: where each family's image-taking module lives, tried in order (on the model, then on its ``encoder``)
EMBED_ATTRS = ("patch_embed", "pixel_embed", "embeds", "stem")


class AnchoredEmbed:
    """Mixin: anchor the image (``self.anchor``) before the patch embedding's own forward."""

    anchor: PatchAnchor2d

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return super().forward(self.anchor(x), *args, **kwargs)


def _refuse_patches(embed: nn.Module, x: Any, patch_coord: Any) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or patch_coord is not None:
        raise TimmAAError(f"an anchored {type(embed).__bases__[-1].__name__} takes images (B, C, H, W), not "
                          "pre-patchified sequences (patch_coord / dict inputs): anchoring needs the pixels; pass the "
                          "image, or use the unconverted model")


class AnchoredPatchEmbed(AnchoredEmbed, PatchEmbed):
    """timm's ``PatchEmbed`` (ViT, DeiT, EVA, BEiT, CaiT, ConViT, Mixer, SAM, Swin, SwinV2, DeepSeek, Qwen3),
    anchored."""


class AnchoredSwinV2CrPatchEmbed(AnchoredEmbed, SwinV2CrPatchEmbed):
    """SwinV2-CR's patch embedding, anchored."""


class AnchoredPixelEmbed(AnchoredEmbed, PixelEmbed):
    """TNT's pixel embedding (unfold into patches, then a conv inside each), anchored before the unfold."""


class AnchoredConv2d(AnchoredEmbed, nn.Conv2d):
    """A patchifying ``nn.Conv2d`` (ConvMixer's stem conv), anchored; ``weight`` and ``bias`` keep their names."""


class AnchoredHieraPatchEmbed(AnchoredEmbed, HieraPatchEmbed):
    """Hiera's patch embedding (conv k7 s4 p3), anchored; MAE masks are refused (they would not follow the roll)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            raise TimmAAError("an anchored Hiera takes no MAE mask: the mask would not follow the anchor's roll; "
                              "pass mask=None, or use the unconverted model for masked pre-training")
        return super().forward(x)


class AnchoredNaFlexEmbeds(AnchoredEmbed, NaFlexEmbeds):
    """NaFlexViT's embeddings, anchored for image inputs; pre-patchified NaFlex sequences are refused."""

    def forward(self, x: torch.Tensor, patch_coord: torch.Tensor | None = None,
                patch_valid: torch.Tensor | None = None) -> Any:
        _refuse_patches(self, x, patch_coord)
        return super().forward(x, patch_coord, patch_valid)


class AnchoredGemma4PatchEmbed(AnchoredEmbed, Gemma4PatchEmbed):
    """Gemma 4's linear patch embedding, anchored for image inputs; pre-patchified sequences are refused."""

    def forward(self, x: Any, patch_coord: torch.Tensor | None = None, patch_valid: torch.Tensor | None = None) -> Any:
        _refuse_patches(self, x, patch_coord)
        return super().forward(x, patch_coord, patch_valid)


#: timm's image-taking module classes and their anchored subclasses
ANCHORED: dict[type, type] = {
    PatchEmbed: AnchoredPatchEmbed, SwinV2CrPatchEmbed: AnchoredSwinV2CrPatchEmbed, PixelEmbed: AnchoredPixelEmbed,
    nn.Conv2d: AnchoredConv2d, HieraPatchEmbed: AnchoredHieraPatchEmbed, NaFlexEmbeds: AnchoredNaFlexEmbeds,
    Gemma4PatchEmbed: AnchoredGemma4PatchEmbed,
}


def patchify_family(model: nn.Module) -> str | None:
    """The patchify family of ``model`` (a timm model, or its ``features_only`` wrapper), or None.

    Example:
        >>> import timm
        >>> patchify_family(timm.create_model('test_vit')), patchify_family(timm.create_model('resnet18'))
        ('vision_transformer', None)
    """
    root = model.model if isinstance(model, FeatureGetterNet) else model
    candidates = [root] if type(root).__module__.startswith("timm.models.") else []
    if type(root).__module__ == "timm.models._features":  # a feature wrapper that re-registers the model's children
        candidates = list(root.modules())
    for module in candidates:
        family = type(module).__module__.rpartition(".")[2]
        if type(module).__module__.startswith("timm.models.") and family in PATCHIFY_FAMILIES:
            return family
    return None


def anchor_site(model: nn.Module) -> tuple[nn.Module, str, nn.Module] | None:
    """``(owner, attribute, module)`` of the module that takes the image in a patchify model, or None for other
    models (and for hybrid ViTs, whose CNN backbone ``antialias()`` converts as a CNN).

    Example:
        >>> import timm
        >>> anchor_site(timm.create_model('test_vit'))[1]
        'patch_embed'
    """
    family = patchify_family(model)
    if family is None:
        return None
    root = model.model if isinstance(model, FeatureGetterNet) else model
    for owner in (root, getattr(root, "encoder", None)):
        for attr in EMBED_ATTRS if isinstance(owner, nn.Module) else ():
            embed = getattr(owner, attr, None)
            if family == "convmixer" and isinstance(embed, nn.Sequential):
                owner, attr, embed = embed, "0", embed[0]
            if isinstance(embed, nn.Module) and (type(embed) in ANCHORED or isinstance(embed, AnchoredEmbed)):
                return owner, attr, embed
    return None


def _patch_size(embed: nn.Module) -> tuple[int, int]:
    size = getattr(embed, "patch_size", None)
    if size is None:  # Hiera's and ConvMixer's: the stride of the conv
        size = next(m for m in embed.modules() if isinstance(m, nn.Conv2d)).stride
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _in_chans(embed: nn.Module, patch: tuple[int, int]) -> int:
    for module in embed.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
        if isinstance(module, nn.Linear):  # a linear embedding of flattened patches (NaFlexViT, Gemma 4)
            return module.in_features // (patch[0] * patch[1])
    raise TimmAAError(f"cannot find the input channels of {type(embed).__name__}")


def anchor_patchify(model: nn.Module, site: tuple[nn.Module, str, nn.Module], down: Downsampling,
                    aa_layer: Any) -> nn.Module:
    """Anchor a patchify model in place (``antialias()``'s branch for :data:`PATCHIFY_FAMILIES`); see the module's
    docstring. ``down.method`` must be 'aps' or 'lps'; with ``pad_mode='circular'`` padded convs wrap too.

    Example:
        >>> import timm
        >>> from timm_aa.convert.downsamplers import Downsampling
        >>> model = timm.create_model('test_vit')
        >>> type(anchor_patchify(model, anchor_site(model), Downsampling('aps'), 'aps').patch_embed).__name__
        'AnchoredPatchEmbed'
    """
    owner, attr, embed = site
    if isinstance(embed, AnchoredEmbed):
        return model  # already anchored
    if down.method not in ("aps", "lps"):
        raise TimmAAError(
            f"cannot anti-alias {type(model).__name__} with aa_layer={aa_layer!r}: blurring does not make vision "
            "transformers and other patchify models shift-invariant; pass aa_layer='aps' (or 'lps') to anchor the "
            "patch grid (exact for circular shifts)")
    patch = _patch_size(embed)
    place = next(({"device": t.device, "dtype": t.dtype} for t in embed.parameters() if t.is_floating_point()), {})
    anchor = PatchAnchor2d(patch) if down.method == "aps" else LearnedPatchAnchor2d(_in_chans(embed, patch), patch)
    embed.__class__ = ANCHORED[type(embed)]
    embed.anchor = anchor.to(**place) if place else anchor
    if down.pad_mode == "circular":
        pad_circularly(model, keep=set(embed.modules()) if isinstance(embed, PixelEmbed) else ())  # TNT: inside
    return model
