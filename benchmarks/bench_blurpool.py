"""BlurPool speed: ours against our own reference path, antialiased_cnns.BlurPool, timm BlurPool2d and kornia
BlurPool2D, and the floor.

    python benchmarks/bench_blurpool.py [--device cuda] [--batch 64] [--reps 10] [--filters 3 4 5] [--quick]
                                        [--dtypes float32 bfloat16] [--compile]

In one process, with interleaved repetitions (medians), on ResNet-50's BlurPool input shapes, NCHW and
channels_last, forward and forward+backward; plus the stem's MaxBlurPool (max-pool 2x2 at stride 1, then
blur: Zhang's and timm's as MaxPool2d + their BlurPool, kornia's MaxBlurPool2D). Outputs are checked against
Zhang's first (max abs diff <= 1e-6 times the largest output magnitude in float32). timm and kornia compute
the same thing only for odd filters (kornia: with zero padding); they are timing anchors regardless. "ours" is the
fast backend of the device, forced (Triton on CUDA, the C kernel on CPU), "reference" our pad + depthwise conv:
the CUDA default until this table shows Triton faster for a (dtype, format) class at every shape, which the last
lines list ("would default to Triton").

"floor" is the memory traffic the pass cannot avoid (forward: read the input, write the output; with backward
also read the output gradient and write the input gradient, and for MaxBlurPool read the input again to
route the gradient through the max), over the copy bandwidth measured at the start of the same run. An anchor
that is not installed (the GPU machine may lack kornia) shows n/a.
"""

from __future__ import annotations

import argparse
import importlib
import os

import timm.layers
import torch
from common import copy_bandwidth, interleaved_medians, machine, pass_timer, table
from torch import nn

from timm_aa.layers import BlurPool2d, MaxBlurPool2d

# (channels, H, W) of the maps resnet50_aa blurs: stem max-pool output, the three strided blocks, shortcuts
SHAPES = [(64, 111, 111), (128, 56, 56), (256, 56, 56), (256, 28, 28), (512, 28, 28), (512, 14, 14),
          (1024, 14, 14)]
STEM = (64, 112, 112)  # MaxBlurPool input of resnet50_aa's stem
ANCHORS = ("zhang", "timm", "kornia")
BACKEND_ENV = "TIMM_AA_BACKEND"


class Forced(nn.Module):
    """``module`` run on one backend of ours (``TIMM_AA_BACKEND`` set around each call)."""

    def __init__(self, module: nn.Module, backend: str) -> None:
        super().__init__()
        self.module, self.backend = module, backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before = os.environ.get(BACKEND_ENV)
        os.environ[BACKEND_ENV] = self.backend
        try:
            return self.module(x)
        finally:
            os.environ.pop(BACKEND_ENV) if before is None else os.environ.__setitem__(BACKEND_ENV, before)


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


ZHANG, KORNIA = _optional("antialiased_cnns"), _optional("kornia")


def layers(channels: int, filt: int, op: str, compile_: bool, device: str) -> dict[str, nn.Module]:
    fast = "triton" if device == "cuda" else "native"
    if op == "maxblur":  # Zhang's stem: max-pool 2x2 at stride 1, then blur and subsample
        mods = {
            "ours": Forced(MaxBlurPool2d(2, 2, filt_size=filt), fast),
            "reference": Forced(MaxBlurPool2d(2, 2, filt_size=filt), "reference"),
            "zhang": nn.Sequential(nn.MaxPool2d(2, 1), ZHANG.BlurPool(channels, filt_size=filt, stride=2))
            if ZHANG else None,
            "timm": nn.Sequential(nn.MaxPool2d(2, 1), timm.layers.BlurPool2d(channels, filt_size=filt, stride=2)),
            "kornia": KORNIA.filters.MaxBlurPool2D(kernel_size=filt, stride=2, max_pool_size=2) if KORNIA else None,
        }
    else:
        mods = {
            "ours": Forced(BlurPool2d(channels, filt, 2), fast),
            "reference": Forced(BlurPool2d(channels, filt, 2), "reference"),
            "zhang": ZHANG.BlurPool(channels, filt_size=filt, stride=2) if ZHANG else None,
            "timm": timm.layers.BlurPool2d(channels, filt_size=filt, stride=2),
            "kornia": KORNIA.filters.BlurPool2D(kernel_size=filt, stride=2) if KORNIA else None,
        }
    mods = {k: m for k, m in mods.items() if m is not None}
    return {k: torch.compile(m) for k, m in mods.items()} if compile_ else mods


def floor_bytes(x: torch.Tensor, y: torch.Tensor, mode: str, op: str) -> int:
    """Bytes a pass must move: input read and output written, and for the backward their gradients too."""
    once = (x.numel() + y.numel()) * x.element_size()
    if mode == "forward":
        return once
    return 2 * once + (x.numel() * x.element_size() if op == "maxblur" else 0)


def run(shape, filt, fmt, mode, batch, reps, device, dtype, op, compile_) -> tuple[dict[str, float], int]:
    c, h, w = shape
    x = torch.randn(batch, c, h, w, device=device, dtype=dtype)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    mods = {k: m.to(device=device, dtype=dtype) for k, m in layers(c, filt, op, compile_, device).items()}
    with torch.no_grad():
        y = mods["ours"](x)
        if "zhang" in mods:
            want = mods["zhang"](x).float()
            diff = (y.float() - want).abs().max().item()
            tol = (1e-6 if dtype == torch.float32 else 2e-2) * max(1.0, want.abs().max().item())
            if diff > tol:
                raise AssertionError(f"ours differs from Zhang's by {diff} on {op} {shape}, filter {filt}, {fmt}")
    times = interleaved_medians({k: pass_timer(m, x, mode) for k, m in mods.items()}, reps, device=device)
    return times, floor_bytes(x, y, mode, op)


def summary(rows: list[list[str]]) -> list[str]:
    """Per device, pass and format: the smallest filter-4 speed-up over the ResNet-50 shapes; then the CUDA
    (dtype, format) classes where ours (Triton) beat our reference at every shape, filter and pass."""
    worst: dict[tuple[str, str, str], float] = {}
    slower: dict[tuple[str, str], bool] = {}
    for row in rows:
        if row[3] == "4" and row[4] == "blur" and row[-2] != "n/a":
            key = (row[0], row[1], row[2])
            worst[key] = min(worst.get(key, float("inf")), float(row[-2].rstrip("x")))
        if row[0].startswith("cuda"):
            key = (row[0].split()[1], "channels_last" if row[2] == "channels_last" else "contiguous")
            slower[key] = slower.get(key, False) or float(row[7]) >= float(row[8])
    lines = [f"BlurPool filter 4, {d}, {p}, {f}: at least {v:.2f}x faster than the fastest of {'/'.join(ANCHORS)}"
             for (d, p, f), v in worst.items()]
    faster = sorted(k for k, s in slower.items() if not s)
    lines.append(f"would default to Triton (TRITON_DEFAULT): {faster}" if slower else
                 "would default to Triton: nothing measured on CUDA")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"],
                   help="default: cuda where there is a GPU, else cpu")
    p.add_argument("--batch", type=int, help="default 64 on cuda, 32 on cpu")
    p.add_argument("--reps", type=int, default=10, help="interleaved repetitions (default 10)")
    p.add_argument("--filters", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16", "float16"],
                   help="default: float32 and bfloat16 on cuda, float32 on cpu")
    p.add_argument("--quick", action="store_true", help="only the (256, 56, 56) shape and the stem")
    p.add_argument("--compile", action="store_true", help="run every implementation through torch.compile")
    a = p.parse_args(argv)
    device = a.device
    batch = a.batch or (64 if device == "cuda" else 32)
    dtypes = [getattr(torch, d) for d in (a.dtypes or (["float32", "bfloat16"] if device == "cuda" else ["float32"]))]
    bandwidth = copy_bandwidth(device)
    missing = [n for n, mod in (("antialiased_cnns", ZHANG), ("kornia", KORNIA)) if mod is None]
    print(f"machine: {machine()}; {device}, batch {batch}, {a.reps} interleaved repetitions, medians"
          f"{'; all torch.compile d' if a.compile else ''}; copy bandwidth {bandwidth / 1e9:.0f} GB/s (read+write)"
          + (f"; not installed: {', '.join(missing)} (n/a)" if missing else ""))
    jobs = [("blur", shape) for shape in ([(256, 56, 56)] if a.quick else SHAPES)] + [("maxblur", STEM)]
    rows = []
    for dtype in dtypes:
        for mode in ("forward", "forward+backward"):
            for fmt in ("NCHW", "channels_last"):
                for filt in a.filters:
                    for op, shape in jobs:
                        t, nbytes = run(shape, filt, fmt, mode, batch, a.reps, device, dtype, op, a.compile)
                        anchors = [t[k] for k in ANCHORS if k in t]
                        floor = nbytes / bandwidth
                        cells = [f"{t[k] * 1e3:.3f}" if k in t else "n/a" for k in ("ours", "reference", *ANCHORS)]
                        rows.append([f"{device} {str(dtype)[6:]}", mode, fmt, str(filt), op, "x".join(map(str, shape)),
                                     f"{nbytes / 1e6:.0f}", *cells, f"{floor * 1e3:.3f}",
                                     f"{min(anchors) / t['ours']:.2f}x", f"{t['ours'] / floor:.2f}"])
                        print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["device", "pass", "format", "filter", "op", "C x H x W", "MB moved", "ours ms", "reference ms",
                 "zhang ms", "timm ms", "kornia ms", "floor ms", "speed-up vs fastest anchor", "ours / floor"], rows))
    print()
    print("\n".join(summary(rows)))


if __name__ == "__main__":
    main()
