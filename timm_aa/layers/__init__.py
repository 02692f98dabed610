"""Anti-aliasing layers, each a module and its functional twin with the same arguments and defaults.

- :class:`BlurPool2d` / :func:`blur_pool2d`: binomial blur, then subsample (Zhang's BlurPool, his numbers);
- :class:`MaxBlurPool2d` / :func:`max_blur_pool2d`: max-pool at stride 1, then BlurPool;
- :class:`BlurConv2d`: a strided conv whose subsampling is a BlurPool (``nn.Conv2d``'s parameter names);
- :class:`APSPool2d` / :func:`aps_pool2d`, :class:`LPSPool2d`: adaptive and learnable polyphase sampling;
- :class:`AliasFreeDownsample2d` / :func:`alias_free_downsample2d`, :class:`AliasFreeActivation` /
  :func:`alias_free_activation`, :class:`AliasFreeLayerNorm2d` / :func:`alias_free_layer_norm2d`,
  :class:`AliasFreeConv2d`: the alias-free layers of AFC (Michaeli et al., CVPR 2023), exactly equivariant to
  fractional circular shifts; :func:`fit_polynomial`: their activations' starting polynomial;
- :class:`AliasFreeTokenNorm` / :func:`alias_free_token_norm`, :func:`alias_free_softmax`: their counterparts for a
  transformer's tokens (the alias-free XCiT, Michaeli & Soudry, NeurIPS 2025);
- :class:`PatchAnchor2d` / :func:`patch_anchor2d`, :class:`LearnedPatchAnchor2d`: patch-grid anchoring, which makes
  patchify models (ViT, Swin, Mixer, ...) exactly invariant to circular shifts (APS-style, and learned as LPS);
- :func:`binomial_filter1d`, :func:`binomial_filter2d`: the filters.

BlurPool and MaxBlurPool run on the fastest backend for their input: one-pass Triton kernels on CUDA, a C kernel
on CPU float32/float64, and pad-then-conv (the reference every backend is tested against) elsewhere and when a
graph is exported; ``TIMM_AA_BACKEND=reference|native|triton`` forces one.

Example:
    >>> from timm_aa.layers import BlurPool2d, blur_pool2d
    >>> x = torch.randn(1, 8, 9, 9)
    >>> torch.equal(BlurPool2d(8, filt_size=3)(x), blur_pool2d(x, filt_size=3))
    True
"""

from __future__ import annotations

from .alias_free import (
    AliasFreeActivation,
    AliasFreeDownsample2d,
    alias_free_activation,
    alias_free_downsample2d,
    fit_polynomial,
)
from .alias_free_conv import AliasFreeConv2d
from .alias_free_norm import AliasFreeLayerNorm2d, alias_free_layer_norm2d
from .alias_free_tokens import AliasFreeTokenNorm, alias_free_softmax, alias_free_token_norm
from .anchor import LearnedPatchAnchor2d, PatchAnchor2d, patch_anchor2d, patch_anchor_index
from .blur_conv import BlurConv2d
from .blur_pool import BlurPool2d, blur_pool2d
from .filters import binomial_filter1d, binomial_filter2d
from .max_blur_pool import MaxBlurPool2d, max_blur_pool2d
from .polyphase import APSPool2d, LPSPool2d, PolyphasePool2d, aps_pool2d

__all__ = [
    "APSPool2d",
    "AliasFreeActivation",
    "AliasFreeConv2d",
    "AliasFreeDownsample2d",
    "AliasFreeLayerNorm2d",
    "AliasFreeTokenNorm",
    "BlurConv2d",
    "BlurPool2d",
    "LPSPool2d",
    "LearnedPatchAnchor2d",
    "MaxBlurPool2d",
    "PatchAnchor2d",
    "PolyphasePool2d",
    "alias_free_activation",
    "alias_free_downsample2d",
    "alias_free_layer_norm2d",
    "alias_free_softmax",
    "alias_free_token_norm",
    "aps_pool2d",
    "binomial_filter1d",
    "binomial_filter2d",
    "blur_pool2d",
    "fit_polynomial",
    "max_blur_pool2d",
    "patch_anchor2d",
    "patch_anchor_index",
]
