"""Build a Hub-ready folder (model.safetensors, config.json, model card) and push it to the Hugging Face Hub.

    python scripts/publish.py --model runs/train/export --output out/hub --repo-id me/resnet50_aa.ft_pets
    python scripts/publish.py --model resnet50_aa@w.safetensors --output out/hub --eval-json OUT/consistency.json

The folder is loaded back with timm and with transformers and must reproduce the source logits
(max abs <= 1e-5) or nothing is published. Without a token (--token, HF_TOKEN or a login) it is a dry run.
"""

from __future__ import annotations

import argparse
import sys

from huggingface_hub.errors import HfHubHTTPError

from timm_aa.cli import run_main
from timm_aa.hub import CardInfo, VerificationError, prepare_folder, push_folder, resolve_token


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model name, .safetensors / ARCH@FILE checkpoint, or export folder")
    p.add_argument("--output", required=True, help="folder to write the Hub files to")
    p.add_argument("--repo-id", help="ORG/NAME on the Hub (needed to push)")
    p.add_argument("--eval-json", help="consistency report (scripts/evaluate.py) with this model's numbers")
    p.add_argument("--eval-model", help="which model of --eval-json (when it holds several)")
    p.add_argument("--license", default="apache-2.0", help="license of the weights (default apache-2.0)")
    p.add_argument("--dataset", default="custom", help="dataset id for the card metadata")
    p.add_argument("--base-model", help="Hub id of the model these weights were fine-tuned from")
    p.add_argument("--provenance", help="how the weights were made, for the card (default: from the source folder)")
    p.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login); never printed")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", help="branch to commit to")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    p.add_argument("--force", action="store_true", help="overwrite an existing model.safetensors in the repo")
    p.add_argument("--dry-run", action="store_true", help="build and verify only (default without a token)")
    a = p.parse_args(argv)
    repo_id = a.repo_id or f"local/{a.model.rstrip('/').split('/')[-1]}"
    info = CardInfo(repo_id=repo_id, license=a.license, dataset=a.dataset, base_model=a.base_model,
                    provenance=a.provenance)

    def job() -> None:
        prepared = prepare_folder(a.model, a.output, info, eval_json=a.eval_json, eval_model=a.eval_model)
        print(f"wrote {prepared.folder}; round trip max |logit diff|: "
              + ", ".join(f"{k} {v:.2e}" for k, v in prepared.diffs.items()))
        token = resolve_token(a.token)
        if a.dry_run or not token or not a.repo_id:
            why = "--dry-run" if a.dry_run else "no --repo-id" if not a.repo_id else "no token"
            print(f"dry run ({why}): nothing uploaded")
            return
        commit = push_folder(prepared.folder, a.repo_id, token=token, private=a.private, revision=a.revision,
                             create_pr=a.create_pr, force=a.force)
        print(f"pushed {a.repo_id}: {commit.pr_url or commit.commit_url}")

    return run_main(job, (VerificationError, HfHubHTTPError))


if __name__ == "__main__":
    sys.exit(main())
