"""Every shift-invariance method measured the same way: the demo's recipe on the embedded digits, several seeds,
then every consistency protocol on the same validation images and shifts (docs/layers.md, "Alias-free models").

    python benchmarks/shift_evidence.py --output runs/shift-evidence [--models resnet18 resnet18_aa resnet18_aps
        resnet18_afc] [--seeds 0 1 2] [--epochs 10] [--trained runs/earlier/demo]
    python benchmarks/shift_evidence.py --output runs/vit-evidence --models vit_micro_patch4_40 \
        vit_micro_patch4_40_aps xcit_nano_4_p8_40_afc --epochs 20   # the transformers (docs/layers.md, "Patchify
                                                # models"); any registered model for 40 px crops can go in --models

Trains each model with each seed exactly as ``scripts/train.py`` (the demo) does, into ``OUTPUT/demo``; then, per
seed, runs ``scripts/evaluate.py`` on that seed's exports (``OUTPUT/eval-seedS``: its table, consistency.json and
plots; the command is printed) on the 40x40 centre of the 48x48 digits (random: two random 40x40 crops; circular
and fractional: shifts in [-8, 8); adversarial: every integer shift of [-3, 3]^2); prints top-1 and consistency
per protocol, mean ± std (min..max) over the seeds, and the wall time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time

PROTOCOLS = ("random", "circular", "fractional", "adversarial")


def _cell(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f} ({min(values):.1f}..{max(values):.1f})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, help="a new or empty folder")
    p.add_argument("--models", nargs="+", default=["resnet18", "resnet18_aa", "resnet18_aps", "resnet18_afc"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--trained", metavar="DEMO", help="evaluate the exports of an earlier run (its OUTPUT/demo folder, "
                   "with digits-val/) instead of training")
    a = p.parse_args(argv)

    from common import machine

    from timm_aa.consistency.report import load_report
    from timm_aa.infra.cli import configure_logging
    from timm_aa.training.demo import run_demo
    from timm_aa.training.demo_recipe import CANVAS, CROP

    configure_logging()
    start = time.perf_counter()
    if a.trained:
        demo = {"output": a.trained, "val_dir": os.path.join(a.trained, "digits-val")}
    else:
        demo = run_demo(os.path.join(a.output, "demo"), a.models, a.seeds, epochs=a.epochs)
    trained = time.perf_counter() - start
    evaluate = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "scripts", "evaluate.py")
    rows: dict[tuple[str, str], list[dict]] = {}
    for seed in a.seeds:
        out = os.path.join(a.output, f"eval-seed{seed}")
        cmd = [sys.executable, os.path.normpath(evaluate), "--data", demo["val_dir"], "--output", out, "--resize",
               str(CANVAS), "--crop", str(CROP), "--max-shift", str(CANVAS - CROP), "--passes", "3", "--no-progress"]
        for m in a.models:
            cmd += ["--model", f"local-dir:{os.path.join(demo['output'], f'{m}-seed{seed}', 'export')}", "--label", m]
        cmd += [arg for p in PROTOCOLS for arg in ("--protocol", p)]
        print("$", shlex.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        for row in load_report(os.path.join(out, "consistency.json"))["results"]:
            rows.setdefault((row["model"], row["protocol"]), []).append(row)
    print(f"machine: {machine()}; {len(a.seeds)} seeds, {a.epochs} epochs; training {trained:.0f} s, evaluation "
          f"{time.perf_counter() - start - trained:.0f} s\n")
    heads = ["model", "top-1 (%)", *(f"{p} consistency (%)" for p in PROTOCOLS), "worst-shift top-1 (%)"]
    print("| " + " | ".join(heads) + " |")
    print("|---" * (len(PROTOCOLS) + 3) + "|")
    for m in a.models:
        cells = [_cell([r["accuracy"] for r in rows[m, "random"]])]
        cells += [_cell([r["consistency"] for r in rows[m, p]]) for p in PROTOCOLS]
        cells.append(_cell([r["worst_case_accuracy"] for r in rows[m, "adversarial"]]))
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"\nshifts tried per image (adversarial): {rows[a.models[0], 'adversarial'][0]['num_shifts']}")


if __name__ == "__main__":
    main()
