"""BlurPool speed: ours against antialiased_cnns.BlurPool, timm BlurPool2d and kornia BlurPool2D.

    python benchmarks/bench_blurpool.py [--batch 32] [--reps 10] [--filters 3 4 5] [--quick] [--compile]

In one process, with interleaved repetitions (medians), on ResNet-50's BlurPool input shapes, NCHW and
channels_last, forward and forward+backward; plus the stem's MaxBlurPool (max-pool 2x2 at stride 1, then
blur: Zhang's and timm's as MaxPool2d + their BlurPool, kornia's MaxBlurPool2D). Outputs are checked
against Zhang's first (max abs diff <= 1e-6 times the largest output magnitude, at least 1e-6;
timm and kornia only join where they compute the same thing: timm for odd filters, kornia for odd
filters with zero padding, so they appear as anchors in the timing regardless). With a CUDA GPU, GPU rows
(fp32 and bf16) are added; without one they are skipped and the output says so.
"""

from __future__ import annotations

import argparse

import antialiased_cnns
import kornia
import timm.layers
import torch
from common import interleaved_medians, machine, table
from torch import nn

from timm_aa.layers import BlurPool2d, MaxBlurPool2d

COMPILE = False  # --compile: every implementation through torch.compile

# (channels, H, W) of the maps resnet50_aa blurs: stem max-pool output, the three strided blocks, shortcuts
SHAPES = [(64, 111, 111), (128, 56, 56), (256, 56, 56), (256, 28, 28), (512, 28, 28), (512, 14, 14),
          (1024, 14, 14)]
STEM = (64, 112, 112)  # MaxBlurPool input of resnet50_aa's stem


def layers(channels: int, filt: int, device: str, dtype: torch.dtype, op: str) -> dict[str, torch.nn.Module]:
    if op == "maxblur":  # Zhang's stem: max-pool 2x2 at stride 1, then blur and subsample
        mods = {
            "ours": MaxBlurPool2d(channels, 2, 2, filt_size=filt),
            "zhang": nn.Sequential(nn.MaxPool2d(2, 1), antialiased_cnns.BlurPool(channels, filt_size=filt, stride=2)),
            "timm": nn.Sequential(nn.MaxPool2d(2, 1), timm.layers.BlurPool2d(channels, filt_size=filt, stride=2)),
            "kornia": kornia.filters.MaxBlurPool2D(kernel_size=filt, stride=2, max_pool_size=2),
        }
    else:
        mods = {
            "ours": BlurPool2d(channels, filt, 2),
            "zhang": antialiased_cnns.BlurPool(channels, filt_size=filt, stride=2),
            "timm": timm.layers.BlurPool2d(channels, filt_size=filt, stride=2),
            "kornia": kornia.filters.BlurPool2D(kernel_size=filt, stride=2),
        }
    mods = {k: m.to(device=device, dtype=dtype) for k, m in mods.items()}
    return {k: torch.compile(m) for k, m in mods.items()} if COMPILE else mods


def run(shape, filt, fmt, mode, batch, reps, device, dtype, op="blur") -> dict[str, float]:
    c, h, w = shape
    x = torch.randn(batch, c, h, w, device=device, dtype=dtype)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    mods = layers(c, filt, device, dtype, op)
    with torch.no_grad():
        want = mods["zhang"](x).float()
        diff = (mods["ours"](x).float() - want).abs().max().item()
    # float32: 1e-6 relative to the largest output (sums of up to 25 products, rounded in another order)
    tol = (1e-6 if dtype == torch.float32 else 2e-2) * max(1.0, want.abs().max().item())
    if diff > tol:
        raise AssertionError(f"ours differs from Zhang's by {diff} on {op} {shape}, filter {filt}, {fmt}")
    if mode == "forward":
        def make(m):
            def fn():
                with torch.no_grad():
                    m(x)
            return fn
    else:
        xg = x.detach().requires_grad_(True)

        def make(m):
            with torch.no_grad():
                grad_out = torch.randn_like(m(x))

            def fn():
                torch.autograd.grad(m(xg), xg, grad_out)
            return fn
    return interleaved_medians({k: make(m) for k, m in mods.items()}, reps, device=device)


def summary(rows: list[list[str]]) -> list[str]:
    """Per device, pass and format: the smallest filter-4 speed-up over the ResNet-50 shapes."""
    worst: dict[tuple[str, str, str], float] = {}
    for row in rows:
        if row[3] == "4" and row[4] == "blur":
            key = (row[0], row[1], row[2])
            worst[key] = min(worst.get(key, float("inf")), float(row[-1].rstrip("x")))
    return [f"BlurPool filter 4, {d}, {p}, {f}: at least {v:.2f}x faster than the fastest of Zhang/timm/kornia"
            for (d, p, f), v in worst.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--filters", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--quick", action="store_true", help="only the (256, 56, 56) shape")
    p.add_argument("--compile", action="store_true", help="run every implementation through torch.compile")
    a = p.parse_args()
    global COMPILE
    COMPILE = a.compile
    print(f"machine: {machine()}; batch {a.batch}, {a.reps} interleaved repetitions, medians"
          f"{'; all torch.compile d' if a.compile else ''}")
    targets = [("cpu", torch.float32)]
    if torch.cuda.is_available():
        targets += [("cuda", torch.float32), ("cuda", torch.bfloat16)]
    else:
        print("no CUDA GPU: GPU rows skipped")
    jobs = [("blur", shape) for shape in ([(256, 56, 56)] if a.quick else SHAPES)] + [("maxblur", STEM)]
    rows = []
    for device, dtype in targets:
        for mode in ("forward", "forward+backward"):
            for fmt in ("NCHW", "channels_last"):
                for filt in a.filters:
                    for op, shape in jobs:
                        t = run(shape, filt, fmt, mode, a.batch, a.reps, device, dtype, op)
                        best_anchor = min(t["zhang"], t["timm"], t["kornia"])
                        rows.append([f"{device} {str(dtype)[6:]}", mode, fmt, str(filt), op, "x".join(map(str, shape)),
                                     f"{t['ours'] * 1e3:.2f}", f"{t['zhang'] * 1e3:.2f}", f"{t['timm'] * 1e3:.2f}",
                                     f"{t['kornia'] * 1e3:.2f}", f"{best_anchor / t['ours']:.2f}x"])
                        print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["device", "pass", "format", "filter", "op", "C x H x W", "ours ms", "zhang ms", "timm ms",
                 "kornia ms", "speed-up vs fastest anchor"], rows))
    print()
    print("\n".join(summary(rows)))


if __name__ == "__main__":
    main()
