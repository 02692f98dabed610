"""The values the anti-aliasing layers take, and their defaults: defined here once, used by the layers' checks,
by the signatures that repeat a default, by the model conversion, and by the checks of files and flags.

Standard library only: the scripts read it before torch is imported.

Example:
    >>> DEFAULT_FILT_SIZE in FILT_SIZES, DEFAULT_PAD_MODE in PAD_MODES, AA_LAYERS['blurpc']
    (True, True, 'blur')
"""

from __future__ import annotations

#: binomial filter sizes (1: no blur); Zhang's pretrained default is 4
FILT_SIZES = range(1, 8)
DEFAULT_FILT_SIZE = 4
#: padding modes of the blur (timm's and ``F.pad``'s ``'constant'`` is accepted for ``'zeros'``)
PAD_MODES = ("reflect", "replicate", "zeros", "circular")
PAD_MODE_ALIASES = {"constant": "zeros"}
DEFAULT_PAD_MODE = "reflect"
#: the ``aa_layer`` names ``antialias()`` takes, each with the method it stands for ('blurpc' pads with zeros)
AA_LAYERS = {"blur": "blur", "blurpool": "blur", "blurpc": "blur", "aps": "aps", "lps": "lps"}
DEFAULT_AA_LAYER = "blur"
#: the lowest Gumbel-softmax temperature of learned polyphase sampling (LPS): at 0 its soft choice is undefined (NaN)
LPS_MIN_TAU = 1e-3
#: the largest channel or hidden-unit count a layer takes (timm's widest layers have a few thousand channels); a
#: larger one is a mistake, refused in one line before torch tries to allocate it
MAX_COUNT = 1 << 16
