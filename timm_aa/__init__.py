"""timm-aa: anti-aliased, shift-invariant CNNs for timm.

Importing the package registers the ``*_aa`` models with timm.

Example:
    >>> import timm, timm_aa
    >>> model = timm.create_model('resnet50_aa', num_classes=10)
    >>> converted = timm_aa.antialias(timm.create_model('resnet18'))
"""

from . import models  # noqa: F401  (importing it registers the *_aa models with timm)
from ._version import __version__ as __version__
from .convert import alias_free, antialias
from .errors import TimmAAError
from .layers import APSPool2d, BlurConv2d, BlurPool2d, LPSPool2d, MaxBlurPool2d, blur_pool2d, max_blur_pool2d
from .weights import convert_zhang_state_dict, from_zhang, zhang_key_map

__all__ = [
    "APSPool2d",
    "BlurConv2d",
    "BlurPool2d",
    "LPSPool2d",
    "MaxBlurPool2d",
    "TimmAAError",
    "alias_free",
    "antialias",
    "blur_pool2d",
    "convert_zhang_state_dict",
    "from_zhang",
    "max_blur_pool2d",
    "zhang_key_map",
]
