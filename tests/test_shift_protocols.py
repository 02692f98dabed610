"""Fractional circular shifts and the worst-case protocols (issue 19): fractional_roll against its interpolation
kernel, the fractional and adversarial protocols against hand-checkable models, and scripts/evaluate.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from timm_aa.consistency import (
    ConsistencySettings,
    ModelEntry,
    circular_agreement,
    draw_fractional_shifts,
    draw_shifts,
    evaluate_consistency,
    fractional_roll,
    roll_each,
    runner,
)
from timm_aa.consistency.protocols import adversarial_shifts, crop_grid, fractional_agreement, shift_grid
from timm_aa.consistency.shifts import CIRCULAR_STREAM, FRACTIONAL_STREAM, RANDOM_STREAM, stream_seed
from timm_aa.data import ImageSource, open_image_folder


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


# --- protocols --------------------------------------------------------------------------------------------------


class _Strided(nn.Module):
    """Six classes from every 4th pixel (a fixed random readout): plain subsampling, shift-sensitive."""

    def __init__(self) -> None:
        super().__init__()
        self.readout = nn.LazyLinear(6, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(x[:, :, ::4, ::4].flatten(1))


def _subsampler() -> nn.Module:
    torch.manual_seed(0)
    return _Strided().eval()


def _invariant() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3)).eval()  # the mean: the DC bin


class _TopLeft(nn.Module):
    """Class 1 where the top-left pixel of channel 0 is bright (normalised > 0), else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.zeros_like(x[:, 0, 0, 0]), x[:, 0, 0, 0]], dim=1)


def test_fractional_with_integer_amounts_is_circular():
    """Issue 19, acceptance 2: same crops, same integer shifts, same agreement (and the same logits)."""
    model, crops = _subsampler(), torch.randn(12, 3, 24, 24)
    shifts = draw_shifts(0, 0, 12, 8)
    with torch.no_grad():
        agree = circular_agreement(model, crops, shifts)
        assert torch.equal(fractional_agreement(model, crops, shifts.double()), agree) and not agree.all()
        logits = model(roll_each(crops, shifts[:, :2]))
        assert torch.equal(model(fractional_roll(crops, shifts[:, :2].double())), logits)


def test_fractional_protocol_with_integer_shifts_reports_the_circular_numbers(digits_folder, monkeypatch):
    source = open_image_folder(str(digits_folder / "val"))
    settings = ConsistencySettings(protocols=("circular", "fractional"), resize=48, crop=40, passes=3, max_shift=8)
    integer = lambda seed, p, count, m: draw_shifts(seed, p, count, m).double()  # noqa: E731
    monkeypatch.setattr(runner, "draw_fractional_shifts", integer)
    rows = {r.protocol: r for r in evaluate_consistency([ModelEntry("sub", _subsampler())], source, settings,
                                                        progress=False).results}
    assert rows["fractional"].consistency == rows["circular"].consistency < 100
    assert rows["fractional"].passes == 3 and rows["fractional"].extra == {"max_shift": 8}


def test_shift_and_crop_grids():
    grid = shift_grid(4)
    assert len(grid) == 81 and grid[0].tolist() == [0, 0] and len(set(map(tuple, grid.tolist()))) == 81
    fine = shift_grid(2, steps=4)
    assert len(fine) == 17**2 and {v for v in fine[:, 1].tolist()} == {i / 4 for i in range(-8, 9)}
    crops = crop_grid(8)
    assert len(crops) == 81 and crops[0].tolist() == [4, 4] and crops.min() == 0 and crops.max() == 8


def test_adversarial_finds_the_one_shift_that_flips_a_prediction():
    """Issue 19, acceptance 2: a model whose prediction flips at exactly one known shift of the grid."""
    crops = torch.full((3, 3, 8, 8), -1.0)
    crops[0, 0, 7, 2] = 1.0  # rolled by (1, -2), and by no other shift in [-2, 2]^2, it lands on (0, 0)
    crops[1, 0, 4, 4] = 1.0  # no shift of the grid brings it to (0, 0)
    crops[2, 0, 0, 0] = 1.0  # class 1 unshifted, class 0 after every other shift
    grid = shift_grid(2)
    preds = adversarial_shifts(_TopLeft(), crops, grid, batch_size=7)
    assert preds.shape == (3, 25)
    flipped = [tuple(g) for g in grid[(preds[0] != preds[0, 0])].long().tolist()]
    assert flipped == [(1, -2)]
    assert (preds[1] == 0).all() and preds[2, 0] == 1 and (preds[2, 1:] == 0).all()


def _marked_source(markers: list[tuple[int, int] | None], labels: list[int]) -> ImageSource:
    images = []
    for marker in markers:
        pixels = np.zeros((8, 8, 3), dtype=np.uint8)
        if marker:
            pixels[marker] = 255
        images.append(Image.fromarray(pixels))
    return ImageSource("marked", [str(i) for i in range(len(images))], labels, ["dark", "bright"], images.__getitem__)


def test_adversarial_report_counts_the_flipped_images():
    source = _marked_source([(7, 2), (4, 4), (0, 0)], [0, 0, 1])  # as in the test above, through the runner
    settings = ConsistencySettings(protocols=("adversarial",), resize=8, crop=8, adversarial_max_shift=2, batch_size=4)
    row = evaluate_consistency([ModelEntry("top-left", _TopLeft())], source, settings, progress=False).results[0]
    assert row.accuracy == 100.0
    assert row.consistency == pytest.approx(100 / 3) and row.extra["worst_case_accuracy"] == pytest.approx(100 / 3)
    assert row.extra["num_shifts"] == 24 and row.extra["max_shift"] == 2 and row.extra["fractional_steps"] == 1
    assert row.extra["seconds_per_image"] > 0


def test_adversarial_on_an_exactly_invariant_model_is_100(digits_folder):
    """Issue 19, acceptance 2: the mean of an image is the DC bin: no integer or fractional shift changes it."""
    source = open_image_folder(str(digits_folder / "val"))
    settings = ConsistencySettings(protocols=("adversarial", "fractional"), resize=48, crop=40, passes=1,
                                   adversarial_max_shift=2, fractional_steps=2, batch_size=64)
    report = evaluate_consistency([ModelEntry("mean", _invariant()), ModelEntry("sub", _subsampler())], source,
                                  settings, progress=False)
    mean, sub = (report.rows(model=m, protocol="adversarial")[0] for m in ("mean", "sub"))
    assert mean.consistency == 100.0 and mean.extra["worst_case_accuracy"] == mean.accuracy
    assert mean.extra["num_shifts"] == 9**2 - 1
    assert report.rows(model="mean", protocol="fractional")[0].consistency == 100.0
    assert sub.consistency < 100.0 and sub.extra["worst_case_accuracy"] <= sub.accuracy


def test_cli_fractional_and_adversarial(digits_folder, tmp_path, capsys):
    """Issue 19, acceptance 3 (on the test's digits): table, consistency.json with the new rows, and the plot."""
    from evaluate import main  # scripts/ is on sys.path via conftest

    out = tmp_path / "out"
    argv = ["--model", "test_resnet", "--allow-random-weights", "--data", str(digits_folder / "val"), "--resize", "44",
            "--crop", "40", "--passes", "1", "--protocol", "fractional", "--protocol", "adversarial", "--protocol",
            "adversarial-crop", "--adversarial-max-shift", "1", "--fractional-steps", "2", "--output", str(out),
            "--no-progress"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "fractional  adversarial  worst top-1  adversarial-crop  worst top-1" in table
    report = json.loads((out / "consistency.json").read_text())
    rows = {r["protocol"]: r for r in report["results"]}
    assert set(rows) == {"fractional", "adversarial", "adversarial-crop"}
    assert rows["adversarial"]["num_shifts"] == 24 and rows["adversarial"]["fractional_steps"] == 2
    assert rows["adversarial-crop"]["num_shifts"] == 24 and rows["adversarial-crop"]["max_offset"] == 4
    assert report["settings"]["adversarial_max_shift"] == 1 and report["settings"]["fractional_steps"] == 2
    assert 0 <= rows["adversarial"]["worst_case_accuracy"] <= rows["adversarial"]["accuracy"]
    assert (out / "consistency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_a_bad_grid(digits_folder, capsys):
    from evaluate import main

    argv = ["--model", "resnet18", "--allow-random-weights", "--data", str(digits_folder / "val"),
            "--protocol", "adversarial", "--fractional-steps", "0", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--fractional-steps 0: must be an int in 1..32" in err and err.count("\n") == 1
