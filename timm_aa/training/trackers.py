"""Where a run's metrics go: ``OUTPUT/metrics.jsonl`` (always; one JSON object per line, the run's settings
first), and tensorboard under ``OUTPUT/train-<run>/`` when it is installed.

``metrics.jsonl`` is written whole through the run folder's :class:`~timm_aa.infra.ownership.Owner` each time a line is
added, so a kill never leaves half a line, and a resume first cuts it back to the lines its checkpoint had seen
(the epochs after it are trained again and logged again, not twice).
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

from ..errors import TimmAAError
from ..infra.fs import first, read_bytes
from ..infra.layout import METRICS_LOG
from ..infra.ownership import Owner


def default_trackers() -> list[str]:
    """accelerate's trackers to log to besides ``metrics.jsonl``: tensorboard when it is installed.

    Example:
        >>> import unittest.mock
        >>> with unittest.mock.patch('importlib.util.find_spec', return_value=None):  # tensorboard not installed
        ...     default_trackers()
        []
    """
    found = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    return ["tensorboard"] if found else []


def read_metrics(output: str) -> list[dict[str, Any]]:
    """The logged records of a run (the settings record first).

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with open(os.path.join(folder, METRICS_LOG), 'w') as f:
        ...     _ = f.write('{"config": {"epochs": 2}}\\n{"epoch": 0, "val/top1": 50.0}\\n')
        >>> read_metrics(folder)[1]
        {'epoch': 0, 'val/top1': 50.0}
    """
    path = os.path.join(output, METRICS_LOG)
    if not os.path.lexists(path):
        return []
    lines = read_bytes(path, "the metrics log").decode("utf-8", errors="replace").splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except (ValueError, RecursionError) as err:
        raise TimmAAError(f"the metrics log {path!r} is not JSON lines ({first(err)}); move it away, or start a new "
                          "run") from None


def write_metrics(owner: Owner, records: list[dict[str, Any]]) -> None:
    """Make ``metrics.jsonl`` hold exactly ``records`` (written whole, through ``owner``)."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r, default=str) + "\n" for r in records)

    owner.write_file(METRICS_LOG, write)
