"""Run the shift-consistency protocols for several models on the same images and the same offsets."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
from timm.data import resolve_model_data_config
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import ImageSource
from ..errors import TimmAAError
from .dataset import ResizedImages, collate_resized
from .protocols import (
    adversarial_crops,
    adversarial_shifts,
    center_crop,
    circular_agreement,
    crop_grid,
    diagonal_sweep,
    fractional_agreement,
    random_agreement,
    shift_grid,
)
from .report import WORST_CASE, ConsistencyReport, ResultRow, versions
from .settings import ConsistencySettings
from .shifts import draw_fractional_shifts, draw_offsets, draw_shifts


@dataclass
class ModelEntry:
    """A model to measure, with its own normalisation and resize interpolation (from timm's data config)."""

    name: str
    model: nn.Module
    weights: str = "random"
    mean: tuple[float, ...] = field(default=(0.485, 0.456, 0.406))
    std: tuple[float, ...] = field(default=(0.229, 0.224, 0.225))
    interpolation: str = "bilinear"

    @classmethod
    def from_model(cls, name: str, model: nn.Module, weights: str = "random") -> ModelEntry:
        cfg = resolve_model_data_config(model)
        interpolation = cfg.get("interpolation", "bilinear")
        interpolation = interpolation if interpolation in ("nearest", "bilinear", "bicubic") else "bilinear"
        return cls(name, model, weights, tuple(cfg["mean"]), tuple(cfg["std"]), interpolation)


class _Tally:
    def __init__(self) -> None:
        self.random: list[torch.Tensor] = []
        self.circular: list[torch.Tensor] = []
        self.fractional: list[torch.Tensor] = []
        self.worst = {p: _Worst() for p in WORST_CASE}  # the worst-case protocols
        self.correct: list[torch.Tensor] = []
        self.diag_probs: list[torch.Tensor] = []
        self.diag_preds: list[torch.Tensor] = []
        self.diag_correct: list[torch.Tensor] = []
        self.seconds = 0.0
        self.timed = 0


class _Worst:
    def __init__(self) -> None:
        self.consistent: list[torch.Tensor] = []  # per image: the top-1 class is the same at every grid row
        self.correct: list[torch.Tensor] = []  # per image (labelled data): correct at every grid row
        self.seconds = 0.0


def _pct(values: list[torch.Tensor]) -> float | None:
    return 100.0 * torch.cat(values).double().mean().item() if values else None


def _predictor(entry: ModelEntry, settings: ConsistencySettings):
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format

    def predict(x: torch.Tensor) -> torch.Tensor:
        return entry.model(x.contiguous(memory_format=fmt))

    return predict


def _normalise(images: torch.Tensor, entry: ModelEntry, device: str) -> torch.Tensor:
    mean = torch.tensor(entry.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(entry.std, device=device).view(1, -1, 1, 1)
    return (images.to(device).float() / 255.0 - mean) / std


def evaluate_consistency(
    entries: list[ModelEntry], source: ImageSource, settings: ConsistencySettings, progress: bool = True
) -> ConsistencyReport:
    """Measure every protocol of ``settings`` for every model on ``source``.

    Example:
        >>> from PIL import Image
        >>> from timm_aa.data import ImageSource
        >>> images = [Image.new('RGB', (48, 48), (60 * i, 0, 0)) for i in range(4)]  # uniform: every crop alike
        >>> source = ImageSource('toy', list('abcd'), [0, 1, 0, 1], ['x', 'y'], lambda i: images[i])
        >>> net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
        >>> settings = ConsistencySettings(resize=40, crop=32, passes=1)
        >>> report = evaluate_consistency([ModelEntry('net', net)], source, settings, progress=False)
        >>> report.rows()[0].protocol, report.rows()[0].consistency
        ('random', 100.0)
    """
    s = settings
    dataset = ResizedImages(source, s.resize, [e.interpolation for e in entries])
    loader = DataLoader(dataset, batch_size=s.batch_size, num_workers=s.workers, collate_fn=collate_resized)
    passes = s.passes if {"random", "circular", "fractional"} & set(s.protocols) else 1
    tallies = {e.name: _Tally() for e in entries}
    skipped: list[int] = []
    for e in entries:
        e.model.eval().to(s.device)
    bar = tqdm(total=passes * len(loader), desc="consistency", disable=not progress)
    with torch.inference_mode():
        for p in range(passes):
            count = len(loader) if s.offsets == "per-batch" else len(source)
            offsets = draw_offsets(s.seed, p, count, s.resize - s.crop)
            shifts = draw_shifts(s.seed, p, len(source), s.max_shift)
            fractional = draw_fractional_shifts(s.seed, p, len(source), s.max_shift)
            for b, batch in enumerate(loader):
                bar.update(1)
                if p == 0:
                    skipped += batch["bad"]
                if not batch["images"]:
                    continue
                idx, labels = batch["indices"], batch["labels"].to(s.device)
                batch_offsets = offsets[b].expand(len(idx), 4) if s.offsets == "per-batch" else offsets[idx]
                for e in entries:
                    _measure(e, tallies[e.name], batch["images"][e.interpolation], labels, batch_offsets,
                             shifts[idx], fractional[idx], first_pass=p == 0, settings=s)
    bar.close()
    return _report(entries, tallies, source, settings, passes, sorted(skipped))


def _measure(entry, tally, images, labels, offsets, shifts, fractional, first_pass, settings) -> None:
    s, predict = settings, _predictor(entry, settings)
    x = _normalise(images, entry, s.device)
    if "random" in s.protocols:
        tally.random.append(random_agreement(predict, x, offsets.to(s.device), s.crop).cpu())
    center = center_crop(x, s.crop)
    if "circular" in s.protocols:
        tally.circular.append(circular_agreement(predict, center, shifts).cpu())
    if "fractional" in s.protocols:
        tally.fractional.append(fractional_agreement(predict, center, fractional).cpu())
    if not first_pass:
        return
    start = time.perf_counter()
    logits = predict(center)
    center_pred = logits.argmax(1)
    if center.is_cuda:
        torch.cuda.synchronize()
    tally.seconds += time.perf_counter() - start
    tally.timed += center.shape[0]
    check_logits(entry.name, logits, tally.timed)
    labeled = bool((labels >= 0).all())
    if labeled:
        tally.correct.append((center_pred == labels).cpu())
    if "diagonal" in s.protocols:
        target = labels if labeled else center_pred
        probs, preds = diagonal_sweep(predict, x, s.crop, target)
        tally.diag_probs.append(probs.cpu())
        tally.diag_preds.append(preds.cpu())
        tally.diag_correct.append((preds == target[:, None]).cpu())
    for protocol in WORST_CASE:
        if protocol in s.protocols:
            _worst_case(predict, tally.worst[protocol], protocol, x, center, labels if labeled else None, s)


def check_logits(name: str, logits: torch.Tensor, seen: int) -> None:
    """Refuse a model whose centre-crop logits (of a batch, ``seen`` images measured so far) are not finite, or have
    fewer than two classes: its top-1 class would be constant, 100% consistent and meaningless.

    Example:
        >>> check_logits('net', torch.tensor([[0.0, 1.0], [float('nan'), 0.0]]), seen=10)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: model 'net' gives NaN or infinite logits for 1 of the first 10 images: its \
weights are broken (a diverged training run?); it cannot be measured
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise TimmAAError(f"model {name!r} gives logits of shape {tuple(logits.shape)}: consistency needs a classifier "
                          "of two classes or more (one class is always the same, so always consistent)")
    bad = int((~torch.isfinite(logits)).any(1).sum())
    if bad:
        raise TimmAAError(f"model {name!r} gives NaN or infinite logits for {bad} of the first {seen} images: its "
                          "weights are broken (a diverged training run?); it cannot be measured")


def _worst_case(predict, worst: _Worst, protocol: str, x, center, labels, settings) -> None:
    """The top-1 class at every shift (or crop offset) of the protocol's grid; row 0 is the unshifted centre crop."""
    s = settings
    start = time.perf_counter()
    if protocol == "adversarial":
        preds = adversarial_shifts(predict, center, shift_grid(s.adversarial_max_shift, s.fractional_steps),
                                   s.batch_size)
    else:
        preds = adversarial_crops(predict, x, crop_grid(s.resize - s.crop), s.crop, s.batch_size)
    if x.is_cuda:
        torch.cuda.synchronize()
    worst.seconds += time.perf_counter() - start
    worst.consistent.append((preds == preds[:, :1]).all(1))
    if labels is not None:
        worst.correct.append((preds == labels.cpu()[:, None]).all(1))


def _report(entries, tallies, source, settings, passes, skipped) -> ConsistencyReport:
    s = settings
    num_images = len(source) - len(skipped)
    if num_images == 0:
        raise TimmAAError(f"none of the {len(source)} images in {source.name!r} could be read")
    rows = []
    for e in entries:
        t = tallies[e.name]
        base = dict(model=e.name, architecture=_architecture(e.model), weights=e.weights, num_images=num_images,
                    resize=s.resize, crop=s.crop, seed=s.seed, accuracy=_pct(t.correct),
                    images_per_second=t.timed / t.seconds if t.seconds else None)
        if "random" in s.protocols:
            rows.append(ResultRow(**base, protocol="random", consistency=_pct(t.random), passes=passes,
                                  extra=dict(offsets=s.offsets)))
        if "diagonal" in s.protocols:
            probs, preds = torch.cat(t.diag_probs), torch.cat(t.diag_preds)
            same = (preds == preds[:, :1]).all(1)
            extra = dict(
                target="label" if source.labeled else "center-crop prediction",
                diagonal_offsets=list(range(s.resize - s.crop + 1)),
                true_class_prob=probs.double().mean(0).tolist(),
                accuracy_per_offset=(100 * torch.cat(t.diag_correct).double().mean(0)).tolist(),
                spread=(probs.max(1).values - probs.min(1).values).double().mean().item(),
            )
            rows.append(ResultRow(**base, protocol="diagonal", consistency=_pct([same]), passes=1, extra=extra))
        if "circular" in s.protocols:
            rows.append(ResultRow(**base, protocol="circular", consistency=_pct(t.circular), passes=passes,
                                  extra=dict(max_shift=s.max_shift)))
        if "fractional" in s.protocols:
            rows.append(ResultRow(**base, protocol="fractional", consistency=_pct(t.fractional), passes=passes,
                                  extra=dict(max_shift=s.max_shift)))
        for protocol in WORST_CASE:
            if protocol in s.protocols:
                rows.append(ResultRow(**base, protocol=protocol, consistency=_pct(t.worst[protocol].consistent),
                                      passes=1, extra=_worst_extra(t.worst[protocol], protocol, s, num_images)))
    data = dict(source=source.name, num_images=num_images, num_skipped=len(skipped),
                skipped=[source.ids[i] for i in skipped], labeled=source.labeled,
                num_classes=len(source.classes) if source.classes else None)
    settings_dict = {k: v for k, v in asdict(s).items() if k not in ("workers", "device")}
    settings_dict["protocols"] = list(s.protocols)
    return ConsistencyReport(data=data, settings=settings_dict, results=rows, versions=versions())


def _worst_extra(worst: _Worst, protocol: str, settings: ConsistencySettings, num_images: int) -> dict:
    s = settings
    if protocol == "adversarial":
        grid = dict(max_shift=s.adversarial_max_shift, fractional_steps=s.fractional_steps,
                    num_shifts=len(shift_grid(s.adversarial_max_shift, s.fractional_steps)) - 1)
    else:
        grid = dict(max_offset=s.resize - s.crop, num_shifts=len(crop_grid(s.resize - s.crop)) - 1)
    return dict(**grid, worst_case_accuracy=_pct(worst.correct), seconds_per_image=worst.seconds / num_images)


def _architecture(model: nn.Module) -> str | None:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return cfg.get("architecture") or type(model).__name__


