"""Publish to the Hugging Face Hub: build a verified folder (weights, config, card); :func:`push_folder` uploads it."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..infra.bounds import check_values
from ..infra.fs import check_writable
from ..infra.hub_names import hub_name
from ..infra.layout import CARD, CONFIG, EXPORT, METRICS, WEIGHTS
from ..infra.ownership import check_disjoint, claim
from ..loading import carries_weights, create_model_from_spec
from ..weights.export import PROVENANCE_KEYS, check_export, write_export
from .card import CardInfo, check_card_info, metrics_from_export, metrics_from_report, render_card
from .card_info import DEFAULT_LICENSE
from .verify import verify_folder


@dataclass
class Prepared:
    """A publish folder written: where, the model it holds, and the round trip's max logit differences."""

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
    (with its label names, metrics and provenance; its config is checked first, the forms of its license, origin
    URL and tag included, and against its weights).

    Example:
        >>> import tempfile, timm, timm_aa
        >>> folder = write_export(timm.create_model('resnet18_aa', num_classes=2), tempfile.mkdtemp() + '/x',
        ...                       label_names=['cat', 'dog'])
        >>> load_source(folder).labels
        ['cat', 'dog']
    """
    if os.path.isdir(source):
        config = check_export(source)
        model = create_model_from_spec(f"local-dir:{source}")
        cfg = config.get("pretrained_cfg") or {}
        provenance = {k: cfg[k] for k in PROVENANCE_KEYS if cfg.get(k)}
        return Source(model, config.get("label_names"), metrics_from_export(os.path.join(source, METRICS)),
                      provenance, source)
    model = create_model_from_spec(source, pretrained=not carries_weights(source))
    return Source(model, (getattr(model, "pretrained_cfg", None) or {}).get("label_names"))


def model_name(source: str, model: nn.Module) -> str:
    """The name a published model goes by without a repo id: its architecture and the run or file it comes from
    (an export folder's run: the folder above ``export/``).

    Example:
        >>> import timm, timm_aa
        >>> model_name('runs/pets/export', timm.create_model('resnet18_aa'))
        'resnet18_aa.pets'
        >>> model_name('converted/resnet50_aa.zhang_lpf4_ft_in1k', timm.create_model('resnet50_aa'))
        'resnet50_aa.zhang_lpf4_ft_in1k'
    """
    arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
    if not carries_weights(source) and not os.path.exists(source) and "/" not in source:
        return source  # a timm name, with its tag
    path = os.path.abspath(source.removeprefix("local-dir:")).removesuffix(".safetensors")
    run = os.path.basename(path)
    if run == EXPORT:
        run = os.path.basename(os.path.dirname(path))
    return hub_name(run if re.split(r"[.-]", run)[0] == arch else f"{arch}.{run}")


def prepare_folder(source: str | Source, output: str, info: CardInfo | None = None, *, eval_json: str | None = None,
                   eval_model: str | None = None, atol: float = 1e-5, overwrite: bool = False) -> Prepared:
    """Write a Hub-ready folder for ``source`` (a spec for :func:`load_source`, or a :class:`Source`) to
    ``output``, verified against the source; nothing is written to ``output`` when verification fails.

    ``output`` must be new, empty or an earlier publish folder, unless ``overwrite`` (see
    :mod:`timm_aa.infra.ownership`: files we did not write are never replaced); this, ``info``'s values
    (:func:`~timm_aa.hub.card.check_card_info`) and the ``eval_json`` report are checked before the model is loaded.
    Without ``info`` (or its ``repo_id``), the card names the model by :func:`model_name`. A value ``info`` gives
    wins over the source folder's (its license also in the published ``config.json``).

    Example:
        >>> import tempfile, timm, timm_aa
        >>> src = Source(timm.create_model('resnet18_aa', num_classes=2))
        >>> prepared = prepare_folder(src, tempfile.mkdtemp() + '/hub', CardInfo('me/resnet18_aa.demo'))
        >>> sorted(os.listdir(prepared.folder))[-3:], max(prepared.diffs.values()) <= 1e-5
        (['README.md', 'config.json', 'model.safetensors'], True)
    """
    check_values({"model": source if isinstance(source, str) else None, "output": output, "eval_json": eval_json,
                  "eval_model": eval_model, "overwrite": overwrite,
                  **{k: getattr(info, k) for k in ("repo_id", "license", "dataset", "base_model", "provenance")
                     if info is not None}})
    source_folder = source.folder if isinstance(source, Source) else source if os.path.isdir(source) else None
    check_card_info(info or CardInfo(None))
    check_writable(output)
    check_disjoint(output, {"model": source_folder})  # a model name or a Source without a folder: None, skipped
    report_metrics = metrics_from_report(eval_json, eval_model) if eval_json else None
    with claim(output, "publish", overwrite=overwrite, writes=(WEIGHTS, CONFIG, CARD)) as owner:
        src = source if isinstance(source, Source) else load_source(source)
        model = src.model
        info = dataclasses.replace(info or CardInfo(None))  # a copy: the caller's CardInfo stays as it was
        if not info.repo_id:
            info.repo_id = f"your-org/{model_name(source if isinstance(source, str) else src.folder or '', model)}"
        info.metrics = info.metrics or (report_metrics if report_metrics is not None else src.metrics)
        provenance = {**src.provenance, **({"license": info.license} if info.license else {})}  # the flag wins
        info.license = info.license or src.provenance.get("license") or DEFAULT_LICENSE
        info.summary = info.summary or src.provenance.get("description")
        if info.provenance is None and src.provenance.get("origin_url"):
            info.provenance = f"converted from the original release ({src.provenance['origin_url']}), logits verified"
        with owner.staging(CARD, "the Hub files") as staged:
            write_export(model, staged, label_names=src.labels, provenance=provenance,
                         data_config=dict(getattr(model, "pretrained_cfg", None) or {}))
            render_card(model, info).save(os.path.join(staged, CARD))
            diffs = verify_folder(staged, model, atol=atol)
            for name in (WEIGHTS, CONFIG, CARD):
                owner.write_file(name, lambda tmp, n=name: os.replace(os.path.join(staged, n), tmp))
    return Prepared(os.path.abspath(output), model, diffs)
