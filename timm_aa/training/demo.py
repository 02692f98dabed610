"""The embedded demo: train a baseline and its anti-aliased variant identically on real digits, several
seeds, and report top-1 and shift-consistency (mean and spread). Why only the architecture differs: README.md
(the same initial weights too, from the same seed and the same parameter order).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

from ..infra.fs import check_writable
from ..infra.layout import DEMO_IMAGES, DEMO_RESULT, TOOL_WRITES
from ..infra.ownership import Owner, claim
from .demo_data import digits_splits, save_image_folder
from .demo_recipe import CANVAS, CROP, DEMO_MODELS, DEMO_SEEDS, demo_config
from .loop import train

log = logging.getLogger(__name__)


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def run_demo(
    output: str | None = None,
    models: Sequence[str] = DEMO_MODELS,
    seeds: Sequence[int] = DEMO_SEEDS,
    **overrides: Any,
) -> dict[str, Any]:
    """Train every model with every seed on the digits (progress is logged); return the runs and their summary.

    ``overrides`` are :class:`TrainConfig` settings on top of the demo recipe (``overwrite=True`` also lets it
    replace an earlier demo in ``output``). The result holds ``runs``, ``summary`` (per model: mean, std, min,
    max of top-1 and consistency), ``recipe``, ``output`` and ``val_dir`` (the validation images as an
    ImageFolder). ``format_demo_table(result['summary'], len(seeds))`` prints it.

    Example:
        >>> run_demo(epochs=0)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: epochs=0: must be an int in 1..100000
    """
    output = output or os.path.join("runs", time.strftime("demo-%Y%m%d-%H%M%S"))
    recipe = demo_config(models[0], 0, output, **overrides).to_dict()  # a bad setting fails here, before any work
    check_writable(output)
    with claim(output, "demo", overwrite=recipe["overwrite"], writes=TOOL_WRITES["demo"]) as owner:
        return _run_demo(owner, models, seeds, recipe, overrides)


def _run_demo(owner: Owner, models: Sequence[str], seeds: Sequence[int], recipe: dict[str, Any],
              overrides: dict[str, Any]) -> dict[str, Any]:
    output = owner.folder
    splits = digits_splits()
    log.info("demo: %s on scikit-learn digits (%d train / %d val images, %dx%d canvas, %dx%d crops), seeds %s; "
             "output %s", ", ".join(models), len(splits.train), len(splits.val), CANVAS, CANVAS, CROP, CROP,
             list(seeds), output)
    runs = []
    for seed in seeds:
        for model in models:
            cfg = demo_config(model, seed, os.path.join(output, f"{model}-seed{seed}"), **overrides)
            start = time.perf_counter()
            final = train(cfg, splits, inside=owner)["final"]
            runs.append({"model": model, "seed": seed, "top1": final["val/top1"],
                         "consistency": final["val/consistency"], "seconds": time.perf_counter() - start})
            log.info("  %-14s seed %d: top-1 %6.2f  consistency %6.2f  (%.0f s)", model, seed, runs[-1]["top1"],
                     runs[-1]["consistency"], runs[-1]["seconds"])
    summary = {m: {k: _summary([r[k] for r in runs if r["model"] == m]) for k in ("top1", "consistency")}
               for m in models}
    result = {"models": list(models), "seeds": list(seeds), "runs": runs, "summary": summary,
              "recipe": recipe}
    owner.write_json(DEMO_RESULT, result)
    with owner.staging(DEMO_IMAGES, "the validation images") as staged:
        val_dir = owner.install_dir(DEMO_IMAGES, save_image_folder(splits.val, staged))
    return {**result, "output": output, "val_dir": val_dir}


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
