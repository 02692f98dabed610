"""One writer per output folder: an exclusive ``flock`` on the folder's ``.timm-aa.lock``.

The lock file holds the holder's pid, host and command, for the message a second process gets. The kernel drops
the lock when its holder dies, so a lock left by a killed run is taken over at once. The lock file is opened
without following a link and must be a regular file with one name (``st_nlink == 1``): a planted link, a hard
link to someone's file, a FIFO or a folder at that name is refused, and never written to.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
import time

from ..errors import TimmAAError
from .fs import describe, file_mode
from .layout import LOCK

_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | \
    getattr(os, "O_CLOEXEC", 0)


def _open_lock(path: str) -> int:
    """The lock file's descriptor, refusing anything at ``path`` that is not a regular file of ours to write."""
    try:
        fd = os.open(path, _FLAGS, file_mode())
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO) and not os.path.islink(path):
            raise
        fd = -1
    info = os.fstat(fd) if fd >= 0 else None
    if info is None or not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        what = describe(path) if info is None or not stat.S_ISREG(info.st_mode) else \
            f"a file with {info.st_nlink} names (a hard link)"
        if fd >= 0:
            os.close(fd)
        raise TimmAAError(f"{path!r} is {what}, not timm-aa's lock: remove it (what it points to is not touched), "
                          "then run again")
    os.set_blocking(fd, True)
    return fd


def lock_folder(folder: str) -> int:
    """Hold an exclusive lock on ``folder`` for this process; return the lock file's descriptor (closing it
    releases the lock). Another live holder, or a lock file that is not ours, is a TimmAAError.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> fd = lock_folder(folder)
        >>> lock_folder(folder)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: '...' is being written by process ... on ...: wait for it to finish, or choose \
another folder
        >>> os.close(fd)
    """
    import fcntl  # POSIX: the scripts write output folders on Linux and macOS

    path = os.path.join(folder, LOCK)
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise TimmAAError(f"{folder!r} is being written by {holder}: wait for it to finish, or choose "
                                  "another folder") from None
            raise
        if os.path.lexists(path) and os.path.samestat(os.fstat(fd), os.lstat(path)):
            break
        os.close(fd)  # the file was replaced while we waited: lock the new one
    holder = f"process {os.getpid()} on {socket.gethostname()} ({os.path.basename(sys.argv[0]) or 'python'}, " \
             f"since {time.strftime('%Y-%m-%d %H:%M:%S')})"
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    return fd
