"""Checkpoint converters."""

from .zhang import (
    ZHANG_ARCHS,
    convert_zhang_state_dict,
    from_zhang,
    unwrap_state_dict,
    zhang_key_map,
    zhang_model_name,
)

__all__ = [
    "ZHANG_ARCHS", "convert_zhang_state_dict", "from_zhang", "unwrap_state_dict", "zhang_key_map", "zhang_model_name",
]
