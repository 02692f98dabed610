"""Fine-tune (or train) timm models with accelerate; without --data, run the demo.

    python scripts/train.py                                   # demo: resnet18 vs resnet18_aa on digits
    accelerate launch scripts/train.py --model resnet50_aa --init-from resnet50 --data DIR --output OUT
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 scripts/train.py ...   # 2 CPU procs

DIR holds train/ and val/ ImageFolders, or is a Hugging Face dataset (hf:NAME or a save_to_disk folder).
An option left out takes its default (shown below); one given is used as given (--epochs 0 is refused,
--lr 0 trains with a learning rate of 0).
"""

from __future__ import annotations

import argparse
import sys

from _bootstrap import light

cli = light("infra.cli")
config = light("training.config")
recipe = light("training.demo_recipe")


def _default(d: dict, name: str) -> str:
    """``default X`` (TrainConfig's), with ``; demo Y`` where the demo recipe differs."""
    text, demo = f"default {d[name]}", recipe.DEMO_SETTINGS.get(name)
    if demo is not None and demo != d[name]:
        text += f"; demo {demo:.3g}" if isinstance(demo, float) else f"; demo {demo}"
    return text


def build_parser() -> argparse.ArgumentParser:
    d = cli.defaults(config.TrainConfig)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    add = p.add_argument
    add("--model", action="append", metavar="SPEC",
        help=f"timm name, hf-hub:, local-dir:, FILE.safetensors or ARCH:FILE.safetensors (default {d['model']}); "
             f"repeatable in demo mode (default {' '.join(recipe.DEMO_MODELS)})")
    add("--data", metavar="DIR", help="dataset (omit to run the demo)")
    add("--output", metavar="DIR", help=f"run folder (default {d['output']}, or runs/demo-<time> for the demo)")
    add("--init-from", metavar="SPEC", help="start from these baseline weights: timm name (its pretrained weights), "
                                            "hf-hub:, local-dir:, or .safetensors")
    add("--pretrained", action="store_true", help="start from the model's own pretrained weights")
    add("--train-split", metavar="NAME", help=f"training split (default {d['train_split']})")
    add("--val-split", metavar="NAME", help=f"validation split (default {d['val_split']})")
    add("--epochs", type=int, help=f"epochs to train ({_default(d, 'epochs')})")
    add("--batch-size", type=int, help=f"images per process and step ({_default(d, 'batch_size')})")
    add("--lr", type=float, help=f"peak learning rate ({_default(d, 'lr')})")
    add("--min-lr", type=float, help=f"learning rate at the end of the schedule ({_default(d, 'min_lr')})")
    add("--opt", help=f"timm optimizer name ({_default(d, 'opt')})")
    add("--weight-decay", type=float, help=f"weight decay ({_default(d, 'weight_decay')})")
    add("--sched", help=f"timm scheduler name, stepped every update ({_default(d, 'sched')})")
    add("--warmup-epochs", type=int, help=f"linear warm-up epochs ({_default(d, 'warmup_epochs')})")
    add("--grad-accum", type=int, help=f"batches per optimizer step ({_default(d, 'grad_accum')})")
    add("--mixed-precision", choices=config.MIXED_PRECISION, help=f"16-bit autocast ({_default(d, 'mixed_precision')})")
    add("--aug", choices=config.AUGMENTATIONS, help="timm: timm's training transform; shift: resize + random crop; "
                                                    f"center: none ({_default(d, 'aug')})")
    add("--hflip", type=float, help=f"horizontal flip probability for --aug timm ({_default(d, 'hflip')})")
    add("--input-size", type=int, help=f"training crop size S (default: the model's own; demo {recipe.CROP})")
    add("--crop-pct", type=float, help="S / R, R being the validation resize (default: the model's own; "
                                       f"demo {recipe.DEMO_SETTINGS['crop_pct']:.3g})")
    add("--ema", action="store_true", help="keep an EMA of the weights (exported instead of the raw ones)")
    add("--ema-decay", type=float, help=f"EMA decay per update ({_default(d, 'ema_decay')})")
    add("--seed", type=int, action="append",
        help=f"random seed (default {d['seed']}); repeatable in demo mode "
             f"(default {' '.join(map(str, recipe.DEMO_SEEDS))})")
    add("--workers", type=int, help=f"data-loading worker processes ({_default(d, 'workers')})")
    add("--keep-last", type=int, help=f"checkpoints to keep ({_default(d, 'keep_last')})")
    add("--resume", metavar="DIR", help="'latest' (continue --output's run) or a checkpoint folder (of --output's "
                                        "run, or of another run: a new run in a new or empty --output starts from it)")
    add("--overwrite", action="store_true", help="start afresh in an --output that holds an earlier run: its files "
                                                 "are replaced, anything timm-aa did not write is kept")
    add("--eval-passes", type=int, help=f"random-shift draws per val image ({_default(d, 'eval_passes')})")
    add("--gumbel-tau0", type=float, help=f"LPS models: first-epoch Gumbel temperature ({_default(d, 'gumbel_tau0')})")
    add("--gumbel-decay", type=float, help=f"LPS: temperature factor per epoch ({_default(d, 'gumbel_decay')})")
    add("--gumbel-min", type=float, help=f"LPS: lowest temperature ({_default(d, 'gumbel_min')})")
    add("--no-progress", dest="progress", action="store_false", help="no progress bars")
    cli.add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given, debug = cli.parse(parser, argv)
    models, seeds = given.pop("model", None), given.pop("seed", None)

    def job() -> None:
        from timm_aa.errors import TimmAAError

        if "data" not in given:
            from timm_aa.training.demo import format_demo_table, run_demo

            result = run_demo(given.pop("output", None), models=models or recipe.DEMO_MODELS,
                              seeds=seeds or recipe.DEMO_SEEDS, **given)
            print(format_demo_table(result["summary"], len(result["seeds"])))
            print(f"\nvalidation images: {result['val_dir']}; trained models: {result['output']}/<model>-seed<N>/"
                  "export (evaluate them with scripts/evaluate.py --model local-dir:... --resize 48 --crop 40)")
            return
        if len(models or ()) > 1 or len(seeds or ()) > 1:
            raise TimmAAError("--model and --seed take one value each when --data is given")
        from timm_aa.training import TrainConfig, train

        picked = {"model": models[0]} if models else {}
        picked.update({"seed": seeds[0]} if seeds else {})
        result = train(TrainConfig(**given, **picked))
        final = result["final"]
        scores = ", ".join(f"{k.split('/')[1]} {final[k]:.2f}" for k in ("val/top1", "val/consistency") if k in final)
        print(f"exported {result['export']}" + (f" ({scores})" if scores else ""))

    return cli.run_main(job, parser, debug)


if __name__ == "__main__":
    sys.exit(main())
