"""Model card templates for the Hub (shipped with the timm-aa distribution)."""

from __future__ import annotations

from importlib import resources


def template_path(name: str = "model_card.md") -> str:
    """Filesystem path of a card template.

    Example:
        >>> template_path().endswith('model_card.md')
        True
    """
    return str(resources.files(__name__) / name)
