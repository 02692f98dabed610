"""Where BlurPool and MaxBlurPool run. One place decides, per call, from the tensor's device and dtype:

- ``triton``: CUDA tensors (float16, bfloat16, float32, float64), one-pass Triton kernels (:mod:`.triton_kernels`);
- ``native``: CPU float32/float64 tensors, the C kernel (:mod:`.native`), built on first use;
- ``reference``: everything else, and whenever a graph is being exported, traced or scripted: pad, then a
  depthwise convolution (:mod:`.reference`), the specification the other two are tested against.

``TIMM_AA_BACKEND=reference|native|triton`` forces one (tests and benchmarks; with ``TRITON_INTERPRET=1``,
``triton`` runs on CPU tensors). A forced backend that cannot take a tensor is an error, never a silent fallback.
The fast backends run inside ``torch.library`` custom ops (:mod:`.ops`), so ``torch.compile(fullgraph=True)``,
double backward, autocast and DDP see one opaque op with its own backward.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from ...errors import TimmAAError

BACKENDS = ("reference", "native", "triton")
ENV = "TIMM_AA_BACKEND"
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
NATIVE_DTYPES = (torch.float32, torch.float64)


def forced_backend() -> str | None:
    """The backend ``TIMM_AA_BACKEND`` forces, or None (empty or unset: chosen per tensor).

    Example:
        >>> forced_backend() in (None, 'reference', 'native', 'triton')
        True
    """
    name = os.environ.get(ENV, "").strip().lower()
    if not name:
        return None
    if name not in BACKENDS:
        raise TimmAAError(f"{ENV}={name!r} is not a backend; use one of {BACKENDS} or leave it unset")
    return name


def triton_available() -> bool:
    """Whether Triton is installed (it comes with PyTorch's CUDA wheels).

    Example:
        >>> isinstance(triton_available(), bool)
        True
    """
    return importlib.util.find_spec("triton") is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _native_ok(device_type: str, dtype: torch.dtype) -> bool:
    from . import native

    return device_type == "cpu" and dtype in NATIVE_DTYPES and native.kernel() is not None


def _triton_ok(device_type: str, dtype: torch.dtype) -> bool:
    on_device = device_type == "cuda" or (device_type == "cpu" and _interpreting())
    return on_device and dtype in TRITON_DTYPES and triton_available()


def fast_backend(device_type: str, dtype: torch.dtype) -> str | None:
    """``'triton'`` or ``'native'`` where a kernel takes tensors of this device type and dtype, else None
    (the reference runs). Honours ``TIMM_AA_BACKEND``.

    Example:
        >>> fast_backend('cpu', torch.bfloat16) is None
        True
    """
    forced = forced_backend()
    if forced == "reference":
        return None
    if forced is not None:
        ok = _native_ok if forced == "native" else _triton_ok
        if not ok(device_type, dtype):
            need = ("a CPU float32/float64 tensor and a built C kernel" if forced == "native" else
                    "a CUDA tensor (or TRITON_INTERPRET=1 for CPU tensors), a floating dtype and Triton")
            raise TimmAAError(f"{ENV}={forced} needs {need}; got a {dtype} tensor on {device_type}. "
                              f"Unset {ENV} to choose automatically")
        return forced
    if device_type == "cuda" and _triton_ok(device_type, dtype):
        return "triton"
    if _native_ok(device_type, dtype):
        return "native"
    return None


def exporting() -> bool:
    """True while a graph is scripted, traced or exported (ONNX, ``torch.export``): the reference then runs.

    Example:
        >>> exporting()
        False
    """
    return (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_exporting())


def backend_for(x: torch.Tensor) -> str:
    """The backend a BlurPool of ``x`` runs on now.

    Example:
        >>> backend_for(torch.zeros(1, 1, 4, 4, dtype=torch.float16))
        'reference'
    """
    if exporting():
        return "reference"
    return fast_backend(x.device.type, x.dtype) or "reference"
