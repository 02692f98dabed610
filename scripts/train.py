"""Fine-tune (or train) timm models with accelerate; without --data, run the demo.

    python scripts/train.py                                   # demo: resnet18 vs resnet18_aa on digits
    accelerate launch scripts/train.py --model resnet50_aa --init-from resnet50 --data DIR --output OUT
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 scripts/train.py ...   # 2 CPU procs

DIR holds train/ and val/ ImageFolders, or is a Hugging Face dataset (hf:NAME or a save_to_disk folder).
"""

from __future__ import annotations

import argparse
import sys

from timm_aa.cli import run_main
from timm_aa.training import TrainConfig, train
from timm_aa.training.config import AUGMENTATIONS, MIXED_PRECISION
from timm_aa.training.demo import DEMO_MODELS, DEMO_SEEDS, run_demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help=f"model spec; repeatable in demo mode (default {DEMO_MODELS})")
    p.add_argument("--data", help="dataset (omit to run the demo)")
    p.add_argument("--output", help="run folder (default runs/train, or runs/demo-<time> for the demo)")
    p.add_argument("--init-from", help="baseline weights: timm name, hf-hub:, local-dir:, or .safetensors")
    p.add_argument("--pretrained", action="store_true", help="start from the model's own pretrained weights")
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="per process (default 64)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-3; demo 2e-3)")
    p.add_argument("--opt", default="adamw")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--sched", default="cosine")
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="no")
    p.add_argument("--aug", choices=AUGMENTATIONS, default=None, help="default timm (demo: center)")
    p.add_argument("--hflip", type=float, default=0.5)
    p.add_argument("--input-size", type=int)
    p.add_argument("--crop-pct", type=float)
    p.add_argument("--ema", action="store_true", help="keep an EMA of the weights (exported instead of the raw ones)")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--seed", type=int, action="append", help="repeatable in demo mode (default 0 1 2)")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--keep-last", type=int, default=2, help="checkpoints to keep")
    p.add_argument("--resume", help="'latest' or a checkpoint folder")
    p.add_argument("--eval-passes", type=int, default=1, help="random-shift draws per val image")
    p.add_argument("--gumbel-tau0", type=float, default=1.0, help="LPS models: first-epoch Gumbel temperature")
    p.add_argument("--gumbel-decay", type=float, default=0.8, help="LPS: temperature factor per epoch")
    p.add_argument("--gumbel-min", type=float, default=0.1, help="LPS: lowest temperature")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)

    def job() -> None:
        if a.data is None:
            run_demo(a.output, models=a.model or DEMO_MODELS, seeds=a.seed or DEMO_SEEDS, progress=False,
                     epochs=a.epochs, lr=a.lr, batch_size=a.batch_size)
            return
        if a.model and len(a.model) > 1 or a.seed and len(a.seed) > 1:
            raise ValueError("--model and --seed take one value each when --data is given")
        cfg = TrainConfig(
            model=a.model[0] if a.model else "resnet18_aa", output=a.output or "runs/train", data=a.data,
            train_split=a.train_split, val_split=a.val_split, init_from=a.init_from, pretrained=a.pretrained,
            input_size=a.input_size, crop_pct=a.crop_pct, epochs=a.epochs or 10, batch_size=a.batch_size or 64,
            lr=a.lr or 1e-3, opt=a.opt, weight_decay=a.weight_decay, sched=a.sched, warmup_epochs=a.warmup_epochs,
            grad_accum=a.grad_accum, mixed_precision=a.mixed_precision, aug=a.aug or "timm", hflip=a.hflip,
            ema=a.ema, ema_decay=a.ema_decay, seed=a.seed[0] if a.seed else 42, workers=a.workers,
            keep_last=a.keep_last, resume=a.resume, eval_passes=a.eval_passes, progress=not a.no_progress,
            gumbel_tau0=a.gumbel_tau0, gumbel_decay=a.gumbel_decay, gumbel_min=a.gumbel_min,
        )
        train(cfg)

    return run_main(job)


if __name__ == "__main__":
    sys.exit(main())
