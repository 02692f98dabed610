"""Whether a graph is being traced or exported: the reference backend then runs (standard ops only).

No ``from __future__ import annotations`` here: TorchScript reads :func:`exporting`'s annotations (it is
``torch.jit.unused``), and would meet the string ``'bool'``.
"""

import torch


@torch.jit.unused
def exporting() -> bool:
    """True while a graph is traced or exported (ONNX, ``torch.export``): the reference then runs.

    Example:
        >>> exporting()
        False
    """
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()
