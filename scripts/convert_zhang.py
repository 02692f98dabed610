"""Convert Zhang's antialiased-cnns checkpoints (.pth) into export folders for scripts/publish.py.

    python scripts/convert_zhang.py weights/resnet50_lpf4_finetune-cad66808.pth --output converted/
    python scripts/convert_zhang.py weights/ --output converted/        # every .pth in the folder

Files are read with torch.load(weights_only=True). When antialiased-cnns is installed, each converted
model is checked against his (logits within 1e-4) before anything is written.
"""

from __future__ import annotations

import argparse
import sys

from timm_aa.cli import run_main
from timm_aa.weights.convert import convert_checkpoint, find_checkpoints


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a .pth file or a folder of them")
    p.add_argument("--output", required=True, help="one export folder per checkpoint is written under it")
    p.add_argument("--no-verify", action="store_true", help="skip the comparison with antialiased-cnns")
    a = p.parse_args(argv)

    def job() -> None:
        for path in find_checkpoints(a.checkpoint):
            folder, diff = convert_checkpoint(path, a.output, verify=False if a.no_verify else None)
            check = f"max |logit diff| vs antialiased-cnns {diff:.2e}" if diff is not None else "not verified"
            print(f"{path} -> {folder} ({check})")

    return run_main(job)


if __name__ == "__main__":
    sys.exit(main())
