"""What a model card says beyond what the model itself tells (free of heavy imports: the publish script shows
its defaults in its help text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_LICENSE = "apache-2.0"  # when neither the caller nor the source folder names one


@dataclass
class CardInfo:
    """The repository, license, dataset, provenance and metrics of a model card. A value given here wins over the
    source folder's; ``license`` None: the source folder's, else :data:`DEFAULT_LICENSE`.

    Example:
        >>> CardInfo('me/resnet50_aa.ft_pets', dataset='pets').license is None
        True
    """

    repo_id: str | None = None  # None: the publisher names the model (hub.publish.model_name)
    license: str | None = None
    dataset: str = "custom"
    dataset_name: str | None = None
    base_model: str | None = None
    provenance: str | None = None
    summary: str | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)  # {name, type, value, split, source}
