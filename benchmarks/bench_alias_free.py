"""Alias-free layers' speed: ours (the matmul path) against the FFT reference and BlurPool of the same shape.

    python benchmarks/bench_alias_free.py [--device cuda] [--batch 8] [--reps 10] [--quick]

In one process, with interleaved repetitions (medians), NCHW float32, forward and forward+backward, on the maps of
a ResNet-18 at 224x224 (and of the demo's 40x40 crops): the ideal downsampling (AliasFreeDownsample2d, stride 2),
the polynomial activation (AliasFreeActivation: 2x up, polynomial, low-pass back) and the layer norm over channels
and positions (AliasFreeLayerNorm2d). "reference" is the same layer through ``torch.fft`` (spectral_resample's path
above MATRIX_MAX_SIZE; the layer norm has none: timm's LayerNorm2d, the layer it replaces, stands there), checked
equal to ours first (max abs diff <= 1e-5 times the largest output). "blurpool" is timm-aa's BlurPool2d (filter 4,
stride 2) on the same input, the cost of anti-aliasing by a blur; "relu" the activation it replaces. "floor" is the
memory traffic the pass cannot avoid (read the input, write the output; with backward also the gradients), over
the copy bandwidth measured at the start of the same run.
"""

from __future__ import annotations

import argparse

import timm.layers
import torch
from common import copy_bandwidth, interleaved_medians, machine, pass_timer, table
from torch import nn

import timm_aa.layers.spectral as spectral
from timm_aa.layers import AliasFreeActivation, AliasFreeDownsample2d, AliasFreeLayerNorm2d, BlurPool2d

# (channels, H, W): resnet18's activation maps at 224x224 (stem, then one per stage), and two of the demo's 40x40
SHAPES = [(64, 112, 112), (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7), (64, 20, 20), (256, 3, 3)]
QUICK = [(64, 56, 56), (64, 20, 20)]


class _FFTPath(nn.Module):
    """``layer`` computed through torch.fft (the reference), whatever the map's size."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size, spectral.MATRIX_MAX_SIZE = spectral.MATRIX_MAX_SIZE, 0
        try:
            return self.layer(x)
        finally:
            spectral.MATRIX_MAX_SIZE = size


def layers(op: str, channels: int) -> dict[str, nn.Module]:
    if op == "downsample":
        ours = AliasFreeDownsample2d(2)
        mods = {"ours": ours, "reference": _FFTPath(ours)}
    elif op == "activation":
        ours = AliasFreeActivation(channels)
        mods = {"ours": ours, "reference": _FFTPath(ours), "relu": nn.ReLU()}
    else:
        mods = {"ours": AliasFreeLayerNorm2d(channels), "reference": timm.layers.LayerNorm2d(channels)}
    return {**mods, "blurpool": BlurPool2d(channels, 4, 2)}


def run(op: str, shape, mode: str, batch: int, reps: int, device: str) -> tuple[dict[str, float], int]:
    x = torch.randn(batch, *shape, device=device)
    mods = {k: m.to(device) for k, m in layers(op, shape[0]).items()}
    with torch.no_grad():
        y, want = mods["ours"](x), mods["reference"](x)
        if op != "layer norm" and (y - want).abs().max() > 1e-5 * want.abs().max():
            raise AssertionError(f"{op} {shape}: the matmul path differs from the FFT reference")
    nbytes = (x.numel() + y.numel()) * x.element_size() * (1 if mode == "forward" else 2)
    return interleaved_medians({k: pass_timer(m, x, mode) for k, m in mods.items()}, reps, device=device), nbytes


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"],
                   help="default: cuda where there is a GPU, else cpu")
    p.add_argument("--batch", type=int, default=8, help="default 8")
    p.add_argument("--reps", type=int, default=10, help="interleaved repetitions (default 10)")
    p.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    a = p.parse_args(argv)
    bandwidth = copy_bandwidth(a.device)
    print(f"machine: {machine()}; {a.device}, batch {a.batch}, float32 NCHW, {a.reps} interleaved repetitions, "
          f"medians; copy bandwidth {bandwidth / 1e9:.0f} GB/s (read+write)")
    rows = []
    for mode in ("forward", "forward+backward"):
        for op in ("downsample", "activation", "layer norm"):
            for shape in QUICK if a.quick else SHAPES:
                t, nbytes = run(op, shape, mode, a.batch, a.reps, a.device)
                floor = nbytes / bandwidth
                rows.append([mode, op, "x".join(map(str, shape)), f"{nbytes / 1e6:.1f}",
                             *(f"{t[k] * 1e3:.3f}" if k in t else "n/a" for k in ("ours", "reference", "blurpool",
                                                                                   "relu")),
                             f"{floor * 1e3:.3f}", f"{t['reference'] / t['ours']:.2f}x",
                             f"{t['ours'] / t['blurpool']:.2f}", f"{t['ours'] / floor:.1f}"])
                print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["pass", "op", "C x H x W", "MB moved", "ours ms", "reference ms", "blurpool ms", "relu ms",
                 "floor ms", "speed-up vs reference", "ours / blurpool", "ours / floor"], rows))


if __name__ == "__main__":
    main()
