"""The one choice of a backend per call (see the package docstring): :func:`choose`.

CUDA tensors run the reference unless :data:`TRITON_DEFAULT` names their class: a fast path earns its place with a
measured row, and no GPU table (docs/speed.md) has shown a Triton kernel faster yet. ``TIMM_AA_BACKEND=triton``
opts in. A GPU Triton cannot compile for (CUDA capability below 7.0: a P100, a GTX 10xx) never reaches Triton.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from ...errors import TimmAAError
from . import native
from .layout import memory_format_of
from .tracing import exporting

BACKENDS = ("reference", "native", "triton")
ENV = "TIMM_AA_BACKEND"
NATIVE_DTYPES = (torch.float32, torch.float64)
TRITON_DTYPES = (torch.float16, torch.bfloat16, *NATIVE_DTYPES)
HAS_TRITON = importlib.util.find_spec("triton") is not None  # Triton comes with PyTorch's CUDA wheels
MIN_TRITON_CAPABILITY = (7, 0)  # Triton's own floor: older GPUs raise "too old to be supported" at compile time
#: the (dtype, memory format) classes of CUDA tensors where a measured GPU table shows Triton faster than the
#: reference, e.g. ``("bfloat16", "channels_last")``; empty until one does (``benchmarks/gpu_check.py`` prints the
#: rows that would add a class)
TRITON_DEFAULT: frozenset[tuple[str, str]] = frozenset()


def triton_class(x: torch.Tensor) -> tuple[str, str]:
    """The class of a tensor that :data:`TRITON_DEFAULT` is keyed by: its dtype and memory format names.

    Example:
        >>> triton_class(torch.zeros(1, 2, 3, 3).to(memory_format=torch.channels_last))
        ('float32', 'channels_last')
    """
    layout = "channels_last" if memory_format_of(x) == torch.channels_last else "contiguous"
    return str(x.dtype).removeprefix("torch."), layout


def triton_compiles_for(device: torch.device) -> bool:
    """Whether Triton can compile kernels for ``device`` (a CUDA device of capability 7.0 or newer).

    Example:
        >>> triton_compiles_for(torch.device('cpu'))
        False
    """
    return device.type == "cuda" and HAS_TRITON and torch.cuda.get_device_capability(device) >= MIN_TRITON_CAPABILITY


def choose(x: torch.Tensor) -> str:
    """The backend a BlurPool of ``x`` runs on now: the one choice a call makes (see the module docstring).

    Example:
        >>> choose(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16)), choose(torch.zeros(1, 1, 4, 4))
        ('reference', 'native')
    """
    if exporting():
        return "reference"
    device, dtype = x.device.type, x.dtype
    native_ok = device == "cpu" and dtype in NATIVE_DTYPES and native.kernel() is not None
    interpreted = device == "cpu" and os.environ.get("TRITON_INTERPRET", "0") == "1"
    triton_ok = HAS_TRITON and dtype in TRITON_DTYPES and (interpreted or triton_compiles_for(x.device))
    forced = os.environ.get(ENV, "").strip().lower()
    if not forced:
        if device == "cuda":
            return "triton" if triton_ok and triton_class(x) in TRITON_DEFAULT else "reference"
        return "native" if native_ok else "reference"
    if forced not in BACKENDS:
        raise TimmAAError(f"{ENV}={forced!r} is not a backend; use one of {BACKENDS} or leave it unset")
    if forced == "native" and not native_ok or forced == "triton" and not triton_ok:
        need = ("a CPU float32/float64 tensor and a built C kernel" if forced == "native" else
                "a CUDA tensor on a GPU of capability 7.0 or newer (or TRITON_INTERPRET=1 for CPU tensors), a "
                "floating dtype and Triton")
        raise TimmAAError(f"{ENV}={forced} needs {need}; got a {dtype} tensor on {x.device}. "
                          f"Unset {ENV} to choose automatically")
    return forced
