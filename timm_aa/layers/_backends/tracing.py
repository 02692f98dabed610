"""Whether a graph is being traced or exported: the reference backend then runs (standard ops only)."""

from __future__ import annotations

import torch


@torch.jit.unused
def exporting() -> bool:
    """True while a graph is traced or exported (ONNX, ``torch.export``): the reference then runs.

    Example:
        >>> exporting()
        False
    """
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()
