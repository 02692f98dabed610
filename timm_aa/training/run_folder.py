"""Which folder a training run writes, and whether it may (:mod:`timm_aa.infra.ownership`): a run starts only in a new
or empty folder (or with ``overwrite``, replacing an earlier run's files), continues only its own run
(``resume``), and its main process holds the folder's lock while it trains. ``resume`` of another run's checkpoint
starts a new run from it, in a new or empty ``output``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from ..errors import TimmAAError
from ..infra.fs import check_writable, describe
from ..infra.layout import CHECKPOINTS, TOOL_WRITES, checkpoint_name
from ..infra.ownership import Owner, check_disjoint, claim
from . import checkpoints as ckpt
from .config import TrainConfig


@dataclass
class Plan:
    """What a run will do with its output, decided before any work: continue the folder's own run (``continues``,
    whose id and checkpoint are read under the folder's lock), or start a new run, from ``start_from`` (a checkpoint
    of another run) or from scratch."""

    continues: bool = False
    start_from: str | None = None


def plan_output(cfg: TrainConfig) -> Plan:
    """Before any work: the output must be writable and apart from the data; ``resume='latest'``, or a checkpoint
    of the folder's own run, continues it, and a checkpoint of another run starts a new run from it. A
    ``checkpoints/`` that is a link (to a larger disk) is written through but never deleted through: the run must
    keep every checkpoint.

    Example:
        >>> plan_output(TrainConfig(output='/tmp/timm-aa-doc/new-run'))
        Plan(continues=False, start_from=None)
    """
    check_writable(cfg.output)
    check_disjoint(cfg.output, {"data": cfg.data})
    linked = os.path.join(cfg.output, CHECKPOINTS)
    if os.path.islink(linked) and cfg.keep_last < cfg.epochs:
        raise TimmAAError(f"{linked!r} is {describe(linked)}: timm-aa writes checkpoints there but never deletes "
                          f"through a link, and keep_last={cfg.keep_last} of epochs={cfg.epochs} would delete there; "
                          f"pass keep_last={cfg.epochs} (or more), or make {CHECKPOINTS}/ a folder")
    if not cfg.resume:
        return Plan()
    if cfg.resume == "latest":
        return Plan(continues=True)
    if not os.path.isdir(cfg.resume):
        raise TimmAAError(f"resume={cfg.resume!r}: no checkpoint folder there")
    ckpt.read_state(cfg.resume)  # a checkpoint at all, before any work
    run_folder = os.path.dirname(os.path.dirname(os.path.abspath(cfg.resume)))
    same = os.path.isdir(cfg.output) and os.path.samefile(run_folder, cfg.output)
    return Plan(continues=True) if same else Plan(start_from=cfg.resume)


def _checkpoint_to_load(cfg: TrainConfig, plan: Plan, owner: Owner) -> str | None:
    """Under the lock: the checkpoint a continued run loads (the latest of its own run, or the one named, which must
    be its run's), or the other run's a new run starts from."""
    if not plan.continues:
        return plan.start_from
    if cfg.resume != "latest":
        if ckpt.read_state(cfg.resume)["run"] != owner.run:
            raise TimmAAError(f"resume={cfg.resume!r} belongs to another run than the one {cfg.output!r} holds: resume "
                              "it into a new or empty output (a new run starts from it)")
        return cfg.resume
    found = ckpt.list_checkpoints(cfg.output, owner.run)
    if not found:
        raise TimmAAError(f"resume='latest': no checkpoint in {os.path.join(cfg.output, CHECKPOINTS)!r} of the run "
                          f"timm-aa can continue there ({owner.run[:8]})")
    return found[-1]


def claim_run(accelerator: Accelerator, cfg: TrainConfig, plan: Plan,
              inside: Owner | None = None) -> tuple[Owner | None, str, bool, str | None]:
    """The main process claims and holds the output folder (whether it may be resumed is decided there, once, under
    its lock), finds the checkpoint to load, and checks up front that the names the run will write (the checkpoints
    of the epochs to come included) hold nothing of someone else's. Every process learns the run id, whether the run
    is new, and the checkpoint (or the refusal, raised in every process). ``inside``: the demo's own folder."""
    owner, message, path = None, None, None
    if accelerator.is_main_process:
        try:
            owner = claim(cfg.output, "train", overwrite=cfg.overwrite, resume=plan.continues,
                          writes=TOOL_WRITES["train"], inside=inside)
            path = _checkpoint_to_load(cfg, plan, owner)
            first = ckpt.read_state(path)["epoch"] + 1 if path else 0
            owner.check_writes(tuple(f"{CHECKPOINTS}/{checkpoint_name(e)}" for e in range(first, cfg.epochs)))
        except TimmAAError as err:
            message = str(err)
            if owner is not None:
                owner.__exit__(TimmAAError, err, None)  # refused after the claim: it leaves what it found
                owner = None
    shared = [message, owner.run if owner else None, owner.started_new if owner else False, path]
    if accelerator.num_processes > 1:
        broadcast_object_list(shared)
    if shared[0] is not None:
        raise TimmAAError(shared[0])
    return owner, shared[1], shared[2], shared[3]
