"""Writing a file whole or not at all, and checking that a folder can be written before work starts.

A file is written to a temporary name beside its target and renamed over it (``os.replace`` is atomic on one file
system); the temporary name is one :func:`remove_stale_temps` removes after a kill. Output
folders of the tools are written through :mod:`timm_aa.infra.ownership`, which uses the same scheme.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import TimmAAError
from .layout import TEMP

HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(rf"^{re.escape(TEMP)}([0-9a-f]{{8}})-(\d+)-")


def file_mode(folder: bool = False) -> int:
    """The permission bits a new file (``0o666 & ~umask``, as ``open`` gives) or ``folder`` (``0o777 & ~umask``)
    gets under the current umask.

    Example:
        >>> old = os.umask(0o027)
        >>> oct(file_mode()), oct(file_mode(folder=True)), os.umask(old) == 0o027
        ('0o640', '0o750', True)
    """
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks.

    Example:
        >>> import tempfile
        >>> sha256_file(tempfile.NamedTemporaryFile(delete=False).name)[:8]
        'e3b0c442'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_name(label: str = "") -> str:
    """A unique temporary name for a file or folder we create: ``.timm-aa-tmp-<host>-<pid>-<label>-<random>``.

    Example:
        >>> temp_name('export').startswith('.timm-aa-tmp-')
        True
    """
    return f"{TEMP}{HOST_TAG}-{os.getpid()}-{label}{'-' if label else ''}{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_temps(folder: str) -> list[str]:
    """Remove the temporary files and folders in ``folder`` that processes on this host left and that are gone
    (a kill, a crash); return their names. Live processes' temporaries and anything not named by us stay.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> os.mkdir(os.path.join(root, f'{TEMP}{HOST_TAG}-999999999-export-0a1b2c3d'))
        >>> remove_stale_temps(root), os.listdir(root)
        (['.timm-aa-tmp-...-999999999-export-0a1b2c3d'], [])
    """
    removed = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        match = _TEMP_NAME.match(name)
        if match and match.group(1) == HOST_TAG and not _alive(int(match.group(2))):
            path = os.path.join(folder, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) and not os.path.islink(path) else \
                os.unlink(path)
            removed.append(name)
    return removed




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
