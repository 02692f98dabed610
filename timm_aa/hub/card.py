"""Model cards: rendered from the package's ``cards/model_card.md`` with huggingface_hub's ``ModelCard``.

The template's source is the repository's top-level ``hub_cards/`` folder; ``timm_aa/hub/cards`` links to it,
and wheels ship its files inside the package. Metrics come from a training export's ``metrics.json`` or a
consistency report (``scripts/evaluate.py``) and go into the card's ``model-index`` as ``EvalResult`` entries.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn

from ..consistency.report import load_report
from ..data import eval_resize
from ..errors import TimmAAError
from ..layers import PatchAnchor2d
from ..validate import REPORT_ROW_RULES, check_fields, number, optional
from .card_info import CardInfo
from .export import model_args_of


def template_path(name: str = "model_card.md") -> str:
    """Filesystem path of a card template shipped with the package.

    Example:
        >>> template_path().endswith('model_card.md')
        True
    """
    return str(resources.files(__package__) / "cards" / name)


def metrics_from_export(path: str) -> list[dict[str, Any]]:
    """Top-1 and shift-consistency from a training export's ``metrics.json``.

    Example:
        >>> metrics_from_export('/nonexistent/metrics.json')
        []
    """
    if not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise TimmAAError(f"cannot read the metrics {path!r} ({err})") from None
    if not isinstance(data, dict):
        raise TimmAAError(f"{path!r} is not a metrics file (expected a JSON object)")
    percent = optional(number(0, 100))
    check_fields(path, data, {"val/top1": percent, "val/consistency": percent}, "re-export the model")
    out = []
    if "val/top1" in data:
        out.append(dict(name="top-1 accuracy", type="accuracy", value=data["val/top1"], split="validation",
                        source="timm-aa training (center crop)"))
    if "val/consistency" in data:
        out.append(dict(name="shift consistency (random crops)", type="shift-consistency",
                        value=data["val/consistency"], split="validation", source="timm-aa training"))
    return out


def metrics_from_report(path: str, model: str | None = None) -> list[dict[str, Any]]:
    """Accuracy and each protocol's consistency for one model of a consistency report.

    ``model`` picks the rows (by model spec or architecture); it may be omitted when the report
    holds a single model. Rows measured with random weights are refused: they describe no trained model.

    Example:
        >>> metrics_from_report('/nonexistent.json')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: cannot read the consistency report '/nonexistent.json' (No such file or directory)
    """
    rows = load_report(path)["results"]
    for i, row in enumerate(rows):
        check_fields(f"{path} (results[{i}])", row, REPORT_ROW_RULES, "write it again with scripts/evaluate.py")
    names = sorted({r["model"] for r in rows})
    if model is not None:
        rows = [r for r in rows if model in (r["model"], r.get("architecture"))]
    elif len(names) > 1:
        raise TimmAAError(f"eval_json={path!r} holds several models ({', '.join(names)}): choose one with "
                          "eval_model='NAME'")
    if not rows:
        raise TimmAAError(f"eval_json={path!r} has no rows for eval_model={model!r} (it has {names})")
    if any(r.get("weights") == "random" for r in rows):
        raise TimmAAError(f"eval_json={path!r}: its rows for {rows[0]['model']!r} were measured with random "
                          "weights; evaluate the published weights instead")
    out = []
    if rows[0].get("accuracy") is not None:
        out.append(dict(name="top-1 accuracy", type="accuracy", value=rows[0]["accuracy"], split="validation",
                        source=f"scripts/evaluate.py, {rows[0]['num_images']} images"))
    for r in (r for r in rows if r["consistency"] is not None):
        out.append(dict(name=f"shift consistency ({r['protocol']})", type=f"shift-consistency-{r['protocol']}",
                        value=r["consistency"], split="validation",
                        source=f"scripts/evaluate.py, R={r['resize']}, S={r['crop']}, {r['passes']} passes"))
    return out


def _results_table(metrics: list[dict[str, Any]]) -> str:
    if not metrics:
        return "No evaluation results were supplied for this card."
    lines = ["| metric | value | split | measured by |", "|---|---|---|---|"]
    lines += [f"| {m['name']} | {m['value']:.2f} | {m['split']} | {m['source']} |" for m in metrics]
    return "\n".join(lines)


def anti_aliasing_line(model_args: dict[str, Any], anchored: bool = False) -> str:
    """The card's line on how a model is anti-aliased, from its recorded model args (:func:`model_args_of`);
    ``anchored``: a patchify model whose patch grid is anchored (timm_aa/patchify.py).

    Example:
        >>> anti_aliasing_line({'aa_layer': 'blur', 'filt_size': 3, 'pad_mode': 'reflect'})
        '`aa_layer` `blur`, filter size 3, padding `reflect`'
        >>> anti_aliasing_line({'act_scale': 1.0})
        'alias-free: ideal low-pass downsampling, polynomial activations (fitted for inputs of scale 1.0)'
        >>> anti_aliasing_line({'aa_layer': 'aps'}, anchored=True)[:57]
        'patch grid anchored to the input (`aa_layer` `aps`): the '
    """
    if anchored:
        how = "a learned score" if model_args.get("aa_layer") == "lps" else "the largest contrast energy"
        return (f"patch grid anchored to the input (`aa_layer` `{model_args.get('aa_layer', 'aps')}`): the window "
                f"with {how} becomes the centre token, so the logits are exactly invariant to circular shifts")
    if "act_scale" in model_args:
        return ("alias-free: ideal low-pass downsampling, polynomial activations (fitted for inputs of scale "
                f"{model_args['act_scale']})")
    return (f"`aa_layer` `{model_args.get('aa_layer', 'blur')}`, filter size {model_args.get('filt_size', 'n/a')}, "
            f"padding `{model_args.get('pad_mode', 'n/a')}`")


def render_card(model: nn.Module, info: CardInfo) -> ModelCard:
    """The model card of ``model`` for the Hub repository ``info.repo_id``.

    Example:
        >>> import timm, timm_aa
        >>> card = render_card(timm.create_model('resnet18_aa', num_classes=2), CardInfo('org/resnet18_aa'))
        >>> card.data.library_name
        'timm'
    """
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    arch = cfg.get("architecture") or type(model).__name__
    aa = model_args_of(model)
    dataset_name = info.dataset_name or info.dataset
    evals = [EvalResult(task_type="image-classification", dataset_type=info.dataset, dataset_name=dataset_name,
                        dataset_split=m["split"], metric_type=m["type"], metric_name=m["name"],
                        metric_value=round(float(m["value"]), 4))
             for m in info.metrics]
    data = ModelCardData(
        library_name="timm", license=info.license, tags=["image-classification", "timm", "timm-aa", "anti-aliasing",
                                                          "shift-invariance"],
        datasets=[info.dataset], base_model=info.base_model, pipeline_tag="image-classification",
        model_name=info.repo_id.split("/")[-1], eval_results=evals or None,
    )
    size = cfg.get("input_size", (3, 224, 224))
    resize = eval_resize(size[-1], cfg.get("crop_pct", 0.875))
    return ModelCard.from_template(
        data, template_path=template_path(), title=info.repo_id.split("/")[-1], repo_id=info.repo_id, architecture=arch,
        summary=info.summary or f"An anti-aliased `{arch}` image classifier.",
        num_params=f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M",
        num_classes=getattr(model, "num_classes", "?"),
        anti_aliasing=anti_aliasing_line(aa, anchored=any(isinstance(m, PatchAnchor2d) for m in model.modules())),
        input_size="x".join(map(str, size)),
        resize=resize, crop_mode=cfg.get("crop_mode", "center"), interpolation=cfg.get("interpolation", "bilinear"),
        mean=tuple(cfg.get("mean", ())), std=tuple(cfg.get("std", ())),
        provenance=info.provenance or "trained with timm-aa", license=info.license,
        results=_results_table(info.metrics),
    )
