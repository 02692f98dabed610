"""The consistency report: result rows, a stable JSON schema, and a text table.

JSON schema ``timm-aa/consistency/1``::

    {"schema": "timm-aa/consistency/1", "created": ISO-8601 time,
     "versions": {"timm_aa", "timm", "torch", "python"},
     "data": {"source", "num_images", "num_skipped", "skipped": [ids], "labeled", "num_classes"},
     "settings": {"protocols", "resize" (R), "crop" (S), "passes", "seed", "offsets", "max_shift",
                  "batch_size", "channels_last"},
     "results": [{"model", "architecture", "weights", "protocol", "consistency" (%), "accuracy"
                  (center-crop top-1 %, null without labels), "num_images", "resize", "crop", "passes",
                  "seed", "images_per_second" (center-crop inference speed, first pass), ...protocol extras}]}

Protocol extras: ``random``: ``offsets`` (per-batch | per-image); ``circular``: ``max_shift``;
``diagonal``: ``target``, ``diagonal_offsets``, ``true_class_prob`` and ``accuracy_per_offset`` (one per
offset), ``spread`` (mean over images of max - min true-class probability across offsets); its
``consistency`` is the % of images whose top-1 class is the same at every offset.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..atomic import atomic_path

SCHEMA = "timm-aa/consistency/1"


def versions() -> dict[str, str]:
    """Versions of the packages that produced a result."""
    import timm
    import torch

    from .. import __version__

    return {"timm_aa": __version__, "timm": timm.__version__, "torch": torch.__version__,
            "python": platform.python_version()}


@dataclass
class ResultRow:
    model: str
    architecture: str | None
    weights: str
    protocol: str
    consistency: float | None
    accuracy: float | None
    num_images: int
    resize: int
    crop: int
    passes: int
    seed: int
    images_per_second: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        out.update(self.extra)
        return out


@dataclass
class ConsistencyReport:
    data: dict[str, Any]
    settings: dict[str, Any]
    results: list[ResultRow]
    versions: dict[str, str]
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "created": self.created, "versions": self.versions, "data": self.data,
                "settings": self.settings, "results": [r.to_dict() for r in self.results]}

    def rows(self, model: str | None = None, protocol: str | None = None) -> list[ResultRow]:
        return [r for r in self.results if model in (None, r.model) and protocol in (None, r.protocol)]

    def table(self) -> str:
        """One line per model: top-1 and each protocol's consistency."""
        protocols = list(dict.fromkeys(r.protocol for r in self.results))
        models = list(dict.fromkeys(r.model for r in self.results))
        width = max(len("model"), *(len(m) for m in models))
        head = f"{'model':<{width}}  {'top-1':>7}" + "".join(f"  {p:>9}" for p in protocols) + f"  {'img/s':>8}"
        lines = [head, "-" * len(head)]
        for m in models:
            rows = {r.protocol: r for r in self.rows(model=m)}
            acc = next(iter(rows.values())).accuracy
            cells = "".join(f"  {_fmt(rows[p].consistency) if p in rows else '':>9}" for p in protocols)
            speed = next(iter(rows.values())).images_per_second
            lines.append(f"{m:<{width}}  {_fmt(acc):>7}{cells}  {_fmt(speed):>8}")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def write_json_atomic(obj: Any, path: str) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename (never half-written)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def load_report(path: str) -> dict[str, Any]:
    """Read a report JSON written by :func:`write_json_atomic`, checking its schema."""
    with open(path) as f:
        data = json.load(f)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path!r} is not a timm-aa consistency report (schema {data.get('schema')!r})")
    return data
