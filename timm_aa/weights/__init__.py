"""Weights files: our export folders (``model.safetensors`` + ``config.json``, written, read and checked against
each other) and Zhang's released checkpoints (the release table, where his weights come from, the converter to
our models and into export folders)."""

from __future__ import annotations

from ..infra.checkpoint import unwrap_state_dict
from ..models._zhang_keys import convert_zhang_state_dict, zhang_key_map, zhang_model_name
from ..models._zhang_releases import ZHANG_RELEASES, ZhangFile, ZhangRelease, zhang_file, zhang_release, zhang_releases
from ..models._zhang_sources import ZHANG_DIR_ENV, converted_path, zhang_weights
from .export import check_export, hub_config, model_args_of, read_config, save_weights, write_export
from .zhang import from_zhang

__all__ = [
    "ZHANG_DIR_ENV", "ZHANG_RELEASES", "ZhangFile", "ZhangRelease", "check_export", "convert_zhang_state_dict",
    "converted_path", "from_zhang", "hub_config", "model_args_of", "read_config", "save_weights", "unwrap_state_dict",
    "write_export", "zhang_file", "zhang_key_map", "zhang_model_name", "zhang_release", "zhang_releases",
    "zhang_weights",
]
