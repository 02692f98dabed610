"""Writing files and folders whole or not at all, and checking that a folder can be written before work starts.

Every output of timm-aa goes through here: a file is written to a temporary name beside its target and renamed
over it (``os.replace`` is atomic on one file system), a folder is staged beside its target and swapped in.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import TimmAAError


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
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        os.chmod(tmp, mode if mode is not None else _new_file_mode())
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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


def replace_dir(staged: str, final: str, allowed: Collection[str] | None = None) -> None:
    """Move the complete folder ``staged`` to ``final``; an existing ``final`` is swapped out, then deleted.

    With ``allowed``, an existing ``final`` may hold only those names (the files a previous run of the same
    writer made): anything else there is a user's, and the swap is refused (TimmAAError) before anything moves.

    Example:
        >>> root = tempfile.mkdtemp()
        >>> os.mkdir(os.path.join(root, 'new'))
        >>> replace_dir(os.path.join(root, 'new'), os.path.join(root, 'out'))
        >>> os.listdir(root)
        ['out']
    """
    if os.path.exists(final):
        if allowed is not None:
            check_replaceable(final, allowed)
        old = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(final)), prefix=".tmp-old-")
        os.replace(final, os.path.join(old, "folder"))
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)


def check_replaceable(folder: str, allowed: Collection[str]) -> None:
    """Raise TimmAAError if ``folder`` exists and holds anything but ``allowed`` names (or is not a folder).

    Example:
        >>> check_replaceable('/nonexistent/export', ['config.json'])
    """
    if not os.path.exists(folder):
        return
    if not os.path.isdir(folder):
        raise TimmAAError(f"{folder!r} is a file, where timm-aa would write a folder: move it away")
    foreign = sorted(set(os.listdir(folder)) - set(allowed))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise TimmAAError(f"{folder!r} holds files that timm-aa did not write ({shown}), and writing there would "
                          "replace the folder: move them away or choose another folder")


def check_writable(folder: str, argument: str = "output") -> None:
    """Raise TimmAAError unless files can be created in ``folder`` (or, if it does not exist yet, in the
    nearest existing folder above it). Called before long work, so that it does not end in a failed write.

    ``argument`` names the parameter that gave ``folder``, for the message.

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
        raise TimmAAError(f"{argument}={folder!r} is not a folder: {existing!r} is a file; choose another folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".tmp-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else str(err)
        raise TimmAAError(f"{argument}={folder!r} is not writable ({reason}): choose another folder") from None
