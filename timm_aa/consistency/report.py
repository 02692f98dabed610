"""The consistency report: result rows, a stable JSON schema, and a text table.

JSON schema ``timm-aa/consistency/1``::

    {"schema": "timm-aa/consistency/1", "created": ISO-8601 time,
     "versions": {"timm_aa", "timm", "torch", "python"},
     "data": {"source", "num_images", "num_skipped", "skipped": [ids], "labeled", "num_classes"},
     "settings": {"protocols", "resize" (R), "crop" (S), "passes", "seed", "offsets", "max_shift",
                  "adversarial_max_shift", "fractional_steps", "batch_size", "channels_last"},
     "results": [{"model", "architecture", "weights" (a file / hub spec, "pretrained" or "random"),
                  "random_weights" (true for untrained models: their numbers describe no trained model), "protocol",
                  "consistency" (%), "accuracy" (center-crop top-1 %, null without labels), "num_images", "resize",
                  "crop", "passes", "seed", "images_per_second" (center-crop inference speed, first pass),
                  ...protocol extras}]}

Protocol extras: ``random``: ``offsets`` (per-batch | per-image); ``circular``: ``max_shift``;
``diagonal``: ``target``, ``diagonal_offsets``, ``true_class_prob`` and ``accuracy_per_offset`` (one per
offset), ``spread`` (mean over images of max - min true-class probability across offsets); its
``consistency`` is the % of images whose top-1 class is the same at every offset. ``fractional`` (two real
circular shifts per image, as Fourier phase shifts): ``max_shift``. ``adversarial`` (every shift of the grid
``[-max_shift, max_shift]**2`` with step ``1 / fractional_steps``) and ``adversarial-crop`` (every crop offset in
``[0, max_offset]**2``, ``max_offset`` = R - S): ``max_shift`` and ``fractional_steps``, or ``max_offset``;
``num_shifts`` (shifts or offsets tried per image, besides the unshifted centre crop), ``worst_case_accuracy``
(% of images correct at the centre crop and at every shift; null without labels), ``seconds_per_image`` (the
protocol's own time); their ``consistency`` is the % of images whose top-1 class no shift of the grid changes.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from .. import _version
from ..errors import TimmAAError
from ..infra.fs import read_json
from ..infra.rules import check_fields, free_text, integer, number, optional, text
from .settings import PROTOCOLS

SCHEMA = "timm-aa/consistency/1"
WORST_CASE = ("adversarial", "adversarial-crop")  # protocols with a worst-case top-1 (``worst_case_accuracy``)


def versions() -> dict[str, str]:
    """Versions of the packages that produced a result."""
    import timm  # imported when a report is made: the module itself is read before torch by the card tools
    import torch

    return {"timm_aa": _version.__version__, "timm": timm.__version__, "torch": torch.__version__,
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

    @property
    def random_weights(self) -> bool:
        """Whether the model was measured untrained (a constant prediction is perfectly shift-consistent)."""
        return self.weights == "random"

    @property
    def label(self) -> str:
        """The model's name, marked when its weights are random (for tables and plots)."""
        return f"{self.model} [random weights]" if self.random_weights else self.model

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ResultRow:
        """A row read back from a report (``where`` names it in messages), every field checked by :data:`ROW_RULES`;
        keys that are not fields go to ``extra``.

        Example:
            >>> ResultRow.from_dict(dict(model='m', weights='random', protocol='circular', consistency=101), 'r.json')
            Traceback (most recent call last):
            ...
            timm_aa.errors.TimmAAError: r.json: consistency must be a finite number in [0, 100], got 101; write it \
again with scripts/evaluate.py
        """
        check_fields(where, data, ROW_RULES, "write it again with scripts/evaluate.py")
        names = [f.name for f in fields(cls) if f.name != "extra"]
        extra = {k: v for k, v in data.items() if k not in names and k != "random_weights"}
        return cls(**{k: data.get(k) for k in names}, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        out["random_weights"] = self.random_weights
        out.update(self.extra)
        return out


#: the check of each field of a :class:`ResultRow` read from a file
ROW_RULES = {
    "model": free_text(), "architecture": optional(free_text()), "weights": optional(free_text()),  # escaped in cards
    "protocol": text(PROTOCOLS),
    "consistency": optional(number(0, 100)), "accuracy": optional(number(0, 100)), "num_images": integer(1),
    "resize": integer(1), "crop": integer(1), "passes": integer(1), "seed": optional(integer(0)),
    "images_per_second": optional(number(0, 1e12)),
}


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
        """One line per model: top-1 and each protocol's consistency; a worst-case protocol adds its worst-case
        top-1 (``worst top-1``: correct at every shift of the grid)."""
        protocols = list(dict.fromkeys(r.protocol for r in self.results))
        models = list(dict.fromkeys(r.model for r in self.results))
        columns = [(p, "consistency", p) for p in protocols]
        for p in [p for p in protocols if p in WORST_CASE]:
            columns.insert(columns.index((p, "consistency", p)) + 1, (p, "worst_case_accuracy", "worst top-1"))
        width = max(len("model"), *(len(r.label) for r in self.results))  # one label per model
        head = f"{'model':<{width}}  {'top-1':>7}" + "".join(f"  {c[2]:>9}" for c in columns) + f"  {'img/s':>8}"
        lines = [head, "-" * len(head)]
        for m in models:
            rows = {r.protocol: r for r in self.rows(model=m)}
            first = next(iter(rows.values()))  # top-1, speed and label are the model's, the same in every row
            cells = "".join(f"  {_cell(rows.get(p), key):>{max(9, len(name))}}" for p, key, name in columns)
            speed = _fmt(first.images_per_second)
            lines.append(f"{first.label:<{width}}  {_fmt(first.accuracy):>7}{cells}  {speed:>8}")
        if any(r.random_weights for r in self.results):
            lines.append("[random weights]: untrained, so these numbers describe no trained model "
                         "(a constant prediction is 100% consistent)")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _cell(row: ResultRow | None, key: str) -> str:
    if row is None:
        return ""
    return _fmt(row.consistency if key == "consistency" else row.extra.get(key))


def load_report(path: str) -> dict[str, Any]:
    """Read a consistency report (``scripts/evaluate.py``'s ``consistency.json``), checking its schema; a file
    that is missing, not JSON or not such a report is a TimmAAError naming it.

    Example:
        >>> load_report('/nonexistent.json')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: cannot read the consistency report '/nonexistent.json' (No such file or directory)
    """
    try:
        data = read_json(path, "the consistency report", "write it again with scripts/evaluate.py")
    except OSError as err:
        raise TimmAAError(f"cannot read the consistency report {path!r} ({err.strerror or err})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA or not isinstance(data.get("results"), list):
        raise TimmAAError(f"{path!r} is not a timm-aa consistency report (schema {schema!r}, expected {SCHEMA!r}, "
                          "as scripts/evaluate.py writes)")
    return data
