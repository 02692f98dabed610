"""Creating, writing, reading and removing files the one guarded way every tool goes through.

- **Create** exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``): anything already at the name, a link included, makes
  the creation fail (temporary names are random, and retried), so nothing is ever written through a planted link.
- **Write whole**: into a temporary file beside the target, on the target folder's own file system, then renamed
  over it (``os.replace`` replaces a link at the target, never its target, and never crosses devices); on any
  failure the temporary file goes, and a full disk is one line.
- **Read** only regular files (``O_NONBLOCK``, then ``fstat``): a FIFO or a device where a file is expected never
  blocks, and a file's size is bounded before it is read. Our own files (markers) must not be links either; a
  user's input may be (the Hub cache links every file).
- **Remove** only what is not reached through a link, and only files and empty folders: a link is the user's.

Example:
    >>> folder = tempfile.mkdtemp()
    >>> write_json({'a': 1}, os.path.join(folder, 'x.json'))
    >>> read_json(os.path.join(folder, 'x.json'), 'a test file')
    {'a': 1}
    >>> os.symlink(os.path.join(folder, 'x.json'), os.path.join(folder, 'link.json'))
    >>> read_json(os.path.join(folder, 'link.json'), 'a marker', follow_links=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    timm_aa.errors.TimmAAError: a marker '.../link.json' is a symbolic link (to '.../x.json'), not a file timm-aa \
reads: give the file itself
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import TimmAAError
from .layout import TEMP

HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(rf"^{re.escape(TEMP)}([0-9a-f]{{8}})-(\d+)-")
MAX_JSON_BYTES = 64 << 20  # no JSON file we read is near this: configs are kilobytes, a metrics log megabytes
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


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


def describe(path: str) -> str:
    """What is at ``path``, for a message: ``'a symbolic link (to ...)'``, ``'a FIFO'``, ``'a folder'``, ...

    Example:
        >>> describe('/dev/null'), describe('/nonexistent')
        ('a device', 'nothing')
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "nothing"
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)!r})"
    return ("a folder" if stat.S_ISDIR(mode) else "a file" if stat.S_ISREG(mode) else
            "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device")


def open_regular(path: str, what: str, follow_links: bool = True) -> int:
    """A read-only file descriptor of the regular file ``path`` (``what`` names it in messages), opened without
    blocking on a FIFO (and, unless ``follow_links``, without following a link); anything else is a TimmAAError
    saying what is there.

    Example:
        >>> open_regular('/dev/null', 'the config')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: the config '/dev/null' is a device, not a file timm-aa reads: give the file itself
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC | (0 if follow_links else _NOFOLLOW))
    except OSError as err:
        if err.errno == errno.ELOOP or (not follow_links and os.path.islink(path)):
            raise TimmAAError(f"{what} {path!r} is {describe(path)}, not a file timm-aa reads: give the file "
                              "itself") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise TimmAAError(f"{what} {path!r} is {describe(path)}, not a file timm-aa reads: give the file itself")
    os.set_blocking(fd, True)
    return fd


def read_bytes(path: str, what: str, limit: int = MAX_JSON_BYTES, follow_links: bool = True) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`), refused above ``limit`` bytes.

    Example:
        >>> read_bytes('/etc/hostname', 'a file', limit=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: a file '/etc/hostname' holds ... bytes, more than the 1 such a file can hold: \
it is not one timm-aa wrote
    """
    fd = open_regular(path, what, follow_links)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise TimmAAError(f"{what} {path!r} holds {size} bytes, more than the {limit} such a file can hold: it "
                              "is not one timm-aa wrote")
        return f.read(limit + 1)[:limit]


def read_json(path: str, what: str, fix: str = "write it again", limit: int = MAX_JSON_BYTES,
              follow_links: bool = True) -> Any:
    """The JSON value of the regular file ``path`` (see :func:`read_bytes`): size and nesting bounded, every way it
    can fail one TimmAAError naming ``what`` and ``fix``; a missing file raises ``FileNotFoundError`` (callers say
    what it means).

    Example:
        >>> path = os.path.join(tempfile.mkdtemp(), 'deep.json')
        >>> _ = open(path, 'w').write('[' * 100000 + ']' * 100000)
        >>> read_json(path, 'the config', 're-export the model')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: the config '...deep.json' is not JSON timm-aa reads (nested deeper than Python \
parses); re-export the model
    """
    text = read_bytes(path, what, limit, follow_links)
    try:
        return json.loads(text)
    except RecursionError:
        raise TimmAAError(f"{what} {path!r} is not JSON timm-aa reads (nested deeper than Python parses); "
                          f"{fix}") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise TimmAAError(f"{what} {path!r} is not JSON ({first(err)}); {fix}") from None


def first(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a regular file, read in 1 MiB blocks (a link or a FIFO is refused, see :func:`open_regular`).

    Example:
        >>> sha256_file(tempfile.NamedTemporaryFile(delete=False).name)[:8]
        'e3b0c442'
    """
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path, "the file"), "rb") as f:
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


def create_temp(folder: str, label: str = "", suffix: str = "", directory: bool = False) -> str:
    """Create a new temporary file (or ``directory``) in ``folder``, exclusively: a name that exists (a planted
    link included) is never opened, another random name is tried. Returns its path.

    Example:
        >>> path = create_temp(tempfile.mkdtemp(), 'x', '.json')
        >>> os.path.basename(path).startswith('.timm-aa-tmp-'), path.endswith('.json'), os.path.getsize(path)
        (True, True, 0)
    """
    for _ in range(16):
        path = os.path.join(folder, temp_name(label) + suffix)
        try:
            if directory:
                os.mkdir(path, 0o700)
                os.chmod(path, file_mode(folder=True))
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600))
            return path
        except FileExistsError:
            continue
    raise TimmAAError(f"cannot create a temporary file in {folder!r}: every name tried exists")


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
    (a kill, a crash); return their names. Live processes' temporaries, anything not named by us, links and
    other users' files stay.

    Example:
        >>> root = tempfile.mkdtemp()
        >>> os.mkdir(os.path.join(root, f'{TEMP}{HOST_TAG}-999999999-export-0a1b2c3d'))
        >>> remove_stale_temps(root), os.listdir(root)
        (['.timm-aa-tmp-...-999999999-export-0a1b2c3d'], [])
    """
    removed = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        match = _TEMP_NAME.match(name)
        if not match or match.group(1) != HOST_TAG or _alive(int(match.group(2))):
            continue
        path = os.path.join(folder, name)
        info = os.lstat(path)
        if info.st_uid != os.getuid() or not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            continue
        shutil.rmtree(path) if stat.S_ISDIR(info.st_mode) else os.unlink(path)
        removed.append(name)
    return removed


def link_on_the_way(base: str, path: str) -> str | None:
    """The first of ``path`` and the folders between ``base`` and it that is a symbolic link, or None.

    Example:
        >>> root = tempfile.mkdtemp()
        >>> os.symlink('/tmp', os.path.join(root, 'a'))
        >>> link_on_the_way(root, os.path.join(root, 'a', 'b')) == os.path.join(root, 'a')
        True
    """
    rel = os.path.relpath(path, base)
    current = base
    for part in [] if rel == os.curdir else rel.split(os.sep):
        current = os.path.join(current, part)
        if os.path.islink(current):
            return current
    return None


def remove_file(base: str, path: str, why: str, dry_run: bool = False) -> None:
    """Delete the file ``path`` (below ``base``), never through a link: a link on the way is a TimmAAError naming
    it and ``why`` the file was to go. A missing file is fine. ``dry_run`` only checks.

    Example:
        >>> root = tempfile.mkdtemp()
        >>> os.symlink(tempfile.mkdtemp(), os.path.join(root, 'ckpt'))
        >>> remove_file(root, os.path.join(root, 'ckpt', 'w.bin'), 'to keep the last 2')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: '.../ckpt' is a symbolic link (to '...'): timm-aa does not delete through links, \
and would have deleted .../w.bin there to keep the last 2
    """
    link = link_on_the_way(base, path)
    if link is not None:
        raise TimmAAError(f"{link!r} is {describe(link)}: timm-aa does not delete through links, and would have "
                          f"deleted {path} there {why}".rstrip())
    if not dry_run and os.path.lexists(path):
        os.unlink(path)


def remove_empty_folders(base: str, folders: list[str]) -> None:
    """Remove each of ``folders`` (below ``base``) that is empty, deepest first; a link or a folder holding
    anything stays.

    Example:
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, 'a', 'b'))
        >>> remove_empty_folders(root, [os.path.join(root, 'a'), os.path.join(root, 'a', 'b')]), os.listdir(root)
        (None, [])
    """
    for folder in sorted(set(folders), key=len, reverse=True):
        if link_on_the_way(base, folder) is None:
            try:
                os.rmdir(folder)
            except OSError:  # not empty (it holds someone's file), or gone
                pass


def make_folders(path: str) -> list[str]:
    """``os.makedirs(path)``, returning the folders it created, outermost first (to remove again on failure).

    Example:
        >>> root = tempfile.mkdtemp()
        >>> [os.path.relpath(p, root) for p in make_folders(os.path.join(root, 'a', 'b'))]
        ['a', 'a/b']
    """
    missing = []
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    os.makedirs(path, exist_ok=True)
    return missing[::-1]


def disk_full_error(err: BaseException, path: str, what: str) -> TimmAAError | None:
    """The one-line error for ``err`` when it came from a full disk (``ENOSPC``, a quota; or the errors of writers
    that wrap it, torch's zip writer's ``unexpected pos`` and safetensors' own error, when the device of ``path`` is
    nearly full), else None.

    Example:
        >>> disk_full_error(OSError(28, 'No space left on device'), '/tmp', 'the checkpoint')  # doctest: +ELLIPSIS
        TimmAAError("no space left on the disk of '/tmp' while writing the checkpoint (... MB free): free space ...")
    """
    full = isinstance(err, OSError) and err.errno in DISK_FULL
    if not full and any(s in str(err) for s in ("unexpected pos", "No space left", "os error 28", "quota")):
        full = free_bytes(path) < 64 << 20
    if not full:
        return None
    return TimmAAError(f"no space left on the disk of {path!r} while writing {what} ({free_bytes(path) >> 20} MB "
                       "free): free space there, or choose an output on a larger disk")


@contextmanager
def full_disk_in_one_line(path: str, what: str) -> Iterator[None]:
    """Turn an error a full disk caused while writing ``what`` near ``path`` into one TimmAAError
    (:func:`disk_full_error`); any other error passes unchanged.

    Example:
        >>> with full_disk_in_one_line('/tmp', 'the export'):  # doctest: +ELLIPSIS
        ...     raise OSError(28, 'No space left on device')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no space left on the disk of '/tmp' while writing the export (... MB free): ...
    """
    try:
        yield
    except Exception as err:  # a writer's own error type may carry the full disk
        full = disk_full_error(err, path, what)
        if full is None:
            raise
        raise full from None


def free_bytes(path: str) -> int:
    """Free bytes on the file system of ``path`` (or of the nearest existing folder above it).

    Example:
        >>> free_bytes('/nonexistent/a/b') > 0
        True
    """
    current = os.path.abspath(path)
    while not os.path.exists(current):
        current = os.path.dirname(current)
    return shutil.disk_usage(current).free


def check_free_space(path: str, need: int, what: str) -> None:
    """Refuse, before the work, a folder whose file system has less than ``need`` bytes free for ``what``.

    Example:
        >>> check_free_space(tempfile.gettempdir(), 1 << 60, 'a checkpoint of resnet18')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: ... has ... MB free, but a checkpoint of resnet18 needs about 1099511627776 MB: \
free space there, or choose an output on a larger disk
    """
    free = free_bytes(path)
    if free < need:
        raise TimmAAError(f"the disk of {path!r} has {free >> 20} MB free, but {what} needs about {need >> 20} MB: "
                          "free space there, or choose an output on a larger disk")


@contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[str]:
    """Yield a new temporary file beside ``path`` (created exclusively, on the same file system) to write; on
    success it replaces ``path``, on any failure it is removed (a full disk is one TimmAAError).

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
    tmp = create_temp(directory, suffix=os.path.splitext(path)[1])
    try:
        with full_disk_in_one_line(directory, os.path.basename(path)):
            os.chmod(tmp, mode if mode is not None else file_mode())
            yield tmp
            os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
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
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise TimmAAError(f"output={folder!r} is not a folder: {existing!r} is {describe(existing)}; choose another "
                          "folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".tmp-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else str(err)
        raise TimmAAError(f"output={folder!r} is not writable ({reason}): choose another folder") from None
