"""Which of two polyphase pools of a residual block runs first, read from the block's traced graph.

``antialias()`` links a block's shortcut pool to its main-branch pool so both subsample with one phase; the pool
that runs first must choose. Most blocks run the main branch first; pre-activation ResNets, DPN and MobileOne blocks
(FastViT) run the shortcut first.
"""

from __future__ import annotations

import torch.fx
from torch import nn

from ..layers import PolyphasePool2d


class _PoolTracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, PolyphasePool2d) or super().is_leaf_module(m, qualname)


def runs_first(block: nn.Module, a: nn.Module, b: nn.Module) -> bool | None:
    """True when ``block``'s forward calls the pool ``a`` before the pool ``b``, False when after, None when the
    block does not trace (then nothing is known).

    Example:
        >>> from timm_aa.layers import APSPool2d
        >>> block = nn.Sequential(APSPool2d(), nn.Identity(), APSPool2d())
        >>> runs_first(block, block[2], block[0])
        False
    """
    names = {id(m): name for name, m in block.named_modules()}
    try:
        graph = _PoolTracer().trace(block)
    except Exception:  # data-dependent control flow and the like: any exception means "cannot tell"
        return None
    order = [node.target for node in graph.nodes if node.op == "call_module"]
    if names.get(id(a)) not in order or names.get(id(b)) not in order:
        return None
    return order.index(names[id(a)]) < order.index(names[id(b)])
