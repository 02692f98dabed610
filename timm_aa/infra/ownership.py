"""Who owns an output folder: the one rule every tool follows before it writes (train, evaluate, publish, the demo,
convert_zhang).

A folder is a tool's only if it holds its marker ``.timm-aa-<tool>.json``, written atomically by us, naming the
run (an id) and every file the tool wrote there with its size and SHA-256. A tool writes only into

- a new or empty folder (a new run);
- a folder whose marker names the same run (a resume); publish and convert also continue a folder an earlier run
  of theirs wrote (their folders are collections the next run adds to or refreshes);
- any other folder only with ``overwrite=True``: then the files our marker lists may be replaced or removed, a
  name the tool writes that holds a file we did not write is refused, and nothing else is touched.

A marker is trusted only if it is the JSON we write, names this tool, lists only names this tool writes, and every
listed file that is there still has the recorded size and SHA-256 (a listed file may be missing: we removed it, or
a kill came before it was renamed into place). Anything else, a copied or hand-written marker included, is not
ours. Each change is recorded so that a kill at any moment leaves a marker that is still true: a new file is
listed as pending before it is renamed into place, and confirmed after.

One process writes a folder at a time: an :class:`Owner` holds an exclusive ``flock`` on ``.timm-aa.lock`` (with
the holder's pid, host and command in it, for the message a second process gets). The kernel drops the lock when
its holder dies, so a lock left by a killed run is taken over safely; the lock file itself is never deleted (a
process waiting on a deleted one would hold a lock nobody else sees). Temporary files and folders are made in the
folder itself, named ``.timm-aa-tmp-<host>-<pid>-...``; each claim removes those whose process is gone.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import TimmAAError
from .fs import HOST_TAG, file_mode, remove_stale_temps, sha256_file, temp_name
from .layout import COLLECTIONS, LOCK, MARKER, TEMP, TOOL_FILES, marker_name

SCHEMA = "timm-aa/owner/1"


def _record(path: str) -> list[Any]:
    return [os.path.getsize(path), sha256_file(path)]


def check_disjoint(output: str, inputs: dict[str, str | None], argument: str = "output") -> None:
    """Refuse an ``output`` folder that is, holds or lies inside one of ``inputs`` (``{argument: path}``): writing
    there could replace what is being read.

    Example:
        >>> check_disjoint('runs/a', {'data': 'data/train'})
        >>> check_disjoint('data/out', {'data': 'data'})
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: output='data/out' lies inside data='data', which is being read: choose an output \
folder outside it
    """
    out = os.path.realpath(output)
    for name, path in inputs.items():
        if not path or ":" in path.split(os.sep)[0] and not os.path.exists(path):
            continue  # hf:NAME, hf-hub:..., a model name: not a folder
        src = os.path.realpath(path)
        if out == src or out.startswith(src.rstrip(os.sep) + os.sep):
            how = "is" if out == src else "lies inside"
        elif src.startswith(out.rstrip(os.sep) + os.sep):
            how = "holds"
        else:
            continue
        raise TimmAAError(f"{argument}={output!r} {how} {name}={path!r}, which is being read: choose an output folder "
                          f"outside it")


@dataclass
class Marker:
    """What a marker says: the tool, the run, the files written (``name: [size, sha256]``) and the pending ones."""

    tool: str
    run: str
    files: dict[str, list[Any]] = field(default_factory=dict)
    pending: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "tool": self.tool, "run": self.run, "files": self.files, "pending": self.pending}


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
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        marker = Marker(data["tool"], data["run"], data["files"], data["pending"])
        if data["schema"] != SCHEMA or marker.tool != tool or not isinstance(marker.run, str) or \
                not re.fullmatch(r"[0-9a-f]{32}", marker.run):
            raise ValueError("not our marker")
        entries = [*marker.files.items(), *marker.pending.items()]
        if not isinstance(marker.files, dict) or not isinstance(marker.pending, dict) or not all(
                isinstance(r, list) and len(r) == 2 and isinstance(r[0], int) and isinstance(r[1], str)
                for _, r in entries):
            raise ValueError("not our marker")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, f"its {marker_name(tool)} is not one timm-aa wrote"
    pattern = TOOL_FILES[tool]
    for name, rec in entries:
        if not pattern.match(name) or ".." in name.split("/"):
            return None, f"its {marker_name(tool)} lists {name!r}, which {tool} never writes"
        full = os.path.join(folder, *name.split("/"))
        if os.path.lexists(full) and (not os.path.isfile(full) or os.path.islink(full) or _record(full) not in (
                rec, marker.files.get(name), marker.pending.get(name))):
            return None, f"{name} changed since timm-aa wrote it"
    return marker, ""


def _entries(folder: str) -> list[str]:
    """What ``folder`` holds besides our lock, markers and temporaries."""
    return sorted(n for n in os.listdir(folder) if n != LOCK and not MARKER.match(n) and not n.startswith(TEMP))


class Owner:
    """An output folder held by this process: claimed with :func:`claim`, written through :meth:`write_file` and
    :meth:`install_dir`, released with :meth:`release` (or a ``with`` block)."""

    def __init__(self, folder: str, marker: Marker, lock_fd: int, started_new: bool, created: bool = False) -> None:
        self.folder, self.marker, self._lock_fd, self.started_new = folder, marker, lock_fd, started_new
        self.created = created  # the claim made the folder: if nothing is written into it, it goes again

    @property
    def run(self) -> str:
        """The run id this folder belongs to."""
        return self.marker.run

    def path(self, name: str) -> str:
        return os.path.join(self.folder, *name.split("/"))

    def _save(self) -> None:
        tmp = self.temp_path("marker")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.marker.to_json(), f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, file_mode())
        os.replace(tmp, os.path.join(self.folder, marker_name(self.marker.tool)))

    def temp_path(self, label: str = "") -> str:
        """A new temporary path in the folder (renamed into place later; removed by the next claim if we die)."""
        return os.path.join(self.folder, temp_name(label))

    def _check_writable_name(self, name: str) -> None:
        if not TOOL_FILES[self.marker.tool].match(name):
            raise ValueError(f"{self.marker.tool} does not write {name!r}")  # a bug of ours, not a user error
        target = self.path(name)
        if os.path.lexists(target) and name not in self.marker.files:
            raise TimmAAError(f"{target!r} exists and timm-aa did not write it: move it away, then run again")

    def write_file(self, name: str, write: Callable[[str], None]) -> str:
        """Write ``name`` (a path relative to the folder) whole: ``write(tmp)`` fills a temporary file, which is
        recorded as pending, renamed into place, then confirmed. Returns the file's path.

        Example:
            >>> import tempfile
            >>> with claim(tempfile.mkdtemp(), 'evaluate') as owner:
            ...     path = owner.write_file('consistency.json', lambda tmp: open(tmp, 'w').write('{}'))
            ...     sorted(owner.marker.files)
            ['consistency.json']
        """
        self._check_writable_name(name)
        tmp = self.temp_path("file")
        try:
            write(tmp)
            os.chmod(tmp, file_mode())
            self.marker.pending[name] = _record(tmp)
            self._save()
            os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)
            os.replace(tmp, self.path(name))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.marker.files[name] = self.marker.pending.pop(name)
        self._save()
        return self.path(name)

    def write_json(self, name: str, obj: Any) -> str:
        """:meth:`write_file` of ``obj`` as indented JSON."""

        def dump(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")

        return self.write_file(name, dump)

    def stage_dir(self) -> str:
        """A new temporary folder to fill and then :meth:`install_dir` (mode 0777 under the umask, as
        ``os.makedirs`` gives; ``tempfile.mkdtemp`` would give 0700)."""
        path = self.temp_path("stage")
        os.mkdir(path)
        return path

    def install_dir(self, name: str, staged: str) -> str:
        """Make the complete folder ``staged`` the folder ``name``, replacing the one we wrote there before (never
        one holding files we did not write); its files are recorded. Returns its path.

        Example:
            >>> import tempfile
            >>> with claim(tempfile.mkdtemp(), 'train') as owner:
            ...     staged = owner.stage_dir()
            ...     _ = open(os.path.join(staged, 'config.json'), 'w').write('{}')
            ...     _ = owner.install_dir('export', staged)
            ...     sorted(owner.marker.files)
            ['export/config.json']
        """
        final, prefix = self.path(name), name + "/"
        new = {}
        for root, _, files in os.walk(staged):
            os.chmod(root, file_mode(folder=True))  # writers like safetensors make 0600 files: the umask rules
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), staged).replace(os.sep, "/")
                os.chmod(os.path.join(root, f), file_mode())
                new[prefix + rel] = _record(os.path.join(root, f))
        for rel in new:
            self._check_writable_name(rel)
        if os.path.lexists(final):
            foreign = [os.path.relpath(os.path.join(r, f), self.folder).replace(os.sep, "/")
                       for r, _, fs in os.walk(final) for f in fs]
            foreign = [f for f in foreign if f not in self.marker.files]
            if foreign or not os.path.isdir(final):
                raise TimmAAError(f"{final!r} holds files timm-aa did not write ({', '.join(foreign[:5])}): move "
                                  "them away, then run again")
        self.marker.pending.update(new)
        self._save()
        if os.path.lexists(final):
            old = self.temp_path("old")
            os.replace(final, old)
            os.replace(staged, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(staged, final)
        for key in [k for k in self.marker.files if k.startswith(prefix)]:
            del self.marker.files[key]
        for key in new:
            self.marker.files[key] = self.marker.pending.pop(key)
        self._save()
        return final

    def remove(self, name: str) -> None:
        """Delete the file or folder ``name`` we wrote (only the files our marker lists; a folder that then holds
        nothing else goes too)."""
        prefix = name + "/"
        for key in sorted(k for k in self.marker.files if k == name or k.startswith(prefix)):
            path = self.path(key)
            if os.path.isfile(path):
                os.unlink(path)
            del self.marker.files[key]
        folder = self.path(name)
        for root, _, _ in sorted(os.walk(folder), reverse=True) if os.path.isdir(folder) else []:
            try:
                os.rmdir(root)  # empty folders only
            except OSError:
                pass
        self._save()

    def release(self) -> None:
        """Give up the folder (drop the lock)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self.created and not self.marker.files and self._lock_fd >= 0:
            for name in os.listdir(self.folder):  # a failed first run in a folder it made: leave nothing behind
                if name.startswith(f"{TEMP}{HOST_TAG}-{os.getpid()}-"):
                    path = os.path.join(self.folder, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
            if sorted(os.listdir(self.folder)) == sorted([LOCK, marker_name(self.marker.tool)]):
                os.unlink(os.path.join(self.folder, marker_name(self.marker.tool)))
                os.unlink(os.path.join(self.folder, LOCK))  # safe while we hold it: waiters re-check the file
                os.rmdir(self.folder)
        self.release()


def _lock(folder: str) -> int:
    """An exclusive lock on ``folder`` for this process, or TimmAAError naming the process that holds it."""
    import fcntl  # POSIX: the scripts write output folders on Linux and macOS

    path = os.path.join(folder, LOCK)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise TimmAAError(f"{folder!r} is being written by {holder}: wait for it to finish, or choose "
                                  "another folder") from None
            raise
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)  # the file was replaced while we waited: lock the new one
    holder = f"process {os.getpid()} on {socket.gethostname()} ({os.path.basename(sys.argv[0]) or 'python'}, " \
             f"since {time.strftime('%Y-%m-%d %H:%M:%S')})"
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    return fd


def claim(folder: str, tool: str, *, overwrite: bool = False, run: str | None = None, writes: tuple[str, ...] = (),
          argument: str = "output") -> Owner:
    """Hold ``folder`` for ``tool`` under the rule of the module docstring, or raise TimmAAError saying why not
    (naming ``argument`` and the fix). ``run``: continue that run (a resume); the folder's marker must name it.
    ``writes``: the files and folders the tool will write there, refused up front where one holds a file timm-aa
    did not write.

    A new run gets a fresh id; with ``overwrite``, the earlier run's files are removed first (only those its
    trusted marker lists). Stale temporaries are removed. The folder is created only when the claim succeeds.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with claim(folder, 'evaluate') as owner:
        ...     _ = owner.write_json('consistency.json', {})
        >>> claim(folder, 'evaluate')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: output='...' holds an earlier run's results (timm-aa's evaluate wrote them): \
choose a new folder, or overwrite=True to replace them
    """
    if tool not in TOOL_FILES:
        raise ValueError(f"unknown tool {tool!r}")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise TimmAAError(f"{argument}={folder!r} is a file, where a folder would be written: choose another path")
    existed = os.path.isdir(folder)
    locked_before = os.path.exists(os.path.join(folder, LOCK))
    os.makedirs(folder, exist_ok=True)
    fd = _lock(folder)
    try:
        remove_stale_temps(folder)
        owner = _decide(folder, tool, overwrite, run, argument, fd, writes)
        owner.created = not existed
        return owner
    except BaseException:  # refused: leave the folder as it was (a waiter on the lock file re-checks it, see _lock)
        if not locked_before:
            os.unlink(os.path.join(folder, LOCK))
        if not existed and not os.listdir(folder):
            os.rmdir(folder)
        os.close(fd)
        raise


def _some_files(folder: str, entries: list[str], limit: int = 6) -> list[str]:
    """Up to ``limit`` of the files (or empty folders) among ``entries``, relative to ``folder``, for a message."""
    found: list[str] = []
    for name in entries:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            files = (os.path.relpath(os.path.join(r, f), folder) for r, _, fs in os.walk(path) for f in fs)
            found += list(itertools.islice(files, limit - len(found))) or [name + "/"]
        else:
            found.append(name)
        if len(found) >= limit:
            break
    return found


def _foreign(folder: str, name: str, listed: dict[str, Any]) -> list[str]:
    """The files at ``name`` (a file, or every file under a folder) that ``listed`` does not name."""
    path = os.path.join(folder, *name.split("/"))
    if not os.path.isdir(path) or os.path.islink(path):
        return [name] if os.path.lexists(path) and name not in listed else []
    found = [os.path.relpath(os.path.join(r, f), folder).replace(os.sep, "/") for r, _, fs in os.walk(path) for f in fs]
    return [f for f in found if f not in listed]


def _decide(folder: str, tool: str, overwrite: bool, run: str | None, argument: str, fd: int,
            writes: tuple[str, ...]) -> Owner:
    entries = _entries(folder)
    marker, why = read_marker(folder, tool)
    if run is not None and (marker is None or marker.run != run):  # a resume: the marker must name that run
        reason = why or (f"it belongs to another run ({marker.run[:8]})" if marker else "it has no timm-aa marker")
        raise TimmAAError(f"{argument}={folder!r} cannot be resumed: {reason}")
    continued = run is not None or (marker is not None and tool in COLLECTIONS)
    if entries and not overwrite and not continued and marker is not None:
        raise TimmAAError(f"{argument}={folder!r} holds an earlier run's results (timm-aa's {tool} wrote them): "
                          "choose a new folder, or overwrite=True to replace them")
    if entries and not overwrite and not continued:
        found = _some_files(folder, entries)
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        more = f"; {why}" if why else ""
        raise TimmAAError(f"{argument}={folder!r} holds files timm-aa's {tool} did not write ({shown}{more}): choose "
                          "a new or empty folder, or overwrite=True to write beside them (nothing of theirs is "
                          "touched)")
    for name in writes:  # before anything is removed: a name the tool writes must not hold a file of someone else's
        foreign = _foreign(folder, name, marker.files if marker else {})
        if foreign:
            path = os.path.join(folder, *name.split("/"))
            what = "exists and timm-aa did not write it" if foreign == [name] else \
                f"holds files timm-aa did not write ({', '.join(foreign[:5])})"
            raise TimmAAError(f"{path!r} {what}, where {tool} writes: move it away, then run again")
    if continued:
        return Owner(folder, marker, fd, started_new=False)
    owner = Owner(folder, Marker(tool, uuid.uuid4().hex), fd, started_new=True)
    if marker is not None:  # overwrite an earlier run: remove what it wrote, and only that
        owner.marker.files = dict(marker.files)
        for name in sorted({n.split("/")[0] for n in marker.files}):
            owner.remove(name)
    owner._save()
    return owner


@contextmanager
def owned(folder: str | None, tool: str, **kwargs: Any) -> Iterator[Owner | None]:
    """:func:`claim` as a ``with`` block; ``folder=None`` (nothing to write) holds nothing.

    Example:
        >>> with owned(None, 'evaluate') as owner:
        ...     owner is None
        True
    """
    if folder is None:
        yield None
        return
    owner = claim(folder, tool, **kwargs)
    try:
        yield owner
    finally:
        owner.release()
