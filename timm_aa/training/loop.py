"""The accelerate training loop behind ``scripts/train.py``: one CPU process to many GPUs and nodes.

A run owns its output folder while it trains (see :mod:`.run_folder`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from timm.data import resolve_model_data_config
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import eval_resize
from ..errors import TimmAAError
from ..infra.bounds import MAX_SIDE, check_memory, image_bytes
from ..infra.finite import check_finite_weights
from ..infra.input_check import check_input_size
from ..infra.layout import EXPORT
from ..infra.ownership import Owner
from ..layers.polyphase import GumbelTau
from ..loading import create_model_from_spec
from ..weights.export import write_export
from . import checkpoints as ckpt
from .config import TrainConfig
from .data import (
    DataSplits,
    TransformedImages,
    check_readable,
    check_trainable,
    open_splits,
    train_transform,
    val_transform,
)
from .divergence import DivergenceGuard
from .evaluation import evaluate_model
from .init import init_from
from .run_folder import claim_run, plan_output
from .trackers import default_trackers, read_metrics, write_metrics

log = logging.getLogger(__name__)


@dataclass
class GumbelSchedule:
    """LPS temperature per epoch, ``max(min, tau0 * decay**epoch)``; saved in each checkpoint's JSON state."""

    tau0: float = 1.0
    decay: float = 0.8
    min: float = 0.1
    tau: float = 1.0

    def apply(self, model: nn.Module, epoch: int) -> None:
        self.tau = max(self.min, self.tau0 * self.decay**epoch)
        for module in model.modules():
            if isinstance(module, GumbelTau):  # LPS pools and learned patch anchors
                module.tau = self.tau

    def state_dict(self) -> dict[str, float]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, float]) -> None:
        for key, value in state.items():
            setattr(self, key, float(value))


def build_model(cfg: TrainConfig, num_classes: int) -> tuple[nn.Module, list[str]]:
    """The model to train, with the ``init_from`` baseline weights copied in; returns the keys left fresh.

    Example:
        >>> model, fresh = build_model(TrainConfig(model='resnet18_aa'), num_classes=3)
        >>> model.fc.out_features, fresh
        (3, [])
    """
    model = create_model_from_spec(cfg.model, pretrained=cfg.pretrained, num_classes=num_classes,
                                   **(cfg.model_kwargs or {}))
    return model, (init_from(model, cfg.init_from) if cfg.init_from else [])


@dataclass
class _Run:
    """What a training run works with, built by :func:`_prepare`."""

    cfg: TrainConfig
    accelerator: Accelerator
    model: nn.Module
    optimizer: Any
    scheduler: Any
    train_loader: DataLoader
    val_loader: DataLoader
    num_val: int
    data_cfg: dict[str, Any]
    batches: int
    ema: ModelEmaV3 | None = None
    epoch: int = -1  # the last epoch done; epoch and global_step are saved in each checkpoint's JSON state
    global_step: int = 0
    gumbel: GumbelSchedule = field(default_factory=GumbelSchedule)
    guard: DivergenceGuard | None = None  # stops every process when the loss or the weights stop being finite


def _prepare(cfg: TrainConfig, splits: DataSplits, accelerator: Accelerator) -> _Run:
    """Data, model, optimizer and schedule, each checked before the first step."""
    if accelerator.is_main_process:
        check_readable(splits.train)
        check_readable(splits.val)
    model, fresh = build_model(cfg, len(splits.classes))
    if fresh and accelerator.is_main_process:
        log.info("init_from: the class count differs, classifier left freshly initialised: %s", fresh)
    data_cfg = resolve_model_data_config(model)
    if cfg.input_size:
        data_cfg["input_size"] = (3, cfg.input_size, cfg.input_size)
    if cfg.crop_pct:
        data_cfg["crop_pct"] = cfg.crop_pct
    crop = data_cfg["input_size"][-1]
    _check_sizes(cfg, crop, data_cfg["crop_pct"])
    check_input_size(model, crop, f"input_size={crop}", cfg.model)
    if accelerator.is_main_process:
        ckpt.check_space(cfg.output, model, cfg.ema, cfg.model)
    train_set = TransformedImages(splits.train, train_transform(data_cfg, cfg.aug, cfg.hflip))
    val_set = TransformedImages(splits.val, val_transform(data_cfg))
    if len(train_set) < cfg.batch_size * accelerator.num_processes:
        raise TimmAAError(f"batch_size={cfg.batch_size}: the {len(train_set)} training images are fewer than one "
                          f"batch per process ({accelerator.num_processes} processes); use a smaller batch size")
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                              num_workers=cfg.workers, generator=torch.Generator().manual_seed(cfg.seed))
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers)
    try:
        optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay)
    except ValueError as err:  # timm's registry has no such optimizer
        raise TimmAAError(f"opt={cfg.opt!r}: {err}; use a timm optimizer name such as adamw or sgd") from None
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    batches = len(train_loader) if cfg.max_train_batches is None else min(len(train_loader), cfg.max_train_batches)
    try:
        scheduler, _ = create_scheduler_v2(  # warm-up and floor never above the peak: lr=0 stays 0
            optimizer, sched=cfg.sched, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
            warmup_lr=min(1e-5, cfg.lr), min_lr=min(cfg.min_lr, cfg.lr), step_on_epochs=False,
            updates_per_epoch=math.ceil(batches / cfg.grad_accum),
        )
    except (ValueError, AssertionError) as err:  # an unknown name; plateau, which steps per epoch only
        raise TimmAAError(f"sched={cfg.sched!r}: {err} (schedules here step every update); use e.g. cosine, "
                          "step or poly") from None
    ema = ModelEmaV3(accelerator.unwrap_model(model), decay=cfg.ema_decay) if cfg.ema else None
    return _Run(cfg, accelerator, model, optimizer, scheduler, train_loader, val_loader, len(val_set), data_cfg,
                batches, ema, gumbel=GumbelSchedule(cfg.gumbel_tau0, cfg.gumbel_decay, cfg.gumbel_min),
                guard=DivergenceGuard(accelerator, cfg, optimizer))


def _check_sizes(cfg: TrainConfig, crop: int, crop_pct: float) -> None:
    """The images a run makes, sized up front: the validation resize and one batch must fit (docs/reliability.md)."""
    resize = eval_resize(crop, crop_pct)
    if resize > MAX_SIDE:
        raise TimmAAError(f"crop_pct={crop_pct}: {crop} px crops would be cut from images resized to {resize} px, more "
                          f"than {MAX_SIDE}; use a crop_pct nearer 1")
    check_memory(f"one batch of {cfg.batch_size} images of {crop}x{crop}", image_bytes(cfg.batch_size, crop),
                 "use a smaller batch_size or input_size")


def _resume(run: _Run, path: str, owner: Owner | None, continuing: bool) -> dict[str, Any]:
    """Load the checkpoint ``path``; in the same run, cut ``metrics.jsonl`` back to what it had seen."""
    saved = ckpt.load_checkpoint(run.accelerator, path, run.ema)
    run.epoch, run.global_step = saved["epoch"], saved["global_step"]
    run.scheduler.load_state_dict(saved["scheduler"])
    run.gumbel.load_state_dict(saved["gumbel"])
    # every process loaded the same weights, so all refuse them together: no collective needed
    check_finite_weights(run.accelerator.unwrap_model(run.model).state_dict(), f"checkpoint {path!r}")
    if run.ema is not None:
        check_finite_weights(run.ema.module.state_dict(), f"checkpoint {path!r} (its EMA)")
    if owner is not None:
        if continuing:
            write_metrics(owner, read_metrics(owner.folder)[: saved.get("metrics_lines", 0)])
        how = "resumed from" if continuing else f"new run in {owner.folder}, started from"
        log.info("%s %s (epoch %d done, step %d)", how, path, run.epoch + 1, run.global_step)
    return saved


def _epoch(run: _Run, epoch: int, owner: Owner | None, run_id: str) -> dict[str, Any]:
    """Train one epoch, validate, log and checkpoint it; return its metrics."""
    cfg, accelerator = run.cfg, run.accelerator
    run.gumbel.apply(run.model, epoch)
    _train_epoch(run, epoch)
    _check_finite(run, epoch)  # before anything of this epoch is measured or saved
    run.scheduler.step(epoch + 1)
    metrics = {"epoch": epoch, "lr": run.optimizer.param_groups[0]["lr"], "gumbel_tau": run.gumbel.tau}
    for prefix, net in [("val", run.model)] + ([("val_ema", run.ema.module)] if run.ema else []):
        result = evaluate_model(net, run.val_loader, accelerator, run.data_cfg["input_size"][-1], run.num_val,
                                seed=cfg.seed, passes=cfg.eval_passes)
        metrics.update({f"{prefix}/{k}": v for k, v in result.items()})
    run.epoch = epoch
    accelerator.log(metrics, step=run.global_step)
    lines = 0
    if owner is not None:
        config = {"config": {k: str(v) for k, v in cfg.to_dict().items()}, "run": run_id}  # a new run's first line
        records = (read_metrics(owner.folder) or [config]) + [{"step": run.global_step, **metrics}]
        write_metrics(owner, records)
        lines = len(records)
    state = {"epoch": run.epoch, "global_step": run.global_step, "run": run_id, "metrics": metrics,
             "metrics_lines": lines, "scheduler": run.scheduler.state_dict(), "gumbel": run.gumbel.state_dict()}
    ckpt.save_checkpoint(accelerator, owner, state, run.ema, cfg.keep_last)
    if cfg.log_epochs and accelerator.is_main_process:
        log.info("epoch %d: top-1 %.2f  consistency %.2f", epoch, metrics["val/top1"], metrics["val/consistency"])
    return metrics


def _export(run: _Run, owner: Owner | None, splits: DataSplits, final: dict[str, Any]) -> str:
    """Write the trained (or EMA) model with the data config it was trained and validated with."""
    export = os.path.join(run.cfg.output, EXPORT)
    if owner is not None:
        net = run.ema.module if run.ema else run.accelerator.unwrap_model(run.model)
        with owner.staging(EXPORT, "the export") as staged:
            write_export(net, staged, label_names=splits.classes, data_config=run.data_cfg,
                         metrics={"model": run.cfg.model, "dataset": run.cfg.data, "epochs": run.cfg.epochs, **final})
            owner.install_dir(EXPORT, staged)
    run.accelerator.wait_for_everyone()
    return export


def train(cfg: TrainConfig, splits: DataSplits | None = None, inside: Owner | None = None) -> dict[str, Any]:
    """Train (or fine-tune) ``cfg.model`` on ``cfg.data``; checkpoint every epoch; export at the end.

    A step whose loss, or an epoch whose weights, stop being finite ends the run in every process with a TimmAAError
    naming the likely cause (:mod:`.divergence`); nothing of that state is checkpointed or exported.

    ``splits`` replaces ``cfg.data`` with sources built in code (the demo does this; ``inside`` is its claim of the
    folder that holds the run). Progress is logged
    (logger ``timm_aa.training.loop``). Returns ``{'history': [per-epoch metrics], 'export': folder,
    'final': last metrics, 'run': the run id}``.

    Example:
        >>> train(TrainConfig(output='/tmp/timm-aa-doc/train'))
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no data given: name a dataset (data=...), or run the demo (timm_aa.training.demo)
    """
    if splits is None and not cfg.data:
        raise TimmAAError("no data given: name a dataset (data=...), or run the demo (timm_aa.training.demo)")
    plan = plan_output(cfg)
    splits = splits or open_splits(cfg.data, cfg.train_split, cfg.val_split)
    check_trainable(splits)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                              log_with=default_trackers() or None, project_dir=cfg.output,
                              dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != accelerator.num_processes:
        raise RuntimeError(f"launched {world} processes but accelerate sees {accelerator.num_processes}: "
                           "was a PartialState created before the Accelerator?")
    set_seed(cfg.seed)
    owner, run_id, started_new, resume_path = claim_run(accelerator, cfg, plan, inside)
    with owner or contextlib.nullcontext():  # a failure before anything is written leaves no folder behind
        run = _prepare(cfg, splits, accelerator)
        saved = _resume(run, resume_path, owner, continuing=not started_new) if resume_path else {}
        accelerator.init_trackers(f"train-{run_id[:8]}", config={k: str(v) for k, v in cfg.to_dict().items()})
        history = [_epoch(run, epoch, owner, run_id) for epoch in range(run.epoch + 1, cfg.epochs)]
        final = history[-1] if history else saved.get("metrics", {})  # resumed after the last epoch
        export = _export(run, owner, splits, final)
        accelerator.end_training()
    return {"history": history, "export": export, "final": final, "run": run_id}


def _check_finite(run: _Run, epoch: int) -> None:
    run.guard.before_save(run.accelerator.unwrap_model(run.model), run.ema.module if run.ema else None, epoch,
                          run.global_step)


def _train_epoch(run: _Run, epoch: int) -> None:
    model, accelerator, loader = run.model, run.accelerator, run.train_loader
    model.train()
    loader.set_epoch(epoch)
    bar = tqdm(total=run.batches, desc=f"epoch {epoch}",
               disable=not (run.cfg.progress and accelerator.is_main_process))
    for i, (x, y, _) in enumerate(loader):
        if i >= run.batches:
            break
        with accelerator.accumulate(model):
            loss = F.cross_entropy(model(x), y)
            run.guard.loss(loss)
            accelerator.backward(loss)
            run.optimizer.step()
            run.optimizer.zero_grad()
        if accelerator.sync_gradients:
            run.global_step += 1
            run.guard.after_update(model, epoch, run.global_step)
            run.scheduler.step_update(num_updates=run.global_step)
            if run.ema is not None:
                run.ema.update(accelerator.unwrap_model(model), step=run.global_step)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
