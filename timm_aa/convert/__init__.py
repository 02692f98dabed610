"""The model conversions: :func:`antialias` (BlurPool, APS or LPS at every downsampling step of a CNN) and
:func:`alias_free` (AFC's alias-free layers), with the choice of what subsamples (:func:`resolve_aa_layer`).

They build on the layers only; the registered models build on them.
"""

from __future__ import annotations

from .alias_free import alias_free
from .antialias import antialias, find_downsampling
from .downsamplers import Downsampling, resolve_aa_layer

__all__ = ["Downsampling", "alias_free", "antialias", "find_downsampling", "resolve_aa_layer"]
