"""A JSON-lines metrics tracker for accelerate (always on; tensorboard is added when installed)."""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

from accelerate.tracking import GeneralTracker, on_main_process


class JsonlTracker(GeneralTracker):
    """Appends one JSON object per ``accelerator.log`` call to ``OUTPUT/metrics.jsonl``.

    ``__init__`` must not touch accelerate's process state: the tracker is built before the
    ``Accelerator``, and a ``PartialState()`` created first (without ``cpu=True``) makes every process
    of an ``ACCELERATE_USE_CPU`` multi-process launch believe it is alone.
    """

    name = "jsonl"
    requires_logging_directory = True

    def __init__(self, run_name: str, logging_dir: str) -> None:
        super().__init__()
        self.path = os.path.join(logging_dir, "metrics.jsonl")
        self.run_name = run_name

    @property
    def tracker(self) -> str:
        return self.path

    @on_main_process
    def store_init_configuration(self, values: dict[str, Any]) -> None:
        self._write({"config": values})

    @on_main_process
    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        self._write({"step": step, **values})

    def _write(self, record: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")


def default_trackers(output: str) -> list[Any]:
    """JSON lines always; tensorboard too when it is installed."""
    trackers: list[Any] = [JsonlTracker("train", output)]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        trackers.append("tensorboard")
    return trackers


def read_metrics(output: str) -> list[dict[str, Any]]:
    """The logged records of a run (the config record first)."""
    with open(os.path.join(output, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]
