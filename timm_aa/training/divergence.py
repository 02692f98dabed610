"""Stop a training run that diverges, in every process at once, before anything of the diverged state is saved.

Each process notes whether its losses are finite (on the device, no synchronisation); after every optimizer update
the processes add up their counts (one all-reduce of one number, so a NaN in one process stops all of them at the same
collective and none is left waiting in the next), and before each epoch's validation, checkpoint and the export every
parameter, buffer and EMA tensor is checked as well. A divergence is one :class:`~timm_aa.errors.TimmAAError` naming
the epoch, the step and the likely cause with the values in use.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from ..errors import TimmAAError
from ..infra.finite import non_finite
from ..layers.polyphase import LPSPool2d
from .config import TrainConfig


def likely_cause(cfg: TrainConfig, lr: float, tau: float | None) -> str:
    """The most likely cause of a divergence among the settings in use, then every value in use, as one clause.

    ``lr`` is the learning rate at the failing step, ``tau`` the LPS temperature (``None`` for other models).

    Example:
        >>> likely_cause(TrainConfig(lr=10.0, opt='sgd'), lr=10.0, tau=None)
        'too high a learning rate (lr=10.0, 10 at this step): lower it, or warm up longer (values in use: lr=10.0, \
10 at this step; weight_decay=0.05; opt=sgd)'
    """
    used = [f"lr={cfg.lr}, {lr:.3g} at this step", f"weight_decay={cfg.weight_decay}", f"opt={cfg.opt}"]
    if tau is not None:
        used.append(f"LPS temperature {tau:.3g} (gumbel_tau0={cfg.gumbel_tau0}, gumbel_min={cfg.gumbel_min})")
    if cfg.mixed_precision != "no":
        used.append(f"mixed_precision={cfg.mixed_precision}")
    settings = {"lr": cfg.lr, "min_lr": cfg.min_lr, "weight_decay": cfg.weight_decay}
    if tau is not None:
        settings.update(gumbel_tau0=cfg.gumbel_tau0, gumbel_min=cfg.gumbel_min)
    broken = [f"{name}={value}" for name, value in settings.items() if not math.isfinite(value)]
    if broken:
        cause = f"{', '.join(broken)} is not a finite number"
    elif tau is not None and tau < 1e-3:
        cause = f"the LPS temperature {tau:.3g} is too close to 0 (the phase scores over it overflow): raise gumbel_min"
    elif cfg.mixed_precision == "fp16":
        cause = "float16 overflows above 65504: use mixed_precision=bf16, or no, or a lower learning rate"
    elif cfg.weight_decay >= 1 and cfg.lr * cfg.weight_decay >= 1:  # each update scales a weight by 1 - lr x wd
        cause = (f"too much weight decay (lr x weight_decay = {cfg.lr * cfg.weight_decay:.3g}: each update flips and "
                 "grows every weight): lower weight_decay")
    else:
        cause = f"too high a learning rate (lr={cfg.lr}, {lr:.3g} at this step): lower it, or warm up longer"
    return f"{cause} (values in use: {'; '.join(used)})"


def lps_temperature(model: nn.Module) -> float | None:
    """The temperature of the first LPS layer of ``model``, or ``None`` when it has none.

    Example:
        >>> lps_temperature(nn.Linear(2, 2)) is None
        True
    """
    return next((float(m.tau) for m in model.modules() if isinstance(m, LPSPool2d)), None)


class DivergenceGuard:
    """Counts non-finite losses of one process and stops every process together when any process saw one.

    Example:
        >>> guard = DivergenceGuard(Accelerator(cpu=True), TrainConfig(lr=10.0, opt='sgd'))
        >>> guard.loss(torch.tensor(float('nan')))
        >>> guard.after_update(nn.Linear(2, 2), epoch=0, step=3)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: training diverged at epoch 0, step 3: the loss is NaN or infinite; likely cause: \
too high a learning rate (lr=10.0, 10 at this step): lower it, or warm up longer (values in use: lr=10.0, 10 at \
this step; weight_decay=0.05; opt=sgd); nothing of this state was saved
    """

    def __init__(self, accelerator: Accelerator, cfg: TrainConfig, optimizer: Any = None) -> None:
        self.accelerator, self.cfg, self.optimizer = accelerator, cfg, optimizer
        self.pending = torch.zeros((), dtype=torch.int32, device=accelerator.device)

    def loss(self, loss: torch.Tensor) -> None:
        """Note whether this micro-batch's loss is finite (on the device: no synchronisation)."""
        self.pending += (~torch.isfinite(loss.detach())).sum().to(self.pending)

    def after_update(self, model: nn.Module, epoch: int, step: int) -> None:
        """After an optimizer update: stop every process if any process saw a non-finite loss since the last check."""
        processes = self._processes_with(int(self.pending.item() > 0))
        if processes:
            self._stop(model, epoch, step, f"the loss is NaN or infinite{self._where(processes)}")

    def before_save(self, model: nn.Module, ema: nn.Module | None, epoch: int, step: int) -> None:
        """Before validating, checkpointing or exporting: the losses since the last update, every parameter and
        buffer of ``model`` (unwrapped) and of the EMA must be finite in every process."""
        bad = non_finite(model.state_dict())
        bad += [f"EMA {name}" for name in (non_finite(ema.state_dict()) if ema is not None else [])]
        loss = bool(self.pending.item())
        processes = self._processes_with(int(loss or bool(bad)))
        if processes:
            what = (f"{len(bad)} parameters and buffers hold NaN or infinite values (e.g. {bad[0]!r})" if bad else
                    "the loss is NaN or infinite" if loss else "the weights hold NaN or infinite values")
            self._stop(model, epoch, step, what + self._where(processes))

    def _where(self, processes: int) -> str:
        n = self.accelerator.num_processes
        return f" (in {processes} of {n} processes)" if n > 1 else ""

    def _processes_with(self, flag: int) -> int:
        """How many processes raised ``flag``: one all-reduce of one number when there are several."""
        if self.accelerator.num_processes == 1:
            return flag
        total = torch.tensor([flag], dtype=torch.int32, device=self.accelerator.device)
        return int(self.accelerator.reduce(total, reduction="sum").item())

    def _stop(self, model: nn.Module, epoch: int, step: int, what: str) -> None:
        lr = self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else self.cfg.lr
        cause = likely_cause(self.cfg, lr, lps_temperature(model))
        raise TimmAAError(f"training diverged at epoch {epoch}, step {step}: {what}; likely cause: {cause}; nothing "
                          "of this state was saved")
