"""The embedded demo: train a baseline and its anti-aliased variant identically on real digits, several
seeds, and report top-1 and shift-consistency (mean and spread).

Both models start from the same random weights (same seed, same parameter order), see the same
batches, and are trained on centered crops only (no augmentation), so any difference in how they
react to shifts comes from the architecture.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

from ..consistency.report import write_json_atomic
from .config import TrainConfig
from .demo_data import CANVAS, digits_splits, save_image_folder
from .loop import train

DEMO_MODELS = ("resnet18", "resnet18_aa")
DEMO_SEEDS = (0, 1, 2)
CROP = 40


def demo_config(model: str, seed: int, output: str, **overrides: Any) -> TrainConfig:
    """The demo recipe: AdamW 2e-3, 1 warm-up epoch then cosine, 10 epochs, batch 64, 40x40 center crops."""
    settings: dict[str, Any] = dict(
        model=model, output=output, epochs=10, batch_size=64, lr=2e-3, warmup_epochs=1, weight_decay=0.05,
        input_size=CROP, crop_pct=CROP / CANVAS, aug="center", seed=seed, eval_passes=3, keep_last=1,
        log_epochs=False,
    )
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**settings)


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def run_demo(
    output: str | None = None,
    models: Sequence[str] = DEMO_MODELS,
    seeds: Sequence[int] = DEMO_SEEDS,
    progress: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Train every model with every seed on the digits; print and return the summary table.

    Example:
        >>> # run_demo(epochs=2, seeds=(0,))
    """
    output = output or os.path.join("runs", time.strftime("demo-%Y%m%d-%H%M%S"))
    splits = digits_splits()
    print(f"demo: {', '.join(models)} on scikit-learn digits ({len(splits.train)} train / {len(splits.val)} val "
          f"images, {CANVAS}x{CANVAS} canvas, {CROP}x{CROP} crops), seeds {list(seeds)}; output {output}")
    runs = []
    for seed in seeds:
        for model in models:
            cfg = demo_config(model, seed, os.path.join(output, f"{model}-seed{seed}"), progress=progress, **overrides)
            start = time.perf_counter()
            final = train(cfg, splits)["final"]
            runs.append({"model": model, "seed": seed, "top1": final["val/top1"],
                         "consistency": final["val/consistency"], "seconds": time.perf_counter() - start})
            print(f"  {model:<14} seed {seed}: top-1 {runs[-1]['top1']:6.2f}  "
                  f"consistency {runs[-1]['consistency']:6.2f}  ({runs[-1]['seconds']:.0f} s)")
    summary = {m: {k: _summary([r[k] for r in runs if r["model"] == m]) for k in ("top1", "consistency")}
               for m in models}
    result = {"models": list(models), "seeds": list(seeds), "runs": runs, "summary": summary,
              "recipe": demo_config(models[0], 0, output, **overrides).to_dict()}
    write_json_atomic(result, os.path.join(output, "demo.json"))
    val_dir = save_image_folder(splits.val, os.path.join(output, "digits-val"))
    print(format_demo_table(summary, len(seeds)))
    print(f"\nvalidation images: {val_dir}; trained models: {output}/<model>-seed<N>/export "
          "(evaluate them with scripts/evaluate.py --model local-dir:... --resize 48 --crop 40)")
    return result


def format_demo_table(summary: dict[str, dict[str, dict[str, float]]], num_seeds: int) -> str:
    """Markdown table: mean +- std (min..max) over seeds."""
    lines = ["| model | top-1 (%) | random-shift consistency (%) |", "|---|---|---|"]
    for model, stats in summary.items():
        cells = [f"{s['mean']:.2f} ± {s['std']:.2f} ({s['min']:.1f}..{s['max']:.1f})"
                 for s in (stats["top1"], stats["consistency"])]
        lines.append(f"| {model} | {cells[0]} | {cells[1]} |")
    lines.append(f"\nmean ± std (min..max) over {num_seeds} seeds; consistency: % of val images whose top-1 "
                 "class agrees between two random 40x40 crops of the 48x48 image (3 draws)")
    return "\n".join(lines)
