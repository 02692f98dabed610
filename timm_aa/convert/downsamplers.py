"""What ``antialias()`` puts where a network subsamples, from an ``aa_layer`` given the timm way (its names, and
how a class or partial is called: :func:`~timm_aa.antialias`). A class or partial that takes no channels is
called as ``aa_layer(S)``; our own layers are recognised, so a ``partial(BlurPool2d, filt_size=3)`` fuses into
MaxBlurPool where max-pools are replaced.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import TimmAAError
from ..layers import APSPool2d, BlurPool2d, LPSPool2d, MaxBlurPool2d, PolyphasePool2d
from ..layers.filters import check_filt_size
from ..layers.helpers import check_pad_mode
from ..layers.options import AA_LAYERS, DEFAULT_FILT_SIZE, DEFAULT_PAD_MODE

METHODS = tuple(dict.fromkeys(AA_LAYERS.values()))  # blur, aps, lps


@dataclass(frozen=True)
class Downsampling:
    """How one conversion subsamples: ``method`` ('blur', 'aps', 'lps', or 'custom' with ``factory``).

    Example:
        >>> Downsampling('aps', filt_size=1).make(64, 2)
        APSPool2d(stride=2, follows_other=False)
    """

    method: str = "blur"
    filt_size: int = DEFAULT_FILT_SIZE
    pad_mode: str = DEFAULT_PAD_MODE
    factory: Callable[..., nn.Module] | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS + ("custom",):
            raise TimmAAError(f"method must be one of {METHODS}, got {self.method!r}")
        check_filt_size(self.filt_size)
        object.__setattr__(self, "pad_mode", check_pad_mode(self.pad_mode))

    def _custom(self, channels: int | None, stride) -> nn.Module:
        try:
            return self.factory(channels=channels, stride=stride)
        except TypeError:
            return self.factory(stride)

    def make(self, channels: int | None, stride) -> nn.Module:
        """The module that subsamples by ``stride`` a map of ``channels`` channels."""
        if self.method == "custom":
            return self._custom(channels, stride)
        if self.method == "blur":
            return BlurPool2d(channels, filt_size=self.filt_size, stride=stride, pad_mode=self.pad_mode)
        if self.method == "aps":  # the polyphase pools check the stride is the same on both axes
            pool: nn.Module = APSPool2d(stride)
        else:
            if channels is None:
                raise TimmAAError("LPS needs the channel count of every map it subsamples")
            pool = LPSPool2d(channels, stride)
        if self.filt_size == 1:
            return pool
        return nn.Sequential(BlurPool2d(channels, filt_size=self.filt_size, stride=1, pad_mode=self.pad_mode), pool)

    def make_follower(self, stride) -> nn.Module:
        """A subsampler for a shortcut; polyphase ones are linked to their main branch by ``antialias``."""
        if self.method == "lps":  # a follower takes its main branch's choice: an APS pool, no scorer of its own
            return Downsampling("aps", self.filt_size, self.pad_mode).make(None, stride)
        return self.make(None, stride)

    def make_max(self, channels: int | None, kernel_size, stride, padding) -> nn.Module:
        """Replacement of ``MaxPool2d(kernel_size, stride, padding)``: dense max-pool, then subsampling."""
        if self.method == "blur":
            return MaxBlurPool2d(kernel_size, stride, padding, filt_size=self.filt_size, pad_mode=self.pad_mode)
        if self.method == "custom":
            return nn.Sequential(nn.MaxPool2d(kernel_size, 1, padding), self._custom(channels, stride))
        # an unpadded pool stays unpadded (circular padding would keep its map's size, and Inception's parallel
        # unpadded convs would no longer line up with it)
        unpadded = padding in (0, (0, 0), [0, 0])
        dense = MaxBlurPool2d(kernel_size, 1, padding, filt_size=1, pad_mode="zeros" if unpadded else self.pad_mode)
        return nn.Sequential(dense, self.make(channels, stride))


def resolve_aa_layer(aa_layer: str | type | Callable[..., nn.Module], filt_size: int = DEFAULT_FILT_SIZE,
                     pad_mode: str = DEFAULT_PAD_MODE) -> Downsampling:
    """The :class:`Downsampling` an ``aa_layer`` (name, class or partial) stands for.

    ``filt_size`` and ``pad_mode`` apply to names; a class or partial carries its own settings.

    Example:
        >>> import functools
        >>> resolve_aa_layer(functools.partial(BlurPool2d, filt_size=3)).filt_size
        3
        >>> resolve_aa_layer('blurpc').pad_mode
        'zeros'
    """
    if isinstance(aa_layer, str):
        key = aa_layer.lower().replace("_", "").replace("-", "")
        if key not in AA_LAYERS:
            raise TimmAAError(f"unknown aa_layer {aa_layer!r}; use one of {sorted(AA_LAYERS)}, a layer class or a "
                              "functools.partial of one")
        return Downsampling(AA_LAYERS[key], filt_size, "zeros" if key == "blurpc" else pad_mode)
    if not callable(aa_layer):
        raise TypeError(f"aa_layer must be a name, a class or a partial, got {type(aa_layer).__name__}")
    target = aa_layer.func if isinstance(aa_layer, functools.partial) else aa_layer
    if isinstance(target, type) and issubclass(target, (BlurPool2d, PolyphasePool2d)):
        try:
            probe = aa_layer(channels=8, stride=2)
        except TypeError:
            probe = aa_layer(stride=2)
        if isinstance(probe, BlurPool2d):
            return Downsampling("blur", probe.filt_size, probe.pad_mode)
        return Downsampling("lps" if isinstance(probe, LPSPool2d) else "aps", 1, pad_mode)
    return Downsampling("custom", filt_size, pad_mode, aa_layer)


def polyphase_of(module: nn.Module) -> PolyphasePool2d | None:
    """The polyphase pool inside a downsampler, if any.

    Example:
        >>> polyphase_of(nn.Sequential(BlurPool2d(stride=1), APSPool2d()))
        APSPool2d(stride=2, follows_other=False)
    """
    found = [m for m in module.modules() if isinstance(m, PolyphasePool2d)]
    return found[-1] if found else None
