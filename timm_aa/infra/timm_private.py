"""The private timm names we use, behind this one adapter (timm's public API has no equivalent), each with why:

- ``save_config_for_hf`` (``timm.models._hub``): timm's public ``save_for_hf`` writes the weights as well as
  ``config.json``; exports write their weights themselves (with the architecture and model args in the safetensors
  metadata), so only the config half is wanted. It is what ``save_for_hf`` and ``push_to_hf_hub`` call.
- ``FeatureGetterNet`` and ``feature_take_indices`` (``timm.models._features``): the wrapper timm puts around a
  transformer built with ``features_only=True``, and the index rule of its ``forward_intermediates``, which the
  alias-free XCiT must recognise and follow exactly as timm's XCiT does.

If a timm release moves one of them, this module is the one place to follow it.
"""

from __future__ import annotations

from timm.models._features import FeatureGetterNet, feature_take_indices
from timm.models._hub import save_config_for_hf

__all__ = ["FeatureGetterNet", "feature_take_indices", "save_config_for_hf"]
