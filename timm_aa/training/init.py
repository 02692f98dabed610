"""Start an anti-aliased model from baseline weights (``TrainConfig.init_from``)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import TimmAAError
from ..loading import carries_weights, create_model_from_spec


def copy_weights(target: nn.Module, source_state: dict[str, torch.Tensor], classifier: list[str]) -> list[str]:
    """Copy every tensor of ``source_state`` into ``target``; return the keys left at their fresh values.

    Only classifier keys (when the class counts differ) and the scorers that learnable polyphase
    sampling adds (``*.scorer.*``, initialised to choose as APS does) may be left out; any other missing,
    unexpected or mis-shaped key raises TimmAAError naming it.

    Example:
        >>> copy_weights(nn.Linear(2, 3), nn.Linear(2, 3).state_dict(), ['weight', 'bias'])
        []
    """
    target_state = target.state_dict()
    skipped = []
    for key, value in target_state.items():
        if key not in source_state:
            if ".scorer." not in key:
                raise TimmAAError(f"the weights lack {key!r} of the model")
            skipped.append(key)
        elif source_state[key].shape != value.shape:
            if not any(key.startswith(c + ".") for c in classifier):
                raise TimmAAError(f"the weights do not fit: {key!r} is {tuple(source_state[key].shape)} there, "
                                  f"{tuple(value.shape)} in the model")
            skipped.append(key)
    extra = sorted(set(source_state) - set(target_state))
    if extra:
        raise TimmAAError(f"the weights have keys the model lacks, e.g. {extra[0]!r}")
    with torch.no_grad():
        for key, value in target_state.items():
            if key not in skipped:
                value.copy_(source_state[key])
    return skipped


def init_from(model: nn.Module, spec: str) -> list[str]:
    """Copy the weights of the baseline ``spec`` (timm name with pretrained weights, ``hf-hub:``,
    ``local-dir:`` or a safetensors file) into ``model``; return the classifier keys left fresh."""
    head = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or "fc"
    heads = [head] if isinstance(head, str) else list(head)
    try:
        source = create_model_from_spec(spec, pretrained=not carries_weights(spec))
        return copy_weights(model, source.state_dict(), heads)
    except TimmAAError as err:
        raise TimmAAError(f"init_from={spec!r}: {err}") from None
