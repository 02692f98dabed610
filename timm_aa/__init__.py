"""timm-aa: anti-aliased, shift-invariant CNNs for timm.

Importing the package registers the ``*_aa`` models with timm.

Example:
    >>> import timm, timm_aa
    >>> model = timm.create_model('resnet50_aa', num_classes=10)
    >>> converted = timm_aa.antialias(timm.create_model('resnet18'))
"""

from . import models
from .antialias import antialias, find_downsampling
from .layers import BlurConv2d, BlurPool2d, MaxBlurPool2d, blur_pool2d, max_blur_pool2d
from .weights import convert_zhang_state_dict, from_zhang, zhang_key_map

__version__ = "0.1.0"

__all__ = [
    "BlurConv2d",
    "BlurPool2d",
    "MaxBlurPool2d",
    "antialias",
    "convert_zhang_state_dict",
    "blur_pool2d",
    "find_downsampling",
    "from_zhang",
    "max_blur_pool2d",
    "models",
    "zhang_key_map",
]


def __getattr__(name: str) -> object:  # names kept for one release, with a DeprecationWarning
    found = models.deprecated_alias(name)
    if found is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return found
