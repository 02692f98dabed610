"""The demo's recipe: which models and seeds, the image geometry, and the training settings.

Kept free of heavy imports: ``scripts/train.py`` shows these defaults in its help text.
"""

from __future__ import annotations

from typing import Any

from .config import TrainConfig

DEMO_MODELS = ("resnet18", "resnet18_aa")
DEMO_SEEDS = (0, 1, 2)
CANVAS, DIGIT = 48, 32  # each 8x8 digit, upscaled to DIGIT x DIGIT, sits in the middle of a CANVAS x CANVAS image
CROP = 40
DEMO_SETTINGS: dict[str, Any] = dict(
    epochs=10, batch_size=64, lr=2e-3, warmup_epochs=1, weight_decay=0.05, input_size=CROP, crop_pct=CROP / CANVAS,
    aug="center", eval_passes=3, keep_last=1, log_epochs=False, progress=False,
)


def demo_config(model: str, seed: int, output: str, **overrides: Any) -> TrainConfig:
    """The demo recipe (AdamW 2e-3, 1 warm-up epoch then cosine, 10 epochs, batch 64, 40x40 center crops),
    with ``overrides`` (the settings a user gave) on top.

    Example:
        >>> demo_config('resnet18_aa', 0, 'runs/demo', epochs=2).epochs
        2
    """
    return TrainConfig(**{**DEMO_SETTINGS, "model": model, "seed": seed, "output": output, **overrides})
