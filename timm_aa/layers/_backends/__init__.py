"""Where BlurPool and MaxBlurPool run, decided once per call by :func:`choose` from the tensor's device and dtype:

- ``triton``: CUDA tensors (float16, bfloat16, float32, float64), one-pass Triton kernels (:mod:`.triton_kernels`);
- ``native``: CPU float32/float64 tensors, the C kernel (:mod:`.native`), built on first use;
- ``reference``: everything else, and whenever a graph is being exported, traced or scripted: pad, then a
  depthwise convolution (:mod:`.reference`), the specification the other two are tested against.

``TIMM_AA_BACKEND=reference|native|triton`` forces one (tests and benchmarks; with ``TRITON_INTERPRET=1``,
``triton`` runs on CPU tensors). A forced backend that cannot take a tensor is an error, never a silent fallback.
The fast backends run inside ``torch.library`` custom ops (:mod:`.ops`), so ``torch.compile(fullgraph=True)``,
double backward, autocast and DDP see one opaque op with its own backward.
"""

import importlib.util
import os

import torch

from ...errors import TimmAAError

BACKENDS = ("reference", "native", "triton")
ENV = "TIMM_AA_BACKEND"
NATIVE_DTYPES = (torch.float32, torch.float64)
TRITON_DTYPES = (torch.float16, torch.bfloat16, *NATIVE_DTYPES)
HAS_TRITON = importlib.util.find_spec("triton") is not None  # Triton comes with PyTorch's CUDA wheels


@torch.jit.unused
def exporting() -> bool:
    """True while a graph is traced or exported (ONNX, ``torch.export``): the reference then runs.

    Example:
        >>> exporting()
        False
    """
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def choose(x: torch.Tensor) -> str:
    """The backend a BlurPool of ``x`` runs on now: the one choice a call makes (see the module docstring).

    Example:
        >>> choose(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16)), choose(torch.zeros(1, 1, 4, 4))
        ('reference', 'native')
    """
    if exporting():
        return "reference"
    from . import native

    device, dtype = x.device.type, x.dtype
    native_ok = device == "cpu" and dtype in NATIVE_DTYPES and native.kernel() is not None
    interpreted = device == "cpu" and os.environ.get("TRITON_INTERPRET", "0") == "1"
    triton_ok = HAS_TRITON and dtype in TRITON_DTYPES and (device == "cuda" or interpreted)
    forced = os.environ.get(ENV, "").strip().lower()
    if not forced:
        return "triton" if triton_ok and device == "cuda" else "native" if native_ok else "reference"
    if forced not in BACKENDS:
        raise TimmAAError(f"{ENV}={forced!r} is not a backend; use one of {BACKENDS} or leave it unset")
    if forced == "native" and not native_ok or forced == "triton" and not triton_ok:
        need = ("a CPU float32/float64 tensor and a built C kernel" if forced == "native" else
                "a CUDA tensor (or TRITON_INTERPRET=1 for CPU tensors), a floating dtype and Triton")
        raise TimmAAError(f"{ENV}={forced} needs {need}; got a {dtype} tensor on {device}. "
                          f"Unset {ENV} to choose automatically")
    return forced
