"""Model cards: rendered from the package's ``cards/model_card.md`` with huggingface_hub's ``ModelCard``.

The template's source is the repository's top-level ``hub_cards/`` folder; ``timm_aa/hub/cards`` links to it,
and wheels ship its files inside the package. Metrics come from a training export's ``metrics.json`` or a
consistency report (``scripts/evaluate.py``) and go into the card's ``model-index`` as ``EvalResult`` entries.
Text we did not write reaches the card through :mod:`.card_text`: free text escaped, the rest checked for its form.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn

from ..consistency.report import ResultRow, load_report
from ..data import eval_resize
from ..errors import TimmAAError
from ..infra.fs import read_json
from ..infra.hub_names import check_name, license_id, name_form, repo_id_problem
from ..infra.rules import check_fields, number, optional
from ..layers import PatchAnchor2d
from ..weights.export import model_args_of
from .card_info import DEFAULT_LICENSE, CardInfo
from .card_text import card_text


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
    if not os.path.lexists(path):
        return []
    try:
        data = read_json(path, "the metrics", "re-export the model")
    except OSError as err:
        raise TimmAAError(f"cannot read the metrics {path!r} ({err.strerror or err})") from None
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
    rows = [ResultRow.from_dict(row, f"{path} (results[{i}])") for i, row in enumerate(load_report(path)["results"])]
    names = sorted({r.model for r in rows})
    if model is not None:
        rows = [r for r in rows if model in (r.model, r.architecture)]
    elif len(names) > 1:
        raise TimmAAError(f"eval_json={path!r} holds several models ({', '.join(map(repr, names))}): choose one "
                          "with eval_model='NAME'")
    if not rows:
        raise TimmAAError(f"eval_json={path!r} has no rows for eval_model={model!r} (it has {names})")
    if any(r.random_weights for r in rows):
        raise TimmAAError(f"eval_json={path!r}: its rows for {rows[0].model!r} were measured with random "
                          "weights; evaluate the published weights instead")
    out = []
    if rows[0].accuracy is not None:
        out.append(dict(name="top-1 accuracy", type="accuracy", value=rows[0].accuracy, split="validation",
                        source=f"scripts/evaluate.py, {rows[0].num_images} images"))
    for r in (r for r in rows if r.consistency is not None):
        out.append(dict(name=f"shift consistency ({r.protocol})", type=f"shift-consistency-{r.protocol}",
                        value=r.consistency, split="validation",
                        source=f"scripts/evaluate.py, R={r.resize}, S={r.crop}, {r.passes} passes"))
    return out


def _results_table(metrics: list[dict[str, Any]]) -> str:
    if not metrics:
        return "No evaluation results were supplied for this card."
    lines = ["| metric | value | split | measured by |", "|---|---|---|---|"]
    lines += [f"| {card_text(m['name'])} | {float(m['value']):.2f} | {card_text(m['split'])} | "
              f"{card_text(m['source'])} |" for m in metrics]
    return "\n".join(lines)


def anti_aliasing_line(model_args: dict[str, Any], anchored: bool = False) -> str:
    """The card's line on how a model is anti-aliased, from its recorded model args (:func:`model_args_of`);
    ``anchored``: a patchify model whose patch grid is anchored (timm_aa/convert/patchify.py).

    Example:
        >>> anti_aliasing_line({'aa_layer': 'blur', 'filt_size': 3, 'pad_mode': 'reflect'})
        '`aa_layer` `blur`, filter size 3, padding `reflect`'
        >>> anti_aliasing_line({'act_scale': 1.0})
        'alias-free: ideal low-pass downsampling, polynomial activations (fitted for inputs of scale 1.0)'
        >>> anti_aliasing_line({'aa_layer': 'aps'}, anchored=True)[:57]
        'patch grid anchored to the input (`aa_layer` `aps`): the '
    """
    if anchored:
        layer = model_args.get("aa_layer", "aps")
        how = "a learned score" if layer == "lps" else "the largest contrast energy"
        return (f"patch grid anchored to the input (`aa_layer` {_inline(layer)}): the window "
                f"with {how} becomes the centre token, so the logits are exactly invariant to circular shifts")
    if "act_scale" in model_args:
        return ("alias-free: ideal low-pass downsampling, polynomial activations (fitted for inputs of scale "
                f"{_inline(model_args['act_scale'])})")
    return (f"`aa_layer` {_inline(model_args.get('aa_layer', 'blur'))}, filter size "
            f"{_inline(model_args.get('filt_size', 'n/a'))}, padding {_inline(model_args.get('pad_mode', 'n/a'))}")


def _inline(value: Any) -> str:
    """A recorded model arg in the card: a number as it is, a name as code, anything else escaped."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return f"`{value}`" if name_form(value) is None else card_text(value)


def _inline_tuple(values: Any) -> str:
    return f"({', '.join(map(_inline, values))})"


def check_card_info(info: CardInfo) -> None:
    """Refuse (TimmAAError ``field=value must be ...``, one line) a repo id, license, dataset or base model that is
    out of form; a value not given (None) passes.

    Example:
        >>> check_card_info(CardInfo('org/na me<script>'))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: repo_id='org/na me<script>' must be a Hub repo id ('org/name'; ...)
    """
    for name, problem in (("repo_id", repo_id_problem), ("license", license_id), ("dataset", repo_id_problem),
                          ("base_model", repo_id_problem)):
        if getattr(info, name) is not None:
            check_name(name, getattr(info, name), problem)


def render_card(model: nn.Module, info: CardInfo) -> ModelCard:
    """The model card of ``model`` for the Hub repository ``info.repo_id`` (:func:`check_card_info` first; free
    text escaped with :func:`~timm_aa.hub.card_text.card_text`, in the body and in the front matter).

    Example:
        >>> import timm, timm_aa
        >>> card = render_card(timm.create_model('resnet18_aa', num_classes=2), CardInfo('org/resnet18_aa'))
        >>> card.data.library_name, card.data.license
        ('timm', 'apache-2.0')
    """
    check_card_info(info)
    if not info.repo_id:
        raise TimmAAError("repo_id must be given to render a card (e.g. 'me/resnet50_aa.ft_pets')")
    license_ = info.license or DEFAULT_LICENSE
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    arch = cfg.get("architecture") or type(model).__name__
    evals = [EvalResult(task_type="image-classification", dataset_type=info.dataset,
                        dataset_name=card_text(info.dataset_name or info.dataset), dataset_split=card_text(m["split"]),
                        metric_type=card_text(m["type"]), metric_name=card_text(m["name"]),
                        metric_value=round(float(m["value"]), 4))
             for m in info.metrics]
    data = ModelCardData(
        library_name="timm", license=license_, tags=["image-classification", "timm", "timm-aa", "anti-aliasing",
                                                      "shift-invariance"],
        datasets=[info.dataset], base_model=info.base_model, pipeline_tag="image-classification",
        model_name=info.repo_id.split("/")[-1], eval_results=evals or None,
    )
    size = cfg.get("input_size", (3, 224, 224))
    resize = eval_resize(size[-1], cfg.get("crop_pct", 0.875))
    return ModelCard.from_template(
        data, template_path=template_path(), title=info.repo_id.split("/")[-1], repo_id=info.repo_id,
        architecture=_inline(arch),
        summary=card_text(info.summary or "") or f"An anti-aliased {_inline(arch)} image classifier.",
        num_params=f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M",
        num_classes=_inline(getattr(model, "num_classes", "?")), anti_aliasing=anti_aliasing_line(
            model_args_of(model), anchored=any(isinstance(m, PatchAnchor2d) for m in model.modules())),
        input_size="x".join(map(_inline, size)), resize=resize, crop_mode=_inline(cfg.get("crop_mode", "center")),
        interpolation=_inline(cfg.get("interpolation", "bilinear")),
        mean=_inline_tuple(cfg.get("mean", ())), std=_inline_tuple(cfg.get("std", ())),
        provenance=card_text(info.provenance or "") or "trained with timm-aa", license=license_,
        results=_results_table(info.metrics),
    )
