"""Fine-tuning with accelerate: the library behind ``scripts/train.py``."""

from .config import TrainConfig
from .loop import build_model, train

__all__ = ["TrainConfig", "build_model", "train"]
