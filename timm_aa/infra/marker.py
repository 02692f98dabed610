"""A tool's marker in a folder it wrote, ``.timm-aa-<tool>.json``: the run (an id) and every file the tool wrote
there with its size and SHA-256, written atomically by us.

A marker is trusted only if it is a regular file (not a link) holding the JSON we write, names this tool, lists
only names this tool writes, and every listed file that is there is still a regular file with the recorded size
and SHA-256 (a listed file may be missing: we removed it, or a kill came before it was renamed into place).
Anything else, a copied or hand-written marker included, is not ours.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import TimmAAError
from .fs import describe, read_json, sha256_file
from .layout import TOOL_FILES, marker_name

SCHEMA = "timm-aa/owner/1"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def record(path: str) -> list[Any]:
    """What a marker records of a file: ``[size, sha256]``.

    Example:
        >>> import tempfile
        >>> record(tempfile.NamedTemporaryFile(delete=False).name)[0]
        0
    """
    return [os.path.getsize(path), sha256_file(path)]


@dataclass
class Marker:
    """What a marker says: the tool, the run, the files written (``name: [size, sha256]``) and the pending ones.

    Example:
        >>> Marker('evaluate', '0' * 32).to_json()['schema']
        'timm-aa/owner/1'
    """

    tool: str
    run: str
    files: dict[str, list[Any]] = field(default_factory=dict)
    pending: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "tool": self.tool, "run": self.run, "files": self.files, "pending": self.pending}


def _parse(data: Any, tool: str) -> Marker | None:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("tool") != tool:
        return None
    run, files, pending = data.get("run"), data.get("files"), data.get("pending")
    if not isinstance(run, str) or not _RUN_ID.fullmatch(run) or not isinstance(files, dict) or \
            not isinstance(pending, dict):
        return None
    if not all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], int) and not isinstance(r[0], bool) and
               isinstance(r[1], str) for r in [*files.values(), *pending.values()]):
        return None
    return Marker(tool, run, files, pending)


def read_marker(folder: str, tool: str) -> tuple[Marker | None, str]:
    """``tool``'s marker in ``folder`` if there is a trusted one, else ``(None, why not)`` (``why`` is empty where
    there is no marker at all).

    Example:
        >>> read_marker('/nonexistent', 'publish')
        (None, '')
    """
    path = os.path.join(folder, marker_name(tool))
    if not os.path.lexists(path):
        return None, ""
    try:
        marker = _parse(read_json(path, "the marker", follow_links=False), tool)
    except (OSError, TimmAAError):
        marker = None
    if marker is None:
        what = describe(path)
        return None, f"its {marker_name(tool)} is {'not one timm-aa wrote' if what == 'a file' else what}"
    for name, rec in [*marker.files.items(), *marker.pending.items()]:
        if not TOOL_FILES[tool].match(name) or ".." in name.split("/"):
            return None, f"its {marker_name(tool)} lists {name!r}, which {tool} never writes"
        full = os.path.join(folder, *name.split("/"))
        if os.path.lexists(full) and (not os.path.isfile(full) or os.path.islink(full) or record(full) not in (
                rec, marker.files.get(name), marker.pending.get(name))):
            return None, f"{name} changed since timm-aa wrote it"
    return marker, ""
