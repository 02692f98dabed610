"""Argument checks the anti-aliasing layers share (timm's ``layers/helpers.py`` has ``to_2tuple``; these also
validate, so a bad value fails where it is given, with its name)."""

from __future__ import annotations

import torch

from ..errors import TimmAAError
from .options import MAX_COUNT, PAD_MODE_ALIASES, PAD_MODES


def check_pad_mode(pad_mode: str) -> str:
    """Validate a padding mode name and return it (timm's ``'constant'`` is ``'zeros'``).

    Example:
        >>> check_pad_mode('reflect'), check_pad_mode('constant')
        ('reflect', 'zeros')
    """
    name = PAD_MODE_ALIASES.get(pad_mode, pad_mode) if isinstance(pad_mode, str) else pad_mode
    if name not in PAD_MODES:
        raise TimmAAError(f"pad_mode must be one of {PAD_MODES} (or 'constant' for 'zeros'), got {pad_mode!r}")
    return name


def check_count(value: int, name: str) -> int:
    """``value`` checked to be an int in 1..``MAX_COUNT`` (65536; not a bool): a channel or unit count.

    Example:
        >>> check_count(8, 'hidden')
        8
        >>> check_count(0, 'hidden')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: hidden must be an int in 1..65536, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise TimmAAError(f"{name} must be an int in 1..{MAX_COUNT}, got {value!r}")
    return value


def to_pair(value: int | tuple[int, int] | list[int], name: str, minimum: int = 1,
            square: bool = False) -> list[int]:
    """``value`` as an ``[H, W]`` pair of ints >= ``minimum``; an int means the same on both axes. ``square``
    requires both to be equal (polyphase sampling has one stride).

    Example:
        >>> to_pair(2, 'stride'), to_pair((1, 2), 'stride')
        ([2, 2], [1, 2])
        >>> to_pair((1, 2), 'stride', square=True)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: stride must be the same on both axes here, got (1, 2)
    """
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in pair):
        raise TimmAAError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    if square and pair[0] != pair[1]:
        raise TimmAAError(f"{name} must be the same on both axes here, got {value!r}")
    return [pair[0], pair[1]]


def check_input(x: torch.Tensor, layer: str, channels: int | None = None) -> None:
    """A 4D (N, C, H, W) floating tensor with H, W >= 1 (and ``channels`` channels, when given), or a
    ``TypeError``/``ValueError`` saying what is wrong. N and C may be 0.

    Example:
        >>> check_input(torch.zeros(1, 3, 4, 4), 'BlurPool2d', channels=8)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: BlurPool2d was built for 8 channels, got 3
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer} takes a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{layer} takes a floating-point tensor, got {x.dtype}; convert it first, e.g. x.float()")
    if x.dim() != 4:
        raise TimmAAError(f"{layer} expects a 4D (N, C, H, W) input, got shape {list(x.shape)}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise TimmAAError(f"{layer} needs maps of at least 1x1, got shape {list(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise TimmAAError(f"{layer} was built for {channels} channels, got {x.shape[1]}")
