"""Writing a file whole or not at all, and checking that a folder can be written before work starts.

A file is written to a temporary name beside its target and renamed over it (``os.replace`` is atomic on one file
system); the temporary name is one :func:`~timm_aa.ownership.remove_stale_temps` removes after a kill. Output
folders of the tools are written through :mod:`timm_aa.ownership`, which uses the same scheme.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import TimmAAError
from .ownership import file_mode, temp_name


@contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    ``mode`` sets the file's permission bits before the rename (default: the umask's choice for a new file).

    Example:
        >>> folder = tempfile.mkdtemp()
        >>> with atomic_path(os.path.join(folder, 'a.txt')) as tmp:
        ...     _ = open(tmp, 'w').write('hello')
        >>> os.listdir(folder)
        ['a.txt']
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, temp_name() + os.path.splitext(path)[1])
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(tmp, mode if mode is not None else file_mode())
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented JSON to ``path``, atomically.

    Example:
        >>> path = os.path.join(tempfile.mkdtemp(), 'x.json')
        >>> write_json({'a': 1}, path)
        >>> json.load(open(path))
        {'a': 1}
    """
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def check_writable(folder: str) -> None:
    """Raise TimmAAError unless files can be created in ``folder`` (or, if it does not exist yet, in the
    nearest existing folder above it). Called before long work, so that it does not end in a failed write.

    Example:
        >>> check_writable(tempfile.mkdtemp())
        >>> check_writable('/proc/timm-aa')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: output='/proc/timm-aa' is not writable (...): choose another folder
    """
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise TimmAAError(f"output={folder!r} is not a folder: {existing!r} is a file; choose another folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".tmp-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else str(err)
        raise TimmAAError(f"output={folder!r} is not writable ({reason}): choose another folder") from None
