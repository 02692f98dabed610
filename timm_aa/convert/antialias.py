"""Model surgery: make any timm CNN anti-aliased, keeping its trained weights.

Following Zhang (ICML 2019), every downsampling step gets a low-pass filter before it subsamples; what each kind
of step becomes (pools, projection shortcuts, other strided convolutions, the stem) is listed in docs/layers.md,
"What antialias() does". No parameters are added: the original ``state_dict()`` loads with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import TimmAAError
from ..layers import BlurConv2d, BlurPool2d, MaxBlurPool2d, PolyphasePool2d
from ..layers.options import DEFAULT_FILT_SIZE, DEFAULT_PAD_MODE
from .downsamplers import Downsampling, polyphase_of, resolve_aa_layer
from .link_order import runs_first
from .padding import pad_circularly
from .patchify import anchor_patchify, anchor_site

_AA_LAYERS = (BlurConv2d, BlurPool2d, MaxBlurPool2d, PolyphasePool2d)


@dataclass
class _Site:
    name: str
    parent: nn.Module
    attr: str
    module: nn.Module


def _is_strided(module: nn.Module) -> bool:
    if isinstance(module, nn.Conv2d) and not isinstance(module, BlurConv2d):
        return max(module.stride) > 1
    if type(module) in (nn.MaxPool2d, nn.AvgPool2d):
        stride = module.stride if module.stride is not None else module.kernel_size
        return (stride if isinstance(stride, int) else max(stride)) > 1
    return False


def find_downsampling(model: nn.Module) -> list[_Site]:
    """List the strided convolutions and pools of ``model`` in registration order.

    Example:
        >>> import timm
        >>> [s.name for s in find_downsampling(timm.create_model('resnet18'))][:3]
        ['conv1', 'maxpool', 'layer2.0.conv1']
    """
    modules = dict(model.named_modules())
    sites = []
    for name, module in modules.items():
        if not name or not _is_strided(module):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = modules[parent_name]
        if not isinstance(parent, _AA_LAYERS):
            sites.append(_Site(name, parent, attr, module))
    return sites


def _convert_pool(pool: nn.Module, down: Downsampling, channels: int | None, max_kernel: int | None) -> nn.Module:
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    if isinstance(pool, nn.MaxPool2d):
        if pool.dilation not in (1, (1, 1)):
            raise TimmAAError(f"cannot anti-alias a dilated MaxPool2d ({pool})")
        if max_kernel is not None:
            return down.make_max(channels, max_kernel, stride, 0)
        return down.make_max(channels, pool.kernel_size, stride, pool.padding)
    if pool.kernel_size == stride and pool.padding in (0, (0, 0)):
        return down.make(channels, stride)
    dense = nn.AvgPool2d(pool.kernel_size, 1, pool.padding, count_include_pad=pool.count_include_pad)
    return nn.Sequential(dense, down.make(channels, stride))


def _post_blur_hook(module: nn.Module, args, output):
    return module.aa_blur(output)


def _aa_slot(site: _Site, sites: list[_Site]) -> bool:
    """True when the conv's parent block has an empty ``aa`` slot meant for this conv."""
    slot = getattr(site.parent, "aa", "missing")
    if not (slot is None or isinstance(slot, nn.Identity)):
        return False
    return sum(1 for s in sites if s.parent is site.parent and isinstance(s.module, nn.Conv2d)) == 1


def _is_pointwise(conv: nn.Conv2d) -> bool:
    return tuple(conv.kernel_size) == (1, 1) and tuple(conv.padding) == (0, 0)


def _convert_conv(site: _Site, sites: list[_Site], down: Downsampling) -> nn.Module:
    """Convert one strided conv; return the module that now subsamples (for linking shortcuts)."""
    conv = site.module
    place = dict(device=conv.weight.device, dtype=conv.weight.dtype)
    pointwise = type(conv) is nn.Conv2d and _is_pointwise(conv)  # a projection shortcut: blur first
    if not pointwise and _aa_slot(site, sites):
        site.parent.aa = down.make(conv.out_channels, conv.stride).to(**place)
        conv.stride = (1, 1)
        return site.parent.aa
    if type(conv) is nn.Conv2d:
        pool = down.make_follower(conv.stride) if pointwise else down.make(conv.out_channels, conv.stride)
        new = BlurConv2d.from_conv(conv, blur_first=pointwise, pool=pool.to(**place))
        setattr(site.parent, site.attr, new)
        return new.blur
    # a conv subclass with its own forward (e.g. timm's Conv2dSame, StdConv2d): subsample its output
    conv.aa_blur = down.make(conv.out_channels, conv.stride).to(**place)
    conv.stride = (1, 1)
    conv.register_forward_hook(_post_blur_hook)
    return conv.aa_blur


def _link_shortcuts(model: nn.Module, converted: list[tuple[_Site, nn.Module]]) -> None:
    """Make each shortcut's polyphase pool follow the main-branch pool of the same residual block."""
    mains = [(s.name, polyphase_of(m)) for s, m in converted
             if not (isinstance(s.module, nn.Conv2d) and _is_pointwise(s.module))]
    for site, module in converted:
        follower = polyphase_of(module)
        if follower is None or not (isinstance(site.module, nn.Conv2d) and _is_pointwise(site.module)):
            continue
        prefix, main = site.name, None
        while prefix and main is None:
            prefix = prefix.rpartition(".")[0]
            candidates = [pool for name, pool in mains if pool is not None and name.startswith(prefix + ".")]
            main = candidates[-1] if candidates else None
        if main is None:
            raise TimmAAError(f"no main-branch polyphase pool found for the shortcut {site.name!r}: APS/LPS cannot "
                              "align this block's branches; pass aa_layer='blur'")
        if runs_first(model.get_submodule(prefix), follower, main) and not main.following and not main.link.followers:
            main.follow(follower)  # the shortcut subsamples first (pre-activation ResNets, DPN, FastViT): it chooses
        else:
            follower.follow(main)


def _keep_modes(converted: list[tuple[_Site, nn.Module]]) -> None:
    """Put each new layer in the train/eval mode of the module it replaced (an eval model stays deterministic)."""
    for site, subsampler in converted:
        mode = site.module.training
        getattr(site.parent, site.attr).train(mode)  # the replacement, or the conv that now carries an aa_blur
        subsampler.train(mode)  # a block's own ``aa`` slot


def antialias(
    model: nn.Module,
    aa_layer: str | type | Callable[..., nn.Module] = "blur",
    *,
    filt_size: int = DEFAULT_FILT_SIZE,
    pad_mode: str = DEFAULT_PAD_MODE,
    stem: bool = False,
    stem_max_pool: int | None = None,
) -> nn.Module:
    """Anti-alias every downsampling step of a CNN in place and return it (the rules: docs/layers.md).

    Args:
        model: a timm (or any torch) CNN; modified in place.
        aa_layer: what subsamples, the timm way: a name (``'blur'`` / ``'blurpool'``, ``'blurpc'`` for zero
            padding, ``'aps'`` adaptive polyphase sampling, ``'lps'`` learnable polyphase sampling, which adds
            small scorers initialised to choose as APS does), a layer class, or a ``functools.partial`` of one
            (called as ``aa_layer(channels=C, stride=S)``, as timm's ``aa_layer``). In residual blocks a
            polyphase shortcut reuses the main branch's phase choice.
        filt_size: binomial filter size, 1..7 (1 means no blur), for named layers.
        pad_mode: 'reflect', 'replicate', 'zeros' or 'circular', for named layers. 'circular' also makes every
            conv and pool of the model pad circularly, which exact circular-shift invariance needs.
        stem: also convert the stem convolution (exact invariance needs it).
        stem_max_pool: kernel size for the dense max-pool that replaces the first ``MaxPool2d`` (the stem's),
            without padding; ``None`` keeps the model's. Zhang's ResNets use 2 (timm's stem pools 3x3, padding 1).

    New layers are created on the device and in the dtype of the model's parameters (the meta device included).

    Example:
        >>> import timm, timm_aa
        >>> base = timm.create_model('resnet50')
        >>> model = timm_aa.antialias(timm.create_model('resnet50'), 'blur', filt_size=3)
        >>> _ = model.load_state_dict(base.state_dict(), strict=True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"antialias() takes a torch.nn.Module, got {type(model).__name__}")
    down = resolve_aa_layer(aa_layer, filt_size, pad_mode)
    site = anchor_site(model)
    if site is not None:  # a ViT, Swin, Mixer...: anchor its patch grid instead (patchify.py, docs/layers.md)
        return anchor_patchify(model, site, down, aa_layer)
    sites = find_downsampling(model)
    if sites and not stem and isinstance(sites[0].module, nn.Conv2d):
        sites = sites[1:]
    if not sites:
        if any(isinstance(m, _AA_LAYERS) for m in model.modules()):
            return model  # already converted
        kind = type(model).__name__
        if any("attention" in type(m).__name__.lower() for m in model.modules()):
            raise TimmAAError(
                f"cannot anti-alias {kind}: it has attention layers and no strided convolution or pooling "
                "after its stem/patch embedding; antialias() converts CNNs, not vision transformers"
            )
        raise TimmAAError(f"cannot anti-alias {kind}: it has no strided convolution or pooling to convert")
    if down.pad_mode == "circular":
        pad_circularly(model)
    converted, channels, place = [], _conv_channels(model), _placement(model)
    stem_pool = next((s for s in sites if isinstance(s.module, nn.MaxPool2d)), None)
    for site in sites:
        if isinstance(site.module, nn.Conv2d):
            converted.append((site, _convert_conv(site, sites, down)))
        else:
            # only LPS needs a pool's channels (its scorer); the conv before it gives them in stems
            new = _convert_pool(site.module, down, channels.get(site.name) if down.method == "lps" else None,
                                stem_max_pool if site is stem_pool else None).to(**place)
            setattr(site.parent, site.attr, new)
            converted.append((site, new))
    _keep_modes(converted)
    if down.method in ("aps", "lps"):
        _link_shortcuts(model, converted)
    return model


def _placement(model: nn.Module) -> dict[str, object]:
    """The device and floating dtype of the model's first floating parameter or buffer (for new layers)."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return dict(device=t.device, dtype=t.dtype)
    return {}


def _conv_channels(model: nn.Module) -> dict[str, int]:
    """For each module name, the output channels of the last conv registered before it (pools' inputs)."""
    out, last = {}, None
    for name, module in model.named_modules():
        out[name] = last
        if isinstance(module, nn.Conv2d):
            last = module.out_channels
    return out
