"""Checkpoint folders: what they hold and how each file is read, keep-last-K, and the one to resume from.

A checkpoint is ``OUTPUT/checkpoints/epoch-NNNN/``, staged in a temporary folder and installed whole through the
run folder's :class:`~timm_aa.infra.ownership.Owner` (its marker lists every file); what it holds and how each file is
read: docs/reliability.md, "Which files are trusted". Our state never goes through accelerate's
``register_for_checkpointing``, whose ``custom_checkpoint_*.pkl`` files are unpickled in full: a checkpoint
holding one is refused, naming it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from accelerate.utils import load as accelerate_load
from safetensors.torch import load_file, save_file

from ..errors import TimmAAError, first_line
from ..infra.bounds import BOUNDS, MAX_EPOCHS
from ..infra.fs import check_free_space, read_json, write_json
from ..infra.layout import CHECKPOINT_NAME, CHECKPOINTS, EMA_WEIGHTS, TRAINER_STATE, checkpoint_name
from ..infra.ownership import Owner
from ..infra.rules import check_fields, integer, mapping, text

FORMAT = 3  # 1: accelerate's pickled custom_checkpoint_*.pkl files (not read any more); 2: no run id
#: what a checkpoint's trainer_state.json holds, each value checked when it is read
TRAINER_STATE_RULES = {
    "run": text(max_len=32), "epoch": integer(0, MAX_EPOCHS), "global_step": integer(0, 10**12), "metrics": mapping,
    "scheduler": mapping, "gumbel": mapping, **{f"gumbel.{k}": BOUNDS[f"gumbel_{k}"] for k in ("tau0", "decay", "min")},
    "gumbel.tau": BOUNDS["gumbel_min"], "metrics_lines": integer(0, MAX_EPOCHS + 1),
}


def list_checkpoints(output: str, run: str | None = None) -> list[str]:
    """Complete checkpoints under ``output`` (of the run ``run`` only, when given), oldest first.

    Example:
        >>> list_checkpoints('/nonexistent')
        []
    """
    root = os.path.join(output, CHECKPOINTS)
    if not os.path.isdir(root):
        return []
    found = sorted((int(m.group(1)), name) for name in os.listdir(root) if (m := CHECKPOINT_NAME.match(name)))
    paths = [os.path.join(root, name) for _, name in found if os.path.isfile(os.path.join(root, name, TRAINER_STATE))]
    return [p for p in paths if run is None or _run_of(p) == run]


def _run_of(path: str) -> str | None:
    try:
        run = read_json(os.path.join(path, TRAINER_STATE), "the trainer state").get("run")
    except (OSError, TimmAAError, AttributeError):
        return None
    return run if isinstance(run, str) else None


def read_state(path: str) -> dict[str, Any]:
    """The trainer state of a checkpoint, every value checked; TimmAAError if it is missing, corrupt, of an older
    format, or holds a value out of type or range.

    Example:
        >>> read_state('/nonexistent')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: checkpoint '/nonexistent' is incomplete or corrupt (trainer_state.json: [Errno 2] \
No such file or directory: '/nonexistent/trainer_state.json')
    """
    state_path = os.path.join(path, TRAINER_STATE)
    try:
        state = read_json(state_path, "the trainer state", "resume from another checkpoint, or start a new run")
    except OSError as err:
        raise TimmAAError(f"checkpoint {path!r} is incomplete or corrupt ({TRAINER_STATE}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format", 1) if isinstance(state, dict) else "?"
        raise TimmAAError(f"checkpoint {path!r} was written by an older timm-aa (format {found}, this one reads "
                          f"{FORMAT}): start a new run, or resume it with the version that wrote it")
    check_fields(state_path, state, TRAINER_STATE_RULES, "resume from another checkpoint, or start a new run")
    return state


def checkpoint_bytes(model: torch.nn.Module, ema: bool) -> int:
    """About how many bytes a checkpoint of ``model`` takes: its weights, two optimizer moments per parameter (the
    Adam family; SGD with momentum keeps one), the EMA copy with ``ema``.

    Example:
        >>> checkpoint_bytes(torch.nn.Linear(10, 10), ema=False)
        1320
    """
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return (params + buffers) * (2 if ema else 1) + 2 * params


def check_space(output: str, model: torch.nn.Module, ema: bool, name: str) -> None:
    """Refuse, before the first step, a run whose output disk cannot take one more checkpoint and the export (the
    checkpoints' own disk when ``checkpoints/`` is a link to another)."""
    size = checkpoint_bytes(model, ema)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    folder = os.path.join(output, CHECKPOINTS)
    if os.path.isdir(folder) and os.stat(folder).st_dev != os.stat(output).st_dev:
        check_free_space(folder, size, f"a checkpoint of {name}")
        check_free_space(output, weights, f"the export of {name}")
    else:
        check_free_space(output, size + weights, f"a checkpoint and the export of {name}")


def save_checkpoint(accelerator: Accelerator, owner: Owner | None, state: dict[str, Any],
                    ema: torch.nn.Module | None, keep_last: int) -> None:
    """Write the checkpoint of ``state['epoch']`` (see the module docstring), then keep the newest ``keep_last``.

    ``state`` is JSON: run, epoch, global_step, metrics, scheduler, gumbel. Every process takes part (accelerate
    writes each one's random states into the staging folder the main process made and shares); the main process,
    which holds the run folder (``owner``; None elsewhere), writes the rest and installs it.
    """
    name = f"{CHECKPOINTS}/{checkpoint_name(state['epoch'])}"
    staging = owner.staging(name, f"the checkpoint of epoch {state['epoch']}") if owner is not None else \
        contextlib.nullcontext()
    with staging as staged:
        shared = [staged]
        if accelerator.num_processes > 1:
            broadcast_object_list(shared)
        accelerator.save_state(shared[0])
        accelerator.wait_for_everyone()
        if owner is not None:
            if ema is not None:
                save_file({k: v.detach().cpu().contiguous() for k, v in ema.state_dict().items()},
                          os.path.join(staged, EMA_WEIGHTS))
            write_json({**state, "format": FORMAT}, os.path.join(staged, TRAINER_STATE))
            owner.install_dir(name, staged)
    if owner is not None:
        for old in list_checkpoints(owner.folder, owner.run)[:-keep_last]:
            owner.remove(f"{CHECKPOINTS}/{os.path.basename(old)}", f"to keep the last {keep_last} checkpoints")
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator: Accelerator, path: str, ema: torch.nn.Module | None) -> dict[str, Any]:
    """Restore the model, optimizer and random states of ``path`` (accelerate's files) and the EMA
    weights; return the trainer state for the caller's scheduler and counters."""
    state = read_state(path)
    foreign = sorted(n for n in os.listdir(path) if n.startswith("custom_checkpoint_"))
    if foreign:
        raise TimmAAError(f"resume={path!r}: the checkpoint holds {', '.join(foreign)}, pickled objects that timm-aa "
                          "never writes and never loads (unpickling can run code); delete them to resume from the rest")
    rng = os.path.join(path, f"random_states_{accelerator.process_index}.pkl")
    try:
        accelerate_load(rng)  # accelerate's own reader (weights_only=True), which it would let fail silently
        accelerator.load_state(path)
        if ema is not None:
            ema.load_state_dict(load_file(os.path.join(path, EMA_WEIGHTS)))
    except pickle.UnpicklingError as err:
        raise TimmAAError(f"resume={path!r}: cannot load the checkpoint: a file there holds more than tensors and "
                          "plain data, and is refused (unpickling it could run code)") from err
    except Exception as err:  # any damaged or missing file: say which checkpoint, and why
        detail = first_line(err)
        raise TimmAAError(f"resume={path!r}: cannot load the checkpoint ({type(err).__name__}: {detail})") from err
    return state
