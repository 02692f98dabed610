"""Convert Zhang's antialiased-cnns checkpoints (.pth) into export folders, one per file, for scripts/publish.py.

    python scripts/convert_zhang.py ~/.cache/torch/hub/checkpoints --output converted/   # every .pth there
    python scripts/convert_zhang.py resnet50_lpf4_finetune-cad66808.pth --output converted/
    for d in converted/*/; do n=$(basename "$d"); python scripts/publish.py --model "$d" --output "hub/$n" \\
        --repo-id "timm-aa/$n"; done           # publishes each (a dry run without a token)

Files keep the names he released them under (ARCH_lpfK[_finetune]-HASH.pth): a file whose SHA-256 does not
start with the HASH of its name, or that is not his format, is refused; files are read with
torch.load(weights_only=True). With antialiased-cnns installed, each converted model is checked against his
(logits within 1e-4) before anything is written. One result line per file; exit status 2 if any failed.
"""

from __future__ import annotations

import argparse
import sys

from _bootstrap import light

cli = light("infra.cli")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="one of his .pth files, or a folder of them (any subset)")
    p.add_argument("--output", required=True, help="one export folder per file is written under it")
    p.add_argument("--no-verify", action="store_true", help="skip the comparison with antialiased-cnns")
    p.add_argument("--overwrite", action="store_true", help="replace export folders an earlier conversion wrote "
                                                            "(folders timm-aa did not write are never replaced)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    cli.add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given, debug = cli.parse(parser, argv)  # before the heavy imports: --help and usage errors stay fast
    a = argparse.Namespace(**given)
    from tqdm.auto import tqdm

    from timm_aa.errors import TimmAAError
    from timm_aa.infra.bounds import check_values
    from timm_aa.infra.ownership import check_disjoint
    from timm_aa.weights.zhang_exports import OutputExists, convert_all, find_checkpoints

    def line(result) -> str:
        if isinstance(result.error, OutputExists):
            return f"skipped {result.path}: {result.error.folder} exists (--overwrite replaces it)"
        if result.error is not None:
            return f"FAILED  {result.path}: {str(result.error).removeprefix(result.path + ': ')}"
        check = f"max |logit diff| vs antialiased-cnns {result.diff:.2e}" if result.diff is not None else "not verified"
        return f"ok      {result.path} -> {result.folder} ({check})"

    def job() -> None:
        check_values(given)
        paths = find_checkpoints(a.checkpoint)
        check_disjoint(a.output, {"checkpoint": a.checkpoint})
        results = []
        with tqdm(total=len(paths), unit="file", disable=True if a.no_progress else None) as bar:
            for result in convert_all(paths, a.output, verify=False if a.no_verify else None, overwrite=a.overwrite):
                results.append(result)
                bar.write(line(result), file=sys.stderr if result.error is not None else sys.stdout)
                bar.update()
        failed = [r for r in results if r.error is not None]
        if failed:
            raise TimmAAError(f"{len(failed)} of {len(results)} files were not converted (see above)")
        print(f"converted {len(results)} file(s) into {a.output}; publish each folder with scripts/publish.py "
              "--model FOLDER --output HUB_FOLDER --repo-id ORG/NAME (a dry run without a token)")

    return cli.run_main(job, parser, debug)


if __name__ == "__main__":
    sys.exit(main())
