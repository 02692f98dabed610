"""Who owns an output folder: the one rule every tool follows before it writes (train, evaluate, publish, the demo,
convert_zhang), and the one way it writes and removes there.

A folder is a tool's only if it holds its trusted marker (:mod:`.marker`). A tool writes only into

- a new or empty folder (a new run);
- a folder whose marker names the same run (a resume); publish and convert also continue a folder an earlier run
  of theirs wrote (their folders are collections the next run adds to or refreshes);
- any other folder only with ``overwrite=True``: then the files our marker lists may be replaced or removed, a
  name the tool writes that holds a file we did not write is refused, and nothing else is touched. A folder that
  holds another tool's run, or lies inside any timm-aa output, is refused even then.

Links: the output folder itself must not be a link, nor any name the tool writes, locks or removes, except
``checkpoints/``, which may be a link to a folder of the user's on another disk: checkpoints are then staged and
written there, but never deleted through the link. Every file is created exclusively, without following a link
(:mod:`.fs`), and staged beside its final place, on that place's own file system.

Each change is recorded so that a kill at any moment leaves a marker that is still true: a new file is listed as
pending before it is renamed into place, and confirmed after. One process writes a folder at a time (:mod:`.lock`).
Temporary files and folders are named ``.timm-aa-tmp-<host>-<pid>-...``; each claim removes those whose process is
gone. A claim that ends with nothing of its tool's written leaves nothing behind: its lock, its marker, its
temporaries and the folders it made go (a failed first run into ``a/b/run`` removes ``a/b`` too).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import TimmAAError
from .fs import (
    HOST_TAG,
    create_temp,
    describe,
    file_mode,
    full_disk_in_one_line,
    link_on_the_way,
    make_folders,
    remove_empty_folders,
    remove_file,
    remove_stale_temps,
)
from .layout import COLLECTIONS, LINKABLE, LOCK, MARKER, TEMP, TOOL_FILES, marker_name
from .lock import lock_folder
from .marker import Marker, read_marker, record


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


def _ours(name: str) -> bool:
    """Whether a name in an output folder is our lock, a marker or a temporary."""
    return name == LOCK or bool(MARKER.match(name)) or name.startswith(TEMP)


def _entries(folder: str) -> list[str]:
    """What ``folder`` holds besides our lock, markers and temporaries."""
    return sorted(n for n in os.listdir(folder) if not _ours(n))


def _files_under(path: str, folder: str) -> list[str]:
    """Every file (and link) under the folder ``path``, as '/'-separated names relative to ``folder``, ours left
    out."""
    return [os.path.relpath(os.path.join(r, f), folder).replace(os.sep, "/")
            for r, dirs, fs in os.walk(path) for f in [*fs, *(d for d in dirs if os.path.islink(os.path.join(r, d)))]
            if not _ours(f)]


class Owner:
    """An output folder held by this process: claimed with :func:`claim`, written through :meth:`write_file` and
    :meth:`install_dir` (staged with :meth:`staging`), released with :meth:`release` (or a ``with`` block).

    Example:
        >>> import tempfile
        >>> with claim(tempfile.mkdtemp(), 'evaluate') as owner:
        ...     _ = owner.write_json('consistency.json', {})
        ...     sorted(owner.marker.files)
        ['consistency.json']
    """

    def __init__(self, folder: str, marker: Marker, lock_fd: int, started_new: bool) -> None:
        self.folder, self.marker, self._lock_fd, self.started_new = folder, marker, lock_fd, started_new
        self.created: list[str] = []  # the folders the claim made: if nothing is written, they go again

    @property
    def run(self) -> str:
        """The run id this folder belongs to."""
        return self.marker.run

    def path(self, name: str) -> str:
        return os.path.join(self.folder, *name.split("/"))

    def _save(self) -> None:
        tmp = create_temp(self.folder, "marker", ".json")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(_marker_json(self.marker))
            os.chmod(tmp, file_mode())
            os.replace(tmp, os.path.join(self.folder, marker_name(self.marker.tool)))
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def _place(self, name: str) -> str:
        """The final path of ``name``, refused (one line) unless it is a name this tool writes that is reached
        through no link but the one a user may make (``checkpoints/``, to a folder)."""
        final = self.path(name)
        link = link_on_the_way(self.folder, final)
        allowed = self.path(name.split("/")[0]) if name.split("/")[0] in LINKABLE and "/" in name else None
        if link is not None and (link != allowed or not os.path.isdir(link)):
            raise TimmAAError(f"{link!r} is {describe(link)}, where {self.marker.tool} writes {name}: remove the link "
                              "(what it points to is not touched), then run again")
        return final

    def _check_writable_name(self, name: str) -> str:
        if not TOOL_FILES[self.marker.tool].match(name):
            raise ValueError(f"{self.marker.tool} does not write {name!r}")  # a bug of ours, not a user error
        final = self._place(name)
        if os.path.lexists(final) and name not in self.marker.files:
            raise TimmAAError(f"{final!r} exists and timm-aa did not write it: move it away, then run again")
        return final

    def write_file(self, name: str, write: Callable[[str], None]) -> str:
        """Write ``name`` (a path relative to the folder) whole: ``write(tmp)`` fills a temporary file beside it,
        which is recorded as pending, renamed into place, then confirmed. Returns the file's path.

        Example:
            >>> import tempfile
            >>> with claim(tempfile.mkdtemp(), 'evaluate') as owner:
            ...     path = owner.write_file('consistency.json', lambda tmp: open(tmp, 'w').write('{}'))
            ...     sorted(owner.marker.files)
            ['consistency.json']
        """
        final = self._check_writable_name(name)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = create_temp(os.path.dirname(final), "file", os.path.splitext(name)[1])
        try:
            with full_disk_in_one_line(final, name):
                write(tmp)
                os.chmod(tmp, file_mode())
                self.marker.pending[name] = record(tmp)
                self._save()
                os.replace(tmp, final)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        self.marker.files[name] = self.marker.pending.pop(name)
        self._save()
        return final

    def write_json(self, name: str, obj: Any) -> str:
        """:meth:`write_file` of ``obj`` as indented JSON."""

        def dump(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")

        return self.write_file(name, dump)

    def stage_dir(self, name: str) -> str:
        """A new temporary folder beside where ``name`` will be installed (so on its file system), to fill and then
        :meth:`install_dir` (mode 0777 under the umask, as ``os.makedirs`` gives)."""
        final = self._place(name)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        return create_temp(parent, "stage", directory=True)

    @contextmanager
    def staging(self, name: str, what: str) -> Iterator[str]:
        """:meth:`stage_dir` for ``name`` as a ``with`` block: whatever happens, the staging folder does not outlive
        it (installed, or removed), and a full disk while writing ``what`` is one TimmAAError.

        Example:
            >>> import tempfile
            >>> with claim(tempfile.mkdtemp(), 'train') as owner:
            ...     with owner.staging('export', 'the export') as staged:
            ...         _ = open(os.path.join(staged, 'config.json'), 'w').write('{}')
            ...         _ = owner.install_dir('export', staged)
            ...     sorted(owner.marker.files)
            ['export/config.json']
        """
        staged = self.stage_dir(name)
        try:
            with full_disk_in_one_line(staged, what):
                yield staged
        finally:
            if os.path.lexists(staged) and not os.path.islink(staged):  # made by this process just now
                shutil.rmtree(staged, ignore_errors=True)

    def install_dir(self, name: str, staged: str) -> str:
        """Make the complete folder ``staged`` the folder ``name``, replacing the one we wrote there before (never
        one holding files we did not write, nor one reached through a link); its files are recorded. Returns its
        path."""
        final, prefix = self._place(name), name + "/"
        new = {}
        for root, _, files in os.walk(staged):
            os.chmod(root, file_mode(folder=True))  # writers like safetensors make 0600 files: the umask rules
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), staged).replace(os.sep, "/")
                os.chmod(os.path.join(root, f), file_mode())
                new[prefix + rel] = record(os.path.join(root, f))
        for rel in new:
            if not TOOL_FILES[self.marker.tool].match(rel):
                raise ValueError(f"{self.marker.tool} does not write {rel!r}")  # a bug of ours, not a user error
        if os.path.lexists(final):
            if os.path.islink(final) or not os.path.isdir(final) or link_on_the_way(self.folder, final):
                raise TimmAAError(f"{final!r} is {describe(final)}, reached through a link or not ours to replace: "
                                  "move it away, then run again")
            foreign = [f for f in _files_under(final, self.folder) if f not in self.marker.files]
            if foreign:
                raise TimmAAError(f"{final!r} holds files timm-aa did not write ({', '.join(foreign[:5])}): move "
                                  "them away, then run again")
        self.marker.pending.update(new)
        self._save()
        if os.path.lexists(final):
            old = create_temp(os.path.dirname(final), "old", directory=True)
            os.rmdir(old)
            os.replace(final, old)
            os.replace(staged, final)
            shutil.rmtree(old)
        else:
            os.replace(staged, final)
        for key in [k for k in self.marker.files if k.startswith(prefix)]:
            del self.marker.files[key]
        for key in new:
            self.marker.files[key] = self.marker.pending.pop(key)
        self._save()
        return final

    def check_writes(self, names: tuple[str, ...]) -> None:
        """Refuse, before the work, names the tool will write that hold a file of someone else's, or are links."""
        _check_writes(self.folder, self.marker.tool, names, self.marker.files)

    def check_removable(self, names: list[str], why: str) -> None:
        """Refuse, before anything goes, to remove ``names`` when one of their files is reached through a link."""
        for key in self._listed(names):
            remove_file(self.folder, self.path(key), why, dry_run=True)

    def _listed(self, names: list[str]) -> list[str]:
        return sorted(k for k in self.marker.files for n in names if k == n or k.startswith(n + "/"))

    def remove(self, name: str, why: str = "") -> None:
        """Delete the file or folder ``name`` we wrote: only the files our marker lists, never through a link, then
        the folders that held them where nothing else is left (a folder of someone else's stays)."""
        self.check_removable([name], why)
        keys = self._listed([name])
        for key in keys:
            remove_file(self.folder, self.path(key), why)
            del self.marker.files[key]
        parents = {os.path.dirname(self.path(k)) for k in keys}
        for p in list(parents):
            while os.path.dirname(p) != self.folder and p != self.folder:
                p = os.path.dirname(p)
                parents.add(p)
        remove_empty_folders(self.folder, [p for p in parents if p != self.folder])
        self._save()

    def release(self) -> None:
        """Give up the folder (drop the lock)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _leave_nothing(self) -> None:
        """Nothing of the tool's was written: remove what the claim made (our temporaries, marker and lock, and
        the folders it created, where they hold nothing else)."""
        mine = f"{TEMP}{HOST_TAG}-{os.getpid()}-"
        for name in os.listdir(self.folder):
            path = os.path.join(self.folder, name)
            if name.startswith(mine) and not os.path.islink(path):
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        if sorted(os.listdir(self.folder)) == sorted([LOCK, marker_name(self.marker.tool)]):
            os.unlink(os.path.join(self.folder, marker_name(self.marker.tool)))
            os.unlink(os.path.join(self.folder, LOCK))  # safe while we hold it: waiters re-check the file
        remove_empty_folders(os.path.dirname(self.created[0]), self.created)

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.created and not self.marker.files and self._lock_fd >= 0:
            self._leave_nothing()
        self.release()


def _marker_json(marker: Marker) -> str:
    return json.dumps(marker.to_json(), indent=1, sort_keys=True) + "\n"


def _refuse_nested(folder: str, argument: str, inside: Owner | None) -> None:
    """Refuse a folder that lies inside another timm-aa output (one holding a marker), but for the folder of
    ``inside`` (the demo's own training runs)."""
    current = os.path.dirname(os.path.abspath(folder))
    outer = os.path.abspath(inside.folder) if inside is not None else None
    while current != outer:
        try:
            markers = sorted(n for n in os.listdir(current) if MARKER.match(n))
        except OSError:
            markers = []
        if markers:
            raise TimmAAError(f"{argument}={folder!r} lies inside {current!r}, an output of timm-aa's "
                              f"{markers[0][9:-5]}: choose a folder outside it")
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent


def claim(folder: str, tool: str, *, overwrite: bool = False, resume: bool = False, writes: tuple[str, ...] = (),
          argument: str = "output", inside: Owner | None = None) -> Owner:
    """Hold ``folder`` for ``tool`` under the rule of the module docstring, or raise TimmAAError saying why not
    (naming ``argument`` and the fix). ``resume``: continue the run the folder's trusted marker names (the one place
    that decides whether a folder may be resumed, under the lock); its id is ``owner.run``.
    ``writes``: the files and folders the tool will write there, refused up front where one holds a file timm-aa
    did not write, or is a link. ``inside``: the claim of the folder this one lies in (the demo's training runs).

    A new run gets a fresh id; with ``overwrite``, the earlier run's files are removed first (only those its
    trusted marker lists, never through a link). Stale temporaries are removed. The folder is created only when
    the claim succeeds.

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
    if os.path.islink(folder):
        raise TimmAAError(f"{argument}={folder!r} is {describe(folder)}: timm-aa writes only into real folders; give "
                          "the folder itself")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise TimmAAError(f"{argument}={folder!r} is {describe(folder)}, where a folder would be written: choose "
                          "another path")
    _refuse_nested(folder, argument, inside)
    lock_path = os.path.join(folder, LOCK)
    locked_before = os.path.lexists(lock_path)
    created = make_folders(folder)
    fd = -1
    try:
        fd = lock_folder(folder)
        for sub in (folder, *(os.path.join(folder, n) for n in LINKABLE)):
            remove_stale_temps(sub)
        owner = _decide(folder, tool, overwrite, resume, argument, fd, writes)
        owner.created = created
        return owner
    except BaseException:  # refused: leave the folder as it was (a waiter on the lock file re-checks it)
        if fd >= 0:
            if not locked_before:
                os.unlink(lock_path)
            os.close(fd)
        remove_empty_folders(os.path.dirname(created[0]) if created else folder, created)
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


def _check_writes(folder: str, tool: str, writes: tuple[str, ...], listed: dict[str, Any]) -> None:
    """Each name the tool writes must hold nothing of someone else's, and must not be a link (but a
    ``checkpoints/`` link to a folder)."""
    for name in writes:
        path = os.path.join(folder, *name.split("/"))
        if os.path.islink(path) and not (name in LINKABLE and os.path.isdir(path)):
            raise TimmAAError(f"{path!r} is {describe(path)}, where {tool} writes: remove the link (what it points to "
                              "is not touched), then run again")
        if not os.path.lexists(path):
            continue
        foreign = _files_under(path, folder) if os.path.isdir(path) else [name]
        foreign = [f for f in foreign if f not in listed]
        if foreign:
            what = "exists and timm-aa did not write it" if foreign == [name] else \
                f"holds files timm-aa did not write ({', '.join(foreign[:5])})"
            raise TimmAAError(f"{path!r} {what}, where {tool} writes: move it away, then run again")


def _decide(folder: str, tool: str, overwrite: bool, resume: bool, argument: str, fd: int,
            writes: tuple[str, ...]) -> Owner:
    for other in TOOL_FILES:
        path = os.path.join(folder, marker_name(other))
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
            raise TimmAAError(f"{path!r} is {describe(path)}, not a marker timm-aa wrote: remove it (what it points "
                              "to is not touched), then run again")
        if other != tool and read_marker(folder, other)[0] is not None:
            raise TimmAAError(f"{argument}={folder!r} holds a run of timm-aa's {other}: choose another folder "
                              f"(overwrite replaces only an earlier {tool} run)")
    entries = _entries(folder)
    marker, why = read_marker(folder, tool)
    if resume and marker is None:
        raise TimmAAError(f"{argument}={folder!r} cannot be resumed: {why or 'it has no timm-aa marker'}")
    continued = resume or (marker is not None and tool in COLLECTIONS)
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
    _check_writes(folder, tool, writes, marker.files if marker else {})
    if continued:
        return Owner(folder, marker, fd, started_new=False)
    owner = Owner(folder, Marker(tool, uuid.uuid4().hex), fd, started_new=True)
    if marker is not None:  # overwrite an earlier run: remove what it wrote, and only that
        owner.marker.files = dict(marker.files)
        names = sorted({n.split("/")[0] for n in marker.files})
        owner.check_removable(names, "to replace the earlier run (overwrite)")
        for name in names:
            owner.remove(name, "to replace the earlier run (overwrite)")
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
    with claim(folder, tool, **kwargs) as owner:
        yield owner
