"""Publish to the Hugging Face Hub: build a verified folder (weights, config, card); :func:`push_folder` uploads it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..loading import carries_weights, create_model_from_spec
from .card import CardInfo, metrics_from_export, metrics_from_report, render_card
from .export import CONFIG_NAME, METRICS_NAME, PROVENANCE_KEYS, WEIGHTS_NAME, check_export, write_export
from .output import check_output, install, stage
from .push import CARD_NAME
from .verify import verify_folder


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
    folder: str | None = None


def load_source(source: str) -> Source:
    """The model to publish from a model name (with timm's weights), a checkpoint, or an export folder
    (with its label names, metrics and provenance; its config is checked against its weights first)."""
    if os.path.isdir(source):
        config = check_export(source)
        model = create_model_from_spec(f"local-dir:{source}")
        cfg = config.get("pretrained_cfg", {})
        provenance = {k: cfg[k] for k in PROVENANCE_KEYS if cfg.get(k)}
        return Source(model, config.get("label_names"), metrics_from_export(os.path.join(source, METRICS_NAME)),
                      provenance, source)
    model = create_model_from_spec(source, pretrained=not carries_weights(source))
    return Source(model, (getattr(model, "pretrained_cfg", None) or {}).get("label_names"))


def prepare_folder(source: str | Source, output: str, info: CardInfo, eval_json: str | None = None,
                   eval_model: str | None = None, atol: float = 1e-5, overwrite: bool = False) -> Prepared:
    """Write a Hub-ready folder for ``source`` (a spec for :func:`load_source`, or a :class:`Source`) to
    ``output``, verified against the source; nothing is written to ``output`` when verification fails.

    ``output`` must be new, empty or an earlier publish folder, unless ``overwrite`` (see
    :mod:`timm_aa.hub.output`: user files are never deleted); this and the ``eval_json`` report are checked
    before the model is loaded.

    Example:
        >>> # prepare_folder('runs/train/export', 'out/hub', CardInfo('me/resnet50_aa.ft_pets'))
    """
    source_folder = source.folder if isinstance(source, Source) else source if os.path.isdir(source) else None
    check_output(output, source_folder, overwrite)
    report_metrics = metrics_from_report(eval_json, eval_model) if eval_json else None
    src = source if isinstance(source, Source) else load_source(source)
    model = src.model
    info.metrics = info.metrics or (report_metrics if report_metrics is not None else src.metrics)
    if src.provenance.get("license"):
        info.license = src.provenance["license"]
    info.summary = info.summary or src.provenance.get("description")
    if info.provenance is None and src.provenance.get("origin_url"):
        info.provenance = f"converted from the original release ({src.provenance['origin_url']}), logits verified"
    created = not os.path.exists(output)
    staging = stage(output)
    try:
        staged = os.path.join(staging, "folder")
        write_export(model, staged, label_names=src.labels, provenance=src.provenance)
        render_card(model, info).save(os.path.join(staged, CARD_NAME))
        diffs = verify_folder(staged, model, atol=atol)
        install(staged, output, [WEIGHTS_NAME, CONFIG_NAME, CARD_NAME])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not os.listdir(output):
            os.rmdir(output)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return Prepared(os.path.abspath(output), model, diffs)
