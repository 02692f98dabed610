"""One prepared GPU run: exactness on CUDA, then (with --bench) the layer and model benchmarks and a short bf16
training run. Sized for a short GPU slot (under 6 minutes on one H100 with --bench).

    python benchmarks/gpu_check.py            # exactness only: Triton against the reference, Zhang, NaN, compile
    python benchmarks/gpu_check.py --bench    # + bench_blurpool.py, bench_models.py (resnet50, bf16), train.py bf16

Run from the repository root (PYTHONPATH=. if the package is not installed). antialiased-cnns and kornia are
optional: without them their columns say n/a and the Zhang logit check is skipped (pytest must be installed).
Without a CUDA GPU it says so and checks nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _section(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def exactness() -> None:
    import pytest
    import timm
    import torch

    import timm_aa

    start = _section("Triton backend against the float64 reference (tests/test_backends.py -k triton, on CUDA)")
    code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", "-k", "triton and not larger",
                        os.path.join(ROOT, "tests", "test_backends.py")])
    print(f"pytest exit code {code} ({time.perf_counter() - start:.0f} s)")
    if code != 0:
        raise SystemExit(f"exactness failed (pytest exit code {code})")
    try:
        import antialiased_cnns
    except ImportError:
        print("antialiased_cnns not installed: Zhang logit check skipped")
        return
    start = _section("resnet50_aa against Zhang's model on CUDA (same weights)")
    ref = antialiased_cnns.resnet50(filter_size=4).eval().cuda()
    ours = timm_aa.from_zhang(ref.state_dict(), "resnet50").eval().cuda()
    x = torch.randn(8, 3, 224, 224, device="cuda")
    with torch.no_grad():
        for fmt in (torch.contiguous_format, torch.channels_last):
            ref, ours, xf = ref.to(memory_format=fmt), ours.to(memory_format=fmt), x.contiguous(memory_format=fmt)
            diff = (ours(xf) - ref(xf)).abs().max().item()
            print(f"{str(fmt)[6:]}: max |logit diff| {diff:.2e}")
            assert diff <= 1e-3, diff
        for name in ("resnet18_aps", "resnet18_lps"):
            model = timm.create_model(name).eval().cuda()
            x = torch.randn(1, 3, 224, 224, device="cuda")
            d = max((model(torch.roll(x, (dy, dx), (2, 3))) - model(x)).abs().max().item()
                    for dy, dx in [(1, 0), (0, 5), (-13, 7), (31, -32)])
            print(f"{name} circular-shift max |logit diff| {d:.2e}")
    print(f"({time.perf_counter() - start:.0f} s)")


def benchmarks() -> None:
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import bench_blurpool
    import bench_models

    start = _section("layers: bench_blurpool.py --device cuda --batch 64")
    bench_blurpool.main(["--device", "cuda", "--batch", "64", "--reps", "10"])
    print(f"({time.perf_counter() - start:.0f} s)")
    for backend in ("reference", "triton"):  # the CUDA default, then the kernels it would switch to
        os.environ["TIMM_AA_BACKEND"] = backend
        start = _section(f"resnet50, bf16 autocast, channels_last: inference b256, train step b128, torch.compile; "
                         f"ours on the {backend} backend")
        bench_models.main(["--models", "resnet50", "--batch", "256", "--train-batch", "128", "--amp", "bf16",
                           "--formats", "channels_last", "--compile", "--reps", "10"])
        print(f"({time.perf_counter() - start:.0f} s)")
        start = _section(f"resnet50, bf16 autocast, NCHW; ours on the {backend} backend")
        bench_models.main(["--models", "resnet50", "--batch", "256", "--train-batch", "128", "--amp", "bf16",
                           "--formats", "NCHW", "--reps", "10"])
        print(f"({time.perf_counter() - start:.0f} s)")
    os.environ.pop("TIMM_AA_BACKEND")


def training() -> None:
    from timm_aa.training.demo_data import digits_splits, save_image_folder

    start = _section("scripts/train.py: resnet18_aa, bf16, 2 epochs on the digits (1347 images)")
    with tempfile.TemporaryDirectory() as tmp:
        splits = digits_splits()
        save_image_folder(splits.train, os.path.join(tmp, "data", "train"))
        save_image_folder(splits.val, os.path.join(tmp, "data", "val"))
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--model", "resnet18_aa", "--data",
               os.path.join(tmp, "data"), "--output", os.path.join(tmp, "run"), "--epochs", "2", "--batch-size", "128",
               "--mixed-precision", "bf16", "--input-size", "64", "--no-progress"]
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
        print(r.stdout[-2000:], r.stderr[-2000:] if r.returncode else "")
        print(f"exit code {r.returncode} ({time.perf_counter() - start:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", action="store_true", help="also run the benchmarks and a short bf16 training run")
    a = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing checked")
        return 0
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}")
    start = time.perf_counter()
    exactness()
    if a.bench:
        benchmarks()
        training()
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
