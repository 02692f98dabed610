"""Fractional circular shifts and the worst-case protocols (issue 19): fractional_roll against its interpolation
kernel, the fractional and adversarial protocols against hand-checkable models, and scripts/evaluate.py."""

from __future__ import annotations

import math

import pytest
import torch

from timm_aa.consistency import draw_fractional_shifts, draw_shifts, fractional_roll
from timm_aa.consistency.shifts import CIRCULAR_STREAM, FRACTIONAL_STREAM, RANDOM_STREAM, stream_seed


def _rows(*amounts) -> torch.Tensor:
    return torch.tensor(amounts, dtype=torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", [(8, 8), (7, 10), (5, 3)])
def test_fractional_roll_with_integer_amounts_is_torch_roll(dtype, size):
    x = torch.randn(4, 3, *size, dtype=dtype)
    shifts = _rows((1, 2), (-3, 0), (17, -9), (0, 0))
    out = fractional_roll(x, shifts)
    for i, (dy, dx) in enumerate(shifts.long().tolist()):
        assert torch.equal(out[i], torch.roll(x[i], (dy, dx), dims=(1, 2)))  # bit-exact, in both dtypes
    assert torch.equal(fractional_roll(x, _rows(*[size] * 4)), x)  # a whole period: the identity


def _kernel(u: torch.Tensor, n: int) -> torch.Tensor:
    """The periodic band-limited interpolation kernel: sin(pi u) / (n sin(pi u / n)) for odd n, and for even n, with
    the Nyquist bin split evenly between +n/2 and -n/2 (the real cos(pi t)), sin(pi u) / (n tan(pi u / n))."""
    u = torch.where(u.abs() < 1e-12, torch.full_like(u, 1e-12), u)
    denominator = torch.sin(math.pi * u / n) if n % 2 else torch.tan(math.pi * u / n)
    return torch.sin(math.pi * u) / (n * denominator)


@pytest.mark.parametrize("n", [7, 8])
def test_fractional_roll_is_band_limited_interpolation(n):
    x = torch.randn(2, 1, 1, n, dtype=torch.float64)
    tau = 2.37
    out = fractional_roll(x, _rows((0, tau), (0, -0.5)))
    for row, t in enumerate((tau, -0.5)):
        m = torch.arange(n, dtype=torch.float64)
        weights = _kernel(m[:, None] - t - m[None, :], n)  # out[m] = sum_j x[j] K(m - t - j)
        torch.testing.assert_close(out[row, 0, 0], weights @ x[row, 0, 0], atol=1e-12, rtol=0)
    assert out.dtype == torch.float64 and fractional_roll(x.float(), _rows((0, tau), (0, 0.5))).dtype == torch.float32


def test_fractional_roll_composes_where_the_nyquist_bin_is_empty():
    a, b = _rows((0.3, 1.6)), _rows((2.45, -0.7))
    odd = torch.randn(1, 2, 9, 7, dtype=torch.float64)
    torch.testing.assert_close(fractional_roll(fractional_roll(odd, a), b), fractional_roll(odd, a + b), atol=1e-12,
                               rtol=0)
    even = torch.randn(1, 2, 8, 6, dtype=torch.float64)
    twice = fractional_roll(fractional_roll(even, a), b)
    assert (twice - fractional_roll(even, a + b)).abs().max() > 1e-3  # cos(pi a) cos(pi b) != cos(pi (a + b))
    spec = torch.fft.fft2(even)
    spec[..., 4, :] = 0
    spec[..., :, 3] = 0
    limited = torch.fft.ifft2(spec).real  # the Nyquist row and column removed
    torch.testing.assert_close(fractional_roll(fractional_roll(limited, a), b), fractional_roll(limited, a + b),
                               atol=1e-12, rtol=0)
    # a real image stays real and keeps its mean; a shift by a period plus t is the shift by t
    torch.testing.assert_close(fractional_roll(even, a).mean(), even.mean(), atol=1e-12, rtol=0)
    torch.testing.assert_close(fractional_roll(even, a + _rows((8, 6))), fractional_roll(even, a), atol=1e-12, rtol=0)


def test_shift_streams():
    assert [stream_seed(3, 2, s) for s in (RANDOM_STREAM, CIRCULAR_STREAM)] == [30_025, 30_026]  # as in 0.1
    seeds = {stream_seed(seed, p, s) for seed in range(4) for p in range(6) for s in (0, 1, FRACTIONAL_STREAM)}
    assert len(seeds) == 4 * 6 * 3
    drawn = draw_fractional_shifts(0, 1, 50, 8)
    assert torch.equal(drawn, draw_fractional_shifts(0, 1, 50, 8)) and drawn.shape == (50, 4)
    assert not torch.equal(drawn, draw_fractional_shifts(0, 2, 50, 8))
    assert drawn.min() >= -8 and drawn.max() < 8 and not torch.equal(drawn.floor(), draw_shifts(0, 1, 50, 8).double())
