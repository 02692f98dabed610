"""Anti-aliasing layers: each a functional and a module."""

from .blur_conv import BlurConv2d
from .blur_pool import BlurPool2d, blur_pool2d
from .filters import MAX_FILT_SIZE, binomial_filter1d, binomial_filter2d, binomial_taps, check_filt_size
from .max_blur_pool import MaxBlurPool2d, dense_max_pool2d, max_blur_pool2d
from .padding import PAD_MODES, blur_pads, check_pad_mode, pad2d
from .reference import reference_blur_pool2d
from .separable import separable_blur_pool2d

__all__ = [
    "BlurConv2d",
    "BlurPool2d",
    "MAX_FILT_SIZE",
    "MaxBlurPool2d",
    "PAD_MODES",
    "binomial_filter1d",
    "binomial_filter2d",
    "binomial_taps",
    "blur_pads",
    "blur_pool2d",
    "check_filt_size",
    "check_pad_mode",
    "dense_max_pool2d",
    "max_blur_pool2d",
    "pad2d",
    "reference_blur_pool2d",
    "separable_blur_pool2d",
]
