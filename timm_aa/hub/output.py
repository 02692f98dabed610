"""The folder a publish writes: which folders it may write into, and replacing only its own files there.

A folder that publishing wrote carries a marker file, ``.timm-aa-publish.json``, listing the files it wrote.
Such a folder is written into again; any other non-empty folder (a user's, a training run's, the working
directory) is refused unless ``overwrite=True``, and even then only the Hub files are written into it: nothing
else there is deleted. The source folder itself is never an output. Each file is renamed into place whole;
the marker says ``complete`` only once all of them are, and only the files it lists are uploaded.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence

from .._io import check_writable, write_json
from ..errors import TimmAAError

MARKER = ".timm-aa-publish.json"


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def published_files(folder: str) -> tuple[list[str], bool]:
    """``(files, complete)`` from ``folder``'s marker; ``([], False)`` where there is none (not ours).

    Example:
        >>> published_files('/nonexistent')
        ([], False)
    """
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
        names = [n for n in marker["files"] if isinstance(n, str) and n == os.path.basename(n) and
                 n not in ("", ".", "..", MARKER)]
        return names, marker.get("complete") is True
    except (OSError, ValueError, KeyError, TypeError):
        return [], False


def check_output(output: str, source_folder: str | None = None, overwrite: bool = False) -> None:
    """Raise TimmAAError, before any work, unless ``output`` may receive a publish (see the module docstring).

    Example:
        >>> check_output(tempfile.mkdtemp() + '/new')
    """
    check_writable(output)
    if source_folder is not None and _same_folder(output, source_folder):
        raise TimmAAError(f"output={output!r} is the folder being published: write the Hub files to another folder")
    if not os.path.isdir(output):  # new (check_writable refused a file)
        return
    names = sorted(os.listdir(output))
    if not names or os.path.isfile(os.path.join(output, MARKER)) or overwrite:
        return
    shown = ", ".join(n + ("/" if os.path.isdir(os.path.join(output, n)) else "") for n in names[:5])
    shown += ", ..." if len(names) > 5 else ""
    raise TimmAAError(
        f"output={output!r} already holds files that publishing did not write ({shown}): choose a new or empty "
        "folder, or overwrite=True to write the Hub files into it (files of the same names are replaced, nothing "
        "else is touched)"
    )


def stage(output: str) -> str:
    """A new empty staging folder inside ``output`` (created if needed), for :func:`install`."""
    os.makedirs(output, exist_ok=True)
    return tempfile.mkdtemp(dir=output, prefix=".tmp-publish-")


def install(staged: str, output: str, files: Sequence[str]) -> None:
    """Rename ``files`` from ``staged`` into ``output``, delete the files a previous publish listed that are not
    among them, and record ``files`` in the marker."""
    previous, _ = published_files(output)
    write_json({"files": sorted(set(previous) | set(files)), "complete": False}, os.path.join(output, MARKER))
    for name in files:
        os.replace(os.path.join(staged, name), os.path.join(output, name))
    for name in sorted(set(previous) - set(files)):
        path = os.path.join(output, name)
        if os.path.isfile(path):
            os.unlink(path)
    write_json({"files": sorted(files), "complete": True}, os.path.join(output, MARKER))
