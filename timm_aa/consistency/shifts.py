"""Seeded crop offsets and circular shifts (integer and fractional), the crops they cut and the shifts they make.

Offsets for pass ``p`` come from ``torch.Generator().manual_seed(stream_seed(seed, p, stream))``, one
stream per protocol, so every model of a run sees exactly the same crops.
"""

from __future__ import annotations

import math

import torch

from ..layers.helpers import check_input

RANDOM_STREAM, CIRCULAR_STREAM, FRACTIONAL_STREAM = 0, 1, 2
_NEW_STREAMS = 2**32  # seeds of the streams added after 0.1 start here, clear of the first two streams' seeds


def stream_seed(seed: int, pass_index: int, stream: int) -> int:
    """The generator seed for one protocol's draws in one pass (the random and circular streams keep 0.1's seeds).

    Example:
        >>> stream_seed(0, 1, RANDOM_STREAM), stream_seed(0, 1, FRACTIONAL_STREAM) - 2**32
        (2, 10)
    """
    if stream < FRACTIONAL_STREAM:
        return seed * 10_007 + pass_index * 2 + stream
    return _NEW_STREAMS + (seed * 10_007 + pass_index) * 8 + stream


def draw_offsets(seed: int, pass_index: int, count: int, max_offset: int) -> torch.Tensor:
    """``count`` rows of two crop offsets ``(y1, x1, y2, x2)``, each uniform in ``[0, max_offset]``.

    Example:
        >>> draw_offsets(0, 0, 3, 32).shape
        torch.Size([3, 4])
    """
    gen = torch.Generator().manual_seed(stream_seed(seed, pass_index, RANDOM_STREAM))
    return torch.randint(0, max_offset + 1, (count, 4), generator=gen)


def draw_shifts(seed: int, pass_index: int, count: int, max_shift: int) -> torch.Tensor:
    """``count`` rows of two circular shifts ``(dy1, dx1, dy2, dx2)``, each uniform in ``[-max_shift, max_shift)``.

    Example:
        >>> bool((draw_shifts(0, 0, 100, 32).abs() <= 32).all())
        True
    """
    gen = torch.Generator().manual_seed(stream_seed(seed, pass_index, CIRCULAR_STREAM))
    return torch.randint(-max_shift, max_shift, (count, 4), generator=gen)


def draw_fractional_shifts(seed: int, pass_index: int, count: int, max_shift: int) -> torch.Tensor:
    """``count`` rows of two real circular shifts ``(dy1, dx1, dy2, dx2)``, each uniform in ``[-max_shift, max_shift)``
    (float64, from the fractional protocol's own stream).

    Example:
        >>> s = draw_fractional_shifts(0, 0, 100, 32)
        >>> s.dtype, bool((s >= -32).all() and (s < 32).all()), bool((s != s.round()).all())
        (torch.float64, True, True)
    """
    gen = torch.Generator().manual_seed(stream_seed(seed, pass_index, FRACTIONAL_STREAM))
    return torch.rand((count, 4), generator=gen, dtype=torch.float64) * (2 * max_shift) - max_shift


def crop_at(x: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``size x size`` from each image of ``x`` (B, C, H, W) at its ``(y, x)`` row of ``offsets`` (B, 2).

    Example:
        >>> crop_at(torch.zeros(2, 3, 8, 8), torch.tensor([[0, 1], [2, 3]]), 4).shape
        torch.Size([2, 3, 4, 4])
    """
    if bool((offsets == offsets[0]).all()):  # one offset for the batch: a view, no copy
        oy, ox = int(offsets[0, 0]), int(offsets[0, 1])
        return x[:, :, oy : oy + size, ox : ox + size]
    pairs = zip(x, offsets.tolist(), strict=True)
    return torch.stack([img[:, oy : oy + size, ox : ox + size] for img, (oy, ox) in pairs])


def roll_each(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circularly shift each image of ``x`` by its ``(dy, dx)`` row of ``shifts`` (B, 2).

    Example:
        >>> roll_each(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([[0, 1]])).flatten().tolist()
        [1.0, 0.0, 3.0, 2.0]
    """
    pairs = zip(x, shifts.tolist(), strict=True)
    return torch.stack([torch.roll(img, (dy, dx), dims=(1, 2)) for img, (dy, dx) in pairs])


def _roll_rows(x: torch.Tensor, shifts: torch.Tensor, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    index = (torch.arange(n, device=x.device)[None, :] - shifts[:, None].to(x.device)) % n  # (B, n)
    view = [x.shape[0], 1, 1, 1]
    view[dim] = n
    return x.gather(dim, index.view(view).expand_as(x))


def _phase(amounts: torch.Tensor, n: int, half: bool, dtype: torch.dtype) -> torch.Tensor:
    """Per-image Fourier multipliers (B, bins) of a shift by ``amounts`` (B,) on an axis of ``n`` samples."""
    k = torch.arange(n // 2 + 1 if half else n, dtype=dtype, device=amounts.device)
    if not half:
        k = torch.where(k > n // 2, k - n, k)
    angle = -2 * math.pi * k[None, :] * amounts[:, None].to(dtype) / n
    mult = torch.polar(torch.ones_like(angle), angle)
    if n % 2 == 0:  # the Nyquist bin of an even size: real cos(pi t), so the image stays real
        nyquist = torch.cos(math.pi * amounts.to(dtype)).to(mult.dtype)
        mult = torch.cat([mult[:, : n // 2], nyquist[:, None], mult[:, n // 2 + 1 :]], dim=1)
    return mult


def fractional_roll(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circularly shift each image of ``x`` (B, C, H, W) by its real ``(dy, dx)`` row of ``shifts`` (B, 2), as a
    Fourier phase shift (band-limited interpolation).

    The nearest integer part is a gather (bit-exact ``torch.roll``: integer amounts give exactly ``torch.roll``'s
    result), the rest, in [-0.5, 0.5], a phase ramp computed in float32 (float64 for float64 images). The Nyquist
    bin of an even size is multiplied by the real ``cos(pi * t)``, so the result is real; a consequence: shifting by
    ``a`` then ``b`` equals shifting by ``a + b`` only when that bin is zero (or ``a`` or ``b`` is an integer).

    Example:
        >>> x = torch.tensor([[[[0., 1., 0., -1., 0., 1., 0., -1.]]]])  # sin(pi n / 2)
        >>> torch.equal(fractional_roll(x, torch.tensor([[0., 3.]])), torch.roll(x, 3, dims=3))
        True
        >>> fractional_roll(x, torch.tensor([[0., 0.5]]))[0, 0, 0, :4]  # half a pixel on: sin(pi (n - 1/2) / 2)
        tensor([-0.7071,  0.7071,  0.7071, -0.7071])
    """
    check_input(x, "fractional_roll")
    if not isinstance(shifts, torch.Tensor) or shifts.shape != (x.shape[0], 2):
        got = list(shifts.shape) if isinstance(shifts, torch.Tensor) else type(shifts).__name__
        raise ValueError(f"shifts must be a (batch, 2) = ({x.shape[0]}, 2) tensor, got {got}")
    shifts = shifts.to(torch.float64)
    whole = torch.round(shifts)
    frac = shifts - whole
    out = _roll_rows(_roll_rows(x, whole[:, 0].long(), 2), whole[:, 1].long(), 3)
    todo = (frac != 0).any(1).nonzero()[:, 0].tolist()
    if not todo:
        return out
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    h, w = x.shape[-2:]
    part, f = out[todo].to(dtype), frac[todo].to(x.device)
    spec = torch.fft.rfft2(part)
    spec = spec * _phase(f[:, 0], h, False, dtype)[:, None, :, None] * _phase(f[:, 1], w, True, dtype)[:, None, None, :]
    out = out.clone()
    out[todo] = torch.fft.irfft2(spec, s=(h, w)).to(x.dtype)
    return out
