"""Quick start: anti-alias a timm CNN, keep its weights, and see how much a 1-pixel shift moves its output.

    python scripts/quickstart.py --model resnet50
"""

from __future__ import annotations

import argparse

from timm_aa.quickstart import run_quickstart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50", help="a timm CNN name (default: resnet50)")
    parser.add_argument("--filt-size", type=int, default=4, help="blur filter size, 1..7 (default: 4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_quickstart(args.model, filt_size=args.filt_size, seed=args.seed)


if __name__ == "__main__":
    main()
