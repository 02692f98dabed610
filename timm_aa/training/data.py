"""Training and validation data: an ImageFolder (train/ and val/) or a Hugging Face dataset, with timm transforms.

Validation items are R x R images (R = S / crop_pct, timm's eval resize), so that the top-1 of the
center S crop equals timm's evaluation and the consistency protocols can cut shifted crops from them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from timm.data import create_transform
from torch.utils.data import Dataset
from torchvision import transforms as T

from ..data import ImageSource, eval_resize, open_image_folder, open_image_source
from ..data.sources import is_hf_dataset_dir
from ..errors import TimmAAError


@dataclass
class DataSplits:
    train: ImageSource
    val: ImageSource
    classes: list[str]


def open_splits(data: str, train_split: str = "train", val_split: str = "val") -> DataSplits:
    """Open ``data``: a folder with ``train/`` and ``val/`` ImageFolders, or a Hugging Face dataset.

    Example:
        >>> open_splits('/nonexistent')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no data directory at '/nonexistent'
    """
    if data.startswith("hf:") or (os.path.isdir(data) and is_hf_dataset_dir(data)):
        train = open_image_source(data, train_split)
        val_name = "validation" if val_split == "val" else val_split
        try:
            val = open_image_source(data, val_name)
        except TimmAAError:
            val = open_image_source(data, "test")
    else:
        if not os.path.isdir(data):
            raise TimmAAError(f"no data directory at {data!r}")
        missing = [s for s in (train_split, val_split) if not os.path.isdir(os.path.join(data, s))]
        if missing:
            raise TimmAAError(f"{data!r} needs {train_split}/ and {val_split}/ image folders; missing: {missing}")
        train = open_image_folder(os.path.join(data, train_split))
        val = open_image_folder(os.path.join(data, val_split))
    for name, src in (("train", train), ("val", val)):
        if not src.labeled:
            raise TimmAAError(f"the {name} split of {data!r} has no labels (need one folder per class)")
    if train.classes != val.classes:
        raise TimmAAError(f"train and val classes differ: {train.classes[:5]}... vs {val.classes[:5]}...")
    return DataSplits(train, val, list(train.classes))


def train_transform(data_cfg: dict[str, Any], aug: str, hflip: float) -> Any:
    """The training transform: timm's (``aug='timm'``), translations only (``'shift'``), or none (``'center'``)."""
    size = data_cfg["input_size"][-1]
    if aug == "timm":
        return create_transform(**data_cfg, is_training=True, hflip=hflip)
    if aug == "center":
        return create_transform(**data_cfg, is_training=False)
    resize = eval_resize(size, data_cfg["crop_pct"])
    interp = T.InterpolationMode(data_cfg["interpolation"])
    return T.Compose([T.Resize(resize, interpolation=interp), T.RandomCrop(size), T.ToTensor(),
                      T.Normalize(data_cfg["mean"], data_cfg["std"])])


def val_transform(data_cfg: dict[str, Any]) -> Any:
    """Resize to R and center-crop R (no S crop: the evaluation cuts S crops itself)."""
    resize = eval_resize(data_cfg["input_size"][-1], data_cfg["crop_pct"])
    interp = T.InterpolationMode(data_cfg["interpolation"])
    return T.Compose([T.Resize(resize, interpolation=interp), T.CenterCrop(resize), T.ToTensor(),
                      T.Normalize(data_cfg["mean"], data_cfg["std"])])


class TransformedImages(Dataset):
    """``(image_tensor, label, index)`` items of an :class:`ImageSource`; an unreadable image is an error
    that names the file."""

    def __init__(self, source: ImageSource, transform: Any) -> None:
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        try:
            image = self.source.load(index)
        except OSError as err:  # ImageSource.load: every unreadable image
            raise TimmAAError(f"cannot read image {err}") from None
        return self.transform(image), self.source.labels[index], index


def check_readable(source: ImageSource, limit: int = 50_000) -> None:
    """Decode every image once and raise TimmAAError listing the unreadable ones, before training starts.

    Sources larger than ``limit`` are not pre-checked: an unreadable image there stops training with
    an error naming the file, when it is reached.
    """
    if len(source) > limit:
        return
    bad = []
    for i in range(len(source)):
        try:
            source.load(i)
        except OSError:  # ImageSource.load: every unreadable image
            bad.append(source.ids[i])
    if bad:
        raise TimmAAError(f"{len(bad)} unreadable image(s): {', '.join(bad[:10])}")


def check_trainable(splits: DataSplits) -> None:
    """Raise TimmAAError when the training split has images of fewer than two classes: a classifier of one class is
    right and shift-consistent on every image, so its top-1 and consistency would say 100 and mean nothing.

    Example:
        >>> from timm_aa.data import ImageSource
        >>> one = ImageSource('one', ['a.png', 'b.png'], [0, 0], ['cat'], lambda i: None)
        >>> check_trainable(DataSplits(one, one, ['cat']))
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: the training split 'one' has images of 1 class (cat): training needs at least two
    """
    present = sorted({label for label in splits.train.labels if label >= 0})
    if len(present) < 2:
        names = ", ".join(splits.classes[i] for i in present) or "none"
        plural = "" if len(present) == 1 else "es"
        raise TimmAAError(f"the training split {splits.train.name!r} has images of {len(present)} class{plural} "
                          f"({names}): training needs at least two")
