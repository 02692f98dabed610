"""How to measure shift-consistency: the protocols, and one dataclass of settings with their defaults.

Kept free of heavy imports: ``scripts/evaluate.py`` reads the defaults and choices from it before importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TimmAAError
from ..infra.bounds import MAX_SHIFTS, check_memory, check_values, check_work, image_bytes

PROTOCOLS = ("random", "diagonal", "circular", "fractional", "adversarial", "adversarial-crop")
OFFSET_MODES = ("per-batch", "per-image")


@dataclass
class ConsistencySettings:
    """How to measure. ``resize`` is R, ``crop`` is S; ``offsets`` says whether the random protocol draws
    one offset pair per batch (Zhang's code) or per image; ``device`` is a torch device name.

    ``max_shift`` bounds the circular and fractional protocols' random shifts (``[-max_shift, max_shift)``). The
    adversarial protocol tries every shift ``(dy, dx)`` of the grid ``[-adversarial_max_shift,
    adversarial_max_shift]**2`` with step ``1 / fractional_steps``: ``(2 * M * K + 1)**2`` forward passes per image
    (49 by default: on the demo's 40x40 digits, about 0.17 s per image for ResNet-18, 0.5 s for its alias-free form, on
    2 CPU cores), so its bound is its own; ``adversarial-crop`` tries every crop offset in ``[0, R - S]**2``.

    Example:
        >>> ConsistencySettings(protocols=('random', 'diagonal')).passes
        5
        >>> ConsistencySettings(crop=300)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: crop=300: must be positive and at most resize=256
    """

    protocols: tuple[str, ...] = ("random",)
    resize: int = 256
    crop: int = 224
    passes: int = 5
    seed: int = 0
    offsets: str = "per-batch"
    max_shift: int = 32
    adversarial_max_shift: int = 3
    fractional_steps: int = 1
    batch_size: int = 32
    workers: int = 0
    channels_last: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.protocols = tuple(self.protocols)
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            raise TimmAAError(f"protocols={list(self.protocols)}: each must be one of {', '.join(PROTOCOLS)}")
        if self.offsets not in OFFSET_MODES:
            raise TimmAAError(f"offsets={self.offsets!r}: must be one of {', '.join(OFFSET_MODES)}")
        check_values(self.__dict__)
        if not 0 < self.crop <= self.resize:
            raise TimmAAError(f"crop={self.crop}: must be positive and at most resize={self.resize}")
        check_memory(f"one batch of {self.batch_size} images of {self.resize}x{self.resize}",
                     image_bytes(self.batch_size, self.resize), "use a smaller batch_size or resize")
        if "adversarial" in self.protocols:
            grid = (2 * self.adversarial_max_shift * self.fractional_steps + 1) ** 2
            check_work(f"adversarial shifts per image (adversarial_max_shift={self.adversarial_max_shift}, "
                       f"fractional_steps={self.fractional_steps})", grid, MAX_SHIFTS,
                       "lower adversarial_max_shift or fractional_steps")
        if "adversarial-crop" in self.protocols:
            check_work(f"adversarial crops per image (resize={self.resize}, crop={self.crop})",
                       (self.resize - self.crop + 1) ** 2, MAX_SHIFTS, "bring crop nearer resize")
