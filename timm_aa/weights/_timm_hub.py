"""The one private timm function we call, behind this adapter: ``timm.models._hub.save_config_for_hf``.

timm's public ``save_for_hf`` writes the weights as well as ``config.json``; exports write their weights themselves
(with the architecture and model args in the safetensors metadata, :func:`timm_aa.weights.export.save_weights`), so
only the config half is wanted. It is the function ``save_for_hf`` and ``push_to_hf_hub`` call, unchanged since
timm 0.9; if a timm release moves it, this import is the one place to follow it.
"""

from __future__ import annotations

from timm.models._hub import save_config_for_hf

__all__ = ["save_config_for_hf"]
