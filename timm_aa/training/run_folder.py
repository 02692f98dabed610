"""Which folder a training run writes, and whether it may (:mod:`timm_aa.infra.ownership`): a run starts only in a new
or empty folder (or with ``overwrite``, replacing an earlier run's files), continues only its own run
(``resume``), and its main process holds the folder's lock while it trains. ``resume`` of another run's checkpoint
starts a new run from it, in a new or empty ``output``.
"""

from __future__ import annotations

import os

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from ..errors import TimmAAError
from ..infra.fs import check_writable, describe
from ..infra.layout import CHECKPOINTS, TOOL_WRITES, checkpoint_name
from ..infra.ownership import Owner, check_disjoint, claim, read_marker
from . import checkpoints as ckpt
from .config import TrainConfig


def plan_output(cfg: TrainConfig) -> tuple[str | None, str | None]:
    """Before any work: ``(run to continue, checkpoint to load)``, each None where there is none. The output must
    be writable and apart from the data; ``resume='latest'`` continues the folder's own run, a checkpoint of the
    folder's run continues it, and a checkpoint of another run starts a new run from it. A ``checkpoints/`` that is
    a link (to a larger disk) is written through but never deleted through: the run must keep every checkpoint.

    Example:
        >>> plan_output(TrainConfig(output='/tmp/timm-aa-doc/new-run'))
        (None, None)
    """
    check_writable(cfg.output)
    check_disjoint(cfg.output, {"data": cfg.data})
    linked = os.path.join(cfg.output, CHECKPOINTS)
    if os.path.islink(linked) and cfg.keep_last < cfg.epochs:
        raise TimmAAError(f"{linked!r} is {describe(linked)}: timm-aa writes checkpoints there but never deletes "
                          f"through a link, and keep_last={cfg.keep_last} of epochs={cfg.epochs} would delete there; "
                          f"pass keep_last={cfg.epochs} (or more), or make {CHECKPOINTS}/ a folder")
    if not cfg.resume:
        return None, None
    if cfg.resume == "latest":
        marker, why = read_marker(cfg.output, "train")
        found = ckpt.list_checkpoints(cfg.output, marker.run) if marker else []
        if not found:
            detail = f" ({why})" if why else ""
            raise TimmAAError(f"resume='latest': no checkpoint in {os.path.join(cfg.output, 'checkpoints')!r} of a "
                              f"run timm-aa can continue{detail}")
        return marker.run, found[-1]
    if not os.path.isdir(cfg.resume):
        raise TimmAAError(f"resume={cfg.resume!r}: no checkpoint folder there")
    state = ckpt.read_state(cfg.resume)
    run_folder = os.path.dirname(os.path.dirname(os.path.abspath(cfg.resume)))
    same = os.path.isdir(cfg.output) and os.path.samefile(run_folder, cfg.output)
    return (state["run"] if same else None), cfg.resume


def claim_run(accelerator: Accelerator, cfg: TrainConfig, run: str | None, first_epoch: int,
              inside: Owner | None = None) -> tuple[Owner | None, str, bool]:
    """The main process claims and holds the output folder (up front, the names the run will write, the checkpoints
    of epochs ``first_epoch`` on included, must hold nothing of someone else's); every process learns the run id,
    and whether the run is new (or the refusal, raised in every process). ``inside``: the demo's own folder."""
    owner, message = None, None
    writes = (*TOOL_WRITES["train"], *(f"{CHECKPOINTS}/{checkpoint_name(e)}" for e in range(first_epoch, cfg.epochs)))
    if accelerator.is_main_process:
        try:
            owner = claim(cfg.output, "train", overwrite=cfg.overwrite, run=run, writes=writes, inside=inside)
        except TimmAAError as err:
            message = str(err)
    shared = [message, owner.run if owner else None, owner.started_new if owner else False]
    if accelerator.num_processes > 1:
        broadcast_object_list(shared)
    if shared[0] is not None:
        raise TimmAAError(shared[0])
    return owner, shared[1], shared[2]
