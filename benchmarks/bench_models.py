"""Whole-model cost of anti-aliasing: our ``*_aa`` models against the timm baseline, Zhang's antialiased_cnns
models (filter 4) and timm's own blur models; with ``--methods``, every shift-invariance method on one base.

    python benchmarks/bench_models.py [--models resnet18 resnet50 densenet121 mobilenetv2] [--batch 8] [--reps 10]
    python benchmarks/bench_models.py --models resnet50 --batch 256 --train-batch 128 --amp bf16 --compile  # GPU
    python benchmarks/bench_models.py --methods resnet18 convnext_tiny [--size 224]   # _aa, _aps, _lps, _afc
    python benchmarks/bench_models.py --methods xcit_nano_12_p16_224 --formats NCHW   # the alias-free XCiT
    python benchmarks/bench_models.py --methods vit_small_patch16_224 --formats NCHW    # anchored ViT-S/16, 224 px
    python benchmarks/bench_models.py --methods vit_micro_patch4_40 --size 40          # the digits demo's ViT

In one process, with interleaved repetitions (medians), NCHW and channels_last: inference latency (and img/s),
training step time (forward, cross-entropy, backward, SGD step) and training memory; with ``--amp bf16`` under
autocast; with ``--compile``, ours and Zhang's also through ``torch.compile`` (inference). On CPU, training memory
is parameters + gradients + the tensors autograd saves for backward (each storage counted once); on CUDA it
is the peak allocated memory of a step. The column "floor" is our model with filter size 1 (plain
subsampling, no blur): what Zhang's layout costs by itself, mostly its stride-1 convolutions, which no
blur implementation can remove. Before timing, ours is checked against Zhang's model on the same weights.

``--methods BASE``: the registered variants of timm's ``BASE`` (:data:`METHODS`: BlurPool ``_aa``, APS ``_aps``,
LPS ``_lps``, alias-free ``_afc``) and ``BASE`` itself, the same metrics at ``--size`` pixels, each as a ratio to
``BASE`` (random weights: the cost does not depend on them). ``xcit_nano_4_p8_40`` is the digits demo's XCiT
(``xcit_nano_12_p8_224`` with 4 blocks, :data:`UNREGISTERED_BASES`); time it with ``--size 40``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Sequence

import antialiased_cnns
import timm
import torch
import torch.nn.functional as F
from common import interleaved_medians, machine, sync, table

import timm_aa

# name: (ours, timm baseline, Zhang's constructor, timm's blur model or None)
MODELS = {
    "resnet18": ("resnet18_aa", "resnet18", antialiased_cnns.resnet18, "resnetblur18"),
    "resnet50": ("resnet50_aa", "resnet50", antialiased_cnns.resnet50, "resnetblur50"),
    "densenet121": ("densenet121_aa", "densenet121", antialiased_cnns.densenet121, "densenetblur121d"),
    "mobilenetv2": ("mobilenetv2_100_aa", "mobilenetv2_100", antialiased_cnns.mobilenet_v2, None),
}
#: the shift-invariance methods registered on a timm base (``--methods``), the base first
METHODS = {
    "resnet18": ("resnet18", "resnet18_aa", "resnet18_aps", "resnet18_lps", "resnet18_afc"),
    "convnext_tiny": ("convnext_tiny", "convnext_tiny_aa", "convnext_tiny_afc"),
    "xcit_nano_12_p16_224": ("xcit_nano_12_p16_224", "xcit_nano_12_p16_224_afc"),
    "xcit_nano_4_p8_40": ("xcit_nano_4_p8_40", "xcit_nano_4_p8_40_afc"),
    # patch-grid anchoring (issue 29): its cost is the anchor's; vit_micro_patch4_40 at --size 40 (the digits demo)
    "vit_small_patch16_224": ("vit_small_patch16_224", "vit_small_patch16_224_aps"),
    "vit_tiny_patch16_224": ("vit_tiny_patch16_224", "vit_tiny_patch16_224_aps"),
    "swin_tiny_patch4_window7_224": ("swin_tiny_patch4_window7_224", "swin_tiny_patch4_window7_224_aps"),
    "vit_micro_patch4_40": ("vit_micro_patch4_40", "vit_micro_patch4_40_aps"),
}
#: bases that timm does not register under that name: (timm's model, its kwargs)
UNREGISTERED_BASES = {"xcit_nano_4_p8_40": ("xcit_nano_12_p8_224", dict(depth=4, img_size=40))}
ZHANG_ARCH = {"resnet18": "resnet18", "resnet50": "resnet50", "densenet121": "densenet121",
              "mobilenetv2": "mobilenet_v2"}


def build(name: str, device: str) -> dict[str, torch.nn.Module]:
    ours, base, zhang_fn, blur = MODELS[name]
    zhang = zhang_fn(filter_size=4)
    mods = {
        "ours": timm_aa.from_zhang(zhang.state_dict(), ZHANG_ARCH[name], filt_size=4),
        "timm": timm.create_model(base),
        "zhang": zhang,
        "timm-blur": timm.create_model(blur) if blur else None,
        "floor": timm.create_model(ours, filt_size=1),
    }
    return {k: m.to(device) for k, m in mods.items() if m is not None}


def check_equal(mods: dict[str, torch.nn.Module], device: str) -> float:
    x = torch.randn(2, 3, 224, 224, device=device)
    with torch.no_grad():
        return (mods["ours"].eval()(x) - mods["zhang"].eval()(x)).abs().max().item()


def training_memory(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: str,
                    amp: torch.dtype | None = None) -> float:
    """MiB a training step holds: params + grads + saved activations (CPU), or the CUDA peak."""
    model.train()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return torch.cuda.max_memory_allocated() / 2**20
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return (2 * params + sum(seen.values())) / 2**20


def timers(mods: dict[str, torch.nn.Module], x: torch.Tensor, y: torch.Tensor,
           mode: str, amp: torch.dtype | None) -> dict[str, Callable[[], object]]:
    autocast = (lambda: torch.autocast(x.device.type, dtype=amp)) if amp else contextlib.nullcontext

    def infer(m: torch.nn.Module) -> Callable[[], object]:
        def fn() -> None:
            with torch.no_grad(), autocast():
                m(x)
        return fn

    def train(m: torch.nn.Module) -> Callable[[], object]:
        opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)

        def fn() -> None:
            with autocast():
                loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return fn

    for m in mods.values():
        m.train(mode == "train")
    return {k: (train(m) if mode == "train" else infer(m)) for k, m in mods.items()}


def method_costs(names: Sequence[str], size: int = 224, batch: int = 8, train_batch: int | None = None,
                 reps: int = 10, device: str = "cpu", num_classes: int = 1000,
                 fmt: str = "NCHW") -> dict[str, dict[str, float]]:
    """Per model: median inference and training-step seconds and training MiB on ``size`` x ``size`` inputs, all
    models timed in turn in this process (interleaved medians)."""
    layout = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    def create(name: str) -> torch.nn.Module:
        timm_name, kwargs = UNREGISTERED_BASES.get(name, (name, {}))
        return timm.create_model(timm_name, num_classes=num_classes, **kwargs).to(device, memory_format=layout)

    mods = {n: create(n) for n in names}
    train_batch = train_batch or batch
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=layout)
    xt = torch.randn(train_batch, 3, size, size, device=device).contiguous(memory_format=layout)
    yt = torch.randint(0, num_classes, (train_batch,), device=device)
    inference = interleaved_medians(timers(mods, x, yt, "inference", None), reps, warmup=2, device=device)
    train = interleaved_medians(timers(mods, xt, yt, "train", None), reps, warmup=2, device=device)
    return {n: {"inference": inference[n], "train step": train[n], "train MiB": training_memory(m, xt, yt, device)}
            for n, m in mods.items()}


def _methods_table(bases: Sequence[str], a: argparse.Namespace, device: str) -> None:
    train_batch = a.train_batch or a.batch
    print(f"machine: {machine()}; inference batch {a.batch}, training batch {train_batch}, {a.size}x{a.size}, "
          f"{a.reps} interleaved repetitions, medians, fp32 on {device}")
    rows = []
    for base in bases:
        for fmt in a.formats:
            costs = method_costs(METHODS[base], a.size, a.batch, train_batch, a.reps, device, fmt=fmt)
            ref = costs[base]
            for name, c in costs.items():
                rows.append([name, fmt, f"{c['inference'] * 1e3:.1f}", f"{c['inference'] / ref['inference']:.2f}",
                             f"{c['train step'] * 1e3:.1f}", f"{c['train step'] / ref['train step']:.2f}",
                             f"{c['train MiB']:.0f}", f"{c['train MiB'] / ref['train MiB']:.2f}"])
                print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["model", "format", "inference ms", "x base", "train step ms", "x base", "train MiB", "x base"], rows))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--batch", type=int, default=8, help="inference batch (default 8)")
    p.add_argument("--train-batch", type=int, help="training batch (default: --batch)")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--formats", nargs="+", default=["NCHW", "channels_last"], choices=["NCHW", "channels_last"])
    p.add_argument("--amp", choices=["bf16", "fp16"], help="autocast dtype (default: none, float32)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd inference of ours and Zhang's")
    p.add_argument("--methods", nargs="+", choices=list(METHODS), metavar="BASE",
                   help=f"instead: every method registered on BASE ({', '.join(METHODS)}), relative to BASE")
    p.add_argument("--size", type=int, default=224, help="--methods: input size (default 224)")
    a = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.methods:
        return _methods_table(a.methods, a, device)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.amp)
    train_batch = a.train_batch or a.batch
    print(f"machine: {machine()}; inference batch {a.batch}, training batch {train_batch}, 224x224, {a.reps} "
          f"interleaved repetitions, medians, {a.amp or 'fp32'} on {device}"
          + ("" if device == "cuda" else " (no CUDA GPU: no GPU rows)"))
    names = ["ours", "timm", "zhang", "timm-blur", "floor"]
    rows, summary = [], []
    for name in a.models:
        mods = build(name, device)
        print(f"{name}: ours vs Zhang's on the same weights, max |logit diff| {check_equal(mods, device):.2e}")
        for fmt in a.formats:
            layout = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            x = torch.randn(a.batch, 3, 224, 224, device=device).contiguous(memory_format=layout)
            xt = torch.randn(train_batch, 3, 224, 224, device=device).contiguous(memory_format=layout)
            yt = torch.randint(0, 1000, (train_batch,), device=device)
            for m in mods.values():
                m.to(memory_format=layout)
            sync(device)
            metrics = [("inference ms", interleaved_medians(timers(mods, x, yt, "inference", amp), a.reps, warmup=2,
                                                            device=device), 1e3),
                       ("train step ms", interleaved_medians(timers(mods, xt, yt, "train", amp), a.reps, warmup=2,
                                                             device=device), 1e3),
                       ("train MiB", {k: training_memory(m, xt, yt, device, amp) for k, m in mods.items()}, 1)]
            if a.compile:
                compiled = {k: torch.compile(mods[k].eval()) for k in ("ours", "zhang")}
                metrics.append(("compiled inference ms", interleaved_medians(
                    timers(compiled, x, yt, "inference", amp), a.reps, warmup=3, device=device), 1e3))
            for metric, values, unit in metrics:
                cells = [f"{values[k] * unit:.1f}" if k in values else "n/a" for k in names]
                ratio = [f"{values['ours'] / values[k]:.2f}" if k in values else "n/a"
                         for k in ("zhang", "timm", "timm-blur", "floor")]
                rows.append([name, fmt, metric, *cells, *ratio])
                print(" | ".join(rows[-1]), flush=True)
            inference = metrics[0][1]
            summary.append(f"{name} {fmt}: ours {a.batch / inference['ours']:.1f} img/s; inference "
                           f"{inference['ours'] / inference['zhang']:.2f}x Zhang's, "
                           f"{inference['ours'] / inference['floor']:.2f}x the floor; training step "
                           f"{metrics[1][1]['ours'] / metrics[1][1]['zhang']:.2f}x Zhang's")
    print()
    print(table(["model", "format", "metric", *names, "ours/zhang", "ours/timm", "ours/timm-blur", "ours/floor"],
                rows))
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    main()
