"""Shift-consistency evaluation (Zhang 2019's protocols): library behind ``scripts/evaluate.py``."""

from .protocols import center_crop, circular_agreement, diagonal_sweep, random_agreement
from .report import SCHEMA, ConsistencyReport, ResultRow, load_report
from .runner import ModelEntry, evaluate_consistency
from .settings import OFFSET_MODES, PROTOCOLS, ConsistencySettings
from .shifts import crop_at, draw_fractional_shifts, draw_offsets, draw_shifts, fractional_roll, roll_each

__all__ = [
    "OFFSET_MODES", "PROTOCOLS", "SCHEMA", "ConsistencyReport", "ConsistencySettings", "ModelEntry", "ResultRow",
    "center_crop", "circular_agreement", "crop_at", "diagonal_sweep", "draw_fractional_shifts", "draw_offsets",
    "draw_shifts", "evaluate_consistency", "fractional_roll", "load_report", "random_agreement", "roll_each",
]
