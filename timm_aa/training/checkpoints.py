"""Checkpoint folders: what they hold and how each file is read, keep-last-K, and the one to resume from.

A checkpoint is ``OUTPUT/checkpoints/epoch-NNNN/``, staged in a temporary folder and renamed once complete, so
a killed run never leaves a half-written checkpoint. What it holds, and how a resume reads it:

- ``model.safetensors`` (accelerate): safetensors, tensors only;
- ``optimizer.bin``, ``random_states_<process>.pkl`` (and ``scaler.pt`` with fp16) (accelerate):
  ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers and refuses anything else;
  a file that does not load that way stops the resume (accelerate alone would skip bad random states silently);
- ``ema.safetensors`` (with ``ema``): the EMA weights, safetensors;
- ``trainer_state.json``: epoch, step, metrics, the scheduler's state and the Gumbel temperature schedule, as JSON.
  It is written last and marks the checkpoint complete.

Our own state is never handed to accelerate's ``register_for_checkpointing``, whose ``custom_checkpoint_*.pkl``
files are unpickled in full (``weights_only=False``): a checkpoint holding such a file was not written by
timm-aa as it is, and resuming from it is refused (with the file named) until it is deleted.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import load as accelerate_load
from safetensors.torch import load_file, save_file

from .._io import replace_dir, write_json
from ..errors import TimmAAError, first_line

STATE_FILE = "trainer_state.json"
EMA_FILE = "ema.safetensors"
FORMAT = 2  # 1: the training state in accelerate's pickled custom_checkpoint_*.pkl files (not read any more)
_NAME = re.compile(r"^epoch-(\d{4,})$")


def checkpoint_dir(output: str) -> str:
    return os.path.join(output, "checkpoints")


def list_checkpoints(output: str) -> list[str]:
    """Complete checkpoints under ``output``, oldest first.

    Example:
        >>> list_checkpoints('/nonexistent')
        []
    """
    root = checkpoint_dir(output)
    if not os.path.isdir(root):
        return []
    found = sorted((int(m.group(1)), name) for name in os.listdir(root) if (m := _NAME.match(name)))
    return [os.path.join(root, name) for _, name in found if os.path.isfile(os.path.join(root, name, STATE_FILE))]


def resolve_resume(resume: str, output: str) -> str:
    """The checkpoint folder to resume from: ``'latest'`` (in ``output``) or a path.

    Example:
        >>> resolve_resume('latest', '/nonexistent')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: resume='latest': no checkpoint in '/nonexistent/checkpoints'
    """
    if resume == "latest":
        found = list_checkpoints(output)
        if not found:
            raise TimmAAError(f"resume='latest': no checkpoint in {checkpoint_dir(output)!r}")
        return found[-1]
    if not os.path.isdir(resume):
        raise TimmAAError(f"resume={resume!r}: no checkpoint folder there")
    read_state(resume)
    return resume


def read_state(path: str) -> dict[str, Any]:
    """The trainer state of a checkpoint (JSON); TimmAAError if it is missing, corrupt or of an older format."""
    state_path = os.path.join(path, STATE_FILE)
    try:
        with open(state_path) as f:
            state = json.load(f)
        int(state["epoch"]), int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TimmAAError(f"checkpoint {path!r} is incomplete or corrupt ({STATE_FILE}: {err})") from None
    if state.get("format") != FORMAT:
        raise TimmAAError(f"checkpoint {path!r} was written by an older timm-aa (format {state.get('format', 1)}, "
                          f"this one reads {FORMAT}): start a new run, or resume it with the version that wrote it")
    return state


def temp_checkpoint(output: str, epoch: int) -> tuple[str, str]:
    """``(temporary, final)`` folder names for the checkpoint of ``epoch``."""
    root = checkpoint_dir(output)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"epoch-{epoch:04d}")
    return os.path.join(root, f".tmp-epoch-{epoch:04d}"), final


def save_checkpoint(accelerator: Accelerator, output: str, state: dict[str, Any],
                    ema: torch.nn.Module | None, keep_last: int) -> str:
    """Write the checkpoint of ``state['epoch']`` (see the module docstring), then keep the newest ``keep_last``.

    ``state`` is JSON: epoch, global_step, metrics, scheduler, gumbel. Every process takes part (accelerate
    writes each one's random states); the main process writes the rest.
    """
    tmp, final = temp_checkpoint(output, state["epoch"])
    accelerator.wait_for_everyone()
    accelerator.save_state(tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if ema is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in ema.state_dict().items()},
                      os.path.join(tmp, EMA_FILE))
        write_json({**state, "format": FORMAT}, os.path.join(tmp, STATE_FILE))  # last: marks it complete
        replace_dir(tmp, final)
        for old in list_checkpoints(output)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, path: str, ema: torch.nn.Module | None) -> dict[str, Any]:
    """Restore the model, optimizer and random states of ``path`` (accelerate, as in the module docstring) and
    the EMA weights; return the trainer state for the caller's scheduler and counters."""
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
            ema.load_state_dict(load_file(os.path.join(path, EMA_FILE)))
    except pickle.UnpicklingError as err:
        raise TimmAAError(f"resume={path!r}: cannot load the checkpoint: a file there holds more than tensors and "
                          "plain data, and is refused (unpickling it could run code)") from err
    except Exception as err:  # any damaged or missing file: say which checkpoint, and why
        detail = first_line(err)
        raise TimmAAError(f"resume={path!r}: cannot load the checkpoint ({type(err).__name__}: {detail})") from err
    return state


def clean_temporaries(output: str) -> None:
    """Remove half-written checkpoints left by a killed run."""
    root = checkpoint_dir(output)
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name.startswith(".tmp-"):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
