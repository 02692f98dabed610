"""Polyphase downsampling: adaptive (APS, Chaman & Dokmanic, CVPR 2021) and learnable (LPS, Rojas-Gomez
et al., NeurIPS 2022). Re-implemented from the papers.

A stride-s subsampling keeps one of s*s polyphase components ``x[..., i::s, j::s]``. Plain striding always
keeps (0, 0), so a one-pixel shift swaps which pixels survive. APS keeps, per sample, the component with
the largest L2 norm; LPS scores the components with a small network (Gumbel-softmax in training, argmax in
eval). Under a circular shift of the input, the chosen component is the same set of pixels, so with
circular padding everywhere a network becomes exactly invariant to circular shifts.

Maps whose sides are not multiples of the stride are first padded circularly to the next multiple; they
still run, but the invariance is then no longer exact (the padding breaks the circular symmetry). Residual
blocks: the shortcut must subsample with the main branch's phase; ``follow=main_pool`` makes a pool take, in each
call, the choice its main pool made in that call (a :class:`~timm_aa.layers.phase_link.PhaseLink`: no per-call
state on either module, so threads may share a model; its notes say how and where it holds).

LPS's Gumbel temperature ``tau`` is a finite number >= ``LPS_MIN_TAU`` (1e-3), checked wherever it is set: below it,
float16 logits overflow, and float32 weights are one-hot with zero gradients (at 1e-5 the largest gradient is
3e-33); NaN comes at about 1e-38 in float32 and bfloat16 (``docs/layers.md``).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module
from torch import nn

from ..errors import TimmAAError
from .helpers import check_count, check_input, to_pair
from .options import LPS_MIN_TAU
from .phase_link import PhaseLink


def polyphase_stack(x: torch.Tensor, stride: int) -> torch.Tensor:
    """The ``stride**2`` polyphase components of ``x`` (N, C, H, W) as (N, P, C, ceil(H/s), ceil(W/s));
    component ``p = i * stride + j`` is ``x[..., i::stride, j::stride]`` (after circular padding to a multiple).

    Example:
        >>> polyphase_stack(torch.arange(16.).view(1, 1, 4, 4), 2)[0, 1, 0].tolist()
        [[1.0, 3.0], [9.0, 11.0]]
    """
    n, c, h, w = x.shape
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="circular")
        h, w = h + ph, w + pw
    x = x.reshape(n, c, h // stride, stride, w // stride, stride)
    return x.permute(0, 3, 5, 1, 2, 4).reshape(n, stride * stride, c, h // stride, w // stride)


def select_phase(stack: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Combine components (N, P, C, h, w) with per-sample phase weights (N, P): one-hot picks one, soft mixes.

    Example:
        >>> select_phase(polyphase_stack(torch.arange(16.).view(1, 1, 4, 4), 2), torch.tensor([[0., 1, 0, 0]])).shape
        torch.Size([1, 1, 2, 2])
    """
    return torch.einsum("np,npchw->nchw", weights.to(stack.dtype), stack)


def aps_weights(stack: torch.Tensor) -> torch.Tensor:
    """One-hot (N, P) weights of the component with the largest L2 norm (APS).

    Example:
        >>> aps_weights(polyphase_stack(torch.arange(16.).view(1, 1, 4, 4), 2)).tolist()
        [[0.0, 0.0, 0.0, 1.0]]
    """
    norms = stack.float().pow(2).sum(dim=(2, 3, 4))
    return F.one_hot(norms.argmax(dim=1), stack.shape[1]).to(stack.dtype)


def aps_pool2d(input: torch.Tensor, stride: int | tuple[int, int] = 2) -> torch.Tensor:
    """Adaptive polyphase sampling: per sample, the polyphase component with the largest L2 norm.

    The functional twin of :class:`APSPool2d`. Exactly equivariant to circular shifts when H and W are multiples
    of ``stride``.

    Example:
        >>> aps_pool2d(torch.arange(16.).view(1, 1, 4, 4)).flatten().tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    check_input(input, "aps_pool2d")
    stack = polyphase_stack(input, to_pair(stride, "stride", square=True)[0])
    return select_phase(stack, aps_weights(stack))


def check_tau(tau: float) -> float:
    """LPS's Gumbel temperature checked (a finite number >= ``LPS_MIN_TAU``, not a bool) and returned as a float.

    Example:
        >>> check_tau(0.5)
        0.5
        >>> check_tau(0)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: LPS temperature tau must be a finite number >= 0.001, got 0
    """
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not math.isfinite(tau) or tau < LPS_MIN_TAU:
        raise TimmAAError(f"LPS temperature tau must be a finite number >= {LPS_MIN_TAU:g}, got {tau!r}")
    return float(tau)


class PolyphasePool2d(nn.Module):
    """Base of the polyphase pools: the stride, and following another pool's choice.

    Subclasses define :meth:`choose` (per-sample phase weights from the stacked components).

    Example:
        >>> main, shortcut = APSPool2d(), APSPool2d()
        >>> shortcut.follow(main)
        >>> x = torch.randn(2, 8, 16, 16)
        >>> y, weights = main.forward_with_weights(x)
        >>> torch.equal(shortcut(x), y)  # the same phase as main's, in this call
        True
    """

    def __init__(self, stride: int | tuple[int, int] = 2, follow: PolyphasePool2d | None = None) -> None:
        super().__init__()
        self.stride = to_pair(stride, "stride", square=True)[0]
        self.link = PhaseLink()
        self.following = False
        self.follow(follow)

    def follow(self, main: PolyphasePool2d | None) -> None:
        """Take ``main``'s phase choice in each call (a residual block's shortcut follows its main branch);
        ``following`` then says so. ``main`` must run first in each call (docs: :mod:`~timm_aa.layers.phase_link`)."""
        if self.following:  # leave the link it followed; a pool that others follow keeps its own link
            self.link.followers -= 1
            self.link, self.following = PhaseLink(), False
        if main is not None:
            self.link, self.following = main.link, True
            self.link.followers += 1

    def choose(self, stack: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_with_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The subsampled map and the (N, P) phase weights it used: its own choice, or its main pool's."""
        stack = polyphase_stack(x, self.stride)
        if self.following:
            weights = self.link.take(x.shape[0])
        else:
            weights = self.choose(stack)
            self.link.publish(weights)
        return select_phase(stack, weights), weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_weights(x)[0]

    def extra_repr(self) -> str:
        return f"stride={self.stride}, follows_other={self.following}"


@register_notrace_module
class APSPool2d(PolyphasePool2d):
    """Adaptive polyphase sampling: keep the polyphase component with the largest norm. No parameters.

    Example:
        >>> pool = APSPool2d(stride=2)
        >>> x = torch.randn(1, 8, 16, 16)  # (each sample chooses its own phase, so its own shift)
        >>> y, y_shifted = pool(x), pool(torch.roll(x, (1, 3), dims=(2, 3)))
        >>> any(torch.equal(y_shifted, torch.roll(y, (a, b), dims=(2, 3))) for a in range(8) for b in range(8))
        True
    """

    def choose(self, stack: torch.Tensor) -> torch.Tensor:
        return aps_weights(stack)


class GumbelTau:
    """The ``tau`` of a learned sampler (:class:`LPSPool2d`, :class:`~timm_aa.layers.LearnedPatchAnchor2d`): its
    Gumbel-softmax temperature in training, checked by :func:`check_tau` whenever it is set.

    Example:
        >>> LPSPool2d(8, tau=0.5).tau
        0.5
    """

    @property
    def tau(self) -> float:
        """The Gumbel-softmax temperature of training, a finite number >= ``LPS_MIN_TAU``; checked when set."""
        return self._tau

    @tau.setter
    def tau(self, value: float) -> None:
        self._tau = check_tau(value)


def zero_scorer(channels: int, hidden: int) -> nn.Sequential:
    """The learned samplers' per-pixel scorer: 1x1 conv, ReLU, 1x1 conv to one map; the last conv starts at zero,
    so an untrained sampler scores as its parameter-free twin (APS) does. Both counts: positive ints.

    Example:
        >>> zero_scorer(8, 4)(torch.randn(1, 8, 3, 3)).abs().max().item()
        0.0
    """
    channels, hidden = check_count(channels, "channels"), check_count(hidden, "hidden")
    scorer = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))
    nn.init.zeros_(scorer[2].weight)
    nn.init.zeros_(scorer[2].bias)
    return scorer


@register_notrace_module
class LPSPool2d(GumbelTau, PolyphasePool2d):
    """Learnable polyphase sampling: a small scorer (1x1 convs + global average) rates each component.

    The score is ``log ||x_p||^2 + g(x_p)`` with ``g``'s last layer initialised to zero, so an untrained
    (freshly converted) LPS layer chooses exactly as APS does. Training samples soft weights with
    Gumbel-softmax at temperature ``tau`` (annealed by the training loop; a finite number >= ``LPS_MIN_TAU``, 1e-3,
    checked wherever it is set); eval takes the argmax.

    Example:
        >>> pool = LPSPool2d(8, stride=2).eval()
        >>> x = torch.randn(1, 8, 16, 16)
        >>> torch.equal(pool(x), APSPool2d(stride=2)(x))  # untrained, it chooses as APS does
        True
    """

    def __init__(self, channels: int, stride: int | tuple[int, int] = 2, hidden: int | None = None, tau: float = 1.0,
                 follow: PolyphasePool2d | None = None) -> None:
        super().__init__(stride, follow)
        self.channels = check_count(channels, "channels")
        self.tau = tau
        self.scorer = zero_scorer(channels, max(8, channels // 4) if hidden is None else hidden)

    def logits(self, stack: torch.Tensor) -> torch.Tensor:
        n, p, c, h, w = stack.shape
        learned = self.scorer(stack.reshape(n * p, c, h, w)).mean(dim=(1, 2, 3)).view(n, p)
        return stack.float().pow(2).sum(dim=(2, 3, 4)).clamp_min(1e-12).log() + learned.float()

    def choose(self, stack: torch.Tensor) -> torch.Tensor:
        logits = self.logits(stack)
        if self.training:
            return F.gumbel_softmax(logits, tau=self.tau, hard=False, dim=1).to(stack.dtype)
        return F.one_hot(logits.argmax(dim=1), stack.shape[1]).to(stack.dtype)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, {super().extra_repr()}, tau={self.tau}"
