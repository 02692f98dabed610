"""Fine-tuning with accelerate: the library behind ``scripts/train.py``."""

from .config import TrainConfig
from .loop import TrainState, build_model, train

__all__ = ["TrainConfig", "TrainState", "build_model", "train"]
