"""Shift-consistency of timm models, by the protocols of Zhang (ICML 2019).

    python scripts/evaluate.py --model resnet18 --model resnet18_aa --data DIR \
        --protocol random --protocol diagonal --protocol circular --output OUT

DIR is an ImageFolder (DIR/<class>/<image>), a flat folder of images (no labels), a folder saved with
datasets' save_to_disk, or hf:NAME for a dataset in the local Hugging Face cache. Unreadable images are
skipped and listed; images smaller than --resize are resized up.
"""

from __future__ import annotations

import argparse
import sys

from timm_aa.cli import run_main
from timm_aa.consistency import OFFSET_MODES, PROTOCOLS, ConsistencySettings
from timm_aa.consistency.evaluate import run_evaluation


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True,
                   help="timm name, hf-hub:ORG/NAME, local-dir:PATH, FILE.safetensors or ARCH@FILE (repeatable)")
    p.add_argument("--label", action="append", help="display name for each --model, in order (default: the spec)")
    p.add_argument("--data", required=True, help="image folder, saved datasets folder, or hf:NAME")
    p.add_argument("--split", default=None, help="split of a Hugging Face dataset (default: validation/test)")
    p.add_argument("--protocol", action="append", choices=PROTOCOLS, help="repeatable (default: random)")
    p.add_argument("--pretrained", action="store_true", help="load timm's pretrained weights for timm names")
    p.add_argument("--resize", type=int, default=256, help="R: resize and center-crop size (default 256)")
    p.add_argument("--crop", type=int, default=224, help="S: crop size fed to the model (default 224)")
    p.add_argument("--passes", type=int, default=5, help="passes over the data for random/circular (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--offsets", choices=OFFSET_MODES, default="per-batch",
                   help="random protocol: one offset pair per batch (Zhang's code, default) or per image")
    p.add_argument("--max-shift", type=int, default=32, help="circular shifts are drawn in [-M, M) (default 32)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", default=None, help="folder for consistency.json and PNG plots")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    def job() -> None:
        settings = ConsistencySettings(
            protocols=tuple(args.protocol or ["random"]), resize=args.resize, crop=args.crop, passes=args.passes,
            seed=args.seed, offsets=args.offsets, max_shift=args.max_shift, batch_size=args.batch_size,
            workers=args.workers, channels_last=args.channels_last, device=args.device,
        )
        if args.label and len(args.label) != len(args.model):
            raise ValueError(f"give one --label per --model ({len(args.model)}), got {len(args.label)}")
        run_evaluation(args.model, args.data, settings, args.output, args.pretrained, args.split,
                       progress=not args.no_progress, labels=args.label)

    return run_main(job)


if __name__ == "__main__":
    sys.exit(main())
