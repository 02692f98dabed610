"""Where BlurPool and MaxBlurPool run, decided once per call by :func:`choose` from the tensor's device and dtype:

- ``triton``: CUDA tensors (float16, bfloat16, float32, float64), one-pass Triton kernels (:mod:`.triton_kernels`),
  by default only for the classes a measured GPU table shows faster (none yet: :mod:`.choice`);
- ``native``: CPU float32/float64 tensors, the C kernel (:mod:`.native`), built on first use;
- ``reference``: everything else, and whenever a graph is being exported, traced or scripted: pad, then a
  depthwise convolution (:mod:`.reference`), the specification the other two are tested against.

``TIMM_AA_BACKEND=reference|native|triton`` forces one (tests and benchmarks; with ``TRITON_INTERPRET=1``,
``triton`` runs on CPU tensors). A forced backend that cannot take a tensor is an error, never a silent fallback.
The fast backends run inside ``torch.library`` custom ops (:mod:`.ops`), so ``torch.compile(fullgraph=True)``,
double backward, autocast and DDP see one opaque op with its own backward.
"""

from .choice import BACKENDS, ENV, HAS_TRITON, NATIVE_DTYPES, TRITON_DTYPES, choose
from .tracing import exporting

__all__ = ["BACKENDS", "ENV", "HAS_TRITON", "NATIVE_DTYPES", "TRITON_DTYPES", "choose", "exporting"]
