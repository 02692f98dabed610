"""Image sources: an ImageFolder directory or a Hugging Face ``datasets`` dataset, behind one interface.

A source is a list of images with optional integer labels: ``load(i)`` decodes image ``i`` to an 8-bit RGB
PIL image (raising ``OSError`` for an unreadable file), ``labels[i]`` is its class index or -1.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..errors import TimmAAError
from .scan import IMG_EXTENSIONS, Scan, scan_images

log = logging.getLogger(__name__)

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grayscale PNG/TIFF/PGM, as PIL opens them


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB. 16-bit grayscale is scaled (65535 -> 255); PIL's own conversion would clip it,
    turning nearly every pixel white.

    Example:
        >>> sixteen = Image.fromarray(np.full((2, 2), 32896, dtype=np.uint16))
        >>> sixteen.mode, to_rgb(sixteen).getpixel((0, 0))
        ('I;16', (128, 128, 128))
    """
    if image.mode in SIXTEEN_BIT_MODES:
        levels = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8))
    return image.convert("RGB")


@dataclass
class ImageSource:
    """Images and labels, decoded lazily.

    Example:
        >>> src = ImageSource('toy', ['a.png'], [0], ['cat'], lambda i: Image.new('L', (4, 3)))
        >>> src.load(0).mode, src.load(0).size, src.labeled
        ('RGB', (4, 3), True)
    """

    name: str
    ids: list[str]
    labels: list[int]
    classes: list[str] | None
    _loader: Callable[[int], Any] = field(repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labeled(self) -> bool:
        return self.classes is not None

    def load(self, index: int) -> Image.Image:
        """Image ``index`` as 8-bit RGB; ``OSError`` naming it when it cannot be read, for whatever reason PIL (or
        the dataset) refuses it: a broken or truncated file, a decompression bomb, an unknown format."""
        try:
            image = self._loader(index)
            if not isinstance(image, Image.Image):
                raise OSError(f"not an image ({type(image).__name__})")
            return to_rgb(image)
        except Exception as err:  # every reason an image cannot be read is one kind of failure
            raise OSError(f"{self.ids[index]}: {type(err).__name__}: {err}") from None


def _open_file(path: str) -> Image.Image:
    """Decode a regular file; anything else (a FIFO put there after the folder was listed) is an ``OSError``, never
    a wait: the file is opened without blocking and checked before it is read."""
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError("not a regular file")
        with Image.open(f) as img:
            img.load()
            return img.copy()


def open_image_folder(root: str) -> ImageSource:
    """An ImageFolder (``root/<class>/<image>``), or a flat folder of images (unlabelled).

    Each image file is listed once (see :mod:`.scan`: links are followed, never in a loop; what is not a regular
    file is skipped); what was skipped is logged in one line. A class folder left without an image is refused.

    Example:
        >>> open_image_folder('missing/dir')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no data directory at 'missing/dir'
    """
    if not os.path.isdir(root):
        raise TimmAAError(f"no data directory at {root!r}")
    classes = sorted(d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith("."))
    scan = scan_images(root, classes)
    paths = [f.path for cls in classes for f in scan.found[cls]]
    labels = [label for label, cls in enumerate(classes) for _ in scan.found[cls]]
    if not paths:
        scan = scan_images(root, [""], recursive=False)
        flat = [f.path for f in scan.found[""]]
        if not flat:
            raise TimmAAError(f"no images in {root!r} (looked for {', '.join(IMG_EXTENSIONS)} files)")
        paths, labels, classes = flat, [-1] * len(flat), None
    if scan.skipped:
        log.warning("%s: %s", root, scan.summary())
    empty = [os.path.join(root, cls) for cls in classes or [] if not scan.found[cls]]
    if empty:
        raise TimmAAError(f"class folder {empty[0]!r} holds no image of its own{_why_empty(scan, empty[0])}"
                          f"{f' (and {len(empty) - 1} more)' if len(empty) > 1 else ''}: add images, or remove it")
    return ImageSource(root, paths, labels, classes, lambda i: _open_file(paths[i]))


def _why_empty(scan: Scan, folder: str) -> str:
    inside = sum(1 for paths in scan.skipped.values() for p in paths if p == folder or p.startswith(folder + os.sep))
    return f" ({inside} path{'' if inside == 1 else 's'} in it skipped, see the log)" if inside else ""


def is_hf_dataset_dir(path: str) -> bool:
    """Whether ``path`` is a folder written by ``datasets``' ``save_to_disk``.

    Example:
        >>> is_hf_dataset_dir(".")
        False
    """
    return any(os.path.isfile(os.path.join(path, name)) for name in ("dataset_dict.json", "state.json"))


def open_hf_dataset(name_or_path: str, split: str | None = None) -> ImageSource:
    """A Hugging Face ``datasets`` dataset: a ``save_to_disk`` folder or a name in the local cache.

    The image column is the first ``Image`` feature; labels come from the first ``ClassLabel``
    feature (else unlabelled).
    """
    try:
        import datasets
    except ImportError:
        raise TimmAAError("reading Hugging Face datasets needs the 'datasets' package: pip install datasets") from None
    try:
        load = datasets.load_from_disk if os.path.isdir(name_or_path) else datasets.load_dataset
        ds = load(name_or_path)
    except (OSError, ConnectionError, ValueError) as err:  # not found, not cached and offline, not a dataset
        raise TimmAAError(f"cannot open the dataset {name_or_path!r} ({type(err).__name__}: {err})") from None
    except IndexError:  # datasets (5.2 at least) cannot read back a split saved with no rows
        raise TimmAAError(f"cannot open the dataset {name_or_path!r}: one of its splits is empty (datasets cannot read "
                          "back a split saved with no rows); remove that split, or give it images") from None
    if isinstance(ds, datasets.DatasetDict):
        if split is None:
            split = "validation" if "validation" in ds else "test" if "test" in ds else next(iter(ds))
        if split not in ds:
            raise TimmAAError(f"dataset {name_or_path!r} has no split {split!r}; it has {list(ds)}")
        ds = ds[split]
    image_cols = [k for k, f in ds.features.items() if isinstance(f, datasets.Image)]
    if not image_cols:
        raise TimmAAError(f"dataset {name_or_path!r} has no image column (features: {list(ds.features)})")
    label_cols = [k for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)]
    image_col = image_cols[0]
    labels = list(ds[label_cols[0]]) if label_cols else [-1] * len(ds)
    classes = list(ds.features[label_cols[0]].names) if label_cols else None
    ids = [f"{name_or_path}[{split or ''}][{i}]" for i in range(len(ds))]
    if not ids:
        raise TimmAAError(f"dataset {name_or_path!r} split {split!r} is empty")
    return ImageSource(name_or_path, ids, labels, classes, lambda i: ds[i][image_col])


def open_image_source(spec: str, split: str | None = None) -> ImageSource:
    """Open ``spec``: ``hf:NAME`` or a saved ``datasets`` folder (Hugging Face), else an ImageFolder path.

    Example:
        >>> open_image_source('')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no data path given
    """
    if not spec:
        raise TimmAAError("no data path given")
    if spec.startswith("hf:") or is_hf_dataset_dir(spec):
        return open_hf_dataset(spec.removeprefix("hf:"), split)
    return open_image_folder(spec)


def eval_resize(input_size: int, crop_pct: float) -> int:
    """R: timm's evaluation resize for crop size S and ``crop_pct`` (floor(S / crop_pct)).

    Example:
        >>> eval_resize(224, 0.875)
        256
    """
    return int(math.floor(input_size / crop_pct))
