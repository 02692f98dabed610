"""Training settings: one dataclass, filled by ``scripts/train.py`` (from the arguments given) or by code.

Its field defaults are the only defaults of a training run. This module imports nothing heavy: the script
reads the defaults and choices from it before importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import TimmAAError
from ..infra.bounds import check_memory, check_values, image_bytes

AUGMENTATIONS = ("timm", "shift", "center")
MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything a training run needs.

    ``aug``: ``timm`` is timm's training transform (random-resized crop, flip, jitter), ``shift`` is
    resize + random crop (translations only), ``center`` is the evaluation transform (no augmentation).

    Example:
        >>> TrainConfig(model='resnet18_aa', data='data/', epochs=1).epochs
        1
    """

    model: str = "resnet18_aa"
    output: str = "runs/train"
    data: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    init_from: str | None = None
    pretrained: bool = False
    input_size: int | None = None
    crop_pct: float | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    opt: str = "adamw"
    weight_decay: float = 0.05
    sched: str = "cosine"
    warmup_epochs: int = 1
    min_lr: float = 1e-6
    grad_accum: int = 1
    mixed_precision: str = "no"
    aug: str = "timm"
    hflip: float = 0.5
    ema: bool = False
    ema_decay: float = 0.999
    seed: int = 42
    workers: int = 0
    keep_last: int = 2
    resume: str | None = None
    overwrite: bool = False
    eval_passes: int = 1
    gumbel_tau0: float = 1.0
    gumbel_decay: float = 0.8
    gumbel_min: float = 0.1
    max_train_batches: int | None = None
    progress: bool = True
    log_epochs: bool = True
    model_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name, choices in (("aug", AUGMENTATIONS), ("mixed_precision", MIXED_PRECISION)):
            if getattr(self, name) not in choices:
                raise TimmAAError(f"{name}={getattr(self, name)!r}: must be one of {', '.join(choices)}")
        check_values(self.to_dict())  # every value in its bounds (lr=0 is honoured: e.g. to recalibrate BatchNorm)
        if self.input_size is not None:
            check_memory(f"one batch of {self.batch_size} images of {self.input_size}x{self.input_size}",
                         image_bytes(self.batch_size, self.input_size), "use a smaller batch_size or input_size")
        if self.init_from and self.pretrained:
            raise TimmAAError(f"init_from={self.init_from!r} and pretrained=True both give starting weights: use one")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
