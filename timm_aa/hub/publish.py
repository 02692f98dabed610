"""Publish to the Hugging Face Hub: build a verified folder (weights, config, card), then push it in one commit."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, get_token
from torch import nn

from ..loading import carries_weights, create_model_from_spec
from .card import CardInfo, metrics_from_export, metrics_from_report, render_card
from .export import CONFIG_NAME, METRICS_NAME, PROVENANCE_KEYS, WEIGHTS_NAME, replace_dir_atomic, write_export
from .verify import verify_folder

CARD_NAME = "README.md"


@dataclass
class Prepared:
    folder: str
    model: nn.Module
    diffs: dict[str, float]


@dataclass
class Source:
    """A model to publish, with what its folder says about it."""

    model: nn.Module
    labels: list[str] | None = None
    metrics: list[dict] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


def load_source(source: str) -> Source:
    """The model to publish from a model name (with timm's weights), a checkpoint, or an export folder
    (with its label names, metrics and provenance)."""
    if os.path.isdir(source):
        if not os.path.isfile(os.path.join(source, CONFIG_NAME)):
            raise FileNotFoundError(f"{source!r} is not an export folder (no {CONFIG_NAME})")
        model = create_model_from_spec(f"local-dir:{source}")
        with open(os.path.join(source, CONFIG_NAME)) as f:
            config = json.load(f)
        cfg = config.get("pretrained_cfg", {})
        provenance = {k: cfg[k] for k in PROVENANCE_KEYS if cfg.get(k)}
        return Source(model, config.get("label_names"), metrics_from_export(os.path.join(source, METRICS_NAME)),
                      provenance)
    model = create_model_from_spec(source, pretrained=not carries_weights(source))
    return Source(model, (getattr(model, "pretrained_cfg", None) or {}).get("label_names"))


def prepare_folder(source: str | Source, output: str, info: CardInfo, eval_json: str | None = None,
                   eval_model: str | None = None, atol: float = 1e-5) -> Prepared:
    """Write a Hub-ready folder for ``source`` (a spec for :func:`load_source`, or a :class:`Source`) to
    ``output`` (atomically), verified against the source; nothing is written when verification fails.

    Example:
        >>> # prepare_folder('runs/train/export', 'out/hub', CardInfo('me/resnet50_aa.ft_pets'))
    """
    src = source if isinstance(source, Source) else load_source(source)
    model = src.model
    metrics = metrics_from_report(eval_json, eval_model) if eval_json else src.metrics
    info.metrics = info.metrics or metrics
    if src.provenance.get("license"):
        info.license = src.provenance["license"]
    info.summary = info.summary or src.provenance.get("description")
    if info.provenance is None and src.provenance.get("origin_url"):
        info.provenance = f"converted from the original release ({src.provenance['origin_url']}), logits verified"
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-publish-")
    try:
        staged = os.path.join(tmp, "folder")
        write_export(model, staged, label_names=src.labels, provenance=src.provenance)
        render_card(model, info).save(os.path.join(staged, CARD_NAME))
        diffs = verify_folder(staged, model, atol=atol)
        replace_dir_atomic(staged, os.path.abspath(output))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Prepared(os.path.abspath(output), model, diffs)


def push_folder(
    folder: str,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    force: bool = False,
    commit_message: str | None = None,
) -> CommitInfo:
    """Upload every file of ``folder`` to ``repo_id`` in a single commit.

    Refuses (``FileExistsError``) when the target already has ``model.safetensors`` unless ``force``.
    """
    files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
    for required in (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME):
        if required not in files:
            raise FileNotFoundError(f"{folder!r} lacks {required}; build it with prepare_folder first")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if not force and not create_pr and api.file_exists(repo_id, WEIGHTS_NAME, revision=revision):
        raise FileExistsError(f"{repo_id} already has {WEIGHTS_NAME}; pass --force to overwrite it (or --create-pr)")
    ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=os.path.join(folder, f)) for f in files]
    return api.create_commit(repo_id, ops, commit_message=commit_message or f"Upload {repo_id} with timm-aa",
                             revision=revision, create_pr=create_pr, repo_type="model")


def resolve_token(token: str | None) -> str | None:
    """The token to push with: the one given, else the one huggingface_hub finds (env or login)."""
    return token or get_token()
