"""What a model card says beyond what the model itself tells (free of heavy imports: the publish script shows
its defaults in its help text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CardInfo:
    """The repository, license, dataset, provenance and metrics of a model card.

    Example:
        >>> CardInfo('me/resnet50_aa.ft_pets', dataset='pets').license
        'apache-2.0'
    """

    repo_id: str | None = None  # None: the publisher names the model (hub.publish.model_name)
    license: str = "apache-2.0"
    dataset: str = "custom"
    dataset_name: str | None = None
    base_model: str | None = None
    provenance: str | None = None
    summary: str | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)  # {name, type, value, split, source}
