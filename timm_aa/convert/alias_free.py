"""Model conversion: a timm ResNet or ConvNeXt in its alias-free form (AFC: Michaeli, Michaeli & Soudry, CVPR 2023),
exactly invariant to circular shifts by fractional amounts as well as integers; an XCiT by
:func:`~timm_aa.convert.alias_free_xcit.alias_free_xcit` (the alias-free ViT of Michaeli & Soudry, NeurIPS 2025).

:func:`alias_free` changes the model in place, module by module, keeping every parameter name:

- every ``nn.Conv2d`` becomes an :class:`~timm_aa.layers.AliasFreeConv2d`: circular padding; a strided one runs at
  stride 1, then downsamples ideally (a strided 1x1 shortcut downsamples first: equal, and cheaper); even kernels
  (ConvNeXt's 2x2 stride-2 downsampling) pad (0, 1) so the map keeps its size before the downsampling;
- strided ``MaxPool2d`` / ``AvgPool2d`` become :class:`~timm_aa.layers.AliasFreeDownsample2d` (a max is a
  nonlinearity no band limit survives, so the max-pool is dropped, not made alias-free; the average pool's box
  filter gives way to the ideal low-pass);
- ``ReLU`` / ``GELU`` become :class:`~timm_aa.layers.AliasFreeActivation` with one polynomial per channel (the width
  of the nearest layer before it: BatchNorm, conv, linear or norm), fitted to the function it replaces;
- layer norms over channels (timm's ``LayerNorm2d``; in ConvNeXt blocks, the channels-last ``LayerNorm``) become
  :class:`~timm_aa.layers.AliasFreeLayerNorm2d` (centred per position, scaled over channels and positions);
  ConvNeXt's channels-last MLP keeps its layout (``layout='NHWC'``);
- BatchNorm stays (in eval mode a per-channel affine map); so do global average pooling and what follows it (the
  classifier head, ConvNeXt's head norm).

Any other layer with no alias-free form (another activation, a global max pool, a layer norm whose layout is
unknown) is a :class:`~timm_aa.errors.TimmAAError` naming it, and the model is left unchanged.

New parameters: only the activations' ``coefficients`` (:func:`new_parameter_names`); the original model's
``state_dict()`` loads with ``strict=False``, missing exactly those. Converting twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from timm.layers import ClassifierHead, DropPath, LayerNorm2d, NormMlpClassifierHead, SelectAdaptivePool2d
from timm.models.convnext import ConvNeXtBlock
from torch import nn

from ..errors import TimmAAError
from ..layers import AliasFreeActivation, AliasFreeConv2d, AliasFreeDownsample2d, AliasFreeLayerNorm2d
from .alias_free_parts import ACTS, param_like
from .alias_free_xcit import alias_free_xcit, xcit_inside

_DONE = (AliasFreeActivation, AliasFreeConv2d, AliasFreeDownsample2d, AliasFreeLayerNorm2d)
_KEEP = (nn.BatchNorm2d, nn.Identity, nn.Dropout, DropPath, nn.Linear, nn.Flatten)


def _width(module: nn.Module) -> int | None:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.num_features
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, AliasFreeLayerNorm2d):
        return module.num_channels
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        return module.normalized_shape[0]
    return None


def _convert(module: nn.Module, name: str, nhwc: bool, before: list[nn.Module], act_scale: float,
             ref: torch.Tensor | None) -> nn.Module | None:
    """The alias-free replacement of one module, or None when it stays as it is (checked)."""
    if isinstance(module, nn.Conv2d):
        return AliasFreeConv2d.from_conv(module)
    if type(module) in (nn.MaxPool2d, nn.AvgPool2d):
        stride = module.stride if module.stride is not None else module.kernel_size
        if max((stride, stride) if isinstance(stride, int) else stride) < 2:
            raise TimmAAError(f"{name}: a {type(module).__name__} at stride 1 has no alias-free form (a max-pool is "
                              "a nonlinearity); only strided pools are converted (to ideal downsampling)")
        return AliasFreeDownsample2d(stride)
    if isinstance(module, LayerNorm2d):
        return AliasFreeLayerNorm2d.from_norm(module, "NCHW")
    if isinstance(module, nn.LayerNorm):
        if not nhwc:
            raise TimmAAError(f"{name}: an nn.LayerNorm outside a channels-last ConvNeXt block: its layout is unknown, "
                              "so it cannot be made a layer norm over channels and positions")
        return AliasFreeLayerNorm2d.from_norm(module, "NHWC")
    if type(module) in ACTS:
        widths = [w for w in map(_width, reversed(before)) if w is not None]
        source = next((m for m in reversed(before) if _width(m) is not None), module)
        return AliasFreeActivation(widths[0] if widths else None, ACTS[type(module)], act_scale,
                                   "NHWC" if nhwc else "NCHW", **param_like(source, ref))
    if isinstance(module, nn.AdaptiveAvgPool2d):
        if module.output_size not in (1, (1, 1)):
            raise TimmAAError(f"{name}: only global average pooling keeps the invariance, got {module}")
        return None
    if isinstance(module, SelectAdaptivePool2d) and module.pool_type not in ("avg", ""):  # '': maps, equivariant
        raise TimmAAError(f"{name}: global {module.pool_type!r} pooling is not shift-invariant for fractional shifts; "
                          "use global_pool='avg' (or '' for the unpooled feature maps)")
    if not list(module.children()) and not isinstance(module, _KEEP):
        raise TimmAAError(f"{name}: {type(module).__name__} has no alias-free form; alias_free converts timm's ResNet "
                          "and ConvNeXt (convolutions, strided pools, ReLU/GELU, layer norms, BatchNorm)")
    return None


def _plan(module: nn.Module, prefix: str, nhwc: bool, act_scale: float,
          ref: torch.Tensor | None) -> Iterator[tuple[nn.Module, str, nn.Module]]:
    children = list(module.named_children())
    channels_last_block = isinstance(module, ConvNeXtBlock) and not module.use_conv_mlp
    for i, (attr, child) in enumerate(children):
        name = f"{prefix}{attr}"
        if isinstance(child, _DONE):
            continue
        child_nhwc = nhwc or (channels_last_block and attr in ("norm", "mlp"))
        if isinstance(child, (ClassifierHead, NormMlpClassifierHead)):  # after global pooling: invariant already
            _convert(child.global_pool, f"{name}.global_pool", False, [], act_scale, ref)
            continue
        new = _convert(child, name, child_nhwc, [c for _, c in children[:i]], act_scale, ref)
        if new is not None:
            yield module, attr, new
        else:
            yield from _plan(child, f"{name}.", child_nhwc, act_scale, ref)


def alias_free(model: nn.Module, *, act_scale: float = 1.0) -> nn.Module:
    """Convert a timm ResNet, ConvNeXt or XCiT to its alias-free form, in place, and return it (see the module's
    notes; for XCiT, :mod:`timm_aa.convert.alias_free_xcit`'s).

    ``act_scale``: the standard deviation of the inputs the new activations' polynomials are fitted for
    (:func:`~timm_aa.layers.fit_polynomial`). With circular padding everywhere, the converted model's logits are
    invariant to circular shifts of its input by any real amount (:func:`~timm_aa.consistency.fractional_roll`).

    Example:
        >>> import timm
        >>> base = timm.create_model('resnet18')
        >>> model = alias_free(timm.create_model('resnet18'))
        >>> missing = model.load_state_dict(base.state_dict(), strict=False).missing_keys
        >>> missing == new_parameter_names(model), missing[:2]
        (True, ['act1.coefficients', 'layer1.0.act1.coefficients'])
        >>> from timm_aa.consistency import fractional_roll
        >>> x = torch.randn(1, 3, 64, 64)
        >>> logits, shifted = model.eval()(x), model(fractional_roll(x, torch.tensor([[0.5, 3.7]])))
        >>> bool(((shifted - logits).abs().max() / logits.abs().max()) < 1e-4)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"alias_free takes an nn.Module, got {type(model).__name__}")
    xcit = xcit_inside(model)  # a transformer: converted by its own rules (alias_free_xcit's notes)
    if xcit is not None:
        alias_free_xcit(xcit, act_scale=act_scale)
        return model
    ref = next(model.parameters(), None)
    for parent, attr, new in list(_plan(model, "", False, act_scale, ref)):  # plan first: fail before changing
        setattr(parent, attr, new.train(getattr(parent, attr).training))  # the mode of the module it replaces
    return model


def new_parameter_names(model: nn.Module) -> list[str]:
    """The parameters :func:`alias_free` added (the activations' polynomial ``coefficients``), in state-dict order.

    Example:
        >>> import timm
        >>> len(new_parameter_names(alias_free(timm.create_model('resnet18'))))  # the stem's, and two per BasicBlock
        17
    """
    return [f"{name}.coefficients" for name, m in model.named_modules() if isinstance(m, AliasFreeActivation)]
