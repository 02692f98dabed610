"""The accelerate training loop behind ``scripts/train.py``: one CPU process to many GPUs and nodes."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
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

from .._io import check_writable
from ..errors import TimmAAError
from ..hub import write_export
from ..hub.export import check_export_target
from ..input_check import check_input_size
from ..layers.polyphase import LPSPool2d, gumbel_tau
from ..loading import create_model_from_spec
from . import checkpoints as ckpt
from .config import TrainConfig
from .data import DataSplits, TransformedImages, check_readable, open_splits, train_transform, val_transform
from .evaluation import evaluate_model
from .init import init_from
from .trackers import default_trackers

log = logging.getLogger(__name__)


@dataclass
class GumbelSchedule:
    """LPS temperature per epoch, ``max(min, tau0 * decay**epoch)``; saved in each checkpoint's JSON state."""

    tau0: float = 1.0
    decay: float = 0.8
    min: float = 0.1
    tau: float = 1.0

    def apply(self, model: nn.Module, epoch: int) -> None:
        self.tau = gumbel_tau(epoch, self.tau0, self.decay, self.min)
        for module in model.modules():
            if isinstance(module, LPSPool2d):
                module.tau = self.tau

    def state_dict(self) -> dict[str, float]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, float]) -> None:
        for key, value in state.items():
            setattr(self, key, float(value))


@dataclass
class TrainState:
    """Counters saved in each checkpoint's JSON state."""

    epoch: int = -1
    global_step: int = 0

    def state_dict(self) -> dict[str, int]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])


def build_model(cfg: TrainConfig, num_classes: int) -> tuple[nn.Module, list[str]]:
    """The model to train, with the ``init_from`` baseline weights copied in; returns the keys left fresh."""
    kwargs = dict(cfg.model_kwargs or {})
    model = create_model_from_spec(cfg.model, pretrained=cfg.pretrained, num_classes=num_classes, **kwargs)
    fresh = init_from(model, cfg.init_from) if cfg.init_from else []
    return model, fresh


def _data_config(model: nn.Module, cfg: TrainConfig) -> dict[str, Any]:
    data_cfg = resolve_model_data_config(model)
    if cfg.input_size:
        data_cfg["input_size"] = (3, cfg.input_size, cfg.input_size)
    if cfg.crop_pct:
        data_cfg["crop_pct"] = cfg.crop_pct
    return data_cfg


def _check_output(cfg: TrainConfig) -> str | None:
    """Before any work: the output folder must be writable, a fresh run must not land on existing checkpoints
    or on a user's ``export`` folder; resolve ``resume``."""
    check_writable(cfg.output)
    check_export_target(os.path.join(cfg.output, "export"))
    if cfg.resume:
        return ckpt.resolve_resume(cfg.resume, cfg.output)
    if ckpt.list_checkpoints(cfg.output):
        raise TimmAAError(f"output={cfg.output!r} already has checkpoints: continue them with resume='latest', "
                          "or choose another output folder")
    return None


def train(cfg: TrainConfig, splits: DataSplits | None = None) -> dict[str, Any]:
    """Train (or fine-tune) ``cfg.model`` on ``cfg.data``; checkpoint every epoch; export at the end.

    ``splits`` replaces ``cfg.data`` with sources built in code (the demo does this). Progress is logged
    (logger ``timm_aa.training.loop``). Returns ``{'history': [per-epoch metrics], 'export': folder,
    'final': last metrics}``.

    Example:
        >>> # train(TrainConfig(model='resnet18_aa', init_from='resnet18', data='imagenette/', epochs=5))
    """
    if splits is None and not cfg.data:
        raise TimmAAError("no data given: name a dataset (data=...), or run the demo (timm_aa.training.demo)")
    resume_path = _check_output(cfg)
    splits = splits or open_splits(cfg.data, cfg.train_split, cfg.val_split)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        log_with=default_trackers(cfg.output),
        project_dir=cfg.output,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != accelerator.num_processes:
        raise RuntimeError(f"launched {world} processes but accelerate sees {accelerator.num_processes}: "
                           "was a PartialState created before the Accelerator?")
    set_seed(cfg.seed)
    if accelerator.is_main_process:
        ckpt.clean_temporaries(cfg.output)
        check_readable(splits.train)
        check_readable(splits.val)
    model, fresh = build_model(cfg, len(splits.classes))
    if fresh and accelerator.is_main_process:
        log.info("init_from: the class count differs, classifier left freshly initialised: %s", fresh)
    data_cfg = _data_config(model, cfg)
    crop = data_cfg["input_size"][-1]
    check_input_size(model, crop, f"input_size={crop}", cfg.model)
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
    updates_per_epoch = math.ceil(batches / cfg.grad_accum)
    try:
        scheduler, _ = create_scheduler_v2(  # warm-up and floor never above the peak: lr=0 stays 0
            optimizer, sched=cfg.sched, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
            warmup_lr=min(1e-5, cfg.lr), min_lr=min(cfg.min_lr, cfg.lr), step_on_epochs=False,
            updates_per_epoch=updates_per_epoch,
        )
    except (ValueError, AssertionError) as err:  # an unknown name; plateau, which steps per epoch only
        raise TimmAAError(f"sched={cfg.sched!r}: {err} (schedules here step every update); use e.g. cosine, "
                          "step or poly") from None
    ema = ModelEmaV3(accelerator.unwrap_model(model), decay=cfg.ema_decay) if cfg.ema else None
    state = TrainState()
    gumbel = GumbelSchedule(cfg.gumbel_tau0, cfg.gumbel_decay, cfg.gumbel_min)
    saved = {}
    if resume_path:
        saved = ckpt.load_checkpoint(accelerator, resume_path, ema)
        state.load_state_dict(saved)
        scheduler.load_state_dict(saved["scheduler"])
        gumbel.load_state_dict(saved["gumbel"])
        if accelerator.is_main_process:
            log.info("resumed from %s (epoch %d done, step %d)", resume_path, state.epoch + 1, state.global_step)
    accelerator.init_trackers("train", config={k: str(v) for k, v in cfg.to_dict().items()})
    history = []
    for epoch in range(state.epoch + 1, cfg.epochs):
        gumbel.apply(model, epoch)
        _train_epoch(model, optimizer, scheduler, ema, train_loader, accelerator, state, epoch, batches, cfg)
        scheduler.step(epoch + 1)
        metrics = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "gumbel_tau": gumbel.tau}
        for prefix, net in [("val", model)] + ([("val_ema", ema.module)] if ema else []):
            result = evaluate_model(net, val_loader, accelerator, crop, len(val_set), seed=cfg.seed,
                                    passes=cfg.eval_passes)
            metrics.update({f"{prefix}/{k}": v for k, v in result.items()})
        state.epoch = epoch
        accelerator.log(metrics, step=state.global_step)
        history.append(metrics)
        ckpt.save_checkpoint(accelerator, cfg.output, {**state.state_dict(), "metrics": metrics,
                             "scheduler": scheduler.state_dict(), "gumbel": gumbel.state_dict()}, ema, cfg.keep_last)
        if cfg.log_epochs and accelerator.is_main_process:
            log.info("epoch %d: top-1 %.2f  consistency %.2f", epoch, metrics["val/top1"], metrics["val/consistency"])
    export = os.path.join(cfg.output, "export")
    final = history[-1] if history else saved.get("metrics", {})  # resumed after the last epoch
    if accelerator.is_main_process:
        net = ema.module if ema else accelerator.unwrap_model(model)
        write_export(net, export, label_names=splits.classes,
                     metrics={"model": cfg.model, "dataset": cfg.data, "epochs": cfg.epochs, **final})
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"history": history, "export": export, "final": final}


def _train_epoch(model, optimizer, scheduler, ema, loader, accelerator, state, epoch, batches, cfg) -> None:
    model.train()
    loader.set_epoch(epoch)
    bar = tqdm(total=batches, desc=f"epoch {epoch}", disable=not (cfg.progress and accelerator.is_main_process))
    for i, (x, y, _) in enumerate(loader):
        if i >= batches:
            break
        with accelerator.accumulate(model):
            loss = F.cross_entropy(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        if accelerator.sync_gradients:
            state.global_step += 1
            scheduler.step_update(num_updates=state.global_step)
            if ema is not None:
                ema.update(accelerator.unwrap_model(model), step=state.global_step)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
