"""The evaluation job behind ``scripts/evaluate.py``: load models and data, measure, print, write outputs."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..data import open_image_source
from ..loading import carries_weights, create_model_from_spec
from .plots import plot_consistency, plot_diagonal
from .report import ConsistencyReport, write_json_atomic
from .runner import ConsistencySettings, ModelEntry, evaluate_consistency


def _weights_label(spec: str, pretrained: bool) -> str:
    if carries_weights(spec):
        return spec
    return "pretrained" if pretrained else "random"


def run_evaluation(
    models: Sequence[str],
    data: str,
    settings: ConsistencySettings,
    output: str | None = None,
    pretrained: bool = False,
    split: str | None = None,
    progress: bool = True,
    labels: Sequence[str] | None = None,
) -> ConsistencyReport:
    """Evaluate each model spec on ``data``; print the table; write ``consistency.json`` and PNGs to ``output``.

    Example:
        >>> # run_evaluation(['resnet18', 'resnet18_aa'], 'data/val', ConsistencySettings(protocols=('random',)))
    """
    if not models:
        raise ValueError("give at least one --model")
    if len(set(models)) != len(models):
        raise ValueError(f"a model is listed twice: {list(models)}")
    source = open_image_source(data, split)  # fail on bad data before building models
    entries = []
    names = list(labels) if labels else list(models)
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ: {names}")
    for name, spec in zip(names, models, strict=True):
        model = create_model_from_spec(spec, pretrained=pretrained)
        entries.append(ModelEntry.from_model(name, model, _weights_label(spec, pretrained)))
        if entries[-1].weights == "random":
            print(f"note: {name} has random weights (pass --pretrained for timm's trained weights)")
    report = evaluate_consistency(entries, source, settings, progress=progress)
    if report.data["num_skipped"]:
        print(f"skipped {report.data['num_skipped']} unreadable image(s): {', '.join(report.data['skipped'])}")
    if not source.labeled:
        print("the data has no labels: accuracy is n/a, the diagonal protocol follows the center-crop class")
    print(report.table())
    if output:
        write_json_atomic(report.to_dict(), os.path.join(output, "consistency.json"))
        plot_consistency(report, os.path.join(output, "consistency.png"))
        if "diagonal" in settings.protocols:
            plot_diagonal(report, os.path.join(output, "diagonal.png"))
        print(f"wrote {output}/consistency.json and plots")
    return report
