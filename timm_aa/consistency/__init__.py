"""Shift-consistency evaluation (Zhang 2019's protocols; fractional and worst-case ones after Michaeli et al. 2023):
library behind ``scripts/evaluate.py``."""

from .protocols import (
    adversarial_crops,
    adversarial_shifts,
    center_crop,
    circular_agreement,
    crop_grid,
    diagonal_sweep,
    fractional_agreement,
    random_agreement,
    shift_grid,
)
from .report import SCHEMA, ConsistencyReport, ResultRow, load_report
from .runner import ModelEntry, evaluate_consistency
from .settings import OFFSET_MODES, PROTOCOLS, ConsistencySettings
from .shifts import crop_at, draw_fractional_shifts, draw_offsets, draw_shifts, fractional_roll, roll_each

__all__ = [
    "OFFSET_MODES", "PROTOCOLS", "SCHEMA", "ConsistencyReport", "ConsistencySettings", "ModelEntry", "ResultRow",
    "adversarial_crops", "adversarial_shifts", "center_crop", "circular_agreement", "crop_at", "crop_grid",
    "diagonal_sweep", "draw_fractional_shifts", "draw_offsets", "draw_shifts", "evaluate_consistency",
    "fractional_agreement", "fractional_roll", "load_report", "random_agreement", "roll_each", "shift_grid",
]
