"""Checkpoint folders: atomic writes, keep-last-K, and finding the one to resume from.

A checkpoint is ``OUTPUT/checkpoints/epoch-NNNN/``, written by ``accelerator.save_state`` into a
temporary folder that is renamed once complete, so a killed run never leaves a half-written
checkpoint. ``trainer_state.json`` is written last and marks a checkpoint as complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

STATE_FILE = "trainer_state.json"
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
    """The checkpoint folder to resume from: ``latest`` (in ``output``) or a path; errors name the problem."""
    if resume == "latest":
        found = list_checkpoints(output)
        if not found:
            raise FileNotFoundError(f"--resume latest: no checkpoint in {checkpoint_dir(output)!r}")
        return found[-1]
    if not os.path.isdir(resume):
        raise FileNotFoundError(f"--resume: no checkpoint folder at {resume!r}")
    read_state(resume)
    return resume


def read_state(path: str) -> dict[str, Any]:
    """The trainer state of a checkpoint; ``ValueError`` if it is missing or corrupt."""
    state_path = os.path.join(path, STATE_FILE)
    try:
        with open(state_path) as f:
            state = json.load(f)
        int(state["epoch"]), int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"checkpoint {path!r} is incomplete or corrupt ({STATE_FILE}: {err})") from None
    return state


def temp_checkpoint(output: str, epoch: int) -> tuple[str, str]:
    """``(temporary, final)`` folder names for the checkpoint of ``epoch``."""
    root = checkpoint_dir(output)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"epoch-{epoch:04d}")
    return os.path.join(root, f".tmp-epoch-{epoch:04d}"), final


def finalize_checkpoint(tmp: str, final: str, state: dict[str, Any], keep_last: int) -> None:
    """Mark ``tmp`` complete, rename it to ``final``, then delete all but the newest ``keep_last``."""
    with open(os.path.join(tmp, STATE_FILE), "w") as f:
        json.dump(state, f, indent=2)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(os.path.dirname(os.path.dirname(final)))[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def clean_temporaries(output: str) -> None:
    """Remove half-written checkpoints left by a killed run."""
    root = checkpoint_dir(output)
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name.startswith(".tmp-"):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
