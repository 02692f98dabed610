"""Circular padding for the convolutions of a converted model (``pad_mode='circular'``), so that a circular shift of
the input is a circular shift of every map: the padded convs see the image as the torus a circular shift makes it.
"""

from __future__ import annotations

from collections.abc import Collection

from torch import nn


def pad_circularly(model: nn.Module, keep: Collection[nn.Module] = ()) -> None:
    """Make every padded ``nn.Conv2d`` of ``model`` pad circularly, in place, except those in ``keep`` (TNT's convs,
    which run inside each patch after the unfold).

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1))
        >>> pad_circularly(model); [m.padding_mode for m in model]
        ['circular', 'zeros']
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module not in keep and any(module._reversed_padding_repeated_twice):
            module.padding_mode = "circular"
