"""Zhang's released checkpoints: the release table, the converter to our models, and where weights come from."""

from __future__ import annotations

from .releases import ZHANG_RELEASES, ZhangFile, ZhangRelease, zhang_file, zhang_release, zhang_releases
from .sources import ZHANG_DIR_ENV, converted_path, zhang_weights
from .zhang import convert_zhang_state_dict, from_zhang, unwrap_state_dict, zhang_key_map, zhang_model_name

__all__ = [
    "ZHANG_DIR_ENV", "ZHANG_RELEASES", "ZhangFile", "ZhangRelease", "convert_zhang_state_dict", "converted_path",
    "from_zhang", "unwrap_state_dict", "zhang_file", "zhang_key_map", "zhang_model_name", "zhang_release",
    "zhang_releases", "zhang_weights",
]
