"""How a shortcut's polyphase pool takes the phase choice of its main branch, with no per-call state on a module.

A residual block whose main branch subsamples with APS or LPS must subsample its shortcut with the same phase, per
sample, or it adds two maps shifted against each other. The main pool and the pools that follow it share a
:class:`PhaseLink`, a token made when they are linked (``antialias()`` links them). In each call the main pool
*publishes* its phase weights on the link and each follower *takes* them; the last follower to take them removes
them, so nothing of a call outlives it. The weights are held in a ``threading.local`` of the link: a call sees
only what its own thread published, so threads that share one model (a server's thread pool) get the serial
results bit for bit.

Why it holds where models go:

- copies: ``copy.deepcopy`` and pickling give a copy a new link, shared by the copy's pools (the memo); the shallow
  replicas of ``nn.DataParallel`` share the original's link but run in their own threads; no pool refers to another
  pool, so no copy reads the original's choice;
- asyncio tasks: a forward never yields to the event loop midway, so two tasks on one thread never interleave
  between a main pool and its follower;
- ``torch.compile`` (``fullgraph=True`` too), ``torch.export`` (strict or not) and both ONNX exporters: dynamo traces
  the thread-local attribute and replays its writes, so the weights flow inside the graph (a ``ContextVar`` would
  not do: dynamo refuses ``ContextVar.set``); fx feature extraction runs the pools, leaf modules, in the traced
  order; gradient checkpointing reruns main then follower in one thread.

Limits: the follower must run after its main pool, in the same call and thread. ``antialias()`` reads the order
from the block's traced graph, so in a block that computes its shortcut before its main branch (timm's
pre-activation ResNetV2, DPN, FastViT's MobileOne blocks) the shortcut's pool chooses and the main branch's follows
(``timm_aa/convert/link_order.py``). A follower called by itself, or before its main pool, gets one
``RuntimeError``; splitting one forward across threads is not supported. ``torch.jit.script`` cannot compile the
polyphase pools (it could not before either); ``torch.jit.trace`` can.
"""

from __future__ import annotations

import threading

import torch

_RAN_BEFORE = ("a following polyphase pool ran before the pool it follows, in this call and thread (or on another "
               "batch): a shortcut computed before its main branch cannot reuse its choice; use aa_layer='blur' there")


class PhaseLink:
    """The token shared by a main polyphase pool and its followers; carries a call's phase weights from the one to
    the others, per thread (see the module's notes).

    Example:
        >>> link = PhaseLink(followers=1)
        >>> link.publish(torch.eye(4)[:2])
        >>> link.take(batch=2).argmax(1).tolist()
        [0, 1]
        >>> link.take(batch=2)
        Traceback (most recent call last):
        ...
        RuntimeError: a following polyphase pool ran before the pool it follows, in this call and thread (or on ...
    """

    def __init__(self, followers: int = 0) -> None:
        self.followers = followers
        self._local = threading.local()

    def __reduce__(self):
        return PhaseLink, (self.followers,)  # a copy gets its own (empty) link; the memo shares it between its pools

    def __repr__(self) -> str:
        return f"PhaseLink(followers={self.followers})"

    def publish(self, weights: torch.Tensor) -> None:
        """Hand this call's (N, P) phase weights to the followers (nothing is kept when there are none)."""
        if self.followers:
            self._local.pending = (weights, self.followers)

    def take(self, batch: int) -> torch.Tensor:
        """The weights the main pool published in this call and thread, for a batch of ``batch`` samples; the last
        follower to take them removes them."""
        pending = getattr(self._local, "pending", None)
        if pending is None or pending[0].shape[0] != batch:
            raise RuntimeError(_RAN_BEFORE)
        weights, left = pending
        self._local.pending = (weights, left - 1) if left > 1 else None
        return weights
