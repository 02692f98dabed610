"""List the image files of a folder tree safely: each file once, regular files only, every folder walked once.

Links are followed (an ImageFolder of links into a pool of images is common), but a folder reached again through a
link (a link loop, a link to a folder already walked) is not walked again, a file reached twice (through a link or a
hard link) is listed once, where it is reached without a link when it is, and whatever is not a regular file (a FIFO,
a device, a socket) or cannot be reached (a dangling or looping link) is skipped: opening a FIFO named ``x.png``
would wait forever. What was skipped is counted by reason.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
NOT_REGULAR = "not regular files (FIFO, device, socket)"
BROKEN_LINK = "dangling or looping links"
TWICE = "files reached twice (through a link or a hard link)"
FOLDER_AGAIN = "folders reached again through a link (a link loop)"
UNREADABLE_FOLDER = "folders that cannot be listed"


def is_image_name(name: str) -> bool:
    """Whether ``name`` is an image file name we read (hidden files are not).

    Example:
        >>> is_image_name('cat.JPG'), is_image_name('.cat.jpg'), is_image_name('notes.txt')
        (True, False, False)
    """
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


@dataclass
class Found:
    """An image file: its path, its identity on disk (device, inode), and whether a link led to it."""

    path: str
    key: tuple[int, int]
    linked: bool


@dataclass
class Scan:
    """The image files found under each top folder, and the paths skipped, by reason."""

    found: dict[str, list[Found]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, path: str) -> None:
        self.skipped.setdefault(reason, []).append(path)

    def summary(self) -> str:
        """One line: how many paths were skipped for each reason, with an example of each.

        Example:
            >>> scan = Scan(); scan.skip(NOT_REGULAR, 'a/x.png'); scan.summary()
            "skipped 1 path: not regular files (FIFO, device, socket): 1 (e.g. 'a/x.png')"
        """
        total = sum(len(v) for v in self.skipped.values())
        parts = [f"{reason}: {len(paths)} (e.g. {paths[0]!r})" for reason, paths in self.skipped.items()]
        return f"skipped {total} path{'' if total == 1 else 's'}: {'; '.join(parts)}"


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _identify(entry: os.DirEntry) -> os.stat_result | None:
    """What ``entry`` names, links followed (``stat``, never ``open``: a FIFO does not block here), or ``None`` for a
    file that is not named as an image (not looked at); ``OSError`` when a link leads nowhere."""
    if entry.is_symlink() or entry.is_dir(follow_symlinks=False) or is_image_name(entry.name):
        return os.stat(entry.path)  # (device, inode) from stat: a folder listing's inode can differ (overlayfs)
    return None


def _walk(top: str, scan: Scan, seen_folders: set[tuple[int, int]], recursive: bool) -> list[Found]:
    """The image files under ``top`` (sorted by folder, then name); folders in ``seen_folders`` are not entered."""
    found: list[tuple[str, str, Found]] = []
    stack = [(top, os.path.islink(top))]
    while stack:
        folder, linked = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            scan.skip(UNREADABLE_FOLDER, folder)
            continue
        for entry in entries:
            via_link = linked or entry.is_symlink()
            try:
                st = _identify(entry)
            except OSError:  # a dangling link, a link loop (ELOOP), a name we may not look at
                if is_image_name(entry.name) or entry.is_symlink():
                    scan.skip(BROKEN_LINK, entry.path)
                continue
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not recursive:
                    continue
                if _key(st) in seen_folders:
                    scan.skip(FOLDER_AGAIN, entry.path)
                    continue
                seen_folders.add(_key(st))
                stack.append((entry.path, via_link))
            elif is_image_name(entry.name):
                if not stat.S_ISREG(st.st_mode):
                    scan.skip(NOT_REGULAR, entry.path)
                    continue
                found.append((folder, entry.name, Found(entry.path, _key(st), via_link)))
    return [f for _, _, f in sorted(found, key=lambda t: (t[0], t[1]))]


def scan_images(root: str, tops: list[str], recursive: bool = True) -> Scan:
    """The image files under each folder of ``tops`` (inside ``root``), each file listed once across all of them.

    A file reached more than once is kept where it is reached without a link (else at its first path, in the order
    of ``tops``); the other paths are skipped and counted. The folders themselves (and ``root``) are walked once
    each, whatever links lead back to them.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, 'a')); open(os.path.join(root, 'a', 'x.png'), 'wb').close()
        >>> os.symlink(os.path.join(root, 'a', 'x.png'), os.path.join(root, 'a', 'y.png'))
        >>> os.symlink(root, os.path.join(root, 'a', 'loop'))
        >>> scan = scan_images(root, ['a'])
        >>> [os.path.basename(f.path) for f in scan.found['a']], sorted(scan.skipped)
        (['x.png'], ['files reached twice (through a link or a hard link)', 'folders reached again through a link \
(a link loop)'])
    """
    scan = Scan()
    root_key = _key(os.stat(root))
    for top in tops:
        path = os.path.join(root, top) if top else root
        try:
            top_key = _key(os.stat(path))
        except OSError:
            scan.skip(BROKEN_LINK, path)
            scan.found[top] = []
            continue
        if top_key == root_key and top:  # a class folder that is a link to the root
            scan.skip(FOLDER_AGAIN, path)
            scan.found[top] = []
            continue
        scan.found[top] = _walk(path, scan, {root_key, top_key}, recursive)
    winner: dict[tuple[int, int], Found] = {}
    for files in scan.found.values():
        for f in files:
            if f.key not in winner or (winner[f.key].linked and not f.linked):
                winner[f.key] = f
    for top, files in scan.found.items():
        scan.found[top] = [f for f in files if winner[f.key] is f]
        for f in files:
            if winner[f.key] is not f:
                scan.skip(TWICE, f.path)
    return scan
