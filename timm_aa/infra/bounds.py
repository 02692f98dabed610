"""The one table of every value that reaches timm-aa from outside: each flag of every script (by its settings
name: the learning rate is ``lr``), each key of the files we read that sizes or steers work, and our environment
variables; each with its type, finiteness and range (:mod:`.rules`). A value that sizes memory, time or processes
(an image side, a batch, a grid of shifts, workers) is bounded by what the work would need as well
(:func:`check_memory`, :func:`check_work`).

A refusal is one :class:`~timm_aa.errors.TimmAAError` naming the value and the allowed range, in the library's
terms (``lr=inf: ...``); the scripts print it in their flag terms and exit with status 2.

Standard library only: the scripts' settings check their values with it before torch is imported.

Example:
    >>> check_value('lr', float('inf'))
    Traceback (most recent call last):
    ...
    timm_aa.errors.TimmAAError: lr=inf: must be a finite number in [0, 10]
    >>> check_value('seed', 2**63)
    Traceback (most recent call last):
    ...
    timm_aa.errors.TimmAAError: seed=9223372036854775808: must be an int in 0..4294967295
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import TimmAAError
from ..layers.options import AA_LAYERS, FILT_SIZES, LPS_MIN_TAU, PAD_MODE_ALIASES, PAD_MODES
from .env import ENV_BOUNDS, read_env
from .hub_names import license_id, repo_id_problem, revision_problem
from .rules import Rule, boolean, free_text, integer, number, optional, shown, text

MAX_SIDE = 4096  # pixels on a side of an image a model takes or a transform makes
MAX_SEED = 2**32 - 1  # numpy's seed range (accelerate and timm seed numpy with it)
MAX_CLASSES = 1_000_000
MAX_SHIFTS = 4225  # shifts per image of a worst-case protocol: (2 * 32 + 1)**2, 32 px at integer steps
MAX_WORKERS = 4 * (os.cpu_count() or 1)  # data-loading processes: more than 4 per core only thrash
MAX_BATCH = 65536
MAX_EPOCHS = 100_000


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound from the machine
        return 1 << 62


MEMORY = _memory_bytes()

#: flags and settings (the names of TrainConfig, ConsistencySettings and the scripts' other options)
BOUNDS: dict[str, Rule] = {
    # how long, how much
    "epochs": integer(1, MAX_EPOCHS),
    "warmup_epochs": integer(0, MAX_EPOCHS),
    "batch_size": integer(1, MAX_BATCH),
    "grad_accum": integer(1, 1024),
    "max_train_batches": optional(integer(1, 10**9)),
    "keep_last": integer(1, MAX_EPOCHS),
    "eval_passes": integer(1, 1000),
    "passes": integer(1, 1000),
    "workers": integer(0, MAX_WORKERS),
    "seed": integer(0, MAX_SEED),
    # image sizes
    "input_size": optional(integer(1, MAX_SIDE)),
    "crop_pct": optional(number(0.05, 1)),
    "resize": integer(1, MAX_SIDE),
    "crop": integer(1, MAX_SIDE),
    "max_shift": integer(1, MAX_SIDE),
    "adversarial_max_shift": integer(1, 32),
    "fractional_steps": integer(1, 32),
    # optimisation
    "lr": number(0, 10),
    "min_lr": number(0, 10),
    "weight_decay": number(0, 10),
    "hflip": number(0, 1),
    "ema_decay": number(0, 1),
    "gumbel_tau0": number(LPS_MIN_TAU, 100),
    "gumbel_min": number(LPS_MIN_TAU, 100),
    "gumbel_decay": number(0, 1, low_open=True),
    # the anti-aliasing layers (defined by the layers)
    "filt_size": integer(FILT_SIZES[0], FILT_SIZES[-1]),
    "pad_mode": text((*PAD_MODES, *PAD_MODE_ALIASES)),
    "aa_layer": text(tuple(AA_LAYERS)),
    "act_scale": number(0, 1e3, low_open=True),
    "num_classes": integer(0, MAX_CLASSES),
    # names and paths (one printable line each)
    **{name: optional(text()) for name in (
        "model", "init_from", "data", "output", "resume", "train_split", "val_split", "split", "opt", "sched",
        "device", "eval_json", "eval_model", "checkpoint")},
    "provenance": optional(free_text()),  # escaped into the card
    # names the Hub gives meaning to (its own validator for repo ids)
    **{name: optional(repo_id_problem) for name in ("repo_id", "dataset", "base_model")},
    "revision": optional(revision_problem),
    "license": optional(license_id),
    **{name: boolean for name in (
        "pretrained", "ema", "overwrite", "progress", "log_epochs", "channels_last", "allow_random_weights",
        "private", "create_pr", "force", "dry_run", "no_verify", "no_progress")},
}

def check_value(name: str, value: Any) -> None:
    """Refuse ``value`` for the setting ``name`` unless :data:`BOUNDS` allows it (one line: the name, the value,
    what it must be).

    Example:
        >>> check_value('workers', -1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: workers=-1: must be an int in 0...
    """
    wrong = BOUNDS[name](value)
    if wrong:
        raise TimmAAError(f"{name}={shown(value)}: {wrong}")


def check_items(name: str, values: list[Any], rule: str) -> None:
    """Refuse the list ``values`` of the setting ``name`` (a repeatable option) unless each item passes the rule of
    :data:`BOUNDS` ``rule`` (one line naming the list).

    Example:
        >>> check_items('models', ['resnet18', ''], 'model')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: models=['resnet18', '']: each must be one line of printable text, 1 to 4096 \
characters
    """
    for value in values:
        wrong = BOUNDS[rule](value)
        if wrong:
            raise TimmAAError(f"{name}={shown(list(values))}: each {wrong}")


def check_values(values: Mapping[str, Any]) -> None:
    """:func:`check_value` of every item of ``values`` that :data:`BOUNDS` names.

    Example:
        >>> check_values({'epochs': 3, 'lr': 1e-3, 'not_a_setting': object()})
    """
    for name, value in values.items():
        if name in BOUNDS:
            check_value(name, value)


def _gb(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GB"


def check_memory(what: str, nbytes: int, fix: str) -> None:
    """Refuse work whose ``what`` alone needs more than half this machine's memory (``nbytes``).

    Example:
        >>> check_memory('one batch of 65536 images of 3x4096x4096', 65536 * 3 * 4096**2 * 4, 'use a smaller batch')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: one batch of 65536 images of 3x4096x4096 needs 12288.0 GB, more than half of this \
machine's ... GB: use a smaller batch
    """
    if nbytes > MEMORY // 2:
        raise TimmAAError(f"{what} needs {_gb(nbytes)}, more than half of this machine's {_gb(MEMORY)}: {fix}")


def check_work(what: str, count: int, limit: int, fix: str) -> None:
    """Refuse work of more than ``limit`` units (``count`` of ``what``).

    Example:
        >>> check_work('forward passes per image', 66049, MAX_SHIFTS, 'lower adversarial_max_shift')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: 66049 forward passes per image is more than 4225: lower adversarial_max_shift
    """
    if count > limit:
        raise TimmAAError(f"{count} {what} is more than {limit}: {fix}")


def image_bytes(batch: int, side: int, channels: int = 3, itemsize: int = 4) -> int:
    """Bytes of a float batch of square images.

    Example:
        >>> image_bytes(64, 224)
        38535168
    """
    return batch * channels * side * side * itemsize


__all__ = ["BOUNDS", "ENV_BOUNDS", "MAX_SIDE", "check_memory", "check_value", "check_values", "check_work",
           "image_bytes", "read_env", "shown"]
