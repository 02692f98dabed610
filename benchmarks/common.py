"""Timing helpers shared by the benchmarks: interleaved repetitions, medians, ratio tables."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_medians(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 2,
                        device: str = "cpu") -> dict[str, float]:
    """Median seconds per call of each function, timing them in turn (ABCABC...) so drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    cuda = device.startswith("cuda")
    for _ in range(reps):
        for name, fn in fns.items():
            sync(device)
            if cuda:  # CUDA events: the GPU's time from the call's first launch to its last kernel's end
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times[name].append(start.elapsed_time(end) / 1e3)
            else:
                start_s = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start_s)
    return {name: statistics.median(values) for name, values in times.items()}


def pass_timer(module: torch.nn.Module, x: torch.Tensor, mode: str) -> Callable[[], None]:
    """A function that runs ``module`` on ``x``: the forward pass without autograd (``mode='forward'``), or forward
    and backward against a random output gradient (``'forward+backward'``)."""
    if mode == "forward":
        def forward() -> None:
            with torch.no_grad():
                module(x)
        return forward
    xg = x.detach().requires_grad_(True)
    with torch.no_grad():
        grad_out = torch.randn_like(module(x))  # the module's own output size (timm's even filters give another)

    def backward() -> None:
        torch.autograd.grad(module(xg), xg, grad_out)
    return backward


def copy_bandwidth(device: str, nbytes: int = 2**28, reps: int = 10) -> float:
    """Bytes per second a device copy moves (read + write), the median of ``reps`` copies of ``nbytes``."""
    if device == "cpu":
        nbytes = min(nbytes, 2**26)
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    seconds = interleaved_medians({"copy": lambda: dst.copy_(src)}, reps, device=device)["copy"]
    return 2 * nbytes / seconds


def machine() -> str:
    """One line naming the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu}, {torch.get_num_threads()} threads{gpu}; torch {torch.__version__}, "
            f"python {platform.python_version()}")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
