"""The evaluation job behind ``scripts/evaluate.py``: check the request, load models and data, measure, write."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from ..data import ImageSource, open_image_source
from ..errors import TimmAAError
from ..infra.bounds import check_items, check_values
from ..infra.fs import check_writable
from ..infra.input_check import check_device, check_input_size
from ..infra.layout import REPORT
from ..infra.ownership import Owner, check_disjoint, claim
from ..loading import carries_weights, create_model_from_spec
from .plots import plot_consistency, plot_diagonal
from .report import ConsistencyReport
from .runner import ModelEntry, evaluate_consistency
from .settings import ConsistencySettings

log = logging.getLogger(__name__)


def weights_label(spec: str, pretrained: bool) -> str:
    """Where a model's weights come from: the spec itself (a checkpoint or Hub repo), ``pretrained`` or ``random``.

    Example:
        >>> weights_label('resnet18', False), weights_label('resnet18', True), weights_label('local-dir:x', False)
        ('random', 'pretrained', 'local-dir:x')
    """
    if carries_weights(spec):
        return spec
    return "pretrained" if pretrained else "random"


def _check_request(models: Sequence[str], names: list[str], pretrained: bool, allow_random_weights: bool) -> None:
    if not models:
        raise TimmAAError("models=[]: give at least one model to evaluate")
    check_items("models", list(models), "model")
    check_items("labels", names, "eval_model")
    if len(set(models)) != len(models):
        raise TimmAAError(f"a model is listed twice: {list(models)}")
    if len(names) != len(models):
        raise TimmAAError(f"labels={names}: give one label per model ({len(models)})")
    if len(set(names)) != len(names):
        raise TimmAAError(f"model names must differ: {names}")
    untrained = [n for n, spec in zip(names, models, strict=True) if weights_label(spec, pretrained) == "random"]
    if untrained and not allow_random_weights:
        raise TimmAAError(
            f"{', '.join(map(repr, untrained))} would be measured with random weights, and an untrained model's "
            "numbers mean nothing (a constant prediction is 100% consistent): give trained weights (pretrained=True "
            "for timm's, or a checkpoint, hf-hub: or local-dir: spec), or allow_random_weights=True to measure "
            "them anyway"
        )


def run_evaluation(
    models: Sequence[str],
    data: str,
    settings: ConsistencySettings,
    output: str | None = None,
    *,
    pretrained: bool = False,
    split: str | None = None,
    progress: bool = True,
    labels: Sequence[str] | None = None,
    allow_random_weights: bool = False,
    overwrite: bool = False,
) -> ConsistencyReport:
    """Evaluate each model spec on ``data``; write ``consistency.json`` and PNG plots to ``output``; return the report.

    Everything that can be checked is checked before the first image is measured: the model list, untrained
    models (refused unless ``allow_random_weights``; their rows are marked), that ``output`` is writable, new or
    empty (an earlier evaluation's folder only with ``overwrite``) and apart from the data, the data, and that each
    model takes ``settings.crop``-sized images.

    Example:
        >>> run_evaluation(['resnet18'], 'data/val', ConsistencySettings())
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: 'resnet18' would be measured with random weights, and an untrained model's \
numbers mean nothing (a constant prediction is 100% consistent): give trained weights (pretrained=True for timm's, \
or a checkpoint, hf-hub: or local-dir: spec), or allow_random_weights=True to measure them anyway
    """
    check_values({"data": data, "output": output, "split": split, "pretrained": pretrained, "overwrite": overwrite,
                  "allow_random_weights": allow_random_weights, "progress": progress})
    names = list(labels) if labels else list(models)
    _check_request(models, names, pretrained, allow_random_weights)
    check_device(settings.device)
    if output:
        check_writable(output)
        check_disjoint(output, {"data": data})
    plots = ["consistency.png"] + (["diagonal.png"] if "diagonal" in settings.protocols else [])
    writes = (REPORT, *plots)
    with claim(output, "evaluate", overwrite=overwrite, writes=writes) if output else contextlib.nullcontext() as owner:
        return _evaluate(models, names, open_image_source(data, split), settings, owner, pretrained=pretrained,
                         progress=progress)


def _evaluate(models: Sequence[str], names: list[str], source: ImageSource, settings: ConsistencySettings,
              owner: Owner | None, *, pretrained: bool, progress: bool) -> ConsistencyReport:
    entries = []
    for name, spec in zip(names, models, strict=True):
        model = create_model_from_spec(spec, pretrained=pretrained)
        check_input_size(model, settings.crop, f"crop={settings.crop}", name)
        entries.append(ModelEntry.from_model(name, model, weights_label(spec, pretrained)))
    report = evaluate_consistency(entries, source, settings, progress=progress)
    if report.data["num_skipped"]:
        log.warning("skipped %d unreadable image(s): %s", report.data["num_skipped"], ", ".join(report.data["skipped"]))
    if not source.labeled:
        log.info("the data has no labels: accuracy is n/a, the diagonal protocol follows the center-crop class")
    if owner is not None:
        owner.write_json(REPORT, report.to_dict())
        owner.write_file("consistency.png", lambda tmp: plot_consistency(report, tmp))
        if "diagonal" in settings.protocols:
            owner.write_file("diagonal.png", lambda tmp: plot_diagonal(report, tmp))
    return report
