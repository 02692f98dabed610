"""Build a Hub-ready folder (model.safetensors, config.json, model card) and push it to the Hugging Face Hub.

    python scripts/publish.py --model runs/train/export --output out/hub --repo-id me/resnet50_aa.ft_pets
    python scripts/publish.py --model resnet50_aa:w.safetensors --output out/hub --eval-json OUT/consistency.json

The folder is loaded back with timm and with transformers and must reproduce the source logits
(max abs <= 1e-5) or nothing is published. Without a token (--token, HF_TOKEN or a login) it is a dry run.
--output must be a new or empty folder, or one an earlier publish wrote (only its own files are replaced);
any other folder is refused unless --overwrite, and even then only the Hub files are written there, never over a
file of the same name that timm-aa did not write. Without --repo-id the card names the model by its architecture
and run (runs/pets/export -> resnet18_aa.pets).
"""

from __future__ import annotations

import argparse
import sys

from _bootstrap import light

cli = light("infra.cli")
card_info = light("hub.card_info")


def build_parser() -> argparse.ArgumentParser:
    d = cli.defaults(card_info.CardInfo)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="export folder, timm name (with timm's weights), hf-hub:, .safetensors or "
                        "ARCH:FILE.safetensors")
    p.add_argument("--output", required=True, metavar="DIR", help="folder to write the Hub files to")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty --output that an earlier publish did not write (other files are "
                        "kept; a file of a Hub file's name that timm-aa did not write is refused)")
    p.add_argument("--repo-id", metavar="ORG/NAME", help="repository on the Hub (needed to push)")
    p.add_argument("--eval-json", metavar="FILE", help="consistency report (scripts/evaluate.py) with this model's "
                                                       "numbers for the card")
    p.add_argument("--eval-model", metavar="NAME", help="which model of --eval-json (when it holds several)")
    p.add_argument("--license", help="Hub license id of the weights (wins over the source folder's; default: the "
                                     f"folder's, else {card_info.DEFAULT_LICENSE})")
    p.add_argument("--dataset", help=f"dataset id for the card metadata (default {d['dataset']})")
    p.add_argument("--base-model", metavar="REPO", help="Hub id of the model these weights were fine-tuned from")
    p.add_argument("--provenance", help="how the weights were made, for the card (wins over the source folder's)")
    p.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login); never printed")
    p.add_argument("--private", action="store_true", help="create the repository as private (if it is new)")
    p.add_argument("--revision", metavar="BRANCH", help="branch to commit to (default: main)")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    p.add_argument("--force", action="store_true", help="replace an existing model.safetensors in the repo")
    p.add_argument("--dry-run", action="store_true", help="build and verify only (default without a token)")
    cli.add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given, debug = cli.parse(parser, argv)
    a = argparse.Namespace(**given)

    def job() -> None:
        from timm_aa.hub import CardInfo, prepare_folder, push_folder, resolve_token
        from timm_aa.infra.bounds import check_values
        from timm_aa.infra.hub_names import check_name, revision_problem

        check_values({k: v for k, v in given.items() if k != "token"})  # the token is never echoed
        if a.revision is not None:  # checked before any work, as the card's values are by prepare_folder
            check_name("revision", a.revision, revision_problem)
        card = {k: v for k, v in (("license", a.license), ("dataset", a.dataset)) if v is not None}
        info = CardInfo(repo_id=a.repo_id, base_model=a.base_model, provenance=a.provenance, **card)
        prepared = prepare_folder(a.model, a.output, info, eval_json=a.eval_json, eval_model=a.eval_model,
                                  overwrite=a.overwrite)
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

    return cli.run_main(job, parser, debug)


if __name__ == "__main__":
    sys.exit(main())
