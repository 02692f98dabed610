"""Shift-consistency evaluation (Zhang 2019's protocols): library behind ``scripts/evaluate.py``."""

import warnings
from typing import Any

from .protocols import center_crop, circular_agreement, diagonal_sweep, random_agreement
from .report import SCHEMA, ConsistencyReport, ResultRow, load_report
from .runner import ModelEntry, evaluate_consistency
from .settings import OFFSET_MODES, PROTOCOLS, ConsistencySettings
from .shifts import crop_at, draw_offsets, draw_shifts, roll_each

__all__ = [
    "OFFSET_MODES", "PROTOCOLS", "SCHEMA", "ConsistencyReport", "ConsistencySettings", "ModelEntry", "ResultRow",
    "center_crop", "circular_agreement", "crop_at", "diagonal_sweep", "draw_offsets", "draw_shifts",
    "evaluate_consistency", "load_report", "random_agreement", "roll_each",
]


def __getattr__(name: str) -> Any:
    if name == "write_json_atomic":  # public until 0.1; JSON writing is not what this package is about
        warnings.warn("timm_aa.consistency.write_json_atomic is deprecated and will be removed; write the JSON "
                      "yourself (json.dump to a temporary file, then os.replace)", DeprecationWarning, stacklevel=2)
        from .._io import write_json

        return write_json
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
