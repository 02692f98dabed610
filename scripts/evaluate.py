r"""Shift-consistency of timm models, by the protocols of Zhang (ICML 2019) and the fractional and worst-case ones
of Michaeli et al. (CVPR 2023).

    python scripts/evaluate.py --model resnet18 --model resnet18_aa --pretrained --data DIR \
        --protocol random --protocol diagonal --protocol circular --output OUT
    python scripts/evaluate.py --model resnet18_aa:runs/train/export/model.safetensors --data DIR
    python scripts/evaluate.py --model resnet18_aps --pretrained --data DIR --protocol fractional \
        --protocol adversarial --fractional-steps 2

random: two crops at random offsets; diagonal: the crop at every diagonal offset; circular / fractional: two
circular shifts of the centre crop by random integer / real amounts (Fourier phase shifts); adversarial: the
centre crop against every circular shift of a grid (integers in [-M, M] on each axis, M = --adversarial-max-shift,
with --fractional-steps K also every 1/K pixel between them); adversarial-crop: against every crop offset in
[0, R - S] on each axis. The worst-case protocols report the images no shift changes and the top-1 under the
worst shift.

DIR is an ImageFolder (DIR/<class>/<image>), a flat folder of images (no labels), a folder saved with
datasets' save_to_disk, or hf:NAME for a dataset in the local Hugging Face cache. Unreadable images are
skipped and listed; images smaller than --resize are resized up. Models without trained weights are refused
(their numbers mean nothing) unless --allow-random-weights is given; their rows are then marked.
"""

from __future__ import annotations

import argparse
import os
import sys

from _bootstrap import light

cli = light("infra.cli")
settings = light("consistency.settings")


def build_parser() -> argparse.ArgumentParser:
    d = cli.defaults(settings.ConsistencySettings)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--model", dest="models", action="append", required=True, metavar="SPEC",
                   help="timm name, hf-hub:ORG/NAME, local-dir:PATH, FILE.safetensors or ARCH:FILE.safetensors "
                        "(repeatable)")
    p.add_argument("--label", dest="labels", action="append", metavar="NAME",
                   help="display name for each --model, in order (default: the spec)")
    p.add_argument("--data", required=True, metavar="DIR", help="image folder, saved datasets folder, or hf:NAME")
    p.add_argument("--split", help="split of a Hugging Face dataset (default: validation, else test)")
    p.add_argument("--protocol", dest="protocols", action="append", metavar="NAME", choices=settings.PROTOCOLS,
                   help=f"{', '.join(settings.PROTOCOLS)}; repeatable (default: {', '.join(d['protocols'])})")
    p.add_argument("--pretrained", action="store_true", help="load timm's pretrained weights for timm names")
    p.add_argument("--allow-random-weights", action="store_true",
                   help="measure models that have no trained weights anyway (their rows are marked)")
    p.add_argument("--resize", type=int, help=f"R: resize and center-crop size (default {d['resize']})")
    p.add_argument("--crop", type=int, help=f"S: crop size fed to the model (default {d['crop']})")
    p.add_argument("--passes", type=int,
                   help=f"passes over the data for the random and circular protocols (default {d['passes']})")
    p.add_argument("--seed", type=int, help=f"seed of the crop offsets and shifts (default {d['seed']})")
    p.add_argument("--offsets", choices=settings.OFFSET_MODES,
                   help=f"random protocol: one offset pair per batch (Zhang's code) or per image "
                        f"(default {d['offsets']})")
    p.add_argument("--max-shift", type=int,
                   help=f"circular and fractional shifts are drawn in [-M, M) (default {d['max_shift']})")
    p.add_argument("--adversarial-max-shift", type=int, metavar="M",
                   help=f"adversarial protocol: every shift in [-M, M] on each axis, (2MK+1)^2 forward passes per "
                        f"image (default {d['adversarial_max_shift']})")
    p.add_argument("--fractional-steps", type=int, metavar="K",
                   help=f"adversarial protocol: K grid steps per pixel, 1 = integer shifts only "
                        f"(default {d['fractional_steps']})")
    p.add_argument("--batch-size", type=int, help=f"images per forward pass (default {d['batch_size']})")
    p.add_argument("--workers", type=int,
                   help=f"data-loading worker processes (default {d['workers']}: load in the main process)")
    p.add_argument("--channels-last", action="store_true",
                   help="run the models in channels_last memory format (often faster on GPU)")
    p.add_argument("--device", help=f"torch device to run on: cpu, cuda, cuda:1, ... (default {d['device']})")
    p.add_argument("--output", metavar="DIR",
                   help="new or empty folder for consistency.json and PNG plots (default: print the table only)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier evaluation in --output (other files are kept)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    cli.add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given, debug = cli.parse(parser, argv)
    chosen = {k: given.pop(k) for k in cli.defaults(settings.ConsistencySettings) if k in given}  # the rest: the run

    def job() -> None:
        from timm_aa.consistency import ConsistencySettings
        from timm_aa.consistency.evaluate import run_evaluation
        from timm_aa.infra.layout import REPORT

        report = run_evaluation(settings=ConsistencySettings(**chosen), **given)
        print(report.table())
        if given.get("output"):
            print(f"wrote {os.path.join(given['output'], REPORT)} and plots")

    return cli.run_main(job, parser, debug)


if __name__ == "__main__":
    sys.exit(main())
