"""Model surgery: make any timm CNN anti-aliased, keeping its trained weights.

Following Zhang (ICML 2019), every downsampling step gets a low-pass filter before it subsamples:

- ``MaxPool2d(k, s, p)`` becomes :class:`~timm_aa.layers.MaxBlurPool2d` (max-pool at stride 1, then blur);
- ``AvgPool2d(s, s)`` becomes :class:`~timm_aa.layers.BlurPool2d`; other strided average pools run at
  stride 1 followed by a BlurPool;
- a strided 1x1 convolution (a projection shortcut) blurs and subsamples its input first
  (:class:`~timm_aa.layers.BlurConv2d` with ``blur_first=True``);
- any other strided convolution runs at stride 1 and the blur goes after its norm and activation
  when its block has an anti-aliasing slot (``aa``, as timm's ResNet, EfficientNet, RegNet, CSPNet
  and ByobNet blocks do), otherwise right after the convolution.

The stem convolution (the first strided op, when it is a convolution) stays strided unless
``stem=True``. No parameters are added: the original ``state_dict()`` loads with ``strict=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .layers import BlurConv2d, BlurPool2d, MaxBlurPool2d, check_filt_size, check_pad_mode

_AA_LAYERS = (BlurPool2d, MaxBlurPool2d, BlurConv2d)


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
        stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        return max(stride) > 1
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


def _blur(channels: int | None, stride, filt_size: int, pad_mode: str, device) -> BlurPool2d:
    return BlurPool2d(channels, filt_size=filt_size, stride=stride, pad_mode=pad_mode).to(device)


def _convert_pool(pool: nn.Module, filt_size: int, pad_mode: str) -> nn.Module:
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    if isinstance(pool, nn.MaxPool2d):
        if pool.dilation not in (1, (1, 1)):
            raise ValueError(f"cannot anti-alias a dilated MaxPool2d ({pool})")
        return MaxBlurPool2d(None, pool.kernel_size, stride, pool.padding, filt_size=filt_size, pad_mode=pad_mode)
    if pool.kernel_size == stride and pool.padding in (0, (0, 0)):
        return BlurPool2d(None, filt_size=filt_size, stride=stride, pad_mode=pad_mode)
    dense = nn.AvgPool2d(pool.kernel_size, 1, pool.padding, count_include_pad=pool.count_include_pad)
    return nn.Sequential(dense, BlurPool2d(None, filt_size=filt_size, stride=stride, pad_mode=pad_mode))


def _post_blur_hook(module: nn.Module, args, output):
    return module.aa_blur(output)


def _aa_slot(site: _Site, sites: list[_Site]) -> bool:
    """True when the conv's parent block has an empty ``aa`` slot meant for this conv."""
    slot = getattr(site.parent, "aa", "missing")
    if not (slot is None or isinstance(slot, nn.Identity)):
        return False
    return sum(1 for s in sites if s.parent is site.parent and isinstance(s.module, nn.Conv2d)) == 1


def _convert_conv(site: _Site, sites: list[_Site], filt_size: int, pad_mode: str) -> None:
    conv = site.module
    device = conv.weight.device
    pointwise = tuple(conv.kernel_size) == (1, 1) and tuple(conv.padding) == (0, 0)
    if type(conv) is nn.Conv2d and pointwise:
        setattr(site.parent, site.attr, BlurConv2d.from_conv(conv, filt_size, pad_mode, blur_first=True))
    elif _aa_slot(site, sites):
        site.parent.aa = _blur(conv.out_channels, conv.stride, filt_size, pad_mode, device)
        conv.stride = (1, 1)
    elif type(conv) is nn.Conv2d:
        setattr(site.parent, site.attr, BlurConv2d.from_conv(conv, filt_size, pad_mode, blur_first=False))
    else:  # a conv subclass with its own forward (e.g. timm's Conv2dSame, StdConv2d): blur its output
        conv.aa_blur = _blur(conv.out_channels, conv.stride, filt_size, pad_mode, device)
        conv.stride = (1, 1)
        conv.register_forward_hook(_post_blur_hook)


def _has_attention(model: nn.Module) -> bool:
    return any("attention" in type(m).__name__.lower() for m in model.modules())


def antialias(model: nn.Module, filt_size: int = 4, pad_mode: str = "reflect", stem: bool = False) -> nn.Module:
    """Anti-alias every downsampling step of a CNN in place and return it (see the module docstring).

    Args:
        model: a timm (or any torch) CNN; modified in place.
        filt_size: binomial filter size, 1..7 (1 means plain subsampling).
        pad_mode: 'reflect', 'replicate', 'zeros' or 'circular'.
        stem: also anti-alias the stem convolution.

    Example:
        >>> import timm, timm_aa
        >>> base = timm.create_model('resnet50')
        >>> model = timm_aa.antialias(timm.create_model('resnet50'))
        >>> _ = model.load_state_dict(base.state_dict(), strict=True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"antialias() takes a torch.nn.Module, got {type(model).__name__}")
    check_filt_size(filt_size)
    check_pad_mode(pad_mode)
    sites = find_downsampling(model)
    if sites and not stem and isinstance(sites[0].module, nn.Conv2d):
        sites = sites[1:]
    if not sites:
        if any(isinstance(m, _AA_LAYERS) for m in model.modules()):
            return model  # already converted
        kind = type(model).__name__
        if _has_attention(model):
            raise ValueError(
                f"cannot anti-alias {kind}: it has attention layers and no strided convolution or pooling "
                "after its stem/patch embedding; antialias() converts CNNs, not vision transformers"
            )
        raise ValueError(f"cannot anti-alias {kind}: it has no strided convolution or pooling to convert")
    for site in sites:
        if isinstance(site.module, nn.Conv2d):
            _convert_conv(site, sites, filt_size, pad_mode)
        else:
            setattr(site.parent, site.attr, _convert_pool(site.module, filt_size, pad_mode))
    return model
